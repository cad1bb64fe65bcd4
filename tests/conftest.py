"""Shared pytest setup: make tests/ importable so test files can import the oracles."""

import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import pytest  # noqa: E402
import torch  # noqa: E402

# The suite runs tiny tensors on a 2-core machine. There, OpenMP worker threads only add
# contention: with any other process busy, one 2-thread CPU SDPA call on a (2, 3, 4, 3)
# tensor takes ~12 ms instead of ~20 µs. One intra-op thread keeps the suite fast and
# its timings stable.
torch.set_num_threads(1)

# load_gguf caches converted weights in the user's cache folder (SmolLM2: 540 MB). The
# suite must not fill it: the cache is off unless a test turns it on for a temporary folder.
os.environ.setdefault("ATTNLAB_NO_CACHE", "1")


def _assert_one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert "usage:" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture
def one_line_error():
    """``one_line_error(err, *needles)``: stderr is one line, no traceback, has every needle."""
    return _assert_one_line_error
