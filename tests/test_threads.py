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
