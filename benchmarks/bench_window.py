"""Sliding-window attention (causal, w=257) vs dense SDPA with a band mask, fwd and fwd+bwd.

Run: ``uv run python benchmarks/bench_window.py [--quick] [--out DIR] [--threads N]``.
The cases live in ``attnlab.bench.window``; ``benchmarks/run.py`` runs every suite.
"""

import sys

from common import run_suite

if __name__ == "__main__":
    sys.exit(run_suite("window"))
