"""The public surface of shared/API.md (sections 1-4, from_torch/to_torch): names and signatures."""

import inspect

import pytest
import torch
from torch import nn

import attnlab as al

EMPTY = inspect.Parameter.empty
POS, KW = inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY

TOP_LEVEL = [
    "scaled_dot_product_attention", "attention_weights", "padding_mask", "causal_mask",
    "SimpleSelfAttention", "SelfAttention", "CausalSelfAttention", "CrossAttention",
    "MultiHeadAttention", "capture_attention", "compat", "interop",
]


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_name(name):
    assert hasattr(al, name)
    assert name in al.__all__


@pytest.mark.parametrize("name", ["from_torch", "to_torch"])
def test_interop_name(name):
    from attnlab import interop

    assert callable(getattr(interop, name))


@pytest.mark.parametrize("name", ["SelfAttention", "MultiAttention"])
def test_compat_name(name):
    assert issubclass(getattr(al.compat, name), nn.Module)


def test_compat_attention_trainer():
    trainer = al.compat.AttentionTrainer
    params = inspect.signature(trainer).parameters
    assert list(params)[:6] == ["model_type", "embed_dim", "num_heads", "learning_rate",
                                "batch_size", "seq_length"]
    assert callable(trainer.train)
    assert callable(trainer.evaluate)


def signature(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()
            if p.name != "self"]


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (al.scaled_dot_product_attention,
         [("query", POS, EMPTY), ("key", POS, EMPTY), ("value", POS, EMPTY),
          ("mask", POS, None), ("causal", KW, False), ("window", KW, None), ("scale", KW, None),
          ("dropout_p", KW, 0.0)]),
        (al.attention_weights,
         [("query", POS, EMPTY), ("key", POS, EMPTY), ("mask", POS, None), ("causal", KW, False),
          ("window", KW, None), ("scale", KW, None)]),
        (al.padding_mask, [("lengths", POS, EMPTY), ("max_len", POS, None)]),
        (al.causal_mask, [("L", POS, EMPTY), ("S", POS, None), ("window", KW, None),
                          ("device", KW, None)]),
    ],
)
def test_function_signature(fn, expected):
    assert signature(fn) == expected


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (al.SelfAttention, [("embed_dim", POS, EMPTY), ("bias", KW, False), ("causal", KW, False),
                            ("dropout", KW, 0.0)]),
        (al.CausalSelfAttention, [("embed_dim", POS, EMPTY), ("num_heads", KW, 1),
                                  ("bias", KW, False), ("dropout", KW, 0.0)]),
        (al.CrossAttention, [("embed_dim", POS, EMPTY), ("context_dim", KW, None),
                             ("num_heads", KW, 1), ("bias", KW, False), ("dropout", KW, 0.0)]),
    ],
)
def test_constructor_signature(cls, expected):
    assert signature(cls.__init__) == expected


def test_simple_and_multihead_constructors():
    simple = signature(al.SimpleSelfAttention.__init__)
    assert simple[0] == ("scale", POS, None)
    mha = dict((name, (kind, default)) for name, kind, default in
               signature(al.MultiHeadAttention.__init__))
    assert list(mha)[:2] == ["embed_dim", "num_heads"]
    assert {name: mha[name] for name in ("num_kv_heads", "kdim", "vdim", "bias", "dropout",
                                         "causal", "window")} == {
        "num_kv_heads": (KW, None), "kdim": (KW, None), "vdim": (KW, None), "bias": (KW, True),
        "dropout": (KW, 0.0), "causal": (KW, False), "window": (KW, None)}


@pytest.mark.parametrize(
    ("cls", "leading"),
    [
        (al.SimpleSelfAttention, [("x", POS, EMPTY), ("mask", POS, None)]),
        (al.SelfAttention, [("x", POS, EMPTY), ("mask", POS, None)]),
        (al.CausalSelfAttention, [("x", POS, EMPTY), ("mask", POS, None)]),
        (al.CrossAttention, [("x", POS, EMPTY), ("context", POS, EMPTY), ("mask", POS, None)]),
        (al.MultiHeadAttention, [("query", POS, EMPTY), ("key", POS, None), ("value", POS, None),
                                 ("mask", KW, None), ("cache", KW, None)]),
    ],
)
def test_forward_signature(cls, leading):
    assert signature(cls.forward)[:len(leading)] == leading


@pytest.mark.parametrize(
    "module",
    [al.SelfAttention(6), al.CausalSelfAttention(6, num_heads=2), al.CrossAttention(6),
     al.MultiHeadAttention(6, 3), al.AdditiveAttention(6)],
    ids=lambda m: type(m).__name__,
)
def test_trainable_mechanisms_name_their_projections(module):
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        assert isinstance(getattr(module, name), nn.Linear)


def test_multihead_scales_by_inverse_sqrt_head_dim_and_is_batch_first():
    torch.manual_seed(0)
    module = al.MultiHeadAttention(8, 2, bias=False).double()
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    q = module.q_proj(x).view(3, 5, 2, 4).transpose(1, 2)
    k = module.k_proj(x).view(3, 5, 2, 4).transpose(1, 2)
    v = module.v_proj(x).view(3, 5, 2, 4).transpose(1, 2)
    weights = torch.softmax(q @ k.transpose(-2, -1) / 2.0, dim=-1)  # sqrt(head_dim) = 2
    expected = module.out_proj((weights @ v).transpose(1, 2).reshape(3, 5, 8))
    torch.testing.assert_close(module(x), expected)


def test_mask_polarity_true_means_may_attend():
    q = torch.zeros(1, 1, 2)
    k = torch.zeros(1, 2, 2)
    v = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    out = al.scaled_dot_product_attention(q, k, v, torch.tensor([[True, False]]))
    torch.testing.assert_close(out, torch.tensor([[[1.0, 0.0]]]))
