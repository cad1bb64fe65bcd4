"""``attnlab train``: options -> TrainConfig, both spellings, one-line errors, resume, Ctrl-C."""

import json
import sys
from dataclasses import asdict, fields

import pytest

from attnlab.cli.main import main
from attnlab.cli.train import field_options
from attnlab.training import run as trainer_module
from attnlab.training.train_config import TrainConfig

SEED_DEFAULTS = {"model": "multihead", "embed_dim": 64, "num_heads": 8, "learning_rate": 0.001,
                 "batch_size": 32, "seq_length": 10, "epochs": 100, "save_path": None,
                 "interactive": False}

# A valid non-default value for every TrainConfig field (a new field fails test_every_field_*).
OTHER_VALUES = {
    "model": "gqa", "embed_dim": "48", "num_heads": "4", "learning_rate": "0.003",
    "batch_size": "7", "seq_length": "9", "epochs": "3", "save_path": "w.safetensors",
    "interactive": None, "task": "sort", "seed": "5", "device": "cpu", "out": "runs/x",
    "steps_per_epoch": "11", "num_layers": "3", "eval_every": "2", "eval_batches": "5",
    "warmup_steps": "0", "weight_decay": "0.5", "grad_clip": "0", "dropout": "0.25",
    "positions": "rotary", "data": None, "compile": "",
}


def _train(fake_trainer, *argv):
    assert main(["train", *argv]) == 0
    assert len(fake_trainer.configs) == 1
    return fake_trainer.configs[0]


def test_defaults_are_the_seeds(fake_trainer):
    config = _train(fake_trainer)
    assert config == TrainConfig()
    assert {k: getattr(config, k) for k in SEED_DEFAULTS} == SEED_DEFAULTS
    assert (config.task, config.seed, config.device, config.out) == ("reverse", 0, "auto", None)
    assert fake_trainer.calls[0][2] == {"resume": None}


def test_every_field_has_a_test_value():
    assert set(OTHER_VALUES) == {field.name for field in fields(TrainConfig)}


def test_every_field_is_an_option_with_help(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    for option in field_options():
        assert option.help, option.name
        dashed = option.name.replace("_", "-")
        spelled = f"--{option.name}, --{dashed}" if dashed != option.name else f"--{option.name}"
        assert spelled in out


@pytest.mark.parametrize("name", [n for n, v in OTHER_VALUES.items() if v is not None])
@pytest.mark.parametrize("dashed", [False, True])
def test_every_field_in_both_spellings(fake_trainer, name, dashed):
    option = "--" + (name.replace("_", "-") if dashed else name)
    text = OTHER_VALUES[name]
    config = _train(fake_trainer, option, *([text] if text else []))
    expected = asdict(TrainConfig())
    kind = type(expected[name]) if expected[name] is not None else str
    expected[name] = True if text == "" else kind(text)
    assert asdict(config) == expected


def test_data_option_takes_an_existing_file(fake_trainer, tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("hello world\n" * 10)
    config = _train(fake_trainer, "--task", "text", "--model", "causal", "--data", str(path))
    assert (config.task, config.model, config.data) == ("text", "causal", str(path))


@pytest.mark.parametrize(("argv", "option"), [
    (["--embed_dim", "abc"], "--embed_dim must be an int, got 'abc'"),
    (["--embed-dim", "0"], "--embed_dim must be >= 1, got 0"),
    (["--num_heads", "-2"], "--num_heads must be >= 1, got -2"),
    (["--batch_size", "0"], "--batch_size must be >= 1, got 0"),
    (["--batch-size", "1.5"], "--batch_size must be an int, got '1.5'"),
    (["--seq-length", ""], "--seq_length must be an int, got ''"),
    (["--epochs"], "--epochs: expected one argument"),
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["--epochs", str(2**31)], "--epochs must be <= 2147483647"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--warmup_steps", "-1"], "--warmup_steps must be >= 0, got -1"),
    (["--learning_rate", "0"], "--learning_rate must be > 0"),
    (["--learning-rate", "nan"], "--learning_rate must not be NaN"),
    (["--learning-rate", "inf"], "--learning_rate must be finite, got inf"),
    (["--learning-rate", "fast"], "--learning_rate must be a number, got 'fast'"),
    (["--dropout", "1"], "--dropout must be < 1"),
    (["--weight_decay", "-0.1"], "--weight_decay must be >= 0"),
    (["--grad-clip", "-1"], "--grad_clip must be >= 0"),
    (["--model", "transformer"], "--model must be one of: multihead,"),
    (["--task", "Reverse"], "--task must be one of: copy,"),
    (["--device", "tpu"], "--device must be one of: auto, cpu, cuda, mps"),
    (["--positions", "none"], "--positions must be one of: sinusoidal,"),
    (["--data", "/no/such/file.txt"], "--data: no such file"),
    (["--resume", "/no/such/run"], "--resume: RUN_DIR: no such directory"),
])
def test_bad_values_exit_2_naming_the_option(capsys, one_line_error, fake_trainer, argv,
                                             option):
    assert main(["train", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    one_line_error(captured.err, "attnlab train: error: ", option)
    assert fake_trainer.calls == []


@pytest.mark.parametrize(("argv", "message"), [
    (["--embed_dim", "10", "--num_heads", "3"],
     "attnlab train: error: --embed_dim (10) must be divisible by --num_heads (3)"),
    (["--save_path", "model.bin"], "--save_path must end in .safetensors, .pth, .pt"),
    (["--model", "causal"],
     "attnlab train: error: --model causal does not fit --task reverse"),
    (["--task", "text", "--model", "cross"], "--model cross does not fit --task text"),
])
def test_config_errors_are_one_line(capsys, one_line_error, fake_trainer, argv, message):
    assert main(["train", *argv]) == 2
    one_line_error(capsys.readouterr().err, message)
    assert fake_trainer.calls == []


def test_trainer_value_error_names_the_option(capsys, one_line_error, fake_trainer):
    fake_trainer.error = ValueError("grad_clip is too large for num_layers 2")
    assert main(["train"]) == 2
    err = capsys.readouterr().err
    one_line_error(err)
    assert err.strip() == "attnlab: error: --grad_clip is too large for --num_layers 2"


def test_trainer_missing_file_is_one_line(capsys, one_line_error, fake_trainer):
    fake_trainer.error = FileNotFoundError("--resume: no run directory runs/x")
    assert main(["train"]) == 2
    one_line_error(capsys.readouterr().err, "attnlab: error: --resume: no run directory runs/x")


def test_ctrl_c_says_where_the_checkpoint_is(capsys, one_line_error, fake_trainer):
    fake_trainer.error = trainer_module.Interrupted("runs/my run")
    assert main(["train", "--out", "runs/my run"]) == 130
    one_line_error(capsys.readouterr().err, "checkpoint saved in runs/my run",
                   "attnlab train --resume 'runs/my run'")


def test_a_trainer_bug_propagates(fake_trainer):
    fake_trainer.error = RuntimeError("shape mismatch")
    with pytest.raises(RuntimeError, match="shape mismatch"):
        main(["train"])


def _saved_run(tmp_path, **changes):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = TrainConfig(task="copy", embed_dim=16, num_heads=2, epochs=4, seed=3, **changes)
    (run_dir / "config.json").write_text(config.to_json())
    return run_dir, config


def test_resume_starts_from_the_saved_config(fake_trainer, tmp_path):
    run_dir, saved = _saved_run(tmp_path)
    config = _train(fake_trainer, "--resume", str(run_dir), "--epochs", "6")
    assert config == saved.replace(epochs=6, out=str(run_dir))
    assert fake_trainer.calls[0][2] == {"resume": str(run_dir)}


def test_resume_without_config_json(capsys, one_line_error, fake_trainer, tmp_path):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    one_line_error(capsys.readouterr().err, "--resume", "has no config.json")
    assert fake_trainer.calls == []


def test_resume_with_damaged_config_json(capsys, one_line_error, fake_trainer, tmp_path):
    (tmp_path / "config.json").write_text('{"embed_dim": 16,')
    assert main(["train", "--resume", str(tmp_path)]) == 2
    one_line_error(capsys.readouterr().err, "--resume", "not valid JSON")


def test_resume_with_unknown_field(capsys, one_line_error, fake_trainer, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"embed_dims": 16}))
    assert main(["train", "--resume", str(tmp_path)]) == 2
    one_line_error(capsys.readouterr().err, "unknown TrainConfig fields: embed_dims")


def test_real_ctrl_c_saves_and_exits_130(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    out = tmp_path / "run"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "attnlab", "train", "--epochs", "1000", "--embed_dim", "8", "--num_heads", "2",
         "--batch_size", "4", "--device", "cpu", "--out", str(out)],
        timeout=120, encoding="utf-8", dimensions=(40, 200),
    )
    try:
        child.expect_exact("loss")  # the first step is done: Ctrl-C now means "save and stop"
        child.sendintr()
        child.expect_exact(f"checkpoint saved in {out}; resume with: attnlab train --resume {out}")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 130
    assert (out / "checkpoint.safetensors").is_file()
    assert json.loads((out / "config.json").read_text())["epochs"] == 1000
