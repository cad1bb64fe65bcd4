"""Banded attention: compute only the blocks a causal offset or a window lets through.

A sliding window of width ``w`` lets query ``i`` (absolute position
``p = i + S - L``) see keys ``j`` with ``|p - j| < w`` (and ``j <= p`` when
causal). A dense ``(L, S)`` mask would do ``L·S`` work to keep ``L·w`` of it.
Here the queries are cut into blocks of ``Q`` rows; each block only meets the
``K = Q + w - 1`` keys (``Q + 2w - 2`` without causality) around it, so time
and memory are ``O(L · (Q + w))``.

Two implementations share that block structure, and both take every block at
once through strided views of the keys (no Python loop per block, so the
OpenMP thread pool wakes a few times per call; see :mod:`attnlab.functional.banded`):

* ``banded.BandedAttention`` (the default): a forward of one fused-kernel call
  over all blocks (the keys as strided block views, the band's cached mask), or,
  with a key mask or rows that see nothing, batched matrix products and one
  softmax per chunk; a backward that recomputes the weights per chunk with
  batched products, chunked to bound memory.
* the fused-kernel version (with dropout, half precision, or a key mask that
  needs a gradient): PyTorch's SDPA over the blocks with a ``(n, Q, K)`` mask,
  differentiated by autograd through the kernel (its own block views, made with
  ``unfold``, whose backward is cheap).

Shape letters: N flattened batch, L queries, S keys, D head width, Dv value
width, n blocks, nb blocks in a chunk, Q queries per block, K keys per block.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from .banded import BandedAttention
from .fused import fused_attention
from .masks import as_bias, restrict
from .offset_causal import offset_causal


def block_size(window: int) -> int:
    """Queries per block of the fused-kernel version (all blocks in one SDPA call)."""
    return max(16, min(128, window))


def windowed_attention(
    query: Tensor, key: Tensor, value: Tensor, key_mask: Tensor | None, *, window: int,
    causal: bool, scale: float, dropout_p: float,
) -> Tensor:
    """Sliding-window attention that skips the work outside the band.

    Args:
        query: ``(N, L, D)``.
        key: ``(N, S, D)``.
        value: ``(N, S, Dv)``.
        key_mask: ``(N or 1, S)`` bool or float per-key mask, or None.
        window: ``w >= 1``.
        causal: Also hide keys after the query.
        scale: Score scale.
        dropout_p: Dropout on the weights.

    Returns:
        ``(N, L, Dv)``; rows that see no key are zero.
    """
    blocked = dropout_p > 0 or query.dtype not in (torch.float32, torch.float64) or (
        key_mask is not None and key_mask.requires_grad)
    if blocked:  # the fused kernel handles dropout, half precision and mask gradients
        return _windowed_fused(query, key, value, key_mask, window=window, causal=causal,
                               scale=scale, dropout_p=dropout_p)
    key_bias = None
    if key_mask is not None:  # (N or 1, S) -> additive (N or 1, S)
        key_bias = as_bias(key_mask, query.dtype)
    out = BandedAttention.apply(query, key, value, key_bias, window, causal, scale)
    assert isinstance(out, Tensor)
    return out


def _windowed_fused(
    query: Tensor, key: Tensor, value: Tensor, key_mask: Tensor | None, *, window: int,
    causal: bool, scale: float, dropout_p: float,
) -> Tensor:
    """:func:`windowed_attention` through the fused SDPA kernel, all blocks at once.

    Same arguments, shapes and result as :func:`windowed_attention`.
    """
    N, L, D = query.shape
    S = key.shape[1]
    offset = S - L  # query i sits at absolute position i + offset
    Q = block_size(window)
    n = -(-L // Q)  # number of query blocks
    back, ahead = window - 1, (0 if causal else window - 1)
    K = Q + back + ahead  # keys each block can meet

    # Key coordinates of block b start at b*Q + offset - back. Pad keys on both sides so that
    # every block's K keys exist, then take all blocks at once as a strided view.
    first = offset - back
    pad_left = max(0, -first)
    pad_right = max(0, (n - 1) * Q + first + K - S)
    start = first + pad_left
    def blocks(x: Tensor) -> Tensor:  # (N, S, C) -> (N, n, K, C), a view after one pad
        x = F.pad(x, (0, 0, pad_left, pad_right))
        return x[:, start:].unfold(1, K, Q)[:, :n].transpose(-2, -1)

    k_blocks, v_blocks = blocks(key), blocks(value)  # (N, n, K, D), (N, n, K, Dv)
    q_blocks = F.pad(query, (0, 0, 0, n * Q - L)).view(N, n, Q, D)  # (N, n, Q, D)

    row = torch.arange(Q, device=query.device)[:, None]  # (Q, 1)
    col = torch.arange(K, device=query.device)[None, :]  # (1, K)
    distance = row - col + back  # (Q, K): query position minus key position, same for all blocks
    band = (distance < window) & (distance >= (0 if causal else 1 - window))  # (Q, K)
    key_pos = (torch.arange(n, device=query.device) * Q + first)[:, None] + col  # (n, K)
    real = (key_pos >= 0) & (key_pos < S)  # (n, K): padding keys are never seen
    mask = band[None] & real[:, None, :]  # (n, Q, K)
    if key_mask is not None:
        km = blocks(key_mask.unsqueeze(-1)).squeeze(-1)  # (N or 1, n, K)
        if km.dtype == torch.bool:
            mask = mask & km[:, :, None, :]  # (N or 1, n, Q, K)
        else:
            blocked = torch.tensor(float("-inf"), dtype=km.dtype, device=km.device)
            mask = torch.where(mask, km[:, :, None, :], blocked)  # additive
    out = fused_attention(q_blocks, k_blocks, v_blocks, mask, scale=scale,
                          dropout_p=dropout_p)  # (N, n, Q, Dv)
    return out.reshape(N, n * Q, -1)[:, :L]


def offset_causal_attention(
    query: Tensor, key: Tensor, value: Tensor, key_mask: Tensor | None = None, *,
    scale: float, dropout_p: float, enable_gqa: bool = False,
) -> Tensor:
    """Bottom-right causal attention, optionally with a per-key mask, without an ``(L, S)`` mask.

    PyTorch's ``is_causal`` is top-left aligned, so it is only right for
    ``L == S`` and cannot be combined with a mask. Query block ``[i0, i1)`` sees
    keys ``[0, i1 + S - L)``; each block gets its own ``(Q, i1 + S - L)`` mask
    (the causal edge, and the key mask such as padding), so memory stays linear
    in ``S`` and the keys after the block are never touched. That loop is the
    fallback (dropout, a mask that needs a gradient, not the CPU): otherwise
    :func:`attnlab.functional.offset_causal.offset_causal` takes the call, two
    flash-kernel calls and an exact merge.

    Shape:
        query ``(..., L, D)``, key ``(..., S, D)``, value ``(..., S, Dv)`` (leading
        dims equal; with ``enable_gqa`` key/value may have G heads dividing the query's
        H, as in PyTorch's SDPA), key_mask broadcastable to ``(..., 1, S)`` ->
        ``(..., L, Dv)``.
    """
    fused = offset_causal(query, key, value, key_mask, scale=scale, dropout_p=dropout_p,
                          enable_gqa=enable_gqa)
    if fused is not None:  # two flash-kernel calls and a merge (see offset_causal.py)
        return fused
    L, S = query.shape[-2], key.shape[-2]  # dropout, a mask with a gradient, not the CPU
    offset = S - L
    Q = 256
    outs = []
    for i0 in range(0, L, Q):
        i1 = min(L, i0 + Q)
        hi = min(S, i1 + offset)  # keys visible to the block's last query
        if hi <= 0:  # queries before every key (L > S): they see nothing
            outs.append(value.new_zeros(*value.shape[:-2], i1 - i0, value.shape[-1]))
            continue
        rows = torch.arange(i0, i1, device=query.device)[:, None] + offset  # (Q, 1)
        mask = torch.arange(hi, device=query.device)[None, :] <= rows  # (Q, hi)
        if key_mask is not None:
            mask = restrict(key_mask[..., :hi], mask)  # (..., Q, hi), bool or additive
        outs.append(fused_attention(query[..., i0:i1, :], key[..., :hi, :], value[..., :hi, :],
                                    mask, scale=scale, dropout_p=dropout_p,
                                    enable_gqa=enable_gqa))
    return torch.cat(outs, dim=-2)
