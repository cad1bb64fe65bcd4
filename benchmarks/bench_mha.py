"""MultiHeadAttention vs nn.MultiheadAttention: training fwd+bwd and inference (time, memory).

Run: ``uv run python benchmarks/bench_mha.py [--quick] [--out DIR] [--threads N]``.
The cases live in ``attnlab.bench.mha``; ``benchmarks/run.py`` runs every suite.
"""

import sys

from common import run_suite

if __name__ == "__main__":
    sys.exit(run_suite("mha"))
