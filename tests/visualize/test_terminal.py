import io
import re

import pytest
import torch
from rich.console import Console

from attention_maps import CROSS, SRC, TGT, TOKENS, L, S, make_maps
from attnlab.visualize import format_attention_text, render_terminal


def table_rows(text: str, num_rows: int) -> list[tuple[str, str, str]]:
    """(label, cells, max note) of the last ``num_rows`` lines that have two bars."""
    rows = [line.split("│") for line in text.splitlines() if line.count("│") == 2]
    return [(a.strip(), b[1:-1], c.strip()) for a, b, c in rows[-num_rows:]]


def test_wide_text_shows_tokens_weights_and_marks_each_row_maximum():
    maps = make_maps()
    text = format_attention_text(maps, TOKENS, layer=CROSS, head=2, batch_index=1, width=120)
    assert CROSS in text
    assert "head 2 of 3" in text
    assert "batch 1" in text
    assert all(len(line) <= 120 for line in text.splitlines())
    header = text.splitlines()[2]
    assert header.split("│")[1].split() == [t if len(t) <= 4 else t[:3] + "…" for t in SRC]
    weights = maps[CROSS][1, 2]  # (L, S)
    for i, (label, cells, note) in enumerate(table_rows(text, L)):
        assert label == TGT[i]
        values = [cells[5 * j: 5 * j + 5] for j in range(S)]
        marked = [j for j, v in enumerate(values) if "[" in v]
        assert marked == [int(weights[i].argmax())]
        numbers = [int(v.strip(" []")) for v in values]
        assert numbers == [round(100 * float(w)) for w in weights[i]]
        top = int(weights[i].argmax())
        assert note == f"→ {SRC[top]} {float(weights[i, top]):.3f}"


def test_narrow_text_shades_cells_numbers_keys_and_still_marks_the_maximum():
    maps = make_maps()
    text = format_attention_text(maps, TOKENS, layer=CROSS, head=0, width=50)
    assert all(len(line) <= 50 for line in text.splitlines())
    legend = " ".join(text.splitlines()[-2:])
    assert legend.split() == [f"{j}={t}" for j, t in enumerate(SRC)]
    weights = maps[CROSS][0, 0]
    for i, (_, cells, _) in enumerate(table_rows(text, L)):
        assert cells.index("[]") == 2 * int(weights[i].argmax())
        assert set(cells) <= set(" ░▒▓█[]")


def test_too_narrow_text_leaves_keys_out_and_says_so():
    text = format_attention_text(make_maps(), TOKENS, layer=CROSS, width=34)
    assert re.search(r"keys \d+\.\.10 not shown", text)
    assert all(len(line) <= 34 for line in text.splitlines())


def test_layer_defaults_to_the_first_module_and_ties_and_empty_rows_are_handled():
    weights = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0], [0.1, 0.2, 0.7]])
    text = format_attention_text({"m": weights[None, None]}, ["a", "b", "c"])
    (a, tie, _), (b, empty, dash), (c, last, _) = table_rows(text, 3)
    assert tie.count("[50]") == 2  # both maxima of a tie are marked
    assert "[" not in empty
    assert dash == "→ —"
    assert "[70]" in last
    assert text.splitlines()[0].startswith("m · head 0 of 1")


def test_render_terminal_prints_the_same_table_in_colour():
    maps = make_maps()
    plain = Console(file=io.StringIO(), width=100, color_system=None)
    render_terminal(maps, TOKENS, layer=CROSS, head=1, console=plain)
    expected = format_attention_text(maps, TOKENS, layer=CROSS, head=1, width=100)
    assert [line.rstrip() for line in plain.file.getvalue().splitlines()] == \
        expected.splitlines()
    colour = Console(file=io.StringIO(), width=100, force_terminal=True,
                     color_system="truecolor")
    render_terminal(maps, TOKENS, layer=CROSS, head=1, console=colour)
    out = colour.file.getvalue()
    assert out.count("48;2;") == L * S  # one background colour per cell
    assert "48;2;37;99;235" in out  # the largest weight gets the full accent colour
    assert all(t in out for t in TGT)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"head": 3}, ValueError, r"head 3 is out of range for .* \(valid: 0..2\)"),
    ({"layer": "nope"}, ValueError, r"layer 'nope' is not in maps; valid layers"),
    ({"width": 10}, ValueError, r"width must be >= 20 characters, got 10"),
    ({"batch_index": 5}, ValueError, r"batch_index 5 is out of range for batch size 2"),
])
def test_bad_arguments_are_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        format_attention_text(make_maps(), TOKENS, **kwargs)


def test_token_mismatch_names_the_argument():
    with pytest.raises(ValueError, match=r"key_tokens has 7 labels but .* has S=11 keys"):
        format_attention_text(make_maps(), TGT, key_tokens=TGT, layer=CROSS)
