import pytest
import torch
from torch import nn

from attnlab.blocks.layers import TransformerLayer
from attnlab.interop import TorchEncoderLayer, from_torch_encoder_layer
from interop_helpers import rel_error

E, H, F, B, L = 15, 3, 37, 2, 7


def make_layer(seed: int = 0, dtype: torch.dtype = torch.float32, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(E, H, F, dtype=dtype, **kwargs).eval()
    with torch.no_grad():  # move norms and biases off their 1/0 init so they matter
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return layer


def padding() -> torch.Tensor:
    """Torch polarity: True = padding; row 1 has 4 real tokens."""
    mask = torch.zeros(B, L, dtype=torch.bool)
    mask[1, 4:] = True
    return mask


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", nn.GELU(approximate="tanh")])
@pytest.mark.parametrize("batch_first", [True, False])
def test_same_function_as_torch(norm_first, activation, batch_first):
    torch_layer = make_layer(activation=activation, norm_first=norm_first,
                             batch_first=batch_first)
    ours = from_torch_encoder_layer(torch_layer)
    assert isinstance(ours, TorchEncoderLayer)
    assert isinstance(ours.layer, TransformerLayer)
    assert ours.layer.prenorm == norm_first
    shape = (B, L, E) if batch_first else (L, B, E)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert rel_error(ours(x), torch_layer(x)) <= 1e-5
        ref = torch_layer(x, src_key_padding_mask=padding())
        out = ours(x, src_key_padding_mask=padding())
    real = ~padding() if batch_first else ~padding().T
    assert rel_error(out[real], ref[real]) <= 1e-5


def test_float_masks_bias_false_and_float64():
    torch_layer = make_layer(dtype=torch.float64, bias=False, batch_first=True, norm_first=True)
    ours = from_torch_encoder_layer(torch_layer)
    assert ours.layer.self_attn.q_proj.bias is None
    assert {p.dtype for p in ours.parameters()} == {torch.float64}
    x = torch.randn(B, L, E, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    causal = nn.Transformer.generate_square_subsequent_mask(L, dtype=torch.float64)
    float_padding = torch.zeros(B, L, dtype=torch.float64).masked_fill(padding(), float("-inf"))
    with torch.no_grad():
        ref = torch_layer(x, src_mask=causal, src_key_padding_mask=float_padding)
        out = ours(x, src_mask=causal, src_key_padding_mask=float_padding)
        assert rel_error(out, ref) <= 1e-12
        bool_causal = causal.isinf()  # torch polarity: True = may not attend
        ref = torch_layer(x, src_mask=bool_causal, src_key_padding_mask=padding())
        out = ours(x, src_mask=bool_causal, src_key_padding_mask=padding())
        assert rel_error(out, ref) <= 1e-12


def test_mode_follows_source():
    assert from_torch_encoder_layer(make_layer().train()).training
    assert not from_torch_encoder_layer(make_layer()).training


def test_errors():
    with pytest.raises(TypeError, match="must be a torch.nn.TransformerEncoderLayer, got Linear"):
        from_torch_encoder_layer(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="activation .* is not supported"):
        from_torch_encoder_layer(make_layer(activation=torch.tanh))
    layer = make_layer()
    layer.dropout1.p = 0.3
    with pytest.raises(ValueError, match="one dropout rate; got .*'dropout1': 0.3"):
        from_torch_encoder_layer(layer)
    ours = from_torch_encoder_layer(make_layer(batch_first=True))
    with pytest.raises(ValueError, match="is_causal=True is a hint about src_mask"):
        ours(torch.randn(B, L, E), is_causal=True)
