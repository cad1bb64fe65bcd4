"""The root command: subcommand list, help, version, and how errors become exit statuses."""

import argparse

import pytest

import attnlab
from attnlab.cli import main as cli_main
from attnlab.cli.main import COMMANDS, build_parser, main


def test_commands_are_modules_with_add_parser_and_run():
    _, parsers = build_parser()
    assert list(parsers) == list(COMMANDS)
    assert set(COMMANDS) >= {"train", "evaluate", "generate", "models"}
    for name, parser in parsers.items():
        assert parser.prog == f"attnlab {name}"


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"    {name} " in out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"attnlab {attnlab.__version__}"


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_unknown_command_is_one_line(capsys, one_line_error):
    assert main(["trian"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    one_line_error(captured.err, "attnlab: error:", "unknown command 'trian'", "train")


@pytest.mark.parametrize("argv", [["--bogus"], ["models", "--bogus"], ["train", "--bogus", "1"]])
def test_unknown_option_is_one_line(capsys, one_line_error, argv):
    assert main(argv) == 2
    one_line_error(capsys.readouterr().err, "unrecognized arguments: --bogus")


def test_abbreviated_options_are_not_guessed(capsys, one_line_error, fake_trainer):
    assert main(["train", "--embed", "16"]) == 2
    one_line_error(capsys.readouterr().err, "--embed")
    assert fake_trainer.calls == []


def _patch_run(monkeypatch, error):
    def boom(args):
        raise error

    real = build_parser

    def patched():
        parser, parsers = real()
        parsers["models"].set_defaults(run=boom)
        return parser, parsers

    monkeypatch.setattr(cli_main, "build_parser", patched)


@pytest.mark.parametrize(("error", "expected"), [
    (ValueError("bad thing"), "attnlab: error: bad thing"),
    (TypeError("wrong type"), "attnlab: error: wrong type"),
    (FileNotFoundError(2, "No such file or directory", "runs/x"),
     "attnlab: error: no such file or directory: runs/x"),
    (FileNotFoundError("no run directory runs/x"), "attnlab: error: no run directory runs/x"),
])
def test_user_errors_are_one_line_exit_2(capsys, one_line_error, monkeypatch, error, expected):
    _patch_run(monkeypatch, error)
    assert main(["models"]) == 2
    err = capsys.readouterr().err
    one_line_error(err)
    assert err.strip() == expected


def test_ctrl_c_exits_130(capsys, monkeypatch):
    _patch_run(monkeypatch, KeyboardInterrupt())
    assert main(["models"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_a_real_bug_keeps_its_traceback(monkeypatch):
    _patch_run(monkeypatch, RuntimeError("a bug"))
    with pytest.raises(RuntimeError, match="a bug"):
        main(["models"])


def test_namespace_carries_the_subcommand_run():
    parser, _ = build_parser()
    args = parser.parse_args(["models"])
    assert isinstance(args, argparse.Namespace)
    assert args.command == "models"
    assert args.run.__module__ == "attnlab.cli.models"


def test_a_closed_pipe_is_not_an_error(monkeypatch, capsys):
    """``attnlab explain ... | head``: the reader leaving is no error line."""
    from attnlab.cli import models

    def closed(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(models, "run", closed)
    assert main(["models"]) == 0
    assert capsys.readouterr().err == ""
