"""Shared argument checks: broadcasting without torch.broadcast_shapes (and its sympy import)."""

import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlab._validate import broadcast_shape, check_broadcastable

dims = st.lists(st.integers(0, 3), max_size=4)


@settings(deadline=None)  # the first torch.broadcast_shapes call imports sympy
@given(st.lists(dims, min_size=1, max_size=4))
def test_broadcast_shape_agrees_with_torch(shapes):
    try:
        expected = tuple(torch.broadcast_shapes(*shapes))
    except RuntimeError:
        with pytest.raises(ValueError, match="do not broadcast"):
            broadcast_shape(*shapes)
    else:
        assert broadcast_shape(*shapes) == expected


def test_broadcast_shape_names_the_shapes():
    with pytest.raises(ValueError, match=r"shapes \(2, 3\), \(4,\) do not broadcast"):
        broadcast_shape((2, 3), (4,))
    assert broadcast_shape() == ()
    with pytest.raises(ValueError, match=r"mask of shape \(2, 9\) does not broadcast to \(3, 9\)"):
        check_broadcastable("mask", (2, 9), (3, 9))


def test_first_attention_calls_do_not_import_sympy():
    """torch.broadcast_shapes imports sympy (seconds) on first use; attnlab's paths avoid it."""
    code = """
import sys, torch, attnlab as al
q, k, v = (torch.randn(2, 4, 9, 8) for _ in range(3))
al.scaled_dot_product_attention(q, k, v, mask=torch.rand(2, 1, 9, 9) > 0.3)
al.scaled_dot_product_attention(q[:, :, :4], k, v, causal=True)
al.scaled_dot_product_attention(q, k, v, causal=True, mask=torch.ones(2, 1, 1, 9, dtype=bool))
al.scaled_dot_product_attention(q.requires_grad_(), k, v, window=3).sum().backward()
al.MultiHeadAttention(16, 4, num_kv_heads=2, causal=True)(torch.randn(2, 5, 16))
print("sympy" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "False"
