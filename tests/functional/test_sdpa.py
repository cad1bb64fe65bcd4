"""``scaled_dot_product_attention``: every dispatch path against the float64 oracle.

The expected values come from ``tests/oracle.py`` (loops, float64); ``plan`` is only
used to make sure each path (fused, offset-causal, windowed, math) is really taken.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import attnlab as al
import attnlab.functional.sdpa as sdpa_module
import oracle
from attnlab.functional import plan
from attnlab.functional.sdpa import attend
from attnlab.functional.windowed import block_size

B, H, E, EV = 2, 3, 5, 4
PATHS = {"fused", "offset-causal", "windowed", "math"}


def make_mask(kind, L, S, *, seed=0, dtype=torch.float64):
    """A mask of the named kind for batch (B, H): padding (B,1,1,S), shared (L,S), full."""
    if kind is None:
        return None
    shape = {"pad": (B, 1, 1, S), "ls": (L, S), "full": (B, H, L, S)}[kind.split("-")[0]]
    if kind.endswith("bool"):
        return oracle.rand_bool(*shape, seed=seed)
    return oracle.rand_bias(*shape, seed=seed, dtype=dtype)


def qkv(L, S, *, batch=(B, H), e=E, ev=EV, seed=0, dtype=torch.float64):
    q = oracle.randn(*batch, L, e, seed=seed, dtype=dtype)
    k = oracle.randn(*batch, S, e, seed=seed + 1, dtype=dtype)
    v = oracle.randn(*batch, S, ev, seed=seed + 2, dtype=dtype)
    return q, k, v


LENGTHS = [(7, 11), (11, 7), (7, 7), (1, 11), (7, 1), (1, 1)]
WINDOWS = [None, 1, 2, 3, 40]
MASKS = [None, "pad-bool", "pad-float", "ls-bool", "ls-float"]
GRID = [
    pytest.param(L, S, causal, window, mask, id=f"L{L}-S{S}-c{int(causal)}-w{window}-{mask}")
    for (L, S) in LENGTHS
    for causal in (False, True)
    for window in WINDOWS
    for mask in MASKS
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("L", "S", "causal", "window", "mask_kind"), GRID)
def test_matches_oracle(L, S, causal, window, mask_kind, dtype):
    q, k, v = qkv(L, S, seed=L * 100 + S, dtype=dtype)
    mask = make_mask(mask_kind, L, S, seed=L + S, dtype=dtype)
    out = al.scaled_dot_product_attention(q, k, v, mask, causal=causal, window=window)
    ref, _ = oracle.attention(q, k, v, mask, causal=causal, window=window)
    assert out.shape == (B, H, L, EV)
    assert out.dtype == dtype
    assert oracle.rel_err(out, ref) <= oracle.tolerance(dtype)


def test_grid_takes_every_path():
    taken = set()
    for case in GRID:
        L, S, causal, window, mask_kind = case.values
        taken.add(plan(L, S, make_mask(mask_kind, L, S), causal=causal, window=window).path)
    assert taken == PATHS


@pytest.mark.parametrize(
    ("L", "S", "mask_kind", "causal", "window", "need_weights", "path"),
    [
        (7, 11, None, False, None, False, "fused"),
        (7, 7, None, True, None, False, "fused"),
        (11, 7, None, True, None, False, "fused"),
        (1, 11, None, True, None, False, "fused"),
        (7, 11, "pad-bool", False, None, False, "fused"),
        (7, 11, "ls-bool", True, None, False, "fused"),
        (7, 11, None, True, None, False, "fused"),  # small: one call with the (L, S) mask
        (512, 1024, None, True, None, False, "fused"),  # L·S = SMALL_OFFSET
        (513, 1024, None, True, None, False, "offset-causal"),
        (600, 900, None, True, None, False, "offset-causal"),
        (7, 11, None, False, 3, False, "windowed"),
        (7, 11, None, True, 3, False, "windowed"),
        (7, 11, "pad-float", True, 2, False, "windowed"),
        (7, 11, "ls-bool", False, 3, False, "math"),
        (7, 11, "full-bool", True, 3, False, "math"),
        (7, 11, None, False, None, True, "math"),
    ],
)
def test_plan_path(L, S, mask_kind, causal, window, need_weights, path):
    chosen = plan(L, S, make_mask(mask_kind, L, S), causal=causal, window=window,
                  need_weights=need_weights)
    assert chosen.path == path
    assert chosen.reason  # the dispatcher explains itself in words


LONG = [
    pytest.param(300, 700, False, 1, None, id="win1"),
    pytest.param(300, 700, True, 37, None, id="win37-causal"),
    pytest.param(300, 700, False, 200, "pad-bool", id="win200-pad"),
    pytest.param(700, 300, True, 5, None, id="L>S-win5-causal"),
    pytest.param(600, 900, True, None, None, id="offset-causal"),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("L", "S", "causal", "window", "mask_kind"), LONG)
def test_long_sequences_match_oracle(L, S, causal, window, mask_kind, dtype):
    mask = None
    if mask_kind is not None:
        mask = oracle.rand_bool(1, 1, 1, S, seed=3)
    chosen = plan(L, S, mask, causal=causal, window=window).path
    if window is None:
        assert chosen == "offset-causal"
        assert math.ceil(L / 256) >= 3  # several 256-row blocks
    else:
        assert chosen == "windowed"
        assert math.ceil(L / block_size(window)) >= 3  # several query blocks
    q, k, v = qkv(L, S, batch=(1, 1), seed=L, dtype=dtype)
    out = al.scaled_dot_product_attention(q, k, v, mask, causal=causal, window=window)
    ref, _ = oracle.attention(q, k, v, mask, causal=causal, window=window)
    assert oracle.rel_err(out, ref) <= oracle.tolerance(dtype)


PATH_CASES = [
    pytest.param(7, 11, None, False, None, id="fused"),
    pytest.param(7, 11, "pad-float", True, None, id="fused-mask-causal"),
    pytest.param(7, 11, None, True, None, id="fused-causal-L<S"),
    pytest.param(7, 11, "pad-bool", True, None, id="offset-causal"),
    pytest.param(7, 11, "pad-bool", False, 3, id="windowed"),
    pytest.param(7, 11, "ls-float", True, 2, id="math"),
]


@pytest.mark.parametrize("scale", [0.25, 1.0, 3.0])
@pytest.mark.parametrize(("L", "S", "mask_kind", "causal", "window"), PATH_CASES)
def test_custom_scale(L, S, mask_kind, causal, window, scale):
    q, k, v = qkv(L, S, seed=5)
    mask = make_mask(mask_kind, L, S, seed=6)
    out = al.scaled_dot_product_attention(q, k, v, mask, causal=causal, window=window,
                                          scale=scale)
    ref, _ = oracle.attention(q, k, v, mask, causal=causal, window=window, scale=scale)
    assert oracle.rel_err(out, ref) <= 1e-6


def test_default_scale_is_inverse_sqrt_e():
    q, k, v = qkv(7, 11, e=9)
    out = al.scaled_dot_product_attention(q, k, v)
    assert oracle.rel_err(out, oracle.attention(q, k, v, scale=1 / 3)[0]) <= 1e-6
    assert oracle.rel_err(out, oracle.attention(q, k, v, scale=1.0)[0]) > 1e-3


@pytest.mark.parametrize(("L", "S", "mask_kind", "causal", "window"), PATH_CASES)
def test_broadcast_leading_dims_and_value_width(L, S, mask_kind, causal, window):
    q = oracle.randn(B, H, L, E, seed=1)
    k = oracle.randn(H, S, E, seed=2)  # broadcast over B
    v = oracle.randn(1, H, S, 6, seed=3)  # Ev = 6 != E
    mask = make_mask(mask_kind, L, S, seed=4)
    out = al.scaled_dot_product_attention(q, k, v, mask, causal=causal, window=window)
    ref, _ = oracle.attention(q, k, v, mask, causal=causal, window=window)
    assert out.shape == (B, H, L, 6)
    assert oracle.rel_err(out, ref) <= 1e-6


@pytest.mark.parametrize("batch", [(), (1,), (1, 1)])
@pytest.mark.parametrize(("L", "S", "mask_kind", "causal", "window"), PATH_CASES)
def test_batch_one_and_no_batch(L, S, mask_kind, causal, window, batch):
    q, k, v = qkv(L, S, batch=batch, seed=8)
    mask = make_mask(mask_kind, L, S, seed=9)
    if mask is not None and mask.dim() == 4:
        mask = mask[0, 0]  # (1, S): a rank-2 padding mask fits every batch shape
    out = al.scaled_dot_product_attention(q, k, v, mask, causal=causal, window=window)
    ref, _ = oracle.attention(q, k, v, mask, causal=causal, window=window)
    assert out.shape == (*batch, L, EV)
    assert oracle.rel_err(out, ref) <= 1e-6


# --- fully masked rows ---------------------------------------------------------------------

EMPTY_ROWS = [
    # (L, S, mask builder, causal, window, expected path, which query rows are empty)
    pytest.param(7, 11, "bool-row", False, None, "fused", id="fused-bool-mask"),
    pytest.param(7, 11, "float-row", False, None, "fused", id="fused-float-mask"),
    pytest.param(11, 7, None, True, None, "fused", id="fused-causal-L>S"),
    pytest.param(7, 11, "bool-row", True, None, "fused", id="fused-causal-LS-mask"),
    pytest.param(11, 7, "pad-batch0", True, None, "offset-causal", id="offset-causal-pad"),
    pytest.param(7, 11, "float-pad-batch0", True, None, "offset-causal", id="offset-causal-float"),
    pytest.param(11, 7, None, True, 2, "windowed", id="windowed-causal-L>S"),
    pytest.param(7, 11, "pad-batch0", False, 3, "windowed", id="windowed-pad"),
    pytest.param(7, 11, "float-pad-batch0", False, 3, "windowed", id="windowed-float-pad"),
    pytest.param(7, 11, "bool-row", False, 3, "math", id="math-bool"),
    pytest.param(7, 11, "float-row", True, 3, "math", id="math-float"),
]


def empty_row_mask(kind, L, S, dtype):
    if kind is None:
        return None
    if kind in ("bool-row", "float-row"):
        mask = oracle.rand_bool(L, S, seed=2)
        mask[2] = False  # query 2 sees nothing
        mask[:, 0] |= torch.arange(L) != 2  # every other query sees key 0
        if kind == "float-row":
            return torch.zeros(L, S, dtype=dtype).masked_fill(~mask, float("-inf"))
        return mask
    mask = torch.ones(B, 1, 1, S, dtype=torch.bool)
    mask[0] = False  # batch element 0 has no real key
    if kind.startswith("float"):
        return torch.zeros(B, 1, 1, S, dtype=dtype).masked_fill(~mask, float("-inf"))
    return mask


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("L", "S", "kind", "causal", "window", "path"), EMPTY_ROWS)
def test_fully_masked_rows_are_zero_with_zero_grads(L, S, kind, causal, window, path, dtype):
    q, k, v = (t.requires_grad_() for t in qkv(L, S, seed=11, dtype=dtype))
    mask = empty_row_mask(kind, L, S, dtype)
    assert plan(L, S, mask, causal=causal, window=window).path == path
    visible = oracle.visibility(L, S, causal, window)
    if mask is not None:
        allowed = mask if mask.dtype == torch.bool else ~torch.isneginf(mask)
        visible = visible & allowed
    empty = ~visible.expand(B, H, L, S).any(-1)  # (B, H, L)
    assert empty.any()

    out = al.scaled_dot_product_attention(q, k, v, mask, causal=causal, window=window)
    ref, _ = oracle.attention(q, k, v, mask, causal=causal, window=window)
    assert torch.isfinite(out).all()
    assert (out[empty] == 0).all()
    assert oracle.rel_err(out, ref) <= oracle.tolerance(dtype)

    (out * oracle.randn(*out.shape, seed=12, dtype=dtype)).sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    assert (q.grad[empty] == 0).all()


# --- gradients -----------------------------------------------------------------------------

GRAD_CASES = [
    pytest.param(4, 6, None, False, None, "fused", id="fused"),
    pytest.param(4, 6, "pad-bool", False, None, "fused", id="fused-bool"),
    pytest.param(4, 6, "ls-float", False, None, "fused", id="fused-float"),
    pytest.param(5, 5, None, True, None, "fused", id="fused-causal"),
    pytest.param(6, 4, None, True, None, "fused", id="fused-causal-L>S"),
    pytest.param(4, 6, None, True, None, "fused", id="fused-causal-L<S"),
    pytest.param(6, 6, "pad-bool", True, None, "offset-causal", id="offset-causal-pad"),
    pytest.param(7, 4, "pad-bool", True, None, "offset-causal", id="offset-causal-pad-L>S"),
    pytest.param(4, 6, None, False, 2, "windowed", id="windowed"),
    pytest.param(6, 4, "pad-bool", True, 2, "windowed", id="windowed-causal-pad"),
    pytest.param(4, 6, "ls-bool", False, 2, "math", id="math"),
    pytest.param(4, 6, "full-bool", True, 3, "math", id="math-causal"),
]


@pytest.mark.parametrize(("L", "S", "mask_kind", "causal", "window", "path"), GRAD_CASES)
def test_gradcheck(L, S, mask_kind, causal, window, path):
    q, k, v = (t.requires_grad_() for t in qkv(L, S, e=3, ev=2, seed=21))
    mask = make_mask(mask_kind, L, S, seed=22)
    assert plan(L, S, mask, causal=causal, window=window).path == path

    def fn(q, k, v):
        return al.scaled_dot_product_attention(q, k, v, mask, causal=causal, window=window)

    assert gradcheck(fn, (q, k, v))


def test_gradcheck_offset_causal_without_a_mask(monkeypatch):
    # Bottom-right causal with L < S takes offset-causal above SMALL_OFFSET pairs; force it.
    monkeypatch.setattr(sdpa_module, "SMALL_OFFSET", 0)
    q, k, v = (t.requires_grad_() for t in qkv(4, 6, e=3, ev=2, seed=23))
    assert plan(4, 6, None, causal=True, window=None).path == "offset-causal"

    def fn(q, k, v):
        return al.scaled_dot_product_attention(q, k, v, causal=True)

    assert gradcheck(fn, (q, k, v))


def test_small_and_large_bottom_right_causal_agree(monkeypatch):
    q, k, v = qkv(9, 20, seed=24)
    small = al.scaled_dot_product_attention(q, k, v, causal=True)  # one call, (L, S) mask
    monkeypatch.setattr(sdpa_module, "SMALL_OFFSET", 0)
    assert oracle.rel_err(al.scaled_dot_product_attention(q, k, v, causal=True), small) <= 1e-12
    assert oracle.rel_err(small, oracle.attention(q, k, v, causal=True)[0]) <= 1e-6


# --- dropout -------------------------------------------------------------------------------


@pytest.mark.parametrize(("L", "S", "mask_kind", "causal", "window"), PATH_CASES)
def test_dropout_applies_on_every_path(L, S, mask_kind, causal, window):
    q, k, v = qkv(L, S, seed=31)
    mask = make_mask(mask_kind, L, S, seed=32)
    plain = al.scaled_dot_product_attention(q, k, v, mask, causal=causal, window=window)
    torch.manual_seed(0)
    first = al.scaled_dot_product_attention(q, k, v, mask, causal=causal, window=window,
                                            dropout_p=0.5)
    second = al.scaled_dot_product_attention(q, k, v, mask, causal=causal, window=window,
                                             dropout_p=0.5)
    torch.manual_seed(0)
    again = al.scaled_dot_product_attention(q, k, v, mask, causal=causal, window=window,
                                            dropout_p=0.5)
    assert not torch.allclose(first, plain)
    assert not torch.allclose(first, second)
    torch.testing.assert_close(first, again)
    zero = al.scaled_dot_product_attention(q, k, v, mask, causal=causal, window=window,
                                           dropout_p=0.0)
    torch.testing.assert_close(zero, plain)


# --- half precision and extreme scores -----------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize(("L", "S", "mask_kind", "causal", "window"), PATH_CASES)
def test_half_precision_close_to_float64(L, S, mask_kind, causal, window, dtype):
    q, k, v = qkv(L, S, seed=41)
    mask = make_mask(mask_kind, L, S, seed=42)
    low_mask = mask if mask is None or mask.dtype == torch.bool else mask.to(dtype)
    out = al.scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype), low_mask,
                                          causal=causal, window=window)
    ref, _ = oracle.attention(q, k, v, mask, causal=causal, window=window)
    assert out.dtype == dtype
    assert oracle.rel_err(out, ref) <= 2e-2


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("L", "S", "mask_kind", "causal", "window"), PATH_CASES)
def test_huge_scores_stay_finite_and_correct(L, S, mask_kind, causal, window, dtype):
    q, k, v = qkv(L, S, seed=51)
    q, k = q * 100, k * 100  # scores of magnitude ~1e4
    mask = make_mask(mask_kind, L, S, seed=52, dtype=dtype)
    out = al.scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype), mask,
                                          causal=causal, window=window)
    ref, _ = oracle.attention(q, k, v, mask, causal=causal, window=window)
    assert (q @ k.transpose(-2, -1)).abs().max() / math.sqrt(E) > 1e3
    assert torch.isfinite(out).all()
    assert oracle.rel_err(out, ref) <= oracle.tolerance(dtype)


# --- parity with torch.nn.functional.scaled_dot_product_attention --------------------------


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", ["none", "bool", "float", "causal"])
def test_parity_with_torch_sdpa(kind, seed):
    gen = torch.Generator().manual_seed(seed)
    L = int(torch.randint(1, 13, (), generator=gen))
    S = L if kind == "causal" else int(torch.randint(1, 13, (), generator=gen))
    q, k, v = qkv(L, S, seed=seed)
    mask = None
    if kind == "bool":
        mask = oracle.rand_bool(B, 1, L, S, seed=seed)
        mask[..., 0] = True  # torch gives NaN on rows that see nothing
    elif kind == "float":
        mask = oracle.randn(L, S, seed=seed)
    ours = al.scaled_dot_product_attention(q, k, v, mask, causal=kind == "causal")
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=kind == "causal")
    assert oracle.rel_err(ours, theirs) <= 1e-6


# --- bad input -----------------------------------------------------------------------------

Q, K, V = qkv(7, 11)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"key": K[..., :4]}, ValueError, r"query and key .*last dimension.*\(2, 3, 7, 5\).*"
                                          r"\(2, 3, 11, 4\)"),
        ({"value": V[..., :10, :]}, ValueError, r"key and value .*length S.*\(2, 3, 11, 5\).*"
                                                r"\(2, 3, 10, 4\)"),
        ({"key": K[:1].expand(3, H, 11, E).clone()}, ValueError, r"leading dims .*broadcast"),
        ({"mask": torch.ones(7, 10, dtype=torch.bool)}, ValueError,
         r"mask of shape \(7, 10\) does not broadcast to \(2, 3, 7, 11\)"),
        ({"mask": torch.ones(3, 1, 7, 11, dtype=torch.bool)}, ValueError,
         r"mask of shape \(3, 1, 7, 11\)"),
        ({"mask": torch.ones(7, 11, dtype=torch.int64)}, TypeError, r"mask .*bool.*torch\.int64"),
        ({"mask": [[True] * 11] * 7}, TypeError,
         r"mask must be a torch\.Tensor, got list"),
        ({"window": 0}, ValueError, r"window must be >= 1, got 0"),
        ({"window": -1}, ValueError, r"window must be >= 1, got -1"),
        ({"window": 1.5}, TypeError,
         r"window must be an int, got float 1\.5"),
        ({"window": True}, TypeError, r"window must be an int, got bool"),
        ({"scale": 0.0}, ValueError, r"scale must be > 0(\.0)?, got 0\.0"),
        ({"scale": -2.0}, ValueError, r"scale must be > 0(\.0)?, got -2\.0"),
        ({"scale": float("inf")}, ValueError, r"scale must be finite, got inf"),
        ({"scale": float("nan")}, ValueError, r"scale must not be NaN"),
        ({"dropout_p": 1.0}, ValueError, r"dropout_p must be < 1(\.0)?, got 1\.0"),
        ({"dropout_p": -0.1}, ValueError, r"dropout_p must be >= 0(\.0)?, got -0\.1"),
        ({"key": K.float()}, TypeError, r"query, key and value must share a dtype.*float32"),
        ({"value": V.float()}, TypeError,
         r"share a dtype, got query torch.float64, key torch.float64, value torch.float32"),
        ({"query": Q.long()}, TypeError,
         r"query must be a floating tensor, got dtype torch\.int64"),
        ({"query": Q[0, 0, 0]}, ValueError, r"query must have at least 2 dims, got shape \(5,\)"),
        ({"key": "k"}, TypeError,
         r"key must be a torch\.Tensor, got str"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {"query": Q, "key": K, "value": V} | kwargs
    query, key, value = args.pop("query"), args.pop("key"), args.pop("value")
    with pytest.raises(error, match=match):
        al.scaled_dot_product_attention(query, key, value, **args)


def test_dtype_mismatch_names_the_argument():
    with pytest.raises(TypeError, match=r"key .*torch\.float32.*query .*torch\.float64|"
                                        r"query .*torch\.float64.*key .*torch\.float32"):
        al.scaled_dot_product_attention(Q, K.float(), V)


# --- masks of every broadcastable rank, and mask dtypes ------------------------------------

@pytest.mark.parametrize("window", [None, 3])
@pytest.mark.parametrize(
    "shape",
    [
        (),
        (1,),
        (1, 11),
        (2, 1, 1, 1),
        (1, 3, 1, 11),
    ],
)
def test_mask_of_any_broadcastable_rank(shape, window):
    mask = oracle.rand_bool(*shape, seed=61) if shape else torch.tensor(True)
    out = al.scaled_dot_product_attention(Q, K, V, mask, window=window)
    ref, _ = oracle.attention(Q, K, V, mask, window=window)
    assert oracle.rel_err(out, ref) <= 1e-6


@pytest.mark.parametrize(
    "window",
    [None, 3],
)
def test_key_vector_mask(window):
    mask = oracle.rand_bool(11, seed=62)  # (S,): one flag per key
    out = al.scaled_dot_product_attention(Q, K, V, mask, window=window)
    ref, _ = oracle.attention(Q, K, V, mask, window=window)
    assert oracle.rel_err(out, ref) <= 1e-6


def test_size_one_mask_with_window():
    mask = torch.ones(1, 1, dtype=torch.bool)
    out = al.scaled_dot_product_attention(Q, K, V, mask, window=3)
    assert oracle.rel_err(out, oracle.attention(Q, K, V, mask, window=3)[0]) <= 1e-6


@pytest.mark.parametrize(
    ("mask_dtype", "query_dtype", "window"),
    [
        (torch.float32, torch.float64, None),
        (torch.float32, torch.float64, 3),
        (torch.float64, torch.float32, None),
        (torch.float64, torch.float32, 3),
        (torch.float32, torch.bfloat16, 3),
        (torch.float64, torch.bfloat16, 3),
    ],
)
def test_float_mask_of_another_dtype(mask_dtype, query_dtype, window):
    mask = oracle.rand_bias(2, 1, 1, 11, seed=63, dtype=mask_dtype)
    q, k, v = (t.to(query_dtype) for t in (Q, K, V))
    out = al.scaled_dot_product_attention(q, k, v, mask, window=window)
    ref, _ = oracle.attention(Q, K, V, mask, window=window)
    assert out.dtype == query_dtype
    assert oracle.rel_err(out, ref) <= oracle.tolerance(query_dtype)


@pytest.mark.parametrize(("L", "S"), [(1, 9), (5, 9), (7, 7), (300, 333)])
@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("window", [None, 4])
def test_grouped_heads_with_causal_and_padding(L, S, kind, window):
    # Grouped-query heads (H=6 query heads, G=2 key/value heads; the dispatcher ``attend``
    # that MultiHeadAttention calls) with a per-key padding mask and causal: offset-causal
    # (or fused when L == 1) without copying K/V per head.
    B, H, G, D = 2, 6, 2, 5
    q, k, v = oracle.randn(B, H, L, D, seed=71), oracle.randn(B, G, S, D, seed=72), \
        oracle.randn(B, G, S, D, seed=73)
    keep = torch.ones(B, 1, 1, S, dtype=torch.bool)
    keep[1, ..., S - 3:] = False  # row 1: the last three keys are padding
    mask = keep if kind == "bool" else torch.zeros(B, 1, 1, S, dtype=torch.float64).masked_fill(
        ~keep, float("-inf")) + oracle.randn(B, 1, 1, S, seed=74).clamp(-1, 1)
    out = attend(q, k, v, mask, causal=True, window=window, scale=D ** -0.5, dropout_p=0.0)
    ref, _ = oracle.attention(q, k.repeat_interleave(H // G, dim=1),
                              v.repeat_interleave(H // G, dim=1), mask, causal=True,
                              window=window)
    assert oracle.rel_err(out, ref) <= 1e-6
    if window is None:
        assert plan(L, S, mask, causal=L > 1, window=None).path == (
            "fused" if L == 1 else "offset-causal")


def test_the_cached_bottom_right_mask_serves_inference_then_training():
    # the small bottom-right causal path caches its (L, S) mask: first made under
    # inference_mode, it must serve a later differentiated call with the same numbers
    q, k, v = qkv(5, 9, seed=25)
    with torch.inference_mode():
        first = al.scaled_dot_product_attention(q, k, v, causal=True)
    q, k, v = (t.clone().requires_grad_() for t in (q, k, v))
    out = al.scaled_dot_product_attention(q, k, v, causal=True)
    out.sum().backward()
    assert oracle.rel_err(out, first) <= 1e-12
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (q, k, v))


@pytest.mark.parametrize(("L", "S"), [(1, 4), (3, 7), (5, 9), (40, 70)])
def test_grouped_heads_bottom_right_causal_without_a_mask(L, S):
    # the small path: one fused call with the cached (L, S) mask and grouped key/value heads
    B, H, G, D = 2, 6, 2, 5
    q, k, v = oracle.randn(B, H, L, D, seed=81), oracle.randn(B, G, S, D, seed=82), \
        oracle.randn(B, G, S, D, seed=83)
    assert plan(L, S, None, causal=L > 1, window=None).path == "fused"
    out = attend(q, k, v, None, causal=True, window=None, scale=D ** -0.5, dropout_p=0.0)
    ref, _ = oracle.attention(q, k.repeat_interleave(H // G, dim=1),
                              v.repeat_interleave(H // G, dim=1), None, causal=True)
    assert oracle.rel_err(out, ref) <= 1e-6
