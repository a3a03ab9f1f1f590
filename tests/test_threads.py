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


def _drive(workers, seconds_for, calls):
    chosen = []
    for call in range(calls):
        n = workers.next()
        chosen.append(n)
        workers.record(n, seconds_for(n, call))
    return chosen


def test_adaptive_workers_keeps_all_threads_when_they_are_faster():
    from factorkit._threads import AdaptiveWorkers

    chosen = _drive(AdaptiveWorkers(2), lambda n, _: 1.0 if n == 2 else 1.7, 30)
    # warm-up, then each count timed once: one probe of one worker in the whole fit
    assert chosen[:3] == [2, 2, 1]
    assert chosen[3:] == [2] * 27


def test_adaptive_workers_moves_to_one_worker_under_load_and_back_when_it_ends():
    from factorkit._threads import AdaptiveWorkers

    def seconds(n, call):
        # other processes hold the cores for calls 0-14: one worker gets 2/3 of a core
        # and two stall each other; then the machine is quiet again
        if call < 15:
            return 1.4 if n == 2 else 1.0
        return 0.4 if n == 2 else 0.67

    chosen = _drive(AdaptiveWorkers(2), seconds, 40)
    assert chosen[:4] == [2, 2, 1, 1]
    assert set(chosen[3:15]) == {1}
    # one worker's times fall when the load ends: a probe of two, which are faster again
    assert set(chosen[-15:]) == {2}


def test_adaptive_workers_with_one_thread_never_probes():
    from factorkit._threads import AdaptiveWorkers

    assert _drive(AdaptiveWorkers(1), lambda n, _: 1.0, 10) == [1] * 10


def test_adaptive_workers_does_not_probe_while_the_threads_hold_their_cores():
    from factorkit._threads import AdaptiveWorkers

    workers = AdaptiveWorkers(2)
    chosen = []
    for call in range(30):
        n = workers.next()
        chosen.append(n)
        seconds = 1.0 if call < 15 else 0.5  # a clock change, threads still on their cores
        workers.record(n, seconds, cpu_seconds=0.97 * n * seconds)
    assert chosen == [2] * 30
    # the same times with the threads off their cores half the time: one worker probed
    workers = AdaptiveWorkers(2)
    assert _drive(workers, lambda n, _: 1.0, 3) == [2, 2, 1]
