"""Attention as functions: the one place where ``softmax(Q Kᵀ) V`` is written."""

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
