"""``attnlab train --interactive``: questions, defaults, re-asking, and the terminal check.

The in-process tests give ``input()`` a fake terminal; the last test drives a real
``python -m attnlab`` through a pseudo-terminal and trains a tiny model.
"""

import io
import json
import sys

import pytest

from attnlab.cli.main import main
from attnlab.cli.train import ASKED
from attnlab.training.train_config import TrainConfig


class FakeTerminal(io.StringIO):
    """Typed lines for ``input()``; claims to be a terminal."""

    def isatty(self):
        return True


def _interactive(monkeypatch, capsys, answers, *argv):
    monkeypatch.setattr(sys, "stdin", FakeTerminal("".join(f"{a}\n" for a in answers)))
    status = main(["train", "--interactive", *argv])
    return status, capsys.readouterr()


def test_enter_keeps_every_default(monkeypatch, capsys, fake_trainer):
    status, captured = _interactive(monkeypatch, capsys, [""] * len(ASKED))
    assert status == 0
    assert fake_trainer.configs == [TrainConfig(interactive=True)]
    for prompt in ("task [reverse]: ", "model [multihead]: ", "embed_dim [64]: ",
                   "num_heads [8]: ", "learning_rate [0.001]: ", "batch_size [32]: ",
                   "seq_length [10]: ", "epochs [100]: ", "seed [0]: ", "device [auto]: ",
                   "out [none]: ", "save_path [none]: "):
        assert prompt in captured.out
    assert "model=multihead  embed_dim=64" in captured.out  # the config shown before training
    assert "training (Ctrl-C saves a checkpoint)" in captured.out


def test_bad_values_are_explained_and_asked_again(monkeypatch, capsys, fake_trainer):
    answers = {"task": ["copy"], "model": ["nope", "gqa"], "embed_dim": ["-4", "abc", "32"],
               "learning_rate": ["0", "0.01"], "seed": ["7"]}
    lines = [line for name in ASKED for line in answers.get(name, [""])]
    status, captured = _interactive(monkeypatch, capsys, lines)
    assert status == 0
    assert fake_trainer.configs == [TrainConfig(task="copy", model="gqa", embed_dim=32,
                                                learning_rate=0.01, seed=7, interactive=True)]
    out = captured.out
    assert "--model must be one of: multihead," in out
    assert out.count("model [multihead]: ") == 2
    assert "--embed_dim must be >= 1, got -4" in out  # TrainConfig's bound, asked at once
    assert "--embed_dim must be an int, got 'abc'" in out
    assert out.count("embed_dim [64]: ") == 3
    assert "--learning_rate must be > 0.0, got 0.0" in out


def test_options_given_are_not_asked(monkeypatch, capsys, fake_trainer):
    given = ["--epochs", "3", "--seed", "5", "--out", "runs/mine", "--num-layers", "1"]
    asked = [name for name in ASKED if name not in ("epochs", "seed", "out")]
    status, captured = _interactive(monkeypatch, capsys, [""] * len(asked), *given)
    assert status == 0
    assert fake_trainer.configs == [TrainConfig(epochs=3, seed=5, out="runs/mine", num_layers=1,
                                                interactive=True)]
    assert "epochs [" not in captured.out
    assert "seed [" not in captured.out
    assert "num_heads [8]: " in captured.out


def test_answers_that_conflict_are_asked_again(monkeypatch, capsys, fake_trainer):
    # embed_dim 12 with num_heads 8: both are asked again, then 12 / 4 is accepted.
    lines = ["", "", "12"] + [""] * (len(ASKED) - 3) + ["", "4"]
    status, captured = _interactive(monkeypatch, capsys, lines)
    assert status == 0
    assert fake_trainer.configs[0].embed_dim == 12
    assert fake_trainer.configs[0].num_heads == 4
    assert "--embed_dim (12) must be divisible by --num_heads (8)" in captured.out
    assert "embed_dim [12]: " in captured.out


def test_a_model_that_does_not_fit_the_task_is_asked_again(monkeypatch, capsys, fake_trainer):
    lines = ["", "causal"] + [""] * (len(ASKED) - 2) + ["", "text"]
    status, captured = _interactive(monkeypatch, capsys, lines)
    assert status == 0
    assert (fake_trainer.configs[0].model, fake_trainer.configs[0].task) == ("causal", "text")
    assert "--model causal does not fit --task reverse" in captured.out


def test_question_mark_explains_the_option(monkeypatch, capsys, fake_trainer):
    status, captured = _interactive(monkeypatch, capsys, ["?"] + [""] * len(ASKED))
    assert status == 0
    assert "--task: Task name. Choices: copy, reverse," in captured.out


def test_input_ending_early_trains_nothing(monkeypatch, capsys, fake_trainer):
    status, captured = _interactive(monkeypatch, capsys, ["", ""])
    assert status == 1
    assert "input ended" in captured.err
    assert fake_trainer.calls == []


def test_without_a_terminal_exits_2(monkeypatch, capsys, one_line_error, fake_trainer):
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n" * 20))
    assert main(["train", "--interactive"]) == 2
    captured = capsys.readouterr()
    one_line_error(captured.err, "--interactive needs a terminal")
    assert captured.out == ""
    assert fake_trainer.calls == []


def test_through_a_real_terminal(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    out = tmp_path / "run"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "attnlab", "train", "--interactive", "--steps_per_epoch", "2", "--epochs", "1",
         "--embed_dim", "8", "--num_heads", "2", "--batch_size", "4", "--eval_batches", "1",
         "--device", "cpu", "--out", str(out)],
        timeout=120, encoding="utf-8", dimensions=(40, 120),
    )
    try:
        child.expect_exact("task [reverse]: ")
        child.sendline("copy")
        child.expect_exact("model [multihead]: ")
        child.sendline("bogus")
        child.expect_exact("--model must be one of: multihead,")
        child.expect_exact("model [multihead]: ")
        child.sendline("")
        child.expect_exact("learning_rate [0.001]: ")
        child.sendline("-1")
        child.expect_exact("--learning_rate must be > 0.0, got -1.0")
        child.expect_exact("learning_rate [0.001]: ")
        child.sendline("0.01")
        for prompt in ("seq_length [10]: ", "seed [0]: ", "save_path [none]: "):
            child.expect_exact(prompt)
            child.sendline("")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    saved = json.loads((out / "config.json").read_text())
    assert (saved["task"], saved["model"], saved["learning_rate"]) == ("copy", "multihead", 0.01)
    assert (saved["embed_dim"], saved["num_heads"], saved["epochs"]) == (8, 2, 1)
    assert (out / "model.safetensors").is_file()
