"""capture_attention(scores=True): the pre-softmax scores, opt-in, softmax of each row = weights."""

import pytest
import torch

import attnlab as al

F64 = torch.float64


def _modules():
    return {
        "gqa-window": al.MultiHeadAttention(12, 6, num_kv_heads=2, window=2, causal=True),
        "additive": al.AdditiveAttention(6, kdim=6),
        "simple": al.SimpleSelfAttention(causal=True),
        "single": al.SelfAttention(6),
    }


@pytest.mark.parametrize("name", list(_modules()))
def test_softmax_of_scores_is_the_weights_and_equals_explain(name):
    torch.manual_seed(0)
    module = _modules()[name].to(F64)
    E = 12 if name == "gqa-window" else 6
    x = torch.randn(2, 5, E, dtype=F64)
    bias = torch.randn(2, 1, 5, 5, dtype=F64)  # a float mask: an additive bias
    bias[1, 0, :, 4] = float("-inf")  # and a hidden key
    with al.capture_attention(module, scores=True) as maps:
        module(x, mask=bias)
    scores = maps.scores[""]
    assert scores.shape == maps[""].shape
    assert not scores.requires_grad
    assert torch.allclose(torch.softmax(scores, -1), maps[""], atol=1e-14)
    assert torch.isneginf(scores[1, :, :, 4]).all()
    ex = al.explain(module, {"mask": bias, ("query" if name in ("gqa-window", "additive")
                                          else "x"): x}, layer=0, head=0, batch=1)
    assert torch.allclose(ex["masked"], scores[1, 0], atol=1e-13)


def test_scores_are_opt_in_and_cleared():
    module = al.MultiHeadAttention(4, 2)
    with al.capture_attention(module) as maps:
        module(torch.randn(1, 3, 4))
    assert maps.scores == {}
    assert module._score_recorder is None
    with al.capture_attention(module, scores=True):
        module(torch.randn(1, 3, 4))
    assert module._score_recorder is None
