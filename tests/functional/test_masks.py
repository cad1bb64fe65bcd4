"""Mask builders and the mask convention (True = may attend; bottom-right causal; windows)."""

import pytest
import torch

import attnlab as al
import oracle
from attnlab.functional.masks import blocked_rows, merge_masks, restrict


@pytest.mark.parametrize("window", [None, 1, 2, 3, 20])
@pytest.mark.parametrize(("L", "S"), [(7, 11), (11, 7), (7, 7), (1, 11), (7, 1), (1, 1)])
def test_causal_mask_matches_oracle(L, S, window):
    mask = al.causal_mask(L, S, window=window)
    assert mask.dtype == torch.bool
    assert mask.shape == (L, S)
    assert torch.equal(mask, oracle.visibility(L, S, True, window))


def test_causal_mask_defaults_to_square_lower_triangle():
    assert torch.equal(al.causal_mask(5), torch.ones(5, 5, dtype=torch.bool).tril())


def test_causal_mask_is_bottom_right_aligned():
    # 2 new queries after 3 cached keys: the last query sees everything.
    expected = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(al.causal_mask(2, 5), expected)


def test_causal_window_keeps_the_w_most_recent_keys():
    mask = al.causal_mask(6, window=3)
    assert (mask.sum(-1) == torch.tensor([1, 2, 3, 3, 3, 3])).all()
    assert mask.diagonal().all()  # the query's own position is included


@pytest.mark.parametrize(
    ("lengths", "max_len"), [([2, 3], None), ([0, 5, 1], 7), ([4], None), (torch.tensor([1, 3]), 3)]
)
def test_padding_mask(lengths, max_len):
    mask = al.padding_mask(lengths, max_len)
    lengths = torch.as_tensor(lengths).tolist()
    S = max(lengths) if max_len is None else max_len
    expected = torch.tensor([[j < n for j in range(S)] for n in lengths])
    expected = expected.view(len(lengths), 1, 1, S)
    assert mask.dtype == torch.bool
    assert torch.equal(mask, expected)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: al.causal_mask(0), ValueError, r"L must be >= 1, got 0"),
        (lambda: al.causal_mask(3, 0), ValueError, r"S must be >= 1, got 0"),
        (lambda: al.causal_mask(3, window=0), ValueError, r"window must be >= 1, got 0"),
        (lambda: al.causal_mask(3, window=-1), ValueError, r"window must be >= 1, got -1"),
        (lambda: al.padding_mask(torch.tensor([1.0, 2.0])), TypeError,
         r"lengths must be an integer tensor or list"),
        (lambda: al.padding_mask([1, -2]), ValueError, r"lengths must be >= 0, got \[1, -2\]"),
        (lambda: al.padding_mask([1, 5], max_len=3), ValueError,
         r"lengths must be <= max_len \(3\), got \[1, 5\]"),
        (lambda: al.padding_mask(torch.tensor([[1, 2]])), ValueError,
         r"lengths must have shape \(B,\), got \(1, 2\)"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_restrict_and_merge_keep_the_convention():
    visible = torch.tensor([[True, False], [True, True]])
    as_bool = restrict(torch.tensor([[True, True], [False, True]]), visible)
    assert torch.equal(as_bool, torch.tensor([[True, False], [False, True]]))
    as_float = restrict(torch.tensor([[0.5, 1.0], [2.0, 3.0]]), visible)
    assert torch.equal(as_float, torch.tensor([[0.5, float("-inf")], [2.0, 3.0]]))
    merged = merge_masks(torch.tensor([[True, False], [True, True]]), torch.tensor([[1.0, 2.0],
                                                                                   [3.0, 4.0]]))
    assert torch.equal(merged, torch.tensor([[1.0, float("-inf")], [3.0, 4.0]]))
    assert torch.equal(blocked_rows(torch.tensor([[False, False], [True, False]])),
                       torch.tensor([True, False]))
    assert torch.equal(blocked_rows(torch.tensor([[float("-inf")] * 2, [0.0, float("-inf")]])),
                       torch.tensor([True, False]))
