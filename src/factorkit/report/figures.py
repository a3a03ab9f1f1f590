"""Figure builders for model reports: each ``plot_*`` function returns a matplotlib Figure.

matplotlib is imported only when a figure is built, and figures are created with
``matplotlib.figure.Figure`` on an Agg canvas: no pyplot, no global figure registry and
no change to the interactive backend. Install it with ``pip install 'factorkit[plot]'``.

The data behind the figures comes from small table builders, usable on their own:
:func:`activity_errors` (error by user activity) and :func:`recommendation_popularity`
(how popular the recommended items are); the spectrum and metric-versus-factors tables
come from :mod:`factorkit.evaluation.spectrum`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit.data.interactions import Interactions
from factorkit.exceptions import DataError, FactorkitError, InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "activity_errors",
    "item_map_table",
    "plot_error_by_activity",
    "plot_factors_curve",
    "plot_item_map",
    "plot_learning_curves",
    "plot_recommendation_popularity",
    "plot_search_results",
    "plot_spectrum",
    "recommendation_popularity",
]

MISSING_MATPLOTLIB = "the report needs matplotlib: pip install 'factorkit[plot]'"

_STYLE = {
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "legend.fontsize": 9.5,
    "legend.frameon": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.facecolor": "white",
}
_BLUE, _ORANGE, _GREEN, _GREY = "#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f"


def require_matplotlib() -> Any:
    """Import and return :mod:`matplotlib`, or raise a :class:`FactorkitError` saying how
    to install it.

    Examples
    --------
    >>> from factorkit.report.figures import require_matplotlib
    >>> require_matplotlib().__name__
    'matplotlib'
    """
    try:
        import matplotlib
        from matplotlib.backends import backend_agg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError as exc:
        raise FactorkitError(MISSING_MATPLOTLIB) from exc
    return matplotlib


def _new_figure(width: float, height: float, ncols: int = 1, **subplot_kw: Any):
    """A constrained-layout Figure on an Agg canvas and its axes (styled)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False, **subplot_kw)[0]
    return fig, list(axes)


def _styled(func):
    """Run a figure builder under factorkit's rc style (fonts, grid, spines)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any):
        matplotlib = require_matplotlib()
        with matplotlib.rc_context(_STYLE):
            return func(*args, **kwargs)

    return wrapper


def _lower_is_better(metric: str) -> bool:
    """Direction of a metric column (``val_``/``train_`` prefixes allowed); the training
    ``loss`` falls; a name :func:`factorkit.evaluate` does not know is maximised."""
    from factorkit.evaluation.search import greater_is_better

    name = metric.lower().removeprefix("val_").removeprefix("train_")
    if name == "loss":
        return True
    try:
        return not greater_is_better(name)
    except FactorkitError:  # not a factorkit metric name (e.g. scikit-learn's "score")
        return False


def _metric_label(metric: str) -> str:
    name = metric.removeprefix("val_")
    if name.lower() in ("rmse", "mae"):
        return f"{name.upper()} (rating points)"
    return name


def _shorten(text: str, width: int = 32) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


# ---------------------------------------------------------------------- learning curves
@_styled
def plot_learning_curves(history: Any) -> Figure:
    """Training loss and validation metrics per epoch.

    Parameters
    ----------
    history : pandas.DataFrame or fitted model
        A model's ``history_`` (columns ``epoch``, ``loss``, optional ``val_<metric>``,
        ``elapsed``) or the model itself.

    Returns
    -------
    matplotlib.figure.Figure
        One panel "Training loss", plus one "Validation <metric>" panel when the model
        was fitted with validation data (the best epoch marked).

    Examples
    --------
    >>> import factorkit as fk
    >>> from factorkit.report import plot_learning_curves
    >>> data = fk.datasets.load_movielens_small()
    >>> train, test = fk.split.random(data, random_state=0)
    >>> model = fk.BiasedMF(factors=10, epochs=5, random_state=0).fit(train, validation=test)
    >>> fig = plot_learning_curves(model)
    >>> [ax.get_title() for ax in fig.axes]
    ['Training loss', 'Validation RMSE']
    """
    frame = getattr(history, "history_", history)
    if not isinstance(frame, pd.DataFrame) or "loss" not in frame or len(frame) == 0:
        raise DataError(
            "plot_learning_curves: history must be a fitted model's history_ DataFrame with "
            f"'epoch' and 'loss' columns and at least one row; got {type(frame).__name__}"
        )
    epochs = frame["epoch"] if "epoch" in frame else pd.Series(np.arange(1, len(frame) + 1))
    val_cols = [c for c in frame.columns if c.startswith("val_")]
    fig, axes = _new_figure(10 if val_cols else 6, 3.8, ncols=2 if val_cols else 1)
    ax = axes[0]
    ax.plot(epochs, frame["loss"], marker="o", ms=3, color=_BLUE)
    ax.set_title("Training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training objective (loss)")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
    ax.xaxis.get_major_locator().set_params(integer=True)
    best = frame.attrs.get("best_epoch")
    if val_cols:
        ax = axes[1]
        colors = [_ORANGE, _GREEN, _BLUE, _GREY]
        for n, col in enumerate(val_cols):
            ax.plot(epochs, frame[col], marker="o", ms=3, color=colors[n % 4], label=col[4:])
        name = val_cols[0][4:]
        shown = name.upper() if name.lower() in ("rmse", "mae") else name
        ax.set_title(f"Validation {shown}" if len(val_cols) == 1 else "Validation metrics")
        ax.set_xlabel("epoch")
        ax.set_ylabel(_metric_label(val_cols[0]) if len(val_cols) == 1 else "metric value")
        ax.xaxis.get_major_locator().set_params(integer=True)
        if best:
            ax.axvline(best, color=_GREY, ls="--", lw=1)
            value = float(frame.loc[frame["epoch"] == best, val_cols[0]].iloc[0])
            ax.annotate(
                f"best epoch {best}: {value:.4f}",
                xy=(best, value),
                xytext=(0.97, 0.95),
                textcoords="axes fraction",
                ha="right",
                va="top",
                fontsize=9,
                arrowprops={"arrowstyle": "->", "color": _GREY, "lw": 0.8},
            )
        if len(val_cols) > 1:
            ax.legend()
    return fig


# ---------------------------------------------------------------------- factors curve
@_styled
def plot_factors_curve(curve: pd.DataFrame) -> Figure:
    """Held-out metric (and training metric, when present) versus the number of factors.

    Parameters
    ----------
    curve : pandas.DataFrame
        From :func:`factorkit.evaluation.spectrum.factors_curve`: a ``factors`` column,
        the metric's column and optionally ``train_<metric>`` and ``fit_time``.

    Returns
    -------
    matplotlib.figure.Figure
        Title "<metric> versus number of factors"; the best held-out value is marked.

    Examples
    --------
    >>> import pandas as pd
    >>> from factorkit.report import plot_factors_curve
    >>> curve = pd.DataFrame({"factors": [5, 10, 50], "rmse": [0.90, 0.88, 0.89]})
    >>> ax = plot_factors_curve(curve).axes[0]
    >>> ax.get_xlabel(), ax.get_title()
    ('factors (rank of the model)', 'RMSE versus number of factors')
    """
    metrics = [
        c for c in curve.columns if c not in ("factors", "fit_time") and not c.startswith("train_")
    ]
    if "factors" not in curve or not metrics or len(curve) == 0:
        raise DataError(
            "plot_factors_curve: curve must have a 'factors' column and a metric column, as "
            f"factors_curve() returns; got columns {list(curve.columns)}"
        )
    metric = metrics[0]
    shown = metric.upper() if metric.lower() in ("rmse", "mae") else metric
    curve = curve.sort_values("factors")
    x = curve["factors"].to_numpy()
    fig, (ax,) = _new_figure(7, 4)
    ax.plot(x, curve[metric], marker="o", color=_BLUE, label=f"held-out {metric}")
    train_col = f"train_{metric}"
    if train_col in curve:
        ax.plot(x, curve[train_col], marker="s", ms=4, ls="--", color=_GREY, label="training")
    if x.min() > 0 and x.max() / x.min() >= 8:
        ax.set_xscale("log")
    ax.set_xticks(x, [str(int(v)) for v in x])
    ax.minorticks_off()
    lower = _lower_is_better(metric)
    pos = int(np.nanargmin(curve[metric]) if lower else np.nanargmax(curve[metric]))
    bx, by = x[pos], float(curve[metric].iloc[pos])
    ax.scatter(
        [bx],
        [by],
        s=110,
        facecolor="none",
        edgecolor=_ORANGE,
        lw=2,
        zorder=3,
        label=f"best: {int(bx)} factors, {by:.4f}",
    )
    ax.legend(loc="best", frameon=True, framealpha=0.9)
    ax.margins(y=0.12)
    ax.set_title(f"{shown} versus number of factors")
    ax.set_xlabel("factors (rank of the model)")
    ax.set_ylabel(f"held-out {_metric_label(metric)}")
    return fig


# ---------------------------------------------------------------------- error by activity
_ACTIVITY_EDGES = (1, 6, 11, 21, 51, 101, 201, 501, 1001)


def activity_errors(
    model: Any,
    train: Interactions,
    test: Interactions,
    edges: Sequence[int] = _ACTIVITY_EDGES,
) -> pd.DataFrame:
    """Test RMSE and MAE per bucket of users grouped by their number of training ratings.

    Parameters
    ----------
    model : fitted explicit-rating model
    train, test : Interactions
        The data the model was fitted on, and held-out ratings. Ids are matched by raw
        value, so the two need not share id maps.
    edges : sequence of int
        Increasing lower bounds of the buckets after the first; users with no training
        rating form bucket ``"0"``. The default gives 1-5, 6-10, 11-20, ..., 1001+.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bucket: ``activity`` (label such as ``"21-50"``),
        ``min_train``, ``max_train`` (None for the open last bucket), ``users``,
        ``ratings`` (test ratings), ``rmse`` and ``mae`` (pooled over the bucket's test
        ratings).

    Examples
    --------
    >>> import factorkit as fk
    >>> from factorkit.report import activity_errors
    >>> data = fk.datasets.load_movielens_small()
    >>> train, test = fk.split.random(data, random_state=0)
    >>> table = activity_errors(fk.BaselineOnly().fit(train), train, test)
    >>> list(table.columns)
    ['activity', 'min_train', 'max_train', 'users', 'ratings', 'rmse', 'mae']
    >>> int(table["ratings"].sum()) == len(test)
    True
    """
    for name, value in (("train", train), ("test", test)):
        if not isinstance(value, Interactions):
            raise DataError(
                f"activity_errors: {name} must be an Interactions; got {type(value).__name__}"
            )
    edges = [int(e) for e in edges]
    if not edges or edges[0] < 1 or any(b <= a for a, b in itertools.pairwise(edges)):
        raise InvalidParameterError(
            f"activity_errors: edges must be increasing ints >= 1; got {edges!r}"
        )
    users = test.user_map.ids[test.user_index]
    items = test.item_map.ids[test.item_index]
    err = model.predict(users, items) - test.values.astype(np.float64)
    pos = train.user_map.lookup(test.user_map.ids)
    per_test_user = np.where(pos >= 0, train.user_counts[np.maximum(pos, 0)], 0)
    activity = per_test_user[test.user_index]
    bounds = [0, *edges, np.iinfo(np.int64).max]
    rows = []
    for lo, hi in itertools.pairwise(bounds):
        mask = (activity >= lo) & (activity < hi)
        if not mask.any():
            continue
        top = None if hi == bounds[-1] else hi - 1
        label = "0" if lo == 0 else (f"{lo}+" if top is None else f"{lo}-{top}")
        if top is not None and top == lo:
            label = str(lo)
        e = err[mask]
        rows.append(
            {
                "activity": label,
                "min_train": lo,
                "max_train": top,
                "users": len(np.unique(test.user_index[mask])),
                "ratings": int(mask.sum()),
                "rmse": float(np.sqrt(np.mean(e * e))),
                "mae": float(np.mean(np.abs(e))),
            }
        )
    frame = pd.DataFrame(
        rows, columns=["activity", "min_train", "max_train", "users", "ratings", "rmse", "mae"]
    )
    frame["max_train"] = frame["max_train"].astype("Int64")
    return frame


@_styled
def plot_error_by_activity(table: pd.DataFrame, metric: str = "rmse") -> Figure:
    """Bar chart of test error per bucket of user activity (training ratings per user).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`activity_errors`.
    metric : {"rmse", "mae"}

    Returns
    -------
    matplotlib.figure.Figure
        Title "Error by user activity"; each bar is labelled with its number of users, the
        dashed line is the error over all test ratings.

    Examples
    --------
    >>> import pandas as pd
    >>> from factorkit.report import plot_error_by_activity
    >>> table = pd.DataFrame({"activity": ["1-5", "6-10"], "users": [3, 4],
    ...                       "ratings": [10, 30], "rmse": [1.1, 0.9], "mae": [0.8, 0.7]})
    >>> ax = plot_error_by_activity(table).axes[0]
    >>> ax.get_title(), ax.get_ylabel()
    ('Error by user activity', 'test RMSE (rating points)')
    """
    if metric not in ("rmse", "mae"):
        raise InvalidParameterError(
            f"plot_error_by_activity: metric must be 'rmse' or 'mae'; got {metric!r}"
        )
    if len(table) == 0 or metric not in table:
        raise DataError("plot_error_by_activity: table is empty; build it with activity_errors()")
    fig, (ax,) = _new_figure(8, 4)
    x = np.arange(len(table))
    values = table[metric].to_numpy(dtype=np.float64)
    ax.bar(x, values, color=_BLUE, width=0.7)
    weights = table["ratings"].to_numpy(dtype=np.float64)
    if metric == "rmse":
        overall = math.sqrt(float(np.sum(values**2 * weights) / weights.sum()))
    else:
        overall = float(np.sum(values * weights) / weights.sum())
    ax.axhline(overall, color=_ORANGE, ls="--", lw=1.2, label=f"all users: {overall:.3f}")
    for xi, n in zip(x, table["users"], strict=True):
        ax.annotate(
            f"{int(n):,}\nusers",
            xy=(xi, 0),
            xytext=(0, 5),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8.5,
            color="white",
            fontweight="bold",
        )
    ax.set_xticks(x, table["activity"].astype(str).tolist())
    ax.set_ylim(0, max(values.max(), overall) * 1.18)
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper right", framealpha=0.9, frameon=True)
    ax.set_title("Error by user activity")
    ax.set_xlabel("user's number of training ratings")
    ax.set_ylabel(f"test {metric.upper()} (rating points)")
    return fig


# ---------------------------------------------------------------------- popularity
def _training_item_counts(model: Any, train: Interactions | None) -> np.ndarray:
    """Training interactions per item, in the model's item positions."""
    n_items = len(model.item_map_)
    seen = getattr(model, "seen_indices_", None)
    if seen is not None:
        return np.bincount(np.asarray(seen, dtype=np.int64), minlength=n_items)
    if train is None:
        raise DataError(
            f"{type(model).__name__} keeps no training structure; pass train=... to count "
            "item popularity"
        )
    counts = np.zeros(n_items, dtype=np.int64)
    pos = model.item_map_.lookup(train.item_map.ids)
    ok = pos >= 0
    counts[pos[ok]] = train.item_counts[ok]
    return counts


def recommendation_popularity(
    model: Any, k: int = 10, train: Interactions | None = None
) -> pd.DataFrame:
    """How often each catalogue item is recommended, next to its training popularity.

    Runs ``model.recommend_all(k)`` (seen items excluded) over every training user.

    Parameters
    ----------
    model : fitted model with ``recommend_all``
    k : int, default 10
        Recommendations per user.
    train : Interactions, optional
        Needed only for models that keep no record of their training items.

    Returns
    -------
    pandas.DataFrame
        One row per item of the model's catalogue: ``item`` (raw id), ``title`` (empty
        when unknown), ``train_count`` (training interactions) and ``recommended`` (number
        of users it was recommended to); most recommended first. ``attrs["k"]`` and
        ``attrs["n_users"]`` record the run.

    Examples
    --------
    >>> import factorkit as fk
    >>> from factorkit.report import recommendation_popularity
    >>> data = fk.datasets.load_movielens_small()
    >>> table = recommendation_popularity(fk.BaselineOnly().fit(data), k=5)
    >>> list(table.columns)
    ['item', 'title', 'train_count', 'recommended']
    >>> int(table["recommended"].sum()) == 5 * data.n_users
    True
    """
    if not hasattr(model, "recommend_all"):
        raise InvalidParameterError(
            f"recommendation_popularity: {type(model).__name__} cannot recommend"
        )
    counts = _training_item_counts(model, train)
    times = np.zeros(len(counts), dtype=np.int64)
    n_users = 0
    for users, items, _ in model.recommend_all(k=k):
        n_users += len(users)
        flat = np.asarray(items).ravel()
        pos = model.item_map_.lookup(flat)
        times += np.bincount(pos[pos >= 0], minlength=len(counts))
    ids = model.item_map_.ids
    titles = model.item_titles(ids) if hasattr(model, "item_titles") else [""] * len(ids)
    table = pd.DataFrame(
        {"item": ids, "title": titles, "train_count": counts, "recommended": times}
    )
    table = table.sort_values(["recommended", "train_count"], ascending=False, kind="stable")
    table = table.reset_index(drop=True)
    table.attrs.update(k=int(k), n_users=n_users)
    return table


@_styled
def plot_recommendation_popularity(table: pd.DataFrame) -> Figure:
    """Training popularity of recommended items against that of the whole catalogue.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`recommendation_popularity`.

    Returns
    -------
    matplotlib.figure.Figure
        Title "Popularity of recommended items": the share of catalogue items and the
        share of recommendations per band of training popularity (log-spaced), with the
        catalogue coverage and the share of recommendations going to the 10% most
        popular items.

    Examples
    --------
    >>> import pandas as pd
    >>> from factorkit.report import plot_recommendation_popularity
    >>> table = pd.DataFrame({"item": [1, 2, 3], "title": ["a", "b", "c"],
    ...                       "train_count": [50, 5, 1], "recommended": [8, 2, 0]})
    >>> ax = plot_recommendation_popularity(table).axes[0]
    >>> ax.get_title()
    'Popularity of recommended items'
    """
    if len(table) == 0 or not {"train_count", "recommended"} <= set(table.columns):
        raise DataError(
            "plot_recommendation_popularity: table needs 'train_count' and 'recommended' "
            "columns; build it with recommendation_popularity()"
        )
    counts = np.maximum(table["train_count"].to_numpy(dtype=np.float64), 1.0)
    rec = table["recommended"].to_numpy(dtype=np.float64)
    total = rec.sum()
    top = max(counts.max(), 2.0)
    bins = np.unique(np.round(np.logspace(0, np.log10(top) + 1e-9, 16)))
    bins = np.append(bins, bins[-1] + 1) if len(bins) < 2 else bins
    bins[-1] = top + 1
    fig, (ax,) = _new_figure(10, 4)
    catalogue = np.histogram(counts, bins=bins)[0] / len(counts) * 100
    recommended = np.histogram(counts, bins=bins, weights=rec)[0] / max(total, 1) * 100
    ax.stairs(catalogue, bins, fill=True, alpha=0.35, color=_GREY, label="catalogue items")
    ax.stairs(recommended, bins, lw=2, color=_ORANGE, label="recommendations")
    from matplotlib.ticker import StrMethodFormatter

    ax.set_xscale("log")
    ax.set_xlim(1, top + 1)
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_ylim(0, max(catalogue.max(), recommended.max()) * 1.12)
    coverage = float((rec > 0).mean()) * 100
    cutoff = np.quantile(counts, 0.9)
    head = float(rec[counts >= cutoff].sum() / total * 100) if total else 0.0
    k = table.attrs.get("k")
    note = (
        f"catalogue coverage:\n{coverage:.1f}% of {len(counts):,} items\n"
        f"recommended at least once\n\n{head:.0f}% of recommendations go\nto the 10% most-rated "
        f"items\n(≥ {cutoff:.0f} training ratings)"
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.text(
        1.03,
        0.72,
        note,
        transform=ax.transAxes,
        va="top",
        fontsize=9,
        linespacing=1.5,
        bbox={"boxstyle": "round,pad=0.5", "fc": "#f7f7f7", "ec": "#cccccc"},
    )
    fig.get_layout_engine().set(w_pad=0.15)  # room for the note box's frame on the right
    ax.set_title("Popularity of recommended items")
    ax.set_xlabel("item's number of training ratings (log scale)")
    lists = "recommendations" if k is None else f"top-{k} recommendations"
    ax.set_ylabel(f"% of catalogue items or\n% of {lists}")
    return fig


# ---------------------------------------------------------------------- item map
def _place_labels(fig: Any, ax: Any, xy: np.ndarray, labels: Sequence[str]) -> list[Any]:
    """Annotate points greedily, trying offsets around each point; labels that cannot be
    placed without overlapping another label or point (or leaving the axes) are dropped."""
    from matplotlib.text import Text

    fig.canvas.draw()  # settle the constrained layout before measuring text
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    px = fig.dpi / 72.0
    centers = ax.transData.transform(xy)
    taken = [(cx - 4, cy - 4, cx + 4, cy + 4) for cx, cy in centers]  # the labelled points
    directions = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
    halign = {1: "left", -1: "right", 0: "center"}
    valign = {1: "bottom", -1: "top", 0: "center"}
    placed = []
    for (x, y), label in zip(xy, labels, strict=True):
        ann = ax.annotate(
            label,
            xy=(x, y),
            xytext=(0, 0),
            textcoords="offset points",
            fontsize=8,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
            arrowprops={"arrowstyle": "-", "color": _GREY, "lw": 0.6, "shrinkA": 0},
            zorder=5,
        )
        found = False
        for radius in (5, 12, 22, 34, 48):
            for dx, dy in directions:
                ann.set_position((dx * radius, dy * radius))
                ann.set_horizontalalignment(halign[dx])
                ann.set_verticalalignment(valign[dy])
                ann.update_positions(renderer)
                box = Text.get_window_extent(ann, renderer)  # the text only, not the line
                b = (box.x0 - 2 * px, box.y0 - px, box.x1 + 2 * px, box.y1 + px)
                if b[0] < frame.x0 or b[2] > frame.x1 or b[1] < frame.y0 or b[3] > frame.y1:
                    continue
                if any(b[0] < t[2] and t[0] < b[2] and b[1] < t[3] and t[1] < b[3] for t in taken):
                    continue
                taken.append(b)
                found = True
                break
            if found:
                break
        if found:
            placed.append(ann)
        else:
            ann.remove()
    return placed


def item_map_table(
    model: Any, min_count: int = 10, train: Interactions | None = None
) -> pd.DataFrame:
    """Item factors projected on their first two principal components (PCA by SVD).

    Parameters
    ----------
    model : fitted latent-factor model
    min_count : int, default 10
        Items with fewer training interactions are left out: their factors are mostly
        regularisation noise and crowd the centre. Ignored when fewer than three items
        would remain.
    train : Interactions, optional
        Needed only for models that keep no record of their training items.

    Returns
    -------
    pandas.DataFrame
        One row per item kept, most popular first: ``item`` (raw id), ``title`` (empty
        when unknown), ``train_count``, ``x`` and ``y`` (the two components).
        ``attrs["variance"]`` holds each component's share of the variance (in %) and
        ``attrs["min_count"]`` the threshold used.

    Examples
    --------
    >>> import factorkit as fk
    >>> from factorkit.report import item_map_table
    >>> data = fk.datasets.load_movielens_small()
    >>> model = fk.BiasedMF(factors=8, epochs=3, random_state=0).fit(data)
    >>> table = item_map_table(model)
    >>> list(table.columns), len(table.attrs["variance"])
    (['item', 'title', 'train_count', 'x', 'y'], 2)
    """
    factors = getattr(model, "item_factors_", None)
    if factors is None:
        raise InvalidParameterError(
            f"plot_item_map: {type(model).__name__} has no item factors (fit a latent-factor "
            "model such as fk.BiasedMF)"
        )
    counts = _training_item_counts(model, train)
    keep = np.flatnonzero(counts >= min_count)
    if len(keep) < 3:
        keep = np.arange(len(counts))
    x = np.asarray(factors, dtype=np.float64)[keep]
    x = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    coords = x @ vt[:2].T
    if coords.shape[1] == 1:
        coords = np.hstack([coords, np.zeros((len(coords), 1))])
    share = s**2 / max(float(np.sum(s**2)), 1e-300) * 100
    share = np.append(share, [0.0, 0.0])[:2]
    ids = model.item_map_.ids[keep]
    titles = model.item_titles(ids) if hasattr(model, "item_titles") else [""] * len(ids)
    table = pd.DataFrame(
        {
            "item": ids,
            "title": titles,
            "train_count": counts[keep],
            "x": coords[:, 0],
            "y": coords[:, 1],
        }
    )
    table = table.sort_values("train_count", ascending=False, kind="stable")
    table = table.reset_index(drop=True)
    table.attrs.update(variance=[float(v) for v in share], min_count=int(min_count))
    return table


@_styled
def plot_item_map(
    model: Any, n_labels: int = 15, min_count: int = 10, train: Interactions | None = None
) -> Figure:
    """Item factors projected on their first two principal components (PCA by SVD).

    Each dot is an item, coloured by its training popularity; the ``n_labels`` most
    popular items carry their titles (raw ids where no title is known). Labels are placed
    so that none overlap; one that cannot be placed is left out.

    Parameters
    ----------
    model : fitted latent-factor model or DataFrame
        The model, or its :func:`item_map_table` (then ``min_count`` and ``train`` are
        not used).
    n_labels : int, default 15
        Number of most popular items to label.
    min_count : int, default 10
        Items with fewer training interactions are left out (see :func:`item_map_table`).
    train : Interactions, optional
        Needed only for models that keep no record of their training items.

    Returns
    -------
    matplotlib.figure.Figure
        Title "Item factor map"; axis labels give each component's share of the variance.

    Examples
    --------
    >>> import factorkit as fk
    >>> from factorkit.report import plot_item_map
    >>> data = fk.datasets.load_movielens_small()
    >>> model = fk.BiasedMF(factors=8, epochs=3, random_state=0).fit(data)
    >>> ax = plot_item_map(model, n_labels=5).axes[0]
    >>> ax.get_title(), ax.get_xlabel()[:11]
    ('Item factor map', 'component 1')
    """
    if isinstance(model, pd.DataFrame):
        table = model
    else:
        table = item_map_table(model, min_count=min_count, train=train)
    coords = table[["x", "y"]].to_numpy(dtype=np.float64)
    counts = table["train_count"].to_numpy()
    share = table.attrs.get("variance", [0.0, 0.0])
    require_matplotlib()
    from matplotlib.colors import LogNorm

    fig, (ax,) = _new_figure(10, 7.5)
    order = np.argsort(counts, kind="stable")  # popular items drawn last, on top
    c = np.maximum(counts[order], 1)
    points = ax.scatter(
        coords[order, 0],
        coords[order, 1],
        c=c,
        s=10,
        alpha=0.6,
        cmap="viridis",
        norm=LogNorm(vmin=c.min(), vmax=max(c.max(), c.min() + 1)),
        linewidths=0,
    )
    from matplotlib.ticker import LogLocator, StrMethodFormatter

    bar = fig.colorbar(points, ax=ax, label="training ratings per item (log scale)", shrink=0.8)
    bar.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    bar.ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    bar.ax.yaxis.set_minor_locator(LogLocator(subs="auto"))
    bar.ax.yaxis.set_minor_formatter(StrMethodFormatter(""))
    top = np.argsort(-counts, kind="stable")[: max(0, int(n_labels))]
    labels = [
        _shorten(t) if t else f"item {i}"
        for t, i in zip(table["title"].iloc[top], table["item"].iloc[top], strict=True)
    ]
    ax.scatter(coords[top, 0], coords[top, 1], s=28, facecolor="none", edgecolor="black", lw=0.8)
    pad_x = np.ptp(coords[:, 0]) * 0.04 or 1.0
    pad_y = np.ptp(coords[:, 1]) * 0.04 or 1.0
    ax.set_xlim(coords[:, 0].min() - pad_x, coords[:, 0].max() + pad_x)
    ax.set_ylim(coords[:, 1].min() - pad_y, coords[:, 1].max() + pad_y)
    ax.set_title("Item factor map")
    ax.set_xlabel(f"component 1 ({share[0]:.0f}% of variance)")
    ax.set_ylabel(f"component 2 ({share[1]:.0f}% of variance)")
    ax.set_aspect("auto")
    if len(top):
        _place_labels(fig, ax, coords[top], labels)
    return fig


# ---------------------------------------------------------------------- spectrum
@_styled
def plot_spectrum(spectrum: pd.DataFrame) -> Figure:
    """Singular values and cumulative energy of the rating matrix, side by side.

    Parameters
    ----------
    spectrum : pandas.DataFrame
        From :func:`factorkit.evaluation.spectrum.singular_value_spectrum`.

    Returns
    -------
    matplotlib.figure.Figure
        Panels "Singular values" and "Cumulative energy"; the components needed for
        25/50/75/90% of the energy are marked where reached.

    Examples
    --------
    >>> import numpy as np
    >>> from factorkit.evaluation.spectrum import singular_value_spectrum
    >>> from factorkit.report import plot_spectrum
    >>> x = np.random.default_rng(0).normal(size=(30, 20))
    >>> fig = plot_spectrum(singular_value_spectrum(x, k=10))
    >>> [ax.get_title() for ax in fig.axes]
    ['Singular values', 'Cumulative energy']
    """
    if len(spectrum) == 0 or "singular_value" not in spectrum:
        raise DataError(
            "plot_spectrum: spectrum must be a DataFrame from singular_value_spectrum()"
        )
    comp = spectrum["component"].to_numpy()
    fig, (left, right) = _new_figure(10, 3.8, ncols=2)
    left.plot(comp, spectrum["singular_value"], marker="o", ms=2.5, color=_BLUE)
    left.set_title("Singular values")
    left.set_xlabel("component")
    left.set_ylabel("singular value")
    left.set_ylim(bottom=0)
    cum = spectrum["cumulative_energy"].to_numpy() * 100
    right.plot(comp, cum, color=_ORANGE, lw=2)
    right.set_title("Cumulative energy")
    right.set_xlabel("number of components")
    right.set_ylabel("cumulative energy (% of total)")
    right.set_ylim(0, min(100, max(cum.max() * 1.15, 5)))
    for target in (25, 50, 75, 90):
        hit = np.flatnonzero(cum >= target)
        if len(hit):
            n = int(comp[hit[0]])
            right.axhline(target, color=_GREY, lw=0.6, ls=":")
            right.annotate(
                f"{target}%: {n}",
                xy=(n, cum[hit[0]]),
                xytext=(6, -12),
                textcoords="offset points",
                fontsize=8.5,
            )
    right.annotate(
        f"{len(comp)} components: {cum[-1]:.1f}%",
        xy=(comp[-1], cum[-1]),
        xytext=(-4, 8),
        textcoords="offset points",
        ha="right",
        fontsize=9,
    )
    for ax in (left, right):
        ax.set_xlim(0, comp[-1] + 1)
    return fig


# ---------------------------------------------------------------------- search results
def search_table(search: Any) -> tuple[pd.DataFrame, str, str | None, bool]:
    """Normalise a search's ``cv_results_`` into (frame, score column, std column,
    lower_is_better), best candidate first, with a ``parameters`` label column.

    Understands factorkit's searches (``mean_<metric>``, ``std_<metric>``,
    ``rank_<metric>``, ``metric_``) and scikit-learn's (``mean_test_score``...).
    """
    results = getattr(search, "cv_results_", search)
    frame = pd.DataFrame(results).copy()
    metric = next(
        (m for m in (getattr(search, "metric_", None), getattr(search, "metric", None))
         if isinstance(m, str)),
        None,
    )  # fmt: skip
    options = ["mean_test_score"]
    if metric:
        options += [f"mean_test_{metric}", f"mean_{metric}"]
    timing = ("mean_fit_time", "mean_score_time", "mean_epochs")
    fallback = [c for c in frame.columns if str(c).startswith("mean_test")]
    fallback += [c for c in frame.columns if str(c).startswith("mean_") and c not in timing]
    score = next((c for c in options if c in frame), None) or next(iter(fallback), None)
    if score is None or len(frame) == 0:
        raise DataError(
            "search results need a 'mean_<metric>' or 'mean_test_score' column in "
            f"cv_results_; got columns {list(frame.columns)}"
        )
    std = score.replace("mean_", "std_", 1)
    std = std if std in frame else None
    name = metric or score.removeprefix("mean_test_").removeprefix("mean_")
    lower = _lower_is_better(name) if name != "score" else True
    if "params" in frame:
        params = [dict(p) for p in frame["params"]]
    else:
        cols = [c for c in frame.columns if str(c).startswith("param_")]
        params = [{c[6:]: row[c] for c in cols} for _, row in frame[cols].iterrows()]
    # parameters equal in every candidate say nothing: leave them out of the labels
    varying = [
        key
        for key in dict.fromkeys(k for p in params for k in p)
        if len(params) < 2 or len({repr(p.get(key)) for p in params}) > 1
    ]
    labels = [", ".join(f"{k}={p[k]}" for k in varying if k in p) or "defaults" for p in params]
    frame.insert(0, "parameters", labels)
    rank = score.replace("mean_", "rank_", 1)
    if rank in frame:
        frame = frame.sort_values(rank, kind="stable")
    else:
        frame = frame.sort_values(score, ascending=lower, kind="stable")
    return frame.reset_index(drop=True), score, std, lower


@_styled
def plot_search_results(search: Any, top: int = 20) -> Figure:
    """Mean cross-validated score of each candidate of a parameter search, best on top.

    Parameters
    ----------
    search : fitted search object or mapping
        A fitted :class:`~factorkit.evaluation.search.GridSearch` (or any object with a
        ``cv_results_`` holding ``params`` or ``param_*`` columns, ``mean_<metric>`` or
        scikit-learn's ``mean_test_score``, optional ``std_*`` and ``rank_*``), or that
        table itself.
    top : int, default 20
        Candidates shown (the best ones).

    Returns
    -------
    matplotlib.figure.Figure
        Title "Parameter search"; error bars are one standard deviation over folds.

    Examples
    --------
    >>> from factorkit.report import plot_search_results
    >>> results = {"params": [{"factors": 10}, {"factors": 50}],
    ...            "mean_rmse": [0.88, 0.87], "std_rmse": [0.01, 0.01]}
    >>> ax = plot_search_results(results).axes[0]
    >>> ax.get_title(), [t.get_text() for t in ax.get_yticklabels()]  # bottom to top
    ('Parameter search', ['factors=10', 'factors=50'])
    """
    frame, score, std, lower = search_table(search)
    shown = frame.head(top).iloc[::-1]
    n = len(shown)
    fig, (ax,) = _new_figure(9, max(2.2, 0.32 * n + 1.3))
    y = np.arange(n)
    err = None if std is None else shown[std].to_numpy(dtype=np.float64)
    ax.errorbar(
        shown[score].to_numpy(dtype=np.float64), y, xerr=err, fmt="o", color=_BLUE, capsize=3
    )
    ax.scatter([shown[score].iloc[-1]], [y[-1]], s=90, facecolor="none", edgecolor=_ORANGE)
    ax.set_yticks(y, [_shorten(c, 60) for c in shown["parameters"]])
    ax.grid(axis="y", visible=False)
    name = score.removeprefix("mean_test_").removeprefix("mean_")
    better = "lower is better" if lower else "higher is better"
    ax.set_xlabel(f"mean cross-validated {_metric_label(name)}, {better}")
    ax.set_title("Parameter search")
    return fig
