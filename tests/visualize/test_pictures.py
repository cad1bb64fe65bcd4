from types import SimpleNamespace

import pytest
import torch

from attnlab.training.train_config import TrainConfig
from attnlab.training.trainer import build_task, model_for_task
from attnlab.visualize.inspect import inspect_run
from attnlab.visualize.pictures import attention_figures, figure_names

H = 2
CROSS = "decoder.layers.1.cross_attn"


@pytest.fixture(scope="module")
def run():
    config = TrainConfig(task="reverse", embed_dim=8, num_heads=H, seq_length=5)
    task = build_task(config)
    model = model_for_task(config, task).eval()
    return SimpleNamespace(model=model, task=task, config=config)


@pytest.fixture(scope="module")
def inspection(run):
    return inspect_run(run.model, run.task, "abc")


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images and ax.get_visible()]


def ticks(ax):
    return ([t.get_text() for t in ax.get_yticklabels()],
            [t.get_text() for t in ax.get_xticklabels()])


def test_grid_and_alignment_have_token_ticks(inspection):
    figures = attention_figures(inspection)
    assert list(figures) == ["attention.png", "alignment.png"]
    grid = image_axes(figures["attention.png"])
    assert len(grid) == 6 * H
    names = list(inspection.maps)
    for i, ax in enumerate(grid):
        assert ticks(ax) == inspection.tokens[names[i // H]]
    alignment = image_axes(figures["alignment.png"])
    assert len(alignment) == 2 * H  # both cross-attention layers, every head
    for ax in alignment:
        assert ticks(ax) == (inspection.tokens[CROSS][0], ["a", "b", "c"])
    assert "input 'abc'" in figures["alignment.png"].get_suptitle()


def test_layer_and_head_pick_one_map(inspection):
    assert figure_names(inspection, layer=CROSS, head=1) == [
        f"attention-{CROSS}-head1.png", "alignment-head1.png"]
    figures = attention_figures(inspection, layer=-1, head=1)  # -1 is the last module
    (ax,) = image_axes(figures[f"attention-{CROSS}-head1.png"])
    torch.testing.assert_close(torch.as_tensor(ax.images[0].get_array().data),
                               inspection.maps[CROSS][0, 1])
    assert len(image_axes(figures["alignment-head1.png"])) == 1  # only that cross layer
    assert figure_names(inspection, layer=0) == ["attention-encoder.encoder.layers.0.self_attn"
                                                 ".png", "alignment.png"]


@pytest.mark.parametrize(("layer", "head", "message"), [
    (6, None, r"layer index 6 is out of range for 6 modules"),
    ("decoder.nope", None, r"layer 'decoder.nope' is not in maps"),
    (None, 2, r"head 2 is out of range for 'encoder.encoder.layers.0.self_attn', which has "
              r"2 heads"),
    (CROSS, -1, r"head -1 is out of range"),
])
def test_bad_layer_or_head(inspection, layer, head, message):
    with pytest.raises(ValueError, match=message):
        figure_names(inspection, layer=layer, head=head)
