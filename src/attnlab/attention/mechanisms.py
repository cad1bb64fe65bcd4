"""The attention registry: every mechanism buildable by name with one signature.

A model (or ``attnlab train --model NAME``) asks for a mechanism by name and
gets a module called as ``module(query, key=None, value=None, *, mask=None,
cache=None)``. Adding a mechanism is one builder function and one register line.
"""

from collections.abc import Callable

from torch import Tensor, nn

from .._validate import check_bool
from ..registry import ATTENTION
from .additive import AdditiveAttention
from .cache import KVCache
from .multihead import MultiHeadAttention
from .simple import SimpleSelfAttention

Builder = Callable[..., nn.Module]


class _SelfOnly(nn.Module):
    """Adapts ``SimpleSelfAttention(x, mask, *, cache)`` to the ``(query, key, ...)`` call."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, query: Tensor, key: Tensor | None = None, value: Tensor | None = None, *,
                mask: Tensor | None = None, cache: KVCache | None = None) -> Tensor:
        if key is not None or value is not None:
            raise ValueError("'simple' attention is self-attention only (no key/value inputs)")
        return self.inner(query, mask, cache=cache)


def build(name: str, embed_dim: int, num_heads: int, *, causal: bool = False,
          kdim: int | None = None, dropout: float = 0.0, window: int | None = None,
          rotary: nn.Module | None = None, bias: bool = True, num_kv_heads: int | None = None,
          head_dim: int | None = None) -> nn.Module:
    """Build the mechanism registered as ``name`` (``ValueError`` lists the valid names).

    ``num_kv_heads`` and ``head_dim`` apply to the multi-head family only.
    """
    builder = ATTENTION.get(name)
    check_bool("causal", causal)
    check_bool("bias", bias)  # also where a mechanism has no bias to set: a typo is still one
    extra = {}
    if num_kv_heads is not None:
        extra["num_kv_heads"] = num_kv_heads
    if head_dim is not None:
        extra["head_dim"] = head_dim
    if extra and name in ("additive", "simple"):
        raise ValueError(f"attention {name!r} has no num_kv_heads/head_dim, got {extra}")
    return builder(embed_dim, num_heads, causal=causal, kdim=kdim, dropout=dropout,
                   window=window, rotary=rotary, bias=bias, **extra)


@ATTENTION.register("multihead", help="multi-head attention (Vaswani et al. 2017)")
def _multihead(embed_dim, num_heads, *, kdim=None, **kw):
    return MultiHeadAttention(embed_dim, num_heads, kdim=kdim, vdim=kdim, **kw)


@ATTENTION.register("gqa", help="grouped-query attention: H/4 key/value heads (Ainslie 2023)")
def _gqa(embed_dim, num_heads, *, kdim=None, num_kv_heads=None, **kw):
    groups = num_kv_heads or (num_heads // 4 if num_heads % 4 == 0 else 1)
    return MultiHeadAttention(embed_dim, num_heads, num_kv_heads=groups, kdim=kdim, vdim=kdim,
                              **kw)


@ATTENTION.register("mqa", help="multi-query attention: one key/value head (Shazeer 2019)")
def _mqa(embed_dim, num_heads, *, kdim=None, num_kv_heads=None, **kw):
    return MultiHeadAttention(embed_dim, num_heads, num_kv_heads=1, kdim=kdim, vdim=kdim, **kw)


@ATTENTION.register("qkv_bias", help="multi-head attention, biases on q/k/v only (Qwen2)")
def _qkv_bias(embed_dim, num_heads, *, kdim=None, bias=True, **kw):  # bias: fixed by the design
    mha = MultiHeadAttention(embed_dim, num_heads, kdim=kdim, vdim=kdim, bias=True, **kw)
    mha.out_proj = nn.Linear(mha.out_proj.in_features, embed_dim, bias=False)
    return mha


@ATTENTION.register("local", help="sliding-window multi-head attention (window 8 by default)")
def _local(embed_dim, num_heads, *, kdim=None, window=None, **kw):
    return MultiHeadAttention(embed_dim, num_heads, kdim=kdim, vdim=kdim,
                              window=8 if window is None else window, **kw)


@ATTENTION.register("selfhead", help="single-head attention with Q/K/V/out projections")
def _selfhead(embed_dim, num_heads, *, kdim=None, num_kv_heads=None, **kw):
    return MultiHeadAttention(embed_dim, 1, kdim=kdim, vdim=kdim, **kw)


@ATTENTION.register("causal", help="multi-head attention that never looks ahead")
def _causal(embed_dim, num_heads, *, kdim=None, causal=True, **kw):
    return MultiHeadAttention(embed_dim, num_heads, kdim=kdim, vdim=kdim, causal=True, **kw)


@ATTENTION.register("additive", help="additive (Bahdanau 2015) attention with a scoring MLP")
def _additive(embed_dim, num_heads, *, kdim=None, causal=False, window=None, dropout=0.0,
              rotary=None, bias=True):  # bias: its projections' biases are fixed by the paper
    if rotary is not None:
        raise ValueError("additive attention has no dot product to rotate: use absolute "
                         "positions (sinusoidal or learned) with it")
    return AdditiveAttention(embed_dim, kdim=kdim, causal=causal, window=window, dropout=dropout)


@ATTENTION.register("simple", help="weightless self-attention softmax(X Xᵀ/√E) X")
def _simple(embed_dim, num_heads, *, kdim=None, causal=False, window=None, rotary=None,
            dropout=0.0, bias=True):  # bias: there are no weights to bias
    if dropout:
        raise ValueError(f"'simple' attention has no dropout, got dropout={dropout}")
    if window is not None or rotary is not None or kdim not in (None, embed_dim):
        raise ValueError("'simple' attention has no weights: it supports self-attention with "
                         "optional causality only (no window, rotary or cross-attention)")
    return _SelfOnly(SimpleSelfAttention(causal=causal))
