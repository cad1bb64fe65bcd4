"""``attnlab``: the command-line entry point.

Each subcommand is one module of this package, named as the command, with two
functions:

* ``add_parser(subparsers) -> CliParser``: adds its parser
  (``subparsers.add_parser("name", ...)``) and options;
* ``run(args) -> int``: does the work and returns the exit status.

Adding a subcommand is writing that module and adding its name to ``COMMANDS``.

Exit statuses: 0 done, 2 a usage or user error (one line on stderr, no
traceback), 130 interrupted. Library errors that mean "bad input" (``ValueError``,
``TypeError``, missing files) become one line; anything else propagates, so a real
bug shows its traceback.
"""

import importlib
import io
import os
import sys

from .._openmp import apply_command_policy
from .options import CliParser, option_message

#: The subcommands, in the order ``attnlab --help`` lists them: modules of ``attnlab.cli``.
COMMANDS = ("train", "evaluate", "generate", "chat", "show", "explain", "models", "bench")

#: Errors that mean the user asked for something impossible: one line, exit 2.
#: (An ``OSError`` is the system refusing: a full disk, a missing or read-only path.)
USER_ERRORS = (ValueError, TypeError, OSError)


def build_parser() -> tuple[CliParser, dict[str, CliParser]]:
    """The root parser and each subcommand's parser, by command name."""
    from .. import __version__

    parser = CliParser(
        prog="attnlab",
        description="Attention mechanisms you can read, train, see and measure.",
        epilog="Run 'attnlab COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"attnlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    parsers = {}
    for name in COMMANDS:
        module = importlib.import_module(f"{__package__}.{name}")
        command = module.add_parser(subparsers)
        command.set_defaults(run=module.run)
        parsers[name] = command
    return parser, parsers


def main(argv: list[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    apply_command_policy()  # the command owns this process (see attnlab._openmp)
    try:
        parser, parsers = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a one-line usage error
            return exc.code if isinstance(exc.code, int) else 0
        if args.command is None:
            parser.print_help()
            return 2
        try:
            return args.run(args)
        except BrokenPipeError:  # the reader left (`attnlab ... | head`): not an error
            _silence_stdout()  # so the flush at exit cannot complain either
            return 0
        except USER_ERRORS as exc:
            if os.environ.get("RANK", "0") == "0":  # under torchrun: the main process says it
                message = option_message(_describe(exc), parsers[args.command].option_names)
                print(f"attnlab: error: {message}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:  # at any moment, start-up (torch loading) included
        print("\nattnlab: interrupted", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null (when stdout is a real file)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


def _describe(exc: BaseException) -> str:
    """The message of ``exc``; an ``OSError`` from the system reads as ``what: path``."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.strerror.lower()}: {exc.filename}"
    return str(exc) or type(exc).__name__

