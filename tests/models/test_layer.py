"""``build_layer``: the parts a ``ModelConfig`` names, handed to a ``TransformerLayer``."""

import torch

import attnlab as al
from attnlab.blocks import GeGLU, RMSNorm, TransformerLayer
from attnlab.config import ModelConfig
from attnlab.models.layer import attention_spec, build_layer
from attnlab.positional.rotary import RotaryEmbedding


def test_the_config_reaches_every_part():
    config = ModelConfig(embed_dim=24, num_heads=6, num_kv_heads=2, head_dim=6, window=4,
                         norm="rmsnorm", ffn="geglu", ffn_dim=40, bias=False, dropout=0.25,
                         positions="rotary", prenorm=True, residual="parallel")
    rotary = RotaryEmbedding(6)
    layer = build_layer(config, causal=True, rotary=rotary)
    assert isinstance(layer, TransformerLayer)
    attn = layer.self_attn
    assert (attn.num_heads, attn.num_kv_heads, attn.head_dim) == (6, 2, 6)
    assert (attn.causal, attn.window, attn.rotary, attn.q_proj.bias) == (True, 4, rotary, None)
    assert attn.dropout == 0.25
    assert isinstance(layer.self_norm, RMSNorm)
    assert isinstance(layer.ffn_norm, RMSNorm)
    assert isinstance(layer.ffn, GeGLU)
    assert layer.ffn.hidden_dim == 40
    assert (layer.parallel, layer.prenorm, layer.dropout.p) == (True, True, 0.25)
    assert layer.cross_attn is None


def test_cross_attention_has_no_window_rotary_or_causality():
    config = ModelConfig(arch="encoder-decoder", embed_dim=16, num_heads=4, window=3,
                         cross_attention="selfhead")
    layer = build_layer(config, causal=True, cross=True)
    cross = layer.cross_attn
    assert (cross.num_heads, cross.causal, cross.window, cross.rotary) == (1, False, None, None)
    assert layer.self_attn.window == 3
    x, memory = torch.randn(2, 3, 16), torch.randn(2, 6, 16)
    assert layer(x, memory=memory).shape == (2, 3, 16)


def test_attention_spec_is_what_the_self_attention_gets():
    config = ModelConfig(embed_dim=16, num_heads=4, num_kv_heads=2, window=5, bias=False)
    spec = attention_spec(config, causal=True)
    assert (spec.embed_dim, spec.num_heads, spec.num_kv_heads, spec.window, spec.bias,
            spec.causal, spec.kdim) == (16, 4, 2, 5, False, True, None)
    assert isinstance(build_layer(config, causal=True).self_attn, al.MultiHeadAttention)
