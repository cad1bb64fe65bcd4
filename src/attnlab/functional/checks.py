"""Argument checks of the functional API, run once before any work.

Every check names the argument and what it got. The common case costs a few
Python comparisons: devices are compared as attributes (no synchronisation);
only a float mask (one reduction) and a scale above 1 (one pass over query and
key) read tensor data.
"""

import math

import torch
from torch import Tensor

from .._validate import broadcast_shape, check_bool, check_device, check_float, check_tensor
from .masks import check_mask, check_window


def check_scale_overflow(query: Tensor, key: Tensor, scale: float) -> None:
    """Refuse a ``scale`` with which a score ``q·k·scale`` could overflow the dtype.

    ``|q·k| <= |q|·|k|`` (Cauchy–Schwarz), so the largest possible score is
    ``scale · max|q| · max|k|``. Only run for scales above 1 (one pass over query
    and key): a scale ≤ 1 never enlarges a score beyond ``q·k`` itself.
    """
    if query.numel() == 0 or key.numel() == 0:
        return
    q_norm = float(torch.linalg.vector_norm(query.detach(), dim=-1, dtype=torch.float64).amax())
    k_norm = float(torch.linalg.vector_norm(key.detach(), dim=-1, dtype=torch.float64).amax())
    limit = torch.finfo(query.dtype).max
    bound = scale * q_norm * k_norm
    if not bound <= limit:
        raise ValueError(
            f"scale={scale:g} can make the scores overflow {query.dtype} (largest possible "
            f"|q·k|·scale = {bound:.3g} > {limit:.3g}): the weights would be NaN; use a "
            "smaller scale"
        )


def check_attention_args(
    query: Tensor, key: Tensor, value: Tensor | None, mask: Tensor | None, causal: object,
    window: object,
    scale: float | None, dropout_p: float,
) -> tuple[Tensor | None, float, int | None]:
    """Validate the public arguments; return the mask, the resolved scale and window."""
    check_tensor("query", query, min_ndim=2)
    check_tensor("key", key, min_ndim=2)
    check_bool("causal", causal)
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"query and key must have the same last dimension E, got query "
            f"{tuple(query.shape)} and key {tuple(key.shape)}"
        )
    if query.shape[-1] == 0:
        raise ValueError(f"query and key need a width E >= 1 (the default scale is "
                         f"1/sqrt(E)), got query {tuple(query.shape)}")
    tensors = [query, key]
    if value is not None:
        check_tensor("value", value, min_ndim=2)
        tensors.append(value)
    device = query.device
    if device.type == "meta" or key.device != device or (value is not None
                                                         and value.device != device):
        for name, t in zip(("query", "key", "value"), tensors, strict=False):  # which one
            check_device(name, t, None if name == "query" else device, "query")
    if value is not None and value.shape[-2] != key.shape[-2]:
        raise ValueError(
            f"key and value must have the same length S, got key {tuple(key.shape)} "
            f"and value {tuple(value.shape)}"
        )
    if len({t.dtype for t in tensors}) > 1:
        got = ", ".join(f"{n} {t.dtype}" for n, t in zip(("query", "key", "value"), tensors,
                                                          strict=False))
        raise TypeError(f"query, key and value must share a dtype, got {got}")
    leading = [t.shape[:-2] for t in tensors]
    try:  # equal leading dims (the common case) skip broadcast_shape
        batch = leading[0] if leading.count(leading[0]) == len(leading) else \
            broadcast_shape(*leading)
    except ValueError:
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
        raise ValueError(f"leading dims of query, key, value do not broadcast: {shapes}") from None
    if mask is not None:
        mask = check_mask(mask, (*batch, query.shape[-2], key.shape[-2]), like=query)
    window = check_window(window)
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    else:
        scale = check_float("scale", scale, minimum=0.0, min_inclusive=False)
        if math.isinf(scale):
            raise ValueError(f"scale must be finite, got {scale}")
        if scale > 1.0:
            check_scale_overflow(query, key, scale)
    check_float("dropout_p", dropout_p, minimum=0.0, maximum=1.0, max_inclusive=False)
    return mask, scale, window
