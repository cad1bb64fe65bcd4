"""Run directories, Ctrl-C, resume, checkpoints, evaluate and generate."""

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from attnlab.training import Interrupted, TrainConfig, evaluate, generate, train
from attnlab.training import checkpoint as ckpt
from attnlab.training.progress import Reporter


class InterruptAt(Reporter):
    """A reporter that presses Ctrl-C (a real SIGINT) after step ``k``."""

    def __init__(self, k: int, total: int) -> None:
        super().__init__(total, enabled=False)
        self.k = k

    def step(self, step, info):
        if step == self.k:
            os.kill(os.getpid(), signal.SIGINT)


def weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(os.path.join(run_dir, "model.safetensors"))


def test_run_directory_contents(tiny):
    config = tiny(save_path=None)
    summary = train(config, reporter=Reporter(config.total_steps, enabled=False))
    run = summary["run_dir"]
    for name in ("config.json", "metrics.jsonl", "model.safetensors",
                 "checkpoint.safetensors", "sample.txt"):
        assert os.path.isfile(os.path.join(run, name)), name
    with open(os.path.join(run, "config.json")) as handle:
        assert TrainConfig.from_dict(json.load(handle)) == config
    with open(os.path.join(run, "metrics.jsonl")) as handle:
        lines = [json.loads(x) for x in handle]
    assert [x["step"] for x in lines] == [5, 10]
    assert {"train_loss", "val_loss", "seq_acc", "token_acc", "lr"} <= set(lines[0])
    assert len(summary["sample"]) == 5
    with open(os.path.join(run, "sample.txt")) as handle:
        assert "input:" in handle.read()


def test_save_path_writes_weights_with_configs(tiny, tmp_path):
    target = tmp_path / "final.safetensors"
    config = tiny(save_path=str(target))
    train(config, reporter=Reporter(config.total_steps, enabled=False))
    tensors, meta = ckpt.load(target)
    assert meta["train_config"]["save_path"] == str(target)
    assert meta["model_config"]["arch"] == "encoder-decoder"
    assert tensors.keys() == weights(config.out).keys()


def test_interrupt_then_resume_equals_uninterrupted(tiny, tmp_path):
    base = tiny(dropout=0.1, epochs=3)  # dropout: the torch RNG state must be restored too
    straight = base.replace(out=str(tmp_path / "straight"))
    train(straight, reporter=Reporter(straight.total_steps, enabled=False))

    stopped = base.replace(out=str(tmp_path / "stopped"))
    with pytest.raises(Interrupted):
        train(stopped, reporter=InterruptAt(7, stopped.total_steps))
    _, meta = ckpt.load(os.path.join(stopped.out, "checkpoint.safetensors"))
    assert meta["step"] == 7
    train(stopped, resume=stopped.out, reporter=Reporter(stopped.total_steps, enabled=False))

    a, b = weights(straight.out), weights(stopped.out)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_refuses_another_config(tiny):
    config = tiny()
    train(config, reporter=Reporter(config.total_steps, enabled=False))
    other = config.replace(embed_dim=32)
    with pytest.raises(ValueError, match=r"another config: embed_dim=16 \(now 32\)"):
        train(other, resume=config.out)


def test_damaged_checkpoint_is_a_clear_error(tiny):
    config = tiny()
    train(config, reporter=Reporter(config.total_steps, enabled=False))
    path = os.path.join(config.out, "checkpoint.safetensors")
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)
    with pytest.raises(ValueError, match="is damaged or not a safetensors file"):
        train(config, resume=config.out)


def test_resume_of_missing_run(tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match="no run directory"):
        train(tiny(), resume=str(tmp_path / "nowhere"))


def test_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.safetensors"
    ckpt.atomic_save(path, {"w": torch.ones(3)}, {"step": 1})

    def crash(fd):  # the data is written, then the disk turns out to be full
        raise OSError("disk full")

    monkeypatch.setattr("attnlab._io.os.fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        ckpt.atomic_save(path, {"w": torch.zeros(3)}, {"step": 2})
    tensors, meta = ckpt.load(path)
    assert meta["step"] == 1
    assert torch.equal(tensors["w"], torch.ones(3))
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.safetensors"]  # no temp file left


def test_weights_from_another_model_are_refused(tmp_path):
    from torch import nn

    ckpt.save_weights(tmp_path / "m.safetensors", nn.Linear(3, 4), {})
    with pytest.raises(ValueError, match=r"weight: checkpoint \(4, 3\) vs model \(2, 3\)"):
        ckpt.load_weights(tmp_path / "m.safetensors", nn.Linear(3, 2))


def test_evaluate_and_generate_from_a_run(tiny):
    config = tiny()
    summary = train(config, reporter=Reporter(config.total_steps, enabled=False))
    metrics = evaluate(config.out, device="cpu")
    assert metrics == pytest.approx(summary["metrics"])
    answer = generate(config.out, "1234", device="cpu")
    assert isinstance(answer, str)
    assert set(answer) <= set("0123456789abcdef")
    with pytest.raises(ValueError, match="characters not in the vocabulary: 'z'"):
        generate(config.out, "12z", device="cpu")
    with pytest.raises(FileNotFoundError, match="no run directory"):
        evaluate(config.out + "-missing")


def test_compat_attention_trainer(tmp_path):
    from attnlab.compat import AttentionTrainer

    trainer = AttentionTrainer("multi", 16, num_heads=2, seq_length=5, batch_size=8,
                               steps_per_epoch=3, out=str(tmp_path / "seed"))
    with pytest.raises(ValueError, match="call train"):
        trainer.evaluate()
    summary = trainer.train(1, save_path=str(tmp_path / "seed.safetensors"))
    assert os.path.isfile(tmp_path / "seed.safetensors")
    assert trainer.evaluate() == pytest.approx(summary["metrics"])
