"""A cache of what :func:`~attnlab.interop.load_gguf` makes of a GGUF file.

Parsing a GGUF (its tokenizer alone is ~100,000 metadata strings) and
dequantising its blocks is repeated on every start. The cache keeps the
result — every tensor dequantised to float32 with llama.cpp's q/k row
permutation undone, and the file's metadata — in one safetensors file, so
that a second start maps it instead.

**Where.** ``$ATTNLAB_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/attnlab``,
else ``~/.cache/attnlab``; entries go to its ``gguf/`` folder, one file per
source file, named ``STEM-KEY.safetensors``. Deleting the folder is always
safe. ``ATTNLAB_NO_CACHE=1`` (or ``load_gguf(..., cache=False)``) turns the
cache off.

**Key.** The SHA-256 of the whole source file (0.07 s for SmolLM2's 98 MB on
one core, ~1.4 GB/s). A key made of size and modification time would be
cheaper but not sound: a file rewritten in place within the clock's
resolution, or copied with its times kept, would hit a stale entry. The
content hash cannot.

**Trust.** An entry is checked before use: the safetensors header must parse,
the entry's format (:data:`FORMAT`) and full key must match, and every
tensor must be float32 with the name and shape the recorded tensor table
says — the model's own shape checks follow when the weights are copied in.
Anything wrong (a truncated, corrupt or foreign file) is a one-line
:class:`GGUFCacheWarning` and the entry is rebuilt from the GGUF. Entries are
written atomically (:func:`attnlab._io.atomic_write`); a cache folder that
cannot be written is a warning, never an error. The weights' bits are not
hashed on load (that would cost as much as the conversion it saves); a bit
flipped inside the data of an otherwise well-formed entry goes unseen.
"""

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .._io import atomic_write, parse_json
from .gguf_file import GGUFFile, StoredTensor

#: Bump when what an entry holds or how the weights are converted changes.
FORMAT = "attnlab-gguf-cache-1"
ENV_DIR, ENV_OFF = "ATTNLAB_CACHE_DIR", "ATTNLAB_NO_CACHE"


class GGUFCacheWarning(UserWarning):
    """The GGUF weight cache was skipped: an entry was unusable or could not be written."""


def cache_dir() -> Path:
    """Cache folder: ``$ATTNLAB_CACHE_DIR``, ``$XDG_CACHE_HOME/attnlab`` or ``~/.cache/attnlab``."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "attnlab"


def cache_enabled() -> bool:
    """False when ``$ATTNLAB_NO_CACHE`` is set to anything but ``""`` or ``"0"``."""
    return os.environ.get(ENV_OFF, "") in ("", "0")


def content_key(path: Path) -> str:
    """The SHA-256 of the file's bytes, in hex."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def entry_path(path: Path, key: str) -> Path:
    """Where the entry of source ``path`` with content ``key`` lies."""
    return cache_dir() / "gguf" / f"{path.stem}-{key[:16]}.safetensors"


def load_entry(path: Path, key: str) -> tuple[GGUFFile, dict[str, Tensor]] | None:
    """The cached metadata and float32 weights of ``path``, or None on a miss.

    Returns:
        ``(file, weights)``: a :class:`GGUFFile` with the source's metadata and
        tensor table (each tensor's ``data`` empty) and ``name -> tensor``.
        None if there is no entry, or (with a warning) if it is unusable.
    """
    from safetensors import SafetensorError, safe_open

    entry = entry_path(path, key)
    if not entry.is_file():
        return None
    try:
        with safe_open(entry, framework="pt") as handle:
            header = handle.metadata() or {}
            if header.get("format") != FORMAT or header.get("key") != key:
                raise ValueError(f"it is not the entry of this file (format "
                                 f"{header.get('format')!r}, key {header.get('key', '')[:16]!r})")
            table = parse_json(header.get("tensors", ""), "its tensor table")
            metadata = parse_json(header.get("metadata", ""), "its metadata")
            if not isinstance(table, dict) or not isinstance(metadata, dict):
                raise ValueError("its tensor table or metadata is not a JSON object")
            if set(handle.keys()) != set(table):
                raise ValueError("its tensors are not the source's")
            weights, tensors = {}, {}
            for name, (kind, shape) in table.items():
                weight = handle.get_tensor(name)
                if weight.dtype != torch.float32 or list(weight.shape) != shape:
                    raise ValueError(f"{name} is {weight.dtype} {list(weight.shape)}, "
                                     f"expected float32 {shape}")
                weights[name] = weight
                tensors[name] = StoredTensor(name, kind, tuple(shape), np.empty(0, np.uint8))
    except (OSError, ValueError, TypeError, SafetensorError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        _warn(f"GGUF cache entry {entry} ignored ({reason}); rebuilding it from {path.name}")
        return None
    return GGUFFile(path, metadata, tensors), weights


def save_entry(file: GGUFFile, key: str, weights: dict[str, Tensor]) -> Path | None:
    """Write the entry of ``file`` (atomically); None, with a warning, if it cannot be written.

    Args:
        file: The parsed source (its metadata and tensor table are recorded).
        key: Its :func:`content_key`.
        weights: ``name -> float32 tensor`` for every tensor of ``file``.
    """
    from safetensors.torch import save

    entry = entry_path(file.path, key)
    try:
        header = {
            "format": FORMAT, "key": key, "source": file.path.name,
            "tensors": json.dumps({n: [t.kind, list(t.shape)] for n, t in file.tensors.items()}),
            "metadata": json.dumps(file.metadata, allow_nan=False, ensure_ascii=False),
        }
        data = save({n: w.contiguous() for n, w in weights.items()}, metadata=header)
        return atomic_write(entry, data)
    except (OSError, ValueError, TypeError) as exc:
        _warn(f"GGUF cache entry not written to {entry.parent} ({type(exc).__name__}: "
              f"{str(exc).splitlines()[0] if str(exc) else ''}); loading without it")
        return None


def _warn(message: str) -> None:
    warnings.warn(message, GGUFCacheWarning, stacklevel=4)

