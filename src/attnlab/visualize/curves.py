"""Training curves from a run's ``metrics.jsonl``: loss and the task's metric against steps.

Each line of ``metrics.jsonl`` is one evaluation, written by the trainer:
``{"step", "epoch", "train_loss", "lr", "seconds", "val_loss", <metrics>...}``.
The figure has two panels: the loss (train, a running average, and held-out)
and the task's primary metric on held-out data (``seq_acc`` for the seq2seq
tasks, ``bits_per_char`` for text). Built on ``matplotlib.figure.Figure`` with
the Agg canvas, like the heatmaps: no pyplot, no window.
"""

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .heatmap import save_figure

#: Keys of a metrics line that are not metrics.
BOOKKEEPING = ("step", "epoch", "train_loss", "lr", "seconds", "val_loss")
#: Task metrics to prefer, in order, when none is named (the tasks' primary metrics).
PRIMARY = ("seq_acc", "bits_per_char")
#: Metrics where lower is better (all others: higher is better).
LOWER_IS_BETTER = ("bits_per_char", "val_loss")
#: Figure size in inches, at 100 dpi: 1000 x 400 pixels.
FIGSIZE = (10.0, 4.0)
DPI = 100

Record = Mapping[str, Any]


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read ``metrics.jsonl`` (one JSON object per line; blank lines are skipped).

    Args:
        path: The file, or a run directory holding it.

    Returns:
        The records, in file order.

    Raises:
        FileNotFoundError: If there is no such file.
        ValueError: If a line is not a JSON object with a numeric ``step``
            (the message gives the line number), or the file has no record.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics file {path} (it is written at each evaluation)")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number} is not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or not _is_number(record.get("step")):
            raise ValueError(f"{path}:{number} must be a JSON object with a numeric 'step'")
        records.append(record)
    if not records:
        raise ValueError(f"{path} holds no evaluation yet")
    return records


def primary_metric(records: Sequence[Record]) -> str | None:
    """The task metric to plot: ``seq_acc`` or ``bits_per_char`` if recorded, else the first.

    Returns None when the records hold no task metric.
    """
    for key in PRIMARY:
        if any(_is_number(r.get(key)) for r in records):
            return key
    for record in records:
        for key, value in record.items():
            if key not in BOOKKEEPING and _is_number(value):
                return key
    return None


def plot_curves(records: Sequence[Record] | str | os.PathLike[str], *,
                metric: str | None = None, title: str | None = None) -> Figure:
    """Plot loss and a held-out metric against the optimiser step.

    Args:
        records: Metric records (as :func:`read_metrics` returns), or the path of
            a ``metrics.jsonl`` file or of a run directory.
        metric: The metric for the right panel; the first task metric in the
            records (:func:`primary_metric`) by default.
        title: Figure title; the number of evaluations by default.

    Returns:
        A 1000 x 400 pixel figure (Agg canvas) with two panels.

    Raises:
        ValueError: If ``metric`` is in no record, or the records are empty.

    Example:
        >>> fig = plot_curves([{"step": 10, "train_loss": 2.0, "val_loss": 2.1,
        ...                     "seq_acc": 0.0},
        ...                    {"step": 20, "train_loss": 1.0, "val_loss": 1.2,
        ...                     "seq_acc": 0.5}])
        >>> [ax.get_title() for ax in fig.axes]
        ['loss', 'held-out seq_acc (higher is better)']
    """
    if isinstance(records, str | os.PathLike):
        records = read_metrics(records)
    records = sorted(records, key=lambda r: r["step"])
    if not records:
        raise ValueError("records is empty: nothing to plot")
    metric = metric if metric is not None else primary_metric(records)
    if metric is not None and not any(_is_number(r.get(metric)) for r in records):
        known = sorted({k for r in records for k in r if k not in BOOKKEEPING})
        raise ValueError(f"metric {metric!r} is in no record; metrics found: {known}")

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    loss_ax, metric_ax = fig.subplots(1, 2)
    for key, label in (("train_loss", "train (running mean)"), ("val_loss", "held-out")):
        _line(loss_ax, records, key, label)
    loss_ax.set_title("loss")
    loss_ax.set_ylabel("cross-entropy (nats / token)")
    if metric is None:
        metric_ax.text(0.5, 0.5, "no task metric recorded", ha="center", va="center",
                       transform=metric_ax.transAxes)
    else:
        _line(metric_ax, records, metric, "held-out")
        better = "lower" if metric in LOWER_IS_BETTER else "higher"
        metric_ax.set_title(f"held-out {metric} ({better} is better)")
        metric_ax.set_ylabel(metric)
    for ax in (loss_ax, metric_ax):
        ax.set_xlabel("optimiser step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=9)
    fig.suptitle(title if title is not None else
                 f"training curves · {len(records)} evaluations · last step "
                 f"{_step_text(records[-1]['step'])}", fontsize=11)
    return fig


def write_curves(run_dir: str | os.PathLike[str], path: str | os.PathLike[str] | None = None,
                 *, metric: str | None = None, force: bool = False) -> Path:
    """Write ``curves.png`` for a run directory (from its ``metrics.jsonl``).

    Args:
        run_dir: The run directory.
        path: Where to write; ``run_dir/curves.png`` by default.
        metric: As for :func:`plot_curves`.
        force: Overwrite an existing file.

    Returns:
        The path written.

    Raises:
        FileNotFoundError: If the run has no ``metrics.jsonl``.
        FileExistsError: If ``path`` exists and ``force`` is False.
        ValueError: As for :func:`read_metrics`.
    """
    run_dir = Path(run_dir)
    path = Path(path) if path is not None else run_dir / "curves.png"
    return save_figure(plot_curves(read_metrics(run_dir), metric=metric), path, force=force)


def _line(ax: Any, records: Sequence[Record], key: str, label: str) -> None:
    points = [(r["step"], r[key]) for r in records if _is_number(r.get(key))]
    if points:
        steps, values = zip(*points, strict=True)
        ax.plot(steps, values, marker="o" if len(points) < 30 else None, markersize=3,
                label=label)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)


def _step_text(step: int | float) -> str:
    return str(int(step)) if float(step).is_integer() else str(step)
