"""A Transformer layer: self-attention, optional cross-attention, feed-forward.

The layer is wiring only: it takes its parts already built (attention modules,
norms, feed-forward), as torchtune's layers do, so a new attention option or
norm touches the code that builds the parts, not this file.
:func:`attnlab.models.layer.build_layer` builds a layer from a
:class:`~attnlab.config.ModelConfig`.

Each sub-block is wrapped in a residual connection and a norm, either

* **pre-norm** (GPT-2, Llama): ``x = x + f(norm(x))`` — stable for deep stacks, or
* **post-norm** (Vaswani et al. 2017, BERT): ``x = norm(x + f(x))``.

With ``parallel=True`` (GPT-J, GPT-NeoX/Pythia) self-attention and the
feed-forward both read the layer's input and their outputs are added together:
``x = x + attn(norm1(x)) + ffn(norm2(x))`` — one residual step instead of two.

An encoder layer has self-attention and a feed-forward; a decoder layer of an
encoder–decoder has self-attention, then cross-attention to the encoder's
output, then a feed-forward.

Shape letters: B batch, L target tokens, S source tokens, E width.
"""

from collections.abc import Callable

from torch import Tensor, nn

from ..attention.cache import KVCache


class TransformerLayer(nn.Module):
    """One layer of an encoder or a decoder, from built parts.

    Args:
        self_attn: Self-attention, called as ``self_attn(x, *, mask=..., cache=...)``.
        self_norm: The norm around self-attention.
        ffn: Feed-forward ``(B, L, E) -> (B, L, E)``.
        ffn_norm: The norm around the feed-forward.
        cross_attn: Cross-attention ``cross_attn(x, memory, memory, *, mask=..., cache=...)``
            (None: no cross-attention).
        cross_norm: Its norm (given exactly when ``cross_attn`` is).
        prenorm: Pre-norm if True, post-norm if False.
        parallel: Parallel residual (pre-norm and no cross-attention only).
        dropout: Dropout on each residual branch.

    Shape:
        x ``(B, L, E)``, memory ``(B, S, E)`` -> ``(B, L, E)``.

    Raises:
        ValueError: For a cross-attention without its norm (or the reverse), or a
            parallel residual with post-norm or cross-attention.
    """

    def __init__(self, self_attn: nn.Module, self_norm: nn.Module, ffn: nn.Module,
                 ffn_norm: nn.Module, *, cross_attn: nn.Module | None = None,
                 cross_norm: nn.Module | None = None, prenorm: bool = True,
                 parallel: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        if (cross_attn is None) != (cross_norm is None):
            raise ValueError("cross_attn and cross_norm go together, got "
                             f"cross_attn={type(cross_attn).__name__}, "
                             f"cross_norm={type(cross_norm).__name__}")
        if parallel and (not prenorm or cross_attn is not None):
            raise ValueError(f"parallel=True needs prenorm=True and no cross-attention, got "
                             f"prenorm={prenorm}, cross_attn={type(cross_attn).__name__}")
        self.prenorm = prenorm
        self.parallel = parallel
        self.self_attn = self_attn
        self.self_norm = self_norm
        self.cross_attn = cross_attn
        self.cross_norm = cross_norm
        self.ffn = ffn
        self.ffn_norm = ffn_norm
        self.dropout = nn.Dropout(dropout)

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
        if self.parallel:
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

    def _residual(self, x: Tensor, norm: nn.Module, f: Callable[[Tensor], Tensor]) -> Tensor:
        if self.prenorm:
            return x + self.dropout(f(norm(x)))  # (B, L, E)
        return norm(x + self.dropout(f(x)))  # (B, L, E)
