"""Talking to the Dask cluster: finding the client, waiting with a timeout, placing tasks.

Every wait in :mod:`factorkit.distributed` goes through :func:`wait_all`, so no call can
hang: a wait longer than ``timeout`` seconds raises :class:`ClusterError` naming what was
being waited for and the scheduler's address.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from factorkit.exceptions import ClusterError, InvalidParameterError

__all__ = ["DEFAULT_TIMEOUT", "ClusterError", "get_client", "wait_all"]

#: seconds any single wait on the cluster may take before it is reported as stuck
DEFAULT_TIMEOUT = 600.0

#: serialises kernel launches from several threads of one process when numba's threading
#: layer cannot run them concurrently (its "workqueue" layer aborts the process)
_LAUNCH_LOCK = threading.Lock()


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:  # pragma: no cover - the extra is installed in CI
        raise ImportError(
            "factorkit.distributed needs Dask: pip install 'factorkit[dask]'"
        ) from None
    return distributed


def get_client(client: Any = None, timeout: float = 30.0) -> Any:
    """The :class:`distributed.Client` to use.

    ``client`` may be a Client, a scheduler address such as ``"tcp://10.0.0.5:8786"``, or
    None for the current default client (the one most recently created in this process).
    An unreachable address raises :class:`ClusterError` naming it after ``timeout`` seconds.
    """
    distributed = _import_distributed()
    if isinstance(client, distributed.Client):
        return client
    if isinstance(client, str):
        try:
            return distributed.Client(client, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"could not reach the Dask scheduler at {client!r} within {timeout:g} s "
                f"({type(exc).__name__}: {exc}); check that the scheduler runs "
                "(`dask scheduler`), that the address and port are right and that no "
                "firewall blocks it"
            ) from None
    if client is None:
        try:
            return distributed.get_client()
        except ValueError:
            raise ClusterError(
                "no Dask client: pass client=distributed.Client(...) or a scheduler address "
                "(client='tcp://host:8786'), or create a Client first"
            ) from None
    raise InvalidParameterError(
        f"client must be a distributed.Client, a scheduler address string or None; got "
        f"{type(client).__name__}"
    )


def wait_all(
    futures: Sequence[Any],
    timeout: float,
    what: str,
    client: Any,
    labels: Sequence[str] | dict[Any, str] | None = None,
    inputs: Sequence[Any] = (),
) -> list[Any]:
    """Results of ``futures`` in order, waiting at most ``timeout`` seconds in all.

    Errors raised inside tasks (such as a :class:`~factorkit.exceptions.DataError`
    naming a partition) are re-raised unchanged; a worker that keeps dying on a task
    (out of memory, for instance) and a timeout raise :class:`ClusterError`, naming the
    task by its entry in ``labels`` (one per future: the partition or block it handles;
    or a dict from task keys, which may name the tasks the futures depend on).
    ``inputs`` are futures of data scattered for these tasks: Dask cannot recompute them,
    so when one is lost with its worker the wait stops at once with a
    :class:`concurrent.futures.CancelledError` (the epoch retry's signal) instead of
    waiting for tasks that can never run.
    """
    if labels is not None and not isinstance(labels, dict):
        labels = {f.key: label for f, label in zip(futures, labels, strict=True)}
    distributed = _import_distributed()
    try:
        _wait_watching(distributed, futures, timeout, what, client, inputs)
    except TimeoutError:
        pending = [j for j, f in enumerate(futures) if not f.done()]
        key = futures[pending[0]].key
        example = (labels or {}).get(key, repr(key))
        raise ClusterError(
            f"{what}: no result after {timeout:g} s from the Dask cluster at "
            f"{client.scheduler.address} ({len(pending)} of {len(futures)} tasks pending, "
            f"e.g. {example}); check the workers (dashboard, logs) or pass a larger "
            "timeout="
        ) from None
    killed = _killed(futures)
    if killed is not None:
        raise _out_of_memory(what, killed, futures, client, labels) from None
    try:
        return client.gather(list(futures))
    except distributed.KilledWorker as exc:  # a dependency's worker died, not the task's
        raise _out_of_memory(what, exc, futures, client, labels) from None


def _wait_watching(
    distributed: Any,
    futures: Sequence[Any],
    timeout: float,
    what: str,
    client: Any,
    inputs: Sequence[Any],
) -> None:
    """``distributed.wait`` in one-second slices, checking ``inputs`` between them."""
    import time
    from concurrent.futures import CancelledError

    deadline = time.monotonic() + timeout
    with client.as_current():
        while True:
            left = deadline - time.monotonic()
            try:
                distributed.wait(list(futures), timeout=max(min(1.0, left), 0.001))
                return
            except TimeoutError:
                if left <= 1.0:
                    raise
            lost = [f for f in inputs if f.status in ("lost", "cancelled", "error")]
            if lost:
                raise CancelledError(
                    f"{what}: data scattered for it was lost with a worker ({lost[0].key})"
                )


def _killed(futures: Sequence[Any]) -> Any:
    """The first :class:`distributed.KilledWorker` among the failed ``futures``, if any
    (checked before gathering: a task that lost its inputs with the same worker reports
    a less telling error, and gather raises the first failure in order)."""
    distributed = _import_distributed()
    for f in futures:
        if f.status == "error":
            exc = f.exception(timeout=1)
            if isinstance(exc, distributed.KilledWorker):
                return exc
    return None


#: what ends every message about a worker killed for memory
MEMORY_FIX = (
    "Give the workers more memory (memory_limit= / dask worker --memory-limit), or use "
    "more workers or more blocks (n_blocks= on the reader) so each task holds less"
)


def terminate_fraction() -> float:
    import dask

    frac = dask.config.get("distributed.worker.memory.terminate", 0.95)
    return float(frac) if frac else 1.0


#: scheduler address -> the smallest worker memory_limit seen there: an error written
#: after the workers died (none connected) still names the limit they had
_LIMIT_SEEN: dict[str, int] = {}


def memory_limits(client: Any) -> dict[str, tuple[int, int]]:
    """Worker address -> (memory_limit, memory in use now) in bytes; limit 0 when none."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    out = {
        addr: (int(w.get("memory_limit") or 0), int(w.get("metrics", {}).get("memory") or 0))
        for addr, w in workers.items()
    }
    limits = [lim for lim, _ in out.values() if lim > 0]
    if limits:
        _LIMIT_SEEN[client.scheduler.address] = min(limits)
    return out


def nanny_workers(client: Any) -> set[str]:
    """Addresses of the workers that run under a nanny (the process that kills a worker at
    its memory limit; in-process workers of a threads-mode cluster have none)."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    return {addr for addr, w in workers.items() if w.get("nanny")}


def memory_phrase(client: Any) -> str:
    """'each worker may use 800 MiB (memory_limit), ...' for error messages."""
    limits = [lim for lim, _ in memory_limits(client).values() if lim > 0]
    if not limits and client.scheduler.address in _LIMIT_SEEN:
        limits = [_LIMIT_SEEN[client.scheduler.address]]
    if not limits:
        return "the workers have no memory_limit, so the operating system kills them"
    return (
        f"each worker may use {_mib(min(limits))} (memory_limit), and its nanny kills it at "
        f"{terminate_fraction():g} of that"
    )


def _out_of_memory(
    what: str, exc: Any, futures: Sequence[Any], client: Any, labels: dict[Any, str] | None
) -> ClusterError:
    task = (labels or {}).get(exc.task, f"task {exc.task!r}")
    worker = exc.last_worker.address if exc.last_worker is not None else "an unknown worker"
    return ClusterError(
        f"{what}: {task} killed the worker that ran it {exc.allowed_failures + 1} time(s) "
        f"(last {worker}); {memory_phrase(client)}. A worker dies like this when one task "
        f"needs more memory than it may use. {MEMORY_FIX}"
    )


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def worker_addresses(client: Any, timeout: float) -> list[str]:
    """Sorted addresses of the workers now connected (at least one, else ClusterError)."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise ClusterError(
            f"no Dask worker connected to the scheduler at {client.scheduler.address} "
            f"within {timeout:g} s; start workers with `dask worker "
            f"{client.scheduler.address}`"
        ) from None
    return sorted(client.scheduler_info(n_workers=-1)["workers"])


@functools.lru_cache(maxsize=1)
def _launches_safe() -> bool:
    from factorkit._threads import concurrent_launches_safe

    return concurrent_launches_safe()  # probes the threading layer: seconds, so once


@functools.lru_cache(maxsize=1)
def _pin_worker_blas() -> bool:
    """In a worker process of its own (started by a nanny), keep BLAS on one thread for
    good: every task there runs beside the kernels of the worker's other task threads.
    Limiting BLAS per task instead costs tens of milliseconds per task (threadpoolctl)."""
    import scipy.linalg.cython_blas  # noqa: F401  (numba's np.dot calls SciPy's BLAS)
    from threadpoolctl import ThreadpoolController

    ThreadpoolController().limit(limits=1, user_api="blas")
    return True


def _own_worker_process() -> bool:
    import multiprocessing

    return multiprocessing.parent_process() is not None


@contextlib.contextmanager
def kernel_threads(n_threads: int) -> Iterator[None]:
    """Run a parallel kernel on ``n_threads`` numba threads inside a task.

    In a worker process of its own, BLAS is pinned to one thread once; in a process shared
    with the client (threads-mode clusters), :func:`~factorkit._threads.using_threads`
    limits it for the call only, and launches are serialised when numba's threading layer
    cannot run them concurrently (its "workqueue" layer aborts the process).
    """
    import numba

    from factorkit._threads import using_threads

    if _own_worker_process():
        _pin_worker_blas()
        previous = numba.get_num_threads()
        numba.set_num_threads(n_threads)
        try:
            yield
        finally:
            numba.set_num_threads(previous)
        return
    lock = contextlib.nullcontext() if _launches_safe() else _LAUNCH_LOCK
    with lock, using_threads(n_threads):
        yield
