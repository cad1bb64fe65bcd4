"""A :class:`~attnlab.blocks.layers.TransformerLayer` from a :class:`~attnlab.config.ModelConfig`.

The configuration names the parts (attention mechanism, norm, feed-forward) by
registry key; this function builds them and hands them to the layer, so the
layer itself knows nothing of configurations.
"""

from torch import nn

from ..attention.mechanisms import AttentionSpec, build
from ..blocks.layers import TransformerLayer
from ..config import ModelConfig
from ..registry import FFNS, NORMS


def attention_spec(config: ModelConfig, *, causal: bool,
                   rotary: nn.Module | None = None) -> AttentionSpec:
    """The self-attention that ``config`` asks for (``rotary``: the shared rotary module)."""
    return AttentionSpec(config.embed_dim, config.num_heads, causal=causal,
                         dropout=config.dropout, window=config.window, rotary=rotary,
                         bias=config.bias, num_kv_heads=config.num_kv_heads,
                         head_dim=config.head_dim)


def build_norm(config: ModelConfig) -> nn.Module:
    """The norm ``config`` names, of width E."""
    return NORMS.get(config.norm)(config.embed_dim, eps=config.norm_eps)


def build_layer(config: ModelConfig, *, causal: bool, cross: bool = False,
                rotary: nn.Module | None = None) -> TransformerLayer:
    """One layer of an encoder or a decoder, as ``config`` describes it.

    Args:
        config: The model's configuration.
        causal: Causal self-attention (decoders).
        cross: Add cross-attention to a ``memory`` (encoder–decoder decoders);
            it has no window, no rotary and no causality.
        rotary: Rotary module shared by the layers (or None).
    """
    spec = attention_spec(config, causal=causal, rotary=rotary)
    cross_attn = cross_norm = None
    if cross:
        cross_spec = spec.replace(causal=False, kdim=config.embed_dim, window=None, rotary=None)
        cross_attn = build(config.cross_attention, cross_spec)
        cross_norm = build_norm(config)
    ffn_kwargs = {"activation": config.activation} if config.ffn == "mlp" else {}
    # dropout=0: the layer's residual dropout already covers the feed-forward's output
    ffn = FFNS.get(config.ffn)(config.embed_dim, config.resolved_ffn_dim, bias=config.bias,
                               dropout=0.0, **ffn_kwargs)
    return TransformerLayer(
        build(config.attention, spec), build_norm(config), ffn, build_norm(config),
        cross_attn=cross_attn, cross_norm=cross_norm, prenorm=config.prenorm,
        parallel=config.residual == "parallel", dropout=config.dropout,
    )
