"""Associative recall: read key-value pairs, then return the value of a queried key."""

import random
from collections.abc import Iterable
from typing import ClassVar

from attnlab.tasks.base import Vocab, check_seq_length
from attnlab.tasks.sequences import Seq2SeqTask

KEYS = "abcdefghijklmnopqrstuvwxyz"
VALUES = "0123456789"
QUERY = "?"


class RecallTask(Seq2SeqTask):
    """Associative recall: ``"a3x7k1?x"`` -> ``"7"``.

    The source is k pairs ``key value`` (keys: distinct lowercase letters; values:
    digits, may repeat), then ``"?"`` and one of the k keys; the target is that key's
    value. k is uniform in [1, seq_length]. Splits and metrics are those of
    ``Seq2SeqTask`` (by hash of the whole source string).

    Why the easy examples (one or two pairs) are in the mix, and why the model
    starts with N(0, 1) learned positions (``model_defaults``): to find a key's
    value, the encoder must learn to look at a neighbour (the value right after
    the key), and nothing rewards that until the decoder already uses it. With
    only 5 to 10 pairs, or with smooth (sinusoidal) or tiny (N(0, 0.02)) starting
    positions, every model tried stayed at about a third — guessing among the
    digits present — for thousands of steps. Few-pair examples and strong random
    position vectors give the gradient a foothold; ``docs/tasks.md`` has the runs.

    Args:
        seq_length: Most key-value pairs, 1 to 26. ``max_src_len = 2 * seq_length + 2``,
            ``max_tgt_len = 3`` (BOS, value, EOS).

    Raises:
        TypeError: If ``seq_length`` is not an int.
        ValueError: If ``seq_length`` is not in [1, 26].

    Example:
        >>> task = RecallTask(seq_length=3)
        >>> source, target = task.examples("train", 1, seed=0)[0]
        >>> pairs = dict(zip(source[:-2:2], source[1:-2:2]))
        >>> source[-2] == "?" and pairs[source[-1]] == target
        True
    """

    name = "recall"
    model_defaults: ClassVar[dict[str, object]] = {"positions": "learned", "embed_std": 1.0}

    def __init__(self, seq_length: int = 10) -> None:
        self.seq_length = check_seq_length(seq_length, maximum=len(KEYS))
        self.min_pairs = 1
        super().__init__(
            vocab=Vocab(VALUES + QUERY + KEYS),
            max_src_len=2 * seq_length + 2,
            max_tgt_len=3,
            description=f"recall: {self.min_pairs}-{seq_length} letter->digit pairs, "
            "then '?key'; answer the value",
        )

    def _sample(self, rng: random.Random) -> tuple[str, str]:
        k = rng.randint(self.min_pairs, self.seq_length)
        keys = rng.sample(KEYS, k)
        values = rng.choices(VALUES, k=k)
        query = rng.randrange(k)
        source = "".join(key + value for key, value in zip(keys, values, strict=True))
        return f"{source}{QUERY}{keys[query]}", values[query]

    def _all_sources(self) -> Iterable[str] | None:
        # Only one pair (seq_length 1) is small: 26 * 10 sources; two pairs already give 130,000.
        if self.seq_length > 1:
            return None
        return (f"{key}{value}{QUERY}{key}" for key in KEYS for value in VALUES)
