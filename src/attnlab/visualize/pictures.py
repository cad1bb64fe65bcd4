"""The pictures of one inspected input.

:func:`attention_figures` turns an :class:`~attnlab.visualize.inspect.Inspection`
into named figures (the module × head grid, or the map(s) ``layer``/``head``
pick, and for encoder–decoder models the cross-attention alignment).
:mod:`attnlab.training.pictures` writes them into a run directory when training ends.
"""

from collections.abc import Callable
from functools import partial

from matplotlib.figure import Figure

from .heatmap import plot_attention
from .inputs import check_head, display_name, select_layer
from .inspect import Inspection


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
