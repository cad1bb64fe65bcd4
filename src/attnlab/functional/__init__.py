"""Attention as functions: ``softmax(Q Kᵀ · scale + bias) V`` and its masks.

Start with :mod:`.reference`: the formula written the plain way, scores, a softmax
that never returns NaN, weights times values. :mod:`.sdpa` is what the library
calls (``scaled_dot_product_attention``, ``attend``): it checks the arguments and
picks the cheapest exact path for the same formula (PyTorch's fused kernel, the
kernels of :mod:`.windowed` and :mod:`.banded` for a sliding window or an offset
causal mask, or :mod:`.reference` when the weights are wanted); :mod:`.masks`
builds and checks masks. Every dot-product attention module computes its attention
here. Two other
places compute a softmax of scores on purpose: ``AdditiveAttention`` (its scores
come from a small network, its softmax is :func:`.reference.masked_softmax`) and
:mod:`attnlab.explanation.compute`, which recomputes one head step by step in
float64 to show it and checks the result against the module's.
"""

from .masks import causal_mask, padding_mask
from .sdpa import Plan, attend, attention_weights, plan, scaled_dot_product_attention

__all__ = [
    "Plan",
    "attend",
    "attention_weights",
    "causal_mask",
    "padding_mask",
    "plan",
    "scaled_dot_product_attention",
]
