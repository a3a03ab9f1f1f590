"""read_parquet: a Parquet file -> :class:`~factorkit.data.Interactions` (needs pyarrow)."""

from __future__ import annotations

import os
from typing import Any

from factorkit._lazy import pandas as pd
from factorkit._validation import validate_params
from factorkit.data.hints import Placeholder, column_clash, hint
from factorkit.data.interactions import Interactions
from factorkit.data.io._source import READER_ARGS
from factorkit.exceptions import DataError, InvalidParameterError

__all__ = ["read_parquet"]


@validate_params(READER_ARGS, owner="read_parquet")
def read_parquet(
    path: str | os.PathLike[str],
    user: str | int = "userId",
    item: str | int = "movieId",
    rating: str | int | None = "rating",
    timestamp: str | int | None = None,
    *,
    duplicates: str = "error",
    implicit: bool | None = None,
) -> Interactions:
    """Read a Parquet file with one interaction per row (needs pyarrow).

    Parameters
    ----------
    path : str or os.PathLike
        The Parquet file.
    user, item : str or int
        The columns of raw user and item ids: names, or 0-based column positions.
    rating : str, int or None
        The column of numeric values; ``None`` means implicit feedback (every value 1.0).
    timestamp : str, int or None
        Optional column of timestamps (numbers, or datetimes which become Unix seconds).
    duplicates : {"error", "last", "mean", "sum"}
        What to do with repeated (user, item) pairs; the default raises.
    implicit : bool, optional
        Whether the values are implicit feedback (must be >= 0). Defaults to
        ``rating is None``.

    Returns
    -------
    Interactions

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ImportError
        If pyarrow is not installed (``pip install "factorkit[parquet]"``).
    factorkit.exceptions.DataError
        On missing columns, missing or non-numeric values, duplicates and so on; messages
        name the row, counted from 0 as in pandas: ``ratings.parquet row 16: ...``.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> import factorkit as fk
    >>> path = os.path.join(tempfile.mkdtemp(), "ratings.parquet")
    >>> pd.DataFrame({"userId": [1, 1, 2], "movieId": [10, 20, 10],
    ...               "rating": [4.0, 3.5, 5.0]}).to_parquet(path)
    >>> data = fk.read_parquet(path)
    >>> data.n_users, data.n_items, len(data)
    (2, 2, 3)
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            "read_parquet needs pyarrow; install it with: pip install 'factorkit[parquet]'"
        ) from None
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidParameterError(
            f"read_parquet expects a file path (str or os.PathLike); got {type(path).__name__}"
        )
    path = os.fspath(path)
    name = os.path.basename(path) or path
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{name}: no such file: {os.path.abspath(path)!r}; check the path "
            f"(relative paths start at the working directory {os.getcwd()!r})"
        )
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{name} is not a readable Parquet file ({exc})") from None
    chosen = _resolve_columns(
        name,
        list(schema.names),
        {"user": user, "item": item, "rating": rating, "timestamp": timestamp},
    )
    try:
        df = pd.read_parquet(path, columns=list(chosen.values()), engine="pyarrow")
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{name} could not be read as Parquet ({exc})") from None
    if len(df) == 0:
        raise DataError(f"{name} has no rows; expected one row per interaction")
    for role in ("rating", "timestamp"):
        if role in chosen and df[chosen[role]].dtype == bool:
            raise DataError(
                f"{name}: {role} column {chosen[role]!r} holds booleans; expected numbers. "
                f"Convert it (e.g. to 0/1) first, or pass {hint('rating', None)} for implicit "
                "feedback."
            )
    return Interactions.from_pandas(
        df,
        user=chosen["user"],
        item=chosen["item"],
        rating=chosen.get("rating"),
        timestamp=chosen.get("timestamp"),
        duplicates=duplicates,  # type: ignore[arg-type]
        implicit=implicit,
        _locator=lambda row: f"{name} row {row}",
        _source=name,
    )


def _resolve_columns(name: str, fields: list[str], wanted: dict[str, Any]) -> dict[str, str]:
    """Role -> column name, from names or 0-based positions; errors name the file."""
    chosen: dict[str, str] = {}
    for role, spec in wanted.items():
        if spec is None:  # an optional column left out (checked by READER_ARGS)
            continue
        if isinstance(spec, str):
            if spec not in fields:
                raise DataError(
                    f"{name}: {role} column {spec!r} not found; the file has "
                    f"{len(fields)} column{'s' if len(fields) != 1 else ''}: {fields}. "
                    f"Pass {hint(role, Placeholder('<one of those names>'))}."
                )
            col = spec
        else:
            if not 0 <= int(spec) < len(fields):
                raise DataError(
                    f"{name}: {role} column position {int(spec)} is out of range; the file "
                    f"has {len(fields)} columns (positions 0..{len(fields) - 1}): {fields}"
                )
            col = fields[int(spec)]
        if col in chosen.values():
            other = next(r for r, c in chosen.items() if c == col)
            raise InvalidParameterError(column_clash(col, {other: wanted[other], role: spec}))
        chosen[role] = col
    return chosen
