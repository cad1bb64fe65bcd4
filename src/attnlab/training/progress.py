"""Progress: a live bar in a terminal, plain lines otherwise, a summary table at the end."""

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table


class Reporter:
    """Shows training progress; silent on non-main processes."""

    def __init__(self, total_steps: int, *, enabled: bool = True,
                 console: Console | None = None, every: int = 50) -> None:
        self.console = console or Console()
        self.enabled = enabled
        self.total = total_steps
        self.every = every
        self.live = enabled and self.console.is_terminal
        self._progress: Progress | None = None
        self._task = None
        self._last_line = 0.0

    def start(self, done: int) -> None:
        """Begin at step ``done`` (non-zero when resuming)."""
        if not self.live:
            return
        self._progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=self.console,
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=self.total, completed=done, info="")

    def step(self, step: int, info: dict[str, float]) -> None:
        """Report one finished optimiser step."""
        if not self.enabled:
            return
        text = "  ".join(f"{k} {_fmt(v)}" for k, v in info.items())
        if self._progress is not None:
            self._progress.update(self._task, completed=step, info=text)
        elif step % self.every == 0 or step == self.total:
            self.console.print(f"step {step}/{self.total}  {text}", highlight=False)

    def line(self, text: str) -> None:
        """Print a line (above the bar in a terminal)."""
        if self.enabled:
            self.console.print(text, highlight=False)

    def stop(self) -> None:
        """Remove the live bar."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def summary(self, rows: dict[str, Any]) -> None:
        """Print the final summary table."""
        if not self.enabled:
            return
        table = Table(title="attnlab train: summary", show_header=False)
        for key, value in rows.items():
            table.add_row(key, _fmt(value) if isinstance(value, float) else str(value))
        self.console.print(table)


def _fmt(value: float) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    return str(value)


class Clock:
    """Wall time and throughput."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since start."""
        return time.perf_counter() - self.start
