"""``attnlab``: the command-line entry point (subcommands are added per feature)."""

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    print("attnlab: commands are being built; see README.md", file=sys.stderr)
    return 2 if args else 0
