"""``attnlab evaluate RUN``: the trained model's metrics on held-out data.

``RUN`` is a run directory, or a ``.safetensors`` file written by ``--save_path``
(its metadata holds the configs).
"""

import argparse
import importlib
from typing import Any

from ..training.train_config import DEVICES
from .options import CliParser, choice_value, print_table, run_value


def add_parser(subparsers: Any) -> CliParser:
    """Add ``attnlab evaluate RUN [--device NAME]``."""
    parser = subparsers.add_parser(
        "evaluate", help="held-out metrics of a trained run",
        description="Evaluate the model saved in RUN on the task's held-out data.",
    )
    parser.add_argument("run_dir", metavar="RUN", type=run_value,
                        help="a run directory written by 'attnlab train', or a .safetensors "
                             "file written by its --save_path")
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
