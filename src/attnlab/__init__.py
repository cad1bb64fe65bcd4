"""attnlab: attention mechanisms you can read, train, see and measure.

Everything in ``shared/API.md`` is importable from here::

    import attnlab as al
    out = al.scaled_dot_product_attention(q, k, v, causal=True)
"""

import os

# Before torch loads OpenMP: how long idle pool threads spin before they sleep. Measured
# on 2 cores (small training step; causal window-257 attention at N=8192, fwd+bwd):
# libgomp's default (spin ~300k rounds) 12-21 ms alone but up to 1.2 s per step when two
# processes share the cores; OMP_WAIT_POLICY=PASSIVE (never spin) 23-28 ms under that
# contention but 25-28 ms alone and 3x slower windowed attention (410-530 ms), whose
# block loop wakes the pool thousands of times; GOMP_SPINCOUNT=1000 (tens of µs) 31-36 ms
# contended, 17-21 ms alone, 156-196 ms windowed. GOMP_SPINCOUNT is read by libgomp (the
# OpenMP of PyTorch's Linux wheels); Intel's and LLVM's runtimes (conda, macOS) read
# KMP_BLOCKTIME instead, where 0 means sleep at once, as PASSIVE did. OpenMP reads these
# once, when torch is imported, so they only take effect if attnlab is imported first
# (the ``attnlab`` command always is). Any of the three set by you leaves all alone.
if not {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"} & set(os.environ):
    os.environ["GOMP_SPINCOUNT"] = "1000"
    os.environ["KMP_BLOCKTIME"] = "0"

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
from .explanation import explain
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
    "explain",
    "interop",
    "padding_mask",
    "plot_attention",
    "scaled_dot_product_attention",
]
