"""One attention map in the terminal: rich colours, or plain text.

Rows are queries, columns keys. Each cell is shaded by its weight (relative to
the map's largest weight); the largest weight of each row is bracketed, and the
key it belongs to is named at the end of the row. When the terminal is wide
enough the cells show the weight x 100; otherwise they shrink to two characters
(shading only, keys numbered in a legend), and keys that still do not fit are
left out with a note saying so.

Shape letters: B batch, H heads, L queries, S keys.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.text import Text
from torch import Tensor

from .inputs import (
    TokensArg,
    as_maps,
    check_batch_index,
    check_head,
    display_name,
    resolve_labels,
    select_layer,
)

_LABEL_WIDTH = 16  # widest token label shown before truncation
_WIDE_CELL = 5  # "  12 " or " [80]" or "[100]"
_SHADES = " ░▒▓█"
_ACCENT = (37, 99, 235)


@dataclass
class _Layout:
    """Everything to draw, decided once for both the plain and the rich renderer."""

    header: list[str]
    column_line: str
    rows: list[tuple[str, list[tuple[str, float]], str]]  # (label, [(cell, shade)], max note)
    footer: list[str] = field(default_factory=list)


def format_attention_text(
    maps: Mapping[str, Tensor] | Tensor,
    tokens: TokensArg,
    *,
    key_tokens: Sequence[str] | None = None,
    layer: str | int | None = None,
    head: int = 0,
    batch_index: int = 0,
    width: int = 80,
) -> str:
    """Return one attention map as plain text, at most ``width`` characters wide.

    Args:
        maps: ``{module name: (B, H, L, S) weights}`` as returned by
            ``capture_attention``, or one tensor of shape ``(L, S)``, ``(H, L, S)``
            or ``(B, H, L, S)``.
        tokens: query labels (length L), or a dict ``{module name: labels}`` whose
            values are one list or a pair ``(query_tokens, key_tokens)``.
        key_tokens: key labels (length S) when ``tokens`` is a list; defaults to
            ``tokens``.
        layer: a key of ``maps`` or an index into its keys; the first module when
            None (the header always names the module shown).
        head: which head; heads are never averaged.
        batch_index: which example of the batch.
        width: characters per line.

    Returns:
        The text, lines separated by newlines.

    Raises:
        ValueError: unknown layer, layer, head or batch index out of range, a
            token count that does not match L or S, or ``width`` below 20.

    Example:
        >>> import torch
        >>> print(format_attention_text(torch.tensor([[0.9, 0.1], [0.3, 0.7]]), ["a", "b"]))
        attention · head 0 of 1 · 2 queries × 2 keys
        weights × 100; [ ] marks each row's largest weight
        query │     a    b │ max
        a     │  [90]   10 │ → a 0.900
        b     │    30 [70] │ → b 0.700
    """
    layout = _layout(maps, tokens, key_tokens, layer, head, batch_index, width)
    lines = [*layout.header, layout.column_line]
    lines += [label + "".join(cell for cell, _ in cells) + note
              for label, cells, note in layout.rows]
    return "\n".join(line.rstrip() for line in lines + layout.footer)


def render_terminal(
    maps: Mapping[str, Tensor] | Tensor,
    tokens: TokensArg,
    *,
    key_tokens: Sequence[str] | None = None,
    layer: str | int | None = None,
    head: int = 0,
    batch_index: int = 0,
    console: Console | None = None,
) -> None:
    """Print one attention map with coloured cells, fitted to the console's width.

    Args:
        maps: as for :func:`format_attention_text`.
        tokens: as for :func:`format_attention_text`.
        key_tokens: as for :func:`format_attention_text`.
        layer: as for :func:`format_attention_text`.
        head: as for :func:`format_attention_text`.
        batch_index: as for :func:`format_attention_text`.
        console: a ``rich.console.Console``; a new one on stdout by default.

    Raises:
        ValueError: as for :func:`format_attention_text`.
    """
    console = console if console is not None else Console()
    layout = _layout(maps, tokens, key_tokens, layer, head, batch_index, console.width)
    for line in layout.header:
        console.print(Text(line, style="bold"), no_wrap=True, overflow="crop")
    console.print(Text(layout.column_line, style="dim"), no_wrap=True, overflow="crop")
    for label, cells, note in layout.rows:
        text = Text(label)
        for cell, shade in cells:
            red, green, blue = (round(255 + (c - 255) * shade) for c in _ACCENT)
            ink = "white" if shade > 0.55 else "black"
            bold = " bold" if "[" in cell else ""
            text.append(cell, style=f"{ink}{bold} on rgb({red},{green},{blue})")
        text.append(note)
        console.print(text, no_wrap=True, overflow="crop")
    for line in layout.footer:
        console.print(Text(line, style="dim"), no_wrap=True, overflow="crop")


def _clean(token: str, size: int) -> str:
    """Printable, at most ``size`` characters (cut with an ellipsis)."""
    text = "".join(c if c.isprintable() else "?" for c in token.replace("\n", "\\n")) or "∅"
    return text if len(text) <= size else text[: size - 1] + "…"


def _pack(items: list[str], width: int) -> list[str]:
    """Join ``items`` with spaces into lines of at most ``width``, never splitting an item."""
    lines = [""]
    for item in items:
        if lines[-1] and len(lines[-1]) + 1 + len(item) > width:
            lines.append("")
        lines[-1] += (" " if lines[-1] else "") + item[:width]
    return lines


def _layout(maps: Mapping[str, Tensor] | Tensor, tokens: TokensArg,
            key_tokens: Sequence[str] | None, layer: str | int | None, head: int,
            batch_index: int, width: int) -> _Layout:
    """Check the arguments and decide what goes where."""
    if width < 20:
        raise ValueError(f"width must be >= 20 characters, got {width}")
    all_maps = as_maps(maps)
    name = select_layer(all_maps, 0 if layer is None else layer)
    batch, num_heads, length, source = all_maps[name].shape
    check_head(head, num_heads, name)
    check_batch_index(batch_index, batch)
    queries, keys = resolve_labels(all_maps, [name], tokens, key_tokens)[name]
    weights = all_maps[name][batch_index, head]  # (L, S)
    top = float(weights.max()) or 1.0

    header = _pack([display_name(name), f"· head {head} of {num_heads}"]
                   + ([f"· batch {batch_index}"] if batch > 1 else [])
                   + [f"· {length} queries × {source} keys"], width)
    label_w = max(len("query"), *(len(_clean(q, _LABEL_WIDTH)) for q in queries))
    note_w = 2 + max(len(_clean(k, _LABEL_WIDTH)) for k in keys) + 6
    room = width - (label_w + 3) - (3 + note_w)
    wide = room >= source * _WIDE_CELL
    cell_w = _WIDE_CELL if wide else 2
    shown = max(1, min(source, room // cell_w))
    footer = []
    if wide:
        header += _pack(["weights × 100;", "[ ] marks each row's largest weight"], width)
        columns = "".join(_clean(k, cell_w - 1).rjust(cell_w - 1) + " " for k in keys)
    else:
        header += _pack([f"shade {_SHADES.strip()} = weight / {top:.3f} (the largest);",
                         "[] marks each row's largest weight;",
                         "column digit = key number mod 10"], width)
        columns = "".join(str(j % 10).rjust(2) for j in range(shown))
        footer += _pack([f"{j}={_clean(k, _LABEL_WIDTH)}" for j, k in enumerate(keys)], width)
    if shown < source:
        footer += _pack([f"keys {shown}..{source - 1} not shown:",
                         f"{width} columns are too few for {source} keys"], width)
    column_line = "query".ljust(label_w) + " │ " + columns[: shown * cell_w] + " │ max"

    rows = []
    for i, q in enumerate(queries):
        row = weights[i]  # (S,)
        row_max = float(row.max())
        cells = []
        for j in range(shown):
            w = float(row[j])
            marked = row_max > 0 and w == row_max
            if wide:
                value = str(round(100 * w))
                cell = (f"[{value}]" if marked else value).rjust(cell_w - (not marked))
                cell = cell.ljust(cell_w)
            else:
                cell = "[]" if marked else _SHADES[min(4, round(4 * w / top))] * 2
            cells.append((cell, w / top))
        j_max = int(row.argmax())
        note = f"{_clean(keys[j_max], _LABEL_WIDTH)} {row_max:.3f}" if row_max > 0 else "—"
        rows.append((_clean(q, _LABEL_WIDTH).ljust(label_w) + " │ ", cells, " │ → " + note))
    return _Layout(header, column_line, rows, footer)
