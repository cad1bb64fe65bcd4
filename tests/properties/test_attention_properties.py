"""Properties of attention that hold for any sizes, masks, causality and windows."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import attnlab as al
import oracle

SETTINGS = settings(max_examples=30, deadline=None)
windows = st.one_of(st.none(), st.integers(1, 12))


@SETTINGS
@given(L=st.integers(1, 9), S=st.integers(1, 9), E=st.integers(1, 6), causal=st.booleans(),
       window=windows, masked=st.booleans(), seed=st.integers(0, 10_000))
def test_weight_rows_sum_to_one_or_zero(L, S, E, causal, window, masked, seed):
    q, k = oracle.randn(2, L, E, seed=seed), oracle.randn(2, S, E, seed=seed + 1)
    mask = oracle.rand_bool(2, L, S, seed=seed + 2, p_true=0.6) if masked else None
    weights = al.attention_weights(q, k, mask, causal=causal, window=window)
    visible = oracle.visibility(L, S, causal, window).expand(2, L, S)
    if mask is not None:
        visible = visible & mask
    assert (weights[~visible] == 0).all()
    expected = visible.any(-1).double()
    torch.testing.assert_close(weights.sum(-1), expected)


@SETTINGS
@given(L=st.integers(1, 9), E=st.integers(1, 6), scale=st.one_of(st.none(), st.floats(0.1, 3)),
       seed=st.integers(0, 10_000), data=st.data())
def test_simple_self_attention_is_permutation_equivariant(L, E, scale, seed, data):
    perm = torch.tensor(data.draw(st.permutations(range(L))))
    x = oracle.randn(2, L, E, seed=seed)
    module = al.SimpleSelfAttention(scale=scale)
    torch.testing.assert_close(module(x[:, perm]), module(x)[:, perm])


@SETTINGS
@given(L=st.integers(1, 9), heads=st.sampled_from([(1, 1), (3, 3), (6, 2), (6, 1)]),
       seed=st.integers(0, 10_000), data=st.data())
def test_multihead_attention_is_permutation_equivariant(L, heads, seed, data):
    num_heads, num_kv_heads = heads
    torch.manual_seed(seed)
    module = al.MultiHeadAttention(12, num_heads, num_kv_heads=num_kv_heads).double()
    perm = torch.tensor(data.draw(st.permutations(range(L))))
    x = oracle.randn(2, L, 12, seed=seed)
    torch.testing.assert_close(module(x[:, perm]), module(x)[:, perm])


@SETTINGS
@given(L=st.integers(1, 9), S=st.integers(2, 9), causal=st.booleans(), window=windows,
       extra=st.booleans(), seed=st.integers(0, 10_000), data=st.data())
def test_a_masked_key_never_changes_the_output(L, S, causal, window, extra, seed, data):
    j = data.draw(st.integers(0, S - 1))
    q, k, v = (oracle.randn(2, 3, n, 4, seed=seed + i) for i, n in enumerate((L, S, S)))
    mask = torch.ones(2, 1, 1, S, dtype=torch.bool)
    if extra:  # a mask with a query axis as well (the math path when a window is set)
        mask = oracle.rand_bool(2, 1, L, S, seed=seed + 3)
    mask[..., j] = False
    before = al.scaled_dot_product_attention(q, k, v, mask, causal=causal, window=window)
    k2, v2 = k.clone(), v.clone()
    k2[..., j, :] = oracle.randn(2, 3, 4, seed=seed + 4) * 10
    v2[..., j, :] = oracle.randn(2, 3, 4, seed=seed + 5) * 10
    after = al.scaled_dot_product_attention(q, k2, v2, mask, causal=causal, window=window)
    torch.testing.assert_close(after, before, rtol=0, atol=1e-12)


@SETTINGS
@given(L=st.integers(2, 12), window=windows, seed=st.integers(0, 10_000), data=st.data())
def test_causal_outputs_never_see_the_future(L, window, seed, data):
    t = data.draw(st.integers(1, L - 1))
    x = oracle.randn(2, 3, L, 5, seed=seed)
    changed = x.clone()
    changed[..., t:, :] = oracle.randn(2, 3, L - t, 5, seed=seed + 1) * 5
    before = al.scaled_dot_product_attention(x, x, x, causal=True, window=window)
    after = al.scaled_dot_product_attention(changed, changed, changed, causal=True,
                                            window=window)
    torch.testing.assert_close(after[..., :t, :], before[..., :t, :], rtol=0, atol=1e-12)


@SETTINGS
@given(L=st.integers(2, 10), num_heads=st.sampled_from([1, 2, 3]), seed=st.integers(0, 10_000),
       data=st.data())
def test_causal_module_never_sees_the_future(L, num_heads, seed, data):
    t = data.draw(st.integers(1, L - 1))
    torch.manual_seed(seed)
    module = al.CausalSelfAttention(6, num_heads=num_heads).double()
    x = oracle.randn(1, L, 6, seed=seed)
    changed = x.clone()
    changed[:, t:] = oracle.randn(1, L - t, 6, seed=seed + 1) * 5
    torch.testing.assert_close(module(changed)[:, :t], module(x)[:, :t], rtol=0, atol=1e-12)


@SETTINGS
@given(L=st.integers(1, 8), S=st.integers(1, 8), causal=st.booleans(), window=windows,
       seed=st.integers(0, 10_000))
def test_output_equals_weights_times_values(L, S, causal, window, seed):
    q, k, v = (oracle.randn(2, n, 3, seed=seed + i) for i, n in enumerate((L, S, S)))
    out = al.scaled_dot_product_attention(q, k, v, causal=causal, window=window)
    weights = al.attention_weights(q, k, causal=causal, window=window)
    torch.testing.assert_close(out, weights @ v)
