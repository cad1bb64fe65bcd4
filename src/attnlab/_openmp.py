"""OpenMP's waiting policy: what the ``attnlab`` command sets, and how to take it back out.

PyTorch's OpenMP pool (libgomp on Linux wheels) lets idle threads spin before
they sleep; libgomp's default spin (~300k rounds) made a small training step
take up to 1.2 s instead of 17-21 ms when two processes shared 2 cores
(measurements in docs/benchmarks.md). OpenMP reads its settings once, when
torch loads, so only a process that starts before torch can set them.

* The ``attnlab`` command owns its process and starts before torch loads: it
  applies :data:`OPENMP_DEFAULTS` unless the user set one of
  :data:`OPENMP_VARIABLES` (:func:`apply_command_policy`), and records what it set.
* ``import attnlab`` never touches the environment: a library user decides
  (README, "Sharing the cores").
* ``attnlab bench`` measures its cases as a library user runs them, so it hands
  its fresh processes the environment without what the command set
  (:func:`user_environment`).

Only the standard library here: the command imports this before torch.
"""

import os
import sys

#: What the command sets: spin a little, then sleep (libgomp; Intel's/LLVM's OpenMP).
OPENMP_DEFAULTS = {"GOMP_SPINCOUNT": "1000", "KMP_BLOCKTIME": "0"}
#: Any of these set by the user means: leave the policy alone.
OPENMP_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
#: Names the variables the command set itself (they are not the user's).
OPENMP_SET_MARK = "ATTNLAB_OPENMP_SET_BY_CLI"


def apply_command_policy() -> bool:
    """Set :data:`OPENMP_DEFAULTS` if torch is not loaded and the user set no policy.

    Returns:
        Whether it set them (and marked them in :data:`OPENMP_SET_MARK`).
    """
    if "torch" in sys.modules or set(OPENMP_VARIABLES) & set(os.environ):
        return False
    os.environ.update(OPENMP_DEFAULTS)
    os.environ[OPENMP_SET_MARK] = " ".join(OPENMP_DEFAULTS)
    return True


def user_environment() -> dict[str, str]:
    """This process's environment without what :func:`apply_command_policy` set."""
    env = dict(os.environ)
    for name in env.pop(OPENMP_SET_MARK, "").split():
        env.pop(name, None)
    return env
