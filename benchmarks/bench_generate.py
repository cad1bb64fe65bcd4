"""Greedy cached generation tokens/s: HF generate vs attnlab, same tokens.

Run: ``uv run python benchmarks/bench_generate.py [--quick] [--out DIR] [--threads N]``.
The cases live in ``attnlab.bench.generate``; ``benchmarks/run.py`` runs every suite.
"""

import sys

from common import run_suite

if __name__ == "__main__":
    sys.exit(run_suite("generate"))
