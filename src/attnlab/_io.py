"""Files written so that nothing a user saved is ever half-written, and JSON read as data.

:func:`atomic_write` is the one way attnlab writes a file: the content goes to a
temporary file in the same directory, is flushed to disk (``fsync``), and is then
renamed over the target in one step — a crash, a full disk or a SIGKILL leaves
either the old file or the new one, never a mix. The new file gets the usual
permissions (``0o666`` less the umask), like a file ``open(..., "w")`` creates.

:func:`read_json` reads a JSON file written by attnlab or edited by a user as
plain data: no ``NaN``/``Infinity``, a bounded nesting depth, UTF-8 only; each
problem is a ``ValueError`` naming the file.
"""

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

#: Prefix and suffix of the temporary files :func:`atomic_write` makes (``.NAME.*.tmp``).
TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None] | bytes | str, *,
                 no_clobber: bool = False, make_parents: bool = True) -> Path:
    """Write a file atomically; returns its path.

    Args:
        path: The file to write.
        write: The content (``bytes`` or ``str``, UTF-8), or a function that writes it
            to the binary handle it is given (e.g. ``torch.save``, ``Figure.savefig``).
        no_clobber: Refuse to replace an existing file (``FileExistsError``). The check
            and the rename are one step (a hard link), so two writers cannot both win;
            on a file system without hard links they are two steps.
        make_parents: Create the directory of ``path`` if missing; with False a missing
            directory is a ``FileNotFoundError`` (a typo in a path the user gave).

    Raises:
        FileExistsError: With ``no_clobber``, if ``path`` exists.
        FileNotFoundError: Without ``make_parents``, if the directory does not exist.
        OSError: If the disk is full or the directory is not writable; the previous
            file, if any, is left as it was and the temporary file is removed. So is
            any exception ``write`` raises.
    """
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise FileNotFoundError(f"directory {path.parent} does not exist (writing {path})")
    if no_clobber and path.exists():
        raise FileExistsError(f"{path} already exists")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(write, str):
                handle.write(write.encode())
            elif isinstance(write, bytes):
                handle.write(write)
            else:
                write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        _rename(tmp, path, no_clobber)
    except FileExistsError:
        raise FileExistsError(f"{path} already exists") from None
    except OSError as exc:  # name the file the user will look for, not the temporary one
        raise type(exc)(exc.errno, exc.strerror or str(exc), str(path)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _rename(tmp: str, path: Path, no_clobber: bool) -> None:
    """Put ``tmp`` at ``path`` in one step; with ``no_clobber`` never over a file."""
    if not no_clobber:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if path appeared meanwhile
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename
        if path.exists():
            raise FileExistsError(path) from None
        os.replace(tmp, path)


def stale_temporaries(directory: str | Path, name: str) -> list[Path]:
    """Temporary files :func:`atomic_write` left for ``name`` in ``directory`` (after a kill)."""
    return sorted(Path(directory).glob(f".{name}.*{TMP_SUFFIX}"))


def _no_constant(text: str) -> None:
    raise ValueError(f"{text} is not a number JSON allows")


def parse_json(text: str | bytes, what: str) -> Any:
    """Parse JSON ``text`` as data (see the module docstring); ``what`` names it in errors.

    Raises:
        ValueError: For text that is not UTF-8, not JSON, uses ``NaN``/``Infinity``, or
            nests deeper than Python can follow.
    """
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ValueError(f"{what} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    except RecursionError:
        raise ValueError(f"{what} nests too deeply to be an attnlab file") from None


def read_json(path: str | Path) -> Any:
    """Read and parse the JSON file ``path`` (see :func:`parse_json`).

    Raises:
        FileNotFoundError: If there is no such file.
        ValueError: As :func:`parse_json`.
    """
    return parse_json(Path(path).read_bytes(), str(path))
