"""PyTorch's fused attention kernel with attnlab's rule for rows that see no key.

``torch.nn.functional.scaled_dot_product_attention`` gives NaN (or, on some
backends, a uniform average) for a query row whose mask hides every key.
attnlab's convention is zeros, with zero (finite) gradients. Every fused call in
attnlab goes through :func:`fused_attention`, which opens such rows to every
key, runs the kernel, and zeroes them afterwards: no NaN is ever produced, so
none reaches a gradient.

Shape letters: L queries, S keys, E query/key width, Ev value width.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from .masks import blocked_rows


def fused_attention(query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None, *,
                    scale: float, dropout_p: float = 0.0, is_causal: bool = False,
                    enable_gqa: bool = False, rows_see_keys: bool = False) -> Tensor:
    """``F.scaled_dot_product_attention`` where rows that see no key give zeros.

    Args:
        query: ``(..., L, E)``.
        key: ``(..., S, E)``.
        value: ``(..., S, Ev)``.
        mask: Bool (True = may attend) or additive float mask broadcastable to
            ``(..., L, S)``, or None.
        scale: Score scale.
        dropout_p: Dropout on the weights.
        is_causal: PyTorch's top-left aligned causal flag (only with ``mask=None``).
        enable_gqa: Key/value heads may divide the query heads.
        rows_see_keys: The caller knows that every row of ``mask`` sees a key (a
            bottom-right causal mask with ``L <= S``, the banded kernel's block
            mask where no row is blind): the check, a pass over the mask, is skipped.

    Returns:
        ``(..., L, Ev)``.
    """
    empty = None
    if mask is not None and not rows_see_keys:
        empty = blocked_rows(mask)[..., None]  # (..., L, 1): rows that see nothing
        if bool(empty.any()):  # rare: otherwise the mask is passed on as it is, not copied
            mask = mask.masked_fill(empty, True if mask.dtype == torch.bool else 0.0)
        else:
            empty = None
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout_p,
                                         is_causal=is_causal, scale=scale, enable_gqa=enable_gqa)
    return out if empty is None else out.masked_fill(empty, 0.0)
