"""The batched banded kernel: forward and gradients against the float64 oracle.

Gradients are checked two ways: against the textbook softmax-attention gradient
computed from the oracle's weights (``dS = W ⊙ (G Vᵀ − rowsum(W ⊙ G Vᵀ))``,
``∂Q = scale · dS K``, ``∂K = scale · dSᵀ Q``, ``∂V = Wᵀ G``), and by gradcheck.
Chunk sizes are shrunk so that one call runs several chunks and both ways of
folding key-block gradients back onto the keys.
"""

import pytest
import torch
from torch.autograd import gradcheck

import oracle
from attnlab.functional import banded
from attnlab.functional.windowed import windowed_attention


def oracle_grads(q, k, v, grad, key_mask, *, causal, window, scale):
    """``(out, ∂q, ∂k, ∂v)`` of ``⟨out, grad⟩`` from the oracle's weights (float64)."""
    mask = None if key_mask is None else key_mask[:, None, :]
    out, w = oracle.attention(q, k, v, mask, causal=causal, window=window, scale=scale)
    q, k, v, g = (t.detach().double() for t in (q, k, v, grad))
    grad_w = g @ v.transpose(-2, -1)  # (N, L, S)
    grad_s = w * (grad_w - (grad_w * w).sum(-1, keepdim=True))
    return out, scale * grad_s @ k, scale * grad_s.transpose(-2, -1) @ q, w.transpose(-2, -1) @ g


def run(q, k, v, grad, key_mask, *, causal, window, scale):
    q, k, v = (t.clone().requires_grad_() for t in (q, k, v))
    out = windowed_attention(q, k, v, key_mask, window=window, causal=causal, scale=scale,
                             dropout_p=0.0)
    out.backward(grad)
    return out, q.grad, k.grad, v.grad


@pytest.fixture(params=["one chunk", "a block per chunk", "several blocks per chunk"])
def chunking(request, monkeypatch):
    """Shrink the kernel's chunk: all rows and blocks at once, or 1 or a few blocks of one
    batch row per chunk."""
    size = {"one chunk": banded.CHUNK_BYTES, "a block per chunk": 1,
            "several blocks per chunk": 20_000}[request.param]
    monkeypatch.setattr(banded, "CHUNK_BYTES", size)
    return request.param


# odd widths, L != S both ways, batch 1, length 1, windows narrower and wider than a block
@pytest.mark.parametrize(("N", "L", "S", "D", "Dv", "window", "causal"), [
    (2, 150, 150, 5, 3, 40, True),
    (1, 97, 130, 7, 4, 9, False),
    (3, 130, 61, 3, 6, 70, True),
    (1, 1, 33, 4, 2, 5, True),
    (2, 33, 1, 4, 2, 300, False),
    (1, 200, 200, 2, 2, 1, True),
])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_forward_and_gradients_match_oracle(N, L, S, D, Dv, window, causal, dtype, chunking):
    q, k, v, g = (oracle.randn(N, n, c, seed=s, dtype=dtype)
                  for s, (n, c) in enumerate([(L, D), (S, D), (S, Dv), (L, Dv)]))
    got = run(q, k, v, g, None, causal=causal, window=window, scale=0.6)
    want = oracle_grads(q, k, v, g, None, causal=causal, window=window, scale=0.6)
    for name, a, b in zip(("out", "grad q", "grad k", "grad v"), got, want, strict=True):
        assert a.dtype == dtype, name
        assert a.shape == b.shape, name
        assert oracle.rel_err(a, b) <= oracle.tolerance(dtype), name


@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("shared", [True, False])
def test_key_mask_and_blind_rows_give_zeros_and_finite_zero_gradients(kind, shared, chunking):
    """Keys 40..89 hidden: with window 20 some rows see no key at all, and with L > S causal
    the first rows sit before every key."""
    N, L, S, window = 2, 160, 130, 20
    q, k, v, g = (oracle.randn(N, n, 3, seed=20 + s) for s, n in enumerate((L, S, S, L)))
    rows = 1 if shared else N
    key_mask = oracle.rand_bool(rows, S, seed=5, p_true=0.8) if kind == "bool" else \
        oracle.rand_bias(rows, S, seed=5, p_neg_inf=0.2)
    key_mask[:, 40:90] = False if kind == "bool" else float("-inf")
    got = run(q, k, v, g, key_mask, causal=True, window=window, scale=0.9)
    want = oracle_grads(q, k, v, g, key_mask, causal=True, window=window, scale=0.9)
    blind = (want[0] == 0).all(-1)  # (N, L): rows that see nothing
    assert blind[:, :L - S].all()
    assert blind[:, L - S:].any()
    for a, b in zip(got, want, strict=True):
        assert torch.isfinite(a).all()
        assert oracle.rel_err(a, b) <= 1e-6
    assert (got[0][blind] == 0).all()
    assert (got[1][blind] == 0).all()


@pytest.mark.parametrize(("L", "S", "window", "causal"), [(70, 45, 4, True), (45, 70, 3, False)])
def test_gradcheck_across_chunks(L, S, window, causal, chunking):
    q, k, v = (oracle.randn(1, n, 2, seed=30 + s).requires_grad_()
               for s, n in enumerate((L, S, S)))
    key_mask = torch.ones(1, S, dtype=torch.bool)
    key_mask[:, 5:12] = False
    assert gradcheck(lambda q, k, v: windowed_attention(
        q, k, v, key_mask, window=window, causal=causal, scale=0.7, dropout_p=0.0), (q, k, v))


def test_gradient_with_zero_strides_matches_a_dense_one():
    """``out.sum().backward()`` hands the kernel an expanded (stride-0) gradient."""
    q, k, v = (oracle.randn(2, 90, 4, seed=40 + s) for s in range(3))
    g = torch.ones(2, 90, 4, dtype=torch.float64)
    dense = run(q, k, v, g, None, causal=True, window=17, scale=0.5)
    q, k, v = (t.clone().requires_grad_() for t in (q, k, v))
    windowed_attention(q, k, v, None, window=17, causal=True, scale=0.5,
                       dropout_p=0.0).sum().backward()
    for a, b in zip((q.grad, k.grad, v.grad), dense[1:], strict=True):
        assert oracle.rel_err(a, b) <= 1e-12


def test_several_chunks_are_used():
    """The chunk size really splits a call (so the tests above exercise the chunk loop)."""
    q = torch.zeros(2, 150, 5)
    band = banded._Band(q, torch.zeros(2, 150, 5), 40, True, None)
    assert len(band.chunks()) == 1
    small = banded.CHUNK_BYTES
    try:
        banded.CHUNK_BYTES = 20_000
        assert len(banded._Band(q, q, 40, True, None).chunks()) > 1
    finally:
        banded.CHUNK_BYTES = small


@pytest.mark.parametrize("causal", [True, False])
def test_chunks_of_several_batch_rows_with_a_per_row_key_mask(monkeypatch, causal):
    """Chunks of two batch rows of five, each row with its own key mask."""
    N, L, S, window = 5, 40, 47, 9
    q, k, v, g = (oracle.randn(N, n, 3, seed=50 + s) for s, n in enumerate((L, S, S, L)))
    key_mask = oracle.rand_bool(N, S, seed=9, p_true=0.6)
    row = banded._Band(q, k, window, causal, None)
    monkeypatch.setattr(banded, "CHUNK_BYTES", 2 * row.n * row.per_block + 1)
    chunks = banded._Band(q, k, window, causal, None).chunks()
    assert [c[0] for c in chunks] == [slice(0, 2), slice(2, 4), slice(4, 5)]
    got = run(q, k, v, g, key_mask, causal=causal, window=window, scale=0.8)
    want = oracle_grads(q, k, v, g, key_mask, causal=causal, window=window, scale=0.8)
    for a, b in zip(got, want, strict=True):
        assert oracle.rel_err(a, b) <= 1e-6


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
@pytest.mark.parametrize(("L", "S", "causal"), [(70, 70, False), (50, 70, True)])
def test_a_non_finite_row_does_not_reach_its_neighbours(monkeypatch, bad, L, S, causal):
    """All batch rows share one flat buffer; filler blocks read into the next row's keys.

    A non-finite key and value in row 1 must leave rows 0 and 2 (outputs and all gradients)
    exactly as when each is computed alone, whatever the chunking.
    """
    N, window = 3, 9
    q, g = (oracle.randn(N, L, 3, seed=60 + s) for s in range(2))
    k, v = (oracle.randn(N, S, 3, seed=62 + s) for s in range(2))
    k[1, :5], v[1, :5] = bad, bad
    row = banded._Band(q, k, window, causal, None)
    assert row.start + row.K - row.Q > row.pad_left  # filler reads the next row's keys
    for size in (banded.CHUNK_BYTES, row.n * row.per_block + 1, 1):  # rows together or not
        monkeypatch.setattr(banded, "CHUNK_BYTES", size)
        got = run(q, k, v, g, None, causal=causal, window=window, scale=0.7)
        for e in (0, 2):
            alone = run(q[e:e + 1], k[e:e + 1], v[e:e + 1], g[e:e + 1], None, causal=causal,
                        window=window, scale=0.7)
            for a, b in zip(got, alone, strict=True):
                assert torch.isfinite(a[e]).all()
                assert oracle.rel_err(a[e:e + 1], b) <= 1e-12


def test_chunks_of_several_rows_use_the_keys_in_place():
    """The flat layout makes a chunk of whole rows a strided view: no copy of key blocks."""
    q, k = torch.zeros(4, 100, 3), torch.zeros(4, 90, 3)
    band = banded._Band(q, k, 7, False, None)
    blocks = band.keys(k)  # (N, n, K, C)
    assert band.R % band.Q == 0
    assert band.R >= 90
    flat = banded._flat(blocks[1:3])
    assert flat.data_ptr() == blocks[1:3].data_ptr()
    assert flat.untyped_storage().data_ptr() == blocks.untyped_storage().data_ptr()
