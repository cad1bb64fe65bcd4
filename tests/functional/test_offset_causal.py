"""Bottom-right causal attention as two flash-kernel calls and a merge, against the oracle.

Forward and gradients are compared with the float64 oracle: the gradients with the
textbook softmax-attention gradient computed from the oracle's weights
(``dS = W ⊙ (G Vᵀ − rowsum(W ⊙ G Vᵀ))``, ``∂Q = scale · dS K``, ``∂K = scale · dSᵀ Q``,
``∂V = Wᵀ G``), and by gradcheck. A spy makes sure the merged kernel really ran.
"""

import pytest
import torch
from torch.autograd import gradcheck

import oracle
from attnlab.functional import offset_causal as oc
from attnlab.functional.windowed import offset_causal_attention


@pytest.fixture
def calls(monkeypatch):
    """Count the merged kernel's calls."""
    seen = []
    real = oc.OffsetCausal.apply

    def spy(*args):
        seen.append(args[0].shape)
        return real(*args)
    monkeypatch.setattr(oc.OffsetCausal, "apply", spy)
    return seen


def oracle_grads(q, k, v, grad, mask, *, scale):
    """``(out, ∂q, ∂k, ∂v)`` of ``⟨out, grad⟩`` from the oracle's weights (float64)."""
    out, w = oracle.attention(q, k, v, mask, causal=True, scale=scale)
    q, k, v, g = (t.detach().double() for t in (q, k, v, grad))
    grad_w = g @ v.transpose(-2, -1)  # (..., L, S)
    grad_s = w * (grad_w - (grad_w * w).sum(-1, keepdim=True))
    return out, scale * grad_s @ k, scale * grad_s.transpose(-2, -1) @ q, w.transpose(-2, -1) @ g


def run(q, k, v, grad, mask, *, scale, gqa=False):
    q, k, v = (t.clone().requires_grad_() for t in (q, k, v))
    out = offset_causal_attention(q, k, v, mask, scale=scale, dropout_p=0.0, enable_gqa=gqa)
    out.backward(grad)
    return out, q.grad, k.grad, v.grad


def key_mask(kind, B, S, dtype):
    """Per-key masks ``(B, 1, 1, S)``; "blind" hides the first keys of batch 0 entirely."""
    if kind is None:
        return None
    if kind == "bool":
        mask = oracle.rand_bool(B, 1, 1, S, seed=7, p_true=0.7)
        mask[0, ..., : S // 2 + 1] = False  # batch 0: part A all hidden, early rows see nothing
        return mask
    bias = oracle.rand_bias(B, 1, 1, S, seed=8, p_neg_inf=0.3, dtype=dtype)
    bias[-1, ..., : S // 2 + 1] = float("-inf")
    return bias


# odd sizes; L < S (both parts), L == S (no part A), L > S (zero rows first); batch 1; L 1
@pytest.mark.parametrize(("B", "H", "L", "S", "D"), [
    (2, 3, 7, 11, 5),
    (1, 2, 13, 13, 4),
    (2, 1, 9, 5, 3),
    (1, 1, 1, 9, 3),
    (1, 2, 30, 97, 6),
])
@pytest.mark.parametrize("mask_kind", [None, "bool", "float"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_forward_and_gradients_match_oracle(B, H, L, S, D, mask_kind, dtype, calls):
    q, g = (oracle.randn(B, H, L, D, seed=s, dtype=dtype) for s in (1, 2))
    k, v = (oracle.randn(B, H, S, D, seed=s, dtype=dtype) for s in (3, 4))
    mask = key_mask(mask_kind, B, S, dtype)
    got = run(q, k, v, g, mask, scale=0.7)
    want = oracle_grads(q, k, v, g, mask, scale=0.7)
    assert calls  # the merged kernel ran, not the blocked fallback
    for name, a, b in zip(("out", "grad q", "grad k", "grad v"), got, want, strict=True):
        assert a.dtype == dtype, name
        assert a.shape == b.shape, name
        assert torch.isfinite(a).all(), name
        assert oracle.rel_err(a, b) <= oracle.tolerance(dtype), name


def test_rows_that_see_nothing_are_zero_with_zero_gradients(calls):
    """Batch 0 hides keys 0..6 of 12: with L = 8 (offset 4) rows 0..2 see no key at all."""
    B, H, L, S, D = 2, 2, 8, 12, 3
    q, g = (oracle.randn(B, H, L, D, seed=s) for s in (11, 12))
    k, v = (oracle.randn(B, H, S, D, seed=s) for s in (13, 14))
    mask = torch.ones(B, 1, 1, S, dtype=torch.bool)
    mask[0, ..., :7] = False
    got = run(q, k, v, g, mask, scale=0.5)
    want = oracle_grads(q, k, v, g, mask, scale=0.5)
    assert calls
    for a, b in zip(got, want, strict=True):
        assert oracle.rel_err(a, b) <= 1e-6
    assert (got[0][0, :, :3] == 0).all()
    assert (got[1][0, :, :3] == 0).all()
    assert (got[0][0, :, 3:] != 0).any(dim=-1).all()


def test_grouped_heads_and_broadcast_leading_dims(calls):
    """Query heads 4 over key/value heads 2 (each serves two), against repeated heads."""
    q, g = (oracle.randn(2, 4, 6, 3, seed=s) for s in (21, 22))
    k, v = (oracle.randn(2, 2, 10, 3, seed=s) for s in (23, 24))
    mask = oracle.rand_bool(1, 1, 1, 10, seed=25, p_true=0.8)
    got = run(q, k, v, g, mask, scale=0.6, gqa=True)
    rk, rv = (t.repeat_interleave(2, dim=1) for t in (k, v))
    want = oracle_grads(q, rk, rv, g, mask, scale=0.6)
    assert calls
    assert oracle.rel_err(got[0], want[0]) <= 1e-6
    assert oracle.rel_err(got[1], want[1]) <= 1e-6
    for a, b in ((got[2], want[2]), (got[3], want[3])):  # the two query heads of a group sum
        assert oracle.rel_err(a, b.unflatten(1, (2, 2)).sum(2)) <= 1e-6


@pytest.mark.parametrize(("L", "S"), [(5, 9), (9, 9), (9, 4)])
def test_gradcheck(L, S, calls):
    q = oracle.randn(1, 2, L, 2, seed=31).requires_grad_()
    k, v = (oracle.randn(1, 2, S, 2, seed=s).requires_grad_() for s in (32, 33))
    mask = torch.ones(1, 1, 1, S, dtype=torch.bool)
    mask[..., 1:3] = False
    assert gradcheck(lambda q, k, v: offset_causal_attention(
        q, k, v, mask, scale=0.8, dropout_p=0.0), (q, k, v))
    assert calls


def test_what_the_kernel_cannot_take_goes_to_the_blocked_path():
    """Dropout, a mask with a gradient, a value width other than the query's, 5 dims."""
    q, k = oracle.randn(1, 1, 4, 3, seed=41), oracle.randn(1, 1, 6, 3, seed=42)
    bias = torch.zeros(1, 1, 1, 6, dtype=torch.float64, requires_grad=True)
    kw = {"scale": 1.0, "enable_gqa": False}
    assert oc.offset_causal(q, k, k, None, dropout_p=0.1, **kw) is None
    assert oc.offset_causal(q, k, k, bias, dropout_p=0.0, **kw) is None
    assert oc.offset_causal(q, k, k[..., :2], None, dropout_p=0.0, **kw) is None
    assert oc.offset_causal(q[None], k[None], k[None], None, dropout_p=0.0, **kw) is None
    assert oc.offset_causal(q, k, k, None, dropout_p=0.0, **kw) is not None
