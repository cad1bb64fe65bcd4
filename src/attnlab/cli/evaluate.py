"""``attnlab evaluate RUN_DIR``: the trained model's metrics on held-out data."""

import argparse
import importlib
from typing import Any

from ..training.config import DEVICES
from .options import CliParser, choice_value, print_table, run_dir_value


def add_parser(subparsers: Any) -> CliParser:
    """Add ``attnlab evaluate RUN_DIR [--device NAME]``."""
    parser = subparsers.add_parser(
        "evaluate", help="held-out metrics of a trained run",
        description="Evaluate the model saved in RUN_DIR on the task's held-out data.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", type=run_dir_value,
                        help="a run directory written by 'attnlab train'")
    parser.add_option("device", type=choice_value("--device", DEVICES), default="auto",
                      metavar="NAME", help=f"one of: {', '.join(DEVICES)} (default: auto)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Print each held-out metric of ``args.run_dir``."""
    trainer = importlib.import_module("attnlab.training.run")
    metrics = trainer.evaluate(args.run_dir, device=args.device)
    print_table(f"held-out metrics of {args.run_dir}", ["metric", "value"],
                ((name, _number(value)) for name, value in metrics.items()))
    return 0


def _number(value: float) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
