"""Parts added for Hugging Face families, in attnlab's own models: offset RMSNorm, GeGLU,
partial rotary, parallel residual, q/k/v-only biases."""

import pytest
import torch
import torch.nn.functional as F

from attnlab.attention.mechanisms import AttentionSpec, build
from attnlab.blocks import GeGLU, OffsetRMSNorm, RMSNorm
from attnlab.config import ModelConfig
from attnlab.models.decoder import DecoderLM
from attnlab.positional import RotaryEmbedding


def test_offset_rmsnorm_is_rmsnorm_with_gain_one_plus_weight():
    x = torch.randn(2, 5, 7, dtype=torch.float64)
    w = torch.randn(7, dtype=torch.float64)
    offset, plain = OffsetRMSNorm(7).double(), RMSNorm(7).double()
    assert torch.equal(offset(x), plain(x))  # weight starts at 0: gain 1
    with torch.no_grad():
        offset.weight.copy_(w)
        plain.weight.copy_(1 + w)
    assert (offset(x) - plain(x)).abs().max() <= 1e-12


def test_geglu_gates_with_gelu_tanh():
    ffn = GeGLU(6, 9).double()
    x = torch.randn(3, 6, dtype=torch.float64)
    want = ffn.down_proj(F.gelu(ffn.gate_proj(x), approximate="tanh") * ffn.up_proj(x))
    assert (ffn(x) - want).abs().max() <= 1e-12


def test_partial_rotary_rotates_only_the_first_features():
    full, part = RotaryEmbedding(4), RotaryEmbedding(10, rotary_dim=4)
    x = torch.randn(2, 3, 5, 10)
    y = part(x, offset=2)
    assert torch.equal(y[..., 4:], x[..., 4:])
    assert torch.equal(y[..., :4], full(x[..., :4], offset=2))
    with pytest.raises(ValueError, match="rotary_dim must be even"):
        RotaryEmbedding(10, rotary_dim=3)
    with pytest.raises(ValueError, match="rotary_dim=12 exceeds head_dim=10"):
        RotaryEmbedding(10, rotary_dim=12)


def test_parallel_residual_layer_and_its_cache():
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=17, embed_dim=12, num_heads=2, positions="rotary",
                      rotary_dim=2, residual="parallel", ffn="geglu", norm="rmsnorm_offset")
    lm = DecoderLM(cfg).eval()
    layer = lm.decoder.layers[0]
    x = torch.randn(1, 4, 12)
    with torch.no_grad():
        want = x + layer.self_attn(layer.self_norm(x)) + layer.ffn(layer.ffn_norm(x))
        assert (layer(x) - want).abs().max() <= 1e-6
        ids = torch.randint(0, 17, (2, 7))
        assert torch.equal(lm.generate(ids, 5, temperature=0.0),
                           lm.generate(ids, 5, temperature=0.0, use_cache=False))
    with pytest.raises(ValueError, match="residual='parallel' needs prenorm=True"):
        ModelConfig(residual="parallel", prenorm=False)
    with pytest.raises(ValueError, match="residual"):
        ModelConfig(residual="diagonal")


def test_qkv_bias_attention_has_no_output_bias():
    attn = build("qkv_bias", AttentionSpec(12, 4, num_kv_heads=2))
    assert all(getattr(attn, p).bias is not None for p in ("q_proj", "k_proj", "v_proj"))
    assert attn.out_proj.bias is None
    assert attn(torch.randn(2, 3, 12)).shape == (2, 3, 12)
