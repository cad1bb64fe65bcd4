"""Run directories: one run per directory, never mixed, never overwritten without asking.

``attnlab train`` without ``--out`` writes to ``runs/<task>-<model>-<seed>``; if
that directory already holds a run, the new run gets the first free
``runs/<task>-<model>-<seed>-2``, ``-3``, … instead, and says so. An ``--out`` that
holds a run is refused (continue it with ``--resume``, or replace it with
``--force``). A directory "holds a run" when it has any of :data:`RUN_MARKERS`.

While a process trains in a directory it holds an exclusive lock on its
``.attnlab.lock`` file (``fcntl.flock``; released by the system even after a
SIGKILL), so a second training, or a resume, of the same directory is refused
instead of interleaving with the first.
"""

import os
from pathlib import Path
from typing import IO

from .._io import stale_temporaries

#: Files whose presence means a directory holds a run.
RUN_MARKERS = ("config.json", "checkpoint.safetensors", "model.safetensors", "metrics.jsonl")
#: Every file a run writes (``--force`` removes exactly these, nothing else).
RUN_FILES = (*RUN_MARKERS, "sample.txt", "curves.png", "attention.png", "alignment.png")
LOCK_NAME = ".attnlab.lock"


def holds_run(path: Path) -> bool:
    """True if ``path`` is a directory with any of :data:`RUN_MARKERS`."""
    return path.is_dir() and any((path / name).exists() for name in RUN_MARKERS)


class RunLock:
    """An exclusive lock on a run directory, held until :meth:`release`.

    Raises:
        ValueError: If another process holds it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = open(path / LOCK_NAME, "a")  # noqa: SIM115
        try:
            import fcntl
        except ImportError:  # no flock on this system: no lock
            return
        try:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise ValueError(f"{path} is in use: another attnlab process is training in it "
                             "(wait for it to finish, or choose another --out)") from None

    def release(self) -> None:
        """Give the lock back (closing the file releases it)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def check_out(out: str | None, *, force: bool) -> None:
    """Refuse an ``--out`` that cannot take a new run, before any work.

    Raises:
        ValueError: If ``out`` is a file, a non-empty directory that is not a run, or
            (without ``force``) a directory holding a run.
    """
    if out is None:
        return
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {out} is a file, not a directory; choose a directory")
    if holds_run(path):
        if not force:
            raise ValueError(f"--out {out} already holds a run; continue it with --resume {out}, "
                             "or replace it with --force")
    elif path.is_dir() and any(p.name != LOCK_NAME for p in path.iterdir()):
        raise ValueError(f"--out {out} is a directory with other files in it, not a run; "
                         "choose a new or empty directory")


def claim(out: str | None, default: str, *, force: bool) -> tuple[Path, RunLock]:
    """Create (or take) the directory of a new run and lock it.

    Args:
        out: ``--out``, or None for ``default`` and its numbered siblings.
        default: ``runs/<task>-<model>-<seed>``.
        force: Replace the run in ``out`` (or in ``default``, without ``out``).

    Returns:
        The directory and its lock.

    Raises:
        ValueError: As :func:`check_out`, or if the directory is locked.
    """
    if out is not None or force:
        path = Path(out if out is not None else default)
        check_out(str(path), force=force)
        path.mkdir(parents=True, exist_ok=True)
        lock = RunLock(path)
        if force:
            _clear(path)
        return path, lock
    base = Path(default)
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 100_000):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            if holds_run(path) or not path.is_dir() or any(
                    p.name != LOCK_NAME for p in path.iterdir()):
                continue
        try:
            lock = RunLock(path)
        except ValueError:
            continue
        if holds_run(path):  # another process got there first
            lock.release()
            continue
        return path, lock
    raise ValueError(f"no free run directory next to {base}; choose one with --out")


def lock_for_resume(path: Path) -> RunLock:
    """Lock a run directory that is being resumed; removes temporaries a kill left behind.

    Raises:
        ValueError: If another process is training in it.
    """
    lock = RunLock(path)
    for name in ("checkpoint.safetensors", "model.safetensors", "config.json", "metrics.jsonl"):
        for tmp in stale_temporaries(path, name):
            tmp.unlink(missing_ok=True)
    return lock


def _clear(path: Path) -> None:
    """Remove a replaced run's files (``--force``), nothing else."""
    for name in RUN_FILES:
        (path / name).unlink(missing_ok=True)
        for tmp in stale_temporaries(path, name):
            tmp.unlink(missing_ok=True)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True if ``a`` and ``b`` name the same existing file or directory."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
