r"""Additive attention (Bahdanau, Cho & Bengio, 2015), where attention began.

Before dot products, a small network scored how well query ``i`` matches key
``j``:

.. math::
    e_{ij} = w^\top \tanh(W_q q_i + W_k k_j),\qquad
    \alpha_{ij} = \mathrm{softmax}_j(e_{ij}),\qquad
    o_i = W_O \sum_j \alpha_{ij} W_V v_j

The paper's context vector is ``Σ α_ij h_j`` over raw encoder states; here the
values pass through ``v_proj`` and the result through ``out_proj`` so the
module has the same interface and projection names as every other mechanism.
It costs ``O(L · S · hidden)`` memory: the price of scoring with a network.

Shape letters: B batch, L queries, S keys, E query width, A hidden width.
"""

import torch
from torch import Tensor, nn

from .._validate import check_bool, check_int
from ..functional.masks import check_window, restrict, visibility
from ..functional.reference import masked_softmax
from .base import (
    AttentionModule,
    check_cache,
    check_dropout,
    check_embed_dim,
    check_input,
    check_key_value,
    module_mask,
    with_mask,
)
from .cache import KVCache


class AdditiveAttention(AttentionModule):
    """Bahdanau-style additive attention, for self- or cross-attention.

    Args:
        embed_dim: Width E of the queries and of the output.
        kdim: Width of keys/values (default E).
        hidden_dim: Width A of the scoring network (default E).
        causal: Bottom-right aligned causal masking.
        window: Sliding window over keys.
        dropout: Dropout on the attention weights, in training mode only.

    Shape:
        query ``(B, L, E)``, key/value ``(B, S, kdim)``, mask broadcastable to
        ``(B, 1, L, S)`` -> ``(B, L, E)``.

    Example:
        >>> import torch, attnlab as al
        >>> al.AdditiveAttention(8, kdim=6)(torch.randn(2, 3, 8), torch.randn(2, 5, 6)).shape
        torch.Size([2, 3, 8])
    """

    def __init__(
        self, embed_dim: int, *, kdim: int | None = None, hidden_dim: int | None = None,
        causal: bool = False, window: int | None = None, dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embed_dim = check_embed_dim(embed_dim)
        self.kdim = check_int("kdim", embed_dim if kdim is None else kdim, minimum=1)
        hidden = check_int("hidden_dim", embed_dim if hidden_dim is None else hidden_dim,
                           minimum=1)
        self.causal, self.window = check_bool("causal", causal), check_window(window)
        self.dropout = check_dropout(dropout)
        self.q_proj = nn.Linear(self.embed_dim, hidden, bias=False)
        self.k_proj = nn.Linear(self.kdim, hidden, bias=True)
        self.score_proj = nn.Linear(hidden, 1, bias=False)  # w in the formula
        self.v_proj = nn.Linear(self.kdim, self.embed_dim, bias=False)
        self.out_proj = nn.Linear(self.embed_dim, self.embed_dim, bias=False)

    def forward(
        self, query: Tensor, key: Tensor | None = None, value: Tensor | None = None, *,
        mask: Tensor | None = None, cache: KVCache | None = None,
    ) -> Tensor:
        """Score every (query, key) pair with the network, then average the values.

        ``cache`` works as in :class:`MultiHeadAttention`: self-attention appends
        the projected keys/values; cross-attention reuses them after the first call.
        """
        query = check_input("query", query, self.embed_dim, "embed_dim", like=self)
        check_cache(cache)
        is_self = key is None
        key, value = check_key_value(self, query, key, value, self.kdim, self.kdim)
        if cache is not None and not is_self and len(cache) > 0:
            k, v = cache.get()  # (B, 1, S, A), (B, 1, S, E)
        else:
            k = self.k_proj(key)[:, None]  # (B, 1, S, A)
            v = self.v_proj(value)[:, None]  # (B, 1, S, E)
            if cache is not None:
                k, v = cache.update(k, v)
        B, L, S = query.shape[0], query.shape[1], k.shape[2]
        mask = module_mask(mask, B, 1, L, S, query)
        q = self.q_proj(query)[:, :, None, :]  # (B, L, 1, A)
        scores = self.score_proj(torch.tanh(q + k[:, 0, None])).squeeze(-1)  # (B, L, S)
        visible = visibility(L, S, causal=self.causal, window=self.window, device=query.device)
        weights = masked_softmax(scores.unsqueeze(1), restrict(mask, visible))  # (B, 1, L, S)
        if self._recorder is not None:
            self._recorder(weights.detach())
        if self._score_recorder is not None:
            self._score_recorder(with_mask(scores.detach().unsqueeze(1), restrict(mask, visible),
                                           causal=False, window=None))
        if self.training and self.dropout > 0:
            weights = nn.functional.dropout(weights, self.dropout)
        out = weights @ v  # (B, 1, L, S) @ (B, 1, S, E) -> (B, 1, L, E)
        return self.out_proj(out.squeeze(1))  # (B, L, E)
