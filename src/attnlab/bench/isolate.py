"""Measure each case the way a user runs it: in a fresh process, torch imported first.

Why a fresh process: PyTorch's OpenMP runtime reads its settings once, when
torch loads, and a long benchmark run warms caches and allocators that a
user's program does not have. So every case runs in its own interpreter whose
first statement is ``import torch`` (as in the README's quick start), with the
environment the user started the harness with (:func:`user_environment`): the
OpenMP waiting policy that the ``attnlab`` command sets for its own process is
taken out again, because a library user's program does not have it. A setting
the user made themselves (``GOMP_SPINCOUNT=...`` on the command line) stays.

Why a *busy* variant: users' machines are rarely idle (a browser, an editor, a
second job). Under ``"busy"`` the harness starts one extra process that spins on
a core (``while True: pass``) before the case's process starts, and stops it
after that process exits, so every timed call shares the cores with it. A kernel
that wakes the thread pool many times per call slows down far more under such
load than one that wakes it a few times: both figures are reported.

The child prints its rows as one JSON line; the parent rebuilds them.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields

from .._openmp import user_environment

CONDITIONS = {"alone": "nothing else started", "busy": "another process busy on a core"}
MARK = "attnlab-bench-rows: "

# Runs in the fresh interpreter. torch first, as users import it.
CHILD = f"""import torch
import json, sys
from attnlab.bench.isolate import child
print({MARK!r} + json.dumps(child(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])))
"""
BUSY = "while True: pass"


@contextmanager
def under(condition: str) -> Iterator[subprocess.Popen | None]:
    """Run the ``with`` body under ``condition``: ``"busy"`` keeps a spinning process alive.

    Yields that process (None when ``"alone"``); it is killed when the body ends.

    Raises:
        ValueError: For an unknown ``condition``.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {', '.join(CONDITIONS)}, got {condition!r}")
    if condition == "alone":
        yield None
        return
    busy = subprocess.Popen([sys.executable, "-c", BUSY], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield busy
    finally:
        busy.kill()
        busy.wait()


def run_isolated(suite: str, index: int, profile: str, threads: int | None,
                 condition: str, timeout: float = 3600.0) -> dict:
    """Run case ``index`` of ``suite`` in a fresh process under ``condition``.

    Returns ``{"rows": [Row as dict, ...]}`` or ``{"skipped": why}``.

    Raises:
        ValueError: For an unknown ``condition``.
        RuntimeError: If the case's process fails (with the end of its stderr).
    """
    with under(condition):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, suite, str(index), profile,
             "" if threads is None else str(threads)],
            capture_output=True, text=True, timeout=timeout, env=user_environment(),
            check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark case {suite}[{index}] ({condition}) failed with exit "
                           f"status {done.returncode}: {done.stderr.strip()[-2000:]}")
    return json.loads(lines[-1][len(MARK):])


def child(suite: str, index: int, profile: str, threads: str) -> dict:
    """In the fresh process: run one case and return its rows (JSON-ready)."""
    import torch

    from .runner import PROFILES, Skipped, load_suite, run_case

    if threads:
        torch.set_num_threads(int(threads))
    chosen = PROFILES[profile]
    case = load_suite(suite).cases(chosen)[index]
    try:
        rows = run_case(case, chosen)
    except Skipped as why:
        return {"skipped": str(why)}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"rows": [asdict(row) for row in rows], "load": load}


def rows_from_json(rows: list[dict]) -> list:
    """Rebuild runner ``Row`` objects (their ``Stats`` included) from :func:`child`'s output."""
    from .harness import Stats
    from .runner import Row

    stats = {f.name for f in fields(Row) if "Stats" in str(f.type)}
    return [Row(**{key: Stats(**value) if key in stats and value is not None else value
                   for key, value in row.items()}) for row in rows]
