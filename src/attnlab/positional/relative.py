"""T5's bucketed relative position bias (Raffel et al., 2020).

Shape letters: H heads, L queries, S keys, K buckets.
"""

import math

import torch
from torch import Tensor, nn

from attnlab._validate import check_int


def relative_buckets(relative: Tensor, *, bidirectional: bool, num_buckets: int,
                     max_distance: int) -> Tensor:
    r"""Map signed distances ``key - query`` to bucket ids in ``[0, num_buckets)``.

    Half of the buckets (per direction) hold the exact distances ``0 .. n/2 - 1``;
    the other half cover ``n/2 .. max_distance`` on a log scale, and everything
    farther shares the last bucket. Bidirectional (encoder) buckets spend half of
    the ids on keys after the query; unidirectional (decoder) ones map every key
    after the query to bucket 0 (the causal mask hides those anyway). This is
    the arithmetic of T5's ``_relative_position_bucket``, step for step.

    Args:
        relative: Integer distances ``key position - query position``, any shape.
        bidirectional: Whether keys after the query get their own buckets.
        num_buckets: Number of buckets K.
        max_distance: Distance from which all keys share the last bucket.

    Returns:
        Long tensor of bucket ids, the shape of ``relative``.

    Example:
        >>> relative_buckets(torch.tensor([-3, -1, 0, 1, 3]), bidirectional=True,
        ...                  num_buckets=8, max_distance=16).tolist()
        [2, 1, 0, 5, 6]
    """
    buckets = torch.zeros_like(relative, dtype=torch.long)
    if bidirectional:
        num_buckets //= 2
        buckets += (relative > 0).long() * num_buckets
        distance = relative.abs()
    else:
        distance = -torch.min(relative, torch.zeros_like(relative))
    exact = num_buckets // 2
    is_small = distance < exact
    far = exact + (torch.log(distance.float() / exact) / math.log(max_distance / exact)
                   * (num_buckets - exact)).long()
    far = torch.min(far, torch.full_like(far, num_buckets - 1))
    return buckets + torch.where(is_small, distance, far)


class RelativePositionBias(nn.Module):
    r"""A learned score bias per head and bucketed distance: T5's positions.

    .. math::
        \mathrm{bias}_{h,i,j} = W[\mathrm{bucket}(j - (i + S - L)), h]

    Query ``i`` sits at position ``i + S - L`` (bottom-right aligned, like
    attnlab's causal mask), so with a KV cache new queries line up with the
    last keys. T5 adds this to the (unscaled) scores of every self-attention
    layer, computing it once in the first layer; here the model computes it
    once per forward pass and passes it to every layer as the float part of the
    mask. Cross-attention gets no position bias.

    Conventions vs other libraries: Hugging Face keeps the table as
    ``block.0.layer.0.SelfAttention.relative_attention_bias.weight`` ``(K, H)``;
    it loads into ``embedding.weight`` unchanged.

    Reference: Raffel et al., "Exploring the Limits of Transfer Learning with a
    Unified Text-to-Text Transformer", JMLR 2020, section 2.1.

    Args:
        num_heads: Number of attention heads H.
        causal: Unidirectional buckets (decoders) if True, bidirectional (encoders) if False.
        num_buckets: Number of buckets K (T5: 32).
        max_distance: Distance from which keys share the last bucket (T5: 128).

    Shape:
        - output: ``(H, L, S)``.

    Example:
        >>> bias = RelativePositionBias(num_heads=2, causal=False)
        >>> bias(3, 5).shape
        torch.Size([2, 3, 5])
    """

    kind = "bias"

    def __init__(self, num_heads: int, *, causal: bool = True, num_buckets: int = 32,
                 max_distance: int = 128) -> None:
        super().__init__()
        self.num_heads = check_int("num_heads", num_heads, minimum=1)
        if not isinstance(causal, bool):
            raise TypeError(f"causal must be a bool, got {type(causal).__name__} {causal!r}")
        self.causal = causal
        self.num_buckets = check_int("num_buckets", num_buckets, minimum=4)
        self.max_distance = check_int("max_distance", max_distance, minimum=num_buckets // 2 + 1)
        self.embedding = nn.Embedding(num_buckets, num_heads)  # weight: (K, H)

    def forward(self, L: int, S: int, *, device: torch.device | str | None = None,
                dtype: torch.dtype | None = None) -> Tensor:
        """Return the ``(H, L, S)`` bias for L queries against S keys (``S - L`` cached).

        Args:
            L: Number of queries.
            S: Number of keys.
            device: Output device (default: the table's).
            dtype: Output dtype (default: the table's).

        Raises:
            ValueError: If ``L`` or ``S`` < 1 or ``L > S``.
        """
        check_int("L", L, minimum=1)
        check_int("S", S, minimum=L)
        weight = self.embedding.weight
        device = weight.device if device is None else device
        query = torch.arange(S - L, S, device=device)[:, None]  # (L, 1)
        key = torch.arange(S, device=device)[None, :]  # (1, S)
        buckets = relative_buckets(key - query, bidirectional=not self.causal,
                                   num_buckets=self.num_buckets,
                                   max_distance=self.max_distance)  # (L, S)
        bias = self.embedding(buckets).permute(2, 0, 1)  # (H, L, S)
        return bias if dtype is None else bias.to(dtype)

    def extra_repr(self) -> str:
        """Summarise the constructor arguments for ``repr``."""
        return (f"num_heads={self.num_heads}, causal={self.causal}, "
                f"num_buckets={self.num_buckets}, max_distance={self.max_distance}")
