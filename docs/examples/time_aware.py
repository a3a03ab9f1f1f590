"""Time-aware modelling on the shipped MovieLens small data (docs/time.md).

Writes the page's figures (``time_drift.png``, ``time_rmse.png``, ``time_decay.png``)
into the output folder (default: the current directory) and prints the numbers the page
quotes, the last table being time-decayed ``sample_weight`` on the temporal cut.

Run: python docs/examples/time_aware.py [OUT_DIR] [--quick]

``--quick`` (for the test suite) uses one fold and fewer epochs; the page's numbers come
from the full run.
"""

import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import factorkit as fk
from factorkit.exceptions import DataWarning

args = [a for a in sys.argv[1:] if not a.startswith("--")]
quick = "--quick" in sys.argv
out = Path(args[0] if args else ".")
out.mkdir(parents=True, exist_ok=True)
warnings.simplefilter("ignore", DataWarning)  # fallbacks for users new after the cut
epochs = {"epochs": 3} if quick else {}

data = fk.datasets.load_movielens_small()
print(data)

# 1. Ratings drift: the mean rating and the number of ratings per year ------------------
frame = data.to_pandas()
year = pd.to_datetime(frame["timestamp"], unit="s").dt.year
by_year = frame.groupby(year)["rating"].agg(["mean", "size"])
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.bar(by_year.index, by_year["size"], color="#c8d3e0", label="ratings")
ax.set_ylabel("ratings per year")
ax2 = ax.twinx()
ax2.plot(by_year.index, by_year["mean"], "o-", color="#b33", label="mean rating")
ax2.set_ylabel("mean rating")
ax.set_title("MovieLens small: volume and mean rating per year")
fig.tight_layout()
fig.savefig(out / "time_drift.png", dpi=120)
print(
    f"mean rating by year: {by_year['mean'].min():.2f} .. {by_year['mean'].max():.2f} "
    f"({by_year['mean'].idxmin()} .. {by_year['mean'].idxmax()})"
)
sessions = frame.assign(day=frame["timestamp"] // 86400).groupby("user")["day"].nunique()
print(f"users rating on a single day: {(sessions == 1).mean():.0%}")

# 2. Accuracy: 5-fold CV and a temporal cut ---------------------------------------------
models = {
    "BaselineOnly": lambda: fk.BaselineOnly(),  # for reference: biases only
    "BiasedMF": lambda: fk.BiasedMF(random_state=0, **epochs),
    "SVDpp": lambda: fk.SVDpp(random_state=0, **epochs),
    "TimeSVDpp": lambda: fk.TimeSVDpp(random_state=0, **epochs),
}
folds = list(fk.split.kfold(data, k=5, random_state=0))[: 1 if quick else 5]
cv = {
    name: np.mean([fk.evaluate(make().fit(tr), te, metrics=["rmse"])["rmse"] for tr, te in folds])
    for name, make in models.items()
}
train, test = fk.split.temporal(data, test_size=0.2)
known = fk.split.temporal(data, test_size=0.2, drop_unknown=True)[1]
temporal, temporal_known = {}, {}
for name, make in models.items():
    model = make().fit(train)
    temporal[name] = fk.evaluate(model, test, metrics=["rmse"])["rmse"]
    temporal_known[name] = fk.evaluate(model, known, metrics=["rmse"])["rmse"]
table = pd.DataFrame(
    {
        f"{len(folds)}-fold CV": cv,
        "temporal cut,\nall test ratings": temporal,
        "temporal cut,\nknown users and items": temporal_known,
    }
)
print(table.rename(columns=lambda c: c.replace("\n", " ")).round(4).to_string())
fig, ax = plt.subplots(figsize=(7, 3.2))
table.T.plot.bar(ax=ax, rot=0, color=["#ccc", "#9ab", "#68a", "#b33"])
ax.set_ylim(0.8, 1.05)
ax.set_ylabel("RMSE (lower is better)")
ax.set_title("MovieLens small: rating error by protocol")
fig.tight_layout()
fig.savefig(out / "time_rmse.png", dpi=120)

# 3. Time decay: weights by age for two half-lives --------------------------------------
days = (data.timestamps.max() - data.timestamps) / 86400
fig, ax = plt.subplots(figsize=(7, 3.2))
order = np.argsort(days)
for half_life in ("180d", "2y"):
    w = fk.time_decay(data, half_life=half_life)
    ax.plot(days[order] / 365.25, w[order], label=f"half_life={half_life!r}")
    share = (w >= 0.5).mean()
    print(f"time_decay {half_life}: mean weight {w.mean():.3f}, weight >= 0.5: {share:.1%}")
ax.set_xlabel("age of the rating (years before the latest one)")
ax.set_ylabel("weight")
ax.legend()
ax.set_title("fk.time_decay on MovieLens small")
fig.tight_layout()
fig.savefig(out / "time_decay.png", dpi=120)

# 4. Time decay as sample_weight: a temporal cut with and without decayed weights --------
# time_decay(train, ...) counts from the latest training rating, so weights are <= 1
half_lives = ("5y",) if quick else ("2y", "5y", "10y")
# SGD steps are lr * w long: "w / mean" rescales the weights to mean 1 (same step size)
weighted_models = {
    "ALS": (lambda: fk.ALS(random_state=0, **epochs), False),
    "BiasedMF": (lambda: fk.BiasedMF(random_state=0, **epochs), False),
    "BiasedMF, w / mean": (lambda: fk.BiasedMF(random_state=0, **epochs), True),
}
rows = {}
for name, (make, rescale) in weighted_models.items():
    for half_life in (*(() if rescale else (None,)), *half_lives):
        w = None if half_life is None else fk.time_decay(train, half_life=half_life)
        if rescale:
            w = w / w.mean()
        model = make().fit(train, sample_weight=w)
        rows[(name, half_life or "none")] = {
            "all test ratings": fk.evaluate(model, test, metrics=["rmse"])["rmse"],
            "known users and items": fk.evaluate(model, known, metrics=["rmse"])["rmse"],
        }
weighted = pd.DataFrame(rows).T.rename_axis(["model", "half_life"])
print("sample_weight=time_decay(train, half_life), temporal cut RMSE:")
print(weighted.round(4).to_string())
print("figures written to", out)
