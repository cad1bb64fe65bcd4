"""Attention modules: from weightless self-attention to grouped-query heads with a cache."""

from . import mechanisms
from .additive import AdditiveAttention
from .base import AttentionModule
from .cache import KVCache
from .causal import CausalSelfAttention
from .cross import CrossAttention
from .multihead import MultiHeadAttention
from .simple import SelfAttention, SimpleSelfAttention

__all__ = [
    "AdditiveAttention",
    "AttentionModule",
    "CausalSelfAttention",
    "CrossAttention",
    "KVCache",
    "MultiHeadAttention",
    "SelfAttention",
    "SimpleSelfAttention",
    "mechanisms",
]
