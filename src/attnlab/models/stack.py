"""What the three model shapes share: a stack of layers, masks, and the ids check.

Shape letters: B batch, H heads, L new tokens, S all tokens seen (cached + new),
E width, V vocabulary.
"""

import torch
from torch import Tensor, nn

from ..attention.cache import KVCache
from ..config import ModelConfig
from ..functional.masks import merge_masks
from .embeddings import Embeddings
from .layer import build_layer, build_norm


class LayerStack(nn.Module):
    """``num_layers`` Transformer layers and an optional final norm.

    Args:
        config: The model's configuration.
        causal: Causal self-attention (decoders).
        cross: Cross-attention to a memory (encoder–decoder decoders).
        rotary: The rotary module from the embeddings, shared by all layers.
    """

    def __init__(self, config: ModelConfig, *, causal: bool, cross: bool = False,
                 rotary: nn.Module | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            build_layer(config, causal=causal, cross=cross, rotary=rotary)
            for _ in range(config.num_layers)
        )
        use_final = config.final_norm and config.prenorm
        self.final_norm = build_norm(config) if use_final else None

    def forward(self, x: Tensor, *, mask: Tensor | None, memory: Tensor | None = None,
                memory_mask: Tensor | None = None, cache: list[KVCache] | None = None,
                cross_cache: list[KVCache] | None = None) -> Tensor:
        """``(B, L, E)`` -> ``(B, L, E)`` through every layer."""
        for i, layer in enumerate(self.layers):
            x = layer(x, mask=mask, memory=memory, memory_mask=memory_mask,
                      cache=None if cache is None else cache[i],
                      cross_cache=None if cross_cache is None else cross_cache[i])
        return x if self.final_norm is None else self.final_norm(x)


def decode_target(config: ModelConfig, embed: Embeddings, stack: LayerStack, ids: Tensor,
                  memory: Tensor, src_mask: Tensor | None, *, cache: list[KVCache] | None,
                  cross_cache: list[KVCache] | None, names: tuple[str, str]) -> Tensor:
    """An encoder–decoder's decoder: target ids ``(B, L)`` -> hidden states ``(B, L, E)``.

    Checks the caches and the ids, embeds the ids at the positions after what
    ``cache`` holds, and runs ``stack`` with causal self-attention and
    cross-attention to the encoded source ``memory`` ``(B, S, E)`` (``src_mask``:
    the source's ``(B, S)`` padding mask, 1 = real token).

    Args:
        config: The model's configuration (vocabulary, context, layers).
        embed: The target's embeddings.
        stack: The decoder's layers (with cross-attention).
        ids: Target token ids ``(B, L)``.
        memory: The encoded source ``(B, S, E)``.
        src_mask: The source's padding mask ``(B, S)`` or None.
        cache: Self-attention caches, one per layer, or None.
        cross_cache: Cross-attention caches, one per layer, or None.
        names: The caller's names for ``ids`` and ``src_mask``, used in errors.
    """
    ids_name, mask_name = names
    cache = check_caches("cache", cache, config.num_layers)
    cross_cache = check_caches("cross_cache", cross_cache, config.num_layers)
    offset = 0 if cache is None else len(cache[0])
    check_ids(ids_name, ids, config.vocab_size, config.max_len, offset)
    B, L = ids.shape
    x = embed(ids, offset=offset)  # (B, L, E)
    mask = self_mask(embed, None, L, offset + L, x.dtype, x.device)
    memory_mask = padding_bias(src_mask, B, memory.shape[1], mask_name)
    return stack(x, mask=mask, memory=memory, memory_mask=memory_mask, cache=cache,
                 cross_cache=cross_cache)  # (B, L, E)


def init_weights(model: nn.Module, config: ModelConfig) -> None:
    """Initialise embeddings; linear layers keep PyTorch's fan-in scaled default.

    Embeddings start at N(0, ``config.embed_std``²) (with ``embed_scale`` the
    token embeddings are then multiplied by sqrt(E) in the forward pass). The
    default 0.02 (GPT-2's) keeps the first logits of a head tied to the token
    embedding small; PyTorch's own N(0, 1) puts strong, distinct position vectors
    in the residual stream from the start, which a task that must learn to look
    at a neighbour needs (``recall``, see ``RecallTask``).
    """
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=config.embed_std)


def check_ids(name: str, ids: object, vocab_size: int, max_len: int, offset: int = 0) -> Tensor:
    """Check ``(B, L)`` token ids: integer, in ``[0, V)``, and within the context.

    ``B = 0`` is allowed (an empty batch gives empty outputs); ``L = 0`` is not.
    """
    if not isinstance(ids, Tensor) or ids.is_floating_point() or ids.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor (B, L), got {_describe(ids)}")
    if ids.dim() != 2 or ids.shape[1] == 0:
        raise ValueError(f"{name} must have shape (B, L) with L >= 1, got {tuple(ids.shape)}")
    if ids.device.type == "meta":
        raise ValueError(f"{name} is on the meta device (a shape without data); token ids "
                         "must hold values")
    if torch.compiler.is_compiling():  # reading values into Python would break the graph
        torch._assert_async(((ids >= 0) & (ids < vocab_size)).all(),
                            f"{name} must lie in [0, {vocab_size})")
    else:
        low, high = (int(ids.min()), int(ids.max())) if ids.numel() else (0, 0)
        if low < 0 or high >= vocab_size:
            raise ValueError(
                f"{name} must lie in [0, {vocab_size}), got values from {low} to {high}")
    if offset + ids.shape[1] > max_len:
        raise ValueError(
            f"{name}: {ids.shape[1]} tokens after {offset} cached exceed the model's context "
            f"max_len={max_len}"
        )
    return ids


def padding_bias(attention_mask: Tensor | None, B: int, S: int, name: str) -> Tensor | None:
    """``(B, S)`` 1/True = real token -> ``(B, 1, 1, S)`` bool (attnlab polarity: the same)."""
    if attention_mask is None:
        return None
    if not isinstance(attention_mask, Tensor) or attention_mask.is_floating_point():
        raise TypeError(f"{name} must be a bool or 0/1 integer tensor (B, S), "
                        f"got {_describe(attention_mask)}")
    if tuple(attention_mask.shape) != (B, S):
        raise ValueError(f"{name} must have shape (B, S) = {(B, S)} (all tokens incl. cached), "
                         f"got {tuple(attention_mask.shape)}")
    return attention_mask.bool()[:, None, None, :]


def self_mask(embed: Embeddings, attention_mask: Tensor | None, L: int, S: int,
              dtype: torch.dtype, device: torch.device, name: str = "attention_mask",
              B: int = 1) -> Tensor | None:
    """The self-attention mask: padding merged with the positional score bias, if any."""
    padding = padding_bias(attention_mask, B, S, name)
    return merge_masks(padding, embed.attention_bias(L, S, dtype, device))


def check_caches(name: str, caches: object, n: int) -> list[KVCache] | None:
    """Check a model's ``cache`` argument: None or a list of ``n`` KVCaches, one per layer."""
    if caches is None:
        return None
    if not isinstance(caches, list | tuple) or not all(isinstance(c, KVCache) for c in caches):
        raise TypeError(f"{name} must be a list of {n} KVCache (one per layer, e.g. from "
                        f"model.new_cache()), got {_describe_caches(caches)}")
    if len(caches) != n:
        raise ValueError(f"{name} must hold one KVCache per layer ({n}), got {len(caches)}")
    return list(caches)


def new_caches(n: int, max_len: int | None) -> list[KVCache]:
    """One empty cache per layer."""
    return [KVCache(max_len) for _ in range(n)]


def _describe_caches(caches: object) -> str:
    if isinstance(caches, list | tuple):
        kinds = sorted({type(c).__name__ for c in caches})
        return f"a {type(caches).__name__} of {', '.join(kinds) or 'nothing'}"
    return type(caches).__name__


def _describe(x: object) -> str:
    if isinstance(x, Tensor):
        return f"{x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__
