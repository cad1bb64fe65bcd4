"""Helpers for tests that run the ``attnlab`` command in this process."""

from attnlab.cli.main import main


def run_cli(capsys, command: str, *args: object) -> tuple[int, str, str]:  # noqa: ANN001
    """``attnlab COMMAND ARGS...`` -> ``(exit status, stdout, stderr)``."""
    code = main([command, *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    """Check that ``err`` is one line without a traceback; return that line."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]
