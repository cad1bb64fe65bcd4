"""Seeing attention weights: heatmaps, an interactive HTML page, terminal output.

Everything here plots from the ``{module name: (B, H, L, S) weights}`` dict that
``capture_attention`` returns (or from one tensor); nothing else in the library
knows about plotting.
"""

from .capture import AttentionMaps, capture_attention
from .curves import plot_curves, read_metrics, write_curves
from .heatmap import plot_attention, save_figure
from .inspect import Inspection, held_out_input, inspect_run, inspect_sentence_encoder
from .page import attention_page, write_page
from .pictures import attention_figures, visualize_run
from .terminal import format_attention_text, render_terminal

__all__ = [
    "AttentionMaps",
    "Inspection",
    "attention_figures",
    "attention_page",
    "capture_attention",
    "format_attention_text",
    "held_out_input",
    "inspect_run",
    "inspect_sentence_encoder",
    "plot_attention",
    "plot_curves",
    "read_metrics",
    "render_terminal",
    "save_figure",
    "visualize_run",
    "write_curves",
    "write_page",
]
