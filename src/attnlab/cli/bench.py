"""``attnlab bench``: attnlab against PyTorch and Hugging Face on this machine.

The harness and the suites live in :mod:`attnlab.bench`, so the command works
from an installed package too; ``--only NAME`` runs some suites.
"""

import argparse
from typing import Any

from .options import CliParser


def add_parser(subparsers: Any) -> CliParser:
    """Add ``attnlab bench [--only NAME ...] [--quick] [--out DIR]``."""
    from ..bench.runner import add_arguments

    parser = subparsers.add_parser(
        "bench", help="benchmark attnlab against its peers (table, JSON, plot)",
        description="Interleaved peer-vs-attnlab timings with medians and min–max, the fp32 "
                    "matmul ceiling, peak memory; writes results.json, results.md and "
                    "scaling.png to --out.",
    )
    add_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the chosen suites and print the table."""
    from ..bench.runner import main_with

    return main_with(args)
