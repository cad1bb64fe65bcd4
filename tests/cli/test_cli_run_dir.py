"""``attnlab evaluate`` and ``attnlab generate``: with a fake trainer, then on a real tiny run."""

import io
import sys

import pytest

from attnlab.cli.main import main
from attnlab.training import run as trainer_module


class Lines(io.StringIO):
    def isatty(self):
        return True


def test_evaluate_prints_each_metric(capsys, fake_trainer, tmp_path):
    assert main(["evaluate", str(tmp_path), "--device", "cpu"]) == 0
    assert fake_trainer.calls == [("evaluate", (str(tmp_path),), {"device": "cpu"})]
    out = capsys.readouterr().out
    assert "val_loss  0.1250" in out
    assert "seq_acc   0.5000" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["evaluate"], "RUN: no such run directory or weights file"),
    (["generate", "--prompt", "x"], "MODEL: no such run directory, model file or short name"),
])
def test_missing_run_dir(capsys, one_line_error, fake_trainer, tmp_path, argv, message):
    command, *options = argv
    assert main([command, str(tmp_path / "nope"), *options]) == 2
    one_line_error(capsys.readouterr().err, f"attnlab {command}: error: {message}")
    assert fake_trainer.calls == []


def test_generate_passes_its_options(capsys, fake_trainer, tmp_path):
    argv = ["generate", str(tmp_path), "--prompt", "abc", "--max-new-tokens", "5",
            "--temperature", "0.5", "--device", "cpu"]
    assert main(argv) == 0
    assert fake_trainer.calls == [("load_run", (str(tmp_path),), {"device": "cpu"}),
                                  ("answer", ("abc",), {"max_new_tokens": 5, "temperature": 0.5})]
    assert capsys.readouterr().out == "answer:abc\n"


def test_generate_defaults(capsys, fake_trainer, tmp_path):
    assert main(["generate", str(tmp_path), "--prompt", "x"]) == 0
    assert fake_trainer.calls[0][2] == {"device": "auto"}
    assert fake_trainer.calls[1][2] == {"max_new_tokens": None, "temperature": 0.0}


@pytest.mark.parametrize(("argv", "message"), [
    ([], "--prompt TEXT is required"),
    (["--prompt", "x", "--temperature", "-1"], "--temperature must be a number >= 0"),
    (["--prompt", "x", "--max_new_tokens", "0"], "--max_new_tokens must be an int >= 1"),
    (["--prompt", "x", "--device", "gpu"], "--device must be one of"),
    (["--prompt", "x", "--quantize", "int8"], "--quantize applies to a language model"),
    (["--prompt", "x", "--compile"], "--compile applies to a language model"),
])
def test_generate_bad_options(capsys, one_line_error, fake_trainer, tmp_path, argv, message):
    assert main(["generate", str(tmp_path), *argv]) == 2
    one_line_error(capsys.readouterr().err, "attnlab generate: error: ", message)
    assert fake_trainer.calls == []


def test_generate_interactive_loop(capsys, monkeypatch, fake_trainer, tmp_path):
    monkeypatch.setattr(sys, "stdin", Lines("abc\n\nbad\nxyz\n:q\nnot read\n"))
    real = fake_trainer.answer

    def answer(model, task, prompt, *args, **kwargs):
        if prompt == "bad":
            raise ValueError("characters not in the vocabulary: 'b'")
        return real(model, task, prompt, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "answer", answer)
    assert main(["generate", str(tmp_path), "--interactive"]) == 0
    out = capsys.readouterr().out
    assert "answer:abc" in out
    assert "error: characters not in the vocabulary: 'b'" in out
    assert "answer:xyz" in out
    assert [name for name, _, _ in fake_trainer.calls].count("load_run") == 1  # loaded once
    assert [args[0] for name, args, _ in fake_trainer.calls if name == "answer"] == ["abc", "xyz"]


def test_generate_interactive_ends_at_end_of_input(capsys, monkeypatch, fake_trainer, tmp_path):
    monkeypatch.setattr(sys, "stdin", io.StringIO("one\ntwo"))
    assert main(["generate", str(tmp_path), "--prompt", "zero", "--interactive"]) == 0
    assert [args[0] for name, args, _ in fake_trainer.calls if name == "answer"] == [
        "zero", "one", "two"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    argv = ["train", "--task", "copy", "--epochs", "1", "--steps_per_epoch", "2", "--embed_dim",
            "8", "--num_heads", "2", "--batch_size", "4", "--eval_batches", "1", "--device", "cpu",
            "--out", str(run_dir)]
    assert main(argv) == 0
    return run_dir


def test_real_train_evaluate_generate(capsys, one_line_error, tiny_run):
    assert (tiny_run / "config.json").is_file()
    capsys.readouterr()
    assert main(["evaluate", str(tiny_run), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    metrics = trainer_module.evaluate(str(tiny_run), device="cpu")
    for name in metrics:
        assert name in out
    assert main(["generate", str(tiny_run), "--prompt", "0a1b", "--device", "cpu"]) == 0
    answer = capsys.readouterr().out.strip()
    assert set(answer) <= set("0123456789abcdef")
    assert main(["generate", str(tiny_run), "--prompt", "xyz", "--device", "cpu"]) == 2
    one_line_error(capsys.readouterr().err, "attnlab: error: ", "x")


def test_real_resume_with_another_config_is_one_line(capsys, one_line_error, tiny_run):
    assert main(["train", "--resume", str(tiny_run), "--embed_dim", "16"]) == 2
    one_line_error(capsys.readouterr().err, "attnlab: error: --resume", "--embed_dim")


def test_loop_runs_extra_commands_on_the_last_input(capsys, monkeypatch):
    from attnlab.cli.generate import _loop

    seen = []
    monkeypatch.setattr(sys, "stdin", io.StringIO(":attn\nabc\n:attn 1 2\n:q\n"))
    _loop(str.upper, {":attn": lambda last, words: seen.append((last, words))})
    assert seen == [("", []), ("abc", ["1", "2"])]
    assert "ABC" in capsys.readouterr().out
