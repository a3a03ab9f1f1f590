"""``fit(model, data)``: train an ordinary factorkit estimator on DistributedInteractions.

The epoch loop here mirrors the one-machine loop: history, callbacks, validation,
early stopping, divergence checks; plus checkpoints (``checkpoint_dir=``, one atomic file
rewritten after every epoch) and ``resume=True``. When it ends, the model holds the same
fitted attributes a local fit sets, so predict, recommend, save/load and serve work
unchanged.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit.distributed._als import ALSTrainer, ImplicitALSTrainer
from factorkit.distributed._cluster import ClusterError, worker_addresses
from factorkit.distributed._data import DistributedInteractions
from factorkit.exceptions import (
    DataError,
    DivergenceError,
    InvalidParameterError,
    ModelFormatError,
)
from factorkit.models import ALS, BiasedMF, ImplicitALS, normal_factors

__all__ = ["CHECKPOINT_NAME", "fit"]

#: the checkpoint file inside ``checkpoint_dir``
CHECKPOINT_NAME = "factorkit-checkpoint.npz"
_EXCHANGES = ("auto", "broadcast", "routed")
#: reruns of an epoch whose exchange with the cluster failed
MAX_EPOCH_RETRIES = 3
RETRY_PAUSE_SECONDS = 1.0


def _trainer(model: Any, data: DistributedInteractions, exchange: str) -> Any:
    if isinstance(model, ImplicitALS):
        return ImplicitALSTrainer(model, data, exchange)
    if isinstance(model, ALS):
        return ALSTrainer(model, data, exchange)
    if isinstance(model, BiasedMF):
        from factorkit.distributed._dsgd import DSGDTrainer

        return DSGDTrainer(model, data, exchange)
    raise InvalidParameterError(
        f"fit: {type(model).__name__} has no distributed trainer; the distributed backend "
        "fits ALS, ImplicitALS and BiasedMF. Collect smaller data to one machine "
        "(fk.Interactions) for the other models."
    )


def fit(
    model: Any,
    data: DistributedInteractions,
    validation: Any = None,
    *,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    exchange: str = "auto",
) -> Any:
    """Fit ``model`` (ALS, ImplicitALS or BiasedMF) on distributed data; returns ``model``.

    ALS and ImplicitALS run block ALS with factorkit's own kernels on the workers and give
    the same factors as a one-machine fit with the same ``random_state`` (to float
    rounding); BiasedMF runs stratified distributed SGD (DSGD).

    Parameters
    ----------
    model : ALS, ImplicitALS or BiasedMF
        An estimator; its parameters are validated as in ``model.fit``.
    data : DistributedInteractions
    validation : Interactions, optional
        Held-out interactions (in memory) scored after every epoch, as in ``model.fit``.
    checkpoint_dir : path, optional
        After every epoch the state is written there atomically (``factorkit-checkpoint.npz``).
    resume : bool, default False
        Continue from the checkpoint in ``checkpoint_dir`` when there is one (it must come
        from the same estimator, parameters and data).
    exchange : {"auto", "broadcast", "routed"}
        How the other side's factors reach the blocks each half-step: a copy scattered by
        the client to every worker, or Spark's out-blocks (each block gets only the rows
        it references, worker to worker; the same factors bit for bit). ``"auto"``
        broadcasts while a copy takes at most ``BROADCAST_LIMIT_BYTES`` and a quarter of
        a worker's ``memory_limit``; see ``docs/distributed.md``.

    Returns
    -------
    model
        Fitted: ``user_factors_``, ``item_factors_``, biases, ``user_map_``/``item_map_``,
        ``history_`` and the seen items, as after a local fit.
    """
    if not isinstance(data, DistributedInteractions):
        raise DataError(
            f"fit: data must be a DistributedInteractions; got {type(data).__name__}. Build "
            "it with fk.distributed.read_parquet / read_csv / from_dask."
        )
    if exchange not in _EXCHANGES:
        raise InvalidParameterError(
            f"fit: exchange must be one of {list(_EXCHANGES)}; got {exchange!r}"
        )
    if resume and checkpoint_dir is None:
        raise InvalidParameterError(
            "fit: resume=True needs checkpoint_dir=<the directory of an earlier fit>"
        )
    model._validate_params()
    if isinstance(model, ImplicitALS) and data.rating_scale[0] < 0:
        raise DataError(
            f"ImplicitALS.fit: {data.source} holds the value {data.rating_scale[0]:g}; "
            "implicit feedback must be >= 0 (counts, clicks, play time). Drop or rescale "
            "negative values."
        )
    trainer = _trainer(model, data, exchange)
    if hasattr(trainer, "check_memory"):
        trainer.check_memory()
    rng = np.random.default_rng(model.random_state)
    state = trainer.init_state(rng, normal_factors)
    fingerprint = _fingerprint(model, data)
    history: list[dict[str, Any]] = []
    path = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_NAME
    if resume and path is not None and path.exists():
        state, history, rng_state = _load_checkpoint(path, fingerprint, state)
        rng.bit_generator.state = rng_state
    if hasattr(trainer, "set_rng"):
        trainer.set_rng(rng)
    seen = data.seen()
    _set_fitted(model, data, state, seen)
    best_epoch = _loop(model, trainer, state, history, rng, path, fingerprint, validation)
    _set_fitted(model, data, state, seen)
    frame = pd.DataFrame(history)
    frame.attrs["best_epoch"] = best_epoch
    model.history_ = frame
    return model


def _loop(
    model: Any,
    trainer: Any,
    state: dict[str, np.ndarray],
    history: list[dict[str, Any]],
    rng: np.random.Generator,
    path: Path | None,
    fingerprint: dict[str, Any],
    validation: Any,
) -> int:
    """Run the remaining epochs, appending to ``history``; returns the best epoch (the
    last one without validation). With ``early_stopping`` the best epoch's state is put
    back into ``state`` at the end, as the one-machine loop does."""
    from tqdm.auto import tqdm

    callbacks = model.callbacks
    callbacks = [] if callbacks is None else [callbacks] if callable(callbacks) else callbacks
    patience = _patience(model, validation)
    best_score, best_epoch, best_state, waited = math.inf, len(history), None, 0
    start = time.perf_counter() - (history[-1]["elapsed"] if history else 0.0)
    bar = tqdm(
        total=int(model.epochs),
        initial=len(history),
        desc=f"{type(model).__name__} distributed fit",
        unit="epoch",
        disable=not getattr(model, "progress", False),
        leave=False,
    )
    try:
        for epoch in range(len(history), int(model.epochs)):
            t0 = time.perf_counter()
            loss = _epoch_with_retries(trainer, state, epoch)
            if not math.isfinite(loss) or not all(np.isfinite(state[n][:64]).all() for n in state):
                hint = "learning_rate" if isinstance(model, BiasedMF) else "regularization"
                raise DivergenceError(
                    f"{type(model).__name__} training diverged at epoch {epoch + 1} (loss is "
                    f"{loss}); lower {hint} (now {getattr(model, hint)})"
                )
            record: dict[str, Any] = {"epoch": epoch + 1, "loss": loss}
            _set_factors(model, state)
            if validation is not None:
                name, score = _validate(model, validation)
                record[name] = score
                if score < best_score - 1e-12:
                    best_score, best_epoch, waited = score, epoch + 1, 0
                    if patience is not None:
                        best_state = {n: a.copy() for n, a in state.items()}
                else:
                    waited += 1
            else:
                best_epoch = epoch + 1
            record["epoch_seconds"] = time.perf_counter() - t0
            record["bytes_sent"] = int(trainer.bytes_sent)
            record["bytes_exchanged"] = int(getattr(trainer, "bytes_exchanged", 0))
            record["bytes_received"] = int(getattr(trainer, "bytes_received", 0))
            record["task_seconds"] = float(getattr(trainer, "task_seconds", float("nan")))
            record["elapsed"] = time.perf_counter() - start
            history.append(record)
            bar.update(1)
            if path is not None:
                _save_checkpoint(path, state, history, rng, fingerprint)
            stops = [cb({**record, "model": model}) is True for cb in list(callbacks)]
            if any(stops) or (patience is not None and waited >= patience):
                break
    finally:
        bar.close()
    if best_state is not None and best_epoch != history[-1]["epoch"]:
        for name, arr in best_state.items():
            state[name][...] = arr
    return best_epoch


def _patience(model: Any, validation: Any) -> int | None:
    es = getattr(model, "early_stopping", None)
    if es is None or es is False:
        return None
    if validation is None:
        raise InvalidParameterError(
            f"{type(model).__name__}: early_stopping={es!r} needs validation data; call "
            "fk.distributed.fit(model, train, validation=valid) or set early_stopping=None"
        )
    return 3 if es is True else int(es)


def _epoch_with_retries(trainer: Any, state: dict[str, np.ndarray], epoch: int) -> float:
    """One epoch; when the cluster drops a connection or cancels work (a worker died at a
    bad moment, e.g. during a broadcast), the epoch is rerun from its starting state, up
    to :data:`MAX_EPOCH_RETRIES` times. Tasks lost with a worker mid-step need no rerun:
    Dask recomputes them. A worker dying in two tries in a row is not bad luck but a task
    that does not fit (the nanny kills it at its memory limit): that ends the fit with a
    ClusterError naming the step, the blocks the lost workers ran and the fix."""
    from distributed import CancelledError

    snapshot = {name: arr.copy() for name, arr in state.items()}
    died = 0
    for attempt in range(MAX_EPOCH_RETRIES + 1):
        before = _workers_now(trainer.client)
        try:
            return float(trainer.epoch(state, epoch))
        except (OSError, CancelledError) as exc:
            lost = sorted(before - _workers_now(trainer.client))
            died = died + 1 if lost else 0
            if died >= 2:
                raise _workers_keep_dying(trainer, epoch, lost) from None
            if attempt == MAX_EPOCH_RETRIES:
                raise ClusterError(
                    f"epoch {epoch + 1} failed {MAX_EPOCH_RETRIES + 1} times on the cluster at "
                    f"{trainer.client.scheduler.address} (last: {type(exc).__name__}: {exc}); "
                    "check the workers' logs. With checkpoint_dir= set, fit(..., resume=True) "
                    "continues from the last completed epoch."
                ) from None
            for name, arr in snapshot.items():
                state[name][...] = arr
            if hasattr(trainer, "reset"):  # factors held on the workers may be lost
                trainer.reset()
            time.sleep(RETRY_PAUSE_SECONDS)  # let the scheduler notice the lost worker
            trainer.data.workers = worker_addresses(trainer.client, trainer.data.timeout)
    raise AssertionError("unreachable")  # pragma: no cover


def _workers_now(client: Any) -> set[str]:
    return set(client.scheduler_info(n_workers=-1).get("workers", {}))


def _workers_keep_dying(trainer: Any, epoch: int, lost: list[str]) -> ClusterError:
    from factorkit.distributed._cluster import MEMORY_FIX, memory_phrase

    step = getattr(trainer, "step", None) or "the exchange"
    running = getattr(trainer, "step_blocks", None) or {}
    named = [label for worker, label in running if worker in lost] or [
        label for _, label in running
    ]
    tasks = f"; the lost workers ran {'; '.join(named)}" if named else ""
    return ClusterError(
        f"epoch {epoch + 1}: workers died in two tries in a row during {step} (lost "
        f"{', '.join(lost)}){tasks}; {memory_phrase(trainer.client)}. A worker dies like "
        f"this when one task needs more memory than it may use. {MEMORY_FIX}"
    )


def _validate(model: Any, validation: Any) -> tuple[str, float]:
    """The one-machine fit's validation score (lower is better) and its history name."""
    from factorkit.evaluation import evaluate

    if isinstance(model, ImplicitALS):
        ndcg = evaluate(model, validation, metrics=["ndcg@20"])["ndcg@20"]
        return "val_ndcg_loss", 1.0 - ndcg
    return "val_rmse", evaluate(model, validation, metrics=["rmse"])["rmse"]


def _set_factors(model: Any, state: dict[str, np.ndarray]) -> None:
    for name, arr in state.items():
        setattr(model, name, arr)
    if not hasattr(model, "user_bias_") or len(model.user_bias_) != len(model.user_factors_):
        model.user_bias_ = np.zeros(len(model.user_factors_), dtype=np.float32)
        model.item_bias_ = np.zeros(len(model.item_factors_), dtype=np.float32)


def _set_fitted(
    model: Any,
    data: DistributedInteractions,
    state: dict[str, np.ndarray],
    seen: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """The fitted attributes a local fit sets: through the estimators' public
    ``set_state`` where they have it, else (older estimators) attribute by attribute."""
    from factorkit._threads import resolve_threads

    full: dict[str, Any] = {
        "user_ids": np.asarray(data.user_map.ids),
        "item_ids": np.asarray(data.item_map.ids),
        "seen_indptr_": seen[0],
        "seen_indices_": seen[1],
        "seen_values_": seen[2],
        "also_seen_indptr_": None,
        "also_seen_indices_": None,
        "rating_scale_": tuple(float(x) for x in data.rating_scale),
        "global_mean_": 0.0 if isinstance(model, ImplicitALS) else float(data.global_mean),
        **state,
    }
    if not any(n in state for n in ("user_bias_", "item_bias_")):
        full["user_bias_"] = np.zeros(len(state["user_factors_"]), dtype=np.float32)
        full["item_bias_"] = np.zeros(len(state["item_factors_"]), dtype=np.float32)
    if hasattr(model, "set_state") and hasattr(model, "state_names"):
        names = model.state_names()
        allowed = {"user_ids", "item_ids", *names["arrays"], *names["scalars"]}
        model.set_state({k: v for k, v in full.items() if k in allowed})
        return
    model.user_map_ = data.user_map
    model.item_map_ = data.item_map
    model.seen_indptr_, model.seen_indices_ = seen[0], seen[1]
    model.rating_scale_ = full["rating_scale_"]
    model.global_mean_ = full["global_mean_"]
    model._title_source = None
    model._item_titles = None
    model._n_threads = resolve_threads(getattr(model, "n_threads", None))
    if isinstance(model, ImplicitALS):
        model._item_gram = None
    _set_factors(model, state)


# ---------------------------------------------------------------------- checkpoints
def _fingerprint(model: Any, data: DistributedInteractions) -> dict[str, Any]:
    params = {
        k: v
        for k, v in model.get_params().items()
        if k not in ("epochs", "progress", "callbacks", "n_threads", "early_stopping")
    }
    return {
        "estimator": type(model).__name__,
        "params": json.loads(json.dumps(params, default=repr)),
        "shape": [data.n_users, data.n_items, data.nnz],
    }


def _save_checkpoint(
    path: Path,
    state: dict[str, np.ndarray],
    history: list[dict[str, Any]],
    rng: np.random.Generator,
    fingerprint: dict[str, Any],
) -> None:
    """Write the state after an epoch: to a temporary file, then renamed over the last
    checkpoint (atomic on POSIX), so a crash mid-write leaves the previous one intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "fingerprint": fingerprint,
        "history": history,
        "rng": rng.bit_generator.state,
    }
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        np.savez(fh, __meta__=np.array(json.dumps(meta, default=_json_default)), **state)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    return repr(x)


def _load_checkpoint(
    path: Path, fingerprint: dict[str, Any], template: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]], dict]:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["__meta__"]))
            state = {name: np.array(z[name]) for name in template}
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFormatError(
            f"fit(resume=True): cannot read the checkpoint {path} ({exc}); delete it to "
            "start afresh"
        ) from None
    if meta["fingerprint"] != fingerprint:
        raise ModelFormatError(
            f"fit(resume=True): the checkpoint {path} was written by "
            f"{meta['fingerprint']['estimator']} with {meta['fingerprint']['params']} on "
            f"data of shape {meta['fingerprint']['shape']}; this fit is {fingerprint['estimator']} "
            f"with {fingerprint['params']} on {fingerprint['shape']}. Use another "
            "checkpoint_dir, or delete the checkpoint to start afresh."
        )
    for name, arr in template.items():
        if state[name].shape != arr.shape:
            raise ModelFormatError(
                f"fit(resume=True): {name} in {path} has shape {state[name].shape}, "
                f"expected {arr.shape}; delete the checkpoint to start afresh"
            )
    return state, meta["history"], meta["rng"]
