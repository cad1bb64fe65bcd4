"""KVCache and incremental decoding: cached steps equal the same positions of a full forward."""

import pytest
import torch
from torch import nn

import attnlab as al
import oracle

B, E, H = 2, 12, 4
L = 9


class Shift(nn.Module):
    """A rotary-like positional transform: adds a position-dependent vector to q and k."""

    def forward(self, x, offset=0):
        length, width = x.shape[-2], x.shape[-1]
        positions = torch.arange(offset, offset + length, dtype=x.dtype)[:, None]  # (L, 1)
        return x + 0.3 * positions * torch.linspace(-1.0, 1.0, width, dtype=x.dtype)


def decode(module, x, chunks, cache):
    outs, start = [], 0
    for size in chunks:
        outs.append(module(x[:, start:start + size], cache=cache))
        start += size
    assert start == x.shape[1]
    return torch.cat(outs, dim=1)


CHUNKS = [pytest.param([1] * L, id="token-by-token"), pytest.param([2, 3, 2, 1, 1], id="2-3"),
          pytest.param([3, 3, 3], id="3s"), pytest.param([4, 1, 4], id="prefill")]


@pytest.mark.parametrize("chunks", CHUNKS)
@pytest.mark.parametrize(
    ("num_kv_heads", "window", "rotary"),
    [(None, None, False), (2, None, False), (1, 3, False), (None, 2, True), (2, 1, True)],
)
def test_decoding_equals_full_causal_forward(num_kv_heads, window, rotary, chunks):
    torch.manual_seed(0)
    module = al.MultiHeadAttention(E, H, num_kv_heads=num_kv_heads, causal=True, window=window,
                                   rotary=Shift() if rotary else None).double()
    x = oracle.randn(B, L, E, seed=1)
    full = module(x)
    cache = al.KVCache()
    stepped = decode(module, x, chunks, cache)
    assert len(cache) == L
    assert oracle.rel_err(stepped, full) <= 1e-6


@pytest.mark.parametrize("window", [None, 3])
def test_full_forward_with_rotary_matches_oracle(window):
    torch.manual_seed(0)
    module = al.MultiHeadAttention(E, H, num_kv_heads=2, causal=True, window=window,
                                   rotary=Shift()).double()
    x = oracle.randn(B, L, E, seed=2)
    params = oracle.module_params(module)
    D = E // H
    q = oracle.linear(x, params["q_w"], params["q_b"]).view(B, L, H, D).transpose(1, 2)
    k = oracle.linear(x, params["k_w"], params["k_b"]).view(B, L, 2, D).transpose(1, 2)
    v = oracle.linear(x, params["v_w"], params["v_b"]).view(B, L, 2, D).transpose(1, 2)
    shift = 0.3 * torch.arange(L, dtype=torch.float64)[:, None] * torch.linspace(
        -1.0, 1.0, D, dtype=torch.float64)  # position t adds 0.3·t·linspace
    heads = [oracle.attention(q[:, h] + shift, k[:, h // 2] + shift, v[:, h // 2],
                              causal=True, window=window)[0] for h in range(H)]
    ref = oracle.linear(torch.cat(heads, dim=-1), params["o_w"], params["o_b"])
    assert oracle.rel_err(module(x), ref) <= 1e-6


def test_rotary_offsets_matter():
    # Guard: the shift must change the output, else the offset test above proves nothing.
    torch.manual_seed(0)
    plain = al.MultiHeadAttention(E, H, causal=True).double()
    shifted = al.MultiHeadAttention(E, H, causal=True, rotary=Shift()).double()
    shifted.load_state_dict(plain.state_dict())
    x = oracle.randn(B, L, E, seed=3)
    assert oracle.rel_err(shifted(x), plain(x)) > 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_decoding_with_preallocated_cache(dtype):
    torch.manual_seed(0)
    module = al.CausalSelfAttention(E, num_heads=H).to(dtype)
    x = oracle.randn(B, L, E, seed=4, dtype=dtype)
    stepped = decode(module, x, [1] * L, al.KVCache(max_len=L))
    assert oracle.rel_err(stepped, module(x)) <= oracle.tolerance(dtype)


def test_max_len_exceeded():
    module = al.CausalSelfAttention(E, num_heads=H)
    cache = al.KVCache(max_len=4)
    module(torch.randn(B, 3, E), cache=cache)
    with pytest.raises(ValueError, match=r"max_len \(4\) exceeded: 3 cached \+ 2 new"):
        module(torch.randn(B, 2, E), cache=cache)


def test_cross_attention_cache_reuses_the_context():
    torch.manual_seed(0)
    module = al.CrossAttention(E, context_dim=5, num_heads=H).double()
    x, context = oracle.randn(B, L, E, seed=5), oracle.randn(B, 7, 5, seed=6)
    full = module(x, context)
    calls = []
    module.k_proj.register_forward_hook(lambda *args: calls.append(1))
    cache = al.KVCache()
    steps = [module(x[:, t:t + 1], context, cache=cache) for t in range(L)]
    assert oracle.rel_err(torch.cat(steps, dim=1), full) <= 1e-6
    assert len(calls) == 1  # the context was projected once
    assert len(cache) == 7
    other = module(x[:, :1], torch.zeros_like(context), cache=cache)
    torch.testing.assert_close(other, steps[0])  # cached projection, not the new context


# --- KVCache itself -----------------------------------------------------------------------


def test_update_appends_and_grows():
    cache = al.KVCache()
    keys, values = oracle.randn(1, 2, 40, 3, seed=7), oracle.randn(1, 2, 40, 5, seed=8)
    for t in range(0, 40, 7):
        k, v = cache.update(keys[..., t:t + 7, :], values[..., t:t + 7, :])
        assert torch.equal(k, keys[..., :t + 7, :][..., :40, :])
        assert torch.equal(v, values[..., :t + 7, :][..., :40, :])
    assert len(cache) == 40
    k, v = cache.get()
    assert torch.equal(k, keys)
    assert torch.equal(v, values)


def test_crop_reset_reorder():
    cache = al.KVCache(max_len=10)
    keys, values = oracle.randn(3, 1, 6, 2, seed=9), oracle.randn(3, 1, 6, 2, seed=10)
    cache.update(keys, values)
    cache.crop(4)
    assert len(cache) == 4
    k, _ = cache.update(keys[..., :1, :], values[..., :1, :])
    assert torch.equal(k[..., 4, :], keys[..., 0, :])
    cache.reorder(torch.tensor([2, 0]))
    k, v = cache.get()
    assert torch.equal(k[:, :, :4], keys[[2, 0], :, :4])
    assert torch.equal(v[:, :, :4], values[[2, 0], :, :4])
    cache.reset()
    assert len(cache) == 0


def test_cache_errors():
    with pytest.raises(ValueError, match=r"max_len must be >= 1, got 0"):
        al.KVCache(max_len=0)
    with pytest.raises(ValueError, match=r"the cache is empty"):
        al.KVCache().get()
    cache = al.KVCache()
    cache.update(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"cache holds keys of shape .*got \(1, 3, 1, 4\)"):
        cache.update(torch.zeros(1, 3, 1, 4), torch.zeros(1, 3, 1, 4))
