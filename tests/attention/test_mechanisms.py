"""The attention registry's capabilities say what each mechanism really does.

Each capability of :class:`~attnlab.attention.mechanisms.Mechanism` is checked
against the built module's behaviour, for every registered mechanism, and a
mechanism registered at run time is picked up by the ``--model`` choices.
"""

import pytest
import torch

import attnlab as al
import oracle
from attnlab.attention.mechanisms import AttentionSpec, Mechanism, build, mechanism
from attnlab.config import ModelConfig
from attnlab.models import build_model
from attnlab.positional.rotary import RotaryEmbedding
from attnlab.registry import ATTENTION
from attnlab.training.recipes import choices

NAMES = ATTENTION.names()
B, L, E, H = 2, 9, 24, 4


def _build(name, **options):
    torch.manual_seed(0)
    return build(name, AttentionSpec(E, H, **options)).double()


@pytest.mark.parametrize("name", NAMES)
def test_heads(name):
    module = _build(name)
    x = oracle.randn(B, L, E, seed=1)
    with al.capture_attention(module) as maps:
        module(x)
    (weights,) = maps.values()
    assert weights.shape == (B, H if ATTENTION.get(name).heads else 1, L, L)


@pytest.mark.parametrize("name", NAMES)
def test_cross(name):
    if ATTENTION.get(name).cross:
        module = _build(name, kdim=7)
        assert module(oracle.randn(B, L, E, seed=1), oracle.randn(B, 5, 7, seed=2)).shape == \
            (B, L, E)
    else:
        with pytest.raises(ValueError, match=f"attention '{name}' is self-attention only.*"
                                             "got kdim=7"):
            _build(name, kdim=7)


@pytest.mark.parametrize("name", NAMES)
def test_dot_product_takes_rotary(name):
    rotary = RotaryEmbedding(E // H if ATTENTION.get(name).heads else E)
    if not ATTENTION.get(name).dot_product:
        with pytest.raises(ValueError, match=f"attention '{name}' has no dot product to rotate"):
            _build(name, rotary=rotary)
        return
    module = _build(name, rotary=rotary)
    x = oracle.randn(B, L, E, seed=3)
    plain = _build(name)
    assert not torch.allclose(module(x), plain(x))  # same weights (seed), rotated scores


@pytest.mark.parametrize("name", NAMES)
def test_window(name):
    if not ATTENTION.get(name).window:
        with pytest.raises(ValueError, match=f"attention '{name}' takes no window, got window=2"):
            _build(name, window=2)
        return
    module = _build(name, window=2, causal=True)
    x = oracle.randn(B, L, E, seed=4)
    changed = x.clone()
    changed[:, 0] = oracle.randn(B, E, seed=5)  # 2 or more positions back from query 2..
    torch.testing.assert_close(module(changed)[:, 2:], module(x)[:, 2:], rtol=0, atol=1e-12)
    assert not torch.allclose(module(changed)[:, :2], module(x)[:, :2])


@pytest.mark.parametrize("name", NAMES)
def test_grouped(name):
    if not ATTENTION.get(name).grouped:
        with pytest.raises(ValueError, match=f"attention '{name}' has no num_kv_heads/head_dim"):
            _build(name, num_kv_heads=2)
        return
    module = _build(name, num_kv_heads=2, head_dim=5)
    assert module.k_proj.out_features == (1 if name == "mqa" else 2) * 5
    assert module(oracle.randn(B, L, E, seed=6)).shape == (B, L, E)


@pytest.mark.parametrize("name", NAMES)
def test_weights(name):
    has = ATTENTION.get(name).weights
    assert (sum(p.numel() for p in _build(name).parameters()) > 0) == has
    if not has:
        with pytest.raises(ValueError, match=f"attention '{name}' has no weights to drop"):
            _build(name, dropout=0.1)


@pytest.mark.parametrize("name", NAMES)
def test_always_causal(name):
    module = _build(name, causal=False)
    x = oracle.randn(B, L, E, seed=7)
    changed = x.clone()
    changed[:, -1] = oracle.randn(B, E, seed=8)
    looks_ahead = not torch.allclose(module(changed)[:, :-1], module(x)[:, :-1])
    assert looks_ahead != ATTENTION.get(name).always_causal


def test_build_needs_a_spec():
    with pytest.raises(TypeError, match="spec must be an AttentionSpec, got dict"):
        build("multihead", {"embed_dim": 8})


def test_summary_names_the_capabilities():
    assert ATTENTION.get("simple").summary() == \
        "one head, self only, absolute positions only, no weights"
    assert "always causal" in ATTENTION.get("causal").summary()


def test_a_new_mechanism_is_one_function_and_one_line():
    """The example of docs/extending.md, registered at run time."""
    name = "test_local4"

    @mechanism(name, help="multi-head attention over the 4 most recent positions",
               cross=False, window=False)
    def _local4(spec):
        return al.MultiHeadAttention(spec.embed_dim, spec.num_heads,
                                     num_kv_heads=spec.num_kv_heads, head_dim=spec.head_dim,
                                     causal=spec.causal, window=4, rotary=spec.rotary,
                                     dropout=spec.dropout, bias=spec.bias)

    try:
        assert isinstance(ATTENTION.get(name), Mechanism)
        assert choices()[name].cross_attention == "multihead"
        config = ModelConfig(vocab_size=11, embed_dim=8, num_heads=4, attention=name,
                             positions="rotary")
        model = build_model(config)
        assert model.decoder.layers[0].self_attn.window == 4
        assert model(torch.zeros(1, 3, dtype=torch.long)).shape == (1, 3, 11)
        with pytest.raises(ValueError, match=f"attention='{name}' takes no window"):
            ModelConfig(attention=name, window=8)
        with pytest.raises(ValueError, match=f"attention '{name}' is self-attention only"):
            build(name, AttentionSpec(8, 4, kdim=8))
    finally:
        ATTENTION._entries.pop(name)
