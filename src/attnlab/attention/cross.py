"""Cross-attention: queries from one sequence, keys and values from another.

A decoder attends to its encoder's output this way (Vaswani et al., 2017,
"encoder-decoder attention"): target position ``i`` looks over the whole source
``context`` and takes what it needs. Nothing is causal: every target position
may see every source position.
"""

from torch import Tensor

from .base import check_input
from .multihead import MultiHeadAttention


class CrossAttention(MultiHeadAttention):
    """Attention from ``x`` ``(B, L, E)`` to ``context`` ``(B, S, context_dim)``.

    Args:
        embed_dim: Width E of ``x`` and of the output.
        context_dim: Width of ``context`` (default E).
        num_heads: Heads H (default 1).
        bias: Biases on the projections.
        dropout: Dropout on the attention weights, in training mode only.

    Shape:
        x ``(B, L, E)``, context ``(B, S, context_dim)``, mask broadcastable to
        ``(B, H, L, S)`` (e.g. a source padding mask ``(B, 1, 1, S)``) -> ``(B, L, E)``.

    Example:
        >>> import torch, attnlab as al
        >>> xa = al.CrossAttention(8, context_dim=6, num_heads=2)
        >>> xa(torch.randn(2, 3, 8), torch.randn(2, 5, 6)).shape
        torch.Size([2, 3, 8])
    """

    def __init__(
        self, embed_dim: int, *, context_dim: int | None = None, num_heads: int = 1,
        bias: bool = False, dropout: float = 0.0,
    ) -> None:
        super().__init__(embed_dim, num_heads, kdim=context_dim, vdim=context_dim, bias=bias,
                         dropout=dropout)

    def forward(self, x: Tensor, context: Tensor, mask: Tensor | None = None, *,  # noqa: D102
                cache=None) -> Tensor:
        check_input("context", context, self.kdim, "context_dim", length="S")
        return super().forward(x, context, context, mask=mask, cache=cache)
