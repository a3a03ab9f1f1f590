"""Telling kernel compilation apart from work: numba compiles each kernel on its first
call in a fresh environment (then loads it from the on-disk cache), and that one-off cost
must never be reported as fit or predict time.

Built on numba's event API: a compilation fires ``numba:compile`` start/end events; a
kernel loaded from the cache fires none.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from numba.core import event

__all__ = ["CompileTime", "compile_time", "notify_first_compile"]

_COMPILE = "numba:compile"


@dataclass
class CompileTime:
    """Seconds spent compiling kernels inside a :func:`compile_time` block."""

    seconds: float = 0.0


@contextlib.contextmanager
def compile_time() -> Iterator[CompileTime]:
    """Measure the kernel compilation inside the block (0.0 when everything was cached).

    Nested compilations (a kernel compiling the kernels it calls) count once.

    Examples
    --------
    >>> import factorkit as fk
    >>> with compile_time() as compiled:
    ...     model = fk.BaselineOnly().fit(fk.datasets.load_movielens_small())
    >>> compiled.seconds >= 0.0
    True
    """
    result = CompileTime()
    with event.install_timer(_COMPILE, lambda seconds: setattr(result, "seconds", seconds)):
        yield result


class _FirstCompileNotice(event.Listener):
    """Prints one line when the first compilation of the process starts."""

    def __init__(self, stream: TextIO | None, message: str) -> None:
        self._stream = stream  # None: whatever sys.stderr is when the notice prints
        self._message = message
        self._lock = threading.Lock()
        self.printed = False

    def on_start(self, ev: event.Event) -> None:
        with self._lock:
            if not self.printed:
                self.printed = True
                # a closed or broken stream: a courtesy notice must never fail the
                # compilation it announces
                with contextlib.suppress(ValueError, OSError):
                    print(self._message, file=self._stream or sys.stderr, flush=True)

    def on_end(self, ev: event.Event) -> None:
        pass


_notice: _FirstCompileNotice | None = None


def notify_first_compile(stream: TextIO | None = None) -> None:
    """From now on, print a one-line notice on ``stream`` (default: ``sys.stderr`` as it is
    when the notice prints) the first time a kernel compiles in this process. Used by the
    CLI on a terminal; idempotent. A stream closed by then is skipped silently."""
    global _notice
    if _notice is not None:
        return
    _notice = _FirstCompileNotice(
        stream,
        "factorkit: compiling kernels (first run only; they are cached for later runs) ...",
    )
    event.register(_COMPILE, _notice)
