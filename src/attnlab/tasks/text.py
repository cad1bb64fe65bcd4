"""Character-level language modelling on a text corpus.

Default corpus: the running Python's standard library ``.py`` files (so it differs
between Python versions), from ``sysconfig.get_paths()["stdlib"]``, in sorted
relative-path order, skipping ``test``/``tests``/``idle_test``/``site-packages``
directories and ``test_*.py`` files and any file that is not valid UTF-8, until
``CORPUS_CHARS`` characters are read. Split by file: every 10th file read (the 10th,
20th, ...) is "val". With ``data=`` (any UTF-8 file) the split is by position: the
text from the first line break at or after 90% of it is "val".

Vocabulary: the characters occurring at least ``MIN_COUNT`` times in the train part,
plus ``REPLACEMENT`` (U+FFFD, id 3), which stands for every rarer or unseen
character (in the corpus and in ``encode_input``). U+FFFD is used rather than "?"
because "?" is ordinary text. Corpora are loaded once per process (``lru_cache``;
a changed ``data`` file is not re-read).
"""

import functools
import os
import sysconfig
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from attnlab._validate import check_int
from attnlab.tasks.base import (
    SPECIAL_TOKENS,
    Batch,
    Task,
    Vocab,
    check_generator,
    check_pred_type,
    check_seq_length,
    check_split,
    seeded_generator,
)

REPLACEMENT = "\ufffd"
MIN_COUNT = 5
CORPUS_CHARS = 2_000_000
VAL_EVERY = 10
SKIP_DIRS = frozenset({"test", "tests", "idle_test", "site-packages", "dist-packages"})


def stdlib_files() -> list[tuple[str, str]]:
    """The default corpus: ``(relative path, text)`` of each file read, in order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    paths = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in SKIP_DIRS and d != "__pycache__"]
        keep = [f for f in files if f.endswith(".py") and not f.startswith("test_")]
        paths += [Path(directory, f) for f in keep]
    paths.sort(key=lambda p: p.relative_to(root).as_posix())
    read: list[tuple[str, str]] = []
    total = 0
    for path in paths:
        if total >= CORPUS_CHARS:
            break
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        read.append((path.relative_to(root).as_posix(), text))
        total += len(text)
    return read


def _stdlib_texts() -> tuple[list[str], list[str]]:
    texts = [text for _, text in stdlib_files()]
    val = [t for i, t in enumerate(texts) if i % VAL_EVERY == VAL_EVERY - 1]
    return [t for i, t in enumerate(texts) if i % VAL_EVERY != VAL_EVERY - 1], val


def _file_texts(path: str) -> tuple[list[str], list[str]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"data must be a readable UTF-8 file, got {path!r}: {error}") from None
    cut = text.find("\n", int(len(text) * 0.9))
    cut = int(len(text) * 0.9) if cut < 0 else cut + 1
    return [text[:cut]], [text[cut:]]


@functools.lru_cache(maxsize=4)
def load_corpus(data: str | None) -> tuple[Vocab, Tensor, Tensor]:
    """Load and encode a corpus once per process: ``(vocab, train_ids, val_ids)``.

    Args:
        data: A resolved file path, or None for the standard-library corpus.

    Returns:
        The vocabulary and the 1-D long id tensors of the train and val text.
    """
    train, val = _stdlib_texts() if data is None else _file_texts(data)
    codes = [np.frombuffer("".join(t).encode("utf-32-le"), dtype=np.uint32) for t in (train, val)]
    counts = np.bincount(codes[0], minlength=0x110000)
    counts[ord(REPLACEMENT)] = 0
    kept = np.flatnonzero(counts >= MIN_COUNT)
    lookup = np.full(0x110000, len(SPECIAL_TOKENS), dtype=np.int64)  # REPLACEMENT's id
    lookup[kept] = np.arange(len(kept)) + len(SPECIAL_TOKENS) + 1
    vocab = Vocab(REPLACEMENT + "".join(map(chr, kept)))
    train_ids, val_ids = (torch.from_numpy(lookup[c]) for c in codes)
    return vocab, train_ids, val_ids


class TextTask(Task):
    """Character-level language model: predict each next character of a text.

    ``batch`` returns ``Batch(src=None, tgt=(B, seq_length + 1))``: random chunks of the
    split's text; the model reads ``tgt[:, :-1]`` and predicts ``tgt[:, 1:]``. The primary
    metric is bits per character (lower is better), ``bits_per_char(mean loss in nats)``;
    ``score`` gives next-character accuracy. ``examples`` gives ``(prompt,
    continuation)``: seq_length characters each, consecutive in the text.

    Args:
        seq_length: Context length, >= 1. ``max_tgt_len = seq_length + 1``, ``max_src_len = 0``.
        data: A UTF-8 text file to use instead of the standard-library corpus.

    Raises:
        TypeError: If ``seq_length`` is not an int, or ``data`` not a str or Path.
        ValueError: If ``seq_length`` < 1, ``data`` cannot be read as UTF-8, or a split
            is shorter than ``2 * seq_length`` characters.

    Example:
        >>> import torch
        >>> task = TextTask(seq_length=16)
        >>> batch = task.batch("val", 2, torch.Generator().manual_seed(0))
        >>> batch.src is None, tuple(batch.tgt.shape)
        (True, (2, 17))
        >>> task.score(batch.tgt[:, 1:], batch)
        {'next_char_acc': 1.0}
    """

    name = "text"
    kind = "lm"
    primary_metric = "bits_per_char"
    higher_is_better = False

    def __init__(self, seq_length: int = 10, *, data: str | Path | None = None) -> None:
        self.seq_length = check_seq_length(seq_length)
        if data is not None and not isinstance(data, str | Path):
            raise TypeError(f"data must be a str or Path, got {type(data).__name__}")
        key = None if data is None else str(Path(data).expanduser().resolve())
        self.vocab, train_ids, val_ids = load_corpus(key)
        self._ids = {"train": train_ids, "val": val_ids}
        for split, ids in self._ids.items():
            if len(ids) < 2 * seq_length:
                if data is not None and len(ids) < 4:
                    raise ValueError(f"data file {str(data)!r} holds too little text to train "
                                     f"on ({len(ids)} characters in its {split} part)")
                raise ValueError(
                    f"seq_length must be at most half the {split} text's {len(ids)} "
                    f"characters, got {seq_length}"
                )
        self._known = frozenset(self.vocab.tokens[len(SPECIAL_TOKENS) :])
        self.max_src_len = 0
        self.max_tgt_len = seq_length + 1
        source = "the Python standard library" if data is None else repr(str(data))
        self.description = f"text: next character of {source}, {len(self.vocab)} tokens"

    def _chunks(self, split: str, n: int, length: int, generator: torch.Generator) -> Tensor:
        ids = self._ids[split]
        starts = torch.randint(0, len(ids) - length + 1, (n,), generator=generator)
        return ids[starts[:, None] + torch.arange(length)]  # (n, length)

    def batch(self, split: str, batch_size: int, generator: torch.Generator) -> Batch:
        """See ``Task.batch``: ``tgt`` is (B, seq_length + 1); ``src`` is None."""
        check_split(split)
        check_int("batch_size", batch_size, minimum=1)
        check_generator(generator)
        tgt = self._chunks(split, batch_size, self.seq_length + 1, generator)
        lengths = torch.full((batch_size,), self.seq_length + 1, dtype=torch.long)
        return Batch(None, tgt, None, lengths)

    def examples(self, split: str, n: int, seed: int) -> list[tuple[str, str]]:
        """``n`` pairs of consecutive ``seq_length``-character prompt and continuation."""
        check_split(split)
        check_int("n", n, minimum=0)
        chunks = self._chunks(split, n, 2 * self.seq_length, seeded_generator(seed))
        half = self.seq_length
        return [(self.vocab.decode(c[:half]), self.vocab.decode(c[half:])) for c in chunks]

    def encode_input(self, text: str) -> Tensor:
        """Encode a prompt as (L,) long ids; unknown characters become ``REPLACEMENT``.

        Raises:
            TypeError: If ``text`` is not a string.
            ValueError: If ``text`` is empty.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError("text must not be empty")
        chars = [c if c in self._known else REPLACEMENT for c in text]
        return torch.tensor(self.vocab.encode(chars), dtype=torch.long)

    def score(self, pred_ids: Tensor, batch: Batch) -> dict[str, float]:
        """Return ``{"next_char_acc": ...}`` for (B, seq_length) predictions of ``tgt[:, 1:]``.

        Raises:
            TypeError: If ``pred_ids`` is not an integer tensor.
            ValueError: If ``pred_ids`` is not shaped like ``batch.tgt[:, 1:]``.
        """
        ref = batch.tgt[:, 1:]
        pred_ids = check_pred_type(pred_ids)
        if pred_ids.shape != ref.shape:
            raise ValueError(
                f"pred_ids must have shape {tuple(ref.shape)}, got {tuple(pred_ids.shape)}"
            )
        return {"next_char_acc": (pred_ids.detach().cpu() == ref).float().mean().item()}
