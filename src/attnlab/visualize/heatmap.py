"""Static heatmaps of attention weights with matplotlib.

Plots from the ``{module name: (B, H, L, S) weights}`` dict that
``capture_attention`` returns (or one tensor). Queries run down the y axis,
keys along the x axis. Figures are built on ``matplotlib.figure.Figure`` with
the Agg canvas, never through ``pyplot``: nothing global is touched, no window
opens, and the caller's backend choice is left alone.

Shape letters: B batch, H heads, L queries, S keys.
"""

import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from .._io import atomic_write
from .inputs import (
    TokensArg,
    as_maps,
    check_batch_index,
    check_head,
    display_name,
    resolve_labels,
    select_layer,
)

#: Above this many tokens on an axis its tick labels are left out (unreadable anyway).
MAX_LABELLED_TOKENS = 60
#: Largest figure side, in inches (at the default 100 dpi: 4000 pixels).
MAX_FIGURE_INCHES = 40.0
CMAP = "viridis"


def plot_attention(
    maps: Mapping[str, Tensor] | Tensor,
    tokens: TokensArg,
    *,
    key_tokens: Sequence[str] | None = None,
    layer: str | int | None = None,
    head: int | None = None,
    batch_index: int = 0,
    title: str | None = None,
) -> Figure:
    """Plot attention weights as heatmaps labelled with tokens.

    What is drawn depends on ``layer`` and ``head``:

    - both given: one map;
    - ``layer`` only: a row with every head of that module;
    - ``head`` only: a column with that head of every module;
    - neither: a grid, one row per module and one column per head.

    Heads are never averaged. All panels share one colour scale, from 0 to the
    largest weight shown.

    Args:
        maps: ``{module name: (B, H, L, S) weights}`` as returned by
            ``capture_attention``, or one tensor of shape ``(L, S)``, ``(H, L, S)``
            or ``(B, H, L, S)``.
        tokens: query labels (length L), or a dict ``{module name: labels}`` whose
            values are one list (self-attention) or a pair
            ``(query_tokens, key_tokens)`` (cross-attention).
        key_tokens: key labels (length S) when ``tokens`` is a list; defaults to
            ``tokens``. Needed when S != L, e.g. cross-attention.
        layer: a key of ``maps`` or an index into its keys.
        head: a head index.
        batch_index: which example of the batch to show.
        title: figure title; a description of what is shown by default.

    Returns:
        The figure (Agg canvas). Save it with :func:`save_figure`.

    Raises:
        ValueError: unknown layer, layer or head or batch index out of range, or a
            token count that does not match L or S.
        TypeError: ``maps`` or ``tokens`` of the wrong type.

    Example:
        >>> import torch
        >>> weights = torch.tensor([[0.9, 0.1], [0.3, 0.7]])
        >>> fig = plot_attention(weights, ["a", "b"])
        >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
        ['a', 'b']
    """
    all_maps = as_maps(maps)
    grid = _panels(all_maps, layer, head)
    names = list(dict.fromkeys(name for row in grid for name, _ in row))
    labels = resolve_labels(all_maps, names, tokens, key_tokens)
    for name in names:
        check_batch_index(batch_index, all_maps[name].shape[0])
    shown = {(n, h): all_maps[n][batch_index, h] for row in grid for n, h in row}  # (L, S) each
    vmax = max(float(w.max()) for w in shown.values()) or 1.0

    fig = _empty_figure(grid, all_maps, labels)
    _draw_panels(fig, grid, shown, labels, vmax)
    text = title if title is not None else _describe(grid, names, all_maps, batch_index)
    fig.suptitle(wrap_title(text, fig.get_figwidth()), fontsize=11)
    return fig


def _draw_panels(fig: Figure, grid: list[list[tuple[str, int]]],
                 shown: Mapping[tuple[str, int], Tensor],
                 labels: Mapping[str, tuple[Sequence[str], Sequence[str]]], vmax: float) -> None:
    """One heatmap per ``(module, head)`` of ``grid`` (rows of panels) and a shared colour bar."""
    names = list(dict.fromkeys(name for row in grid for name, _ in row))
    rows, cols = len(grid), max(len(row) for row in grid)
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for r, row in enumerate(grid):
        for c in range(cols):
            ax = axes[r][c]
            if c >= len(row):
                ax.set_visible(False)
                continue
            name, h = row[c]
            image = ax.imshow(shown[name, h].numpy(), cmap=CMAP, vmin=0.0, vmax=vmax,
                              aspect="auto", interpolation="nearest")
            _label_axes(ax, *labels[name])
            if cols > 1 and len(names) > 1:  # a grid: heads on top, modules down the left
                if r == 0:
                    ax.set_title(f"head {h}", fontsize=10)
                if c == 0:
                    ax.set_ylabel(f"{display_name(name)}\nqueries", fontsize=9)
            elif len(shown) > 1:
                ax.set_title(f"head {h}" if len(names) == 1 else
                             f"{display_name(name)} · head {h}", fontsize=9)
    used = [ax for r, row in enumerate(grid) for ax in axes[r][: len(row)]]
    bar = fig.colorbar(image, ax=used, shrink=min(1.0, 0.4 + 0.3 * rows), pad=0.02)
    bar.set_label("attention weight", fontsize=9)
    bar.ax.tick_params(labelsize=8)


def save_figure(fig: Figure, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write ``fig`` to ``path`` as a PNG, at the figure's own size and dpi.

    The image goes through :func:`attnlab._io.atomic_write` (a temporary file in the
    same directory, flushed to disk, then renamed), so ``path`` never holds half an
    image and a failed write leaves the old file as it was.

    Args:
        fig: a figure, e.g. from :func:`plot_attention`.
        path: where to write; must end in ``.png``.
        force: overwrite ``path`` if it exists.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        FileExistsError: ``path`` exists and ``force`` is False.
        FileNotFoundError: the directory of ``path`` does not exist.
        ValueError: ``path`` does not end in ``.png``.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path must end in .png (save_figure writes PNG), got {str(path)!r}")
    if path.exists() and not force:
        raise FileExistsError(f"{path} already exists; pass force=True to overwrite it")
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    return atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=fig.dpi),
                        no_clobber=not force, make_parents=False)


def wrap_title(text: str, width_inches: float, fontsize: float = 11) -> str:
    r"""Break each line of ``text`` so that it fits ``width_inches`` at ``fontsize`` points.

    A long title over a one-panel figure would otherwise run off both edges.

    Example:
        >>> wrap_title("cross-attention alignment: rows = targets, columns = sources", 2.5)
        'cross-attention alignment:\nrows = targets, columns =\nsources'
    """
    chars = max(12, int(width_inches * 72 / (0.6 * fontsize)))
    return "\n".join(textwrap.fill(line, chars) if line else line for line in text.split("\n"))


def _panels(maps: dict[str, Tensor], layer: str | int | None,
            head: int | None) -> list[list[tuple[str, int]]]:
    """Return the grid of (module name, head) to draw, one list per figure row."""
    names = list(maps) if layer is None else [select_layer(maps, layer)]
    if head is not None:
        for name in names:
            check_head(head, maps[name].shape[1], name)
        return [[(name, head)] for name in names]
    return [[(name, h) for h in range(maps[name].shape[1])] for name in names]


def _extent(num_tokens: int) -> float:
    """Inches for the map along an axis with ``num_tokens`` cells."""
    return min(max(0.3 * num_tokens, 1.4), 8.0)


def _margin(labels: list[str]) -> float:
    """Inches needed for the tick labels of an axis."""
    if len(labels) > MAX_LABELLED_TOKENS:
        return 0.4
    return 0.4 + min(max((len(t) for t in labels), default=1), 20) * 0.08


def _empty_figure(grid: list[list[tuple[str, int]]], maps: dict[str, Tensor],
                  labels: dict[str, tuple[list[str], list[str]]]) -> Figure:
    """A figure sized so that every panel's cells and labels are readable."""
    names = {name for row in grid for name, _ in row}
    panel_w = max(_extent(maps[n].shape[3]) + _margin(labels[n][0]) + 0.4 for n in names)
    panel_h = max(_extent(maps[n].shape[2]) + _margin(labels[n][1]) + 0.6 for n in names)
    rows, cols = len(grid), max(len(row) for row in grid)
    width = min(cols * panel_w + 1.3, MAX_FIGURE_INCHES)
    height = min(rows * panel_h + 0.6, MAX_FIGURE_INCHES)
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _label_axes(ax: Axes, queries: list[str], keys: list[str]) -> None:
    """Put token labels on both axes, or say why they are left out."""
    for axis, toks, what, rotation in ((ax.xaxis, keys, "keys", 90), (ax.yaxis, queries,
                                                                        "queries", 0)):
        if len(toks) > MAX_LABELLED_TOKENS:  # keep matplotlib's integer index ticks
            axis.set_label_text(f"{what}: {len(toks)} tokens, index shown (token labels "
                                f"hidden over {MAX_LABELLED_TOKENS})", fontsize=8)
        else:
            axis.set_ticks(range(len(toks)), toks, fontsize=8, rotation=rotation)
            axis.set_label_text(what, fontsize=8)
    ax.tick_params(length=2)


def _describe(grid: list[list[tuple[str, int]]], names: list[str], maps: dict[str, Tensor],
              batch_index: int) -> str:
    """Default title: which module(s) and head(s) are drawn."""
    if len(names) == 1 and len(grid[0]) == 1:
        text = f"{display_name(names[0])} · head {grid[0][0][1]}"
    elif len(names) == 1:
        text = f"{display_name(names[0])} · all {len(grid[0])} heads"
    elif all(len(row) == 1 for row in grid):
        text = f"head {grid[0][0][1]} of {len(names)} modules"
    else:
        text = f"{len(names)} modules × heads"
    if any(maps[n].shape[0] > 1 for n in names):
        text += f" · batch {batch_index}"
    return text
