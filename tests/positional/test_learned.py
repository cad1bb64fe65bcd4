import pytest
import torch

import oracle_positional as oracle
from attnlab.positional import LearnedPositions


def loop_reference(x: torch.Tensor, weight: torch.Tensor, offset: int) -> torch.Tensor:
    rows = x.double().tolist()
    table = weight.double().tolist()
    for batch in rows:
        for pos, vec in enumerate(batch):
            batch[pos] = [v + w for v, w in zip(vec, table[offset + pos], strict=True)]
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    ("batch", "length", "offset"), [(2, 7, 0), (2, 7, 6), (1, 1, 12), (3, 13, 0)]
)
def test_forward_matches_loops(dtype, batch, length, offset):
    torch.manual_seed(0)
    pos = LearnedPositions(13, 15).to(dtype)
    x = torch.randn(batch, length, 15, dtype=dtype)
    out = pos(x, offset=offset)
    ref = loop_reference(x, pos.embedding.weight.detach(), offset)
    assert out.dtype == dtype
    assert oracle.relative_error(out, ref) <= oracle.tolerance(dtype)


def test_parameter_layout_and_init():
    torch.manual_seed(0)
    pos = LearnedPositions(64, 32)
    assert list(pos.state_dict()) == ["embedding.weight"]
    assert isinstance(pos.embedding, torch.nn.Embedding)
    assert pos.embedding.weight.shape == (64, 32)
    assert 0.017 < pos.embedding.weight.std().item() < 0.023
    assert pos.kind == "absolute"


def test_gradient_reaches_only_used_rows():
    pos = LearnedPositions(10, 3)
    pos(torch.zeros(2, 4, 3), offset=5).sum().backward()
    grad = pos.embedding.weight.grad
    torch.testing.assert_close(grad[5:9], torch.full((4, 3), 2.0))
    assert grad[:5].abs().sum() == 0
    assert grad[9:].abs().sum() == 0


def test_errors():
    pos = LearnedPositions(8, 6)
    with pytest.raises(
        ValueError, match=r"offset \(2\) \+ sequence length L \(7\) = 9 exceeds max_len \(8\)"
    ):
        pos(torch.zeros(1, 7, 6), offset=2)
    with pytest.raises(ValueError, match=r"x must have last dimension 6 \(embed_dim\)"):
        pos(torch.zeros(1, 4, 7))
    with pytest.raises(TypeError, match=r"x must be a floating tensor, got dtype torch.int64"):
        pos(torch.zeros(1, 4, 6, dtype=torch.long))
    with pytest.raises(ValueError, match=r"max_len must be >= 1, got 0"):
        LearnedPositions(0, 6)
    with pytest.raises(ValueError, match=r"embed_dim must be >= 1, got 0"):
        LearnedPositions(8, 0)
