"""Scaled dot-product attention: validation, dispatch, and the public functions.

``scaled_dot_product_attention`` computes ``softmax(Q Kᵀ · scale + bias) V``
(Vaswani et al., 2017, "Attention Is All You Need", eq. 1) and picks the
cheapest exact path:

====================  ==============================================================
path                  when
====================  ==============================================================
``fused``             PyTorch's fused kernel (no weights materialised); ``causal``
                      with ``L == S`` uses its ``is_causal``; ``L > S`` runs it on the
                      last ``S`` queries (the first ``L - S`` see nothing); ``L == 1``
                      sees every key; ``causal`` with an ``(L, S)`` mask is merged into it;
                      ``causal`` with ``1 < L < S`` and ``L·S ≤`` :data:`SMALL_OFFSET`
                      runs it once with the bottom-right ``(L, S)`` mask.
``offset-causal``     ``causal`` with ``1 < L < S`` above that, or ``causal`` with a per-key mask
                      (padding): two flash-kernel calls merged by log-sum-exp on the
                      CPU (offset_causal.py); query blocks with small masks otherwise
                      (dropout, other devices; see windowed.py).
``windowed``          ``window`` set: only the band is computed (see windowed.py).
``math``              weights are wanted, a mask with a query axis meets a window, or
                      a dimension is empty (``B``, ``L`` or ``S`` = 0: nothing to
                      compute; with ``S = 0`` every row sees nothing and is zero).
====================  ==============================================================

``plan(...)`` returns the path and the reason in words; the dispatcher logs it
at DEBUG level on the ``attnlab`` logger.

Shape letters: L queries, S keys, E query/key width, Ev value width, H query
heads, G key/value heads (grouped-query attention: G divides H).
"""

import functools
import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .._validate import broadcast_shape
from .checks import check_attention_args
from .fused import fused_attention
from .masks import merge_masks, visibility
from .reference import math_attention, math_weights
from .windowed import offset_causal_attention, windowed_attention

log = logging.getLogger("attnlab")

SMALL_OFFSET = 2**19
"""Up to this many ``L·S`` pairs, bottom-right causal runs as ONE fused call with a mask.

The offset-causal path's two kernel calls and merge cost more than the mask saves there,
and more parallel regions suffer more from other work on the cores. Measured (B=2, H=8,
D=64, L = S/2, 2 threads, medians of 9 interleaved runs; ms, one fused call with the mask
built / offset-causal): S=512 3.78 / 4.57 alone, 8.05 / 8.78 with another process busy;
S=1024 14.7 / 14.2 and 25.8 / 29.7; S=2048 52.7 / 41.0 and 109 / 89; S=8192 956 / 584 and
1494 / 938."""


@dataclass(frozen=True)
class Plan:
    """Which path computes an attention call, and why (in plain words)."""

    path: str
    reason: str


def scaled_dot_product_attention(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None, *,
    causal: bool = False, window: int | None = None, scale: float | None = None,
    dropout_p: float = 0.0,
) -> Tensor:
    r"""Attention: :math:`\mathrm{softmax}(Q K^\top \cdot \mathrm{scale} + \mathrm{bias})\,V`.

    Args:
        query: ``(..., L, E)`` queries.
        key: ``(..., S, E)`` keys.
        value: ``(..., S, Ev)`` values. Leading dims of the three broadcast.
        mask: Bool (``True`` = may attend) or float (additive bias), broadcastable
            to ``(..., L, S)``.
            A float mask holds finite values or ``-inf`` (NaN and ``+inf`` are refused).
        causal: Bottom-right aligned causality: query ``i`` sees key ``j`` iff
            ``j <= i + S - L``. A bool (``"False"`` is refused, not read as True).
        window: Keep key ``j`` iff ``|i + S - L - j| < window``.
        scale: Score scale, a positive finite number; default ``1 / sqrt(E)``. A
            scale above 1 is checked against the inputs: if ``scale · max|q| ·
            max|k|`` (Cauchy–Schwarz bound of a score) would overflow the dtype,
            it is refused instead of returning NaN (that check reads query and key
            once; the usual scales ≤ 1 skip it).
        dropout_p: Dropout probability on the weights (applied whenever > 0).

    Shape:
        Returns ``(..., L, Ev)``. A query that sees no key gets zeros; so does
        every query when ``S = 0``. Empty ``B`` or ``L`` give an empty output.

    Raises:
        TypeError: Non-tensor inputs, integer tensors, integer masks, non-bool ``causal``.
        ValueError: Mismatched widths/lengths, ``E = 0``, non-broadcastable masks, a
            NaN/``+inf`` float mask, inputs on the meta device or on different
            devices, bad ``window``/``scale``/``dropout_p``.

    Example:
        >>> import attnlab as al
        >>> q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 4)
        >>> al.scaled_dot_product_attention(q, k, v, causal=True).shape
        torch.Size([2, 3, 5, 4])

    Conventions vs other libraries: the mask polarity is SDPA's; ``causal`` is
    bottom-right aligned (SDPA's ``is_causal`` is top-left when ``L != S``).
    """
    mask, scale, window = check_attention_args(query, key, value, mask, causal, window, scale,
                                               dropout_p)
    return attend(query, key, value, mask, causal=causal, window=window, scale=scale,
                  dropout_p=dropout_p)


def attention_weights(
    query: Tensor, key: Tensor, mask: Tensor | None = None, *, causal: bool = False,
    window: int | None = None, scale: float | None = None,
) -> Tensor:
    """The attention weights ``softmax(Q Kᵀ · scale + bias)``, materialised.

    Args:
        query: ``(..., L, E)``.
        key: ``(..., S, E)``.
        mask: As in :func:`scaled_dot_product_attention`.
        causal: As in :func:`scaled_dot_product_attention`.
        window: As in :func:`scaled_dot_product_attention`.
        scale: Default ``1 / sqrt(E)``.

    Shape:
        Returns ``(..., L, S)``; each row sums to 1, or to 0 if it sees no key
        (with ``S = 0`` the rows are empty).

    Example:
        >>> import attnlab as al
        >>> w = al.attention_weights(torch.randn(4, 3), torch.randn(6, 3), causal=True)
        >>> w.shape, bool(torch.allclose(w.sum(-1), torch.ones(4)))
        (torch.Size([4, 6]), True)
    """
    mask, scale, window = check_attention_args(query, key, None, mask, causal, window, scale, 0.0)
    return math_weights(query, key, mask, causal=causal, window=window, scale=scale)


def plan(
    L: int, S: int, mask: Tensor | None, *, causal: bool, window: int | None,
    need_weights: bool = False, empty: bool = False,
) -> Plan:
    """Choose the path for one attention call and say why."""
    if need_weights:
        return Plan("math", "the attention weights were requested")
    if empty:
        return Plan("math", "an empty dimension (B, L or S = 0): nothing to compute")
    if window is not None and window >= L + S:
        window = None  # a window this wide hides nothing
    if window is not None:
        if mask is not None and mask.dim() >= 2 and mask.shape[-2] != 1:
            return Plan("math", "a mask with a query axis cannot be banded; window needs math")
        return Plan("windowed", "window set: only the band around each query is computed")
    if causal and mask is not None:
        if mask.dim() < 2 or mask.shape[-2] == 1:
            return Plan("offset-causal", "causal with a per-key mask: query blocks, no (L, S) mask")
        return Plan("fused", "causal merged into the given (L, S) mask (fused kernel, one mask)")
    if causal and 1 < L < S:
        if L * S <= SMALL_OFFSET:
            return Plan("fused", "causal with 1 < L < S, small: one call with the (L, S) mask")
        return Plan("offset-causal", "causal with 1 < L < S: bottom-right blocks")
    return Plan("fused", "fused kernel")


def attend(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None, *, causal: bool,
    window: int | None, scale: float, dropout_p: float, need_weights: bool = False,
) -> tuple[Tensor, Tensor] | Tensor:
    """Dispatch on validated inputs; returns ``out`` or ``(out, weights)`` if ``need_weights``.

    Also accepts grouped-query heads: query ``(B, H, L, E)`` with key/value
    ``(B, G, S, E)``, G dividing H; key/value head g serves query heads
    ``g·H/G ... (g+1)·H/G - 1``.
    """
    L, S = query.shape[-2], key.shape[-2]
    causal = causal and L > 1  # one bottom-right query sees every key: causal hides nothing
    if mask is not None and mask.dim() < 2:  # () or (S,): give it the (L, S) axes paths index
        mask = mask.reshape((1,) * (2 - mask.dim()) + tuple(mask.shape))
    if mask is not None and mask.is_floating_point() and mask.dtype != query.dtype:
        mask = mask.to(query.dtype)
    groups = _groups(query, key)
    empty = query.numel() == 0 or key.numel() == 0 or value.numel() == 0  # E >= 1: B, L or S
    choice = plan(L, S, mask, causal=causal, window=window, need_weights=need_weights,
                  empty=empty)
    if not torch.compiler.is_compiling():  # a logger call would break torch.compile's graph
        log.debug("attention L=%d S=%d: %s (%s)", L, S, choice.path, choice.reason)
    if choice.path == "math":
        q = query if groups == 1 else query.unflatten(-3, (key.shape[-3], groups))
        k, v = (key, value) if groups == 1 else (key.unsqueeze(-3), value.unsqueeze(-3))
        m = mask if groups == 1 or mask is None else _split_mask_heads(mask, key.shape[-3], groups)
        out, weights = math_attention(q, k, v, m, causal=causal, window=window, scale=scale,
                                      dropout_p=dropout_p)  # (B, G, H/G, L, Ev) when grouped
        if groups > 1:
            out, weights = out.flatten(-4, -3), weights.flatten(-4, -3)  # (B, H, L, .)
        return (out, weights) if need_weights else out
    if choice.path == "windowed":
        if groups > 1:  # the banded kernel has no grouped heads: copy them (B, H, S, E)
            key = key.repeat_interleave(groups, dim=-3)
            value = value.repeat_interleave(groups, dim=-3)
        return _windowed(query, key, value, mask, causal=causal, window=window, scale=scale,
                         dropout_p=dropout_p)
    if choice.path == "offset-causal":
        tail = 2 if groups == 1 else 3  # grouped: broadcast all but the head counts
        batch = broadcast_shape(*(t.shape[:-tail] for t in (query, key, value)))
        q, k, v = (t.expand(*batch, *t.shape[-tail:]) for t in (query, key, value))  # views
        return offset_causal_attention(q, k, v, mask, scale=scale, dropout_p=dropout_p,
                                       enable_gqa=groups > 1)
    return _fused(query, key, value, mask, causal=causal, scale=scale, dropout_p=dropout_p,
                  gqa=groups > 1)


def _fused(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None, *, causal: bool,
    scale: float, dropout_p: float, gqa: bool,
) -> Tensor:
    L, S = query.shape[-2], key.shape[-2]
    if causal and mask is None and L < S:  # small (SMALL_OFFSET): one call, a cached mask
        mask = (visibility(L, S, causal=True, window=None, device=query.device)
                if torch.compiler.is_compiling() else _bottom_right(L, S, query.device))
        return fused_attention(query, key, value, mask, scale=scale, dropout_p=dropout_p,
                               enable_gqa=gqa, rows_see_keys=True)
    if causal and mask is not None:
        mask = merge_masks(mask, visibility(L, S, causal=True, window=None, device=query.device))
        causal = False
    if causal and L > S:  # the first L - S queries see no key
        out = fused_attention(query[..., L - S:, :], key, value, None, scale=scale,
                              dropout_p=dropout_p, is_causal=True, enable_gqa=gqa)
        return F.pad(out, (0, 0, L - S, 0))
    return fused_attention(query, key, value, mask, scale=scale, dropout_p=dropout_p,
                           is_causal=causal and L == S, enable_gqa=gqa)


@functools.lru_cache(maxsize=16)
def _bottom_right(L: int, S: int, device: torch.device) -> Tensor:
    """The bottom-right causal ``(L, S)`` bool mask (``L < S``), made once per shape.

    Shared by every call of that shape, so never written to. Made outside inference
    mode, so that it is an ordinary tensor whichever mode the first call ran in. With
    another process on the cores, each small op (making the mask, checking its rows)
    is one more parallel region that can lose a scheduler time slice: bottom-right
    causal at L=512, S=1024 ran at 0.48-0.69x torch's speed with another process busy
    while it made and checked its mask on every call (1.00x once cached). Eager only:
    a compiled graph makes the mask itself.
    """
    with torch.inference_mode(False):
        return visibility(L, S, causal=True, window=None, device=device)


def _windowed(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None, *, causal: bool,
    window: int | None, scale: float, dropout_p: float,
) -> Tensor:
    assert window is not None
    batch = broadcast_shape(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    L, S = query.shape[-2], key.shape[-2]
    q, k, v = (t.expand(*batch, *t.shape[-2:]).reshape(-1, *t.shape[-2:])
               for t in (query, key, value))  # (N, X, C): leading dims broadcast and flattened
    key_mask = None
    if mask is not None:  # (..., 1, S) -> (1, S) when shared by every row, else (N, S)
        shared = all(n == 1 for n in mask.shape[:-2])
        key_mask = (mask.reshape(1, -1).expand(1, S) if shared
                    else mask.expand(*batch, 1, S).reshape(-1, S))
    out = windowed_attention(q, k, v, key_mask, window=window, causal=causal, scale=scale,
                             dropout_p=dropout_p)
    return out.view(*batch, L, -1)


def _groups(query: Tensor, key: Tensor) -> int:
    if query.dim() < 3 or key.dim() < 3 or query.shape[-3] == key.shape[-3] or key.shape[-3] == 1:
        return 1
    return query.shape[-3] // key.shape[-3]


def _split_mask_heads(mask: Tensor, kv_heads: int, groups: int) -> Tensor:
    """``(..., H or 1, L, S)`` -> ``(..., G or 1, H/G or 1, L, S)`` for grouped math."""
    if mask.dim() < 3:
        return mask
    if mask.shape[-3] == 1:
        return mask.unsqueeze(-3)
    return mask.unflatten(-3, (kv_heads, groups))
