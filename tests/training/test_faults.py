"""Faults during training: divergence, Ctrl-C at any moment, sizes that cannot fit, bad paths."""

import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from attnlab.cli import main as cli_main
from attnlab.cli.main import main
from attnlab.training import TrainConfig, train
from attnlab.training import trainer as trainer_module
from attnlab.training.progress import Reporter
from attnlab.training.trainer import Diverged, Trainer

TINY = ["--embed_dim", "16", "--num_heads", "2", "--num_layers", "1", "--batch_size", "8",
        "--steps_per_epoch", "2", "--eval_batches", "1", "--seq_length", "6"]


def quiet(config):
    return Reporter(config.total_steps, enabled=False)


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch):
    config = tiny(epochs=4, steps_per_epoch=2)
    real = trainer_module.loss_sum
    calls = []

    def poisoned(model, batch, kind):  # the training loss turns to NaN at step 5
        loss = real(model, batch, kind)
        if model.training:
            calls.append(1)
            return loss * float("nan") if len(calls) == 5 else loss
        return loss

    monkeypatch.setattr(trainer_module, "loss_sum", poisoned)
    with pytest.raises(Diverged, match=r"diverged at step 5: the loss is nan; the last good "
                                       r"checkpoint \(step 4\) is kept in"):
        train(config, reporter=quiet(config))
    monkeypatch.setattr(trainer_module, "loss_sum", real)
    for name in ("model.safetensors", "checkpoint.safetensors"):
        for key, tensor in load_file(str(tmp_path / "run" / name)).items():
            assert torch.isfinite(tensor.float()).all(), (name, key)


def test_cli_divergence_is_one_line(tmp_path, capsys, one_line_error):
    argv = ["train", *TINY, "--learning_rate", "10000", "--warmup_steps", "0", "--epochs", "3",
            "--eval_every", "1", "--out", str(tmp_path / "d")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    one_line_error(err, "training diverged at step", "--learning_rate")
    for name in ("model.safetensors", "checkpoint.safetensors"):
        path = tmp_path / "d" / name
        if path.exists():
            assert all(torch.isfinite(t.float()).all() for t in load_file(str(path)).values())


def test_ctrl_c_cuts_an_evaluation_short(tiny):
    config = tiny(eval_batches=1000)
    trainer = Trainer(config, torch.device("cpu"))
    trainer.stop_requested = True
    assert trainer.evaluate() == {}


def test_a_second_ctrl_c_stops_at_once(tiny):
    trainer = Trainer(tiny(), torch.device("cpu"))

    def press_twice():
        with trainer.catch_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            assert trainer.stop_requested
            os.kill(os.getpid(), signal.SIGINT)
            pytest.fail("the second Ctrl-C was ignored")

    with pytest.raises(KeyboardInterrupt):
        press_twice()


def test_ctrl_c_during_start_up_is_one_line(monkeypatch, capsys):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main, "build_parser", interrupted)  # e.g. while torch loads
    assert main(["train"]) == 130
    assert capsys.readouterr().err.strip() == "attnlab: interrupted"


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--batch_size", "10000000", "this run cannot fit in memory: one training step "
                                 "(--batch_size 10000000"),
    ("--num_layers", "1000000", "this run cannot fit in memory"),
    ("--embed_dim", "1000000", "this run cannot fit in memory: the model alone"),
    ("--num_layers", "99999999999999999999999", "--num_layers must be <= 2147483647"),
    ("--seq_length", "99999999999999999999999", "--seq_length must be <= 2147483647"),
    ("--batch_size", "99999999999999999999999", "--batch_size must be <= 2147483647"),
    ("--seed", str(2**64), "--seed must be <= 2**63 - 1"),
    ("--out", "", "--out must be a path, got an empty string"),
    ("--save_path", "", "--save_path must be a path"),
])
def test_sizes_and_values_refused_before_any_work(tmp_path, capsys, one_line_error, option,
                                                   value, message):
    argv = ["train", option, value]
    if option != "--out":
        argv += ["--out", str(tmp_path / "r")]
    if option == "--embed_dim":
        argv += ["--num_heads", "1"]
    assert main(argv) == 2
    one_line_error(capsys.readouterr().err, message)
    assert not (tmp_path / "r").exists()


def test_save_path_checked_before_training(tmp_path, capsys, one_line_error):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "dir.pth").mkdir()
    (tmp_path / "taken.pth").write_text("old")
    cases = [(str(tmp_path / "dir.pth"), "is a directory"),
             (str(tmp_path / "a_file" / "w.pth"), "is a file, not a directory"),
             (str(tmp_path / "taken.pth"), "exists; choose another name, or replace it with "
                                           "--force"),
             ("/proc/attnlab-test/w.safetensors", "cannot write in /proc")]
    for path, message in cases:
        assert main(["train", *TINY, "--save_path", path, "--out", str(tmp_path / "r")]) == 2
        one_line_error(capsys.readouterr().err, message)
        assert not (tmp_path / "r").exists()
    assert (tmp_path / "taken.pth").read_text() == "old"


def test_full_disk_while_saving_is_one_line(tmp_path, capsys, monkeypatch, one_line_error):
    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("attnlab._io.os.fsync", full)
    assert main(["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "r")]) == 2
    one_line_error(capsys.readouterr().err, "no space left on device: ",
                   str(tmp_path / "r" / "config.json"))
    assert not list((tmp_path / "r").glob(".*.tmp"))


def test_text_generation_goes_past_the_context(tiny, capsys):
    config = tiny(task="text", model="causal", seq_length=8, epochs=1)
    train(config, reporter=quiet(config))
    from attnlab.training.run import answer, load_run

    _, task, model = load_run(config.out, "cpu")
    notes = []
    text = answer(model, task, "import", 40, on_crop=notes.append)
    assert len(task.encode_input("import" + text)) == 6 + 40
    assert notes == ["the model sees at most 10 tokens (its context); the prompt has 6 and 40 "
                     "more were asked for, so each new token is predicted from the last 10 "
                     "tokens only"]
    assert answer(model, task, "x" * 30, 5, on_crop=notes.append)  # prompt longer than it
    assert main(["generate", config.out, "--prompt", "import", "--max_new_tokens", "20",
                 "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert len(out.rstrip("\n")) == 20
    assert err.count("note: the model sees at most 10 tokens") == 1


def test_the_same_greedy_answer_within_the_context(tiny):
    """Within the context the cached path is unchanged: greedy == argmax of the full forward."""
    config = tiny(task="text", model="causal", seq_length=8, epochs=1)
    train(config, reporter=quiet(config))
    from attnlab.training.run import answer, load_run

    _, task, model = load_run(config.out, "cpu")
    text = answer(model, task, "ab", 4)
    ids = task.encode_input("ab")[None]
    for _ in range(4):
        ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert text == task.vocab.decode(ids[0, 2:])


def test_training_config_types_are_checked():
    with pytest.raises(TypeError, match="compile must be bool, got str 'yes'"):
        TrainConfig(compile="yes")
    with pytest.raises(TypeError, match="embed_dim must be int, got bool"):
        TrainConfig(embed_dim=True)


def test_full_disk_at_a_later_checkpoint_keeps_the_earlier_one(tmp_path, capsys, monkeypatch,
                                                               one_line_error):
    import attnlab._io as io

    real, writes = io.os.fsync, []

    def fills_up(fd):  # the disk is full from the 5th file written on
        writes.append(fd)
        if len(writes) >= 5:
            raise OSError(28, "No space left on device")
        real(fd)

    monkeypatch.setattr("attnlab._io.os.fsync", fills_up)
    out = tmp_path / "r"
    assert main(["train", *TINY, "--epochs", "3", "--eval_every", "1", "--out", str(out)]) == 2
    one_line_error(capsys.readouterr().err, "could not save to",
                   "no space left on device", "the checkpoint of step 2 is intact")
    monkeypatch.setattr("attnlab._io.os.fsync", real)
    from attnlab.training.checkpoint import load

    assert load(out / "checkpoint.safetensors")[1]["step"] == 2
    assert not list(out.glob(".*.tmp"))


def test_odd_values_found_by_a_hostile_tester(tmp_path, capsys, one_line_error):
    (tmp_path / "empty.txt").write_text("")
    cases = [
        (["train", "--task", "text", "--data", str(tmp_path / "empty.txt")],
         "holds too little text to train on (0 characters"),
        (["train", "--task", "text", "--data", str(tmp_path)], "is a directory, not a file"),
        (["train", "--model", "x" * 5000], "(5000 characters)"),
        (["generate", str(tmp_path), "--prompt", "x", "--max_new_tokens", "10" * 12],
         "--max_new_tokens must be at most 100000"),
    ]
    for argv, message in cases:
        assert main([*argv, "--out", str(tmp_path / "r")] if argv[0] == "train" else argv) == 2
        err = capsys.readouterr().err
        one_line_error(err, message)
        assert len(err) < 400
