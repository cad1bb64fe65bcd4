"""One run per directory: never mixed, never overwritten without --force, locked while used."""

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from safetensors import safe_open

from attnlab.cli.main import main
from attnlab.training import TrainConfig, train
from attnlab.training.progress import Reporter
from attnlab.training.rundir import LOCK_NAME, RunLock

TINY = ["--embed_dim", "16", "--num_heads", "2", "--num_layers", "1", "--batch_size", "8",
        "--epochs", "1", "--steps_per_epoch", "4", "--eval_batches", "1", "--seq_length", "6"]


def quiet(config):
    return Reporter(config.total_steps, enabled=False)


def digest(directory: Path) -> str:
    """A hash of every file's name, bytes and mode under ``directory``."""
    h = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        h.update(str(path.relative_to(directory)).encode())
        if path.is_file():
            h.update(path.read_bytes())
            h.update(str(path.stat().st_mode).encode())
    return h.hexdigest()


def model_config(path: Path) -> dict:
    with safe_open(path, framework="pt") as handle:
        return json.loads(handle.metadata()["model_config"])


def steps_in(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_two_default_runs_get_two_directories_and_a_third_is_refused(
        tmp_path, monkeypatch, capsys, one_line_error):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *TINY]) == 0
    assert main(["train", *TINY, "--seed", "0"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # (rich wraps lines)
    first, second = tmp_path / "runs/reverse-multihead-0", tmp_path / "runs/reverse-multihead-0-2"
    assert "runs/reverse-multihead-0 holds an earlier run; this run goes to " \
        "runs/reverse-multihead-0-2" in out
    for run in (first, second):  # each complete, each with its own single run's metrics
        for name in ("config.json", "metrics.jsonl", "model.safetensors",
                     "checkpoint.safetensors", "sample.txt", "curves.png"):
            assert (run / name).is_file(), (run, name)
        assert steps_in(run) == [4]
    assert json.loads((second / "config.json").read_text())["out"] == "runs/reverse-multihead-0-2"
    before = digest(first)
    assert main(["train", *TINY, "--out", "runs/reverse-multihead-0"]) == 2
    one_line_error(capsys.readouterr().err, "--out runs/reverse-multihead-0 already holds a run",
                   "--resume", "--force")
    assert digest(first) == before


def test_force_replaces_a_run_and_nothing_else(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *TINY, "--out", "r"]) == 0
    (tmp_path / "r" / "notes.txt").write_text("mine")
    assert main(["train", *TINY, "--out", "r", "--force", "--seed", "3"]) == 0
    assert json.loads((tmp_path / "r/config.json").read_text())["seed"] == 3
    assert steps_in(tmp_path / "r") == [4]  # not appended to the replaced run's metrics
    assert (tmp_path / "r/notes.txt").read_text() == "mine"
    capsys.readouterr()


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_text("x"), "is a file, not a directory"),
    (lambda p: (p.mkdir(), (p / "photo.jpg").write_text("x")), "with other files in it"),
])
def test_out_that_cannot_take_a_run(tmp_path, capsys, one_line_error, make, message):
    target = tmp_path / "target"
    make(target)
    before = digest(tmp_path)
    assert main(["train", *TINY, "--out", str(target)]) == 2
    one_line_error(capsys.readouterr().err, message)
    assert digest(tmp_path) == before


def test_a_locked_directory_is_refused(tiny, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    lock = RunLock(run)  # as another training process would hold it
    try:
        with pytest.raises(ValueError, match="is in use: another attnlab process is training"):
            train(tiny(), reporter=quiet(tiny()))
        with pytest.raises(ValueError, match="is in use"):
            RunLock(run)
    finally:
        lock.release()
    RunLock(run).release()  # free again


def test_resume_drops_what_a_killed_process_left(tiny, tmp_path):
    config = tiny(epochs=4)
    with pytest.raises(Exception):  # noqa: B017,PT011  (stopped after step 10: a fake kill)
        train(config, reporter=StopAt(10, config.total_steps))
    run = tmp_path / "run"
    # What a SIGKILL during the next save leaves: a temporary file and a metrics line
    # for a step whose checkpoint never landed.
    (run / ".checkpoint.safetensors.abc123.tmp").write_bytes(b"\0" * 1000)
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"step": 15, "val_loss": 1.0}) + "\n{\"step\": 2")
    summary = train(config, resume=str(run), reporter=quiet(config))
    assert summary["steps"] == 15  # from the checkpoint of step 5
    assert steps_in(run) == [5, 10, 15, 20]
    assert not list(run.glob(".*.tmp"))


class StopAt(Reporter):
    def __init__(self, k, total):
        super().__init__(total, enabled=False)
        self.k = k

    def step(self, step, info):
        if step == self.k:
            raise RuntimeError("killed")


def test_run_files_have_the_usual_permissions(tiny, tmp_path):
    old = os.umask(0o022)
    try:
        config = tiny(save_path=str(tmp_path / "w.pth"))
        train(config, reporter=quiet(config))
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "run").iterdir() if p.name != LOCK_NAME]
    files += [tmp_path / "w.pth", tmp_path / "w.json"]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_config_json_is_written_atomically(tiny, tmp_path, monkeypatch):
    config = tiny()
    train(config, reporter=quiet(config))
    saved = (tmp_path / "run/config.json").read_bytes()

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("attnlab._io.os.fsync", full_disk)
    longer = config.replace(epochs=3)
    with pytest.raises(OSError, match="No space left"):
        train(longer, resume=config.out, reporter=quiet(longer))
    assert (tmp_path / "run/config.json").read_bytes() == saved
    assert not list((tmp_path / "run").glob(".*.tmp"))


def test_the_config_records_what_was_built(tmp_path, monkeypatch, capsys, one_line_error):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *TINY, "--model", "cross", "--out", "c"]) == 0
    assert main(["train", *TINY, "--model", "multihead", "--out", "m"]) == 0
    assert main(["train", *TINY[:2], *TINY[4:], "--model", "selfhead", "--out", "s"]) == 0
    capsys.readouterr()
    cross, multi = (model_config(tmp_path / d / "model.safetensors") for d in ("c", "m"))
    assert cross["cross_attention"] == "selfhead"
    assert multi["cross_attention"] == "multihead"
    assert cross != multi
    assert json.loads((tmp_path / "s/config.json").read_text())["num_heads"] == 1
    assert main(["train", *TINY, "--model", "selfhead", "--out", "s2"]) == 2
    one_line_error(capsys.readouterr().err, "--model selfhead has no heads",
                   "--num_heads must be 1")
    assert TrainConfig(model="additive").num_heads == 1
