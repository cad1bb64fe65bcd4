"""Run the benchmarks: ``uv run python benchmarks/run.py [--only NAME ...] [--quick] [--out DIR]``.

Prints a markdown table (peer vs attnlab ratios, medians with min–max, the fp32
matmul ceiling and the fraction reached, peak memory) and writes
``results.json``, ``results.md`` and ``scaling.png`` (time and memory against N,
log-log) to ``--out`` (default ``bench-results``). Same as ``attnlab bench``.
Suites: sdpa, mha, window, long, train, generate (see ``attnlab.bench``).
"""

import sys

from attnlab.bench.runner import main

if __name__ == "__main__":
    sys.exit(main())
