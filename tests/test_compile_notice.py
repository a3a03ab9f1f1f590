"""The one-line "compiling kernels" notice: printed once, never fails a compilation."""

import io

import numba
import pytest
from numba.core import event

from factorkit import _compile


@pytest.fixture
def fresh_notice(monkeypatch):
    monkeypatch.setattr(_compile, "_notice", None)
    yield
    if _compile._notice is not None:
        event.unregister("numba:compile", _compile._notice)


def _compile_something(value):
    @numba.njit(cache=False)
    def f(x):
        return x + 1

    return f(value)


def test_the_notice_prints_once_on_the_first_compilation(fresh_notice):
    stream = io.StringIO()
    _compile.notify_first_compile(stream)
    _compile.notify_first_compile(stream)  # idempotent
    _compile_something(1)
    _compile_something(2.0)
    assert stream.getvalue() == (
        "factorkit: compiling kernels (first run only; they are cached for later runs) ...\n"
    )


def test_a_closed_stream_never_fails_the_compilation(fresh_notice):
    """The CLI registers the notice on the terminal; if that stream is closed by the time a
    kernel compiles (a test's captured stderr, a closed pipe), compiling still works."""
    stream = io.StringIO()
    _compile.notify_first_compile(stream)
    stream.close()
    assert _compile_something(41) == 42
    assert _compile._notice.printed
