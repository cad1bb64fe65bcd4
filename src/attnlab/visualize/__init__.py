"""Seeing attention weights: heatmaps, an interactive HTML page, terminal output.

Everything here plots from the ``{module name: (B, H, L, S) weights}`` dict that
``capture_attention`` returns (or from one tensor); nothing else in the library
knows about plotting.
"""

from .heatmap import plot_attention, save_figure
from .page import attention_page, write_page
from .terminal import format_attention_text, render_terminal

# capture_attention (from .capture) is re-exported here by the lead:
# from .capture import capture_attention

__all__ = [
    "attention_page",
    "format_attention_text",
    "plot_attention",
    "render_terminal",
    "save_figure",
    "write_page",
]
