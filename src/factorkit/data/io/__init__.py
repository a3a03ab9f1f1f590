"""Readers: files -> :class:`~factorkit.data.Interactions`, one module per reader engine.

- :mod:`.csv` -- :func:`read_csv`, the public front: argument checks, engine choice and
  error framing; the engines behind it are :mod:`._numba_csv` (factorkit's own parallel
  parser for the common layout), :mod:`._arrow_csv` (pyarrow), :mod:`._pandas_csv`
  (pandas, when pyarrow is missing) and :mod:`._careful_csv` (the checking pass that
  names the first bad line); :mod:`._source` is the file itself (header, compression,
  line numbers) and :mod:`._columns` the compact column storage they share.
- :mod:`.parquet` -- :func:`read_parquet`.
- :mod:`.movielens` -- the MovieLens layouts and the shipped ml-latest-small.
- :mod:`.download` -- cached, checksummed MovieLens downloads.
"""

from factorkit.data.io.csv import read_csv
from factorkit.data.io.parquet import read_parquet

__all__ = ["read_csv", "read_parquet"]
