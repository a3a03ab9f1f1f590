"""Thread policy: the OpenMP wait policy is set before kernels run, unless the user set one."""

import os
import subprocess
import sys

import pytest

CHILD = "import os, factorkit; print(os.environ.get('GOMP_SPINCOUNT'))"


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    return {**env, **extra}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [({}, "1000"), ({"GOMP_SPINCOUNT": "5"}, "5"), ({"OMP_WAIT_POLICY": "ACTIVE"}, "None")],
)
def test_short_spin_unless_the_user_chose(extra, expected):
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env=_child_env(**extra), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected


def _square(t, n_tasks, base):
    return base + t * t


def _fail_at_three(t, n_tasks):
    if t == 3:
        raise ValueError("task 3 failed")
    return t


def test_run_tasks_results_in_task_order_and_errors_reach_the_caller():
    from factorkit._threads import run_tasks

    for threads in (1, 2):
        assert run_tasks(_square, 6, threads, 10) == [10, 11, 14, 19, 26, 35]
        with pytest.raises(ValueError, match="task 3 failed"):
            run_tasks(_fail_at_three, 6, threads)


def test_run_tasks_does_not_wait_for_a_pool_thread_that_never_starts():
    """On a busy machine a pool thread may get a core only after the calling thread has
    run every task: run_tasks returns then, instead of waiting for the thread to start."""
    import threading
    import time

    from factorkit._threads import _worker_pool, run_tasks

    pool = _worker_pool()
    release = threading.Event()
    busy = [pool.submit(release.wait, 10) for _ in range(pool._max_workers)]
    try:
        start = time.perf_counter()
        assert run_tasks(_square, 8, 2, 0) == [t * t for t in range(8)]
        assert time.perf_counter() - start < 5  # the pool threads are held for 10 s
    finally:
        release.set()
        for future in busy:
            future.result()
