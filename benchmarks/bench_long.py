"""Time and peak memory against N for the fused, windowed, offset-causal and math paths.

Run: ``uv run python benchmarks/bench_long.py [--quick] [--out DIR] [--threads N]``.
The cases live in ``attnlab.bench.long``; ``benchmarks/run.py`` runs every suite.
"""

import sys

from common import run_suite

if __name__ == "__main__":
    sys.exit(run_suite("long"))
