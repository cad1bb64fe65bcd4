"""Shared pytest setup: make tests/ importable so test files can import the oracles."""

import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import shutil  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from cli_helpers import one_line  # noqa: E402

# The suite runs tiny tensors on a 2-core machine. There, OpenMP worker threads only add
# contention: with any other process busy, one 2-thread CPU SDPA call on a (2, 3, 4, 3)
# tensor takes ~12 ms instead of ~20 µs. One intra-op thread keeps the suite fast and
# its timings stable.
torch.set_num_threads(1)

# load_gguf caches converted weights in the user's cache folder (SmolLM2: 540 MB). The
# suite must not fill it: the cache is off unless a test turns it on for a temporary folder.
os.environ.setdefault("ATTNLAB_NO_CACHE", "1")


def _assert_one_line_error(err: str, *needles: str) -> None:
    line = one_line(err)
    assert "usage:" not in err
    for needle in needles:
        assert needle in line, (needle, line)


@pytest.fixture
def one_line_error():
    """``one_line_error(err, *needles)``: stderr is one line, no traceback, has every needle."""
    return _assert_one_line_error


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium through playwright (the Debian package: .ci/install-browser).

    Missing, it skips the browser tests, except under CI, where it fails them.
    """
    executable = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - depends on the environment
        sync_playwright = None
    if executable is None or sync_playwright is None:
        missing = "chromium (run .ci/install-browser)" if executable is None else "playwright"
        if os.environ.get("CI"):
            pytest.fail(f"{missing} is required for the browser tests when CI is set")
        pytest.skip(f"{missing} not found: browser tests skipped (they fail when CI is set)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, headless=True)
        yield instance
        instance.close()
