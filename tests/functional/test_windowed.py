"""Banded kernels: sliding-window and offset-causal attention, block edges included."""

import pytest
import torch
from torch.autograd import gradcheck

import attnlab as al
import oracle
from attnlab.functional import plan
from attnlab.functional.banded import kernel_block_size
from attnlab.functional.windowed import (
    block_size,
    offset_causal_attention,
    windowed_attention,
)

N, D, DV = 2, 3, 4


def qkv(L, S, seed=0, dtype=torch.float64):
    return (oracle.randn(N, L, D, seed=seed, dtype=dtype),
            oracle.randn(N, S, D, seed=seed + 1, dtype=dtype),
            oracle.randn(N, S, DV, seed=seed + 2, dtype=dtype))


def test_block_size_bounds():
    assert [block_size(w) for w in (1, 16, 17, 100, 128, 129, 5000)] == [
        16, 16, 17, 100, 128, 128, 128]


# windows on both sides of every block_size boundary, lengths that are not multiples of it
@pytest.mark.parametrize("window", [1, 2, 15, 16, 17, 40, 127, 128, 129, 300])
@pytest.mark.parametrize(("L", "S"), [(50, 50), (40, 90), (90, 40), (1, 33), (33, 1), (17, 17)])
@pytest.mark.parametrize("causal", [False, True])
def test_windowed_attention_matches_oracle(L, S, window, causal):
    q, k, v = qkv(L, S, seed=L + S + window)
    out = windowed_attention(q, k, v, None, window=window, causal=causal, scale=0.7,
                             dropout_p=0.0)
    ref, _ = oracle.attention(q, k, v, causal=causal, window=window, scale=0.7)
    assert oracle.rel_err(out, ref) <= 1e-6


@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize(("L", "S", "window", "causal"), [(40, 90, 3, False), (90, 40, 17, True),
                                                           (33, 33, 1, False)])
def test_windowed_attention_key_mask(L, S, window, causal, kind, shared):
    q, k, v = qkv(L, S, seed=7)
    rows = 1 if shared else N
    key_mask = oracle.rand_bool(rows, S, seed=8) if kind == "bool" else oracle.rand_bias(
        rows, S, seed=8)
    out = windowed_attention(q, k, v, key_mask, window=window, causal=causal, scale=0.5,
                             dropout_p=0.0)
    ref, _ = oracle.attention(q, k, v, key_mask[:, None, :], causal=causal, window=window,
                              scale=0.5)
    assert torch.isfinite(out).all()
    assert oracle.rel_err(out, ref) <= 1e-6


@pytest.mark.parametrize(("L", "S"), [(2, 3), (255, 400), (256, 300), (257, 600), (600, 601)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_offset_causal_attention_matches_oracle(L, S, dtype):
    q, k, v = (t[:1] for t in qkv(L, S, seed=L, dtype=dtype))
    out = offset_causal_attention(q, k, v, scale=0.4, dropout_p=0.0)
    ref, _ = oracle.attention(q, k, v, causal=True, scale=0.4)
    assert out.dtype == dtype
    assert oracle.rel_err(out, ref) <= oracle.tolerance(dtype)


@pytest.mark.parametrize(("L", "S", "window", "causal"), [(20, 35, 3, False), (35, 20, 2, True),
                                                           (70, 80, 5, False), (75, 40, 3, True)])
def test_windowed_gradcheck_across_blocks(L, S, window, causal):
    assert plan(L, S, None, causal=causal, window=window).path == "windowed"
    assert L > block_size(window)  # at least two query blocks of the fused version
    q, k, v = (t[:1, :, :2].clone().requires_grad_() for t in qkv(L, S, seed=9))
    assert gradcheck(
        lambda q, k, v: al.scaled_dot_product_attention(q, k, v, causal=causal, window=window),
        (q, k, v),
    )


@pytest.mark.parametrize(("L", "S", "window", "causal"), [(70, 80, 5, False), (75, 40, 3, True)])
def test_banded_kernel_gradcheck_with_blind_rows(L, S, window, causal):
    """Several kernel blocks; a key mask that hides some rows' every key (their output and
    gradients are zero), and with L > S causal rows that see no key at all."""
    assert L > kernel_block_size(window, causal)  # at least two kernel blocks
    q, k, v = (t[:1, :, :2].clone().requires_grad_() for t in qkv(L, S, seed=11))
    key_mask = torch.ones(1, S, dtype=torch.bool)
    key_mask[:, 10:30] = False  # rows whose whole window lies in 10..29 see nothing

    def f(q, k, v):
        return windowed_attention(q, k, v, key_mask, window=window, causal=causal, scale=0.8,
                                  dropout_p=0.0)
    out = f(q, k, v)
    ref, _ = oracle.attention(q, k, v, key_mask[:, None, :], causal=causal, window=window,
                              scale=0.8)
    blind = (out == 0).all(dim=-1)
    assert blind.any()
    assert oracle.rel_err(out, ref) <= 1e-6
    assert gradcheck(f, (q, k, v))


def test_window_larger_than_both_lengths_is_plain_attention():
    q, k, v = qkv(7, 11, seed=10)
    out = al.scaled_dot_product_attention(q, k, v, window=1000)
    ref, _ = oracle.attention(q, k, v)
    assert oracle.rel_err(out, ref) <= 1e-6


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("L", "S", "window", "causal"), [
    (50, 50, 17, True), (40, 90, 9, False), (90, 90, 300, True), (1, 33, 5, True),
    (257, 257, 65, True), (33, 40, 2, False)])
def test_the_band_in_one_flash_call_equals_the_chunks_and_the_oracle(
        monkeypatch, L, S, window, causal, dtype):
    # equal value and query widths and no key mask: the forward is one fused-kernel call
    import attnlab.functional.banded as banded

    q, k, v = (oracle.randn(2, n, 5, seed=s, dtype=dtype) for s, n in ((1, L), (2, S), (3, S)))
    taken, chunks_only = [], []
    real = banded._Band.flash

    def spy(self, *args):
        out = None if chunks_only else real(self, *args)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(banded._Band, "flash", spy)
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    out = windowed_attention(q, k, v, None, window=window, causal=causal, scale=0.6,
                             dropout_p=0.0)
    assert taken == [True]
    grads = torch.autograd.grad(out.pow(2).sum(), (q, k, v))
    ref, _ = oracle.attention(q.detach(), k.detach(), v.detach(), causal=causal, window=window,
                              scale=0.6)
    tol = oracle.tolerance(dtype)
    assert oracle.rel_err(out, ref) <= tol
    chunks_only.append(True)  # the chunked forward
    chunked = windowed_attention(q, k, v, None, window=window, causal=causal, scale=0.6,
                                 dropout_p=0.0)
    assert taken == [True, False]
    assert oracle.rel_err(out, chunked) <= tol
    for got, want in zip(grads, torch.autograd.grad(chunked.pow(2).sum(), (q, k, v)),
                         strict=True):
        assert oracle.rel_err(got, want) <= tol
