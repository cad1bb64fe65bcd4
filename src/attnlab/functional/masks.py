"""Masks: one convention everywhere.

* A **boolean** mask says which keys a query may see: ``True`` = may attend.
  (Same polarity as ``torch.nn.functional.scaled_dot_product_attention``; the
  opposite of ``nn.MultiheadAttention``'s ``key_padding_mask``.)
* A **floating** mask is an additive bias on the scores (ALiBi, ``-inf``, ...):
  finite values or ``-inf``; NaN and ``+inf`` are refused (they only make NaN).
* Masks broadcast to ``(..., L, S)``: ``(B, 1, 1, S)`` is a padding mask,
  ``(L, S)`` a mask shared by every batch element and head.
* ``causal`` is bottom-right aligned: query ``i`` sits at absolute position
  ``i + (S - L)`` and may see key ``j`` iff ``j <= i + (S - L)``.
* ``window=w`` keeps key ``j`` iff ``|i + (S - L) - j| < w``.

Shape letters: B batch, H heads, L queries, S keys.
"""

import torch
from torch import Tensor

from .._validate import check_broadcastable, check_device, check_int, check_tensor


def causal_mask(
    L: int, S: int | None = None, *, window: int | None = None, device: torch.device | None = None
) -> Tensor:
    """The bottom-right aligned causal mask, optionally a sliding window.

    Query ``i`` may see key ``j`` iff ``j <= i + (S - L)``; with ``window=w``
    also ``i + (S - L) - j < w`` (the ``w`` most recent keys, itself included).

    Args:
        L: Number of queries.
        S: Number of keys; defaults to ``L``.
        window: Optional window size ``w >= 1``.
        device: Where to build the mask.

    Shape:
        Returns ``(L, S)`` bool, ``True`` = may attend.

    Raises:
        ValueError: If ``L``/``S`` < 1 or ``window`` < 1.

    Example:
        >>> causal_mask(2, 4).int()
        tensor([[1, 1, 1, 0],
                [1, 1, 1, 1]], dtype=torch.int32)
        >>> causal_mask(3, window=2).int()
        tensor([[1, 0, 0],
                [1, 1, 0],
                [0, 1, 1]], dtype=torch.int32)
    """
    check_int("L", L, minimum=1)
    S = L if S is None else check_int("S", S, minimum=1)
    check_window(window)
    return visibility(L, S, causal=True, window=window, device=device)


def padding_mask(lengths: Tensor | list[int], max_len: int | None = None) -> Tensor:
    """A padding mask from sequence lengths: ``True`` marks real tokens.

    Args:
        lengths: ``(B,)`` integer lengths (a tensor or a list).
        max_len: Width ``S`` of the mask; defaults to ``max(lengths)``.

    Shape:
        Returns ``(B, 1, 1, S)`` bool, ready to broadcast over heads and queries.

    Raises:
        TypeError: If ``lengths`` is not integer.
        ValueError: If a length is negative or exceeds ``max_len``.

    Example:
        >>> padding_mask([2, 3]).squeeze(1).squeeze(1).int()
        tensor([[1, 1, 0],
                [1, 1, 1]], dtype=torch.int32)
    """
    if isinstance(lengths, list | tuple):
        lengths = torch.tensor(lengths, dtype=torch.long)
    if not isinstance(lengths, Tensor) or lengths.is_floating_point() or lengths.is_complex() \
            or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must be an integer tensor or list, got {lengths!r}")
    if lengths.dim() != 1 or lengths.numel() == 0:
        raise ValueError(f"lengths must have shape (B,), got {tuple(lengths.shape)}")
    if (lengths < 0).any():
        raise ValueError(f"lengths must be >= 0, got {lengths.tolist()}")
    longest = int(lengths.max())
    if max_len is None:
        max_len = max(longest, 1)
    check_int("max_len", max_len, minimum=1)
    if longest > max_len:
        raise ValueError(f"lengths must be <= max_len ({max_len}), got {lengths.tolist()}")
    positions = torch.arange(max_len, device=lengths.device)  # (S,)
    return (positions < lengths[:, None])[:, None, None, :]  # (B, 1, 1, S)


def check_window(window: object) -> int | None:
    """Check ``window`` is None or an int >= 1."""
    if window is None:
        return None
    return check_int("window", window, minimum=1)


def check_mask(mask: object, target: tuple[int, ...], like: Tensor | None = None) -> Tensor:
    """Check a user mask: a bool or float tensor broadcastable to ``target`` ``(..., L, S)``.

    With ``like`` (the queries), the mask must be on its device, and a float mask's
    values must be ``-inf`` or finite in its dtype: a NaN or ``+inf`` bias can only
    turn rows into NaN. That check reads the mask once (one reduction); bool masks
    and ``None`` cost nothing.
    """
    check_tensor("mask", mask, floating=False)
    assert isinstance(mask, Tensor)
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(
            f"mask must be bool (True = may attend) or floating (additive bias), got dtype "
            f"{mask.dtype}; convert 0/1 masks with mask.bool()"
        )
    check_broadcastable("mask", mask.shape, target)
    if like is not None:
        check_device("mask", mask, like.device, "the queries")
        if mask.is_floating_point() and mask.numel() > 0:
            check_bias_values(mask, like.dtype if like.is_floating_point() else mask.dtype)
    return mask


def check_bias_values(bias: Tensor, dtype: torch.dtype) -> None:
    """Refuse a float mask holding NaN, ``+inf``, or values ``dtype`` cannot hold."""
    top = float(bias.detach().amax())  # NaN propagates through amax; one pass, one sync
    limit = torch.finfo(dtype).max
    if not top <= limit:
        what = "NaN" if top != top else f"{top:g}"
        raise ValueError(
            f"mask (an additive float bias) holds {what}; a bias must be finite in {dtype} "
            f"(at most {limit:g}) or -inf to hide a key"
        )


def visibility(
    L: int, S: int, *, causal: bool, window: int | None, device: torch.device | None = None
) -> Tensor | None:
    """The ``(L, S)`` bool mask that ``causal`` and ``window`` describe, or None if neither."""
    if not causal and window is None:
        return None
    if window is None:  # causal only: key j visible iff j <= i + S - L (one pass, no arange)
        return torch.ones(L, S, dtype=torch.bool, device=device).tril_(S - L)
    query_pos = torch.arange(L, device=device)[:, None] + (S - L)  # (L, 1) absolute positions
    distance = query_pos - torch.arange(S, device=device)[None, :]  # (L, S) = i + S - L - j
    visible = torch.ones(L, S, dtype=torch.bool, device=device)
    if causal:
        visible &= distance >= 0
    if window is not None:
        visible &= distance.abs() < window
    return visible


def restrict(mask: Tensor | None, visible: Tensor | None) -> Tensor | None:
    """Hide what ``visible`` (bool) hides from ``mask`` (bool or additive float)."""
    if visible is None or mask is None:
        return visible if mask is None else mask
    if mask.dtype == torch.bool:
        return mask & visible
    return mask.masked_fill(~visible, float("-inf"))


def as_bias(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Turn a mask into an additive bias of ``dtype`` (bool False -> -inf)."""
    if mask.is_floating_point():
        return mask.to(dtype)
    zero = torch.zeros((), dtype=dtype, device=mask.device)
    return torch.where(mask, zero, torch.tensor(float("-inf"), dtype=dtype, device=mask.device))


def merge_masks(first: Tensor | None, second: Tensor | None) -> Tensor | None:
    """Combine two masks: bool & bool stays bool, anything with a float becomes a bias."""
    if first is None:
        return second
    if second is None:
        return first
    if first.dtype == torch.bool and second.dtype == torch.bool:
        return first & second
    dtype = first.dtype if first.is_floating_point() else second.dtype
    return as_bias(first, dtype) + as_bias(second, dtype)


def blocked_rows(mask: Tensor) -> Tensor:
    """``(..., L)`` bool: True where a query row of ``mask`` can see no key at all."""
    if mask.dtype == torch.bool:
        return ~mask.any(dim=-1)
    return torch.isneginf(mask).all(dim=-1)
