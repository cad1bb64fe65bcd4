"""``attnlab generate MODEL --prompt TEXT``: a model's answer or continuation.

``MODEL`` is a run directory (or a ``.safetensors`` file written by ``--save_path``):
a seq2seq task answers the input, the text task continues it. It can also be a
language model a package ships or a ``.gguf`` file (``smollm2``), which continues
the prompt as plain text (``attnlab chat`` talks to it with its chat template).

With ``--interactive`` it is a prompt loop: each line read is answered, until the
input ends or a line ``:q``. It reads any stdin, so answers can be piped too.
"""

import argparse
import importlib
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from ..training.train_config import DEVICES
from . import show
from .model_ref import SHORT_NAMES, load_model, resolve_model
from .options import (
    CliParser,
    add_decode_options,
    apply_decode_options,
    choice_value,
    float_value,
    int_value,
)

#: New tokens for a packaged or GGUF language model when --max_new_tokens is not given.
LM_NEW_TOKENS = 64
#: The most --max_new_tokens may ask for (beyond it a count is a typo, not a plan).
MAX_NEW_TOKENS = 100_000

QUIT = ":q"


def add_parser(subparsers: Any) -> CliParser:
    """Add ``attnlab generate RUN --prompt TEXT`` and its options."""
    parser = subparsers.add_parser(
        "generate", help="a model's answer to an input (or text continuation)",
        description="Ask MODEL: a run of a seq2seq task answers the input, the text task and "
                    "language models (smollm2, a .gguf file) continue it.",
    )
    parser.add_argument("run_dir", metavar="MODEL", type=_model_value,
                        help="a run directory written by 'attnlab train', a .safetensors file "
                             "written by its --save_path, a .gguf file, or "
                             f"{', '.join(SHORT_NAMES)}")
    parser.add_option("prompt", metavar="TEXT", default=None,
                      help="the input (required unless --interactive)")
    parser.add_option("max_new_tokens", type=int_value("--max_new_tokens", maximum=MAX_NEW_TOKENS),
                      default=None,
                      metavar="N", help="tokens to generate (default: the task's answer "
                                        "length, or seq_length for text)")
    parser.add_option("temperature", type=float_value("--temperature", ">= 0",
                                                      lambda v: v >= 0),
                      default=0.0, metavar="X", help="0 = greedy; higher samples more "
                                                     "freely (default: 0.0)")
    parser.add_option("device", type=choice_value("--device", DEVICES), default="auto",
                      metavar="NAME", help=f"one of: {', '.join(DEVICES)} (default: auto)")
    parser.add_option("interactive", action="store_true",
                      help=f"a prompt loop: answer each line until end of input or {QUIT}")
    add_decode_options(parser)  # (for a language model: smollm2, a .gguf file)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the answer to ``--prompt``; with ``--interactive``, to each line read."""
    if args.prompt is None and not args.interactive:
        print("attnlab generate: error: --prompt TEXT is required (or use --interactive)",
              file=sys.stderr)
        return 2
    if _names_a_language_model(args.run_dir):
        return _run_language_model(args)
    for option in ("compile", "quantize"):
        if getattr(args, option):
            print(f"attnlab generate: error: --{option} applies to a language model (smollm2 or "
                  f"a .gguf file), not to the run directory {args.run_dir}", file=sys.stderr)
            return 2
    trainer = importlib.import_module("attnlab.training.run")
    _, task, model = trainer.load_run(args.run_dir, args.device)  # once, for every input

    noted: list[str] = []

    def note(text: str) -> None:  # said once per session, not once per answer
        if not noted:
            noted.append(text)
            print(f"note: {text}", file=sys.stderr)

    def answer(prompt: str) -> str:
        return trainer.answer(model, task, prompt, args.max_new_tokens, args.temperature,
                              on_crop=note)

    if args.prompt is not None:
        print(answer(args.prompt))
    if args.interactive:
        _loop(answer, {":attn": partial(_print_attention, model, task)})
    return 0


def _model_value(text: str) -> str:
    """``MODEL``: a short name, or a path that exists."""
    if text in SHORT_NAMES or Path(text).exists():
        return text
    raise argparse.ArgumentTypeError(f"MODEL: no such run directory, model file or short name "
                                     f"({', '.join(SHORT_NAMES)}): {text!r}")


def _names_a_language_model(text: str) -> bool:
    path = Path(text)
    return text in SHORT_NAMES or path.suffix == ".gguf" or (path / "modules.json").is_file()


def _run_language_model(args: argparse.Namespace) -> int:
    """Continue each prompt with a packaged or GGUF language model."""
    import torch

    ref = resolve_model(args.run_dir)
    if ref.kind != "gguf":
        raise ValueError(f"MODEL {args.run_dir!r} is a sentence encoder: it embeds text and does "
                         "not generate (attnlab show draws its attention)")
    decoding = apply_decode_options(args)  # threads: before the load raises the load average
    lm = load_model(ref, device=args.device)
    print(f"note: {decoding}", file=sys.stderr)
    device = next(lm.model.parameters()).device
    new = args.max_new_tokens or LM_NEW_TOKENS

    def answer(prompt: str) -> str:
        ids = torch.tensor([lm.tokenizer.encode(prompt)], device=device)  # (1, L)
        out = lm.model.generate(ids, new, temperature=args.temperature,
                                eos_id=lm.tokenizer.eos_id, compile=args.compile,
                                quantize=args.quantize)
        return lm.tokenizer.decode(out[0, ids.shape[1]:].tolist(), skip_special=True)

    if args.prompt is not None:
        print(answer(args.prompt))
    if args.interactive:
        _loop(answer)
    return 0


def _print_attention(model: Any, task: Any, prompt: str, words: list[str]) -> None:
    """``:attn [LAYER [HEAD]]``: what the model attended to for the last input.

    With no arguments, the view ``attnlab show --term`` picks (the last cross-attention, or
    the first self-attention; head 0); ``LAYER`` is a module name or its row number in
    ``attnlab show``'s grid, ``HEAD`` a head number.
    """
    if len(words) > 2 or (len(words) == 2 and not words[1].isdigit()):
        print("usage: :attn [LAYER [HEAD]]  (LAYER: a module name or row number; HEAD: a number)")
        return
    if not words:
        show.print_attention(model, task, prompt)
        return
    if not prompt:
        print("nothing answered yet: type an input first, then :attn")
        return
    from ..visualize.inspect import inspect_run
    from ..visualize.terminal import render_terminal

    layer: str | int = int(words[0]) if words[0].isdigit() else words[0]
    head = int(words[1]) if len(words) == 2 else 0
    try:
        inspection = inspect_run(model, task, prompt)
        render_terminal(inspection.maps, inspection.tokens, layer=layer, head=head)
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        print(f"error: {str(exc).strip(chr(39))}")


def _loop(answer: Callable[[str], str],
          commands: dict[str, Callable[[str, list[str]], None]] | None = None) -> None:
    """Read a line, print the answer, until end of input or ``:q``.

    A prompt the model cannot take (a character outside its vocabulary) prints the
    reason and the loop goes on.

    Args:
        answer: The model's answer to one input.
        commands: Extra ``:name`` commands; each gets the last input answered
            (``""`` before the first) and the words typed after the name.
    """
    commands = commands or {}
    names = ", ".join([*commands, QUIT])
    print(f"type an input and press Enter; {names} or Ctrl-D ends" if not commands
          else f"type an input and press Enter; commands: {names} (or Ctrl-D to end)")
    last = ""
    while True:
        try:
            line = input("> ")
        except EOFError:
            print()
            return
        if line.strip() == QUIT:
            return
        name, *words = line.split() or [""]
        if name in commands:
            commands[name](last, words)
            continue
        if not line:
            continue
        try:
            print(answer(line))
            last = line
        except (ValueError, TypeError) as exc:
            print(f"error: {exc}")
