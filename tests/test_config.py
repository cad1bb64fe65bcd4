"""``attnlab.config.ModelConfig``: validated when made, checks derived from the registries."""

import pytest

from attnlab.config import ModelConfig
from attnlab.registry import ATTENTION

MECHANISMS = ATTENTION.names()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"positions": "fourier"}, ValueError,
         "unknown positional scheme 'fourier'; choose from: sinusoidal, learned, rotary, alibi"),
        ({"attention": "magic"}, ValueError, "unknown attention mechanism 'magic'; choose from: "),
        ({"norm": "batchnorm"}, ValueError, "unknown norm 'batchnorm'; choose from: layernorm"),
        ({"ffn": "moe"}, ValueError, "unknown feed-forward 'moe'; choose from: mlp, swiglu"),
        ({"positions": "rotary", "embed_dim": 12, "num_heads": 4}, ValueError,
         r"rotary' needs an even head_dim, got head_dim=3"),
        ({"embed_dim": 10, "num_heads": 4}, ValueError,
         r"embed_dim \(10\) must be divisible by num_heads \(4\)"),
        ({"num_kv_heads": 3}, ValueError, r"num_heads \(4\) must be divisible by num_kv_heads"),
        ({"arch": "decoder-only"}, ValueError, "arch must be one of"),
        ({"vocab_size": 0}, ValueError, "vocab_size must be >= 1, got 0"),
        ({"dropout": 1.0}, ValueError, "dropout must be < 1.0"),
        ({"attention": "additive", "positions": "rotary"}, ValueError,
         "positions='rotary' acts inside dot-product attention"),
        ({"arch": "encoder", "attention": "causal"}, ValueError,
         "attention='causal' is for decoders"),
    ],
)
def test_config_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        ModelConfig(**{"embed_dim": 16, "num_heads": 4, **kwargs})


def test_config_json_round_trip_and_unknown_fields():
    cfg = ModelConfig(positions="alibi", num_kv_heads=2)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown ModelConfig fields: embedding_dim"):
        ModelConfig.from_dict({"embedding_dim": 4})



def _config(attention, **kwargs):
    return ModelConfig(**{"embed_dim": 16, "num_heads": 4, "attention": attention, **kwargs})


@pytest.mark.parametrize("name", MECHANISMS)
@pytest.mark.parametrize("positions", ["rotary", "alibi", "t5"])
def test_score_positions_follow_the_dot_product_capability(name, positions):
    if ATTENTION.get(name).dot_product:
        assert _config(name, positions=positions).positions == positions
    else:
        with pytest.raises(ValueError, match=f"positions='{positions}' acts inside dot-product"):
            _config(name, positions=positions)


@pytest.mark.parametrize("name", MECHANISMS)
def test_heads_and_head_width_follow_the_heads_capability(name):
    config = _config(name)
    if ATTENTION.get(name).heads:
        assert (config.attention_heads, config.resolved_head_dim) == (4, 4)
    else:
        assert (config.attention_heads, config.resolved_head_dim) == (1, 16)


@pytest.mark.parametrize("name", MECHANISMS)
def test_grouped_options_follow_the_grouped_capability(name):
    if ATTENTION.get(name).grouped:
        assert _config(name, num_kv_heads=2, head_dim=8).num_kv_heads == 2
    else:
        with pytest.raises(ValueError, match=f"attention='{name}' has no num_kv_heads/head_dim"):
            _config(name, num_kv_heads=2)


@pytest.mark.parametrize("name", MECHANISMS)
def test_window_follows_the_window_capability(name):
    if ATTENTION.get(name).window:
        assert _config(name, window=3).window == 3
    else:
        with pytest.raises(ValueError, match=f"attention='{name}' takes no window, got window=3"):
            _config(name, window=3)


@pytest.mark.parametrize("name", MECHANISMS)
def test_dropout_needs_weights(name):
    if ATTENTION.get(name).weights:
        assert _config(name, dropout=0.1).dropout == 0.1
    else:
        with pytest.raises(ValueError, match=f"attention='{name}' has no weights to drop"):
            _config(name, dropout=0.1)


@pytest.mark.parametrize("name", MECHANISMS)
def test_encoder_decoder_cross_attention_must_cross(name):
    kwargs = {"arch": "encoder-decoder", "cross_attention": name}
    if ATTENTION.get(name).cross:
        assert _config("multihead", **kwargs).cross_attention == name
    else:
        with pytest.raises(ValueError, match=f"cross_attention='{name}' is self-attention only"):
            _config("multihead", **kwargs)


@pytest.mark.parametrize("name", MECHANISMS)
@pytest.mark.parametrize("arch", ["encoder", "encoder-decoder"])
def test_always_causal_mechanisms_are_for_decoders(name, arch):
    if ATTENTION.get(name).always_causal:
        with pytest.raises(ValueError, match=f"attention='{name}' is for decoders"):
            _config(name, arch=arch)
    else:
        assert _config(name, arch=arch).arch == arch


def test_a_decoder_ignores_its_unused_cross_attention():
    assert _config("multihead", cross_attention="simple").cross_attention == "simple"
