"""CausalSelfAttention: never looks ahead; equals the oracle with causal=True."""

import pytest
import torch
from torch.autograd import gradcheck

import attnlab as al
import oracle

B, L, E = 2, 7, 12


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mask_kind", [None, "pad", "full"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("num_heads", [1, 3, 4])
def test_matches_oracle(num_heads, bias, mask_kind, dtype):
    torch.manual_seed(num_heads)
    module = al.CausalSelfAttention(E, num_heads=num_heads, bias=bias).to(dtype)
    x = oracle.randn(B, L, E, seed=1, dtype=dtype)
    mask = None
    if mask_kind == "pad":
        mask = oracle.rand_bool(B, 1, 1, L, seed=2)
    elif mask_kind == "full":
        mask = oracle.rand_bool(B, num_heads, L, L, seed=3)
    out = module(x, mask)
    ref, _ = oracle.multi_head(x, x, x, oracle.module_params(module), num_heads=num_heads,
                               mask=mask, causal=True)
    assert oracle.rel_err(out, ref) <= oracle.tolerance(dtype)


@pytest.mark.parametrize("split", [1, 3, 6])
def test_future_tokens_never_change_past_outputs(split):
    torch.manual_seed(0)
    module = al.CausalSelfAttention(E, num_heads=3).double()
    x = oracle.randn(B, L, E, seed=4)
    changed = x.clone()
    changed[:, split:] = oracle.randn(B, L - split, E, seed=5) * 10
    before, after = module(x), module(changed)
    torch.testing.assert_close(before[:, :split], after[:, :split], rtol=0, atol=1e-12)
    assert not torch.allclose(before[:, split:], after[:, split:])


def test_prefix_equals_shorter_sequence():
    torch.manual_seed(0)
    module = al.CausalSelfAttention(E, num_heads=2).double()
    x = oracle.randn(B, L, E, seed=6)
    torch.testing.assert_close(module(x)[:, :4], module(x[:, :4]))


def test_gradcheck():
    torch.manual_seed(0)
    module = al.CausalSelfAttention(4, num_heads=2, bias=True).double()
    x = oracle.randn(1, 3, 4, seed=7).requires_grad_()
    assert gradcheck(lambda x, *p: module(x), (x, *module.parameters()))


def test_bad_input():
    with pytest.raises(ValueError, match=r"embed_dim \(12\) must be divisible by num_heads \(5\)"):
        al.CausalSelfAttention(12, num_heads=5)
    with pytest.raises(ValueError, match=r"query must have shape \(B, L, 12\).*got \(2, 7, 11\)"):
        al.CausalSelfAttention(12)(torch.randn(2, 7, 11))
