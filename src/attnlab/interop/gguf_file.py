"""Reading a GGUF file: its metadata and its tensors, checked before any work.

GGUF (ggml's single-file format, used by llama.cpp) is a header, a table of
``key -> value`` metadata (the architecture's hyper-parameters under
``ARCH.*`` keys, the tokenizer under ``tokenizer.*``) and a table of tensors
stored in ggml's block formats (:mod:`.gguf_quants`). The ``gguf`` package
(ggml's own reader) parses it; this module turns what it finds into plain
Python values and clear errors.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .gguf_quants import BLOCKS

MAGIC = b"GGUF"


@dataclass(frozen=True)
class StoredTensor:
    """One tensor as stored: its name, ggml type, logical shape and raw data.

    Attributes:
        name: The GGUF name (``blk.0.attn_q.weight``).
        kind: The ggml type name (``Q4_1``).
        shape: Row-major logical shape (``(out_features, in_features)`` for a weight).
        data: The reader's view of the bytes (or values for plain float types).
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    data: np.ndarray


@dataclass(frozen=True)
class GGUFFile:
    """A parsed GGUF file.

    Attributes:
        path: Where it was read from.
        metadata: Every key with its value (strings, numbers, lists).
        tensors: The stored tensors by name, in file order.
    """

    path: Path
    metadata: dict[str, Any]
    tensors: dict[str, StoredTensor]

    def require(self, key: str) -> Any:
        """``metadata[key]``, or a ValueError naming the missing key and the file."""
        if key not in self.metadata:
            raise ValueError(f"{self.path.name}: the GGUF metadata has no {key!r}, which "
                             "attnlab needs to build the model")
        return self.metadata[key]

    def check_types(self, supported: Iterable[str] = BLOCKS) -> None:
        """Raise, naming the tensors, if any is stored in a type attnlab cannot decode."""
        allowed = set(supported)
        bad = [f"{t.name} ({t.kind})" for t in self.tensors.values() if t.kind not in allowed]
        if bad:
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            raise ValueError(f"{self.path.name}: tensor type not supported: "
                             f"{', '.join(bad[:3])}{more}; supported: {', '.join(sorted(allowed))}")


def read_gguf(path: str | Path) -> GGUFFile:
    """Parse a GGUF file's header, metadata and tensor table (the data stays mapped).

    Args:
        path: The ``.gguf`` file.

    Returns:
        A :class:`GGUFFile`.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        IsADirectoryError: If it is a directory.
        ValueError: If it is not a GGUF file (wrong magic), is truncated (a
            tensor reaches past the end) or cannot be parsed.
    """
    import gguf  # ggml's reader; imported here so `import attnlab` stays light

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(path))
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != MAGIC:
        raise ValueError(f"{path} is not a GGUF file: it starts with {magic!r}, "
                         f"not the magic {MAGIC!r}")
    size = path.stat().st_size
    try:
        reader = _reader(gguf)(path)
    except (ValueError, IndexError, KeyError, OverflowError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is truncated or corrupt: the GGUF reader failed "
                         f"({type(exc).__name__}: {exc})") from None
    metadata = {name: _value(field) for name, field in reader.fields.items()}
    tensors = {}
    for t in reader.tensors:
        end = int(t.data_offset) + int(t.n_bytes)
        if end > size:
            raise ValueError(f"{path} is truncated: tensor {t.name} ends at byte {end}, "
                             f"the file has {size}")
        shape = tuple(int(n) for n in reversed(t.shape.tolist()))
        tensors[t.name] = StoredTensor(t.name, t.tensor_type.name, shape, t.data)
    return GGUFFile(path, metadata, tensors)


def _reader(gguf: Any) -> type:
    """``gguf.GGUFReader`` over a plain array view of the mapped file.

    The reader slices its ``np.memmap`` once per metadata element (SmolLM2:
    ~1 million slices for 49,152 tokens and 48,900 merges), and every slice
    of a ``memmap`` runs ``memmap.__array_finalize__`` in Python: 1.7 s of a
    2 s parse. The same slices of a plain ``ndarray`` view of the same mapping
    (``np.asarray``; the file stays mapped, read-only) cost a third of that.
    """
    class Reader(gguf.GGUFReader):
        @property
        def data(self) -> np.ndarray:
            return self._plain

        @data.setter
        def data(self, mapped: np.ndarray) -> None:
            self._plain = np.asarray(mapped)

    return Reader


def _value(field: Any) -> Any:
    """A reader field as a Python value (``str``, ``int``, ``float``, ``bool`` or a list)."""
    try:
        value = field.contents()
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
