"""Modules imported on first use: ``import factorkit`` and a fit on arrays never load pandas.

pandas (with pyarrow, which pandas 3 loads with it) costs about 65 MB of resident memory
and 0.2 s per process; factorkit needs it only for DataFrames (``from_pandas``, the
readers, ``to_pandas``, ``history_``, result tables). Modules write
``from factorkit._lazy import pandas as pd`` and use ``pd`` as before: the first attribute
access imports pandas. ``sys.modules`` never holds the proxy, so other libraries that look
for pandas there are not misled.

Progress bars go through :func:`tqdm`, which imports ``tqdm.auto`` (10 MB) only for a
bar that shows.

Type checks on a value that may or may not be a pandas object go through
:func:`is_pandas`, which does not import pandas: an object cannot be a DataFrame when
pandas was never imported.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

__all__ = ["is_pandas", "pandas", "tqdm"]


class LazyModule:
    """Stands for a module until an attribute is read; then imports it (once: later reads
    are a ``sys.modules`` lookup)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        module = sys.modules.get(self._name) or importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazily imported module {self._name!r}>"


pandas: Any = LazyModule("pandas")


def is_pandas(obj: Any, *kinds: str) -> bool:
    """Whether ``obj`` is an instance of one of the pandas classes named in ``kinds``
    (``"DataFrame"``, ``"Series"``, ``"Index"``, ...), without importing pandas."""
    module = sys.modules.get("pandas")
    if module is None:
        return False
    return isinstance(obj, tuple(getattr(module, k) for k in kinds))


def tqdm(*args: Any, disable: bool = False, **kwargs: Any) -> Any:
    """``tqdm.auto.tqdm(*args, disable=disable, **kwargs)``, or a bar that does nothing
    when ``disable`` is true (tqdm is then never imported: every fit makes a bar)."""
    if disable:
        return _NoBar()
    from tqdm.auto import tqdm as bar

    return bar(*args, disable=disable, **kwargs)


class _NoBar:
    """What a disabled tqdm bar does: nothing."""

    def update(self, n: float = 1) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
