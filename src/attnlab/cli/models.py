"""``attnlab models``: list what can be trained and built, one line each.

Prints every registry of :mod:`attnlab.registry`: attention mechanisms (each
an ``attnlab train --model`` choice, with its capabilities), then the recipes
that are ``--model`` choices too, tasks, positional schemes, norms,
feed-forward blocks and model presets, the Hugging Face architectures
``attnlab.interop.from_hf`` converts, and last the short names of pretrained
models that packages ship (``attnlab chat smollm2``, ``attnlab show minilm``).
A name registered anywhere shows up here with no edit to this file.
"""

import argparse
from typing import Any

from .options import CliParser, print_table


def add_parser(subparsers: Any) -> CliParser:
    """Add ``attnlab models``."""
    return subparsers.add_parser(
        "models", help="list mechanisms, tasks, positional schemes, norms, presets",
        description="List every registered name with its one-line description.",
    )


def sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """The listing: ``(title, [(name, help), ...])`` per section."""
    import attnlab.config  # noqa: F401  (fills ATTENTION, POSITIONS, NORMS, FFNS)
    import attnlab.models  # noqa: F401  (fills PRESETS)
    from attnlab.interop.hf import ARCHITECTURES
    from attnlab.registry import ATTENTION, FFNS, NORMS, POSITIONS, PRESETS, TASKS
    from attnlab.training.recipes import RECIPES

    from .model_ref import SHORT_NAMES

    def rows(registry: Any) -> list[tuple[str, str]]:
        return [(entry.name, entry.help) for entry in registry.entries()]

    return [
        ("attention mechanisms (attnlab train --model; attnlab.registry.ATTENTION)",
         [(e.name, f"{e.help} [{e.obj.summary()}]") for e in ATTENTION.entries()]),
        ("recipes: more models for attnlab train --model",
         [(name, choice.help) for name, choice in RECIPES.items()]),
        ("tasks (attnlab train --task)", rows(TASKS)),
        ("positional schemes (attnlab train --positions)", rows(POSITIONS)),
        ("norms (attnlab.registry.NORMS)", rows(NORMS)),
        ("feed-forward blocks (attnlab.registry.FFNS)", rows(FFNS)),
        ("model presets (attnlab.registry.PRESETS)", rows(PRESETS)),
        ("Hugging Face architectures (attnlab.interop.from_hf)",
         [(arch.model_type, f"{', '.join(arch.heads)}: {arch.features}")
          for arch in ARCHITECTURES.values()]),
        ("pretrained models (MODEL of attnlab chat/show; package to install)",
         [(name, f"{ref.help} [{ref.package}]") for name, ref in SHORT_NAMES.items()]),
    ]


def run(args: argparse.Namespace) -> int:  # noqa: ARG001
    """Print every section."""
    for index, (title, entries) in enumerate(sections()):
        if index:
            print()
        print_table(title, ["name", "description"], entries)
    return 0
