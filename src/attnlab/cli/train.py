"""``attnlab train``: parse the options into a :class:`TrainConfig` and run the trainer.

Every :class:`TrainConfig` field is an option, with the field's default and the
help line from the class docstring, so a new field is a new option with no edit
here (add it to ``CHOICES`` when it takes one of a list of names). The parsers here
only read the text as the field's type; the bounds are :class:`TrainConfig`'s own,
and its ``ValueError`` becomes the one-line exit 2 naming the option
(``--batch_size must be >= 1, got 0``). Options left off the command line keep the
field's default, or, with ``--resume RUN_DIR``, the value the run was started with.
"""

import argparse
import importlib
import inspect
import os
import re
import shlex
import sys
import textwrap
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, get_type_hints

from ..registry import POSITIONS, TASKS
from ..training.recipes import choices
from ..training.train_config import DEVICES, TrainConfig
from .options import (
    CliParser,
    ValueParser,
    choice_value,
    file_value,
    float_value,
    int_value,
    option_message,
    run_dir_value,
)

#: Fields that take one of a list of names.
CHOICES: dict[str, Callable[[], list[str]]] = {
    "model": lambda: list(choices()),
    "task": TASKS.names,
    "device": lambda: list(DEVICES),
    "positions": POSITIONS.names,
}
#: Fields naming an input file that must exist.
FILES = ("data",)
#: What ``--interactive`` asks for, in this order (options given on the command line are
#: not asked again).
ASKED = ("task", "model", "embed_dim", "num_heads", "learning_rate", "batch_size",
         "seq_length", "epochs", "seed", "device", "out", "save_path")


@dataclass(frozen=True)
class FieldOption:
    """One :class:`TrainConfig` field as a command-line option.

    Args:
        name: The field name (``--name`` / ``--na-me`` on the command line).
        default: The field's default.
        parse: Turns the text typed into the field's value; raises
            ``argparse.ArgumentTypeError`` with a one-line message naming the option.
        help: The help line.
        flag: True for a boolean field (an option without a value).
    """

    name: str
    default: Any
    parse: ValueParser
    help: str
    flag: bool = False


def _field_help() -> dict[str, str]:
    """The ``Args:`` lines of :class:`TrainConfig`'s docstring, by field name."""
    text = inspect.cleandoc(TrainConfig.__doc__ or "").split("Args:", 1)[-1]
    helps: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        match = re.match(r"^ {4}(\w+): (.*)$", line)
        if match:
            name = match[1]
            helps[name] = match[2].strip()
        elif name and line.startswith(" " * 8):
            helps[name] += " " + line.strip()
        else:
            name = None
    return {key: value.replace("``", "") for key, value in helps.items()}


def _parser_for(name: str, kind: Any) -> ValueParser:
    option = f"--{name}"
    if name in CHOICES:
        return choice_value(option, CHOICES[name]())
    if name in FILES:
        return file_value(option)
    if kind is int:
        return int_value(option, minimum=None)  # the bounds: TrainConfig's
    if kind is float:
        return float_value(option)
    return str


def field_options() -> list[FieldOption]:
    """Every :class:`TrainConfig` field as an option, in the dataclass's order."""
    helps = _field_help()
    types = get_type_hints(TrainConfig)
    options = []
    for field in fields(TrainConfig):
        kind = types[field.name]
        default = field.default if field.default is not MISSING else None
        help_text = helps.get(field.name, "")
        if kind is bool:
            options.append(FieldOption(field.name, default, bool, help_text, flag=True))
            continue
        allowed = CHOICES[field.name]() if field.name in CHOICES else []
        if allowed and not all(re.search(rf"\b{name}\b", help_text) for name in allowed):
            help_text += f" Choices: {', '.join(allowed)}."
        if "default" not in help_text:
            help_text += f" (default: {'none' if default is None else default})"
        options.append(FieldOption(field.name, default, _parser_for(field.name, kind),
                                   help_text))
    return options


def add_parser(subparsers: Any) -> CliParser:
    """Add ``attnlab train`` with one option per :class:`TrainConfig` field."""
    parser = subparsers.add_parser(
        "train", help="train a model on a task (the seed's options, plus more)",
        description="Train an attention model on a task. Each option is also spelled with "
                    "'-' instead of '_'.",
        usage="attnlab train [options]",
    )
    for option in field_options():
        if option.flag:
            parser.add_option(option.name, action="store_true", default=argparse.SUPPRESS,
                              help=option.help)
        else:
            metavar = "NAME" if option.name in CHOICES else _metavar(option)
            parser.add_option(option.name, type=option.parse, default=argparse.SUPPRESS,
                              metavar=metavar, help=option.help)
    parser.add_option("resume", type=run_dir_value, default=None, metavar="RUN_DIR",
                      help="continue the run saved in RUN_DIR (its config.json gives the "
                           "options not given here)")
    parser.add_option("force", action="store_true",
                      help="replace the run in --out (or the default run directory) and an "
                           "existing --save_path file; without it nothing is overwritten")
    return parser


def _metavar(option: FieldOption) -> str:
    if isinstance(option.default, int):
        return "N"
    if isinstance(option.default, float):
        return "X"
    return "PATH" if option.name in ("out", "save_path", "data") else "TEXT"


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`TrainConfig` fields given on the command line."""
    names = {field.name for field in fields(TrainConfig)}
    return {name: value for name, value in vars(args).items() if name in names}


def base_values(resume: str | None) -> dict[str, Any]:
    """Field values before the command line: defaults, or the resumed run's config.

    Raises:
        FileNotFoundError: If ``resume`` has no ``config.json``.
        ValueError: If that file is not a valid config.
    """
    if resume is None:
        return asdict(TrainConfig())
    from ..training.run import read_config  # torch loads here, not for --help

    try:
        saved = read_config(resume)
    except (FileNotFoundError, ValueError) as exc:
        raise type(exc)(f"--resume: {exc}") from None
    return {**asdict(saved), "out": resume, "interactive": False}


def run(args: argparse.Namespace) -> int:
    """Build the config (asking for it with ``--interactive``) and train."""
    given = given_options(args)
    values = {**base_values(args.resume), **given}
    models = choices()
    if values.get("model") in models and not models[values["model"]].heads:
        if given.get("num_heads", 1) != 1:
            print(f"attnlab train: error: --model {values['model']} has no heads to split "
                  f"into: --num_heads must be 1, got {given['num_heads']}", file=sys.stderr)
            return 2
        values["num_heads"] = 1  # what is really built (and recorded)
    if args.force and args.resume:
        print("attnlab train: error: --force replaces a run, --resume continues one; "
              "give one of them", file=sys.stderr)
        return 2
    if values.get("interactive"):
        if not sys.stdin.isatty():
            print("attnlab train: error: --interactive needs a terminal (stdin is not one); "
                  "give the options on the command line instead", file=sys.stderr)
            return 2
        try:
            config = ask_config(values, given=set(given_options(args)))
        except EOFError:
            print("\nattnlab train: input ended before the config was complete; nothing trained",
                  file=sys.stderr)
            return 1
        print(describe(config))
        print("training (Ctrl-C saves a checkpoint)")
    else:
        try:
            config = TrainConfig(**values)  # its bounds and rules are the only ones
        except (ValueError, TypeError) as exc:
            message = option_message(str(exc), [field.name for field in fields(TrainConfig)])
            print(f"attnlab train: error: {message}", file=sys.stderr)
            return 2
    trainer = importlib.import_module("attnlab.training.run")
    try:
        trainer.train(config, resume=args.resume, force=args.force)
    except trainer.Interrupted as stop:
        run_dir = str(stop)
        print(f"attnlab: interrupted; checkpoint saved in {run_dir}; resume with: "
              f"attnlab train --resume {shlex.quote(run_dir)}", file=sys.stderr)
        return 130
    except trainer.RunComplete as done:
        print(f"attnlab train: {done}")
        return 0
    except (trainer.Diverged, trainer.JobFailed) as failed:
        if os.environ.get("RANK", "0") == "0":
            print(f"attnlab train: error: {failed}", file=sys.stderr)
        return 1
    return 0


def describe(config: TrainConfig) -> str:
    """The config as wrapped ``name=value`` pairs (what ``--interactive`` shows at the end)."""
    pairs = [f"{name}={'none' if value is None else shlex.quote(str(value))}"
             for name, value in asdict(config).items() if name != "interactive"]
    text = textwrap.fill("  ".join(pair.replace(" ", "\0") for pair in pairs), width=96,
                         initial_indent="  ", subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False)
    return "config:\n" + text.replace("\0", " ")


def ask_config(values: dict[str, Any], given: set[str], *,
               ask: Callable[[str], str] = input,
               say: Callable[[str], None] = print) -> TrainConfig:
    """Ask for each field of ``ASKED`` not in ``given``, then return the valid config.

    Each question shows the current value, ``embed_dim [64]: ``; Enter keeps it, ``?``
    prints the option's help, a bad value prints why and asks again. If the answers
    do not fit together (``embed_dim`` not divisible by ``num_heads``, a model that
    cannot train on the task), the message is shown and the fields it names are
    asked again.

    Args:
        values: Every field's current value (defaults, resumed run, command line).
        given: Fields given on the command line: not asked unless they conflict.
        ask: Reads one answer after showing a prompt.
        say: Prints one line.

    Returns:
        The config.

    Raises:
        EOFError: If input ends before the config is complete.
    """
    options = {option.name: option for option in field_options() if not option.flag}
    say("Enter keeps the value in [brackets]; ? explains the option.")
    todo = [name for name in ASKED if name not in given]
    while True:
        for name in todo:
            values[name] = _ask(options[name], values[name], ask, say)
        try:
            return TrainConfig(**values)
        except (ValueError, TypeError) as exc:
            message = str(exc)
            say(f"  {option_message(message, options)}")
            todo = [name for name in _named_fields(message) if name in options] or todo


def _ask(option: FieldOption, current: Any, ask: Callable[[str], str],
         say: Callable[[str], None]) -> Any:
    shown = "none" if current is None else current
    while True:
        text = ask(f"{option.name} [{shown}]: ").strip()
        if not text:
            return current
        if text == "?":
            say(f"  --{option.name}: {option.help}")
            continue
        if text == "none" and option.default is None:
            return None
        try:
            value = option.parse(text)
        except argparse.ArgumentTypeError as exc:
            say(f"  {exc}")
            continue
        problem = _problem_alone(option.name, value)
        if problem is None:
            return value
        say(f"  {problem}")


def _named_fields(message: str) -> list[str]:
    """The :class:`TrainConfig` fields a message names."""
    return [field.name for field in fields(TrainConfig)
            if re.search(rf"(?<!\w){field.name}(?!\w)", message)]


def _problem_alone(name: str, value: Any) -> str | None:
    """What :class:`TrainConfig` says against ``value`` on its own, as the option's message.

    The other fields are at their defaults; a complaint naming another field too (a
    pair that does not fit) is left for when the whole config is built.
    """
    try:
        TrainConfig(**{name: value})
    except (ValueError, TypeError) as exc:
        if _named_fields(str(exc)) == [name]:
            return option_message(str(exc), [name])
    return None
