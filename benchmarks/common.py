"""The timing harness, for scripts in this folder: it lives in ``attnlab.bench.harness``.

The harness is part of the package (so ``attnlab bench`` works from an installed
wheel too); this module re-exports it for ``benchmarks/*.py`` and for anyone
writing a new benchmark script next to them.
"""

import sys

from attnlab.bench.harness import (
    Case,
    Contender,
    Setup,
    Stats,
    environment,
    load_average,
    matmul_ceiling,
    paired_ratios,
    peak_memory_mib,
    time_interleaved,
)
from attnlab.bench.runner import main

__all__ = ["Case", "Contender", "Setup", "Stats", "environment", "load_average",
           "matmul_ceiling", "paired_ratios", "peak_memory_mib", "run_suite",
           "time_interleaved"]


def run_suite(name: str) -> int:
    """``python benchmarks/bench_NAME.py [--quick] [--out DIR]``: one suite, same options."""
    return main(["--only", name, *sys.argv[1:]])
