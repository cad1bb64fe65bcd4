"""attnlab picks how OpenMP's idle threads wait before torch loads, unless the user did."""

import os
import subprocess
import sys

import pytest

VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
SHOW = f"import attnlab, os; print([os.environ.get(name) for name in {VARIABLES}])"


def _imported_with(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    done = subprocess.run([sys.executable, "-c", SHOW], env={**clean, **env},
                          capture_output=True, text=True, check=True, timeout=120)
    return done.stdout.strip()


def test_default_is_a_short_spin_in_libgomp_and_none_elsewhere():
    assert _imported_with({}) == "[None, '1000', '0']"


@pytest.mark.parametrize(("env", "expected"), [
    ({"OMP_WAIT_POLICY": "ACTIVE"}, "['ACTIVE', None, None]"),
    ({"GOMP_SPINCOUNT": "7"}, "[None, '7', None]"),
    ({"KMP_BLOCKTIME": "5"}, "[None, None, '5']"),
])
def test_the_users_setting_wins(env, expected):
    assert _imported_with(env) == expected
