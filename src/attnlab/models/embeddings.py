"""Token embeddings plus absolute positions (if any), and the attention-bias positions.

Positional schemes come in three kinds (``kind`` attribute of each class):
``absolute`` ones are added to the token embeddings here; ``rotary`` rotates
queries and keys inside attention; ``bias`` (ALiBi, T5's buckets) adds a
distance-dependent term to the attention scores, built here by
:meth:`Embeddings.attention_bias`.
"""

import math

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..registry import NORMS, POSITIONS


class Embeddings(nn.Module):
    """Token (+ position, + token type) embeddings.

    Args:
        config: The model's configuration.
        causal: Whether the attention these positions serve is causal (a ``bias``
            scheme such as T5's buckets differs); default: not an encoder.
        tokens: A token table to share (an encoder–decoder's decoder side).

    Shape:
        input_ids ``(B, L)`` -> ``(B, L, E)``.
    """

    def __init__(self, config: ModelConfig, *, causal: bool | None = None,
                 tokens: nn.Embedding | None = None) -> None:
        super().__init__()
        E = config.embed_dim
        self.config = config
        self.tokens = nn.Embedding(config.vocab_size, E) if tokens is None else tokens
        self.positions: nn.Module | None = None
        self.rotary: nn.Module | None = None
        self.score_bias: nn.Module | None = None
        if config.positions != "none":
            scheme = POSITIONS.get(config.positions)
            if scheme.kind == "absolute":
                self.positions = scheme(config.max_len, E)
            elif scheme.kind == "rotary":
                self.rotary = scheme(config.resolved_head_dim, theta=config.rope_theta,
                                     max_len=config.max_len, rotary_dim=config.rotary_dim)
            else:
                causal = config.arch != "encoder" if causal is None else causal
                self.score_bias = scheme(config.attention_heads, causal=causal)
        self.token_types = (nn.Embedding(config.type_vocab_size, E)
                            if config.type_vocab_size else None)
        self.norm = NORMS.get(config.norm)(E, eps=config.norm_eps) if config.embed_norm else None
        self.dropout = nn.Dropout(config.dropout)
        self.scale = math.sqrt(E) if config.embed_scale else 1.0

    def forward(self, input_ids: Tensor, *, offset: int = 0,
                token_type_ids: Tensor | None = None,
                attention_mask: Tensor | None = None) -> Tensor:
        """Embed ``(B, L)`` ids whose first position is ``offset``.

        ``attention_mask`` ``(B, offset + L)`` (1 = real token) numbers the positions
        of a scheme that counts real tokens only (``learned_real``); others ignore it.
        """
        x = self.tokens(input_ids) * self.scale  # (B, L, E)
        if self.positions is not None:
            if attention_mask is not None and getattr(self.positions, "counts_real_tokens", False):
                positions = self.positions.from_mask(attention_mask, offset)  # (B, L)
                x = self.positions(x, positions=positions.to(x.device))
            else:
                x = self.positions(x, offset=offset)
        if self.token_types is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = x + self.token_types(token_type_ids)
        if self.norm is not None:
            x = self.norm(x)
        return self.dropout(x)

    def attention_bias(self, L: int, S: int, dtype: torch.dtype,
                       device: torch.device) -> Tensor | None:
        """The ``(H, L, S)`` score bias of a ``bias`` scheme (ALiBi, T5), or None for others."""
        if self.score_bias is None:
            return None
        return self.score_bias(L, S, device=device, dtype=dtype)
