"""The pictures of one inspected input, and the pictures written after training.

:func:`attention_figures` turns an :class:`~attnlab.visualize.inspect.Inspection`
into named figures (the module × head grid, or the map(s) ``layer``/``head``
pick, and for encoder–decoder models the cross-attention alignment);
:func:`visualize_run` writes ``curves.png``, ``attention.png`` and (for
encoder–decoder models) ``alignment.png`` into a run directory when training ends.
"""

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from .curves import write_curves
from .heatmap import plot_attention, save_figure
from .inputs import check_head, display_name, select_layer
from .inspect import Inspection, held_out_input, inspect_run


def attention_figures(inspection: Inspection, *, layer: str | int | None = None,
                      head: int | None = None) -> dict[str, Figure]:
    """Heatmaps of an inspection, keyed by file name.

    * ``attention.png``: every module × every head; with ``layer`` and/or ``head``
      only those (``attention-<module>-head<h>.png`` and the like);
    * ``alignment.png`` (encoder–decoder models only): the cross-attention,
      target tokens × source tokens, every cross-attention module × head (only
      ``layer`` if it is a cross-attention module; only ``head`` if given).

    Args:
        inspection: What :func:`~attnlab.visualize.inspect.inspect_run` (or
            ``inspect_sentence_encoder``) returned.
        layer: A module name or an index into ``inspection.maps``.
        head: A head index.

    Returns:
        ``{file name: figure}``, the names :func:`figure_names` gives.

    Raises:
        ValueError: For an unknown layer, or a layer or head out of range.
    """
    return {name: plot() for name, plot in _plan(inspection, layer, head).items()}


def figure_names(inspection: Inspection, *, layer: str | int | None = None,
                 head: int | None = None) -> list[str]:
    """The file names :func:`attention_figures` would return, without drawing anything.

    Raises:
        ValueError: As for :func:`attention_figures`.
    """
    return list(_plan(inspection, layer, head))


def _plan(inspection: Inspection, layer: str | int | None,
          head: int | None) -> dict[str, Callable[[], Figure]]:
    """Check ``layer`` and ``head``; return ``{file name: function drawing the figure}``."""
    maps, tokens = inspection.maps, inspection.tokens
    name = select_layer(maps, layer) if layer is not None else None
    if head is not None:
        for module in [name] if name is not None else maps:
            check_head(head, maps[module].shape[1], module)
    stem = "attention" + (f"-{name}" if name else "") + (f"-head{head}" if head is not None
                                                         else "")
    title = f"{_what(inspection, name, head)}\n{_io(inspection)}"
    plan = {f"{stem}.png": partial(plot_attention, maps, tokens, layer=name, head=head,
                                   title=title)}
    cross = inspection.cross
    if cross:
        chosen = [name] if name in cross else cross
        suffix = f"-head{head}" if head is not None else ""
        heads = f"head {head}" if head is not None else "every head"
        plan[f"alignment{suffix}.png"] = partial(
            plot_attention, {n: maps[n] for n in chosen}, {n: tokens[n] for n in chosen},
            head=head, title=f"cross-attention alignment ({heads}): rows = target tokens "
                             f"written, columns = source tokens\n{_io(inspection)}")
    return plan


def visualize_run(trainer: Any, run_dir: str | Path) -> list[Path]:
    """Write the pictures of a finished training run; returns the paths written.

    ``curves.png`` (from ``metrics.jsonl``, when there is one), then
    ``attention.png`` and, for encoder–decoder models, ``alignment.png``, both
    of one held-out example (the same one for the same seed). Files from an
    earlier (resumed) run are replaced.

    Args:
        trainer: The :class:`~attnlab.training.trainer.Trainer` (its ``model``,
            ``task`` and ``config.seed`` are used).
        run_dir: The run directory.
    """
    run_dir = Path(run_dir)
    paths = []
    task = trainer.task
    if (run_dir / "metrics.jsonl").is_file():
        paths.append(write_curves(run_dir, metric=task.primary_metric, force=True))
    inspection = inspect_run(trainer.model, task, held_out_input(task, trainer.config.seed))
    for file_name, figure in attention_figures(inspection).items():
        paths.append(save_figure(figure, run_dir / file_name, force=True))
    return paths


def _what(inspection: Inspection, name: str | None, head: int | None) -> str:
    if name is None and head is None:
        heads = sorted({int(m.shape[1]) for m in inspection.maps.values()})
        each = f"{heads[0]} heads" if len(heads) == 1 else "heads"
        return f"{len(inspection.maps)} attention modules × {each}"
    if name is None:
        return f"head {head} of every attention module"
    role = inspection.roles[name]
    return f"{display_name(name)} ({role}) · " + ("every head" if head is None else f"head {head}")


def _io(inspection: Inspection) -> str:
    text = f"input {_short(inspection.input)}"
    if inspection.output:
        text += f" → output {_short(inspection.output)}"
    return text


def _short(text: str, size: int = 60) -> str:
    shown = repr(text)
    return shown if len(shown) <= size else shown[: size - 2] + "…'"
