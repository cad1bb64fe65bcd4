"""The shared option machinery: spellings, one-line messages, value parsers."""

import argparse

import pytest

from attnlab.cli.options import (
    _tidy,
    choice_value,
    file_value,
    float_value,
    int_value,
    option_message,
    run_dir_value,
    spellings,
)


def test_spellings():
    assert spellings("embed_dim") == ["--embed_dim", "--embed-dim"]
    assert spellings("seed") == ["--seed"]


@pytest.mark.parametrize(("message", "expected"), [
    ("argument --embed_dim/--embed-dim: --embed_dim must be an int >= 1, got 'x'",
     "--embed_dim must be an int >= 1, got 'x'"),
    ("argument --epochs: expected one argument", "--epochs: expected one argument"),
    ("argument COMMAND: invalid choice: 'x' (choose from 'train', 'models')",
     "unknown command 'x'; choose from: train, models"),
    ("the following arguments are required: RUN_DIR",
     "the following arguments are required: RUN_DIR"),
    ("two\nlines", "two lines"),
])
def test_tidy(message, expected):
    assert _tidy(message) == expected


@pytest.mark.parametrize(("message", "expected"), [
    ("embed_dim (10) must be divisible by num_heads (3)",
     "--embed_dim (10) must be divisible by --num_heads (3)"),
    ("device must be one of ['cpu'], got 'x'", "--device must be one of ['cpu'], got 'x'"),
    ("save_path must end in .safetensors", "--save_path must end in .safetensors"),
    ("--model causal does not fit", "--model causal does not fit"),
    ("the model does not fit the task", "the model does not fit the task"),
    ("--resume: checkpoint written by another config: embed_dim=8 (now 16)",
     "--resume: checkpoint written by another config: --embed_dim=8 (now 16)"),
])
def test_option_message(message, expected):
    names = ["embed_dim", "num_heads", "device", "save_path", "model", "task", "resume"]
    assert option_message(message, names) == expected


def test_int_value():
    parse = int_value("--seed", minimum=0)
    assert parse("0") == 0
    for bad in ("-1", "1.5", "x", ""):
        with pytest.raises(argparse.ArgumentTypeError, match=r"^--seed must be an int >= 0, got"):
            parse(bad)


def test_float_value():
    parse = float_value("--learning_rate", "> 0", lambda v: v > 0)
    assert parse("1e-3") == pytest.approx(1e-3)
    for bad in ("0", "-1", "nan", "inf", "x"):
        with pytest.raises(argparse.ArgumentTypeError,
                           match=r"^--learning_rate must be a number > 0, got"):
            parse(bad)


def test_choice_value():
    parse = choice_value("--task", ["copy", "sort"])
    assert parse("sort") == "sort"
    with pytest.raises(argparse.ArgumentTypeError,
                       match=r"^--task must be one of: copy, sort; got 'Sort'$"):
        parse("Sort")


def test_file_and_run_dir_values(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("x")
    assert file_value("--data")(str(path)) == str(path)
    assert run_dir_value(str(tmp_path)) == str(tmp_path)
    with pytest.raises(argparse.ArgumentTypeError, match=r"^--data: no such file"):
        file_value("--data")(str(tmp_path / "missing.txt"))
    with pytest.raises(argparse.ArgumentTypeError, match=r"^RUN_DIR: no such directory"):
        run_dir_value(str(path))
