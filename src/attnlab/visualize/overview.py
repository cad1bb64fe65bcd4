"""An overview of every head of a large model on one page: small maps, one row per layer.

A real model has many heads (SmolLM2: 30 layers × 9 heads = 270 maps). Drawn
with token labels, they no longer fit a picture; drawn small, the patterns
that tell heads apart still show: the diagonal (a head looking at the token
itself), the line just below it (the previous token), the first column (the
"attention sink"), vertical stripes (a token everybody reads). Each map gets
its own colour scale, from 0 to its largest weight *after the first key
column*: most heads park much of their weight on the first token, which
would otherwise wash out everything else (that column then shows saturated).
Pick a layer and head from it for a labelled heatmap
(:func:`~attnlab.visualize.heatmap.plot_attention`).
"""

from collections.abc import Mapping

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from .heatmap import CMAP

CELL_INCHES = 0.62


def plot_overview(maps: Mapping[str, Tensor], *, title: str, batch_index: int = 0,
                  row_names: list[str] | None = None) -> Figure:
    """Every head of every module as a small unlabelled map.

    Args:
        maps: ``{module name: (B, H, L, S) weights}`` (every module the same H).
        title: The figure's title.
        batch_index: Which example of the batch.
        row_names: A short label per module (default: the module names).

    Returns:
        The figure (Agg canvas): ``len(maps)`` rows × H columns.

    Raises:
        ValueError: If ``maps`` is empty or ``row_names`` does not match it.
    """
    if not maps:
        raise ValueError("maps must hold at least one module")
    names = list(maps)
    labels = row_names if row_names is not None else names
    if len(labels) != len(names):
        raise ValueError(f"row_names must have {len(names)} entries, got {len(labels)}")
    heads = max(int(m.shape[1]) for m in maps.values())
    width = heads * CELL_INCHES + 1.4
    height = len(names) * CELL_INCHES + 1.2
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(names), heads, squeeze=False)
    for r, name in enumerate(names):
        weights = maps[name][batch_index]  # (H, L, S)
        for h in range(heads):
            ax = axes[r][h]
            ax.set_xticks([])
            ax.set_yticks([])
            if h >= weights.shape[0]:
                ax.set_visible(False)
                continue
            panel = weights[h].float()  # (L, S)
            rest = panel[:, 1:] if panel.shape[1] > 1 else panel
            ax.imshow(panel.numpy(), cmap=CMAP, vmin=0.0, vmax=float(rest.max()) or 1.0,
                      aspect="auto", interpolation="nearest")
            if r == 0:
                ax.set_title(f"head {h}", fontsize=7)
            if h == 0:
                ax.set_ylabel(labels[r], fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(title, fontsize=9)
    return fig
