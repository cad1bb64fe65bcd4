"""Tampered or damaged run files are refused with a clear line, never loaded or resumed."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from attnlab.cli.main import main
from attnlab.training import TrainConfig, evaluate, train
from attnlab.training import checkpoint as ckpt
from attnlab.training.progress import Reporter
from attnlab.training.run import RunComplete


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny finished run (2 epochs of 5 steps), written once for the module."""
    out = tmp_path_factory.mktemp("trained") / "run"
    config = TrainConfig(embed_dim=16, num_heads=2, num_layers=1, batch_size=8, epochs=2,
                         steps_per_epoch=5, eval_every=1, eval_batches=1, warmup_steps=2,
                         seq_length=6, out=str(out))
    train(config, reporter=Reporter(config.total_steps, enabled=False))
    return config


@pytest.fixture
def run(trained, tmp_path):
    """A fresh copy of the trained run, to tamper with."""
    copy = tmp_path / "run"
    copy.mkdir()
    for path in Path(trained.out).iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    return copy


def rewrite(path: Path, change_tensors=None, change_meta=None) -> None:
    tensors, meta = ckpt.load(path)
    if change_tensors:
        change_tensors(tensors)
    if change_meta:
        change_meta(meta)
    path.unlink()
    save_file(tensors, str(path), {k: json.dumps(v) for k, v in meta.items()})


def resume(run: Path, epochs: int = 4):
    config = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    config = config.replace(out=str(run), epochs=epochs)
    return train(config, resume=str(run), reporter=Reporter(config.total_steps, enabled=False))


def first_weight(tensors):
    return next(k for k in tensors if k.endswith("q_proj.weight"))


@pytest.mark.parametrize(("dtype", "fill"), [(torch.bool, 1), (torch.int64, 1),
                                              (torch.float16, 0.5), (torch.float64, 0.5)])
def test_weights_of_another_dtype_are_refused(run, dtype, fill):
    def change(tensors):
        key = first_weight(tensors)
        tensors[key] = torch.full_like(tensors[key], fill, dtype=dtype)

    rewrite(run / "model.safetensors", change)
    with pytest.raises(ValueError, match=f"checkpoint dtype {dtype} vs model torch.float32"):
        evaluate(str(run), device="cpu")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(run, bad):
    def change(tensors):
        tensors[first_weight(tensors)][0, 0] = bad

    rewrite(run / "model.safetensors", change)
    with pytest.raises(ValueError, match="holds NaN or infinite values"):
        evaluate(str(run), device="cpu")


@pytest.mark.parametrize(("step", "message"), [
    (-5, "step -5 is outside 1..10"), (10**12, "is outside 1..10"), (0, "outside"),
    ("5", "metadata 'step' must be int"), (True, "metadata 'step' must be int"),
])
def test_checkpoint_steps_out_of_range(run, step, message):
    rewrite(run / "checkpoint.safetensors", change_meta=lambda m: m.update(step=step))
    with pytest.raises(ValueError, match=message):
        resume(run)


@pytest.mark.parametrize("key", ["train_config", "step", "aliases", "param_groups"])
def test_checkpoint_metadata_missing(run, key):
    rewrite(run / "checkpoint.safetensors", change_meta=lambda m: m.pop(key))
    with pytest.raises(ValueError, match="damaged"):
        resume(run)


@pytest.mark.parametrize("change", [
    lambda t: [t.pop(k) for k in list(t) if k.startswith("optim.")],
    lambda t: t.pop("rng.data"),
    lambda t: t.pop("rng.torch"),
    lambda t: t.update({"rng.data": torch.zeros(3, dtype=torch.uint8)}),
    lambda t: t.update({"optim.0.exp_avg": torch.zeros(2, 2)}),
    lambda t: t.update({"optim.0.exp_avg_sq": t["optim.0.exp_avg_sq"].double()}),
    lambda t: t.update({"optim.999.exp_avg": torch.zeros(2)}),
], ids=["no-optimiser", "no-rng-data", "no-rng-torch", "rng-shape", "moment-shape",
        "moment-dtype", "extra-tensor"])
def test_checkpoint_tensors_missing_or_misshaped(run, change):
    rewrite(run / "checkpoint.safetensors", change)
    with pytest.raises(ValueError, match="damaged"):
        resume(run)


def test_non_finite_optimiser_state_is_refused(run):
    def change(tensors):
        tensors["optim.0.exp_avg_sq"][...] = float("nan")

    rewrite(run / "checkpoint.safetensors", change)
    with pytest.raises(ValueError, match="optimiser tensor optim.0.exp_avg_sq holds NaN"):
        resume(run)


def test_aliases_not_a_dict(run):
    rewrite(run / "model.safetensors", change_meta=lambda m: m.update(aliases=["x"]))
    with pytest.raises(ValueError, match="aliases"):
        evaluate(str(run), device="cpu")


@pytest.mark.parametrize(("text", "message"), [
    ('{"compile": "yes"}', "compile must be bool"),
    ("[1, 2]", "must be a JSON object"),
    ("null", "must be a JSON object"),
    ('"hello"', "must be a JSON object"),
    ("{}", "TrainConfig fields missing"),
    ("[" * 100_000 + "]" * 100_000, "nests too deeply"),
    ("{\"learning_rate\": Infinity}", "Infinity is not a number JSON allows"),
    (b"\xff\xfe\x00binary", "is not UTF-8 text"),
    ("{not json", "is not valid JSON"),
])
def test_bad_config_json(run, capsys, one_line_error, text, message):
    data = json.loads((run / "config.json").read_text())
    if text == '{"compile": "yes"}':
        text = json.dumps({**data, "compile": "yes"})
    elif isinstance(text, str) and "Infinity" in text:
        text = json.dumps(data).replace('"learning_rate": 0.001', '"learning_rate": Infinity')
    path = run / "config.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    for command in (["evaluate", str(run)], ["train", "--resume", str(run)]):
        assert main(command) == 2
        one_line_error(capsys.readouterr().err, message)


def test_finished_and_shortened_resumes(run, trained):
    with pytest.raises(RunComplete, match=r"is complete: it did all 10 steps.*--epochs 4"):
        resume(run, epochs=2)
    with pytest.raises(ValueError, match=r"--epochs 1 gives 5 steps, but .* is already at step 10"):
        resume(run, epochs=1)
    assert load_file(str(run / "model.safetensors")).keys()  # untouched, still loads


def test_cli_says_a_finished_run_is_complete(run, capsys):
    assert main(["train", "--resume", str(run)]) == 0
    assert "is complete: it did all 10 steps" in capsys.readouterr().out


def test_resume_cannot_move_or_be_forced(run, tmp_path, capsys, one_line_error):
    assert main(["train", "--resume", str(run), "--epochs", "4", "--out",
                 str(tmp_path / "elsewhere")]) == 2
    one_line_error(capsys.readouterr().err, "--out cannot move a resumed run")
    assert main(["train", "--resume", str(run), "--force"]) == 2
    one_line_error(capsys.readouterr().err, "--force replaces a run, --resume continues one")
    assert not (tmp_path / "elsewhere").exists()


def edit_config(run: Path, **changes) -> None:
    data = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**data, **changes}))


@pytest.mark.parametrize(("changes", "message"), [
    ({"model": "cross"}, "model='multihead' (config.json says 'cross')"),
    ({"num_heads": 1}, "num_heads=2 (config.json says 1)"),  # the same tensor shapes
    ({"embed_dim": 1_000_000_000}, "embed_dim=16"),  # refused before anything is allocated
])
def test_config_json_must_agree_with_the_weights(run, capsys, one_line_error, changes, message):
    edit_config(run, **changes)
    for command in (["evaluate", str(run)], ["generate", str(run), "--prompt", "1234"]):
        assert main(command) == 2
        one_line_error(capsys.readouterr().err, "was written by another model than config.json "
                                                "describes", message)


def test_finite_weights_that_overflow_are_refused(run, capsys, one_line_error):
    def change(tensors):
        tensors[first_weight(tensors)][...] = 3e38

    rewrite(run / "model.safetensors", change)
    for command in (["evaluate", str(run)], ["generate", str(run), "--prompt", "1234"]):
        assert main(command) == 2
        one_line_error(capsys.readouterr().err, "the model's outputs are not finite")


def test_a_step_that_disagrees_with_the_optimiser_is_refused(run):
    rewrite(run / "checkpoint.safetensors", change_meta=lambda m: m.update(step=9))
    with pytest.raises(ValueError, match="its step is 9 but the optimiser has taken 10 steps"):
        resume(run)


def test_a_damaged_model_config_record_is_one_short_line(run, capsys, one_line_error):
    rewrite(run / "model.safetensors", change_meta=lambda m: m.update(model_config={"x": 1}))
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    one_line_error(err, "was written by another model than config.json describes",
                   "model_config")
    assert len(err) < 400
