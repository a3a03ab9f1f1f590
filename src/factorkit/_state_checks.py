"""A saved model's metadata and arrays, checked as untrusted input before any use.

A model file's checksums detect damage (a truncated download, a flipped bit), not
tampering: whoever edits a file can recompute them. So everything a kernel will later
index with is checked here against everything else in the file before an estimator sees
it, and a file that passes cannot make a kernel read or write out of bounds:

- the metadata has exactly the keys of the format, each of its type;
- parameters are the class's own, each inside the constraint ``fit`` checks;
- fitted scalars are the ones the class saves, each a finite number (or a pair);
- arrays are the ones the class saves, each of an allowed dtype and of a shape that
  agrees with the id vocabularies (names say which: ``user_*`` arrays have one row per
  user; ``item_*`` and ``implicit_*`` one per item; ``feature_<side>_*`` arrays one per
  feature, as many as the vocabulary array ``feature_<side>_names_`` holds, which must be
  stored with them; factor matrices share one width);
- the seen-items structure is a CSR matrix over users x items: ``seen_indptr_`` starts
  at 0, never decreases and ends at ``len(seen_indices_)``; every index is a valid item
  (kernels read only inside a row's bounds, so order within a row cannot break them);
- every other CSR is named ``<side>_<name>_indptr_`` / ``<side>_<name>_indices_``
  (rows: one per ``side`` id) with any further ``<side>_<name>_*_`` arrays holding one
  value per index; ``<name>`` says what the indices point at: ``neighbour`` the same
  side, ``user`` or ``item`` that side (e.g. the neighbour models'
  ``item_neighbour_indptr_`` / ``_indices_`` / ``_sims_``). The same offset and range
  checks apply, so a kernel walking a row stays inside every array;
- id vocabularies are unique and match their encoding; packed strings are valid UTF-8
  within their blob; factors and biases are finite.

Every failure is a :class:`~factorkit.exceptions.ModelFormatError` naming the file, the
field, what was expected and what was found.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from factorkit.exceptions import ModelFormatError

__all__ = ["check_arrays", "check_metadata", "check_params_and_scalars"]

_FIX = "the file is damaged or was edited; restore it from a trusted copy or refit the model"

#: top-level metadata keys -> the types their values may have
_META_TYPES: dict[str, tuple[type, ...]] = {
    "format": (str,),
    "format_version": (int,),
    "factorkit_version": (str,),
    "class": (str,),
    "params": (dict,),
    "scalars": (dict,),
    "id_encoding": (dict,),
    "string_arrays": (list,),
    "history": (list, type(None)),
    "arrays": (dict,),
}
_ARRAY_INFO_TYPES = {"dtype": str, "shape": list, "sha256": str}


def _fail(where: str, field: str, expected: str, found: Any) -> ModelFormatError:
    shown = repr(found)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ModelFormatError(f"{where}: {field}: expected {expected}; found {shown}; {_FIX}")


def _type_names(types: tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer"}
    return " or ".join("null" if t is type(None) else names.get(t, t.__name__) for t in types)


def check_metadata(meta: Any, where: str) -> None:
    """The metadata's keys and their types (the closed schema of the format)."""
    if not isinstance(meta, dict):
        raise _fail(where, "metadata", "a JSON object", type(meta).__name__)
    missing = sorted(set(_META_TYPES) - set(meta))
    if missing:
        raise _fail(where, "metadata", f"the key(s) {', '.join(missing)}", sorted(meta))
    unknown = sorted(set(meta) - set(_META_TYPES))
    if unknown:
        raise _fail(where, "metadata", "only the keys of the model format", unknown)
    for key, types in _META_TYPES.items():
        value = meta[key]
        if not isinstance(value, types) or isinstance(value, bool):
            raise _fail(where, f"metadata {key!r}", _type_names(types), value)
    encoding = meta["id_encoding"]
    for side in ("user", "item"):
        tag = encoding.get(side)
        if not isinstance(tag, str):
            raise _fail(where, f"id_encoding {side!r}", "a string", tag)
    for name, info in meta["arrays"].items():
        if not isinstance(info, dict) or set(info) != set(_ARRAY_INFO_TYPES):
            raise _fail(where, f"array {name!r} description", "dtype, shape and sha256", info)
        for key, kind in _ARRAY_INFO_TYPES.items():
            if not isinstance(info[key], kind):
                raise _fail(where, f"array {name!r} {key}", kind.__name__, info[key])
        if not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in info["shape"]
        ):
            raise _fail(where, f"array {name!r} shape", "non-negative integers", info["shape"])
    if not all(isinstance(s, str) and s in meta["arrays"] for s in meta["string_arrays"]):
        raise _fail(where, "string_arrays", "names of stored arrays", meta["string_arrays"])


def check_params_and_scalars(cls: type, meta: Mapping[str, Any], where: str) -> None:
    """Parameters through the same constraints as ``fit``; scalars from the class's list."""
    params = meta["params"]
    valid = set(cls._param_names())
    unknown = sorted(set(params) - valid)
    if unknown:
        raise _fail(where, f"{cls.__name__} parameters", f"names among {sorted(valid)}", unknown)
    constraints = getattr(cls, "_parameter_constraints", {})
    for name, value in params.items():
        constraint = constraints.get(name)
        if value is None and name in ("callbacks", "random_state", "n_threads"):
            continue  # not stored faithfully (callables, generators): saved as null
        if constraint is not None and not constraint.accepts(value):
            raise _fail(where, f"parameter {name!r}", constraint.describe(), value)
    declared = set(cls.state_names()["scalars"])
    scalars = meta["scalars"]
    unknown = sorted(set(scalars) - declared)
    if unknown:
        raise _fail(where, f"{cls.__name__} scalars", f"names among {sorted(declared)}", unknown)
    for name, value in scalars.items():
        values = value if isinstance(value, list) else [value]
        if not (1 <= len(values) <= 2) or not all(_finite_number(v) for v in values):
            raise _fail(where, f"scalar {name!r}", "a finite number or a pair of them", value)


def _finite_number(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and bool(np.isfinite(float(value)))
    )


def _csr_prefix(name: str, arrays: Mapping[str, np.ndarray]) -> str | None:
    """``<side>_<name>`` when ``name`` belongs to a declared CSR group, else None."""
    for prefix in {n[: -len("_indptr_")] for n in arrays if n.endswith("_indptr_")}:
        if prefix.startswith(("user_", "item_")) and name.startswith(prefix + "_"):
            return prefix
    return None


def _check_group_csr(
    arrays: Mapping[str, np.ndarray], prefix: str, n_users: int, n_items: int, where: str
) -> None:
    """The CSR ``<prefix>_indptr_`` / ``_indices_`` (see the module docstring) and the
    arrays holding one value per index."""
    sizes = {"user": n_users, "item": n_items}
    side, target = prefix.split("_", 1)
    n_rows = sizes[side]
    n_cols = sizes[side] if target == "neighbour" else sizes.get(target)
    if n_cols is None:
        raise _fail(where, f"arrays {prefix}_*", "a CSR over users or items", prefix)
    ptr_name, idx_name = f"{prefix}_indptr_", f"{prefix}_indices_"
    indptr, indices = arrays.get(ptr_name), arrays.get(idx_name)
    if indptr is None or indices is None:
        raise _fail(where, f"CSR {prefix}", f"both {ptr_name} and {idx_name}", None)
    if indptr.dtype != np.int64 or indptr.ndim != 1 or len(indptr) != n_rows + 1:
        found = f"{indptr.dtype} {indptr.shape}"
        raise _fail(where, f"array {ptr_name!r}", f"{n_rows + 1} int64 offsets", found)
    if indices.dtype != np.int32 or indices.ndim != 1:
        raise _fail(where, f"array {idx_name!r}", "1-D int32 positions", indices.dtype)
    if indptr[0] != 0 or indptr[-1] != len(indices) or (np.diff(indptr) < 0).any():
        expected = f"non-decreasing offsets from 0 to {len(indices)}"
        raise _fail(where, f"array {ptr_name!r}", expected, "other")
    if len(indices) and (indices.min() < 0 or indices.max() >= n_cols):
        found = f"positions {int(indices.min())}..{int(indices.max())}"
        raise _fail(where, f"array {idx_name!r}", f"valid positions in [0, {n_cols})", found)
    for name, arr in arrays.items():
        values = name.startswith(prefix + "_") and name not in (ptr_name, idx_name)
        if values and (arr.ndim != 1 or len(arr) != len(indices)):
            expected = f"{len(indices)} values (one per index)"
            raise _fail(where, f"array {name!r}", expected, arr.shape)


def _rows_of(name: str, n_users: int, n_items: int) -> int | None:
    if name.startswith("user_"):
        return n_users
    if name.startswith(("item_", "implicit_")):
        return n_items
    return None


def check_arrays(cls: type, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], where: str):
    """Names, dtypes and shapes of the stored arrays, and the ranges of index arrays.

    ``arrays`` are the raw stored arrays (strings still packed); call before unpacking.
    """
    declared = set(cls.state_names()["arrays"])
    strings = set(meta["string_arrays"])
    allowed = declared | {"user_ids", "item_ids"} | {s + ".offsets" for s in strings}
    unknown = sorted(set(arrays) - allowed)
    if unknown:
        raise _fail(where, f"{cls.__name__} arrays", f"names among {sorted(allowed)}", unknown)
    for side in ("user_ids", "item_ids"):
        if side not in arrays:
            raise _fail(where, "arrays", f"an array {side!r}", sorted(arrays))
    for name in strings:
        _check_packed_strings(arrays, name, where)
    n_users = _vocabulary_size(arrays, "user_ids", meta["id_encoding"]["user"], strings, where)
    n_items = _vocabulary_size(arrays, "item_ids", meta["id_encoding"]["item"], strings, where)
    widths = set()
    for name, arr in arrays.items():
        if name in ("user_ids", "item_ids") or name.endswith(".offsets") or name in strings:
            continue
        rows = None if _csr_prefix(name, arrays) else _rows_of(name, n_users, n_items)
        if name.startswith("feature_"):
            rows = _feature_rows(name, arrays, strings, where)
        if rows is not None and (arr.ndim == 0 or arr.shape[0] != rows):
            raise _fail(where, f"array {name!r} shape", f"{rows} rows (one per id)", arr.shape)
        if name.endswith("_factors_"):
            if arr.ndim != 2 or arr.dtype.kind != "f":
                raise _fail(
                    where, f"array {name!r}", "a 2-D float matrix", f"{arr.dtype} {arr.shape}"
                )
            widths.add(arr.shape[1])
        elif name.endswith("_bin_bias_") and (arr.ndim != 2 or arr.dtype.kind != "f"):
            raise _fail(
                where,
                f"array {name!r}",
                "a 2-D float matrix (rows x bins)",
                f"{arr.dtype} {arr.shape}",
            )
        elif (
            name.endswith("_bias_")
            and not name.endswith("_bin_bias_")
            and (arr.ndim != 1 or arr.dtype.kind != "f")
        ):
            raise _fail(where, f"array {name!r}", "a 1-D float vector", f"{arr.dtype} {arr.shape}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise _fail(where, f"array {name!r}", "finite values", "NaN or infinity")
    for prefix in sorted({p for n in arrays if (p := _csr_prefix(n, arrays))}):
        _check_group_csr(arrays, prefix, n_users, n_items, where)
    if len(widths) > 1:
        raise _fail(where, "factor matrices", "one common width", sorted(widths))
    for prefix in ("seen", "also_seen"):  # CSR structures over users x items
        indptr, indices = arrays.get(f"{prefix}_indptr_"), arrays.get(f"{prefix}_indices_")
        if indptr is not None or indices is not None:
            _check_csr(indptr, indices, n_users, n_items, where, prefix)
    for name in sorted(arrays):  # per-user segments: seen_values_, timeSVD++'s day_* ...
        if name.endswith("_indptr_") and not name.startswith(("user_", "item_")):
            _check_row_segments(arrays, name, n_users, where)  # (side CSRs checked above)


def _feature_rows(
    name: str, arrays: Mapping[str, np.ndarray], strings: set[str], where: str
) -> int:
    """Rows of a ``feature_<side>_*`` array: the size of ``feature_<side>_names_``."""
    side = name.split("_")[1]
    vocab = f"feature_{side}_names_"
    if vocab not in arrays:
        raise _fail(where, f"array {name!r}", f"a vocabulary array {vocab!r} with it", "none")
    if vocab in strings:
        return len(arrays[vocab + ".offsets"]) - 1
    return len(arrays[vocab])


def _check_packed_strings(arrays: Mapping[str, np.ndarray], name: str, where: str) -> None:
    blob, offsets = arrays.get(name), arrays.get(name + ".offsets")
    if blob is None or offsets is None or blob.dtype != np.uint8 or blob.ndim != 1:
        raise _fail(where, f"string array {name!r}", "UTF-8 bytes and their offsets", name)
    if offsets.dtype != np.int64 or offsets.ndim != 1 or len(offsets) == 0:
        raise _fail(where, f"array {name + '.offsets'!r}", "1-D int64 offsets", offsets.dtype)
    if offsets[0] != 0 or offsets[-1] != len(blob) or (np.diff(offsets) < 0).any():
        raise _fail(
            where, f"array {name + '.offsets'!r}", f"non-decreasing from 0 to {len(blob)}", "other"
        )
    try:
        blob.tobytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(where, f"string array {name!r}", "valid UTF-8", str(exc)) from None


def _vocabulary_size(
    arrays: Mapping[str, np.ndarray], name: str, tag: str, strings: set[str], where: str
) -> int:
    ids = arrays[name]
    if tag == "int":
        if ids.dtype != np.int64 or ids.ndim != 1:
            raise _fail(where, f"array {name!r}", "1-D int64 ids", f"{ids.dtype} {ids.shape}")
        n = len(ids)
        unique = len(np.unique(ids)) == n
    elif tag == "str" or tag.startswith("mixed:"):
        if name not in strings:
            raise _fail(where, f"array {name!r}", "packed strings", ids.dtype)
        offsets = arrays[name + ".offsets"]
        n = len(offsets) - 1
        raw = ids.tobytes()
        values = [raw[offsets[k] : offsets[k + 1]] for k in range(n)]
        if tag.startswith("mixed:"):
            flags = tag.split(":", 2)[2] if tag.count(":") >= 2 else ""
            if len(flags) != n or set(flags) - {"s", "i"}:
                raise _fail(where, f"id_encoding of {name!r}", f"{n} flags of 's' or 'i'", tag)
            for value, flag in zip(values, flags, strict=True):
                if flag == "i" and not value.lstrip(b"-").isdigit():
                    raise _fail(where, f"array {name!r}", "integer ids where flagged", value)
            values = [(f, v) for f, v in zip(flags, values, strict=True)]
        unique = len(set(values)) == n
    else:
        raise _fail(where, f"id_encoding of {name!r}", "'int', 'str' or 'mixed:...'", tag)
    if not unique:
        raise _fail(where, f"array {name!r}", "unique ids", "repeated ids")
    return n


def _check_csr(
    indptr: Any, indices: Any, n_users: int, n_items: int, where: str, prefix: str = "seen"
) -> None:
    ptr_name, idx_name = f"array '{prefix}_indptr_'", f"array '{prefix}_indices_'"
    if indptr is None or indices is None:
        raise _fail(
            where, f"{prefix} structure", f"both {prefix}_indptr_ and {prefix}_indices_", None
        )
    if indptr.dtype != np.int64 or indptr.ndim != 1 or len(indptr) != n_users + 1:
        raise _fail(
            where,
            ptr_name,
            f"{n_users + 1} int64 offsets",
            f"{indptr.dtype} {indptr.shape}",
        )
    if indices.dtype != np.int32 or indices.ndim != 1:
        raise _fail(where, idx_name, "1-D int32 item positions", indices.dtype)
    if indptr[0] != 0 or indptr[-1] != len(indices) or (np.diff(indptr) < 0).any():
        raise _fail(
            where,
            ptr_name,
            f"non-decreasing offsets from 0 to {len(indices)}",
            "other",
        )
    if len(indices) and (indices.min() < 0 or indices.max() >= n_items):
        found = f"positions {int(indices.min())}..{int(indices.max())}"
        raise _fail(where, idx_name, f"item positions in [0, {n_items})", found)


def _check_row_segments(
    arrays: Mapping[str, np.ndarray], name: str, n_users: int, where: str
) -> None:
    """``<prefix>_indptr_`` splits every other ``<prefix>_*`` array into one segment per
    user (e.g. timeSVD++'s ``day_indptr_`` over ``day_values_`` and ``day_bias_``)."""
    indptr = arrays[name]
    prefix = name[: -len("indptr_")]
    members = sorted(n for n in arrays if n.startswith(prefix) and n != name)
    if indptr.dtype != np.int64 or indptr.ndim != 1 or len(indptr) != n_users + 1:
        raise _fail(
            where,
            f"array {name!r}",
            f"{n_users + 1} int64 offsets",
            f"{indptr.dtype} {indptr.shape}",
        )
    for member in members:
        arr = arrays[member]
        if arr.ndim != 1:
            raise _fail(where, f"array {member!r}", "a 1-D array", arr.shape)
        if indptr[0] != 0 or indptr[-1] != len(arr) or (np.diff(indptr) < 0).any():
            raise _fail(
                where,
                f"array {name!r}",
                f"non-decreasing offsets from 0 to {len(arr)} (the length of {member!r})",
                "other",
            )
