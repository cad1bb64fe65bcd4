"""SimpleSelfAttention (no weights) and SelfAttention (one head with projections)."""

import math

import pytest
import torch
from torch.autograd import gradcheck

import attnlab as al
import oracle

B, L, E = 2, 7, 5


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mask_kind", [None, "pad", "square-float"])
@pytest.mark.parametrize("scale", [None, 1.0, 0.3])
def test_simple_matches_oracle(scale, mask_kind, dtype):
    x = oracle.randn(B, L, E, seed=1, dtype=dtype)
    mask = None
    if mask_kind == "pad":
        mask = oracle.rand_bool(B, 1, 1, L, seed=2)
    elif mask_kind == "square-float":
        mask = oracle.rand_bias(L, L, seed=3, dtype=dtype)
    out = al.SimpleSelfAttention(scale=scale)(x, mask)
    ref, _ = oracle.attention(x, x, x, mask if mask is None or mask.dim() < 4 else mask[:, 0],
                              scale=scale)
    assert out.shape == (B, L, E)
    assert oracle.rel_err(out, ref) <= oracle.tolerance(dtype)


def test_simple_default_scale_is_inverse_sqrt_e_and_one_is_unscaled():
    x = oracle.randn(1, 4, 9, seed=4)
    default, unscaled = al.SimpleSelfAttention()(x), al.SimpleSelfAttention(scale=1.0)(x)
    assert oracle.rel_err(default, oracle.attention(x, x, x, scale=1 / 3)[0]) <= 1e-6
    assert oracle.rel_err(unscaled, oracle.attention(x, x, x, scale=1.0)[0]) <= 1e-6
    assert oracle.rel_err(default, unscaled) > 1e-3


def test_simple_has_no_parameters_and_gradcheck():
    module = al.SimpleSelfAttention()
    assert list(module.parameters()) == []
    x = oracle.randn(1, 4, 3, seed=5).requires_grad_()
    assert gradcheck(module, (x,))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mask_kind", [None, "pad"])
def test_self_attention_matches_oracle(causal, bias, mask_kind, dtype):
    torch.manual_seed(3)
    module = al.SelfAttention(E, bias=bias, causal=causal).to(dtype)
    assert (module.q_proj.bias is not None) == bias
    x = oracle.randn(B, L, E, seed=6, dtype=dtype)
    mask = None if mask_kind is None else oracle.rand_bool(B, 1, 1, L, seed=7)
    out = module(x, mask)
    ref, _ = oracle.multi_head(x, x, x, oracle.module_params(module), num_heads=1, mask=mask,
                               causal=causal)
    assert oracle.rel_err(out, ref) <= oracle.tolerance(dtype)


def test_self_attention_scale_is_inverse_sqrt_embed_dim():
    torch.manual_seed(0)
    module = al.SelfAttention(9).double()
    x = oracle.randn(1, 4, 9, seed=8)
    params = oracle.module_params(module)
    ref, _ = oracle.multi_head(x, x, x, params, num_heads=1, scale=1 / math.sqrt(9))
    assert oracle.rel_err(module(x), ref) <= 1e-6


def test_self_attention_causal_ignores_the_future():
    torch.manual_seed(0)
    module = al.SelfAttention(E, causal=True).double()
    x = oracle.randn(B, L, E, seed=9)
    changed = x.clone()
    changed[:, 4:] = oracle.randn(B, L - 4, E, seed=10)
    torch.testing.assert_close(module(x)[:, :4], module(changed)[:, :4])


def test_self_attention_dropout_only_in_training():
    torch.manual_seed(0)
    module = al.SelfAttention(E, dropout=0.4).double()
    x = oracle.randn(B, L, E, seed=11)
    module.eval()
    torch.testing.assert_close(module(x), module(x))
    module.train()
    assert not torch.allclose(module(x), module(x))


def test_self_attention_gradcheck():
    torch.manual_seed(0)
    module = al.SelfAttention(3, bias=True, causal=True).double()
    x = oracle.randn(1, 4, 3, seed=12).requires_grad_()
    assert gradcheck(lambda x, *p: module(x), (x, *module.parameters()))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: al.SimpleSelfAttention(scale=0.0), ValueError, r"scale must be > 0(\.0)?, got 0"),
        (lambda: al.SimpleSelfAttention(scale=-1.0), ValueError, r"scale must be > 0"),
        (lambda: al.SimpleSelfAttention()(torch.randn(3, 4)), ValueError,
         r"x must have shape \(B, L, E\), got \(3, 4\)"),
        (lambda: al.SimpleSelfAttention()(torch.randn(2, 3, 4), torch.ones(3, 4, dtype=torch.bool)),
         ValueError, r"mask of shape \(3, 4\) does not broadcast to \(2, 1, 3, 3\)"),
        (lambda: al.SelfAttention(0), ValueError, r"embed_dim must be >= 1, got 0"),
        (lambda: al.SelfAttention(6, dropout=1.0), ValueError, r"dropout must be < 1"),
        (lambda: al.SelfAttention(6)(torch.randn(2, 3, 5)), ValueError,
         r"x must have shape \(B, L, 6\).*got \(2, 3, 5\)"),
        (lambda: al.SelfAttention(6)(torch.randn(2, 3, 6).long()), TypeError,
         r"x must be a floating tensor, got dtype torch\.int64"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("mask_kind", [None, "pad"])
@pytest.mark.parametrize("scale", [None, 1.0])
def test_simple_causal_matches_oracle(scale, mask_kind):
    x = oracle.randn(B, L, E, seed=13)
    mask = None if mask_kind is None else oracle.rand_bool(B, 1, 1, L, seed=14)
    out = al.SimpleSelfAttention(scale=scale, causal=True)(x, mask)
    ref, _ = oracle.attention(x, x, x, None if mask is None else mask[:, 0], causal=True,
                              scale=scale)
    assert oracle.rel_err(out, ref) <= 1e-6


@pytest.mark.parametrize("chunks", [[1] * L, [2, 3, 2], [4, 3]])
def test_simple_causal_cache_equals_full_forward(chunks):
    module = al.SimpleSelfAttention(causal=True)
    x = oracle.randn(B, L, E, seed=15)
    cache, outs, start = al.KVCache(), [], 0
    for size in chunks:
        outs.append(module(x[:, start:start + size], cache=cache))
        start += size
    assert len(cache) == L
    assert oracle.rel_err(torch.cat(outs, dim=1), module(x)) <= 1e-6
