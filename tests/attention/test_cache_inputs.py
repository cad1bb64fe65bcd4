"""KVCache under hostile use (issue 11): it never casts silently, and reset() starts over."""

import pytest
import torch

import attnlab as al


def kv(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype)


@pytest.mark.parametrize(("k", "v", "error", "message"), [
    (kv(1, 2, 3, 4), kv(1, 2, 5, 4), ValueError, r"agree on \(B, G, L\), got k \(1, 2, 3, 4\) "
                                                 r"and v \(1, 2, 5, 4\)"),
    (kv(1, 2, 3, 4), kv(2, 2, 3, 4), ValueError, r"agree on \(B, G, L\)"),
    ([1, 2], kv(1, 2, 3, 4), TypeError, r"k must be a floating tensor, got list"),
    (kv(1, 2, 3, 4), torch.ones(1, 2, 3, 4, dtype=torch.long), TypeError,
     r"v must be a floating tensor, got torch.int64 tensor"),
    (kv(2, 3, 4), kv(2, 3, 4), ValueError, r"k must have shape \(B, G, L, D\), got \(2, 3, 4\)"),
    (kv(1, 2, 3, 4), kv(1, 2, 3, 4, dtype=torch.float64), TypeError,
     r"k and v must share a dtype, got torch.float32 and torch.float64"),
    (torch.zeros(1, 2, 3, 4, device="meta"), torch.zeros(1, 2, 3, 4, device="meta"), ValueError,
     r"one device that holds data, got meta and meta"),
])
def test_update_refuses_keys_and_values_that_do_not_belong_together(k, v, error, message):
    with pytest.raises(error, match=message):
        al.KVCache().update(k, v)


def test_values_may_be_wider_than_keys():
    keys, values = al.KVCache().update(kv(1, 1, 3, 4), kv(1, 1, 3, 6))
    assert keys.shape == (1, 1, 3, 4)
    assert values.shape == (1, 1, 3, 6)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_the_dtype_given_is_kept(dtype):
    k = kv(1, 2, 3, 4, dtype=dtype)
    keys, values = al.KVCache(max_len=8).update(k, k)
    assert keys.dtype == dtype
    assert torch.equal(keys, k)
    assert torch.equal(values, k)


def test_a_different_dtype_while_holding_positions_is_refused():
    cache = al.KVCache()
    cache.update(kv(1, 2, 3, 4), kv(1, 2, 3, 4))
    with pytest.raises(TypeError, match=r"holds keys/values of dtype torch.float32/torch.float32, "
                                        r"got torch.float64/torch.float64; it does not cast"):
        cache.update(kv(1, 2, 1, 4, dtype=torch.float64), kv(1, 2, 1, 4, dtype=torch.float64))
    assert len(cache) == 3  # nothing appended


@pytest.mark.parametrize("max_len", [None, 8])
def test_reset_takes_a_new_batch_size_width_and_dtype(max_len):
    cache = al.KVCache(max_len=max_len)
    cache.update(kv(1, 2, 3, 4), kv(1, 2, 3, 4))
    cache.reset()
    k, v = kv(3, 2, 2, 5, dtype=torch.float64), kv(3, 2, 2, 5, dtype=torch.float64)
    keys, values = cache.update(k, v)
    assert torch.equal(keys, k)
    assert torch.equal(values, v)
    k2 = kv(3, 2, 1, 5, dtype=torch.float64)
    keys, _ = cache.update(k2, k2)
    assert torch.equal(keys, torch.cat([k, k2], dim=2))
    cache.reset()  # the same shape again: storage is reused
    storage = cache._k
    cache.update(k2, k2)
    assert cache._k is storage


def test_a_new_batch_size_while_holding_positions_is_refused():
    mha = al.MultiHeadAttention(8, 2)
    cache = al.KVCache()
    mha(torch.randn(1, 2, 8), cache=cache)
    with pytest.raises(ValueError, match=r"cache holds keys of shape \(B, G, \*, D\) = \(1, 2\) x 4"
                                         r".*reset\(\) it to start over"):
        mha(torch.randn(2, 1, 8), cache=cache)
    cache.reset()
    assert mha(torch.randn(2, 1, 8), cache=cache).shape == (2, 1, 8)
