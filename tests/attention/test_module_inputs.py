"""Hostile inputs to the attention modules (issue 11): answered right or refused clearly."""

import pytest
import torch

import attnlab as al
import oracle
from attnlab.attention.mechanisms import AttentionSpec, build

BOOL_OPTIONS = [  # (constructor, option)
    (lambda v: al.MultiHeadAttention(8, 2, causal=v), "causal"),
    (lambda v: al.MultiHeadAttention(8, 2, bias=v), "bias"),
    (lambda v: al.SelfAttention(8, causal=v), "causal"),
    (lambda v: al.SelfAttention(8, bias=v), "bias"),
    (lambda v: al.CausalSelfAttention(8, bias=v), "bias"),
    (lambda v: al.CrossAttention(8, bias=v), "bias"),
    (lambda v: al.SimpleSelfAttention(causal=v), "causal"),
    (lambda v: al.AdditiveAttention(8, causal=v), "causal"),
    (lambda v: build("additive", AttentionSpec(8, 2, bias=v)), "bias"),
    (lambda v: build("simple", AttentionSpec(8, 1, causal=v)), "causal"),
]


@pytest.mark.parametrize("value", ["False", "no", None, 1])
@pytest.mark.parametrize(("build", "option"), BOOL_OPTIONS)
def test_bool_options_must_be_bools(build, option, value):
    with pytest.raises(TypeError, match=rf"{option} must be True or False, got"):
        build(value)


def _mha_oracle(module, query, key, mask=None):
    return oracle.multi_head(query, key, key, oracle.module_params(module),
                             num_heads=module.num_heads, num_kv_heads=module.num_kv_heads,
                             mask=mask, causal=module.causal, window=module.window)[0]


MODULES = {
    "mha": lambda: al.MultiHeadAttention(8, 2),
    "gqa": lambda: al.MultiHeadAttention(8, 4, num_kv_heads=2),
    "causal": lambda: al.CausalSelfAttention(8, num_heads=2, bias=True),
    "window": lambda: al.MultiHeadAttention(8, 2, window=2),
    "cross": lambda: al.CrossAttention(8, context_dim=6, num_heads=2, bias=True),
}


@pytest.mark.parametrize("name", list(MODULES))
@pytest.mark.parametrize(("B", "L", "S"), [(0, 5, 7), (2, 0, 7), (2, 5, 0), (1, 1, 0)])
def test_multihead_family_with_empty_dims(name, B, L, S):
    """Empty B or L: empty output; S = 0: every row sees nothing, attention gives zeros.

    Self-attention modules have S = L, so only the cross cases use S separately.
    """
    torch.manual_seed(0)
    module = MODULES[name]().double()
    cross = name in ("mha", "gqa", "cross")
    if not cross and S != L and L != 0:
        S = L
    query = oracle.randn(B, L, 8, seed=1).requires_grad_()
    key = oracle.randn(B, S if cross else L, module.kdim, seed=2)
    out = module(query, key) if name == "cross" else module(query, key if cross else None)
    assert out.shape == (B, L, 8)
    expected = _mha_oracle(module, query, key if cross else query)
    assert oracle.rel_err(out, expected) <= 1e-6
    out.sum().backward()
    assert query.grad.shape == query.shape
    assert bool(torch.isfinite(query.grad).all())


@pytest.mark.parametrize(("B", "L", "S"), [(0, 5, 7), (2, 0, 7), (2, 5, 0)])
def test_additive_and_simple_with_empty_dims(B, L, S):
    add = al.AdditiveAttention(8, kdim=6).double()
    out = add(oracle.randn(B, L, 8, seed=1), oracle.randn(B, S, 6, seed=2))
    assert out.shape == (B, L, 8)
    assert bool(torch.isfinite(out).all())
    if S == 0 and B * L:
        assert bool((out == 0).all())  # no bias anywhere on its path: zeros end to end
    simple = al.SimpleSelfAttention(causal=True)(oracle.randn(B, L, 8, seed=3))
    assert simple.shape == (B, L, 8)


def test_cache_with_an_empty_prefill_and_an_empty_batch():
    torch.manual_seed(0)
    mha = al.MultiHeadAttention(8, 2, causal=True).double()
    x = oracle.randn(2, 4, 8, seed=1)
    cache = al.KVCache()
    assert mha(x[:, :0], cache=cache).shape == (2, 0, 8)  # L = 0 prefill appends nothing
    stepped = torch.cat([mha(x[:, i:i + 1], cache=cache) for i in range(4)], dim=1)
    assert oracle.rel_err(stepped, _mha_oracle(mha, x, x)) <= 1e-6
    empty = al.KVCache()
    mha(x[:0], cache=empty)
    assert mha(x[:0, :1], cache=empty).shape == (0, 1, 8)


def test_zero_width_is_refused():
    with pytest.raises(ValueError, match=r"x needs a width E >= 1, got shape \(2, 5, 0\)"):
        al.SimpleSelfAttention()(torch.randn(2, 5, 0))
    with pytest.raises(ValueError, match=r"embed_dim must be >= 1, got 0"):
        al.MultiHeadAttention(0, 1)


def test_meta_inputs_and_parameters_are_refused():
    meta = torch.randn(2, 5, 8, device="meta")
    x = torch.randn(2, 5, 8)
    mha = al.MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=r"query is on the meta device"):
        mha(meta)
    with pytest.raises(ValueError, match=r"key is on the meta device"):
        mha(x, meta)
    with pytest.raises(ValueError, match=r"mask is on the meta device"):
        mha(x, mask=torch.ones(5, 5, dtype=torch.bool, device="meta"))
    with pytest.raises(ValueError, match=r"query is on cpu, but the module's parameters on meta"):
        al.MultiHeadAttention(8, 2).to("meta")(x)
    with pytest.raises(ValueError, match=r"x is on the meta device"):
        al.SimpleSelfAttention()(meta)
    with pytest.raises(ValueError, match=r"query is on the meta device"):
        al.AdditiveAttention(8)(meta)


@pytest.mark.parametrize("cache", [{}, [al.KVCache()], "cache", 3])
def test_a_cache_that_is_not_a_kvcache_is_refused(cache):
    for module in (al.MultiHeadAttention(8, 2), al.AdditiveAttention(8)):
        with pytest.raises(TypeError, match=r"cache must be a KVCache \(or None\), got"):
            module(torch.randn(1, 2, 8), cache=cache)
    with pytest.raises(TypeError, match=r"cache must be a KVCache"):
        al.SimpleSelfAttention()(torch.randn(1, 2, 8), cache=cache)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_float_mask_with_nan_or_plus_inf_is_refused(bad):
    mask = torch.zeros(5, 7)
    mask[3, 1] = bad
    q, kv = torch.randn(2, 5, 8), torch.randn(2, 7, 8)
    for module in (al.MultiHeadAttention(8, 2), al.AdditiveAttention(8)):
        with pytest.raises(ValueError, match=r"mask \(an additive float bias\) holds"):
            module(q, kv, mask=mask)


def test_simple_attention_scale_is_finite_and_cannot_overflow():
    with pytest.raises(ValueError, match=r"scale must be finite, got inf"):
        al.SimpleSelfAttention(scale=float("inf"))
    with pytest.raises(ValueError, match=r"scale=1e\+300 can make the scores overflow"):
        al.SimpleSelfAttention(scale=1e300)(torch.randn(2, 5, 8))
    x = oracle.randn(2, 5, 8, seed=4)
    out = al.SimpleSelfAttention(scale=3.0)(x)
    assert oracle.rel_err(out, oracle.attention(x, x, x, scale=3.0)[0]) <= 1e-6
