"""A loaded model and everything the service derives from it, swapped as one object.

The service holds the current :class:`Served` in one attribute; a request reads it once
and uses that object to the end, so a reload (which builds a complete new ``Served`` and
then assigns it) never mixes two models within a request, and requests in flight finish
on the model they started with.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import factorkit as fk
from factorkit._threads import single_thread_blas
from factorkit.exceptions import ModelFormatError
from factorkit.onboarding import item_popularity
from factorkit.persistence import read_metadata

__all__ = ["Served", "id_type", "load_served"]


def id_type(ids: np.ndarray) -> str:
    """``"int"``, ``"str"`` or ``"mixed"``: how a vocabulary's raw ids travel in JSON."""
    if ids.dtype.kind in "iu":
        return "int"
    if all(isinstance(x, str) for x in ids.tolist()):
        return "str"
    return "mixed"


@dataclass
class Served:
    """One loaded model with its file facts and the derived search structures."""

    model: Any
    path: str
    sha256: str
    meta: dict
    trained_at: str
    loaded_at: str
    explicit: bool
    user_id_type: str
    item_id_type: str
    titles: np.ndarray | None
    titles_lower: np.ndarray | None
    popularity: np.ndarray
    by_popularity: np.ndarray
    _onboarding: dict = field(default_factory=dict)
    _sorted_ids: np.ndarray | None = None
    _search_keys: np.ndarray | None = None
    _sorted_pos: np.ndarray | None = None

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Positions of item ids the model returned (all known). For integer ids a binary
        search over the sorted vocabulary: ~100x cheaper than a pandas lookup for the
        ten ids of an answer."""
        if self.item_id_type != "int":
            return self.model.item_map_.lookup(ids)
        if self._sorted_ids is None:
            vocab = self.model.item_map_.ids
            self._sorted_pos = np.argsort(vocab, kind="stable")
            self._sorted_ids = vocab[self._sorted_pos]
        where = np.searchsorted(self._sorted_ids, ids)
        return self._sorted_pos[np.minimum(where, len(self._sorted_ids) - 1)]

    @property
    def can_fold_in(self) -> bool:
        return fk.get_tags(self.model).can_fold_in

    @property
    def can_similar_items(self) -> bool:
        return fk.get_tags(self.model).can_find_similar

    def search_keys(self) -> np.ndarray:
        """Lower-cased titles (else ids as text) in popularity order, built once."""
        if self._search_keys is None:
            source = self.titles_lower
            if source is None:
                source = np.char.lower(self.model.item_map_.ids.astype(str))
            self._search_keys = source[self.by_popularity]
        return self._search_keys

    def title_of(self, positions: np.ndarray) -> list[str | None]:
        if self.titles is None:
            return [None] * len(positions)
        return [str(self.titles[p]) for p in positions]

    def onboarding(self, n: int) -> np.ndarray:
        """Cached ``fk.onboarding_items(model, n)`` (deterministic for a model)."""
        if n not in self._onboarding:
            self._onboarding[n] = fk.onboarding_items(self.model, n=n)
        return self._onboarding[n]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc).isoformat(timespec="seconds")


def load_served(path: str | os.PathLike) -> Served:
    """Load, check and warm up a model file; raise ModelFormatError if it cannot serve.

    Warming up runs one recommendation (and one fold-in) before the model is swapped in,
    so numba compilation never lands on a visitor's request, and a model that loads but
    cannot answer is refused here rather than failing later.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(
            f"no model file at {str(path)!r}; pass the path of a file written by model.save "
            "or `factorkit fit --out`"
        )
    digest = _sha256(path)
    model = fk.load(path)
    meta = read_metadata(path)
    if not fk.get_tags(model).can_recommend:
        raise ModelFormatError(
            f"{path}: a {type(model).__name__} cannot recommend, so it cannot be served; "
            "save a recommender such as fk.ImplicitALS"
        )
    if len(model.user_map_) == 0 or len(model.item_map_) == 0:
        raise ModelFormatError(f"{path}: the model knows no users or no items; refit it")
    try:
        with single_thread_blas():
            model.recommend(model.user_map_[0], k=1)
            if fk.get_tags(model).can_fold_in:
                first = model.item_map_[0]
                model.recommend_new_user([first], ratings=[1.0], k=1)
                # explanations cache the item Gram (a pass over all item factors)
                model.explain_new_user([first], [1.0], item=first)
    except Exception as exc:
        raise ModelFormatError(
            f"{path}: the model loaded but failed a test recommendation ({exc}); it is "
            "incompatible with this factorkit, refit and save it again"
        ) from None
    titles = getattr(model, "item_titles_", None)
    if titles is not None:
        titles = np.asarray(titles, dtype=object)
        if len(titles) != len(model.item_map_) or not any(titles.tolist()):
            titles = None
    popularity = item_popularity(model)
    now = _dt.datetime.now(tz=_dt.timezone.utc).isoformat(timespec="seconds")
    served = Served(
        model=model,
        path=str(path),
        sha256=digest,
        meta=meta,
        trained_at=_iso(path.stat().st_mtime),
        loaded_at=now,
        explicit=fk.get_tags(model).explicit,
        user_id_type=id_type(model.user_map_.ids),
        item_id_type=id_type(model.item_map_.ids),
        titles=titles,
        titles_lower=None if titles is None else np.char.lower(titles.astype(str)),
        popularity=popularity,
        by_popularity=np.argsort(-popularity, kind="stable"),
    )
    served.positions(model.item_map_.ids[:1])  # build the id index before serving
    served.search_keys()  # and the title search's keys
    return served
