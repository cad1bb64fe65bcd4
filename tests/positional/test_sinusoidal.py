import pytest
import torch

import oracle_positional as oracle
from attnlab.positional import SinusoidalPositions, sinusoidal_table


@pytest.mark.parametrize(("max_len", "embed_dim"), [(11, 15), (7, 6), (3, 1), (1, 2)])
def test_table_matches_formula(max_len, embed_dim):
    ref = oracle.sinusoid_table(max_len, embed_dim)
    assert oracle.relative_error(sinusoidal_table(max_len, embed_dim), ref) <= 1e-12


def test_odd_embed_dim_ends_with_sine():
    table = sinusoidal_table(5, 3)
    angle = torch.arange(5, dtype=torch.float64) / 10000.0 ** (2 / 3)
    torch.testing.assert_close(table[:, 2], torch.sin(angle), rtol=0, atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    ("batch", "length", "offset"), [(2, 7, 0), (2, 7, 4), (1, 1, 10), (3, 11, 0)]
)
def test_forward_matches_oracle(dtype, batch, length, offset):
    max_len, embed_dim = 11, 15
    x = torch.randn(batch, length, embed_dim, generator=torch.Generator().manual_seed(0))
    x = x.to(dtype)
    out = SinusoidalPositions(max_len, embed_dim)(x, offset=offset)
    ref = x.double() + oracle.sinusoid_table(max_len, embed_dim)[offset : offset + length]
    assert out.dtype == dtype
    assert oracle.relative_error(out, ref) <= oracle.tolerance(dtype)


def test_table_is_a_non_persistent_buffer_and_follows_dtype():
    pos = SinusoidalPositions(8, 6)
    assert "table" in dict(pos.named_buffers())
    assert pos.state_dict() == {}
    x = torch.zeros(1, 3, 6, dtype=torch.bfloat16)
    assert pos(x).dtype == torch.bfloat16
    assert pos.kind == "absolute"


def test_gradient_flows_to_input():
    x = torch.randn(2, 4, 6, requires_grad=True)
    SinusoidalPositions(8, 6)(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))


def test_errors():
    pos = SinusoidalPositions(8, 6)
    with pytest.raises(
        ValueError, match=r"offset \(5\) \+ sequence length L \(4\) = 9 exceeds max_len \(8\)"
    ):
        pos(torch.zeros(1, 4, 6), offset=5)
    with pytest.raises(ValueError, match=r"offset must be >= 0, got -1"):
        pos(torch.zeros(1, 4, 6), offset=-1)
    with pytest.raises(
        ValueError, match=r"x must have last dimension 6 \(embed_dim\), got shape \(1, 4, 5\)"
    ):
        pos(torch.zeros(1, 4, 5))
    with pytest.raises(ValueError, match=r"x must have at least 2 dims"):
        pos(torch.zeros(6))
    with pytest.raises(ValueError, match=r"max_len must be >= 1, got 0"):
        SinusoidalPositions(0, 6)
    with pytest.raises(ValueError, match=r"embed_dim must be >= 1, got -2"):
        SinusoidalPositions(8, -2)
    with pytest.raises(TypeError, match=r"embed_dim must be an int"):
        SinusoidalPositions(8, True)
