"""from_torch / to_torch: the same function as torch.nn.MultiheadAttention, both directions."""

import pytest
import torch
from torch import nn

import attnlab as al
import oracle
from attnlab.interop import conventions, from_torch, to_torch

B, L, S = 2, 7, 11


def torch_mask_inputs(kind, num_heads, seed):
    """(key_padding_mask, attn_mask) in torch's convention; no row ever fully masked."""
    kpm = attn = None
    if kind in ("kpm-bool", "both"):
        kpm = ~oracle.rand_bool(B, S, seed=seed)  # torch: True = ignore
        kpm[:, 0] = False
    if kind == "kpm-float":
        kpm = oracle.rand_bias(B, S, seed=seed, dtype=torch.float32)
        kpm[:, 0] = 0.0
    if kind in ("attn-bool", "both"):
        attn = ~oracle.rand_bool(L, S, seed=seed + 1)
        attn[:, 0] = False
    if kind == "attn-float":
        attn = oracle.randn(L, S, seed=seed + 1, dtype=torch.float32)
    if kind == "attn-3d":
        attn = ~oracle.rand_bool(B * num_heads, L, S, seed=seed + 2)
        attn[..., 0] = False
    return kpm, attn


def attnlab_mask(kpm, attn, num_heads):
    masks = []
    if kpm is not None:
        masks.append(conventions.from_torch_key_padding_mask(kpm))
    if attn is not None:
        masks.append(conventions.from_torch_attn_mask(attn, num_heads=num_heads))
    if not masks:
        return None
    if all(m.dtype == torch.bool for m in masks):
        return masks[0] if len(masks) == 1 else masks[0] & masks[1]
    bias = [m if m.is_floating_point() else torch.zeros(m.shape).masked_fill(~m, float("-inf"))
            for m in masks]
    return bias[0] if len(bias) == 1 else bias[0] + bias[1]


CONFIGS = [
    # embed_dim, num_heads, kdim, vdim, bias, batch_first
    (12, 3, None, None, True, True),
    (12, 3, None, None, False, False),
    (10, 5, 7, 4, True, False),
    (10, 2, 3, 3, False, True),
    (6, 1, None, 9, True, True),
]
MASKS = [None, "kpm-bool", "kpm-float", "attn-bool", "attn-float", "attn-3d", "both"]


@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize(("E", "H", "kdim", "vdim", "bias", "batch_first"), CONFIGS)
def test_from_torch_is_the_same_function(E, H, kdim, vdim, bias, batch_first, mask_kind):
    torch.manual_seed(E + H)
    theirs = nn.MultiheadAttention(E, H, bias=bias, kdim=kdim, vdim=vdim,
                                   batch_first=batch_first).double()
    ours = from_torch(theirs)
    assert isinstance(ours, al.MultiHeadAttention)
    query = oracle.randn(B, L, E, seed=1)
    key = oracle.randn(B, S, kdim or E, seed=2)
    value = oracle.randn(B, S, vdim or E, seed=3)
    kpm, attn = torch_mask_inputs(mask_kind, H, seed=4)
    if kpm is not None and kpm.is_floating_point():
        kpm = kpm.double()
    if attn is not None and attn.is_floating_point():
        attn = attn.double()
    args = (query, key, value) if batch_first else tuple(t.transpose(0, 1) for t in
                                                         (query, key, value))
    expected, _ = theirs(*args, key_padding_mask=kpm, attn_mask=attn, need_weights=False)
    if not batch_first:
        expected = expected.transpose(0, 1)
    mask = attnlab_mask(kpm, attn, H)
    got = ours(query, key, value, mask=mask)
    assert oracle.rel_err(got, expected) <= 1e-6
    ref, _ = oracle.multi_head(query, key, value, oracle.module_params(ours), num_heads=H,
                               mask=mask)
    assert oracle.rel_err(got, ref) <= 1e-6


@pytest.mark.parametrize(("E", "H", "kdim", "vdim", "bias", "batch_first"), CONFIGS)
def test_to_torch_is_the_same_function(E, H, kdim, vdim, bias, batch_first):
    torch.manual_seed(E * H)
    ours = al.MultiHeadAttention(E, H, kdim=kdim, vdim=vdim, bias=bias)
    theirs = to_torch(ours)
    assert isinstance(theirs, nn.MultiheadAttention)
    assert theirs.batch_first
    query = oracle.randn(B, L, E, seed=1, dtype=torch.float32)
    key = oracle.randn(B, S, kdim or E, seed=2, dtype=torch.float32)
    value = oracle.randn(B, S, vdim or E, seed=3, dtype=torch.float32)
    kpm, attn = torch_mask_inputs("both", H, seed=5)
    expected, _ = theirs(query, key, value, key_padding_mask=kpm, attn_mask=attn,
                         need_weights=False)
    got = ours(query, key, value, mask=attnlab_mask(kpm, attn, H))
    assert oracle.rel_err(got, expected) <= 1e-5


@pytest.mark.parametrize(("E", "H", "kdim", "vdim", "bias", "batch_first"), CONFIGS)
def test_round_trip(E, H, kdim, vdim, bias, batch_first):
    torch.manual_seed(0)
    ours = al.MultiHeadAttention(E, H, kdim=kdim, vdim=vdim, bias=bias, dropout=0.25)
    back = from_torch(to_torch(ours))
    assert back.dropout == ours.dropout
    assert back.state_dict().keys() == ours.state_dict().keys()
    for name, tensor in ours.state_dict().items():
        assert torch.equal(back.state_dict()[name], tensor), name
    theirs = nn.MultiheadAttention(E, H, kdim=kdim, vdim=vdim, bias=bias,
                                   batch_first=batch_first)
    again = to_torch(from_torch(theirs))
    for name, tensor in theirs.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor), name


def test_training_mode_is_kept():
    theirs = nn.MultiheadAttention(4, 2, dropout=0.1).eval()
    assert not from_torch(theirs).training
    assert from_torch(theirs.train()).training


def test_padding_mask_conversion_round_trip():
    mask = al.padding_mask([2, 5, 3])
    kpm = conventions.to_torch_key_padding_mask(mask)
    assert torch.equal(kpm, torch.tensor([[0, 0, 1, 1, 1], [0] * 5, [0, 0, 0, 1, 1]]).bool())
    assert torch.equal(conventions.from_torch_key_padding_mask(kpm), mask)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: from_torch(nn.MultiheadAttention(4, 2, add_bias_kv=True)), ValueError,
         r"add_bias_kv"),
        (lambda: from_torch(nn.MultiheadAttention(4, 2, add_zero_attn=True)), ValueError,
         r"add_zero_attn"),
        (lambda: from_torch(nn.Linear(4, 4)), TypeError,
         r"^m must be a torch\.nn\.MultiheadAttention, got Linear$"),
        (lambda: to_torch(al.MultiHeadAttention(12, 6, num_kv_heads=2)), ValueError,
         r"num_kv_heads=2 != num_heads=6"),
        (lambda: to_torch(al.MultiHeadAttention(12, 6, causal=True)), ValueError,
         r"causal/window/rotary"),
        (lambda: to_torch(al.MultiHeadAttention(12, 6, window=3)), ValueError,
         r"causal/window/rotary"),
        (lambda: to_torch(al.MultiHeadAttention(10, 3, head_dim=4)), ValueError, r"head_dim=4"),
        (lambda: to_torch(al.SelfAttention(4)), TypeError,
         r"^m must be an attnlab MultiHeadAttention, got SelfAttention$"),
        (lambda: conventions.from_torch_attn_mask(torch.zeros(6, 2, 2, dtype=torch.bool)),
         ValueError, r"num_heads is needed"),
    ],
)
def test_unsupported(call, error, match):
    with pytest.raises(error, match=match):
        call()
