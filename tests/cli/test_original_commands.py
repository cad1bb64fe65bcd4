"""The original projects' commands and names, as their users type them."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
import torch

import attnlab as al
from attnlab.compat import MultiAttention, SelfAttention

ROOT = Path(__file__).resolve().parents[2]
SHORT = ["--epochs", "1", "--steps_per_epoch", "2", "--eval_batches", "1"]


def run_main(args, cwd, python=(sys.executable,), timeout=300):
    return subprocess.run([*python, str(ROOT / "main.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def test_selfhead_command(tmp_path):
    done = run_main(["--model", "selfhead", "--embed_dim", "64", *SHORT], tmp_path)
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "runs/reverse-selfhead-0/config.json").read_text())
    assert (config["model"], config["embed_dim"], config["num_heads"]) == ("selfhead", 64, 1)


def test_save_path_pth_is_a_plain_state_dict(tmp_path):
    args = ["--model", "multihead", "--embed_dim", "128", "--num_heads", "8", "--save_path",
            "models/my_trained_model.pth", *SHORT]
    done = run_main(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "models/my_trained_model.pth" in " ".join(done.stdout.split())  # the summary lists it
    state = torch.load(tmp_path / "models/my_trained_model.pth", weights_only=True)
    about = json.loads((tmp_path / "models/my_trained_model.json").read_text())
    from attnlab.config import ModelConfig
    from attnlab.models import build_model

    model = build_model(ModelConfig.from_dict(about["model_config"]))
    model.load_state_dict(state)  # strict: every key, every shape
    saved = torch.load(tmp_path / "models/my_trained_model.pth", weights_only=True)
    from safetensors.torch import load_file

    run = load_file(str(tmp_path / "runs/reverse-multihead-0/model.safetensors"))
    for key, tensor in run.items():
        assert torch.equal(saved[key], tensor), key
    again = run_main(args, tmp_path)  # the same command again: nothing is overwritten
    assert again.returncode == 2
    assert "exists; choose another name, or replace it with --force" in again.stderr
    assert "Traceback" not in again.stderr


def test_attnlab_commands_refuse_a_pickle_with_directions(tmp_path, capsys):
    args = ["--save_path", "m.pt", *SHORT]
    assert run_main(args, tmp_path).returncode == 0
    from attnlab.cli.main import main

    assert main(["evaluate", str(tmp_path / "m.pt")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "is a PyTorch pickle file, and attnlab loads only safetensors" in err
    assert "runs/reverse-multihead-0" in err  # where its run directory is


def test_without_torch_it_says_how_to_run_it(tmp_path):
    done = run_main(["--epochs", "1"], tmp_path, python=(sys.executable, "-S", "-I"))
    assert done.returncode == 2
    assert "uv run main.py --epochs 1" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not installed")
def test_uv_run_main_py(tmp_path):
    done = subprocess.run(["uv", "run", "--frozen", "main.py", *SHORT, "--out",
                           str(tmp_path / "r")], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r/model.safetensors").is_file()


def test_interactive(tmp_path):
    env = {**os.environ, "COLUMNS": "200"}
    child = pexpect.spawn(sys.executable, [str(ROOT / "main.py"), "--interactive",
                                           "--steps_per_epoch", "2", "--eval_batches", "1"],
                          cwd=str(tmp_path), env=env, encoding="utf-8", timeout=120)
    answers = {"epochs": "1"}
    for _ in range(12):
        index = child.expect([r"(\w+) \[[^\]]*\]: ", pexpect.EOF])
        if index == 1:
            break
        child.sendline(answers.get(child.match.group(1), ""))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert (tmp_path / "runs/reverse-multihead-0/model.safetensors").is_file()


def test_the_original_class_names_and_spellings():
    torch.manual_seed(0)
    x = torch.randn(2, 7, 64)
    single = SelfAttention(emd_dim=64)
    multi = MultiAttention(emd_dim=64, num_heads=8)
    assert isinstance(single, al.SelfAttention)
    assert isinstance(multi, al.MultiHeadAttention)
    assert multi.num_heads == 8
    same = al.MultiHeadAttention(64, 8)
    same.load_state_dict(multi.state_dict())
    assert torch.allclose(multi(x), same(x), atol=1e-6)
    assert single(x).shape == (2, 7, 64)
