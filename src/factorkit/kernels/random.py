"""The one random-number module of the kernels: splitmix64 streams and what is drawn from them.

Every kernel that draws random numbers (BPR's samples, SVD++'s rating orders, the
initial factors) uses the generator here, so that one seeded stream means the same thing
everywhere:

- :func:`splitmix64_next` advances a splitmix64 state (Steele, Lea & Flood, "Fast
  splittable pseudorandom number generators", OOPSLA 2014) and returns 64 random bits;
  a state is a plain uint64, so each thread or row keeps its own stream and results never
  depend on which thread runs it;
- :func:`splitmix64_below` maps 64 bits to an integer in ``[0, n)``;
- :func:`splitmix64_unit` maps them to a float64 in ``[0, 1)``;
- :func:`random_normal_fill` draws normal values on all cores (chunks dealt to a fixed
  task list run by :func:`factorkit._threads.run_tasks`).

Independent streams start from ``splitmix64_next(seed ^ (index * C))`` for a fixed odd
constant ``C`` (``SPLITMIX64_GAMMA`` or ``SPLITMIX64_MIX1``): the first step hashes the
stream's index into its state.

:func:`random_normal_fill` fills an array with N(0, scale**2) draws by the ziggurat
method (Marsaglia & Tsang, "The ziggurat method for generating random variables", 2000:
128 layers; about 99% of draws cost one table lookup, a multiply and a compare) on
splitmix64 streams. The rows are cut into fixed chunks of about ``NORMAL_CHUNK`` values,
chunk ``c`` drawing from a stream started at a hash of ``(seed, c)``, so the values depend
on the seed and shape only, never on the number of threads (timings against NumPy's
``standard_normal``: docs/benchmarks.md, "Kernel design notes").
"""

from __future__ import annotations

import math

import numba
import numpy as np

from factorkit._threads import run_tasks
from factorkit.kernels._jit import jit

__all__ = [
    "NORMAL_CHUNK",
    "NORMAL_TASKS",
    "SPLITMIX64_GAMMA",
    "SPLITMIX64_MIX1",
    "SPLITMIX64_MIX2",
    "random_normal_fill",
    "splitmix64_below",
    "splitmix64_next",
    "splitmix64_unit",
]

#: values per independent stream (the unit of parallel work)
NORMAL_CHUNK = 4096

#: splitmix64's increment (2**64 / golden ratio, odd) and its two finaliser multipliers
SPLITMIX64_GAMMA = np.uint64(0x9E3779B97F4A7C15)
SPLITMIX64_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
SPLITMIX64_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53
_R = 3.442619855899  # start of the tail
_LAYER_AREA = 9.91256303526217e-3


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer edges ``x`` (129, decreasing from the tail to 0), densities ``f(x)``, and
    acceptance thresholds ``x[i + 1] / x[i]`` for 128 layers of equal area."""
    x = np.empty(129)
    x[0] = _LAYER_AREA / math.exp(-0.5 * _R * _R)  # the base layer's equivalent width
    x[1] = _R
    for i in range(2, 128):
        x[i] = math.sqrt(-2.0 * math.log(_LAYER_AREA / x[i - 1] + math.exp(-0.5 * x[i - 1] ** 2)))
    x[128] = 0.0
    f = np.exp(-0.5 * x * x)
    accept = np.empty(128)
    accept[0] = _R / x[0]
    accept[1:] = x[2:] / x[1:128]
    return x, f, accept


_X, _F, _ACCEPT = _ziggurat_tables()


@jit()
def splitmix64_next(state):  # pragma: no cover - compiled
    """One step of splitmix64: returns ``(new_state, 64 random bits)`` (both uint64)."""
    state = state + SPLITMIX64_GAMMA
    z = state
    z = (z ^ (z >> np.uint64(30))) * SPLITMIX64_MIX1
    z = (z ^ (z >> np.uint64(27))) * SPLITMIX64_MIX2
    return state, z ^ (z >> np.uint64(31))


@jit()
def splitmix64_below(bits, n):  # pragma: no cover - compiled
    """An integer in ``[0, n)`` from 64 random bits.

    Lemire's multiply-shift on the high 32 bits when ``n < 2**32`` (no division; bias at
    most ``n / 2**32``), else a modulo.
    """
    if n <= 4294967295:
        return np.int64(((bits >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))
    return np.int64(bits % np.uint64(n))


@jit()
def splitmix64_unit(bits):  # pragma: no cover - compiled
    """A float64 in [0, 1) from the top 53 of 64 random bits."""
    return np.float64(np.int64(bits >> np.uint64(11))) * _TO_UNIT  # via int64: faster


@jit()
def _tail(state, r):  # pragma: no cover - compiled
    """A draw from the normal's tail beyond ``r`` (Marsaglia's exponential method)."""
    while True:
        state, b1 = splitmix64_next(state)
        state, b2 = splitmix64_next(state)
        t = -np.log1p(-splitmix64_unit(b1)) / r
        y = -np.log1p(-splitmix64_unit(b2))
        if 2.0 * y >= t * t:
            return state, r + t


#: tasks that :func:`random_normal_fill` deals the chunks to, at most (round-robin; each
#: chunk keeps its own stream, so the values never depend on this or on the threads)
NORMAL_TASKS = 256


def _chunk_rows(k):
    """Rows per chunk of ``k`` columns: about ``NORMAL_CHUNK`` values."""
    return max(1, NORMAL_CHUNK // max(k, 1))


@jit()
def _fill_task(task, n_tasks, out, k, rows, seed, scale, x, f, accept):  # pragma: no cover
    """Chunks ``task, task + n_tasks, ...`` of :func:`random_normal_fill`: one task of
    :func:`~factorkit._threads.run_tasks`.

    The draw is written out here rather than in a helper returning (state, value):
    numba compiled that helper's loop far slower (docs/benchmarks.md).
    """
    n_rows = out.shape[0]
    n_chunks = (n_rows + rows - 1) // rows
    for c in range(task, n_chunks, n_tasks):
        state, _ = splitmix64_next(seed ^ (np.uint64(c) * SPLITMIX64_MIX1))
        for r in range(c * rows, min(n_rows, (c + 1) * rows)):
            for q in range(k):
                while True:
                    state, bits = splitmix64_next(state)
                    layer = np.int64(bits & np.uint64(127))
                    # the top 53 bits: independent of the layer and sign bits
                    u = splitmix64_unit(bits)
                    if u < accept[layer]:  # inside the layer's rectangle under the curve
                        v = u * x[layer]
                        break
                    if layer == 0:  # the base layer's overhang: the tail beyond x[1]
                        state, v = _tail(state, x[1])
                        break
                    v = u * x[layer]
                    state, b3 = splitmix64_next(state)
                    # the wedge between the rectangle and the curve
                    edge = f[layer + 1] + splitmix64_unit(b3) * (f[layer] - f[layer + 1])
                    if edge < np.exp(-0.5 * v * v):
                        break
                if bits & np.uint64(128):
                    v = -v
                out[r, q] = v * scale


def random_normal_fill(
    out: np.ndarray,
    seed: int,
    scale: float = 1.0,
    columns: int | None = None,
    n_threads: int | None = None,
) -> np.ndarray:
    """Fill ``out`` (C-ordered, 1-D or 2-D) with N(0, ``scale``**2) draws; returns it.

    With ``columns``, only the first ``columns`` columns of a 2-D ``out`` are filled (the
    rest is left as it is). The values depend on ``seed`` (an integer, taken modulo
    2**64), the shape and ``columns`` only; ``n_threads`` (a resolved count, see
    :mod:`factorkit._threads`; default: numba's current setting) only says how many
    threads draw them.

    Examples
    --------
    >>> import numpy as np
    >>> x = random_normal_fill(np.empty(100_000, dtype=np.float32), seed=1, scale=0.1)
    >>> round(float(x.mean()), 2), round(float(x.std()), 2)
    (0.0, 0.1)
    """
    if not out.flags.c_contiguous:
        raise ValueError("random_normal_fill needs a C-ordered array")
    rows = out.reshape(len(out), -1) if out.ndim > 1 else out.reshape(-1, 1)
    k = rows.shape[1] if columns is None else int(columns)
    chunk = _chunk_rows(k)
    n_tasks = max(1, min(NORMAL_TASKS, -(-len(rows) // chunk)))
    threads = numba.get_num_threads() if n_threads is None else n_threads
    run_tasks(
        _fill_task, n_tasks, threads,
        rows, k, chunk, np.uint64(seed % 2**64), float(scale), _X, _F, _ACCEPT,
    )  # fmt: skip
    return out
