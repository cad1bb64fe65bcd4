import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

import oracle_positional as oracle
from attnlab.positional import RotaryEmbedding


def randn(*shape, dtype=torch.float64, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    ("batch", "heads", "length", "head_dim", "offset", "theta"),
    [
        (2, 3, 7, 6, 0, 10000.0),
        (2, 3, 7, 6, 5, 500000.0),
        (1, 1, 1, 2, 9, 10000.0),
        (1, 5, 11, 10, 100, 10.0),
    ],
)
def test_offset_matches_oracle(dtype, batch, heads, length, head_dim, offset, theta):
    x = randn(batch, heads, length, head_dim, dtype=dtype)
    out = RotaryEmbedding(head_dim, theta=theta)(x, offset=offset)
    ref = oracle.rotary(x, [list(range(offset, offset + length))] * batch, theta)
    assert out.shape == x.shape
    assert out.dtype == dtype
    assert oracle.relative_error(out, ref) <= oracle.tolerance(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_positions_match_oracle(dtype):
    x = randn(2, 3, 7, 6, dtype=dtype)
    rope = RotaryEmbedding(6)
    per_batch = torch.tensor([[4, 0, 2, 9, 1, 3, 3], [0, 1, 2, 3, 4, 5, 6]])
    ref = oracle.rotary(x, per_batch.tolist())
    assert oracle.relative_error(rope(x, positions=per_batch), ref) <= oracle.tolerance(dtype)
    shared = torch.tensor([7, 3, 5, 0, 12, 6, 2])
    ref = oracle.rotary(x, [shared.tolist()] * 2)
    assert oracle.relative_error(rope(x, positions=shared), ref) <= oracle.tolerance(dtype)


def test_offset_equals_explicit_positions_and_cache_grows_lazily():
    rope = RotaryEmbedding(6, max_len=4)
    x = randn(2, 3, 7, 6, dtype=torch.float32)
    out = rope(x, offset=10)  # needs positions up to 16 > max_len
    torch.testing.assert_close(out, rope(x, positions=torch.arange(10, 17)))
    ref = oracle.rotary(x, [list(range(10, 17))] * 2)
    assert oracle.relative_error(out, ref) <= 1e-5
    assert rope.state_dict() == {}
    assert rope.kind == "rotary"


def test_matches_hugging_face_llama():
    config = LlamaConfig(
        hidden_size=18,
        num_attention_heads=3,
        head_dim=6,
        rope_theta=500000.0,
        max_position_embeddings=32,
    )
    hf_rope = LlamaRotaryEmbedding(config)
    q, k = randn(2, 3, 7, 6, dtype=torch.float32), randn(2, 3, 7, 6, dtype=torch.float32, seed=1)
    position_ids = torch.tensor([[0, 1, 2, 3, 4, 5, 6], [3, 4, 5, 6, 7, 8, 9]])
    cos, sin = hf_rope(q, position_ids)
    hf_q, hf_k = apply_rotary_pos_emb(q, k, cos, sin)
    rope = RotaryEmbedding(6, theta=500000.0)
    torch.testing.assert_close(rope.inv_freq(), hf_rope.inv_freq, rtol=0, atol=0)
    assert oracle.relative_error(rope(q, positions=position_ids), hf_q) <= 1e-6
    assert oracle.relative_error(rope(k, positions=position_ids), hf_k) <= 1e-6


def test_low_precision_is_computed_in_float32_and_cast_back():
    x = randn(1, 2, 5, 8, dtype=torch.float32)
    rope = RotaryEmbedding(8)
    out = rope(x.to(torch.bfloat16), offset=3)
    assert out.dtype == torch.bfloat16
    expected = rope(x.to(torch.bfloat16).float(), offset=3).to(torch.bfloat16)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_cache_built_under_inference_mode_is_usable_for_training():
    rope = RotaryEmbedding(4)
    with torch.inference_mode():
        rope(torch.ones(1, 1, 3, 4))
    x = torch.ones(1, 1, 3, 4, requires_grad=True)
    rope(x).pow(2).sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()


@settings(max_examples=40, deadline=None)
@given(
    half=st.integers(1, 8),
    m=st.integers(0, 300),
    n=st.integers(0, 300),
    shift=st.integers(0, 300),
    seed=st.integers(0, 2**16),
)
def test_scores_depend_only_on_relative_position(half, m, n, shift, seed):
    rope = RotaryEmbedding(2 * half)
    q, k = randn(1, 1, 1, 2 * half, seed=seed), randn(1, 1, 1, 2 * half, seed=seed + 1)
    score = (rope(q, offset=m) * rope(k, offset=n)).sum()
    shifted = (rope(q, offset=m + shift) * rope(k, offset=n + shift)).sum()
    assert abs(score - shifted).item() <= 1e-10 * (q.norm() * k.norm()).item()


@settings(max_examples=40, deadline=None)
@given(
    half=st.integers(1, 8),
    length=st.integers(1, 9),
    offset=st.integers(0, 5000),
    seed=st.integers(0, 2**16),
)
def test_rotation_preserves_norms(half, length, offset, seed):
    x = randn(2, 3, length, 2 * half, seed=seed)
    out = RotaryEmbedding(2 * half, max_len=8)(x, offset=offset)
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1), rtol=1e-12, atol=0)


def test_errors():
    with pytest.raises(ValueError, match=r"head_dim must be even for rotary embeddings, got 7"):
        RotaryEmbedding(7)
    with pytest.raises(ValueError, match=r"head_dim must be >= 2, got 0"):
        RotaryEmbedding(0)
    with pytest.raises(ValueError, match=r"theta must be > 0.0, got 0.0"):
        RotaryEmbedding(6, theta=0.0)
    with pytest.raises(ValueError, match=r"max_len must be >= 1, got 0"):
        RotaryEmbedding(6, max_len=0)
    rope = RotaryEmbedding(6)
    x = torch.zeros(2, 3, 7, 6)
    with pytest.raises(
        ValueError, match=r"x must have last dimension 6 \(head_dim\), got shape \(2, 3, 7, 5\)"
    ):
        rope(torch.zeros(2, 3, 7, 5))
    with pytest.raises(ValueError, match=r"offset must be >= 0, got -1"):
        rope(x, offset=-1)
    with pytest.raises(
        ValueError, match=r"pass either offset or positions, not both; got offset=2"
    ):
        rope(x, offset=2, positions=torch.arange(7))
    with pytest.raises(
        TypeError, match=r"positions must be an integer tensor, got dtype torch.float32"
    ):
        rope(x, positions=torch.arange(7.0))
    with pytest.raises(
        ValueError, match=r"positions must have shape \(L,\) = \(7,\) .* got \(6,\)"
    ):
        rope(x, positions=torch.arange(6))
    with pytest.raises(ValueError, match=r"positions must have shape .* got \(3, 7\)"):
        rope(x, positions=torch.zeros(3, 7, dtype=torch.long))
    with pytest.raises(
        ValueError, match=r"positions must have shape .* got \(2, 7\) for x of shape \(2, 7, 6\)"
    ):
        rope(torch.zeros(2, 7, 6), positions=torch.zeros(2, 7, dtype=torch.long))
