"""capture_attention: per-module (B, H, L, S) maps, equal to attention_weights, only inside."""

import math

import pytest
import torch
from torch import nn

import attnlab as al
import attnlab.functional.sdpa as sdpa
import oracle

B, L, S, E, C = 2, 7, 5, 12, 5


class Block(nn.Module):
    def __init__(self, attn):
        super().__init__()
        self.attn = attn

    def forward(self, x, *context):
        return x + self.attn(x, *context)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList([
            Block(al.MultiHeadAttention(E, 3)),
            Block(al.MultiHeadAttention(E, 6, num_kv_heads=2, window=2)),
        ])
        self.decoder = nn.Module()
        self.decoder.layers = nn.ModuleList([Block(al.CausalSelfAttention(E, num_heads=4))])
        self.decoder.cross = Block(al.CrossAttention(E, context_dim=C, num_heads=2))
        self.simple = Block(al.SimpleSelfAttention())

    def forward(self, x, context):
        for block in self.encoder.layers:
            x = block(x)
        x = self.decoder.layers[0](x)
        x = self.decoder.cross(x, context)
        return self.simple(x)


NAMES = {"encoder.layers.0.attn": 3, "encoder.layers.1.attn": 6, "decoder.layers.0.attn": 4,
         "decoder.cross.attn": 2, "simple.attn": 1}


@pytest.fixture
def model():
    torch.manual_seed(0)
    return Model().double()


def inputs(dtype=torch.float64):
    return oracle.randn(B, L, E, seed=1, dtype=dtype), oracle.randn(B, S, C, seed=2, dtype=dtype)


def record_inputs(model):
    seen = {}
    for name in NAMES:
        model.get_submodule(name).register_forward_pre_hook(
            lambda m, args, name=name: seen.__setitem__(name, args))
    return seen


def expected_weights(module, args):
    """attention_weights of the module's own q/k, and the oracle's weights."""
    x = args[0]
    if isinstance(module, al.SimpleSelfAttention):
        ref = oracle.attention(x, x, x)[1].unsqueeze(1)
        return al.attention_weights(x.unsqueeze(1), x.unsqueeze(1)), ref
    source = args[1] if len(args) > 1 else x
    H, G, D = module.num_heads, module.num_kv_heads, module.head_dim
    q = module.q_proj(x).view(B, x.shape[1], H, D).transpose(1, 2)  # (B, H, L, D)
    k = module.k_proj(source).view(B, source.shape[1], G, D).transpose(1, 2)  # (B, G, S, D)
    k = k[:, [h // (H // G) for h in range(H)]]  # (B, H, S, D)
    weights = al.attention_weights(q, k, causal=module.causal, window=module.window,
                                   scale=1 / math.sqrt(D))
    _, ref = oracle.multi_head(x, source, source, oracle.module_params(module), num_heads=H,
                               num_kv_heads=G, causal=module.causal, window=module.window)
    return weights, ref


def test_maps_are_named_and_equal_attention_weights(model):
    seen = record_inputs(model)
    x, context = inputs()
    with al.capture_attention(model) as maps:
        model(x, context)
    assert set(maps) == set(NAMES)
    for name, heads in NAMES.items():
        module = model.get_submodule(name)
        got = maps[name]
        keys = S if name == "decoder.cross.attn" else L
        assert got.shape == (B, heads, L, keys)
        assert not got.requires_grad
        with torch.no_grad():
            weights, ref = expected_weights(module, seen[name])
        assert oracle.rel_err(got, weights) <= 1e-6
        assert oracle.rel_err(got, ref) <= 1e-6
        torch.testing.assert_close(got.sum(-1), torch.ones(B, heads, L, dtype=torch.float64))


def test_outputs_inside_equal_outputs_outside(model):
    model.float()
    x, context = inputs(torch.float32)
    outside = model(x, context)
    with al.capture_attention(model):
        inside = model(x, context)
    assert oracle.rel_err(inside, outside) <= 1e-5


def test_nothing_recorded_outside_the_context(model):
    x, context = inputs()
    with al.capture_attention(model) as maps:
        model(x, context)
    snapshot = {name: t.clone() for name, t in maps.items()}
    calls = {name: len(c) for name, c in maps.calls.items()}
    model(x * 2, context)
    assert set(maps) == set(snapshot)
    for name, t in maps.items():
        assert torch.equal(t, snapshot[name])
        assert len(maps.calls[name]) == calls[name]
    assert all(model.get_submodule(name)._recorder is None for name in NAMES)


def test_recorders_removed_after_an_exception(model):
    x, context = inputs()

    def fail_inside():
        with al.capture_attention(model):
            model(x, context)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert all(model.get_submodule(name)._recorder is None for name in NAMES)


def count_math_calls(monkeypatch):
    calls = []
    original = sdpa.math_attention

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(sdpa, "math_attention", counting)
    return calls


def test_fused_path_outside_and_math_path_inside(model, monkeypatch):
    calls = count_math_calls(monkeypatch)
    x, context = inputs()
    model(x, context)
    assert calls == []  # no module took the math path
    with al.capture_attention(model):
        model(x, context)
    assert len(calls) == len(NAMES)


@pytest.mark.parametrize(
    ("only", "chosen"),
    [
        (["encoder.layers.0.*"], {"encoder.layers.0.attn"}),
        (["encoder.*"], {"encoder.layers.0.attn", "encoder.layers.1.attn"}),
        (["decoder.*", "simple.attn"], {"decoder.layers.0.attn", "decoder.cross.attn",
                                        "simple.attn"}),
        (["*.cross.attn", "decoder.*"], {"decoder.layers.0.attn", "decoder.cross.attn"}),
    ],
)
def test_only_records_matching_modules(model, monkeypatch, only, chosen):
    calls = count_math_calls(monkeypatch)
    x, context = inputs()
    with al.capture_attention(model, only=only) as maps:
        model(x, context)
    assert set(maps) == chosen
    assert len(calls) == len(chosen)  # every other module kept its fused path
    assert all(model.get_submodule(name)._recorder is None for name in NAMES)


def test_bad_arguments(model):
    with pytest.raises(ValueError, match=r"'nope\.\*' matches no attention module; names: "
                                         r".*encoder\.layers\.0\.attn.*simple\.attn"):
        with al.capture_attention(model, only=["nope.*"]):
            pass
    with pytest.raises(TypeError, match=r"only must be a list of glob patterns"):
        with al.capture_attention(model, only="encoder.*"):
            pass
    with pytest.raises(ValueError, match=r"has no attnlab attention module"):
        with al.capture_attention(nn.Linear(2, 2)):
            pass
    with al.capture_attention(model), pytest.raises(ValueError, match=r"already being captured"):
        with al.capture_attention(model):
            pass
    assert all(model.get_submodule(name)._recorder is None for name in NAMES)


def test_each_call_is_kept(model):
    x, context = inputs()
    with al.capture_attention(model, only=["encoder.layers.0.attn"]) as maps:
        model(x, context)
        model(x[:, :3], context)
    calls = maps.calls["encoder.layers.0.attn"]
    assert [c.shape[-1] for c in calls] == [L, 3]
    assert maps["encoder.layers.0.attn"] is calls[-1]
