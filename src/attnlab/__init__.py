"""attnlab: attention mechanisms you can read, train, see and measure.

Everything in ``shared/API.md`` is importable from here::

    import attnlab as al
    out = al.scaled_dot_product_attention(q, k, v, causal=True)
"""

from . import compat, interop
from .attention import (
    AdditiveAttention,
    CausalSelfAttention,
    CrossAttention,
    KVCache,
    MultiHeadAttention,
    SelfAttention,
    SimpleSelfAttention,
)
from .functional import (
    attention_weights,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
)
from .visualize.capture import AttentionMaps, capture_attention

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    if name == "plot_attention":  # visualize's own lazy table imports matplotlib on first use
        from . import visualize

        return visualize.plot_attention
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AdditiveAttention",
    "AttentionMaps",
    "CausalSelfAttention",
    "CrossAttention",
    "KVCache",
    "MultiHeadAttention",
    "SelfAttention",
    "SimpleSelfAttention",
    "attention_weights",
    "capture_attention",
    "causal_mask",
    "compat",
    "interop",
    "padding_mask",
    "plot_attention",
    "scaled_dot_product_attention",
]
