"""attnlab: attention mechanisms you can read, train, see and measure.

Everything in ``shared/API.md`` is importable from here::

    import attnlab as al
    out = al.scaled_dot_product_attention(q, k, v, causal=True)
"""

import os

# Before torch loads OpenMP: let idle threads sleep instead of spin. With anything else
# running on the cores, spinning threads made a small model's training step 27x slower
# here (658 vs 24 ms on 2 cores). OpenMP reads this once, when torch is imported, so it
# only takes effect if attnlab is imported first (the ``attnlab`` command always is);
# after ``import torch``, set OMP_WAIT_POLICY=PASSIVE in the environment instead.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import compat, interop  # noqa: E402
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
