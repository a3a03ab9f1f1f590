"""The results table of a search (``cv_results_``) and its printable summary."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from factorkit._lazy import pandas as pd

__all__ = ["nanmean", "results_frame", "summary_frame"]


def nanmean(values: Any) -> float:
    """Mean, or nan when any value is not finite (a failed split fails the candidate)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()) if np.isfinite(values).all() else float("nan")


def _record(r: dict[str, Any], names: list[str], metric: str) -> dict[str, Any]:
    rec: dict[str, Any] = {}
    if "iter" in r:
        rec["iter"] = r["iter"]
        rec["n_resources"] = r["n_resources"]
    rec["candidate"] = r["candidate"]
    for k in names:
        rec[f"param_{k}"] = r["params"].get(k, np.nan)
    rec["params"] = r["params"]
    scores = r["scores"]
    for s, v in enumerate(scores):
        rec[f"split{s}_{metric}"] = v
    rec[f"mean_{metric}"] = nanmean(scores)
    rec[f"std_{metric}"] = float(np.std(scores)) if np.isfinite(scores).all() else np.nan
    rec["mean_fit_time"] = float(np.mean(r["fit_times"]))
    rec["std_fit_time"] = float(np.std(r["fit_times"]))
    rec["mean_score_time"] = float(np.mean(r["score_times"]))
    rec["mean_epochs"] = nanmean(r["epochs"])
    return rec


def results_frame(rows: list[dict[str, Any]], metric: str, higher: bool) -> pd.DataFrame:
    """One row per candidate (and round, with halving), ranked by mean score."""
    names: list[str] = []
    for r in rows:
        for k in r["params"]:
            if k not in names:
                names.append(k)
    frame = pd.DataFrame([_record(r, names, metric) for r in rows])
    mean = frame[f"mean_{metric}"]
    score_key = -mean if higher else mean
    if "iter" in frame:
        # later rounds rank first (they survived), then by score; failures last
        order = sorted(
            range(len(frame)),
            key=lambda i: (
                math.isnan(mean.iloc[i]),
                -frame["iter"].iloc[i],
                score_key.iloc[i] if not math.isnan(mean.iloc[i]) else 0.0,
            ),
        )
        rank = np.empty(len(frame), dtype=np.int64)
        rank[order] = np.arange(1, len(frame) + 1)
        frame[f"rank_{metric}"] = rank
    else:
        frame[f"rank_{metric}"] = score_key.rank(method="min", na_option="bottom").astype(np.int64)
    return frame


def summary_frame(
    results: pd.DataFrame, metric: str, resource: str, top: int | None
) -> pd.DataFrame:
    """The ``top`` rows of ``results``, best first, with short column names."""
    res = results.sort_values(f"rank_{metric}", kind="stable")
    if top is not None:
        res = res.head(top)
    cols: dict[str, Any] = {"rank": res[f"rank_{metric}"]}
    for c in ("iter", "n_resources"):
        if c in res:
            cols[c] = res[c]
    for c in res.columns:
        name = c[len("param_") :]
        if c.startswith("param_") and not ("n_resources" in res and name == resource):
            cols[name] = res[c]
    cols[f"mean_{metric}"] = res[f"mean_{metric}"]
    cols[f"std_{metric}"] = res[f"std_{metric}"]
    cols["mean_fit_time"] = res["mean_fit_time"]
    if res["mean_epochs"].notna().any():
        cols["mean_epochs"] = res["mean_epochs"]
    return pd.DataFrame(cols).reset_index(drop=True)
