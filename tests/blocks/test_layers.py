"""``TransformerLayer`` from built parts: the residual wiring, equal to composing the parts."""

import pytest
import torch

import attnlab as al
import oracle
from attnlab.blocks import MLP, LayerNorm, RMSNorm, TransformerLayer

B, L, S, E = 2, 5, 7, 12


def parts(seed=0):
    torch.manual_seed(seed)
    return (al.MultiHeadAttention(E, 3, causal=True).double(), LayerNorm(E).double(),
            MLP(E, 20).double(), RMSNorm(E).double())


def test_prenorm_is_x_plus_each_branch_of_its_norm():
    attn, n1, ffn, n2 = parts()
    layer = TransformerLayer(attn, n1, ffn, n2, prenorm=True)
    x = oracle.randn(B, L, E, seed=1)
    h = x + attn(n1(x))
    assert oracle.rel_err(layer(x), h + ffn(n2(h))) <= 1e-12


def test_postnorm_is_the_norm_of_x_plus_each_branch():
    attn, n1, ffn, n2 = parts()
    layer = TransformerLayer(attn, n1, ffn, n2, prenorm=False)
    x = oracle.randn(B, L, E, seed=2)
    h = n1(x + attn(x))
    assert oracle.rel_err(layer(x), n2(h + ffn(h))) <= 1e-12


def test_parallel_adds_both_branches_of_the_same_input():
    attn, n1, ffn, n2 = parts()
    layer = TransformerLayer(attn, n1, ffn, n2, parallel=True)
    x = oracle.randn(B, L, E, seed=3)
    assert oracle.rel_err(layer(x), x + attn(n1(x)) + ffn(n2(x))) <= 1e-12


def test_cross_attention_reads_the_memory():
    attn, n1, ffn, n2 = parts()
    torch.manual_seed(4)
    cross, nc = al.MultiHeadAttention(E, 2).double(), LayerNorm(E).double()
    layer = TransformerLayer(attn, n1, ffn, n2, cross_attn=cross, cross_norm=nc)
    x, memory = oracle.randn(B, L, E, seed=5), oracle.randn(B, S, E, seed=6)
    pad = al.padding_mask([S, 3], max_len=S)
    h = x + attn(n1(x))
    h = h + cross(nc(h), memory, memory, mask=pad)
    assert oracle.rel_err(layer(x, memory=memory, memory_mask=pad), h + ffn(n2(h))) <= 1e-12
    with pytest.raises(ValueError, match="this layer has cross-attention: memory must be given"):
        layer(x)


def test_dropout_acts_on_each_branch_only_in_training():
    layer = TransformerLayer(*parts(), dropout=0.5)
    x = oracle.randn(B, L, E, seed=7)
    torch.testing.assert_close(layer.eval()(x), layer(x))
    layer.train()
    assert not torch.allclose(layer(x), layer(x))


def test_impossible_wirings_are_refused():
    attn, n1, ffn, n2 = parts()
    with pytest.raises(ValueError, match="cross_attn and cross_norm go together"):
        TransformerLayer(attn, n1, ffn, n2, cross_attn=al.MultiHeadAttention(E, 2))
    with pytest.raises(ValueError, match="parallel=True needs prenorm=True"):
        TransformerLayer(attn, n1, ffn, n2, parallel=True, prenorm=False)
