"""attnlab: attention mechanisms you can read, train, see and measure.

Every public name (the README's tour lists them) is importable from here::

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

from importlib import import_module

__version__ = "0.1.0"

#: Where each public name lives. Names load on first use (PEP 562), so ``import attnlab``
#: and the ``attnlab`` command start without importing torch; the command then handles
#: Ctrl-C at any moment, start-up included.
_EXPORTS = {
    "AdditiveAttention": "attention",
    "CausalSelfAttention": "attention",
    "CrossAttention": "attention",
    "KVCache": "attention",
    "MultiHeadAttention": "attention",
    "SelfAttention": "attention",
    "SimpleSelfAttention": "attention",
    "attention_weights": "functional",
    "causal_mask": "functional",
    "padding_mask": "functional",
    "scaled_dot_product_attention": "functional",
    "explain": "explanation",
    "AttentionMaps": "visualize.capture",
    "capture_attention": "visualize.capture",
    "plot_attention": "visualize",  # matplotlib loads on first use
}
_SUBMODULES = ("compat", "interop")


def __getattr__(name: str) -> object:
    if name in _SUBMODULES:
        return import_module(f".{name}", __name__)
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_SUBMODULES])


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
