"""AdditiveAttention (Bahdanau): e_ij = w · tanh(W_q q_i + W_k k_j + b_k), against the oracle."""

import pytest
import torch
from torch.autograd import gradcheck

import attnlab as al
import oracle

B, E = 2, 6


def reference(module, query, key=None, value=None, mask=None):
    key = query if key is None else key
    value = key if value is None else value
    return oracle.additive(
        query, key, value, wq=module.q_proj.weight, bq=module.q_proj.bias,
        wk=module.k_proj.weight, bk=module.k_proj.bias, w=module.score_proj.weight,
        wv=module.v_proj.weight, bv=module.v_proj.bias, wo=module.out_proj.weight,
        bo=module.out_proj.bias, mask=mask, causal=module.causal, window=module.window,
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mask_kind", [None, "pad", "ls-float", "full"])
@pytest.mark.parametrize(("causal", "window"), [(False, None), (True, None), (False, 2),
                                                (True, 1)])
@pytest.mark.parametrize(("L", "S"), [(7, None), (7, 11), (11, 7), (1, 5)])
def test_matches_oracle(L, S, causal, window, mask_kind, dtype):
    torch.manual_seed(L)
    kdim = E if S is None else 4
    module = al.AdditiveAttention(E, kdim=kdim, hidden_dim=5, causal=causal,
                                  window=window).to(dtype)
    query = oracle.randn(B, L, E, seed=1, dtype=dtype)
    key = None if S is None else oracle.randn(B, S, kdim, seed=2, dtype=dtype)
    value = None if S is None else oracle.randn(B, S, kdim, seed=3, dtype=dtype)
    S = S or L
    mask = None
    if mask_kind == "pad":
        mask = oracle.rand_bool(B, 1, 1, S, seed=4)
    elif mask_kind == "ls-float":
        mask = oracle.rand_bias(L, S, seed=5, dtype=dtype)
    elif mask_kind == "full":
        mask = oracle.rand_bool(B, 1, L, S, seed=6)
    out = module(query, key, value, mask=mask)
    ref, _ = reference(module, query, key, value, mask)
    assert out.shape == (B, L, E)
    assert torch.isfinite(out).all()
    assert oracle.rel_err(out, ref) <= oracle.tolerance(dtype)


def test_weights_recorded_equal_oracle_weights():
    torch.manual_seed(0)
    module = al.AdditiveAttention(E, causal=True).double()
    x = oracle.randn(B, 5, E, seed=7)
    with al.capture_attention(module) as maps:
        module(x)
    _, ref = reference(module, x)
    assert maps[""].shape == (B, 1, 5, 5)
    assert oracle.rel_err(maps[""], ref) <= 1e-6


def test_fully_masked_rows_and_gradcheck():
    torch.manual_seed(0)
    module = al.AdditiveAttention(3, kdim=2, hidden_dim=2).double()
    query = oracle.randn(1, 3, 3, seed=8).requires_grad_()
    key = oracle.randn(1, 4, 2, seed=9).requires_grad_()
    mask = oracle.rand_bool(1, 1, 3, 4, seed=10)
    mask[..., 1, :] = False
    out = module(query, key, mask=mask)
    assert (out[:, 1] == 0).all()
    assert gradcheck(lambda q, k, *p: module(q, k, mask=mask), (query, key,
                                                                  *module.parameters()))


def test_dropout_only_in_training():
    torch.manual_seed(0)
    module = al.AdditiveAttention(E, dropout=0.5).double()
    x = oracle.randn(B, 7, E, seed=11)
    module.eval()
    torch.testing.assert_close(module(x), module(x))
    module.train()
    assert not torch.allclose(module(x), module(x))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: al.AdditiveAttention(0), ValueError, r"embed_dim must be >= 1, got 0"),
        (lambda: al.AdditiveAttention(6, hidden_dim=0), ValueError,
         r"hidden_dim must be >= 1, got 0"),
        (lambda: al.AdditiveAttention(6, window=0), ValueError, r"window must be >= 1, got 0"),
        (lambda: al.AdditiveAttention(6, dropout=2.0), ValueError, r"dropout must be < 1"),
        (lambda: al.AdditiveAttention(6)(torch.randn(2, 3, 5)), ValueError,
         r"query must have shape \(B, L, 6\).*got \(2, 3, 5\)"),
        (lambda: al.AdditiveAttention(6, kdim=4)(torch.randn(2, 3, 6), torch.randn(2, 5, 3)),
         ValueError, r"key must have shape \(B, .*4\).*got \(2, 5, 3\)"),
        (lambda: al.AdditiveAttention(6)(torch.randn(2, 3, 6),
                                         mask=torch.ones(2, 2, 3, 3, dtype=torch.bool)),
         ValueError, r"mask of shape \(2, 2, 3, 3\) does not broadcast to \(2, 1, 3, 3\)"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_key_value_length_mismatch():
    module = al.AdditiveAttention(6, kdim=4)
    with pytest.raises(ValueError, match=r"S"):
        module(torch.randn(2, 3, 6), torch.randn(2, 7, 4), torch.randn(2, 8, 4))


def test_batch_mismatch_is_an_error():
    module = al.AdditiveAttention(6, kdim=4)
    with pytest.raises(ValueError, match=r"B"):
        module(torch.randn(2, 3, 6), torch.randn(1, 7, 4))
