"""Pieces every subcommand shares: the parser, option spellings, value parsers, tables.

Conventions of the whole command line:

* every option is accepted as ``--embed_dim`` and ``--embed-dim``
  (:meth:`CliParser.add_option`);
* a bad value is one line, ``attnlab train: error: --embed_dim must be an int >= 1,
  got 'abc'``, and exit status 2: no usage dump, no traceback
  (:meth:`CliParser.error` and the ``*_value`` parsers below);
* errors raised later by the library (``ValueError`` naming a field) are shown with
  the field spelled as its option (:func:`option_message`).
"""

import argparse
import math
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

ValueParser = Callable[[str], Any]


def spellings(name: str) -> list[str]:
    """The option strings of ``name``: ``--embed_dim`` and ``--embed-dim`` (one if no ``_``)."""
    dashed = name.replace("_", "-")
    return [f"--{name}"] if dashed == name else [f"--{name}", f"--{dashed}"]


class HelpFormatter(argparse.HelpFormatter):
    """Help that lists ``--embed_dim, --embed-dim N`` instead of repeating the metavar."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34, width=100)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        metavar = self._format_args(action, self._get_default_metavar_for_optional(action))
        return f"{', '.join(action.option_strings)} {metavar}"


_ARGUMENT = re.compile(r"^argument (?P<name>[^\s:/]+)(?:/[^\s:]+)*: (?P<rest>.*)$", re.DOTALL)
_BAD_COMMAND = re.compile(
    r"^COMMAND: invalid choice: (?P<got>'[^']*') \(choose from (?P<names>.*)\)$"
)


class CliParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line and which records its options.

    Args:
        *args: As for ``argparse.ArgumentParser``.
        **kwargs: As for ``argparse.ArgumentParser``; ``allow_abbrev`` defaults to False
            and ``formatter_class`` to :class:`HelpFormatter`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.option_names: list[str] = []

    def add_option(self, name: str, **kwargs: Any) -> argparse.Action:
        """Add ``--name`` (also spelled with ``-``) storing into ``args.name``.

        Args:
            name: The option's name, with underscores (a config field name).
            **kwargs: Passed to ``add_argument`` (``type``, ``default``, ``help``...).

        Returns:
            The argparse action.
        """
        self.option_names.append(name)
        return self.add_argument(*spellings(name), dest=name, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE`` on one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {_tidy(message)}\n")


def _tidy(message: str) -> str:
    """Rewrite argparse's ``argument --x/--y: ...`` into one line naming ``--x`` once."""
    match = _ARGUMENT.match(message)
    if match:
        name, rest = match["name"], match["rest"]
        message = rest if rest.startswith(name) else f"{name}: {rest}"
    command = _BAD_COMMAND.match(message)
    if command:
        names = command["names"].replace("'", "")
        message = f"unknown command {command['got']}; choose from: {names}"
    return " ".join(message.split())


def add_decode_options(parser: CliParser) -> None:
    """``--compile``, ``--quantize``, ``--threads``: how a language model decodes."""
    from ..models.quantized import QUANTIZATIONS

    parser.add_option("compile", action="store_true",
                      help="decode through torch.compile: the first answer waits for a compile "
                           "(~10 s for a toy model, 15-60 s for smollm2 on an idle machine), later "
                           "tokens come faster")
    parser.add_option("quantize", choices=list(QUANTIZATIONS), default=None,
                      help="decode with int8 copies of the weights (one scale per row): "
                           "approximate, the answer may differ from the float model's; implies "
                           "--compile, about twice as fast again per token (the prompt stays "
                           "float)")
    parser.add_option("threads", type=_threads_value, default="auto", metavar="N",
                      help="decode threads: a number, or auto (default: the cores the load "
                           "average leaves free, at least 1)")


def apply_decode_options(args: argparse.Namespace) -> str:
    """Apply ``--threads``, ``--compile``, ``--quantize``; say what was picked, for the header.

    ``--quantize`` turns ``--compile`` on: int8 weights are faster only in the
    compiled step (the eager step reads them more slowly than float32).
    """
    parts = [apply_decode_threads(args.threads)]
    if args.quantize:
        args.compile = True
    if args.compile:
        parts.append("compiled decode step (the first answer waits for the compile)")
    if args.quantize:
        parts.append(f"{args.quantize} weights after the prompt (approximate)")
    return "; ".join(parts)


def apply_decode_threads(value: int | str) -> str:
    """Set torch's thread count for ``--threads`` and say what was picked, for the header."""
    import torch

    from ..models.generation import decode_threads

    threads, why = decode_threads(value)
    torch.set_num_threads(threads)
    return f"decoding with {threads} thread{'s' * (threads > 1)} ({why})"


def _threads_value(text: str) -> int | str:
    return "auto" if text == "auto" else int_value("--threads")(text)


def int_value(option: str, minimum: int | None = 1, maximum: int | None = None) -> ValueParser:
    """A parser for an int option that must be at least ``minimum`` (and at most ``maximum``).

    With ``minimum=None`` any int is taken: the caller checks the bounds (``attnlab train``
    leaves them to :class:`~attnlab.training.config.TrainConfig`).

    Example:
        >>> int_value("--epochs")("3")
        3
        >>> int_value("--epochs")("x")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: --epochs must be an int >= 1, got 'x'
        >>> int_value("--epochs", minimum=None)("1.5")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: --epochs must be an int, got '1.5'
    """
    wanted = "an int" if minimum is None else f"an int >= {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or (minimum is not None and value < minimum):
            raise argparse.ArgumentTypeError(f"{option} must be {wanted}, got {text!r}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{option} must be at most {maximum}, got {text}")
        return value

    return parse


def float_value(option: str, bound: str = "",
                accept: Callable[[float], bool] | None = None) -> ValueParser:
    """A parser for a float option; ``accept`` says which values are allowed.

    Args:
        option: The option's spelling, for messages.
        bound: The allowed range in words, e.g. ``"> 0"`` or ``"in [0, 1)"``.
        accept: Returns True for an allowed value; the value must also be finite. None:
            any number is taken (``nan`` and ``inf`` too), the caller checks the bounds.

    Example:
        >>> float_value("--dropout", "in [0, 1)", lambda v: 0 <= v < 1)("1")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: --dropout must be a number in [0, 1), got '1'
        >>> float_value("--dropout")("x")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: --dropout must be a number, got 'x'
    """
    wanted = f"a number {bound}".rstrip()

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} must be {wanted}, got {text!r}") from None
        if accept is not None and (not math.isfinite(value) or not accept(value)):
            raise argparse.ArgumentTypeError(f"{option} must be {wanted}, got {text!r}")
        return value

    return parse


def choice_value(option: str, choices: Sequence[str]) -> ValueParser:
    """A parser for an option that takes one of ``choices``.

    Example:
        >>> choice_value("--device", ["cpu", "cuda"])("tpu")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: --device must be one of: cpu, cuda; got 'tpu'
    """
    allowed = list(choices)

    def parse(text: str) -> str:
        if text not in allowed:
            shown = text if len(text) <= 60 else f"{text[:60]}… ({len(text)} characters)"
            raise argparse.ArgumentTypeError(
                f"{option} must be one of: {', '.join(allowed)}; got {shown!r}"
            )
        return text

    return parse


def file_value(option: str) -> ValueParser:
    """A parser for an option naming an existing file."""

    def parse(text: str) -> str:
        if Path(text).is_dir():
            raise argparse.ArgumentTypeError(f"{option}: {text!r} is a directory, not a file")
        if not Path(text).is_file():
            raise argparse.ArgumentTypeError(f"{option}: no such file {text!r}")
        return text

    return parse


def run_dir_value(text: str) -> str:
    """Parse ``RUN_DIR``: an existing directory."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"RUN_DIR: no such directory {text!r}")
    return text


def run_value(text: str) -> str:
    """Parse ``RUN``: a run directory, or a weights file saved with ``--save_path``."""
    if not Path(text).exists():
        raise argparse.ArgumentTypeError(f"RUN: no such run directory or weights file {text!r}")
    return text


def option_message(message: str, names: Iterable[str]) -> str:
    """Spell the field names in a library error message as the CLI's options.

    A name with an underscore is replaced wherever it stands alone; a plain word
    (``model``, ``device``) only where the message starts with it, since such words
    also occur as ordinary English.

    Example:
        >>> option_message("embed_dim (10) must be divisible by num_heads (3)",
        ...                ["embed_dim", "num_heads"])
        '--embed_dim (10) must be divisible by --num_heads (3)'
        >>> option_message("device must be one of ['cpu']", ["device"])
        "--device must be one of ['cpu']"
    """
    for name in sorted(set(names), key=len, reverse=True):
        if "_" in name:
            message = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", f"--{name}", message)
        elif re.match(rf"{re.escape(name)}\b(?!-)", message):
            message = f"--{message}"
    return " ".join(message.split())


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a table: a rich table on a terminal, aligned plain text otherwise.

    Args:
        title: A heading line.
        columns: Column headings (shown by the rich table only).
        rows: The rows; cells are turned into strings.
    """
    cells = [[str(cell) for cell in row] for row in rows]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left", title_style="bold")
        for column in columns:
            table.add_column(column)
        for row in cells:
            table.add_row(*row)
        Console().print(table)
        return
    print(title)
    widths = [max((len(row[i]) for row in cells), default=0) for i in range(len(columns))]
    for row in cells:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(f"  {line.rstrip()}")
