"""CrossAttention: queries from x, keys and values from a context of another width."""

import pytest
import torch
from torch.autograd import gradcheck

import attnlab as al
import oracle

B, E, C = 2, 12, 5  # embed_dim 12, context_dim 5


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mask_kind", [None, "pad", "ls-float"])
@pytest.mark.parametrize(("L", "S"), [(7, 11), (11, 7), (1, 11), (7, 1)])
@pytest.mark.parametrize("num_heads", [1, 3])
def test_matches_oracle(num_heads, L, S, mask_kind, dtype):
    torch.manual_seed(L + S)
    module = al.CrossAttention(E, context_dim=C, num_heads=num_heads, bias=True).to(dtype)
    assert module.k_proj.in_features == C
    assert module.v_proj.in_features == C
    x = oracle.randn(B, L, E, seed=1, dtype=dtype)
    context = oracle.randn(B, S, C, seed=2, dtype=dtype)
    mask = None
    if mask_kind == "pad":
        mask = oracle.rand_bool(B, 1, 1, S, seed=3)
        mask[:, ..., 0] = True
    elif mask_kind == "ls-float":
        mask = oracle.rand_bias(L, S, seed=4, dtype=dtype)
    out = module(x, context, mask)
    ref, _ = oracle.multi_head(x, context, context, oracle.module_params(module),
                               num_heads=num_heads, mask=mask)
    assert out.shape == (B, L, E)
    assert oracle.rel_err(out, ref) <= oracle.tolerance(dtype)


def test_context_dim_defaults_to_embed_dim():
    module = al.CrossAttention(E)
    assert module.k_proj.in_features == E


def test_never_causal():
    torch.manual_seed(0)
    module = al.CrossAttention(E, context_dim=C).double()
    x, context = oracle.randn(1, 3, E, seed=5), oracle.randn(1, 6, C, seed=6)
    changed = context.clone()
    changed[:, -1] += 1.0  # the last source position matters to the first target position
    assert not torch.allclose(module(x, context)[:, 0], module(x, changed)[:, 0])


def test_gradcheck():
    torch.manual_seed(0)
    module = al.CrossAttention(4, context_dim=3, num_heads=2, bias=True).double()
    x = oracle.randn(1, 2, 4, seed=7).requires_grad_()
    context = oracle.randn(1, 5, 3, seed=8).requires_grad_()
    assert gradcheck(lambda x, c, *p: module(x, c), (x, context, *module.parameters()))


def test_wrong_context_width_names_context():
    with pytest.raises(ValueError, match=r"context.*context_dim.*\(2, 5, 6\)"):
        al.CrossAttention(E, context_dim=C)(torch.randn(2, 3, E), torch.randn(2, 5, 6))


def test_bad_input():
    module = al.CrossAttention(E, context_dim=C)
    with pytest.raises(ValueError, match=r"must have shape \(B, .*5\).*got \(2, 5, 6\)"):
        module(torch.randn(2, 3, E), torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match=r"query must have shape \(B, L, 12\).*got \(2, 3, 5\)"):
        module(torch.randn(2, 3, C), torch.randn(2, 5, C))
    with pytest.raises(ValueError, match="same batch size B, got 2, 3, 3"):
        module(torch.randn(2, 3, E), torch.randn(3, 5, C))
