"""Reading and writing the matrices people compress: images and weight files.

Weights: ``.npy``, ``.npz`` (one array, or the one named by ``key``) and ``.safetensors``
(read with NumPy from the documented layout: an 8-byte little-endian header length, a
JSON header of dtype / shape / byte offsets, then the raw little-endian tensors; no
extra dependency). Images: PNG, JPEG, ... through Pillow (the ``image`` extra).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from factorkit.exceptions import DataError

__all__ = ["IMAGE_SUFFIXES", "WEIGHT_SUFFIXES", "read_image", "read_matrix", "write_matrix"]

WEIGHT_SUFFIXES = (".npy", ".npz", ".safetensors")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_ST_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
    "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}  # fmt: skip


def read_matrix(path: str | Path, key: str | None = None) -> np.ndarray:
    """The array stored in a ``.npy``, ``.npz`` or ``.safetensors`` file, or an image.

    A file with several arrays needs ``key``; the error lists the names it holds.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    if suffix in IMAGE_SUFFIXES:
        return read_image(path)
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return _pick(dict(z.items()), key, path)
        if suffix == ".safetensors":
            return _pick(_read_safetensors(path), key, path)
    except DataError:
        raise
    except (ValueError, OSError, EOFError, KeyError) as exc:
        raise DataError(f"{path}: not a readable {suffix} file ({exc}).") from None
    raise DataError(
        f"{path}: unknown file type {suffix!r}; pass a weight file "
        f"({', '.join(WEIGHT_SUFFIXES)}) or an image ({', '.join(IMAGE_SUFFIXES)})."
    )


def _pick(arrays: dict[str, np.ndarray], key: str | None, path: Path) -> np.ndarray:
    if key is not None:
        if key not in arrays:
            raise DataError(f"{path}: has no array {key!r}; it holds {', '.join(arrays)}.")
        return arrays[key]
    if len(arrays) != 1:
        two_d = [k for k, v in arrays.items() if v.ndim == 2]
        raise DataError(
            f"{path}: holds {len(arrays)} arrays ({', '.join(list(arrays)[:10])}); name one "
            f"with key= (--key on the command line), e.g. {two_d[0] if two_d else 'NAME'!r}."
        )
    return next(iter(arrays.values()))


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    if len(raw) < 8:
        raise DataError(f"{path}: too short to be a safetensors file.")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise DataError(f"{path}: safetensors header length {n} exceeds the file size.")
    try:
        header = json.loads(raw[8 : 8 + n])
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: safetensors header is not JSON ({exc}).") from None
    body = memoryview(raw)[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = _ST_DTYPES.get(info["dtype"])
        if dt is None:
            raise DataError(
                f"{path}: tensor {name!r} has dtype {info['dtype']}, which factorkit does not "
                f"read; supported: {', '.join(_ST_DTYPES)}."
            )
        start, end = info["data_offsets"]
        arr = np.frombuffer(body[start:end], dtype=np.dtype(dt).newbyteorder("<"))
        out[name] = arr.reshape(info["shape"]).astype(dt)
    return out


def write_matrix(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write named arrays: ``.npz`` (compressed) or ``.safetensors``, by suffix."""
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        header, chunks, offset = {}, [], 0
        names = {np.dtype(v): k for k, v in _ST_DTYPES.items()}
        for name, arr in arrays.items():
            arr = np.ascontiguousarray(arr)
            data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
            header[name] = {
                "dtype": names[arr.dtype],
                "shape": list(arr.shape),
                "data_offsets": [offset, offset + len(data)],
            }
            chunks.append(data)
            offset += len(data)
        head = json.dumps(header).encode()
        head += b" " * (-len(head) % 8)
        path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(chunks))
        return path
    if path.suffix.lower() != ".npz":
        raise DataError(f"{path}: write factors to a .npz or .safetensors file.")
    np.savez_compressed(path, **arrays)
    return path


def read_image(path: str | Path) -> np.ndarray:
    """An image as a uint8 array: (height, width) for grey, (height, width, 3) for colour
    (palette and alpha images are converted to RGB)."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - depends on the environment
        raise DataError(
            f"{path}: reading images needs Pillow; install it with pip install 'factorkit[image]'."
        ) from None
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in ("L", "RGB"):
                img = img.convert("L" if img.mode in ("1", "I", "I;16", "F") else "RGB")
            return np.asarray(img)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not a readable image ({exc}).") from None


def write_image(path: str | Path, array: np.ndarray) -> Path:
    """Save a uint8 (height, width[, 3]) array as an image (format from the suffix)."""
    from PIL import Image

    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return Path(path)


def is_image_path(path: Any) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES
