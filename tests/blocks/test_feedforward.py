import pytest
import torch
from transformers import LlamaConfig
from transformers.activations import ACT2FN
from transformers.models.llama.modeling_llama import LlamaMLP

import oracle_positional as oracle
from attnlab.blocks import MLP, SwiGLU
from attnlab.registry import FFNS


def randomise(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    return module


def randn(*shape, dtype, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh", "silu"])
@pytest.mark.parametrize(
    ("shape", "bias"), [((2, 7, 15), True), ((1, 1, 15), False), ((15,), True)]
)
def test_mlp_matches_oracle(dtype, activation, shape, bias):
    mlp = randomise(MLP(15, 37, activation=activation, bias=bias)).to(dtype)
    x = randn(*shape, dtype=dtype)
    out = mlp(x)
    ref = oracle.mlp(x, mlp.up_proj, mlp.down_proj, activation)
    assert out.shape == x.shape
    assert out.dtype == dtype
    assert oracle.relative_error(out, ref) <= oracle.tolerance(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    ("shape", "bias"), [((2, 7, 15), False), ((1, 1, 15), True), ((15,), False)]
)
def test_swiglu_matches_oracle(dtype, shape, bias):
    ffn = randomise(SwiGLU(15, 37, bias=bias)).to(dtype)
    x = randn(*shape, dtype=dtype)
    out = ffn(x)
    ref = oracle.swiglu(x, ffn.gate_proj, ffn.up_proj, ffn.down_proj)
    assert out.shape == x.shape
    assert out.dtype == dtype
    assert oracle.relative_error(out, ref) <= oracle.tolerance(dtype)


def test_swiglu_equals_hugging_face_llama_mlp():
    config = LlamaConfig(
        hidden_size=15,
        intermediate_size=37,
        hidden_act="silu",
        num_attention_heads=3,
        num_key_value_heads=3,
        head_dim=6,
    )
    theirs = randomise(LlamaMLP(config))
    ours = SwiGLU(15, 37)
    ours.load_state_dict(theirs.state_dict())
    x = randn(2, 7, 15, dtype=torch.float32)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("ours", "hf"), [("gelu_tanh", "gelu_new"), ("gelu", "gelu"), ("silu", "silu")]
)
def test_activations_match_hugging_face(ours, hf):
    mlp = randomise(MLP(15, 37, activation=ours))
    x = randn(2, 7, 15, dtype=torch.float64)
    expected = mlp.down_proj(ACT2FN[hf](mlp.up_proj(x.float()))).double()
    assert oracle.relative_error(mlp(x.float()), expected) <= 1e-6


def test_parameter_names():
    assert list(MLP(4, 6).state_dict()) == [
        "up_proj.weight",
        "up_proj.bias",
        "down_proj.weight",
        "down_proj.bias",
    ]
    assert list(SwiGLU(4, 6).state_dict()) == [
        "gate_proj.weight",
        "up_proj.weight",
        "down_proj.weight",
    ]


@pytest.mark.parametrize("cls", [MLP, SwiGLU])
def test_dropout_only_in_training(cls):
    torch.manual_seed(0)
    ffn = cls(8, 16, dropout=0.5)
    x = torch.randn(4, 8)
    ffn.eval()
    torch.testing.assert_close(ffn(x), ffn(x), rtol=0, atol=0)
    ffn.train()
    out = ffn(x)
    assert (out == 0).any()
    assert not torch.equal(out, ffn.eval()(x))


def test_registered():
    assert FFNS.get("mlp") is MLP
    assert FFNS.get("swiglu") is SwiGLU


def test_unknown_activation_lists_valid_ones():
    with pytest.raises(
        ValueError,
        match=r"activation must be one of \['relu', 'gelu', 'gelu_tanh', 'silu'\], got 'tanh'",
    ):
        MLP(4, 8, activation="tanh")


@pytest.mark.parametrize("cls", [MLP, SwiGLU])
def test_errors(cls):
    with pytest.raises(ValueError, match=r"embed_dim must be >= 1, got 0"):
        cls(0, 8)
    with pytest.raises(ValueError, match=r"hidden_dim must be >= 1, got -1"):
        cls(4, -1)
    with pytest.raises(TypeError, match=r"hidden_dim must be an int|parameter .hidden_dim."):
        cls(4, 2.5)
    with pytest.raises(ValueError, match=r"dropout must be < 1.0, got 1.0"):
        cls(4, 8, dropout=1.0)
    with pytest.raises(ValueError, match=r"dropout must be >= 0.0, got -0.1"):
        cls(4, 8, dropout=-0.1)
    with pytest.raises(TypeError, match=r"bias must be a bool|parameter .bias."):
        cls(4, 8, bias=None)
    ffn = cls(4, 8)
    with pytest.raises(
        ValueError, match=r"x must have last dimension 4 \(embed_dim\), got shape \(2, 3\)"
    ):
        ffn(torch.zeros(2, 3))
    with pytest.raises(TypeError, match=r"x must be a floating tensor"):
        ffn(torch.zeros(2, 4, dtype=torch.long))
