"""A Transformer layer: self-attention, optional cross-attention, feed-forward.

Each sub-block is wrapped in a residual connection and a norm, either

* **pre-norm** (GPT-2, Llama): ``x = x + f(norm(x))`` — stable for deep stacks, or
* **post-norm** (Vaswani et al. 2017, BERT): ``x = norm(x + f(x))``.

With ``residual="parallel"`` (GPT-J, GPT-NeoX/Pythia) self-attention and the
feed-forward both read the layer's input and their outputs are added together:
``x = x + attn(norm1(x)) + ffn(norm2(x))`` — one residual step instead of two.

An encoder layer has self-attention and a feed-forward; a decoder layer has
causal self-attention, then cross-attention to the encoder's output (when
``cross=True``), then a feed-forward.

Shape letters: B batch, L target tokens, S source tokens, E width.
"""

from torch import Tensor, nn

from ..attention.cache import KVCache
from ..attention.mechanisms import build
from ..config import ModelConfig
from ..registry import FFNS, NORMS


class TransformerLayer(nn.Module):
    """One layer of an encoder or a decoder.

    Args:
        config: The model's configuration.
        causal: Causal self-attention (decoders).
        cross: Add cross-attention to a ``memory`` (encoder–decoder decoders).
        rotary: Rotary module shared by the layers (or None).

    Shape:
        x ``(B, L, E)``, memory ``(B, S, E)`` -> ``(B, L, E)``.
    """

    def __init__(self, config: ModelConfig, *, causal: bool, cross: bool = False,
                 rotary: nn.Module | None = None) -> None:
        super().__init__()
        E, H = config.embed_dim, config.num_heads
        self.prenorm = config.prenorm
        self.parallel = config.residual == "parallel"
        self.self_attn = build(
            config.attention, E, H, causal=causal, dropout=config.dropout, window=config.window,
            rotary=rotary, bias=config.bias, num_kv_heads=config.num_kv_heads,
            head_dim=config.head_dim,
        )
        self.self_norm = self._norm(config)
        self.cross_attn: nn.Module | None = None
        self.cross_norm: nn.Module | None = None
        if cross:
            self.cross_attn = build(
                config.cross_attention, E, H, kdim=E, dropout=config.dropout, bias=config.bias,
                num_kv_heads=config.num_kv_heads, head_dim=config.head_dim,
            )
            self.cross_norm = self._norm(config)
        ffn_class = FFNS.get(config.ffn)
        ffn_kwargs = {"activation": config.activation} if config.ffn == "mlp" else {}
        # dropout=0: the residual branch's dropout below already covers the FFN output
        self.ffn = ffn_class(E, config.resolved_ffn_dim, bias=config.bias, dropout=0.0,
                             **ffn_kwargs)
        self.ffn_norm = self._norm(config)
        self.dropout = nn.Dropout(config.dropout)

    @staticmethod
    def _norm(config: ModelConfig) -> nn.Module:
        return NORMS.get(config.norm)(config.embed_dim, eps=config.norm_eps)

    def forward(
        self, x: Tensor, *, mask: Tensor | None = None, memory: Tensor | None = None,
        memory_mask: Tensor | None = None, cache: KVCache | None = None,
        cross_cache: KVCache | None = None,
    ) -> Tensor:
        """Run the layer.

        Args:
            x: ``(B, L, E)``.
            mask: Self-attention mask (bool or float bias), broadcastable to
                ``(B, H, L, cached + L)``.
            memory: ``(B, S, E)`` encoder output for cross-attention.
            memory_mask: Cross-attention mask, e.g. source padding ``(B, 1, 1, S)``.
            cache: Self-attention :class:`KVCache`.
            cross_cache: Cross-attention :class:`KVCache` (holds the projected memory).
        """
        kwargs = {"mask": mask} if cache is None else {"mask": mask, "cache": cache}
        if self.parallel:  # pre-norm (checked by ModelConfig); no cross-attention in such models
            attn = self.self_attn(self.self_norm(x), **kwargs)  # (B, L, E)
            return x + self.dropout(attn) + self.dropout(self.ffn(self.ffn_norm(x)))
        x = self._residual(x, self.self_norm, lambda h: self.self_attn(h, **kwargs))
        if self.cross_attn is not None and self.cross_norm is not None:
            if memory is None:
                raise ValueError("this layer has cross-attention: memory must be given")
            cross_kwargs = {"mask": memory_mask}
            if cross_cache is not None:
                cross_kwargs["cache"] = cross_cache
            attn = self.cross_attn
            x = self._residual(x, self.cross_norm, lambda h: attn(h, memory, memory,
                                                                   **cross_kwargs))
        return self._residual(x, self.ffn_norm, self.ffn)

    def _residual(self, x: Tensor, norm: nn.Module, f) -> Tensor:  # noqa: ANN001
        if self.prenorm:
            return x + self.dropout(f(norm(x)))  # (B, L, E)
        return norm(x + self.dropout(f(x)))  # (B, L, E)
