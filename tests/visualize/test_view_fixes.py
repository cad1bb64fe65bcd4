"""Fixes to the views found while trying them (issue: explain attention step by step).

- a 6 × 12 grid (all-MiniLM-L6-v2's shape) has no overlapping panel titles;
- a one-panel figure's long title is wrapped, not cut off;
- module names read ``encoder.layers…``, not ``encoder.encoder.layers…``;
- the text task's picture input is not a chunk of spaces.

(The HTML page's stale tooltip and its colour-scale choice are tested in
``test_page.py``, in the browser.)
"""

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from attnlab.tasks.text import TextTask
from attnlab.visualize import plot_attention
from attnlab.visualize.inputs import display_name
from attnlab.visualize.inspect import held_out_input
from attnlab.visualize.terminal import format_attention_text

WORDS = ["[CLS]", "the", "animal", "didn", "'", "t", "cross", "the", "street", "because", "it",
         "was", "too", "tired", ".", "[SEP]"]


def minilm_like_maps(layers=6, tokens=16):
    g = torch.Generator().manual_seed(0)
    return {f"encoder.encoder.layers.{i}.self_attn":
            torch.softmax(torch.randn(1, 12, tokens, tokens, generator=g), -1)
            for i in range(layers)}


def boxes(fig):
    FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    return renderer


def overlap(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_a_minilm_sized_grid_has_no_overlapping_titles_and_reads_encoder_layers():
    # MiniLM's 12 heads per row (2 of its 6 rows, 6 of its tokens, to keep the test fast)
    fig = plot_attention(minilm_like_maps(layers=2, tokens=6), WORDS[:6])
    renderer = boxes(fig)
    axes = [ax for ax in fig.axes if ax.images]
    titles = [ax.title for ax in axes if ax.get_title()]
    assert [t.get_text() for t in titles] == [f"head {h}" for h in range(12)]
    extents = [t.get_window_extent(renderer) for t in titles]
    for i, a in enumerate(extents):
        for b in extents[i + 1:]:
            assert not overlap(a, b)
    rows = [ax.get_ylabel().split("\n")[0] for ax in axes[::12]]
    assert rows == [f"encoder.layers.{i}.self_attn" for i in range(2)]
    assert all("encoder.encoder" not in t.get_text() for t in fig.findobj(
        lambda o: hasattr(o, "get_text")))


def test_a_one_panel_figure_keeps_its_whole_title_inside():
    title = ("cross-attention alignment (head 0): rows = target tokens written, columns = "
             "source tokens\ninput '6176' → output '99faa9'")
    fig = plot_attention(torch.softmax(torch.randn(7, 4), -1), list("99<faa9"), key_tokens=list(
        "6176"), title=title)
    renderer = boxes(fig)
    box, page = fig._suptitle.get_window_extent(renderer), fig.bbox
    assert page.x0 <= box.x0
    assert box.x1 <= page.x1
    assert box.y1 <= page.y1
    assert fig.get_suptitle().replace("\n", " ") == title.replace("\n", " ")


def test_display_names_and_the_terminal_header():
    assert display_name("encoder.encoder.layers.3.self_attn") == "encoder.layers.3.self_attn"
    assert display_name("decoder.layers.0.cross_attn") == "decoder.layers.0.cross_attn"
    text = format_attention_text(minilm_like_maps(), WORDS, layer=2, head=1)
    assert "encoder.layers.2.self_attn" in text
    assert "encoder.encoder" not in text
    same = format_attention_text(minilm_like_maps(), WORDS, layer="encoder.layers.2.self_attn",
                                 head=1)
    assert same == text  # the label shown is accepted where a module name is


def test_the_text_task_picture_input_is_not_spaces():
    task = TextTask(seq_length=10)
    prompt = held_out_input(task, seed=0)
    first = task.examples("val", 1, seed=0)[0][0]
    assert first.strip() == ""  # what the picture used to show: ten spaces of indentation
    assert len(set(prompt) - {" ", "\n", "\t"}) >= 6
    assert prompt in [p for p, _ in task.examples("val", 16, seed=0)]
    assert held_out_input(task, seed=0) == prompt  # the same every time
