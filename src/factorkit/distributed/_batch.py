"""Batch work on the workers with a fitted model: recommend for everyone, evaluate on
distributed test data, and Spark-style factor tables.

The fitted model is scattered to every worker once per call (its factors, vocabularies
and seen items travel together); each task then uses the model's own public methods
(``recommend``, ``predict``) and :func:`factorkit.evaluate` on its share, so the results
are those of the same calls on one machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit.distributed._cluster import DEFAULT_TIMEOUT, get_client, wait_all
from factorkit.distributed._data import Block, DistributedInteractions
from factorkit.exceptions import InvalidParameterError

__all__ = [
    "evaluate",
    "item_factors_frame",
    "recommend_all",
    "recommend_all_items",
    "user_factors_frame",
]

#: users (or items) per task in the batch jobs
_CHUNK = 20_000


def _check_k(k: Any, where: str) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidParameterError(f"{where}: k must be an int >= 1; got {k!r}")
    return int(k)


def _write(frame: pd.DataFrame, path: str | None, part: int) -> Any:
    if path is None:
        return frame
    out = Path(path) / f"part-{part:05d}.parquet"
    tmp = out.with_name(out.name + ".tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, out)  # a rerun task (lost worker) overwrites, never half-writes
    return len(frame)


def _recommend_chunk(
    model: Any, users: np.ndarray, k: int, exclude_seen: bool, path: str | None, part: int
) -> Any:
    items, scores = model.recommend(users, k=k, exclude_seen=exclude_seen)
    n = items.shape[1]
    ok = ~np.isnan(scores)
    frame = pd.DataFrame(
        {
            "user": np.repeat(users, n)[ok.ravel()],
            "item": items[ok],
            "score": scores[ok],
            "rank": np.tile(np.arange(1, n + 1, dtype=np.int32), len(users))[ok.ravel()],
        }
    )
    return _write(frame, path, part)


def _top_users_chunk(model: Any, items: np.ndarray, k: int, path: str | None, part: int) -> Any:
    pos = model.item_map_.to_index(items)
    users = model.user_factors_
    scores = model.item_factors_[pos] @ users.T
    if get_explicit(model):
        scores += model.user_bias_[None, :]
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    best = np.take_along_axis(part_scores, order, axis=1)
    if get_explicit(model):
        best = best + (model.global_mean_ + model.item_bias_[pos])[:, None]
    frame = pd.DataFrame(
        {
            "item": np.repeat(items, k),
            "user": model.user_map_.ids[top.ravel()],
            "score": best.ravel().astype(np.float32),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), len(items)),
        }
    )
    return _write(frame, path, part)


def get_explicit(model: Any) -> bool:
    from factorkit.base import get_tags

    return get_tags(model).explicit


def _run_chunks(
    fn: Any,
    model: Any,
    ids: np.ndarray,
    args: tuple,
    path: Any,
    client: Any,
    timeout: float,
    what: str,
) -> Any:
    client = get_client(client)
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        path = str(path)
    model_f = client.scatter(model, broadcast=True, hash=False)  # the factors, once
    futs = [
        client.submit(fn, model_f, ids[lo : lo + _CHUNK], *args, path, j, pure=False)
        for j, lo in enumerate(range(0, len(ids), _CHUNK))
    ]
    parts = wait_all(futs, timeout, what, client)
    if path is not None:
        return int(sum(parts))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def recommend_all(
    model: Any,
    k: int = 10,
    path: str | os.PathLike | None = None,
    *,
    users: Any = None,
    exclude_seen: bool = True,
    client: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Any:
    """Top-``k`` items for every user (Spark's ``recommendForAllUsers``), on the workers.

    Parameters
    ----------
    model : fitted recommender
    k : int
    path : directory, optional
        Write ``part-*.parquet`` files there (columns ``user``, ``item``, ``score``,
        ``rank``) and return the number of rows written; without it the rows come back as
        one pandas DataFrame.
    users : array-like of raw ids or DistributedInteractions, optional
        Only these users (``recommendForUserSubset``); ids unknown to the model are left
        out. Default: every training user.
    exclude_seen : bool
        Leave out each user's training items.
    client, timeout : see :func:`factorkit.distributed.from_dask`.
    """
    model._check_fitted("recommend_all")
    k = _check_k(k, "recommend_all")
    if users is None:
        ids = np.asarray(model.user_map_.ids)
    else:
        raw = users.user_map.ids if isinstance(users, DistributedInteractions) else users
        ids = np.asarray(raw)
        ids = ids[model.user_map_.lookup(ids) >= 0]
    return _run_chunks(
        _recommend_chunk,
        model,
        ids,
        (k, bool(exclude_seen)),
        path,
        client,
        timeout,
        "recommend_all",
    )


def recommend_all_items(
    model: Any,
    k: int = 10,
    path: str | os.PathLike | None = None,
    *,
    client: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Any:
    """Top-``k`` users for every item (Spark's ``recommendForAllItems``), on the workers.

    Scores are the model's ranking scores of (user, item); columns ``item``, ``user``,
    ``score``, ``rank``. ``path`` as in :func:`recommend_all`.
    """
    model._check_fitted("recommend_all_items")
    k = _check_k(k, "recommend_all_items")
    ids = np.asarray(model.item_map_.ids)
    return _run_chunks(
        _top_users_chunk, model, ids, (k,), path, client, timeout, "recommend_all_items"
    )


def _eval_block(
    model: Any,
    block: Block,
    user_vocab: np.ndarray,
    item_vocab: np.ndarray,
    rating: list[str],
    ranking: list[str],
    relevance_threshold: float | None,
) -> dict[str, Any]:
    from factorkit import Interactions
    from factorkit.evaluation import evaluate as local_evaluate

    if block.nnz == 0:
        return {"n": 0}
    rows = np.repeat(np.arange(block.lo, block.hi), np.diff(block.indptr))
    users = user_vocab[rows]
    items = item_vocab[block.cols[block.indices]]
    out: dict[str, Any] = {"n": block.nnz}
    if rating:
        err = model.predict(users, items) - block.values.astype(np.float64)
        out["se"] = float(err @ err)
        out["ae"] = float(np.abs(err).sum())
    if ranking:
        test = Interactions.from_arrays(users, items, block.values)
        _, frame = local_evaluate(
            model, test, ranking, relevance_threshold=relevance_threshold, per_user=True
        )
        for name in ranking:
            if name not in frame:
                raise InvalidParameterError(
                    f"evaluate: {name!r} is not a per-user metric, so it cannot be summed "
                    "over blocks; evaluate it on one machine"
                )
            col = frame[name].to_numpy(dtype=np.float64)
            out[name] = (float(np.nansum(col)), int(np.isfinite(col).sum()))
    return out


def evaluate(
    model: Any,
    test: DistributedInteractions,
    metrics: Any = ("rmse", "mae"),
    *,
    relevance_threshold: float | None = None,
    timeout: float | None = None,
) -> dict[str, float]:
    """:func:`factorkit.evaluate` over distributed test data, one task per user block.

    Rating metrics (``rmse``, ``mae``) are summed over interactions and ranking metrics
    (``ndcg@k``, ``recall@k``, ...) over users; each block holds whole users, so the
    results equal a one-machine evaluate on the same data. Candidates exclude each user's
    training items, as ``fk.evaluate`` does by default.
    """
    from factorkit.evaluation.ranking import parse_metrics

    model._check_fitted("evaluate")
    specs = parse_metrics(metrics)
    rating = [s.name for s in specs if s.is_rating]
    ranking = [s.name for s in specs if not s.is_rating]
    client = test.client
    timeout = test.timeout if timeout is None else float(timeout)
    model_f = client.scatter(model, broadcast=True, hash=False)
    uv = client.scatter(np.asarray(test.user_map.ids), broadcast=True, hash=False)
    iv = client.scatter(np.asarray(test.item_map.ids), broadcast=True, hash=False)
    futs = [
        client.submit(
            _eval_block,
            model_f,
            blk,
            uv,
            iv,
            rating,
            ranking,
            relevance_threshold,
            pure=False,
            workers=[test.worker_of(b)],
            allow_other_workers=True,
        )
        for b, blk in enumerate(test.user_blocks)
    ]
    parts = [p for p in wait_all(futs, timeout, "evaluate", client) if p["n"]]
    n = sum(p["n"] for p in parts)
    out: dict[str, float] = {}
    for s in specs:
        if s.name == "rmse" or (s.is_rating and s.kind == "rmse"):
            out[s.name] = float(np.sqrt(sum(p["se"] for p in parts) / n))
        elif s.is_rating:
            out[s.name] = float(sum(p["ae"] for p in parts) / n)
        else:
            total = sum(p[s.name][0] for p in parts)
            count = sum(p[s.name][1] for p in parts)
            out[s.name] = total / count if count else float("nan")
    return out


def _factors_frame(ids: np.ndarray, factors: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "features": list(np.asarray(factors, dtype=np.float32))})


def user_factors_frame(model: Any) -> pd.DataFrame:
    """Spark's ``model.userFactors``: columns ``id`` (raw user ids) and ``features``."""
    model._check_fitted("user_factors_frame")
    return _factors_frame(model.user_map_.ids, model.user_factors_)


def item_factors_frame(model: Any) -> pd.DataFrame:
    """Spark's ``model.itemFactors``: columns ``id`` (raw item ids) and ``features``."""
    model._check_fitted("item_factors_frame")
    return _factors_frame(model.item_map_.ids, model.item_factors_)
