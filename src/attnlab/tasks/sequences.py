"""Sequence-to-sequence tasks: the shared machinery, and copy / reverse / sort.

Held-out split (all seq2seq tasks): an example is "val" iff
``split_hash(source) < VAL_FRACTION`` (10%), a pure function of the source string, so
an input is never in both splits. When a task has at most ``SMALL_SPACE`` distinct
sources (e.g. copy with seq_length 1: 16 sources) a threshold could leave a split
empty, so there the val sources are instead the 10% (at least one, never all) with the
smallest hashes; still a pure function of the source for a given task configuration.
Sampling draws one seed per example from the generator, then samples with
``random.Random(seed)`` and rejects examples of the other split until one fits.
"""

import itertools
import random
from abc import abstractmethod
from collections.abc import Iterable

import torch
from torch import Tensor

from attnlab._validate import check_int
from attnlab.tasks.base import (
    BOS,
    EOS,
    PAD,
    VAL_FRACTION,
    Batch,
    Task,
    Vocab,
    check_generator,
    check_pred_type,
    check_seq_length,
    check_split,
    pad_rows,
    seeded_generator,
    split_hash,
)

SMALL_SPACE = 4096
MAX_TRIES = 100_000
ALPHABET = "0123456789abcdef"


class Seq2SeqTask(Task):
    """Base for seq2seq tasks: subclasses implement ``_sample`` (and ``_all_sources``).

    ``score`` compares generated target tokens (no BOS; everything after the first EOS
    ignored) with ``tgt[:, 1:]`` (target + EOS). ``token_acc`` is the fraction of
    reference positions, EOS included, that match; a prediction shorter than the
    reference is wrong at the missing positions. ``seq_acc`` is the fraction of rows
    whose target and EOS all match. ``primary_metric`` is "seq_acc" (higher is better).
    """

    kind = "seq2seq"
    primary_metric = "seq_acc"
    higher_is_better = True

    def __init__(self, *, vocab: Vocab, max_src_len: int, max_tgt_len: int, description: str):
        self.vocab = vocab
        self.max_src_len = max_src_len
        self.max_tgt_len = max_tgt_len
        self.description = description
        sources = self._all_sources()
        self._val_sources: frozenset[str] | None = None
        if sources is not None:
            ranked = sorted(set(sources), key=split_hash)
            n_val = min(len(ranked) - 1, max(1, round(VAL_FRACTION * len(ranked))))
            self._val_sources = frozenset(ranked[:n_val])

    @abstractmethod
    def _sample(self, rng: random.Random) -> tuple[str, str]:
        """Draw one ``(source, target)`` pair, ignoring splits."""

    def _all_sources(self) -> Iterable[str] | None:
        """Every possible source when there are at most ``SMALL_SPACE``, else None."""
        return None

    def split_of(self, source: str) -> str:
        """Return "train" or "val" for ``source``: a pure function of the source string."""
        if self._val_sources is not None:
            return "val" if source in self._val_sources else "train"
        return "val" if split_hash(source) < VAL_FRACTION else "train"

    def _draw(self, split: str, n: int, generator: torch.Generator) -> list[tuple[str, str]]:
        seeds = torch.randint(0, 2**62, (n,), generator=generator).tolist()
        pairs = []
        for seed in seeds:
            rng = random.Random(seed)
            for _ in range(MAX_TRIES):
                source, target = self._sample(rng)
                if self.split_of(source) == split:
                    break
            else:  # pragma: no cover - every split holds >= 1 likely source
                raise RuntimeError(f"no {split} example found in {MAX_TRIES} tries")
            pairs.append((source, target))
        return pairs

    def batch(self, split: str, batch_size: int, generator: torch.Generator) -> Batch:
        """See ``Task.batch``; rows are padded to the longest in the batch."""
        check_split(split)
        check_int("batch_size", batch_size, minimum=1)
        check_generator(generator)
        pairs = self._draw(split, batch_size, generator)
        src, src_lengths = pad_rows([self.vocab.encode(s) for s, _ in pairs])
        tgt, tgt_lengths = pad_rows([[BOS, *self.vocab.encode(t), EOS] for _, t in pairs])
        return Batch(src, tgt, src_lengths, tgt_lengths)

    def examples(self, split: str, n: int, seed: int) -> list[tuple[str, str]]:
        """The pairs ``batch(split, n, torch.Generator().manual_seed(seed))`` holds."""
        check_split(split)
        check_int("n", n, minimum=0)
        return self._draw(split, n, seeded_generator(seed))

    def encode_input(self, text: str) -> Tensor:
        """Encode a source string as (S,) long ids, like one unpadded ``src`` row.

        Raises:
            TypeError: If ``text`` is not a string.
            ValueError: If ``text`` is empty, longer than ``max_src_len``, or holds
                characters outside the vocabulary.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if not 1 <= len(text) <= self.max_src_len:
            raise ValueError(f"text must have 1 to {self.max_src_len} characters, got {len(text)}")
        return torch.tensor(self.vocab.encode(text), dtype=torch.long)

    def score(self, pred_ids: Tensor, batch: Batch) -> dict[str, float]:
        """Return ``{"token_acc": ..., "seq_acc": ...}`` (see the class docstring).

        Args:
            pred_ids: (B, L') integer ids generated after BOS; any L' >= 0.
            batch: The batch the predictions are for.

        Raises:
            TypeError: If ``pred_ids`` is not an integer tensor.
            ValueError: If ``pred_ids`` is not 2-D with ``batch``'s batch size.
        """
        pred = _check_pred(pred_ids, batch.tgt.shape[0])
        ref = batch.tgt[:, 1:]  # (B, L-1): target + EOS + PAD
        n_ref = batch.tgt_lengths - 1  # (B,) target tokens + EOS
        is_eos = pred == EOS
        after_eos = (is_eos.long().cumsum(1) - is_eos.long()) > 0
        pred = pred.masked_fill(after_eos, PAD)[:, : ref.shape[1]]
        pred = torch.nn.functional.pad(pred, (0, ref.shape[1] - pred.shape[1]), value=PAD)
        valid = torch.arange(ref.shape[1]) < n_ref[:, None]  # (B, L-1)
        correct = (pred == ref) & valid
        return {
            "token_acc": correct.sum().item() / valid.sum().item(),
            "seq_acc": (correct.sum(1) == n_ref).float().mean().item(),
        }


def _check_pred(pred_ids: object, batch_size: int) -> Tensor:
    pred_ids = check_pred_type(pred_ids)
    if pred_ids.dim() != 2 or pred_ids.shape[0] != batch_size:
        raise ValueError(f"pred_ids must have shape ({batch_size}, L), got {tuple(pred_ids.shape)}")
    return pred_ids.detach().cpu().long()


class _SymbolTask(Seq2SeqTask):
    """Source: ``L`` symbols of ``ALPHABET``, L uniform in [max(1, seq_length // 2), seq_length]."""

    def __init__(self, seq_length: int = 10) -> None:
        self.seq_length = check_seq_length(seq_length)
        self.min_length = max(1, seq_length // 2)
        super().__init__(
            vocab=Vocab(ALPHABET),
            max_src_len=seq_length,
            max_tgt_len=seq_length + 2,
            description=f"{self.name} {self.min_length}-{seq_length} symbols of {ALPHABET!r}",
        )

    @staticmethod
    @abstractmethod
    def transform(source: str) -> str:
        """The target for ``source``."""

    def _sample(self, rng: random.Random) -> tuple[str, str]:
        source = "".join(rng.choices(ALPHABET, k=rng.randint(self.min_length, self.seq_length)))
        return source, self.transform(source)

    def _all_sources(self) -> Iterable[str] | None:
        lengths = range(self.min_length, self.seq_length + 1)
        size = 0
        for length in lengths:
            size += len(ALPHABET) ** length
            if size > SMALL_SPACE:
                return None
        return ("".join(p) for n in lengths for p in itertools.product(ALPHABET, repeat=n))


class CopyTask(_SymbolTask):
    """Copy a random string of hex digits (variable length; see ``_SymbolTask``).

    Args:
        seq_length: Longest source; lengths are uniform in [max(1, seq_length // 2),
            seq_length]. ``max_src_len = seq_length``, ``max_tgt_len = seq_length + 2``.

    Raises:
        TypeError: If ``seq_length`` is not an int.
        ValueError: If ``seq_length`` < 1.

    Example:
        >>> import torch
        >>> task = CopyTask(seq_length=6)
        >>> batch = task.batch("train", 4, torch.Generator().manual_seed(0))
        >>> batch.src.shape[0], batch.tgt.shape[0], int(batch.tgt[0, 0])
        (4, 4, 1)
        >>> source, target = task.examples("val", 1, seed=0)[0]
        >>> source == target and task.split_of(source)
        'val'
        >>> task.score(batch.tgt[:, 1:], batch)
        {'token_acc': 1.0, 'seq_acc': 1.0}
    """

    name = "copy"

    @staticmethod
    def transform(source: str) -> str:
        """Return ``source`` unchanged."""
        return source


class ReverseTask(_SymbolTask):
    """Reverse a random string of hex digits (arguments as ``CopyTask``).

    Example:
        >>> task = ReverseTask(seq_length=5)
        >>> [target == source[::-1] for source, target in task.examples("train", 3, seed=1)]
        [True, True, True]
    """

    name = "reverse"

    @staticmethod
    def transform(source: str) -> str:
        """Return ``source`` reversed."""
        return source[::-1]


class SortTask(_SymbolTask):
    """Sort a random string of hex digits, ascending, duplicates kept (arguments as ``CopyTask``).

    Example:
        >>> SortTask.transform("b0a0")
        '00ab'
    """

    name = "sort"

    @staticmethod
    def transform(source: str) -> str:
        """Return the characters of ``source`` in ascending order."""
        return "".join(sorted(source))
