"""Training tokens/s of a GPT-2-shaped model: HF vs attnlab (from_hf), and torch.compile.

Run: ``uv run python benchmarks/bench_train.py [--quick] [--out DIR] [--threads N]``.
The cases live in ``attnlab.bench.train``; ``benchmarks/run.py`` runs every suite.
"""

import sys

from common import run_suite

if __name__ == "__main__":
    sys.exit(run_suite("train"))
