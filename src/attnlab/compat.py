"""The seed API this project grew from, kept working.

``SelfAttention(emd_dim)`` and ``MultiAttention(emd_dim, num_heads)`` are the
names and argument spellings of the original projects; they are thin aliases
of :class:`attnlab.SelfAttention` and :class:`attnlab.MultiHeadAttention`.
"""

from .attention.multihead import MultiHeadAttention
from .attention.simple import SelfAttention as _SelfAttention


class SelfAttention(_SelfAttention):
    """Single-head self-attention, seed spelling: ``SelfAttention(emd_dim)``.

    Example:
        >>> import torch
        >>> SelfAttention(8)(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(self, emd_dim: int) -> None:
        super().__init__(emd_dim)


class MultiAttention(MultiHeadAttention):
    """Multi-head self-attention, seed spelling: ``MultiAttention(emd_dim, num_heads)``.

    Example:
        >>> import torch
        >>> MultiAttention(8, 2)(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(self, emd_dim: int, num_heads: int) -> None:
        super().__init__(emd_dim, num_heads)


__all__ = ["MultiAttention", "SelfAttention"]
