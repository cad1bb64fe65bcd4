"""functional attention vs torch SDPA at several lengths (plain, causal, bottom-right causal).

Run: ``uv run python benchmarks/bench_sdpa.py [--quick] [--out DIR] [--threads N]``.
The cases live in ``attnlab.bench.sdpa``; ``benchmarks/run.py`` runs every suite.
"""

import sys

from common import run_suite

if __name__ == "__main__":
    sys.exit(run_suite("sdpa"))
