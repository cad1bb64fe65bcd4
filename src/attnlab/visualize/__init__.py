"""Seeing attention weights: heatmaps, an interactive HTML page, terminal output.

The attention pictures plot from the ``{module name: (B, H, L, S) weights}`` dict
that ``capture_attention`` returns (or from one tensor); ``curves`` plots a run's
``metrics.jsonl``. Outside this package only the benchmark report draws (its plot).
"""

from importlib import import_module

from .capture import AttentionMaps, capture_attention

# Everything else draws with matplotlib: imported on first use, so `import attnlab`
# (which needs capture_attention) does not pay for it.
_LAZY = {
    "plot_curves": "curves", "read_metrics": "curves", "write_curves": "curves",
    "plot_attention": "heatmap", "save_figure": "heatmap",
    "Inspection": "inspect", "held_out_input": "inspect", "inspect_run": "inspect",
    "inspect_sentence_encoder": "inspect",
    "attention_page": "page", "write_page": "page",
    "attention_figures": "pictures", "figure_names": "pictures",
    "format_attention_text": "terminal", "render_terminal": "terminal",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AttentionMaps",
    "Inspection",
    "attention_figures",
    "attention_page",
    "capture_attention",
    "figure_names",
    "format_attention_text",
    "held_out_input",
    "inspect_run",
    "inspect_sentence_encoder",
    "plot_attention",
    "plot_curves",
    "read_metrics",
    "render_terminal",
    "save_figure",
    "write_curves",
    "write_page",
]
