"""Hostile inputs to the functional API (issue 11): each is answered right or refused clearly.

Empty dimensions are computed (against the float64 oracle); values that can only
give NaN, options that are not bools, and tensors without data or on different
devices are refused with a ValueError/TypeError naming the argument.
"""

import pytest
import torch

import attnlab as al
import oracle

SDPA = al.scaled_dot_product_attention

PATHS = {  # kwargs that steer the dispatcher to each path (see attnlab.functional.plan)
    "fused": {},
    "causal": {"causal": True},
    "windowed": {"window": 2},
    "windowed-causal": {"window": 3, "causal": True},
    "bool-mask": {"mask": "bool"},
    "float-mask": {"mask": "float"},
    "causal-key-mask": {"causal": True, "mask": "key"},
}


def _mask(kind, B, L, S, seed):
    if kind == "bool":
        return oracle.rand_bool(L, S, seed=seed)
    if kind == "float":
        return oracle.rand_bias(L, S, seed=seed, dtype=torch.float32)
    if kind == "key":
        return oracle.rand_bool(B, 1, 1, S, seed=seed)
    return None


@pytest.mark.parametrize("value", ["False", "no", None, 0, 1, 1.0, torch.tensor(True)])
def test_causal_must_be_a_bool(value):
    q = torch.randn(2, 5, 8)
    with pytest.raises(TypeError, match=r"causal must be True or False, got"):
        SDPA(q, q, q, causal=value)
    with pytest.raises(TypeError, match=r"causal must be True or False, got"):
        al.attention_weights(q, q, causal=value)


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize(("B", "L", "S"), [(0, 5, 7), (2, 0, 7), (2, 5, 0), (2, 0, 0), (1, 3, 0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_empty_dims_on_every_path(path, B, L, S, dtype):
    """B, L or S = 0: the output has the right (empty) shape; with S = 0 every row is zero."""
    kw = dict(PATHS[path])
    mask = _mask(kw.pop("mask", None), B, L, S, seed=L + S)
    q, k, v = (oracle.randn(B, 3, n, w, seed=i, dtype=dtype).requires_grad_()
               for i, (n, w) in enumerate([(L, 8), (S, 8), (S, 6)]))
    out = SDPA(q, k, v, mask, **kw)
    expected, weights = oracle.attention(q, k, v, mask, **kw)
    assert out.shape == (B, 3, L, 6)
    assert out.dtype == dtype
    assert oracle.rel_err(out, expected) <= oracle.tolerance(dtype)
    if S == 0:
        assert bool((out == 0).all())
    w = al.attention_weights(q, k, mask, **kw)
    assert w.shape == (B, 3, L, S)
    assert oracle.rel_err(w, weights) <= oracle.tolerance(dtype)
    out.sum().backward()  # gradients exist, are finite and shaped like the inputs
    for t in (q, k, v):
        assert t.grad is None or (t.grad.shape == t.shape and bool(torch.isfinite(t.grad).all()))


def test_empty_dims_grouped_heads():
    """Grouped-query heads (H=4 over G=2) with no keys: zeros of shape (B, H, L, Ev)."""
    out = al.functional.attend(torch.randn(2, 4, 5, 8), torch.randn(2, 2, 0, 8),
                               torch.randn(2, 2, 0, 6), None, causal=True, window=None,
                               scale=0.5, dropout_p=0.0)
    assert out.shape == (2, 4, 5, 6)
    assert bool((out == 0).all())


def test_empty_dims_plan_says_why():
    assert al.functional.plan(5, 0, None, causal=False, window=2, empty=True).path == "math"


def test_zero_width_is_refused():
    with pytest.raises(ValueError, match=r"width E >= 1 .*got query \(2, 5, 0\)"):
        SDPA(torch.randn(2, 5, 0), torch.randn(2, 7, 0), torch.randn(2, 7, 3))
    with pytest.raises(ValueError, match=r"width E >= 1"):
        al.attention_weights(torch.randn(5, 0), torch.randn(7, 0))


def test_zero_value_width_is_computed():
    out = SDPA(torch.randn(2, 5, 4), torch.randn(2, 7, 4), torch.randn(2, 7, 0))
    assert out.shape == (2, 5, 0)


def test_meta_and_mixed_devices_are_refused():
    x, meta = torch.randn(2, 5, 8), torch.randn(2, 5, 8, device="meta")
    with pytest.raises(ValueError, match=r"query is on the meta device"):
        SDPA(meta, meta, meta)
    with pytest.raises(ValueError, match=r"key is on the meta device"):
        SDPA(x, meta, x)
    with pytest.raises(ValueError, match=r"value is on the meta device"):
        SDPA(x, x, meta, window=2)
    with pytest.raises(ValueError, match=r"mask is on the meta device"):
        SDPA(x, x, x, torch.ones(5, 5, dtype=torch.bool, device="meta"))
    with pytest.raises(ValueError, match=r"query is on the meta device"):
        al.attention_weights(meta, meta)


def test_device_mismatch_message():
    """Two real devices are not available on every test machine: check the comparison."""
    from attnlab._validate import check_device

    with pytest.raises(ValueError, match=r"key is on cpu, but query on cuda:0; move them"):
        check_device("key", torch.zeros(1), torch.device("cuda:0"), "query")
    check_device("key", torch.zeros(1), torch.device("cpu"), "query")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("kw", [{}, {"causal": True}, {"window": 2}], ids=["plain", "causal",
                                                                          "window"])
def test_float_mask_with_nan_or_plus_inf_is_refused(bad, kw):
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 8)
    mask = torch.zeros(1 if "window" in kw else 5, 7)
    mask[0, 2] = bad
    with pytest.raises(ValueError, match=r"mask \(an additive float bias\) holds (NaN|inf)"):
        SDPA(q, k, v, mask, **kw)
    with pytest.raises(ValueError, match=r"mask \(an additive float bias\)"):
        al.attention_weights(q, k, mask, **kw)


def test_float_mask_too_large_for_the_query_dtype_is_refused():
    """1e300 fits a float64 mask but is +inf once cast to the float32 scores."""
    q = torch.randn(2, 5, 8)
    mask = torch.zeros(5, 5, dtype=torch.float64)
    mask[1, 1] = 1e300
    with pytest.raises(ValueError, match=r"holds 1e\+300; a bias must be finite in torch.float32"):
        SDPA(q, q, q, mask)
    out = SDPA(q.double(), q.double(), q.double(), mask)  # in float64 it is a real bias
    assert oracle.rel_err(out, oracle.attention(q, q, q, mask)[0]) <= 1e-6


def test_minus_inf_bias_still_hides_keys():
    q, k, v = torch.randn(2, 5, 8), torch.randn(2, 7, 8), torch.randn(2, 7, 4)
    mask = oracle.rand_bias(5, 7, seed=3, dtype=torch.float32)
    mask[2] = float("-inf")  # a row that sees nothing
    out = SDPA(q, k, v, mask)
    assert oracle.rel_err(out, oracle.attention(q, k, v, mask)[0]) <= 1e-5
    assert bool((out[:, 2] == 0).all())


@pytest.mark.parametrize("kw", [{}, {"causal": True}, {"window": 3}], ids=["plain", "causal",
                                                                          "window"])
def test_scale_that_overflows_is_refused(kw):
    q, k, v = torch.randn(2, 5, 8), torch.randn(2, 7, 8), torch.randn(2, 7, 4)
    with pytest.raises(ValueError, match=r"scale=1e\+300 can make the scores overflow"):
        SDPA(q, k, v, scale=1e300, **kw)
    with pytest.raises(ValueError, match=r"scale=1e\+40 can make the scores overflow"):
        al.attention_weights(q, k, scale=1e40, **kw)
    with pytest.raises(ValueError, match=r"scale must be finite"):
        SDPA(q, k, v, scale=float("inf"), **kw)


@pytest.mark.parametrize("scale", [1.0, 7.5, 1e3, 1e30])
def test_large_scales_that_fit_are_exact(scale):
    """Scales above 1 that cannot overflow are computed, equal to the float64 oracle."""
    q, k, v = (oracle.randn(2, n, 8, seed=i, dtype=torch.float32) for i, n in
               enumerate([5, 7, 7]))
    out = SDPA(q, k, v, scale=scale, causal=True)
    expected = oracle.attention(q, k, v, causal=True, scale=scale)[0]
    assert oracle.rel_err(out, expected) <= 1e-5
