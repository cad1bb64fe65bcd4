"""The explicit math path: scores, a safe softmax, weights, output.

This is attention written the obvious way, ``softmax(Q Kᵀ · scale + bias) V``.
It materialises the ``(..., L, S)`` weights, so it is the path used when the
weights are wanted (``attention_weights``, ``capture_attention``) and the
fallback when no fused kernel applies.

Shape letters: L queries, S keys, E query/key width, Ev value width.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from .masks import restrict, visibility


def masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax over the last dim that never returns NaN.

    ``mask`` is bool (``True`` = keep) or an additive float bias. A row with no
    visible entry gets all-zero weights, and its gradient is zero, not NaN.
    Half-precision scores are normalised in float32 and cast back. With no keys
    (``S = 0``) the rows are empty and are returned as they are.

    Shape:
        scores ``(..., L, S)``; mask broadcastable to it; returns ``(..., L, S)``.
    """
    out_dtype = scores.dtype
    if scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask.to(scores.dtype)
    if scores.shape[-1] == 0:  # no keys: nothing to normalise (amax needs one entry)
        return scores.to(out_dtype)
    row_max = scores.amax(dim=-1, keepdim=True).detach()  # (..., L, 1)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    exp = torch.exp(scores - row_max)  # masked entries: exp(-inf) = 0
    total = exp.sum(dim=-1, keepdim=True)  # (..., L, 1)
    weights = exp / torch.where(total > 0, total, torch.ones_like(total))
    return weights.to(out_dtype)


def math_weights(
    query: Tensor, key: Tensor, mask: Tensor | None, *, causal: bool, window: int | None,
    scale: float,
) -> Tensor:
    """Attention weights on already-validated inputs. Returns ``(..., L, S)``."""
    L, S = query.shape[-2], key.shape[-2]
    scores = (query @ key.transpose(-2, -1)) * scale  # (..., L, E) @ (..., E, S) -> (..., L, S)
    visible = visibility(L, S, causal=causal, window=window, device=query.device)  # (L, S)
    mask = restrict(mask, visible)
    return masked_softmax(scores, mask)


def math_attention(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None, *, causal: bool,
    window: int | None, scale: float, dropout_p: float,
) -> tuple[Tensor, Tensor]:
    """Output and (pre-dropout) weights on already-validated inputs.

    Returns:
        ``(out, weights)``: ``(..., L, Ev)`` and ``(..., L, S)``.
    """
    weights = math_weights(query, key, mask, causal=causal, window=window, scale=scale)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return dropped @ value, weights  # (..., L, S) @ (..., S, Ev) -> (..., L, Ev)
