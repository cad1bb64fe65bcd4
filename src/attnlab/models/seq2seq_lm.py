"""An encoder–decoder language model in Hugging Face's shape (T5, BART, Marian).

Unlike :class:`~attnlab.models.seq2seq.EncoderDecoder` (one set of embeddings
for both sides, the original Transformer), the encoder and the decoder here
each have their own positions (T5's relative bias is bidirectional in the
encoder and causal in the decoder; BART learns one position table per side)
and share only the token table. The output head may add a fixed bias to the
logits (BART's and Marian's ``final_logits_bias``). Calls follow Hugging Face:
``forward(input_ids, decoder_input_ids, attention_mask)``; ``generate`` starts
every target with ``decoder_start_id`` and returns the target ids.

Shape letters: B batch, S source tokens, L target tokens, E width, V vocabulary.
"""

import torch
from torch import Tensor, nn

from ..attention.cache import KVCache
from ..config import ModelConfig
from .embeddings import Embeddings
from .encoder import TransformerEncoder
from .generation import write_target
from .stack import LayerStack, decode_target, init_weights


class Seq2SeqLM(nn.Module):
    """Encoder–decoder Transformer with separate source/target positions.

    Args:
        config: A :class:`~attnlab.config.ModelConfig` (``arch="encoder-decoder"``).
        decoder_start_id: The token every target starts with.

    Example:
        >>> import torch
        >>> from attnlab.config import ModelConfig
        >>> cfg = ModelConfig(arch="encoder-decoder", vocab_size=10, embed_dim=8, num_heads=2)
        >>> model = Seq2SeqLM(cfg, decoder_start_id=0)
        >>> model(torch.tensor([[3, 4, 5]]), torch.tensor([[0, 6]])).shape
        torch.Size([1, 2, 10])
        >>> model.generate(torch.tensor([[3, 4, 5]]), 4, temperature=0).shape
        torch.Size([1, 5])
    """

    def __init__(self, config: ModelConfig, *, decoder_start_id: int) -> None:
        super().__init__()
        if not isinstance(config, ModelConfig) or config.arch != "encoder-decoder":
            raise TypeError(f"config must be a ModelConfig with arch='encoder-decoder', got "
                            f"{getattr(config, 'arch', type(config).__name__)!r}")
        if isinstance(decoder_start_id, bool) or not isinstance(decoder_start_id, int) or \
                not 0 <= decoder_start_id < config.vocab_size:
            raise ValueError(f"decoder_start_id must be a token id in [0, {config.vocab_size}), "
                             f"got {decoder_start_id!r}")
        self.config = config
        self.decoder_start_id = decoder_start_id
        self.encoder = TransformerEncoder(config)
        self.decoder_embed = Embeddings(config, causal=True, tokens=self.encoder.embed.tokens)
        self.decoder = LayerStack(config, causal=True, cross=True,
                                  rotary=self.decoder_embed.rotary)
        self.lm_head = nn.Linear(config.embed_dim, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.encoder.embed.tokens.weight
        self.register_buffer("logits_bias", torch.zeros(config.vocab_size))  # (V,)
        init_weights(self, config)

    def encode(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Encode ``(B, S)`` source ids (``attention_mask`` 1 = real token) -> ``(B, S, E)``."""
        return self.encoder(input_ids, attention_mask)

    def decode(self, decoder_input_ids: Tensor, memory: Tensor,
               attention_mask: Tensor | None = None, *, cache: list[KVCache] | None = None,
               cross_cache: list[KVCache] | None = None) -> Tensor:
        """Target logits ``(B, L, V)`` given the encoded source ``memory`` ``(B, S, E)``.

        ``attention_mask`` is the source's ``(B, S)`` padding mask; with caches the
        target positions continue after what they hold.
        """
        x = decode_target(self.config, self.decoder_embed, self.decoder, decoder_input_ids,
                          memory, attention_mask, cache=cache, cross_cache=cross_cache,
                          names=("decoder_input_ids", "attention_mask"))
        return self.lm_head(x) + self.logits_bias  # (B, L, V)

    def forward(self, input_ids: Tensor, decoder_input_ids: Tensor,
                attention_mask: Tensor | None = None) -> Tensor:
        """Teacher-forced logits ``(B, L, V)`` for ``decoder_input_ids`` given ``input_ids``."""
        return self.decode(decoder_input_ids, self.encode(input_ids, attention_mask),
                           attention_mask)

    @torch.no_grad()
    def generate(self, input_ids: Tensor, max_new_tokens: int, *,
                 attention_mask: Tensor | None = None, temperature: float = 1.0,
                 top_k: int | None = None, use_cache: bool = True, eos_id: int | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """Write a target for each source; returns ``(B, 1 + new)`` ids, ``decoder_start_id`` first.

        Greedy when ``temperature=0``; otherwise sampling (from the ``top_k`` most
        likely tokens if given). With ``eos_id``, a finished row repeats it and the
        loop stops once every row has finished.
        """
        return write_target(self, input_ids, attention_mask, self.decoder_start_id,
                            max_new_tokens, temperature=temperature, top_k=top_k,
                            use_cache=use_cache, eos_id=eos_id, generator=generator)
