"""MultiHeadAttention against the float64 oracle built from the module's own projections."""

import pytest
import torch
from torch.autograd import gradcheck

import attnlab as al
import oracle

B, E, H = 2, 18, 6  # head_dim 3


def reference(module, query, key=None, value=None, mask=None):
    key = query if key is None else key
    value = key if value is None else value
    return oracle.multi_head(
        query, key, value, oracle.module_params(module), num_heads=module.num_heads,
        num_kv_heads=module.num_kv_heads, mask=mask, causal=module.causal, window=module.window,
    )


def make_mask(kind, L, S, seed=0):
    if kind is None:
        return None
    if kind == "pad":
        mask = oracle.rand_bool(B, 1, 1, S, seed=seed)
        mask[1] = True  # batch 1 unpadded, batch 0 random (possibly with empty rows)
        return mask
    if kind == "full":
        return oracle.rand_bool(B, H, L, S, seed=seed)
    if kind == "ls-float":
        return oracle.rand_bias(L, S, seed=seed, dtype=torch.float32)
    raise AssertionError(kind)


SHAPES = [pytest.param(7, None, id="self-L7"), pytest.param(7, 11, id="cross-L7-S11"),
          pytest.param(11, 7, id="cross-L11-S7")]
SETTINGS = [(False, None), (True, None), (False, 2), (True, 3)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mask_kind", [None, "pad", "full", "ls-float"])
@pytest.mark.parametrize(("causal", "window"), SETTINGS)
@pytest.mark.parametrize(("L", "S"), SHAPES)
@pytest.mark.parametrize("num_kv_heads", [None, 3, 1])
def test_matches_oracle(num_kv_heads, L, S, causal, window, mask_kind, dtype):
    torch.manual_seed(L * 10 + (S or 0))
    module = al.MultiHeadAttention(E, H, num_kv_heads=num_kv_heads, causal=causal,
                                   window=window).to(dtype)
    if num_kv_heads is not None:
        assert module.k_proj.out_features == num_kv_heads * 3
        assert module.v_proj.out_features == num_kv_heads * 3
    query = oracle.randn(B, L, E, seed=1, dtype=dtype)
    key = None if S is None else oracle.randn(B, S, E, seed=2, dtype=dtype)
    mask = make_mask(mask_kind, L, S or L, seed=3)
    out = module(query, key, mask=mask)
    ref, _ = reference(module, query, key, mask=mask)
    assert out.shape == (B, L, E)
    assert out.dtype == dtype
    assert oracle.rel_err(out, ref) <= oracle.tolerance(dtype)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(("kdim", "vdim"), [(5, 7), (7, 7), (E, 4)])
def test_kdim_vdim(kdim, vdim, bias):
    torch.manual_seed(kdim + vdim)
    module = al.MultiHeadAttention(E, H, kdim=kdim, vdim=vdim, bias=bias).double()
    assert (module.q_proj.bias is None) == (not bias)
    query = oracle.randn(B, 7, E, seed=1)
    key, value = oracle.randn(B, 11, kdim, seed=2), oracle.randn(B, 11, vdim, seed=3)
    mask = make_mask("pad", 7, 11, seed=4)
    out = module(query, key, value, mask=mask)
    ref, _ = reference(module, query, key, value, mask=mask)
    assert oracle.rel_err(out, ref) <= 1e-6


@pytest.mark.parametrize(("L", "S"), [(1, 1), (1, 11), (11, 1)])
@pytest.mark.parametrize("causal", [False, True])
def test_batch_one_length_one(L, S, causal):
    torch.manual_seed(0)
    module = al.MultiHeadAttention(E, H, num_kv_heads=2, causal=causal).double()
    query, key = oracle.randn(1, L, E, seed=1), oracle.randn(1, S, E, seed=2)
    out = module(query, key)
    ref, _ = reference(module, query, key)
    assert out.shape == (1, L, E)
    assert oracle.rel_err(out, ref) <= 1e-6


def test_head_dim_need_not_divide_embed_dim():
    torch.manual_seed(0)
    module = al.MultiHeadAttention(10, 3, head_dim=4, num_kv_heads=1, causal=True).double()
    query = oracle.randn(B, 7, 10, seed=1)
    ref, _ = reference(module, query)
    assert oracle.rel_err(module(query), ref) <= 1e-6


def test_value_defaults_to_key():
    torch.manual_seed(0)
    module = al.MultiHeadAttention(E, H).double()
    query, key = oracle.randn(B, 7, E, seed=1), oracle.randn(B, 11, E, seed=2)
    torch.testing.assert_close(module(query, key), module(query, key, key))


def test_fully_masked_rows_output_bias_only_and_finite_grads():
    torch.manual_seed(0)
    module = al.MultiHeadAttention(E, H, bias=False).double()
    query = oracle.randn(B, 7, E, seed=1).requires_grad_()
    mask = torch.ones(B, 1, 1, 7, dtype=torch.bool)
    mask[0] = False  # batch 0 sees nothing
    out = module(query, mask=mask)
    assert (out[0] == 0).all()  # zero attention output through bias-free out_proj
    out.sum().backward()
    assert torch.isfinite(query.grad).all()
    assert (query.grad[0] == 0).all()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters())


# --- dropout -------------------------------------------------------------------------------


@pytest.mark.parametrize(("causal", "window", "L", "S"), [(False, None, 7, 7), (True, None, 7, 11),
                                                           (False, 2, 7, 11)])
def test_dropout_only_in_training(causal, window, L, S):
    torch.manual_seed(0)
    module = al.MultiHeadAttention(E, H, dropout=0.5, causal=causal, window=window).double()
    query, key = oracle.randn(B, L, E, seed=1), oracle.randn(B, S, E, seed=2)
    module.eval()
    first, second = module(query, key), module(query, key)
    torch.testing.assert_close(first, second)
    ref, _ = reference(module, query, key)
    assert oracle.rel_err(first, ref) <= 1e-6
    module.train()
    assert not torch.allclose(module(query, key), module(query, key))
    assert not torch.allclose(module(query, key), first)


def test_no_dropout_train_equals_eval():
    torch.manual_seed(0)
    module = al.MultiHeadAttention(E, H, dropout=0.0, causal=True).double()
    query = oracle.randn(B, 7, E, seed=1)
    train_out = module.train()(query)
    torch.testing.assert_close(train_out, module.eval()(query))


# --- gradients -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num_kv_heads", "causal", "window", "L", "S", "mask_kind"),
    [(None, False, None, 3, 4, None), (2, True, None, 3, 4, None), (1, True, 2, 4, 3, "pad"),
     (None, False, 2, 3, 4, "full")],
)
def test_gradcheck(num_kv_heads, causal, window, L, S, mask_kind):
    torch.manual_seed(0)
    module = al.MultiHeadAttention(4, 2, num_kv_heads=num_kv_heads, causal=causal,
                                   window=window).double()
    query = oracle.randn(1, L, 4, seed=1).requires_grad_()
    key = oracle.randn(1, S, 4, seed=2).requires_grad_()
    mask = None
    if mask_kind == "pad":
        mask = torch.tensor([True, False, True]).view(1, 1, 1, S)
    elif mask_kind == "full":
        mask = oracle.rand_bool(1, 2, L, S, seed=3)
    assert gradcheck(lambda q, k, *params: module(q, k, mask=mask),
                     (query, key, *module.parameters()))


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: al.MultiHeadAttention(10, 3), ValueError,
         r"embed_dim \(10\) must be divisible by num_heads \(3\)"),
        (lambda: al.MultiHeadAttention(12, 6, num_kv_heads=4), ValueError,
         r"num_heads \(6\) must be divisible by num_kv_heads \(4\)"),
        (lambda: al.MultiHeadAttention(12, 0), ValueError, r"num_heads must be >= 1, got 0"),
        (lambda: al.MultiHeadAttention(12, 6, num_kv_heads=0), ValueError,
         r"num_kv_heads must be >= 1, got 0"),
        (lambda: al.MultiHeadAttention(12, 6, dropout=1.5), ValueError,
         r"dropout must be < 1(\.0)?, got 1\.5"),
        (lambda: al.MultiHeadAttention(12, 6, dropout=-0.5), ValueError,
         r"dropout must be >= 0(\.0)?, got -0\.5"),
        (lambda: al.MultiHeadAttention(12, 6, window=0), ValueError, r"window must be >= 1, got 0"),
        (lambda: al.MultiHeadAttention(12, 6, window=-1), ValueError,
         r"window must be >= 1, got -1"),
        (lambda: al.MultiHeadAttention(12, 6)(torch.randn(2, 3, 11)), ValueError,
         r"query must have shape \(B, L, 12\).*got \(2, 3, 11\)"),
        (lambda: al.MultiHeadAttention(12, 6, kdim=5)(torch.randn(2, 3, 12), torch.randn(2, 4, 6)),
         ValueError, r"key must have shape \(B, .*5\).*got \(2, 4, 6\)"),
        (lambda: al.MultiHeadAttention(12, 6, vdim=5)(
            torch.randn(2, 3, 12), torch.randn(2, 4, 12), torch.randn(2, 4, 6)),
         ValueError, r"value must have shape \(B, .*5\).*got \(2, 4, 6\)"),
        (lambda: al.MultiHeadAttention(12, 6)(torch.randn(3, 12)), ValueError,
         r"query must have shape \(B, L, 12\).*got \(3, 12\)"),
        (lambda: al.MultiHeadAttention(12, 6)(torch.randn(2, 3, 12), torch.randn(1, 4, 12)),
         ValueError, r"same batch size B, got 2, 1, 1"),
        (lambda: al.MultiHeadAttention(12, 6)(
            torch.randn(2, 3, 12), torch.randn(2, 4, 12), torch.randn(2, 5, 12)),
         ValueError, r"same length S, got key \(2, 4, 12\) and value \(2, 5, 12\)"),
        (lambda: al.MultiHeadAttention(12, 6)(
            torch.randn(2, 3, 12), mask=torch.ones(2, 4, 3, 3, dtype=torch.bool)),
         ValueError, r"mask of shape \(2, 4, 3, 3\) does not broadcast to \(2, 6, 3, 3\)"),
        (lambda: al.MultiHeadAttention(12, 6)(
            torch.randn(2, 3, 12), mask=torch.ones(3, 3, dtype=torch.int32)),
         TypeError, r"mask .*torch\.int32"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_value_omitted_with_different_vdim_is_a_clear_error():
    module = al.MultiHeadAttention(6, 2, kdim=4, vdim=3)
    with pytest.raises(ValueError, match=r"value.*vdim"):
        module(torch.randn(2, 5, 6), torch.randn(2, 7, 4))


def test_autocast_inputs_are_accepted():
    # Under autocast the module casts for itself: a bf16 input to float32 weights is fine
    # (outside autocast the same call is a TypeError naming both dtypes).
    torch.manual_seed(0)
    mha = al.MultiHeadAttention(16, 4, causal=True)
    x = torch.randn(2, 5, 16)
    expected = mha(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = mha(x.bfloat16(), mask=torch.ones(2, 1, 1, 5, dtype=torch.bool))
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), expected, atol=5e-2, rtol=5e-2)
    with pytest.raises(TypeError, match="has dtype torch.bfloat16 but the module's parameters"):
        mha(x.bfloat16())
