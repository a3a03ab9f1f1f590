"""The Trainer protocol and the one epoch loop every iterative model runs.

A model's ``fit`` prepares its data and fitted arrays, builds a :class:`Trainer` and
hands it to :func:`run_trainer`. The loop (:func:`train_epochs`) owns everything that is
the same for every model: progress bar, callbacks, validation scoring, early stopping
(keeping the best epoch's state) and divergence checks. The trainer owns the algorithm:

``setup()``
    Called once before the first epoch (allocate scratch, start workers).
``epoch(epoch) -> float``
    Train one epoch (``epoch`` counts from 0) and return the training loss.
``validate() -> float``
    The validation metric (lower is better); only called when ``has_validation``.
``finalize()``
    Called once after the last epoch (trim padding, release workers, gather state).

Attributes read by the loop: ``model`` (the estimator: its ``epochs``, ``callbacks``,
``early_stopping``, ``progress``), ``state_names`` (fitted arrays snapshotted at the best
epoch and checked for divergence), ``metric`` (validation column ``val_<metric>``),
``diverge_hint`` (the parameter to lower when training diverges) and ``n_threads``
(threads the loop runs under, :func:`factorkit._threads.using_threads`; None leaves the
thread settings alone). A distributed trainer implements the same four methods, so it
replaces the local one without touching the model class.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit._lazy import tqdm
from factorkit._threads import using_threads
from factorkit.exceptions import DivergenceError, InvalidParameterError

__all__ = [
    "HistoryAttribute",
    "PendingHistory",
    "Trainer",
    "fit_trainer",
    "run_trainer",
    "train_epochs",
]


class Trainer:
    """Base of the trainers: one model's algorithm, driven by :func:`run_trainer`.

    Subclasses implement :meth:`epoch` and override the other hooks as needed (see the
    module docstring for the protocol).

    Examples
    --------
    >>> import factorkit as fk
    >>> class Halve(Trainer):
    ...     state_names = ("x_",)
    ...     def epoch(self, epoch):
    ...         self.model.x_ = self.model.x_ / 2
    ...         return float(self.model.x_.sum())
    >>> model = fk.BaselineOnly(epochs=3)
    >>> model.x_ = np.ones(2)
    >>> run_trainer(Halve(model), epochs=3)["loss"].tolist()
    [1.0, 0.5, 0.25]
    """

    state_names: Sequence[str] = ()
    metric: str = "rmse"
    diverge_hint: str = "learning_rate"
    n_threads: int | None = None
    has_validation: bool = False

    def __init__(self, model: Any) -> None:
        self.model = model

    def setup(self) -> None:
        """Prepare for the first epoch."""

    def epoch(self, epoch: int) -> float:
        """Train epoch ``epoch`` (from 0); return the training loss."""
        raise NotImplementedError

    def validate(self) -> float:
        """The validation metric after the current epoch (lower is better)."""
        raise NotImplementedError

    def finalize(self) -> None:
        """Clean up after the last epoch."""


def run_trainer(trainer: Trainer, epochs: int) -> pd.DataFrame:
    """Run ``trainer`` for up to ``epochs`` epochs; returns the history DataFrame."""
    return fit_trainer(trainer, epochs).frame()


def fit_trainer(trainer: Trainer, epochs: int) -> PendingHistory:
    """:func:`run_trainer` for a model's ``fit``: the history stays records until
    ``history_`` is first read (:class:`HistoryAttribute`), so a fit never imports
    pandas."""
    trainer.setup()
    threads = trainer.n_threads
    with using_threads(threads) if threads is not None else contextlib.nullcontext():
        history = _train_epochs(
            trainer.model,
            epochs=epochs,
            step=trainer.epoch,
            state_names=trainer.state_names,
            validate=trainer.validate if trainer.has_validation else None,
            metric=trainer.metric,
            diverge_hint=trainer.diverge_hint,
        )
    trainer.finalize()
    return history


class PendingHistory:
    """A fit's history as records (one dict per epoch) and its best epoch; ``frame()``
    is the ``history_`` DataFrame (``attrs["best_epoch"]`` set)."""

    __slots__ = ("best_epoch", "records")

    def __init__(self, records: list[dict[str, Any]], best_epoch: int) -> None:
        self.records = records
        self.best_epoch = best_epoch

    def __len__(self) -> int:
        return len(self.records)

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.records)
        frame.attrs["best_epoch"] = self.best_epoch
        return frame


class HistoryAttribute:
    """The ``history_`` attribute of a model: a :class:`PendingHistory` stored by a fit
    becomes its DataFrame on first read (then kept); anything else is stored as is."""

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        try:
            value = obj.__dict__["history_"]
        except KeyError:
            raise AttributeError(
                f"{type(obj).__name__!r} object has no attribute 'history_'"
            ) from None
        if isinstance(value, PendingHistory):
            value = obj.__dict__["history_"] = value.frame()
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__["history_"] = value

    def __delete__(self, obj: Any) -> None:
        try:
            del obj.__dict__["history_"]
        except KeyError:
            raise AttributeError("history_") from None


def train_epochs(
    model: Any,
    *,
    epochs: int,
    step: Callable[[int], float],
    state_names: Sequence[str],
    validate: Callable[[], float] | None = None,
    metric: str = "rmse",
    diverge_hint: str = "learning_rate",
) -> pd.DataFrame:
    """Run ``epochs`` calls of ``step`` and return the history as a DataFrame.

    ``step(epoch)`` trains one epoch and returns the training loss. ``validate()`` returns
    the validation metric (lower is better) or is None. ``state_names`` are the fitted
    array attributes snapshotted at the best epoch when ``model.early_stopping`` is set.

    Each callback in ``model.callbacks`` is called as ``callback(record)`` after every
    epoch with a dict holding ``epoch``, ``loss``, ``val_<metric>`` (with validation),
    ``elapsed`` (seconds since the start) and ``model``; a callback returning True stops
    training after that epoch.
    """
    return _train_epochs(
        model, epochs=epochs, step=step, state_names=state_names, validate=validate,
        metric=metric, diverge_hint=diverge_hint,
    ).frame()  # fmt: skip


def _train_epochs(
    model: Any,
    *,
    epochs: int,
    step: Callable[[int], float],
    state_names: Sequence[str],
    validate: Callable[[], float] | None = None,
    metric: str = "rmse",
    diverge_hint: str = "learning_rate",
) -> PendingHistory:
    """:func:`train_epochs` returning the history as records."""
    callbacks = _as_callbacks(model.callbacks)
    patience = _patience(model, validate)
    history: list[dict[str, Any]] = []
    best_score, best_epoch, best_state, waited = math.inf, 0, None, 0
    start = time.perf_counter()
    bar = tqdm(
        total=epochs,
        desc=f"{type(model).__name__} fit",
        unit="epoch",
        disable=not getattr(model, "progress", False),
        leave=False,
    )
    try:
        for epoch in range(epochs):
            loss = float(step(epoch))
            if not math.isfinite(loss) or not _states_finite(model, state_names):
                value = getattr(model, diverge_hint, None)
                now = f" (now {value})" if value is not None else ""
                raise DivergenceError(
                    f"{type(model).__name__} training diverged at epoch {epoch + 1} "
                    f"(loss is {loss}); lower {diverge_hint}{now}"
                )
            record: dict[str, Any] = {"epoch": epoch + 1, "loss": loss}
            if validate is not None:
                score = float(validate())
                record[f"val_{metric}"] = score
                if score < best_score - 1e-12:
                    best_score, best_epoch, waited = score, epoch + 1, 0
                    if patience is not None:
                        best_state = {
                            n: np.array(getattr(model, n), copy=True) for n in state_names
                        }
                else:
                    waited += 1
            record["elapsed"] = time.perf_counter() - start
            history.append(record)
            bar.update(1)
            bar.set_postfix(
                {k: f"{v:.4f}" for k, v in record.items() if k.startswith(("loss", "val_"))}
            )
            stop = False
            for cb in callbacks:
                if cb({**record, "model": model}) is True:
                    stop = True
            if stop or (patience is not None and waited >= patience):
                break
    finally:
        bar.close()
    if best_state is not None and best_epoch != history[-1]["epoch"]:
        for name, arr in best_state.items():
            setattr(model, name, arr)
    return PendingHistory(history, best_epoch if validate is not None else len(history))


def _as_callbacks(callbacks: Any) -> list[Callable]:
    if callbacks is None:
        return []
    if callable(callbacks):
        return [callbacks]
    return list(callbacks)


def _patience(model: Any, validate: Callable | None) -> int | None:
    es = getattr(model, "early_stopping", None)
    if es is None or es is False:
        return None
    patience = 3 if es is True else int(es)
    if validate is None:
        raise InvalidParameterError(
            f"{type(model).__name__}: early_stopping={es!r} needs validation data; call "
            "fit(train, validation=valid) or set early_stopping=None"
        )
    return patience


def _states_finite(model: Any, names: Sequence[str]) -> bool:
    for name in names:
        arr = getattr(model, name, None)
        if arr is not None and arr.size and not np.isfinite(arr[: min(len(arr), 64)]).all():
            return False
    return True
