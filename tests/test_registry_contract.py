"""Every registered attention mechanism × the shared contract.

Parametrised over ``attnlab.registry.ATTENTION`` and built with
``attnlab.attention.mechanisms.build``, so a newly registered mechanism is picked up
automatically: output shape, oracle match (where the oracle knows the mechanism), masks,
causality, gradients, dropout, dtypes and errors.
"""

import pytest
import torch
from torch.autograd import gradcheck

import attnlab as al
import oracle
from attnlab.attention.mechanisms import AttentionSpec, build
from attnlab.registry import ATTENTION

NAMES = ATTENTION.names()
B, L, S, E, H = 2, 7, 11, 24, 8


def make(name, dtype=torch.float64, **kwargs):
    torch.manual_seed(len(name))
    return build(name, AttentionSpec(E, H, **kwargs)).to(dtype)


def try_build(name, **kwargs):
    """``(module, None)``, or ``(None, message)`` when the builder refuses the options."""
    try:
        return make(name, **kwargs), None
    except ValueError as err:
        return None, str(err)


def reference(module, x, key=None, mask=None):
    """The oracle's output for the module, or None if the oracle does not know it."""
    key = x if key is None else key
    if isinstance(module, al.MultiHeadAttention):
        return oracle.multi_head(x, key, key, oracle.module_params(module),
                                 num_heads=module.num_heads, num_kv_heads=module.num_kv_heads,
                                 mask=mask, causal=module.causal, window=module.window)[0]
    if isinstance(module, al.AdditiveAttention):
        return oracle.additive(
            x, key, key, wq=module.q_proj.weight, bq=module.q_proj.bias,
            wk=module.k_proj.weight, bk=module.k_proj.bias, w=module.score_proj.weight,
            wv=module.v_proj.weight, bv=module.v_proj.bias, wo=module.out_proj.weight,
            bo=module.out_proj.bias, mask=mask, causal=module.causal, window=module.window)[0]
    inner = getattr(module, "inner", None)
    if isinstance(inner, al.SimpleSelfAttention):
        flat = None if mask is None else mask[:, 0]
        return oracle.attention(x, x, x, flat, causal=inner.causal, scale=inner.scale)[0]
    return None


def test_registry_lists_the_core_mechanisms():
    assert {"multihead", "gqa", "mqa", "local", "causal", "additive", "simple"} <= set(NAMES)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown attention mechanism 'nope'; choose from: "
                                         r".*multihead.*additive"):
        build("nope", AttentionSpec(E, H))


@pytest.mark.parametrize("name", NAMES)
def test_self_attention_shape_and_dtype(name):
    module = make(name, torch.float32)
    x = oracle.randn(B, L, E, seed=1, dtype=torch.float32)
    out = module(x)
    assert out.shape == (B, L, E)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_cross_attention_shape_or_clear_refusal(name):
    module, refusal = try_build(name, kdim=5)
    if module is None:
        assert "cross" in refusal
        return
    out = module(oracle.randn(B, L, E, seed=1), oracle.randn(B, S, 5, seed=2))
    assert out.shape == (B, L, E)
    ref = reference(module, oracle.randn(B, L, E, seed=1), oracle.randn(B, S, 5, seed=2))
    if ref is not None:
        assert oracle.rel_err(out, ref) <= 1e-6


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_matches_oracle(name, causal):
    module = make(name, causal=causal)
    x = oracle.randn(B, L, E, seed=3)
    ref = reference(module, x)
    if ref is None:
        pytest.skip(f"the oracle does not know {type(module).__name__}")
    assert oracle.rel_err(module(x), ref) <= 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_padding_mask_matches_oracle_and_hides_keys(name):
    module = make(name)
    x = oracle.randn(B, L, E, seed=4)
    mask = al.padding_mask([L, 4], max_len=L)  # batch 1: keys 4.. are padding
    out = module(x, mask=mask)
    ref = reference(module, x, mask=mask)
    if ref is not None:
        assert oracle.rel_err(out, ref) <= 1e-6
    changed = x.clone()
    changed[1, 4:] = oracle.randn(L - 4, E, seed=5)
    # queries 0..3 of batch 1 see only keys 0..3, which did not change
    after = module(changed, mask=mask)
    torch.testing.assert_close(after[1, :4], out[1, :4], rtol=0, atol=1e-12)
    torch.testing.assert_close(after[0], out[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_causal_never_looks_ahead(name):
    module = make(name, causal=True)
    x = oracle.randn(B, L, E, seed=6)
    changed = x.clone()
    changed[:, 3:] = oracle.randn(B, L - 3, E, seed=7)
    torch.testing.assert_close(module(changed)[:, :3], module(x)[:, :3], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_finite_with_fully_masked_rows(name):
    module = make(name, torch.float32)
    x = oracle.randn(B, L, E, seed=8, dtype=torch.float32).requires_grad_()
    mask = al.padding_mask([0, 5], max_len=L)  # batch 0 sees no key at all
    out = module(x, mask=mask)
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad[1].abs().sum() > 0
    for p in module.parameters():
        assert torch.isfinite(p.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck(name):
    torch.manual_seed(0)
    module = build(name, AttentionSpec(4, 2, causal=True)).double()
    x = oracle.randn(1, 3, 4, seed=9).requires_grad_()
    mask = torch.tensor([True, True, False]).view(1, 1, 1, 3)
    assert gradcheck(lambda x, *params: module(x, mask=mask), (x, *module.parameters()))


@pytest.mark.parametrize("name", NAMES)
def test_float_mask_is_an_additive_bias(name):
    module = make(name)
    x = oracle.randn(B, L, E, seed=10)
    bias = oracle.rand_bias(B, 1, L, L, seed=11)
    bias[..., 0] = 0.0
    out = module(x, mask=bias)
    ref = reference(module, x, mask=bias)
    if ref is not None:
        assert oracle.rel_err(out, ref) <= 1e-6
    as_bool = ~torch.isneginf(bias)
    torch.testing.assert_close(module(x, mask=as_bool),
                               module(x, mask=bias.masked_fill(as_bool, 0.0)))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_close_to_float64(name, dtype):
    module = make(name)
    x = oracle.randn(B, L, E, seed=12)
    expected = module(x)
    out = module.to(dtype)(x.to(dtype))
    assert out.dtype == dtype
    assert oracle.rel_err(out, expected) <= 2e-2


@pytest.mark.parametrize(
    "name",
    NAMES,
)
def test_dropout_only_in_training(name):
    module, refusal = try_build(name, dropout=0.5)
    if module is None:
        assert "dropout" in refusal
        return
    x = oracle.randn(B, L, E, seed=13)
    module.eval()
    torch.testing.assert_close(module(x), module(x))
    module.train()
    assert not torch.allclose(module(x), module(x))


@pytest.mark.parametrize("name", NAMES)
def test_wrong_input_width(name):
    module = make(name)
    if isinstance(getattr(module, "inner", None), al.SimpleSelfAttention):
        pytest.skip("weightless attention accepts any width")
    with pytest.raises(ValueError, match=rf"must have shape \(B, L, {E}\).*got \(2, 7, 23\)"):
        module(torch.zeros(B, L, E - 1, dtype=torch.float64))


@pytest.mark.parametrize("name", NAMES)
def test_bad_mask(name):
    module = make(name)
    x = oracle.randn(B, L, E, seed=14)
    with pytest.raises(ValueError, match=r"mask of shape \(2, 1, 1, 6\) does not broadcast"):
        module(x, mask=torch.ones(B, 1, 1, L - 1, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"mask .*torch\.int64"):
        module(x, mask=torch.ones(B, 1, 1, L, dtype=torch.int64))
