"""attnlab picks how OpenMP's idle threads wait before torch loads, unless the user did."""

import os
import subprocess
import sys

import pytest

SHOW = ("import attnlab, os; "
        "print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))")


def _imported_with(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    done = subprocess.run([sys.executable, "-c", SHOW], env={**clean, **env},
                          capture_output=True, text=True, check=True, timeout=120)
    return done.stdout.strip()


def test_default_is_a_short_spin_on_linux_else_passive():
    expected = "1000 None" if sys.platform.startswith("linux") else "None PASSIVE"
    assert _imported_with({}) == expected


@pytest.mark.parametrize(("env", "expected"), [({"OMP_WAIT_POLICY": "ACTIVE"}, "None ACTIVE"),
                                               ({"GOMP_SPINCOUNT": "7"}, "7 None")])
def test_the_users_setting_wins(env, expected):
    assert _imported_with(env) == expected
