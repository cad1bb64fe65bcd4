"""The first two steps: attention with no weights, then one learned head.

``SimpleSelfAttention`` is self-attention stripped to the bone: every token's
output is an average of all tokens, weighted by how similar (dot product) they
are to it: ``softmax(X Xᵀ · scale) X``. It has no parameters.

``SelfAttention`` adds what makes attention learnable: queries, keys and values
are three different linear views of the input, and an output projection maps the
result back: ``softmax(Q Kᵀ / sqrt(E)) V W_O`` with ``Q = X W_Q``, ``K = X W_K``,
``V = X W_V`` (one head of Vaswani et al., 2017).

Shape letters: B batch, L tokens, E width.
"""

from torch import Tensor, nn

from .._validate import check_bool, check_float
from .base import (
    AttentionModule,
    check_cache,
    check_dropout,
    check_embed_dim,
    check_input,
    module_mask,
)
from .cache import KVCache


class SimpleSelfAttention(AttentionModule):
    """Self-attention without trainable weights: ``softmax(X Xᵀ · scale) X``.

    Args:
        scale: Score scale; default ``1 / sqrt(E)``; ``1.0`` is the textbook
            unscaled form.
        causal: Let each token see only itself and earlier tokens.

    Shape:
        x ``(B, L, E)``, mask broadcastable to ``(B, 1, L, S)`` -> ``(B, L, E)``.

    Example:
        >>> import torch, attnlab as al
        >>> al.SimpleSelfAttention()(torch.randn(2, 4, 6)).shape
        torch.Size([2, 4, 6])
    """

    def __init__(self, scale: float | None = None, *, causal: bool = False) -> None:
        super().__init__()
        if scale is not None:
            scale = check_float("scale", scale, minimum=0.0, min_inclusive=False)
            if scale == float("inf"):
                raise ValueError(f"scale must be finite, got {scale}")
        self.scale = scale
        self.causal = check_bool("causal", causal)

    def forward(self, x: Tensor, mask: Tensor | None = None, *,
                cache: KVCache | None = None) -> Tensor:
        """Mix each token with the tokens most similar to it.

        ``cache`` (a :class:`KVCache`) appends ``x`` and attends over all of it:
        with no weights, the tokens themselves are the keys and values.
        """
        x = check_input("x", x, None)
        heads = x.unsqueeze(1)  # (B, 1, L, E): one head
        keys = heads if check_cache(cache) is None else cache.update(heads, heads)[0]  # (B,1,S,E)
        mask = module_mask(mask, x.shape[0], 1, x.shape[1], keys.shape[2], x)
        out = self.attend(heads, keys, keys, mask, scale=self.scale, causal=self.causal)
        return out.squeeze(1)  # (B, L, E)


class SelfAttention(AttentionModule):
    """Single-head self-attention with query, key, value and output projections.

    Args:
        embed_dim: Width E of input and output.
        bias: Biases on the projections.
        causal: Hide future tokens.
        dropout: Dropout on the attention weights, in training mode only.

    Shape:
        x ``(B, L, E)``, mask broadcastable to ``(B, 1, L, L)`` -> ``(B, L, E)``.

    Example:
        >>> import torch, attnlab as al
        >>> al.SelfAttention(6, causal=True)(torch.randn(2, 4, 6)).shape
        torch.Size([2, 4, 6])
    """

    def __init__(
        self, embed_dim: int, *, bias: bool = False, causal: bool = False, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.embed_dim = check_embed_dim(embed_dim)
        self.causal = check_bool("causal", causal)
        check_bool("bias", bias)
        self.dropout = check_dropout(dropout)
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Attend from every token of ``x`` to every (visible) token of ``x``."""
        x = check_input("x", x, self.embed_dim, "embed_dim", like=self)
        q = self.q_proj(x).unsqueeze(1)  # (B, 1, L, E): one head
        k = self.k_proj(x).unsqueeze(1)  # (B, 1, L, E)
        v = self.v_proj(x).unsqueeze(1)  # (B, 1, L, E)
        mask = module_mask(mask, x.shape[0], 1, x.shape[1], x.shape[1], x)
        out = self.attend(q, k, v, mask, causal=self.causal, dropout_p=self.dropout)
        return self.out_proj(out.squeeze(1))  # (B, L, E)
