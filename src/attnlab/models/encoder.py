"""A Transformer encoder (BERT-like): every token sees every other token.

Shape letters: B batch, L tokens, E width.
"""

from torch import Tensor, nn

from ..config import ModelConfig
from .embeddings import Embeddings
from .stack import LayerStack, check_ids, init_weights, self_mask


class TransformerEncoder(nn.Module):
    """Bidirectional Transformer encoder returning hidden states.

    Args:
        config: A :class:`~attnlab.config.ModelConfig`.
        embed: Embeddings to use (shared with a decoder); built from ``config`` if None.

    Example:
        >>> import torch
        >>> from attnlab.config import ModelConfig
        >>> enc = TransformerEncoder(ModelConfig(arch="encoder", vocab_size=9, embed_dim=8))
        >>> enc(torch.tensor([[1, 2, 3, 0]]), torch.tensor([[1, 1, 1, 0]])).shape
        torch.Size([1, 4, 8])
    """

    def __init__(self, config: ModelConfig, embed: Embeddings | None = None) -> None:
        super().__init__()
        self.config = config
        self.embed = Embeddings(config, causal=False) if embed is None else embed
        self.encoder = LayerStack(config, causal=False, rotary=self.embed.rotary)
        if embed is None:
            init_weights(self, config)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, *,
                token_type_ids: Tensor | None = None) -> Tensor:
        """Hidden states ``(B, L, E)``; ``attention_mask`` ``(B, L)`` 1/True = real token."""
        cfg = self.config
        check_ids("input_ids", input_ids, cfg.vocab_size, cfg.max_len)
        B, L = input_ids.shape
        x = self.embed(input_ids, token_type_ids=token_type_ids)  # (B, L, E)
        mask = self_mask(self.embed, attention_mask, L, L, x.dtype, x.device, B=B)
        return self.encoder(x, mask=mask)  # (B, L, E)
