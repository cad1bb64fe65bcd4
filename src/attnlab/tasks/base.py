"""The task interface the trainer consumes: vocabulary, batches, tasks and splits.

Every task is a deterministic generator of character-level examples.

* Token ids: ``PAD = 0``, ``BOS = 1``, ``EOS = 2``, then the task's own symbols
  (one symbol = one character).
* ``kind == "seq2seq"``: ``Batch.src`` (B, S) holds the source characters, right-padded
  with PAD, no BOS/EOS. ``Batch.tgt`` (B, L) holds ``BOS + target + EOS``, right-padded
  with PAD. Teacher forcing: the decoder reads ``tgt[:, :-1]`` and learns ``tgt[:, 1:]``,
  ignoring PAD. Rows are padded to the longest row of the batch, so S <= max_src_len and
  L <= max_tgt_len.
* ``kind == "lm"``: ``Batch.src`` is None; ``tgt`` (B, seq_length + 1) is a chunk of
  text without specials; the model reads ``tgt[:, :-1]`` and predicts ``tgt[:, 1:]``.
* Randomness comes only from the CPU ``torch.Generator`` given to ``batch`` (or the
  ``seed`` given to ``examples``); tasks hold no random state and take no seed.
* Splits: every example belongs to exactly one of "train" and "val", by a pure function
  of the example, so no val example is ever sampled for train.

Shape letters: B batch, S source length, L target length.
"""

import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from attnlab._validate import check_choice, check_int

PAD, BOS, EOS = 0, 1, 2
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")
SPLITS = ("train", "val")
VAL_FRACTION = 0.1


def split_hash(key: str) -> float:
    """Map ``key`` to [0, 1) with BLAKE2b: the same value in every process and version.

    Args:
        key: The example's identity (for seq2seq tasks, its source string).

    Returns:
        A float in [0, 1); an example is held out (val) when it is below ``VAL_FRACTION``.
    """
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, person=b"attnlab-split")
    return int.from_bytes(digest.digest(), "big") / 2**64


class Vocab:
    """A character vocabulary: the special tokens, then one token per symbol.

    Args:
        symbols: The task's symbols, each a single character, all distinct. The
            specials ``<pad>``, ``<bos>``, ``<eos>`` are prepended (ids 0, 1, 2).

    Raises:
        TypeError: If a symbol is not a string.
        ValueError: If a symbol is not one character, or symbols repeat.

    Example:
        >>> vocab = Vocab("abc")
        >>> vocab.encode("cab")
        [5, 3, 4]
        >>> vocab.decode([1, 5, 3, 4, 2, 0])
        'cab'
        >>> vocab.decode([1, 5, 2], strip_special=False)
        '<bos>c<eos>'
    """

    def __init__(self, symbols: Iterable[str]) -> None:
        symbols = list(symbols)
        for symbol in symbols:
            if not isinstance(symbol, str):
                raise TypeError(f"symbols must be strings, got {type(symbol).__name__} {symbol!r}")
            if len(symbol) != 1:
                raise ValueError(f"symbols must be single characters, got {symbol!r}")
        if len(set(symbols)) != len(symbols):
            repeated = sorted({s for s in symbols if symbols.count(s) > 1})
            raise ValueError(f"symbols must be distinct, repeated: {_names(repeated)}")
        self._tokens = SPECIAL_TOKENS + tuple(symbols)
        self._ids = {token: i for i, token in enumerate(self._tokens)}

    @property
    def tokens(self) -> tuple[str, ...]:
        """All token strings, indexed by id (specials first)."""
        return self._tokens

    def __len__(self) -> int:
        return len(self._tokens)

    def __repr__(self) -> str:
        return f"Vocab({''.join(self._tokens[len(SPECIAL_TOKENS) :])!r})"

    def encode(self, text_or_tokens: str | Sequence[str]) -> list[int]:
        """Map a string (one token per character) or a list of tokens to ids.

        Args:
            text_or_tokens: A string of symbols, or a sequence of token strings (which
                may include the specials, e.g. ``["<bos>", "a"]``).

        Returns:
            The ids, one per character or token; no BOS/EOS is added.

        Raises:
            ValueError: If some characters (or tokens) are not in the vocabulary; the
                message lists them, sorted.
        """
        unknown = sorted({t for t in text_or_tokens if t not in self._ids})
        if unknown:
            what = "characters" if isinstance(text_or_tokens, str) else "tokens"
            raise ValueError(f"{what} not in the vocabulary: {_names(unknown)}")
        return [self._ids[t] for t in text_or_tokens]

    def decode(self, ids: Sequence[int] | Tensor, *, strip_special: bool = True) -> str:
        """Map ids back to a string.

        Args:
            ids: A sequence of ids or a 1-D integer tensor.
            strip_special: Drop PAD, BOS and EOS (else they appear as ``<pad>`` etc.).

        Returns:
            The decoded string.

        Raises:
            ValueError: If an id is outside ``[0, len(self))``.
        """
        ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        bad = sorted({i for i in ids if not 0 <= i < len(self._tokens)})
        if bad:
            raise ValueError(f"ids not in the vocabulary of size {len(self)}: {bad}")
        skip = len(SPECIAL_TOKENS) if strip_special else 0
        return "".join(self._tokens[i] for i in ids if i >= skip)


def _names(items: Iterable[str]) -> str:
    return ", ".join(repr(item) for item in items)


@dataclass(frozen=True)
class Batch:
    """One batch of examples (see the module docstring for the layout).

    Attributes:
        src: (B, S) long source ids padded with PAD; None for language-model tasks.
        tgt: (B, L) long: ``BOS + target + EOS`` padded with PAD (seq2seq), or a text
            chunk of seq_length + 1 ids (lm).
        src_lengths: (B,) long count of non-PAD ids per ``src`` row; None when ``src`` is.
        tgt_lengths: (B,) long count of non-PAD ids per ``tgt`` row (BOS and EOS included).
    """

    src: Tensor | None
    tgt: Tensor
    src_lengths: Tensor | None
    tgt_lengths: Tensor

    def to(self, device: torch.device | str) -> "Batch":
        """Return a copy with every tensor moved to ``device``."""
        src = None if self.src is None else self.src.to(device)
        src_lengths = None if self.src_lengths is None else self.src_lengths.to(device)
        return Batch(src, self.tgt.to(device), src_lengths, self.tgt_lengths.to(device))


def pad_rows(rows: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Right-pad rows of ids with PAD to the longest row: ``(B, max_len)``, ``(B,)`` lengths."""
    lengths = torch.tensor([len(row) for row in rows], dtype=torch.long)
    out = torch.full((len(rows), int(lengths.max()) if len(rows) else 0), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out, lengths


class Task(ABC):
    """A deterministic example generator with a vocabulary, a held-out split and a metric.

    Class attributes: ``name`` (registry key), ``kind`` ("seq2seq" or "lm"),
    ``primary_metric`` (a key of ``score``'s result, or "bits_per_char" for lm),
    ``higher_is_better`` and ``model_defaults`` (:class:`~attnlab.config.ModelConfig`
    fields the task trains best with, e.g. ``positions``; ``--positions`` overrides
    it). Instance attributes: ``vocab``, ``seq_length``,
    ``max_src_len`` (0 for lm), ``max_tgt_len`` (BOS and EOS included for seq2seq;
    seq_length + 1 for lm) and ``description`` (one line for humans).
    """

    name: ClassVar[str]
    kind: ClassVar[str]
    primary_metric: ClassVar[str]
    higher_is_better: ClassVar[bool]
    model_defaults: ClassVar[dict[str, object]] = {}
    vocab: Vocab
    seq_length: int
    max_src_len: int
    max_tgt_len: int
    description: str

    @abstractmethod
    def batch(self, split: str, batch_size: int, generator: torch.Generator) -> Batch:
        """Sample ``batch_size`` examples of ``split`` using only ``generator`` (a CPU one).

        The same generator state gives the same batch; the generator is advanced.

        Raises:
            ValueError: If ``split`` is not "train" or "val", ``batch_size`` < 1, or
                ``generator`` is not on the CPU.
            TypeError: If ``batch_size`` is not an int or ``generator`` not a Generator.
        """

    @abstractmethod
    def examples(self, split: str, n: int, seed: int) -> list[tuple[str, str]]:
        """Return ``n`` human-readable ``(input, target)`` pairs of ``split`` from ``seed``."""

    @abstractmethod
    def encode_input(self, text: str) -> Tensor:
        """Encode a user prompt as a 1-D long tensor, laid out like one row of a batch."""

    @abstractmethod
    def score(self, pred_ids: Tensor, batch: Batch) -> dict[str, float]:
        """Compare predictions with ``batch``'s references; return metric name -> value."""

    def decode_output(self, ids: Sequence[int] | Tensor) -> str:
        """Decode generated ids: a leading BOS is dropped, and everything from the first EOS."""
        ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        if EOS in ids:
            ids = ids[: ids.index(EOS)]
        return self.vocab.decode(ids)

    @staticmethod
    def bits_per_char(mean_nll_nats: float) -> float:
        """Convert a mean next-character cross-entropy in nats to bits per character.

        Example:
            >>> Task.bits_per_char(math.log(2))
            1.0
        """
        return float(mean_nll_nats) / math.log(2)


def check_pred_type(pred_ids: object) -> Tensor:
    """Check that predictions are an integer (token id) tensor."""
    if not isinstance(pred_ids, Tensor) or pred_ids.is_floating_point() or pred_ids.is_complex():
        what = pred_ids.dtype if isinstance(pred_ids, Tensor) else type(pred_ids).__name__
        raise TypeError(f"pred_ids must be an integer tensor, got {what}")
    return pred_ids


def check_split(split: object) -> str:
    """Check that ``split`` is "train" or "val"."""
    check_choice("split", split, SPLITS)
    return split  # type: ignore[return-value]


def check_generator(generator: object) -> torch.Generator:
    """Check that ``generator`` is a CPU ``torch.Generator``."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != "cpu":
        raise ValueError(f"generator must be on the CPU, got device {generator.device}")
    return generator


def check_seq_length(seq_length: object, maximum: int | None = None) -> int:
    """Check the ``seq_length`` constructor argument (an int in [1, maximum])."""
    check_int("seq_length", seq_length, minimum=1)
    if maximum is not None and seq_length > maximum:  # type: ignore[operator]
        raise ValueError(f"seq_length must be <= {maximum}, got {seq_length}")
    return seq_length  # type: ignore[return-value]


def seeded_generator(seed: int) -> torch.Generator:
    """A fresh CPU generator seeded with ``seed`` (checked to be an int >= 0)."""
    return torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
