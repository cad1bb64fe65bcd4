"""Causal self-attention: each token sees itself and the tokens before it.

This is the attention of decoder-only language models (GPT): position ``i``
may attend to positions ``<= i`` only, so the model can be trained to predict
every next token in parallel without seeing it.
"""

from .multihead import MultiHeadAttention


class CausalSelfAttention(MultiHeadAttention):
    """Multi-head self-attention that never looks ahead.

    Args:
        embed_dim: Model width E.
        num_heads: Heads H (default 1).
        bias: Biases on the projections.
        dropout: Dropout on the attention weights, in training mode only.

    Shape:
        x ``(B, L, E)`` -> ``(B, L, E)``; ``forward(x, mask=None, *, cache=None)``.

    Example:
        >>> import torch, attnlab as al
        >>> al.CausalSelfAttention(8, num_heads=2)(torch.randn(1, 3, 8)).shape
        torch.Size([1, 3, 8])
    """

    def __init__(
        self, embed_dim: int, *, num_heads: int = 1, bias: bool = False, dropout: float = 0.0
    ) -> None:
        super().__init__(embed_dim, num_heads, bias=bias, dropout=dropout, causal=True)

    def forward(self, x, mask=None, *, cache=None):  # noqa: D102 - documented on the class
        return super().forward(x, mask=mask, cache=cache)
