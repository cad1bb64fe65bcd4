"""The pictures a finished training run leaves in its directory.

The views themselves live in :mod:`attnlab.visualize`; this module is the
training run's glue: which pictures a run gets, of which example, where.
"""

from pathlib import Path

from ..visualize.curves import write_curves
from ..visualize.heatmap import save_figure
from ..visualize.inspect import held_out_input, inspect_run
from ..visualize.pictures import attention_figures
from .trainer import Trainer


def draw_run_pictures(trainer: Trainer, run_dir: str | Path) -> list[Path]:
    """Write the pictures of a finished training run; returns the paths written.

    ``curves.png`` (from ``metrics.jsonl``, when there is one), then
    ``attention.png`` and, for encoder–decoder models, ``alignment.png``, both
    of one held-out example (the same one for the same seed). Files from an
    earlier (resumed) run are replaced.

    Args:
        trainer: The run's trainer (its ``model``, ``task`` and ``config.seed``).
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
