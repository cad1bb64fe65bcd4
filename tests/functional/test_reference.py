"""The math path: ``attention_weights`` and the safe softmax, against the oracle's weights."""

import pytest
import torch
from torch.autograd import gradcheck

import attnlab as al
import oracle
from attnlab.functional.reference import masked_softmax

B, H, E = 2, 3, 5


def mask_of(kind, L, S, dtype=torch.float64):
    if kind is None:
        return None
    shape = {"pad": (B, 1, 1, S), "ls": (L, S), "full": (B, H, L, S)}[kind.split("-")[0]]
    if kind.endswith("bool"):
        return oracle.rand_bool(*shape, seed=L * S)
    return oracle.rand_bias(*shape, seed=L * S, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mask_kind", [None, "pad-bool", "ls-float", "full-bool"])
@pytest.mark.parametrize(("causal", "window"), [(False, None), (True, None), (False, 2),
                                                (True, 3), (True, 1)])
@pytest.mark.parametrize(("L", "S"), [(7, 11), (11, 7), (1, 11), (7, 1)])
def test_weights_match_oracle(L, S, causal, window, mask_kind, dtype):
    q = oracle.randn(B, H, L, E, seed=1, dtype=dtype)
    k = oracle.randn(B, H, S, E, seed=2, dtype=dtype)
    mask = mask_of(mask_kind, L, S, dtype)
    weights = al.attention_weights(q, k, mask, causal=causal, window=window)
    _, ref = oracle.attention(q, k, torch.zeros(S, 1), mask, causal=causal, window=window)
    assert weights.shape == (B, H, L, S)
    assert weights.dtype == dtype
    assert oracle.rel_err(weights, ref) <= oracle.tolerance(dtype)
    sums = weights.sum(-1)
    visible_any = ref.sum(-1) > 0
    torch.testing.assert_close(sums, visible_any.to(dtype))
    assert (weights >= 0).all()


@pytest.mark.parametrize("scale", [0.1, 1.0, 4.0])
def test_weights_custom_scale(scale):
    q, k = oracle.randn(3, 7, E, seed=3), oracle.randn(3, 11, E, seed=4)
    _, ref = oracle.attention(q, k, torch.zeros(11, 1), scale=scale)
    assert oracle.rel_err(al.attention_weights(q, k, scale=scale), ref) <= 1e-6


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_masked_softmax_all_masked_rows(kind):
    scores = oracle.randn(2, 4, 6, seed=5).requires_grad_()
    keep = oracle.rand_bool(2, 4, 6, seed=6)
    keep[0, 1] = False
    keep[1, 3] = False
    mask = keep if kind == "bool" else torch.zeros(2, 4, 6, dtype=torch.float64).masked_fill(
        ~keep, float("-inf"))
    weights = masked_softmax(scores, mask)
    assert torch.isfinite(weights).all()
    assert (weights[0, 1] == 0).all()
    assert (weights[1, 3] == 0).all()
    for b in range(2):
        for i in range(4):
            logits = {j: float(scores.detach()[b, i, j]) for j in range(6) if keep[b, i, j]}
            expected = torch.tensor(oracle.softmax_row(logits, 6), dtype=torch.float64)
            assert oracle.rel_err(weights[b, i], expected) <= 1e-12
    (weights * oracle.randn(2, 4, 6, seed=7)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert (scores.grad[0, 1] == 0).all()
    assert (scores.grad[1, 3] == 0).all()
    assert gradcheck(lambda s: masked_softmax(s, mask), (scores,))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_weights_half_precision(dtype):
    q, k = oracle.randn(B, H, 7, E, seed=8), oracle.randn(B, H, 11, E, seed=9)
    weights = al.attention_weights(q.to(dtype), k.to(dtype), causal=True)
    _, ref = oracle.attention(q, k, torch.zeros(11, 1), causal=True)
    assert weights.dtype == dtype
    assert oracle.rel_err(weights, ref) <= 2e-2


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_weights_of_huge_scores(dtype):
    q, k = oracle.randn(B, H, 7, E, seed=10) * 100, oracle.randn(B, H, 11, E, seed=11) * 100
    weights = al.attention_weights(q.to(dtype), k.to(dtype), window=4)
    _, ref = oracle.attention(q, k, torch.zeros(11, 1), window=4)
    assert torch.isfinite(weights).all()
    assert oracle.rel_err(weights, ref) <= oracle.tolerance(dtype)


def test_weights_gradcheck():
    q = oracle.randn(1, 2, 4, 3, seed=12).requires_grad_()
    k = oracle.randn(1, 2, 6, 3, seed=13).requires_grad_()
    mask = oracle.rand_bool(4, 6, seed=14)
    mask[1] = False
    assert gradcheck(lambda q, k: al.attention_weights(q, k, mask, causal=True), (q, k))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"key": torch.zeros(2, 11, 4)}, ValueError, r"query and key .*last dimension"),
        ({"mask": torch.ones(7, 12, dtype=torch.bool)}, ValueError,
         r"mask of shape \(7, 12\) does not broadcast to \(2, 7, 11\)"),
        ({"mask": torch.ones(7, 11, dtype=torch.uint8)}, TypeError, r"mask .*torch\.uint8"),
        ({"window": 0}, ValueError, r"window must be >= 1, got 0"),
        ({"scale": -1.0}, ValueError, r"scale must be > 0(\.0)?, got -1\.0"),
    ],
)
def test_weights_bad_input(kwargs, error, match):
    args = {"query": torch.zeros(2, 7, 5), "key": torch.zeros(2, 11, 5)} | kwargs
    with pytest.raises(error, match=match):
        al.attention_weights(args.pop("query"), args.pop("key"), **args)
