"""Save and load fitted models: one ``.npz`` file of arrays plus JSON metadata; no pickle.

This module only writes and reads files: what a model's fitted state is comes from the
model's public state protocol, ``model.get_state()`` (NumPy arrays and JSON-able values,
raw-id vocabularies as the arrays ``user_ids``/``item_ids``, the training history as
``history_`` records) and ``cls(**params).set_state(state)`` (see
:class:`factorkit.models.FactorModel`).

Layout of the file (a zip archive as written by :func:`numpy.savez`):

- ``__meta__``: UTF-8 JSON as uint8 — format name and version, factorkit version, model
  class, constructor parameters, fitted scalars, training history, and for every array
  its dtype, shape and SHA-256 digest;
- ``__meta_sha256__``: SHA-256 of the metadata bytes;
- ``user_ids`` / ``item_ids``: the raw-id vocabularies (int64 or unicode arrays);
- one entry per fitted array (unicode arrays as UTF-8 bytes plus ``<name>.offsets``).

Scalars of the state are stored in the metadata (``scalars``), ``history_`` as
``history``. Files written before the state protocol have the same layout and load
unchanged (a missing ``seen_values_`` is filled with ones).

Loading checks every digest, so a corrupted, truncated or foreign file raises
:class:`~factorkit.exceptions.ModelFormatError` saying what was wrong. The digests detect
damage, not tampering (anyone who edits a file can recompute them), so loading then
treats the file as untrusted input: :mod:`factorkit._state_checks` checks the metadata's
schema, the parameters against the constraints ``fit`` uses, and every array's dtype,
shape and index range against the id vocabularies before any array reaches a kernel. A
file from an untrusted place still deserves the care any download does: it cannot run
code (no pickle) or crash a kernel, but it can hold a deliberately bad model.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import numbers
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from factorkit._state_checks import check_arrays, check_metadata, check_params_and_scalars
from factorkit.exceptions import InvalidParameterError, ModelFormatError, NotFittedError

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load", "read_metadata", "save_model"]

FORMAT_NAME = "factorkit-model"
FORMAT_VERSION = 1


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def _json_value(value: Any) -> Any:
    """Parameters as JSON; values that cannot be stored faithfully become None."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)) and not any(callable(v) for v in value):
        return [_json_value(v) for v in value]
    return None  # callables, Generators: not part of a saved model


def _ids_to_array(ids: np.ndarray, kind: str) -> tuple[np.ndarray, str]:
    if ids.dtype.kind in "iu":
        return ids.astype(np.int64), "int"
    if ids.dtype == object and all(isinstance(x, str) for x in ids):
        return ids.astype(str), "str"
    if ids.dtype == object and all(
        isinstance(x, (numbers.Integral, str)) and not isinstance(x, bool) for x in ids
    ):
        codes = np.array([isinstance(x, str) for x in ids], dtype=np.bool_)
        return ids.astype(str), "mixed:" + _digest(codes) + ":" + "".join(
            "s" if c else "i" for c in codes
        )
    raise ModelFormatError(
        f"cannot save {kind} ids of type {ids.dtype}; ids must be integers or strings"
    )


def _array_to_ids(arr: np.ndarray, kind_tag: str, kind: str) -> np.ndarray:
    if kind_tag == "int":
        return arr.astype(np.int64)
    if kind_tag == "str":
        return arr.astype(object)
    if kind_tag.startswith("mixed:"):
        flags = kind_tag.split(":", 2)[2]
        values = [s if f == "s" else int(s) for s, f in zip(arr.tolist(), flags, strict=True)]
        return np.array(values, dtype=object)
    raise ModelFormatError(f"unknown id encoding {kind_tag!r} for {kind} ids")


def _pack_strings(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unicode array -> (UTF-8 bytes, offsets): compact, unlike fixed-width 'U' arrays."""
    encoded = [s.encode("utf-8") for s in arr.tolist()]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


def _unpack_strings(blob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    raw = blob.tobytes()
    out = [raw[offsets[k] : offsets[k + 1]].decode("utf-8") for k in range(len(offsets) - 1)]
    return np.array(out, dtype=object)


_ID_ARRAYS = {"user_ids": "user", "item_ids": "item"}


def save_model(model: Any, path: str | os.PathLike) -> None:
    """Write ``model.get_state()`` to ``path`` (see the module docstring for the layout)."""
    from factorkit import __version__

    try:
        state = model.get_state()
    except NotFittedError:
        raise NotFittedError(
            f"This {type(model).__name__} is not fitted yet; call fit(train) before save."
        ) from None
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, Any] = {}
    history = state.pop("history_", None)
    id_encoding: dict[str, str] = {}
    for name, value in state.items():
        if name in _ID_ARRAYS:
            arrays[name], id_encoding[_ID_ARRAYS[name]] = _ids_to_array(
                np.asarray(value), _ID_ARRAYS[name]
            )
        elif isinstance(value, np.ndarray):
            if value.dtype == object:  # text held as Python strings (e.g. titles after load)
                value = value.astype(str)
            arrays[name] = np.ascontiguousarray(value)
        else:
            scalars[name] = _json_value(value)
    strings = sorted(k for k, v in arrays.items() if v.dtype.kind == "U")
    for name in strings:
        arrays[name], arrays[name + ".offsets"] = _pack_strings(arrays[name])
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "factorkit_version": __version__,
        "class": type(model).__name__,
        "params": {k: _json_value(v) for k, v in model.get_params().items()},
        "scalars": scalars,
        "id_encoding": id_encoding,
        "string_arrays": strings,
        "history": history,
        "arrays": {
            k: {"dtype": str(v.dtype), "shape": list(v.shape), "sha256": _digest(v)}
            for k, v in arrays.items()
        },
    }
    meta_bytes = json.dumps(meta, sort_keys=True).encode()
    arrays["__meta__"] = np.frombuffer(meta_bytes, dtype=np.uint8)
    arrays["__meta_sha256__"] = np.frombuffer(
        hashlib.sha256(meta_bytes).hexdigest().encode(), dtype=np.uint8
    )
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


_ZIP_MAGIC = b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"


def _check_container(path: Path) -> None:
    """A model file is a zip archive; say what it is otherwise, before numpy guesses."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(_ZIP_MAGIC):
        return
    if head.startswith(_NPY_MAGIC):
        found = "a single NumPy array (.npy)"
    elif not head:
        found = "an empty file"
    else:
        found = "some other kind of file"
    raise ModelFormatError(
        f"{path}: not a factorkit model file: expected a model saved with model.save(path) "
        f"(a .npz zip archive); found {found}"
    )


def _open(path: str | os.PathLike) -> tuple[Any, dict]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    _check_container(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ModelFormatError(
            f"{path}: not a factorkit model file (not a readable .npz archive: {exc}); "
            "it may be truncated or a different kind of file"
        ) from None
    files = set(npz.files)
    if "__meta__" not in files or "__meta_sha256__" not in files:
        raise ModelFormatError(
            f"{path}: an .npz archive but not a factorkit model (no factorkit metadata); "
            "save models with model.save(path)"
        )
    try:
        meta_bytes = npz["__meta__"].tobytes()
        stored = npz["__meta_sha256__"].tobytes().decode()
    except Exception as exc:  # zlib/zip errors on truncated members
        raise ModelFormatError(
            f"{path}: metadata is unreadable ({exc}); the file is damaged"
        ) from None
    if hashlib.sha256(meta_bytes).hexdigest() != stored:
        raise ModelFormatError(f"{path}: metadata checksum mismatch; the file is corrupted")
    try:
        meta = json.loads(meta_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(
            f"{path}: metadata is not valid JSON ({exc}); the file is damaged or was edited"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ModelFormatError(f"{path}: format is {found!r}, not {FORMAT_NAME!r}")
        raise ModelFormatError(f"{path}: format is {meta.get('format')!r}, not {FORMAT_NAME!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: model format version {meta.get('format_version')} is not supported by "
            f"this factorkit (reads version {FORMAT_VERSION}); saved by factorkit "
            f"{meta.get('factorkit_version')}. Install that version or refit the model."
        )
    check_metadata(meta, str(path))
    return npz, meta


def read_metadata(path: str | os.PathLike) -> dict:
    """The verified JSON metadata of a saved model (for ``factorkit info``)."""
    npz, meta = _open(path)
    npz.close()
    return meta


def load(path: str | os.PathLike) -> Any:
    """Load a model saved with ``model.save(path)``; predictions are identical.

    Raises :class:`~factorkit.exceptions.ModelFormatError` for a corrupted, truncated,
    foreign or unsupported file.

    Examples
    --------
    >>> import factorkit as fk, tempfile, os
    >>> data = fk.Interactions.from_arrays([1, 1, 2, 2], [1, 2, 1, 3], [4.0, 3.0, 5.0, 2.0])
    >>> model = fk.BaselineOnly().fit(data)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.fk")
    >>> model.save(path)
    >>> loaded = fk.load(path)
    >>> bool((loaded.predict([1], [3]) == model.predict([1], [3])).all())
    True
    """
    from factorkit.base import model_class

    npz, meta = _open(path)
    with npz:
        try:
            cls = model_class(meta["class"])
        except KeyError:
            raise ModelFormatError(
                f"{path}: model class {meta['class']!r} is unknown to this factorkit"
            ) from None
        arrays = {}
        for name, info in meta["arrays"].items():
            try:
                arr = npz[name]
            except Exception as exc:
                raise ModelFormatError(
                    f"{path}: array {name!r} is missing or unreadable ({exc}); the file is damaged"
                ) from None
            if str(arr.dtype) != info["dtype"] or list(arr.shape) != info["shape"]:
                raise ModelFormatError(
                    f"{path}: array {name!r} has dtype {arr.dtype} and shape {arr.shape}; "
                    f"the metadata says {info['dtype']} {tuple(info['shape'])}"
                )
            if _digest(arr) != info["sha256"]:
                raise ModelFormatError(
                    f"{path}: array {name!r} checksum mismatch; the file is corrupted"
                )
            arrays[name] = arr
    check_params_and_scalars(cls, meta, str(path))
    check_arrays(cls, meta, arrays, str(path))
    for name in meta.get("string_arrays", []):
        arrays[name] = _unpack_strings(arrays[name], arrays.pop(name + ".offsets"))
    state: dict[str, Any] = dict(meta["scalars"])
    for name, kind in _ID_ARRAYS.items():
        state[name] = _array_to_ids(arrays.pop(name), meta["id_encoding"][kind], kind)
    state.update(arrays)
    if meta.get("history") is not None:
        state["history_"] = meta["history"]
    valid = set(inspect.signature(cls).parameters)
    model = cls(**{k: v for k, v in meta["params"].items() if k in valid})
    try:
        return model.set_state(state)
    except InvalidParameterError as exc:  # a state the class rejects: an edited file
        raise ModelFormatError(
            f"{path}: {exc}; the file is damaged or was edited: restore it from a trusted "
            "copy or refit the model"
        ) from None
