"""Fixtures shared by the tests of several folders."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest


class ModelFiles:
    """Read and write factorkit model files below the library, as a tamperer would.

    :meth:`write` recomputes every array's checksum and the metadata's, so an edited file
    passes the integrity checks and only the structural validation can refuse it.
    """

    @staticmethod
    def read(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
        """``(meta, arrays)`` of a saved model, the two checksum entries removed."""
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays.pop("__meta__").tobytes())
        arrays.pop("__meta_sha256__")
        return meta, arrays

    @staticmethod
    def write(path: Path, meta: dict, arrays: dict[str, np.ndarray], meta_bytes=None) -> Path:
        """Write ``arrays`` with ``meta`` (or the raw ``meta_bytes``), checksums recomputed."""
        for name, arr in arrays.items():
            info = meta["arrays"].setdefault(name, {})
            arr = np.ascontiguousarray(arr)
            info.update(
                dtype=str(arr.dtype),
                shape=list(arr.shape),
                sha256=hashlib.sha256(arr.tobytes()).hexdigest(),
            )
        raw = meta_bytes if meta_bytes is not None else json.dumps(meta, sort_keys=True).encode()
        digest = hashlib.sha256(raw).hexdigest().encode()
        with open(path, "wb") as fh:
            np.savez(
                fh,
                **arrays,
                __meta__=np.frombuffer(raw, np.uint8),
                __meta_sha256__=np.frombuffer(digest, np.uint8),
            )
        return path


@pytest.fixture(scope="session")
def model_files() -> type[ModelFiles]:
    """:class:`ModelFiles`: read a saved model's parts and write them back edited."""
    return ModelFiles
