import math

import pytest
import torch
from transformers.models.bloom.modeling_bloom import build_alibi_tensor

import oracle_positional as oracle
from attnlab.positional import AlibiBias, alibi_slopes

HEADS = [1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32]


@pytest.mark.parametrize("num_heads", HEADS)
def test_slopes_match_reference(num_heads):
    ref = torch.tensor(oracle.alibi_slopes(num_heads), dtype=torch.float64)
    assert oracle.relative_error(alibi_slopes(num_heads, dtype=torch.float64), ref) <= 1e-15
    assert oracle.relative_error(alibi_slopes(num_heads), ref) <= 1e-6
    assert alibi_slopes(num_heads).dtype == torch.float32


@pytest.mark.parametrize("num_heads", HEADS)
def test_slopes_match_hugging_face_bloom(num_heads):
    # With an all-ones mask, Bloom's alibi[h, 0, j] = slope_h * j.
    alibi = build_alibi_tensor(torch.ones(1, 3, dtype=torch.long), num_heads, torch.float32)
    assert oracle.relative_error(alibi_slopes(num_heads), alibi[:, 0, 1]) <= 1e-6


def test_power_of_two_slopes_are_geometric():
    torch.testing.assert_close(
        alibi_slopes(8, dtype=torch.float64),
        torch.tensor([2.0 ** -(k + 1) for k in range(8)], dtype=torch.float64),
        rtol=0,
        atol=0,
    )
    assert math.isclose(alibi_slopes(16)[0].item(), 2**-0.5, rel_tol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    ("num_heads", "length", "keys"), [(3, 7, 11), (5, 1, 1), (6, 1, 9), (12, 7, 7)]
)
def test_bias_matches_oracle(dtype, num_heads, length, keys):
    out = AlibiBias(num_heads)(length, keys, dtype=dtype)
    assert out.shape == (num_heads, length, keys)
    assert out.dtype == dtype
    assert oracle.relative_error(
        out, oracle.alibi_bias(num_heads, length, keys)
    ) <= oracle.tolerance(dtype)


def test_bias_is_bottom_right_aligned_for_decoding():
    bias = AlibiBias(5)
    full = bias(9, 9)
    torch.testing.assert_close(bias(1, 9), full[:, -1:], rtol=0, atol=0)
    torch.testing.assert_close(bias(3, 9), full[:, -3:], rtol=0, atol=0)
    diagonal = torch.diagonal(bias(4, 9), offset=5, dim1=1, dim2=2)
    assert (diagonal == 0).all()
    assert not torch.signbit(diagonal).any()
    assert (full <= 0).all()


def test_causal_part_equals_bloom_up_to_a_row_constant():
    num_heads, length = 6, 7
    ours = AlibiBias(num_heads)(length, length)  # (H, L, S)
    bloom = build_alibi_tensor(torch.ones(1, length, dtype=torch.long), num_heads, torch.float32)
    diff = ours - bloom  # (H, L, S); Bloom broadcasts (H, 1, S) over queries
    for i in range(length):
        visible = diff[:, i, : i + 1]
        torch.testing.assert_close(visible, visible[:, :1].expand_as(visible))


def test_module_attributes():
    bias = AlibiBias(3, causal=False)
    assert bias.kind == "bias"
    assert bias.causal is False
    assert bias.num_heads == 3
    assert bias.state_dict() == {}
    torch.testing.assert_close(bias.slopes, alibi_slopes(3))
    assert bias(2, 3, dtype=torch.float16).dtype == torch.float16


def test_errors():
    with pytest.raises(ValueError, match=r"num_heads must be >= 1, got 0"):
        alibi_slopes(0)
    with pytest.raises(ValueError, match=r"num_heads must be >= 1, got -3"):
        AlibiBias(-3)
    with pytest.raises(TypeError, match=r"causal must be a bool, got int 1|parameter .causal."):
        AlibiBias(4, causal=1)
    bias = AlibiBias(4)
    with pytest.raises(ValueError, match=r"L must be >= 1, got 0"):
        bias(0, 3)
    with pytest.raises(ValueError, match=r"S must be >= 1, got 0"):
        bias(2, 0)
