"""Attention with Linear Biases, ALiBi (Press et al., 2022).

Shape letters: H heads, L queries, S keys.
"""

import math

import torch
from torch import Tensor, nn

from attnlab._validate import check_int


def _power_of_two_slopes(n: int) -> list[float]:
    start = 2.0 ** (-(2.0 ** -(math.log2(n) - 3)))  # 2^(-8/n)
    ratio = start
    return [start * ratio**i for i in range(n)]


def alibi_slopes(
    num_heads: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Tensor:
    r"""Return the per-head ALiBi slopes of the paper's reference implementation.

    For a power of two ``n`` the slopes are the geometric sequence
    :math:`2^{-8/n}, 2^{-16/n}, \dots, 2^{-8}`. Otherwise, with ``n'`` the largest power
    of two below ``n``, they are the ``n'`` slopes of that sequence followed by the first
    ``n - n'`` odd-indexed terms (every other one) of the ``2n'`` sequence, as in
    ``ofirpress/attention_with_linear_biases`` and Hugging Face's ``build_alibi_tensor``.

    Reference: Press, Smith & Lewis, "Train Short, Test Long: Attention with Linear
    Biases Enables Input Length Extrapolation", ICLR 2022.

    Args:
        num_heads: Number of attention heads H.
        dtype: Output dtype (slopes are computed in float64 first).
        device: Output device.

    Returns:
        Tensor of shape ``(H,)``, decreasing, all in ``(0, 1)``.

    Raises:
        TypeError: If ``num_heads`` is not an int.
        ValueError: If ``num_heads`` < 1.

    Example:
        >>> alibi_slopes(4).tolist()
        [0.25, 0.0625, 0.015625, 0.00390625]
        >>> alibi_slopes(3).tolist()  # 2 slopes of the n'=2 sequence + 1 of the n'=4 one
        [0.0625, 0.00390625, 0.25]
    """
    check_int("num_heads", num_heads, minimum=1)
    closest = 2 ** math.floor(math.log2(num_heads))
    slopes = _power_of_two_slopes(closest)
    slopes += _power_of_two_slopes(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(slopes, dtype=torch.float64).to(device=device, dtype=dtype)  # (H,)


class AlibiBias(nn.Module):
    r"""Additive attention bias that penalises distance linearly, one slope per head.

    .. math::
        \mathrm{bias}_{h,i,j} = -m_h \, \lvert (i + S - L) - j \rvert

    Query ``i`` sits at absolute position ``i + S - L`` (bottom-right aligned, as the
    causal mask of ``attnlab``), so with a KV cache the new queries line up with the last
    keys. The bias is added to the attention scores before the softmax; masking of
    future keys for causal models is done by the attention mask, not here.

    Conventions vs other libraries: Hugging Face's Bloom adds ``+m_h * j`` (a per-row
    constant shift of this bias, which the softmax ignores on the causal part); the
    values here are the paper's ``-m_h * distance`` so they are also right without a
    causal mask.

    Reference: Press, Smith & Lewis, "Train Short, Test Long", ICLR 2022.

    Args:
        num_heads: Number of attention heads H.
        causal: Whether the model using it is causal (informational: the bias is the
            same; callers mask the future separately).

    Shape:
        - output: ``(H, L, S)``.

    Raises:
        TypeError: If ``num_heads`` is not an int.
        ValueError: If ``num_heads`` < 1.

    Example:
        >>> bias = AlibiBias(num_heads=2)
        >>> bias(2, 3)[0]
        tensor([[-0.0625,  0.0000, -0.0625],
                [-0.1250, -0.0625,  0.0000]])
    """

    kind = "bias"

    def __init__(self, num_heads: int, *, causal: bool = True) -> None:
        super().__init__()
        self.num_heads = check_int("num_heads", num_heads, minimum=1)
        if not isinstance(causal, bool):
            raise TypeError(f"causal must be a bool, got {type(causal).__name__} {causal!r}")
        self.causal = causal

    @property
    def slopes(self) -> Tensor:
        """The ``(H,)`` float32 slopes, see :func:`alibi_slopes`."""
        return alibi_slopes(self.num_heads)

    def forward(
        self, L: int, S: int, *, device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Return the ``(H, L, S)`` bias for L queries against S keys.

        Args:
            L: Number of queries.
            S: Number of keys (``S - L`` of them precede the first query).
            device: Output device.
            dtype: Output dtype (computed in float32, or float64 for float64).

        Returns:
            Tensor of shape ``(H, L, S)``, all entries <= 0.

        Raises:
            TypeError: If ``L`` or ``S`` is not an int.
            ValueError: If ``L`` or ``S`` is < 1.
        """
        check_int("L", L, minimum=1)
        check_int("S", S, minimum=1)
        compute = torch.float64 if dtype == torch.float64 else torch.float32
        slopes = alibi_slopes(self.num_heads, dtype=compute, device=device)  # (H,)
        query_pos = torch.arange(S - L, S, dtype=compute, device=device)  # (L,)
        key_pos = torch.arange(S, dtype=compute, device=device)  # (S,)
        distance = (query_pos[:, None] - key_pos[None, :]).abs()  # (L, S)
        bias = -slopes[:, None, None] * distance + 0.0  # (H, L, S); + 0.0 turns -0.0 into 0.0
        return bias.to(dtype)

    def extra_repr(self) -> str:
        """Summarise the constructor arguments for ``repr``."""
        return f"num_heads={self.num_heads}, causal={self.causal}"
