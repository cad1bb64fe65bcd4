"""The encoder–decoder Transformer of "Attention Is All You Need" (Vaswani et al., 2017).

The encoder reads the source; the decoder writes the target one token at a
time, attending causally to what it wrote and, through cross-attention, to the
whole encoded source. Source and target share the vocabulary and embeddings.

Shape letters: B batch, S source tokens, L target tokens, E width, V vocabulary.
"""

import torch
from torch import Tensor, nn

from ..attention.cache import KVCache
from ..config import ModelConfig
from .encoder import TransformerEncoder
from .generation import write_target
from .stack import (
    LayerStack,
    decode_target,
    init_weights,
)


class EncoderDecoder(nn.Module):
    """Encoder–decoder Transformer for sequence-to-sequence tasks.

    Example:
        >>> import torch
        >>> from attnlab.config import ModelConfig
        >>> cfg = ModelConfig(arch="encoder-decoder", vocab_size=10, embed_dim=8, num_heads=2)
        >>> model = EncoderDecoder(cfg)
        >>> model(torch.tensor([[3, 4, 5]]), torch.tensor([[1, 6]])).shape
        torch.Size([1, 2, 10])
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = TransformerEncoder(config)
        self.embed = self.encoder.embed  # shared source/target embeddings
        self.decoder = LayerStack(config, causal=True, cross=True, rotary=self.embed.rotary)
        self.lm_head = nn.Linear(config.embed_dim, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed.tokens.weight
        init_weights(self, config)

    def encode(self, src_ids: Tensor, src_mask: Tensor | None = None) -> Tensor:
        """Encode ``(B, S)`` source ids (``src_mask`` 1 = real token) -> ``(B, S, E)``."""
        return self.encoder(src_ids, src_mask)

    def decode(self, tgt_ids: Tensor, memory: Tensor, src_mask: Tensor | None = None, *,
               cache: list[KVCache] | None = None,
               cross_cache: list[KVCache] | None = None) -> Tensor:
        """Target logits ``(B, L, V)`` given the encoded source ``memory`` ``(B, S, E)``."""
        x = decode_target(self.config, self.embed, self.decoder, tgt_ids, memory, src_mask,
                          cache=cache, cross_cache=cross_cache, names=("tgt_ids", "src_mask"))
        return self.lm_head(x)  # (B, L, V)

    def forward(self, src_ids: Tensor, tgt_ids: Tensor, src_mask: Tensor | None = None) -> Tensor:
        """Teacher-forced logits ``(B, L, V)`` for ``tgt_ids`` ``(B, L)`` given ``src_ids``."""
        return self.decode(tgt_ids, self.encode(src_ids, src_mask), src_mask)

    @torch.no_grad()
    def generate(self, src_ids: Tensor, max_new_tokens: int, *, bos_id: int,
                 eos_id: int | None = None, src_mask: Tensor | None = None,
                 temperature: float = 1.0, top_k: int | None = None, use_cache: bool = True,
                 generator=None) -> Tensor:  # noqa: ANN001
        """Write a target for each source; returns ``(B, 1 + new)`` ids starting with ``bos_id``."""
        return write_target(self, src_ids, src_mask, bos_id, max_new_tokens,
                            temperature=temperature, top_k=top_k, use_cache=use_cache,
                            eos_id=eos_id, generator=generator)
