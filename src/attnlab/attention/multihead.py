r"""Multi-head attention with grouped-query heads, masks, windows and a KV cache.

.. math::
    \mathrm{MHA}(X_q, X_k, X_v) = \mathrm{Concat}(h_1..h_H) W_O,\quad
    h_i = \mathrm{softmax}\big(Q_i K_{g(i)}^\top / \sqrt{D} + \mathrm{bias}\big) V_{g(i)}

(Vaswani et al., 2017). With ``num_kv_heads = G < H`` query head ``i`` uses
key/value head ``g(i) = i // (H / G)``: grouped-query attention (Ainslie et al.,
2023); ``G = 1`` is multi-query attention (Shazeer, 2019).

Conventions vs other libraries: batch first; boolean masks are ``True`` = may
attend (``nn.MultiheadAttention`` uses the opposite); projections are separate
``q_proj/k_proj/v_proj/out_proj`` (torch packs them into ``in_proj_weight``;
``attnlab.interop`` converts); no weights are returned — use
``attnlab.capture_attention``.

Shape letters: B batch, H query heads, G key/value heads, L queries, S keys,
E model width, D head width.
"""

from torch import Tensor, nn

from .._validate import check_bool, check_divisible, check_int
from ..functional.masks import check_window
from .base import (
    AttentionModule,
    check_cache,
    check_dropout,
    check_embed_dim,
    check_input,
    check_key_value,
    merge_heads,
    module_mask,
    split_heads,
)
from .cache import KVCache


class MultiHeadAttention(AttentionModule):
    """Multi-head (and grouped/multi-query) attention.

    Args:
        embed_dim: Model width E (query input and output).
        num_heads: Query heads H.
        num_kv_heads: Key/value heads G (default H); must divide H.
        kdim: Width of the key input (default E).
        vdim: Width of the value input (default E).
        bias: Biases on the four projections.
        dropout: Dropout on the attention weights, in training mode only.
        causal: Bottom-right aligned causal masking.
        window: Sliding window over keys (see the mask convention).
        head_dim: Head width D (default E // H; E need not be divisible then).
        rotary: Optional module ``rotary(x, offset=...)`` applied to the queries
            and keys ``(B, H|G, L, D)`` after projection (e.g. ``RotaryEmbedding``).

    Shape:
        query ``(B, L, E)``, key ``(B, S, kdim)``, value ``(B, S, vdim)``, mask
        broadcastable to ``(B, H, L, S)`` -> ``(B, L, E)``. B, L and S may be 0:
        with no keys every query sees nothing, its attention is zero and the output
        is ``out_proj``'s bias.

    Example:
        >>> import torch, attnlab as al
        >>> mha = al.MultiHeadAttention(12, 4, num_kv_heads=2, causal=True)
        >>> mha(torch.randn(2, 5, 12)).shape
        torch.Size([2, 5, 12])
    """

    def __init__(
        self, embed_dim: int, num_heads: int, *, num_kv_heads: int | None = None,
        kdim: int | None = None, vdim: int | None = None, bias: bool = True,
        dropout: float = 0.0, causal: bool = False, window: int | None = None,
        head_dim: int | None = None, rotary: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.embed_dim = check_embed_dim(embed_dim)
        self.num_heads = check_int("num_heads", num_heads, minimum=1)
        self.num_kv_heads = check_int(
            "num_kv_heads", num_heads if num_kv_heads is None else num_kv_heads, minimum=1
        )
        check_divisible("num_heads", self.num_heads, "num_kv_heads", self.num_kv_heads)
        if head_dim is None:
            check_divisible("embed_dim", self.embed_dim, "num_heads", self.num_heads)
            head_dim = self.embed_dim // self.num_heads
        self.head_dim = check_int("head_dim", head_dim, minimum=1)
        self.kdim = check_int("kdim", embed_dim if kdim is None else kdim, minimum=1)
        self.vdim = check_int("vdim", embed_dim if vdim is None else vdim, minimum=1)
        self.dropout = check_dropout(dropout)
        self.causal = check_bool("causal", causal)
        self.window = check_window(window)
        check_bool("bias", bias)
        self.rotary = rotary
        H, G, D = self.num_heads, self.num_kv_heads, self.head_dim
        self.q_proj = nn.Linear(self.embed_dim, H * D, bias=bias)
        self.k_proj = nn.Linear(self.kdim, G * D, bias=bias)
        self.v_proj = nn.Linear(self.vdim, G * D, bias=bias)
        self.out_proj = nn.Linear(H * D, self.embed_dim, bias=bias)

    def forward(
        self, query: Tensor, key: Tensor | None = None, value: Tensor | None = None, *,
        mask: Tensor | None = None, cache: KVCache | None = None,
    ) -> Tensor:
        """Attend from ``query`` to ``key``/``value`` (both default to ``query``).

        Args:
            query: ``(B, L, E)``.
            key: ``(B, S, kdim)``; default ``query`` (self-attention).
            value: ``(B, S, vdim)``; default ``key``.
            mask: Bool (True = may attend) or float bias, broadcastable to ``(B, H, L, S)``.
            cache: A :class:`KVCache`. Self-attention appends this call's keys and
                values and attends over everything cached; positions (for
                ``rotary``) continue from the cached length. Cross-attention
                (``key`` given and cache non-empty) reuses the cached projection
                of the context instead of recomputing it.

        Returns:
            ``(B, L, E)``.
        """
        query = check_input("query", query, self.embed_dim, "embed_dim", like=self)
        check_cache(cache)
        is_self = key is None
        key, value = check_key_value(self, query, key, value, self.kdim, self.vdim)
        offset = cache.length if (cache is not None and is_self) else 0
        q = split_heads(self.q_proj(query), self.num_heads)  # (B, H, L, D)
        if cache is not None and not is_self and len(cache) > 0:
            k, v = cache.get()  # (B, G, S, D): the context was projected on the first call
        else:
            k = split_heads(self.k_proj(key), self.num_kv_heads)  # (B, G, S, D)
            v = split_heads(self.v_proj(value), self.num_kv_heads)  # (B, G, S, D)
            if self.rotary is not None:
                k = self.rotary(k, offset=offset)
            if cache is not None:
                k, v = cache.update(k, v)  # (B, G, cached + S, D)
        if self.rotary is not None:
            q = self.rotary(q, offset=offset)
        mask = module_mask(mask, query.shape[0], self.num_heads, q.shape[-2], k.shape[-2], q)
        out = self.attend(q, k, v, mask, causal=self.causal, window=self.window,
                          dropout_p=self.dropout)  # (B, H, L, D)
        return self.out_proj(merge_heads(out))  # (B, L, E)

    def extra_repr(self) -> str:
        """Summary shown by ``print(module)``."""
        parts = [f"embed_dim={self.embed_dim}", f"num_heads={self.num_heads}"]
        if self.num_kv_heads != self.num_heads:
            parts.append(f"num_kv_heads={self.num_kv_heads}")
        if self.causal:
            parts.append("causal=True")
        if self.window is not None:
            parts.append(f"window={self.window}")
        return ", ".join(parts)
