"""The seed API: compat.SelfAttention(emd_dim) and compat.MultiAttention(emd_dim, num_heads)."""

import pytest
import torch

import attnlab as al
import oracle


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("emd_dim", [5, 8])
def test_self_attention_matches_oracle(emd_dim, dtype):
    torch.manual_seed(emd_dim)
    module = al.compat.SelfAttention(emd_dim).to(dtype)
    assert isinstance(module, al.SelfAttention)
    x = oracle.randn(2, 7, emd_dim, seed=1, dtype=dtype)
    ref, _ = oracle.multi_head(x, x, x, oracle.module_params(module), num_heads=1)
    assert oracle.rel_err(module(x), ref) <= oracle.tolerance(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("emd_dim", "num_heads"), [(12, 3), (8, 8), (6, 1)])
def test_multi_attention_matches_oracle(emd_dim, num_heads, dtype):
    torch.manual_seed(emd_dim)
    module = al.compat.MultiAttention(emd_dim, num_heads).to(dtype)
    assert isinstance(module, al.MultiHeadAttention)
    x = oracle.randn(2, 7, emd_dim, seed=2, dtype=dtype)
    ref, _ = oracle.multi_head(x, x, x, oracle.module_params(module), num_heads=num_heads)
    out = module(x)
    assert out.shape == (2, 7, emd_dim)
    assert oracle.rel_err(out, ref) <= oracle.tolerance(dtype)


def test_seed_argument_spellings():
    assert al.compat.SelfAttention(emd_dim=4).q_proj.in_features == 4
    assert al.compat.MultiAttention(emd_dim=6, num_heads=2).num_heads == 2
    with pytest.raises(ValueError, match=r"embed_dim \(6\) must be divisible by num_heads \(4\)"):
        al.compat.MultiAttention(6, 4)
