"""Importing attnlab leaves the process environment alone (OpenMP settings included).

OpenMP reads its waiting policy once, when torch loads, so a library that sets it
at import only works when imported before torch, and it changes the environment
of every program that imports it (and of their child processes). attnlab sets
nothing; the README's speed section says what a user sharing the cores may set.
"""

import os
import subprocess
import sys

import pytest

SHOW = "import os, json; before = dict(os.environ); {imports}; print(json.dumps(before == dict(" \
    "os.environ)))"


@pytest.mark.parametrize("imports", ["import attnlab", "import torch; import attnlab",
                                     "import attnlab.cli.main, attnlab.bench"])
def test_import_leaves_os_environ_alone(imports):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    done = subprocess.run([sys.executable, "-c", SHOW.format(imports=imports)], env=env,
                          capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "true"


CLI = ("import os, sys, json; from attnlab.cli.main import main; before = dict(os.environ); "
       "main(['models']); print(json.dumps({k: os.environ.get(k) for k in "
       "('GOMP_SPINCOUNT', 'KMP_BLOCKTIME', 'OMP_WAIT_POLICY')}))")


@pytest.mark.parametrize(("preset", "expected"), [
    ({}, {"GOMP_SPINCOUNT": "1000", "KMP_BLOCKTIME": "0", "OMP_WAIT_POLICY": None}),
    ({"OMP_WAIT_POLICY": "ACTIVE"},
     {"GOMP_SPINCOUNT": None, "KMP_BLOCKTIME": None, "OMP_WAIT_POLICY": "ACTIVE"}),
])
def test_the_command_sets_a_waiting_policy_unless_the_user_did(preset, expected):
    import json

    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")} | preset
    done = subprocess.run([sys.executable, "-c", CLI], env=env, capture_output=True, text=True,
                          check=True, timeout=120)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected
