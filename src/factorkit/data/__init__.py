"""Data layer: Interactions, IdMap, readers, datasets and splits."""

from factorkit.data.idmap import IdMap
from factorkit.data.interactions import Interactions

__all__ = ["IdMap", "Interactions"]
