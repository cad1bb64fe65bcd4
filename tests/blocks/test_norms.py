import pytest
import torch
from transformers.models.llama.modeling_llama import LlamaRMSNorm

import oracle_positional as oracle
from attnlab.blocks import LayerNorm, RMSNorm
from attnlab.registry import NORMS

SHAPES = [(2, 7, 15), (1, 1, 15), (3, 15), (15,)]


def randomise(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen))
    return module


def randn(*shape, dtype, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 3 + 1


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm_matches_oracle(dtype, shape, bias):
    norm = randomise(LayerNorm(15, eps=1e-5, bias=bias)).to(dtype)
    x = randn(*shape, dtype=dtype)
    ref = oracle.layer_norm(x, norm.weight.detach(), norm.bias if bias else None, 1e-5)
    out = norm(x)
    assert out.dtype == dtype
    assert out.shape == x.shape
    assert oracle.relative_error(out, ref) <= oracle.tolerance(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_rms_norm_matches_oracle(dtype, shape):
    norm = randomise(RMSNorm(15, eps=1e-6)).to(dtype)
    x = randn(*shape, dtype=dtype)
    out = norm(x)
    assert out.dtype == dtype
    assert out.shape == x.shape
    assert oracle.relative_error(
        out, oracle.rms_norm(x, norm.weight.detach(), 1e-6)
    ) <= oracle.tolerance(dtype)


def test_layer_norm_loads_torch_layer_norm_state():
    theirs = randomise(torch.nn.LayerNorm(15, eps=1e-5))
    ours = LayerNorm(15)
    ours.load_state_dict(theirs.state_dict())
    x = randn(2, 7, 15, dtype=torch.float32)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)
    assert list(LayerNorm(4, bias=False).state_dict()) == ["weight"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rms_norm_equals_hugging_face_llama_bitwise(dtype):
    theirs = randomise(LlamaRMSNorm(15, eps=1e-6))
    ours = RMSNorm(15, eps=1e-6)
    ours.load_state_dict(theirs.state_dict())
    x = randn(2, 7, 15, dtype=torch.float32).to(dtype)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


def test_rms_norm_in_bfloat16_model_stays_bfloat16():
    norm = RMSNorm(8).to(torch.bfloat16)
    assert norm(torch.randn(2, 8, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_gradients_are_finite():
    x = randn(2, 5, 15, dtype=torch.float64).requires_grad_()
    for norm in (LayerNorm(15).double(), RMSNorm(15).double()):
        norm(x).pow(2).sum().backward()
        assert torch.isfinite(x.grad).all()
        assert x.grad.abs().sum() > 0
        x.grad = None


def test_registered():
    assert NORMS.get("layernorm") is LayerNorm
    assert NORMS.get("rmsnorm") is RMSNorm


@pytest.mark.parametrize("cls", [LayerNorm, RMSNorm])
def test_errors(cls):
    with pytest.raises(ValueError, match=r"dim must be >= 1, got 0"):
        cls(0)
    with pytest.raises(TypeError, match=r"dim must be an int|parameter .dim."):
        cls("3")
    with pytest.raises(ValueError, match=r"eps must be >= 0.0, got -1.0"):
        cls(4, eps=-1.0)
    norm = cls(4)
    with pytest.raises(
        ValueError, match=r"x must have last dimension 4 \(dim\), got shape \(2, 5\)"
    ):
        norm(torch.zeros(2, 5))
    with pytest.raises(TypeError, match=r"x must be a floating tensor, got dtype torch.int64"):
        norm(torch.zeros(2, 4, dtype=torch.long))


def test_layer_norm_bias_flag_must_be_bool():
    with pytest.raises(TypeError, match=r"bias must be a bool|parameter .bias."):
        LayerNorm(4, bias=0)
