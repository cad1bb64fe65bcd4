"""The attention registry: every mechanism, buildable by name, with what it can do.

A model (or ``attnlab train --model NAME``) asks for a mechanism by name with an
:class:`AttentionSpec` (width, heads, causality, window, rotary...) and gets a
module called as ``module(query, key=None, value=None, *, mask=None,
cache=None)``. Each registry entry is a :class:`Mechanism`: its builder and its
capabilities (has heads, can cross-attend, takes rotary/ALiBi/T5 positions,
takes a window, takes ``num_kv_heads``/``head_dim``, has weights, is always
causal). Every check that depends on the mechanism — here, in
:class:`~attnlab.config.ModelConfig`, the ``--model`` choices of ``attnlab
train`` and the ``attnlab models`` listing — reads those capabilities, never
the mechanism's name. Adding a mechanism is one builder function and one
``@mechanism(...)`` line; the registry-wide contract tests pick it up.

Example:
    >>> from attnlab.attention.mechanisms import AttentionSpec, build
    >>> build("gqa", AttentionSpec(embed_dim=16, num_heads=8)).num_kv_heads
    2
    >>> ATTENTION.get("additive").dot_product  # so no rotary, ALiBi or T5 positions
    False
"""

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from torch import Tensor, nn

from .._validate import check_bool
from ..registry import ATTENTION
from .additive import AdditiveAttention
from .cache import KVCache
from .multihead import MultiHeadAttention
from .simple import SimpleSelfAttention


@dataclass(frozen=True)
class AttentionSpec:
    """What a layer asks of its attention, whatever the mechanism.

    Args:
        embed_dim: Width E of the queries (and of the output).
        num_heads: Query heads H (a mechanism without heads ignores it).
        causal: Never look ahead (bottom-right aligned, see the mask convention).
        kdim: Width of the keys/values for cross-attention; None = self-attention.
        dropout: Dropout on the attention weights.
        window: Sliding-window size (None = every key).
        rotary: A rotary-position module shared by the layers (None = none).
        bias: Biases on the projections.
        num_kv_heads: Key/value heads G (grouped-query); None = the mechanism's default.
        head_dim: Head width D; None = E // H.
    """

    embed_dim: int
    num_heads: int = 1
    causal: bool = False
    kdim: int | None = None
    dropout: float = 0.0
    window: int | None = None
    rotary: nn.Module | None = None
    bias: bool = True
    num_kv_heads: int | None = None
    head_dim: int | None = None

    def replace(self, **changes: Any) -> "AttentionSpec":
        """A copy with ``changes`` applied."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return AttentionSpec(**values)


@dataclass(frozen=True)
class Mechanism:
    """One registered mechanism: its builder and its capabilities.

    Attributes:
        build: ``spec -> module``; called only with a spec the capabilities allow.
        heads: It splits into ``num_heads`` query heads. Without heads a mechanism
            attends once, as one head of width E, whatever ``num_heads`` says.
        grouped: It takes ``num_kv_heads`` and ``head_dim`` (the multi-head family).
        cross: It can attend from one sequence to another (cross-attention).
        dot_product: Its scores are dot products q·k, so rotary, ALiBi and T5
            positions can act inside them.
        window: It takes a sliding window.
        weights: It has trainable weights (and so dropout on its weights).
        always_causal: It never looks ahead, whatever ``causal`` says (decoders only).
    """

    build: Callable[[AttentionSpec], nn.Module]
    heads: bool = True
    grouped: bool = True
    cross: bool = True
    dot_product: bool = True
    window: bool = True
    weights: bool = True
    always_causal: bool = False

    def summary(self) -> str:
        """The capabilities in a few words (``attnlab models`` prints them)."""
        said = [
            "heads" if self.heads else "one head",
            "GQA" if self.grouped else "",
            "cross" if self.cross else "self only",
            "rotary/ALiBi/T5" if self.dot_product else "absolute positions only",
            "window" if self.window else "",
            "" if self.weights else "no weights",
            "always causal" if self.always_causal else "",
        ]
        return ", ".join(word for word in said if word)

    def check(self, name: str, spec: AttentionSpec) -> None:
        """Refuse what ``spec`` asks that this mechanism cannot do.

        Raises:
            ValueError: Naming the mechanism, the option and the value it got.
        """
        if spec.kdim is not None and not self.cross:
            raise ValueError(f"attention {name!r} is self-attention only: it cannot cross-"
                             f"attend to another sequence (got kdim={spec.kdim})")
        if spec.rotary is not None and not self.dot_product:
            raise ValueError(f"attention {name!r} has no dot product to rotate: give it "
                             "rotary=None (use absolute positions, sinusoidal or learned)")
        if spec.window is not None and not self.window:
            raise ValueError(f"attention {name!r} takes no window, got window={spec.window}")
        extra = {key: value for key, value in (("num_kv_heads", spec.num_kv_heads),
                                               ("head_dim", spec.head_dim)) if value is not None}
        if extra and not self.grouped:
            raise ValueError(f"attention {name!r} has no num_kv_heads/head_dim, got {extra}")
        if spec.dropout and not self.weights:
            raise ValueError(f"attention {name!r} has no weights to drop, got "
                             f"dropout={spec.dropout}")


def mechanism(name: str, *, help: str, **capabilities: bool) -> Callable[..., Any]:
    """Register the decorated ``spec -> module`` builder as ``name`` with its capabilities."""

    def add(builder: Callable[[AttentionSpec], nn.Module]) -> Callable[[AttentionSpec], nn.Module]:
        ATTENTION.register(name, Mechanism(builder, **capabilities), help=help)
        return builder

    return add


def build(name: str, spec: AttentionSpec) -> nn.Module:
    """Build the mechanism registered as ``name`` for ``spec``.

    Raises:
        ValueError: For an unknown name (listing the valid ones) or an option the
            mechanism cannot take (see :meth:`Mechanism.check`).
        TypeError: If ``spec`` is not an :class:`AttentionSpec`.
    """
    chosen = ATTENTION.get(name)
    if not isinstance(spec, AttentionSpec):
        raise TypeError(f"spec must be an AttentionSpec, got {type(spec).__name__}")
    check_bool("causal", spec.causal)
    check_bool("bias", spec.bias)  # also where a mechanism has no bias to set: a typo is still one
    chosen.check(name, spec)
    return chosen.build(spec)


def _mha(spec: AttentionSpec, **changes: Any) -> MultiHeadAttention:
    """A :class:`MultiHeadAttention` for ``spec`` (``changes`` override its fields)."""
    s = spec.replace(**changes)
    return MultiHeadAttention(s.embed_dim, s.num_heads, num_kv_heads=s.num_kv_heads, kdim=s.kdim,
                              vdim=s.kdim, bias=s.bias, dropout=s.dropout, causal=s.causal,
                              window=s.window, head_dim=s.head_dim, rotary=s.rotary)


@mechanism("multihead", help="multi-head attention (Vaswani et al. 2017)")
def _multihead(spec: AttentionSpec) -> nn.Module:
    return _mha(spec)


@mechanism("gqa", help="grouped-query attention: H/4 key/value heads (Ainslie 2023)")
def _gqa(spec: AttentionSpec) -> nn.Module:
    H = spec.num_heads
    return _mha(spec, num_kv_heads=spec.num_kv_heads or (H // 4 if H % 4 == 0 else 1))


@mechanism("mqa", help="multi-query attention: one key/value head (Shazeer 2019)")
def _mqa(spec: AttentionSpec) -> nn.Module:
    return _mha(spec, num_kv_heads=1)


@mechanism("qkv_bias", help="multi-head attention, biases on q/k/v only (Qwen2)")
def _qkv_bias(spec: AttentionSpec) -> nn.Module:
    mha = _mha(spec, bias=True)  # the biases are the design, whatever spec.bias says
    mha.out_proj = nn.Linear(mha.out_proj.in_features, spec.embed_dim, bias=False)
    return mha


@mechanism("local", help="sliding-window multi-head attention (window 8 by default)",
           cross=False)  # a window relates positions of one sequence
def _local(spec: AttentionSpec) -> nn.Module:
    return _mha(spec, window=8 if spec.window is None else spec.window)


@mechanism("selfhead", help="single-head attention with Q/K/V/out projections",
           heads=False, grouped=False)
def _selfhead(spec: AttentionSpec) -> nn.Module:
    return _mha(spec, num_heads=1)


@mechanism("causal", help="multi-head attention that never looks ahead",
           cross=False, always_causal=True)
def _causal(spec: AttentionSpec) -> nn.Module:
    return _mha(spec, causal=True)


@mechanism("additive", help="additive (Bahdanau 2015) attention with a scoring MLP",
           heads=False, grouped=False, dot_product=False)
def _additive(spec: AttentionSpec) -> nn.Module:
    # bias: its projections' biases are fixed by the paper
    return AdditiveAttention(spec.embed_dim, kdim=spec.kdim, causal=spec.causal,
                             window=spec.window, dropout=spec.dropout)


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


@mechanism("simple", help="weightless self-attention softmax(X Xᵀ/√E) X",
           heads=False, grouped=False, cross=False, dot_product=False, window=False,
           weights=False)
def _simple(spec: AttentionSpec) -> nn.Module:
    return _SelfOnly(SimpleSelfAttention(causal=spec.causal))
