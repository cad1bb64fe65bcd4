"""Fixed sinusoidal absolute positions (Vaswani et al., 2017).

Shape letters: B batch, L positions (sequence length), E model dimension.
"""

import math

import torch
from torch import Tensor

from attnlab._validate import check_int
from attnlab.positional.absolute import AbsolutePositions


def sinusoidal_table(max_len: int, embed_dim: int) -> Tensor:
    """Return the ``(max_len, embed_dim)`` sinusoid table, computed in float64.

    Column ``2i`` holds ``sin(pos / 10000^(2i/E))`` and column ``2i + 1`` the cosine of
    the same angle; an odd ``embed_dim`` ends with a sine column.

    Args:
        max_len: Number of positions (rows).
        embed_dim: Model dimension E (columns).

    Returns:
        Float64 tensor of shape ``(max_len, embed_dim)``.

    Raises:
        TypeError: If an argument is not an int.
        ValueError: If an argument is < 1.

    Example:
        >>> sinusoidal_table(4, 5).shape
        torch.Size([4, 5])
    """
    check_int("max_len", max_len, minimum=1)
    check_int("embed_dim", embed_dim, minimum=1)
    position = torch.arange(max_len, dtype=torch.float64)[:, None]  # (L, 1)
    even = torch.arange(0, embed_dim, 2, dtype=torch.float64)  # (ceil(E/2),) = 2i
    inv_freq = torch.exp(even * (-math.log(10000.0) / embed_dim))  # 1 / 10000^(2i/E)
    angle = position * inv_freq  # (L, ceil(E/2))
    table = torch.empty(max_len, embed_dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : embed_dim // 2])
    return table


class SinusoidalPositions(AbsolutePositions):
    r"""Add the fixed sinusoidal position table of "Attention Is All You Need".

    .. math::
        PE_{pos, 2i} = \sin(pos / 10000^{2i/E}), \quad
        PE_{pos, 2i+1} = \cos(pos / 10000^{2i/E})

    The table is computed once in float64 and kept as a non-persistent float32 buffer
    ``table`` (not saved in ``state_dict``); it is cast to the input's dtype on use.
    Conventions: columns are interleaved (sine on even, cosine on odd columns), as in the
    paper and the annotated transformer; tensor2tensor and fairseq instead concatenate
    all sines, then all cosines.

    Reference: Vaswani et al., "Attention Is All You Need", 2017, section 3.5.

    Args:
        max_len: Largest number of positions the table covers.
        embed_dim: Model dimension E (odd values work; the last column is a sine).

    Shape:
        - x: ``(B, L, E)`` (any leading dims).
        - output: same as ``x``.

    Raises:
        TypeError: If ``max_len`` or ``embed_dim`` is not an int.
        ValueError: If ``max_len`` or ``embed_dim`` is < 1.

    Example:
        >>> pos = SinusoidalPositions(max_len=16, embed_dim=6)
        >>> pos(torch.zeros(2, 5, 6), offset=3).shape
        torch.Size([2, 5, 6])
    """

    def __init__(self, max_len: int, embed_dim: int) -> None:
        super().__init__(max_len, embed_dim)
        table = sinusoidal_table(max_len, embed_dim).to(torch.get_default_dtype())
        self.register_buffer("table", table, persistent=False)  # (max_len, E)

    def rows(self, offset: int, length: int, like: Tensor) -> Tensor:
        """``PE[offset : offset + L]`` in ``like``'s dtype, ``(L, E)``."""
        return self.table[offset : offset + length].to(like.dtype)
