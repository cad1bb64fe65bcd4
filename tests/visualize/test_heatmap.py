import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.image import imread

from attention_maps import CROSS, SELF, SRC, TGT, TOKENS, H, L, S, make_maps
from attnlab.visualize import plot_attention, save_figure


def image_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.images and ax.get_visible()]


def tick_texts(ax) -> tuple[list[str], list[str]]:
    return ([t.get_text() for t in ax.get_xticklabels()],
            [t.get_text() for t in ax.get_yticklabels()])


def test_one_map_has_token_ticks_and_the_weights():
    maps = make_maps()
    fig = plot_attention(maps, TGT, key_tokens=SRC, layer=CROSS, head=2)
    (ax,) = image_axes(fig)
    assert tick_texts(ax) == (SRC, TGT)
    np.testing.assert_allclose(ax.images[0].get_array(), maps[CROSS][0, 2].numpy())
    assert len(fig.axes) == 2  # the map and its colour bar
    assert CROSS in fig.get_suptitle()
    assert "head 2" in fig.get_suptitle()


def test_layer_only_draws_every_head_of_that_layer():
    maps = make_maps()
    fig = plot_attention(maps, TGT, layer=0)  # index 0 is the self-attention module
    axes = image_axes(fig)
    assert [ax.get_title() for ax in axes] == ["head 0", "head 1", "head 2"]
    for h, ax in enumerate(axes):
        np.testing.assert_allclose(ax.images[0].get_array(), maps[SELF][0, h].numpy())
        assert tick_texts(ax) == (TGT, TGT)


def test_no_layer_no_head_draws_the_module_by_head_grid():
    maps = make_maps()
    fig = plot_attention(maps, TOKENS)
    axes = image_axes(fig)
    assert len(axes) == 2 * H
    expected = [(n, h) for n in (SELF, CROSS) for h in range(H)]
    for ax, (name, h) in zip(axes, expected, strict=True):
        # heads title the top row and modules label the left column, so nothing overlaps
        assert ax.get_title() == (f"head {h}" if name == SELF else "")
        assert ax.get_ylabel() == (f"{name}\nqueries" if h == 0 else "queries")
        np.testing.assert_allclose(ax.images[0].get_array(), maps[name][0, h].numpy())
        assert tick_texts(ax) == ((SRC, TGT) if name == CROSS else (TGT, TGT))
    # one shared colour scale, up to the largest weight shown
    top = max(float(maps[n][0].max()) for n in maps)
    assert [ax.images[0].get_clim() for ax in axes] == [(0.0, pytest.approx(top))] * len(axes)


def test_head_only_draws_that_head_of_every_module_and_batch_index_picks_the_example():
    maps = make_maps()
    fig = plot_attention(maps, TOKENS, head=1, batch_index=1)
    axes = image_axes(fig)
    assert len(axes) == 2
    for ax, name in zip(axes, (SELF, CROSS), strict=True):
        np.testing.assert_allclose(ax.images[0].get_array(), maps[name][1, 1].numpy())
    assert "batch 1" in fig.get_suptitle()


@pytest.mark.parametrize("shape", [(L, S), (H, L, S), (1, H, L, S)])
def test_a_bare_tensor_is_accepted(shape):
    weights = torch.softmax(torch.randn(shape, generator=torch.Generator().manual_seed(1)), -1)
    fig = plot_attention(weights, TGT, key_tokens=SRC, head=0, title="mine")
    (ax,) = image_axes(fig)
    np.testing.assert_allclose(ax.images[0].get_array(), weights.reshape(-1, L, S)[0].numpy())
    assert fig.get_suptitle() == "mine"


def test_figure_size_grows_with_tokens_and_grid_and_is_capped():
    small = plot_attention(make_maps(), TOKENS, layer=CROSS, head=0).get_size_inches()
    grid = plot_attention(make_maps(), TOKENS).get_size_inches()
    assert grid[0] > 2 * small[0]
    assert grid[1] > 1.5 * small[1]
    long = torch.softmax(torch.randn(1, 2, 30, 40), -1)
    labels = [f"t{i}" for i in range(30)], [f"k{i}" for i in range(40)]
    size = plot_attention(long, labels[0], key_tokens=labels[1], head=0).get_size_inches()
    assert size[0] > small[0]
    assert size[1] > small[1]
    huge = torch.softmax(torch.randn(1, 5, 100, 100), -1)  # 5 heads side by side
    capped = plot_attention(huge, [f"t{i}" for i in range(100)]).get_size_inches()
    assert max(capped) == pytest.approx(40.0)


def test_long_sequences_hide_token_labels_and_say_so():
    weights = torch.softmax(torch.randn(70, 65), -1)
    fig = plot_attention(weights, [f"q{i}" for i in range(70)],
                         key_tokens=[f"k{i}" for i in range(65)])
    (ax,) = image_axes(fig)
    xs, ys = tick_texts(ax)
    assert not any(t.startswith("k") for t in xs)
    assert not any(t.startswith("q") for t in ys)
    assert "hidden" in ax.get_xlabel()
    assert "65 tokens" in ax.get_xlabel()
    assert "hidden" in ax.get_ylabel()
    assert "70 tokens" in ax.get_ylabel()


@pytest.mark.parametrize("kwargs", [{"layer": CROSS, "head": 1}, {}])
def test_save_figure_writes_a_png_of_the_figure_size(tmp_path, kwargs):
    fig = plot_attention(make_maps(), TOKENS, **kwargs)
    path = save_figure(fig, tmp_path / "attn.png")
    assert path == tmp_path / "attn.png"
    assert path.is_file()
    pixels = imread(path)
    width, height = fig.get_size_inches() * fig.dpi
    assert pixels.shape[:2] == (round(height), round(width))
    assert pixels[..., :3].var() > 0.01  # not blank
    assert os.listdir(tmp_path) == ["attn.png"]  # no temp file left behind


def test_save_figure_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "attn.png"
    path.write_bytes(b"precious")
    fig = plot_attention(make_maps(), TOKENS, layer=0, head=0)
    with pytest.raises(FileExistsError, match=r"attn\.png already exists; pass force=True"):
        save_figure(fig, path)
    assert path.read_bytes() == b"precious"
    save_figure(fig, path, force=True)
    assert imread(path).shape[2] == 4
    assert os.listdir(tmp_path) == ["attn.png"]


def test_a_failing_save_keeps_the_old_picture_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "attn.png"
    path.write_bytes(b"precious")
    fig = plot_attention(make_maps(), TOKENS, layer=0, head=0)

    def broken(self, handle, **kwargs):
        handle.write(b"\x89PNG half an image")
        raise RuntimeError("the renderer failed")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="the renderer failed"):
        save_figure(fig, path, force=True)
    assert path.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["attn.png"]


def test_save_figure_checks_suffix_and_directory(tmp_path):
    fig = plot_attention(make_maps(), TOKENS, layer=0, head=0)
    with pytest.raises(ValueError, match=r"path must end in \.png"):
        save_figure(fig, tmp_path / "attn.pdf")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_figure(fig, tmp_path / "missing" / "attn.png")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"layer": "encoder.layers.9.attn"},
     r"layer 'encoder.layers.9.attn' is not in maps; valid layers: \['decoder.layers.0"),
    ({"layer": 2}, r"layer index 2 is out of range for 2 modules \(valid: 0..1"),
    ({"layer": -3}, r"layer index -3 is out of range"),
    ({"layer": CROSS, "head": 3}, r"head 3 is out of range for .* 3 heads \(valid: 0..2\)"),
    ({"head": -1}, r"head -1 is out of range"),
    ({"batch_index": 2}, r"batch_index 2 is out of range for batch size 2 \(valid: 0..1\)"),
])
def test_bad_selection_is_a_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot_attention(make_maps(), TOKENS, **kwargs)


@pytest.mark.parametrize(("tokens", "key_tokens", "message"), [
    (TGT[:6], None, r"tokens has 6 labels but 'decoder.layers.0.self_attn' has L=7 queries"),
    (TGT, None, r"tokens \(used as key_tokens\) has 7 labels but .*cross_attn' has S=11 keys"),
    (TGT, SRC[:10], r"key_tokens has 10 labels but .* has S=11 keys"),
    ({CROSS: (TGT, SRC)}, None, r"tokens has no labels for modules \['decoder.layers.0"),
    ({CROSS: (TGT, SRC[:3]), SELF: TGT}, None, r"tokens\['decoder.layers.1.cross_attn'\] "
                                               r"keys has 3 labels"),
    (TOKENS, SRC, r"key_tokens must be None when tokens is a dict"),
])
def test_token_count_mismatch_is_a_value_error(tokens, key_tokens, message):
    layer = CROSS if key_tokens is not None and not isinstance(tokens, dict) else None
    with pytest.raises(ValueError, match=message):
        plot_attention(make_maps(), tokens, key_tokens=key_tokens, layer=layer)


@pytest.mark.parametrize(("maps", "message"), [
    ({}, r"maps is empty"),
    (torch.ones(1, 1, 1, 2, 2), r"maps must have shape \(L, S\), \(H, L, S\) or \(B, H, L, S\)"),
    ({"a": torch.ones(2, 2)}, r"maps\['a'\] must have shape \(B, H, L, S\)"),
    ({"a": torch.full((1, 1, 2, 2), float("nan"))}, r"maps\['a'\] contains NaN"),
])
def test_bad_maps_are_a_value_error(maps, message):
    with pytest.raises(ValueError, match=message):
        plot_attention(maps, ["x", "y"])


def test_plotting_touches_neither_pyplot_nor_the_backend(tmp_path):
    code = ("import matplotlib, sys; raw = lambda: dict.__getitem__(matplotlib.rcParams, "
            "'backend'); before = raw(); import attnlab.visualize as v, torch; "
            "v.save_figure(v.plot_attention(torch.eye(2), ['a', 'b']), sys.argv[1]); "
            "print('matplotlib.pyplot' in sys.modules, before == raw())")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.png")],
                         capture_output=True, text=True, check=False)
    assert out.stdout.split() == ["False", "True"], out.stderr
    assert (tmp_path / "a.png").is_file()


def test_plots_what_capture_attention_records():
    import attnlab as al
    from attnlab.visualize.capture import capture_attention

    class Decoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.self_attn = al.MultiHeadAttention(15, 3)
            self.cross_attn = al.MultiHeadAttention(15, 3)

        def forward(self, x, memory):
            return self.cross_attn(self.self_attn(x), memory, memory)

    torch.manual_seed(0)
    model = Decoder()
    with capture_attention(model) as maps:
        model(torch.randn(2, L, 15), torch.randn(2, S, 15))
    fig = plot_attention(maps, {"self_attn": TGT, "cross_attn": (TGT, SRC)}, batch_index=1)
    axes = image_axes(fig)
    assert len(axes) == 2 * 3
    np.testing.assert_allclose(axes[-1].images[0].get_array(), maps["cross_attn"][1, 2].numpy())
    assert tick_texts(axes[-1]) == (SRC, TGT)
