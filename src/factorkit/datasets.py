"""Data sets: MovieLens (shipped, downloadable, or read from disk) and synthetic generators.

- :func:`load_movielens_small`: MovieLens latest-small, shipped in the package (no download).
- :func:`load_movielens`: download a GroupLens MovieLens archive once, cache it, read it.
- :func:`read_movielens`: read an unpacked MovieLens archive in any GroupLens layout.
- :func:`load_movielens_small_item_features`: genres, tags and release year of the shipped
  MovieLens latest-small movies, as item :class:`~factorkit.Features`.
- :func:`make_ratings`: synthetic explicit ratings from a known low-rank model.
- :func:`make_implicit`: synthetic implicit feedback from a known low-rank model.
"""

from factorkit.data.features import load_movielens_small_item_features
from factorkit.data.io.download import load_movielens
from factorkit.data.io.movielens import load_movielens_small, read_movielens
from factorkit.data.synthetic import make_implicit, make_ratings

__all__ = [
    "load_movielens",
    "load_movielens_small",
    "load_movielens_small_item_features",
    "make_implicit",
    "make_ratings",
    "read_movielens",
]
