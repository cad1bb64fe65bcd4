"""What every attention module shares: the attend step and the capture hook point.

Every attention module subclasses :class:`AttentionModule`; every dot-product
one (``SimpleSelfAttention``, ``SelfAttention``, ``MultiHeadAttention`` and the
modules built on them) computes its attention through
:meth:`AttentionModule.attend`. Outside ``capture_attention`` that call takes the
fused path; inside, the capture context installs a recorder on the module, the
math path runs, and the per-head weights ``(B, H, L, S)`` are handed to the
recorder, detached. ``AdditiveAttention`` scores each (query, key) pair with a
small network instead of a dot product, so it computes its weights itself and
hands them to the same recorders.

Shape letters: B batch, H query heads, G key/value heads, L queries, S keys,
E model width, D head width.
"""

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .._validate import check_device, check_float, check_int, check_tensor
from ..functional import attend
from ..functional.checks import check_scale_overflow
from ..functional.masks import check_mask, restrict, visibility
from .cache import KVCache

Recorder = Callable[[Tensor], None]


class AttentionModule(nn.Module):
    """Base class of attention modules; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._recorder: Recorder | None = None  # set only inside capture_attention
        self._score_recorder: Recorder | None = None  # capture_attention(..., scores=True)

    def attend(
        self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *,
        causal: bool = False, window: int | None = None, dropout_p: float = 0.0,
        scale: float | None = None,
    ) -> Tensor:
        """Attention over head-split tensors, recording weights if a recorder is set.

        Shape:
            q ``(B, H, L, D)``, k ``(B, G, S, D)``, v ``(B, G, S, Dv)`` -> ``(B, H, L, Dv)``.
        """
        if scale is None:
            scale = q.shape[-1] ** -0.5
        elif scale > 1.0:  # a module's own scale (SimpleSelfAttention): could it overflow?
            check_scale_overflow(q, k, scale)
        dropout_p = dropout_p if self.training else 0.0
        if self._recorder is None:
            out = attend(q, k, v, mask, causal=causal, window=window, scale=scale,
                         dropout_p=dropout_p)
            assert isinstance(out, Tensor)
            return out
        out, weights = attend(q, k, v, mask, causal=causal, window=window, scale=scale,
                              dropout_p=dropout_p, need_weights=True)
        self._recorder(weights.detach())  # (B, H, L, S)
        if self._score_recorder is not None:
            self._score_recorder(scores_before_softmax(q, k, mask, causal=causal, window=window,
                                                       scale=scale))
        return out


def scores_before_softmax(q: Tensor, k: Tensor, mask: Tensor | None, *, causal: bool,
                          window: int | None, scale: float) -> Tensor:
    """What the softmax sees: ``Q Kᵀ · scale`` plus the bias, hidden keys at ``-inf``.

    Shape:
        q ``(B, H, L, D)``, k ``(B, G, S, D)`` -> ``(B, H, L, S)``, detached.
    """
    groups = q.shape[-3] // k.shape[-3]
    k = k.repeat_interleave(groups, dim=-3) if groups > 1 else k  # (B, H, S, D)
    scores = (q @ k.transpose(-2, -1)).detach() * scale  # (B, H, L, S)
    return with_mask(scores, mask, causal=causal, window=window)


def with_mask(scores: Tensor, mask: Tensor | None, *, causal: bool,
              window: int | None) -> Tensor:
    """``scores`` ``(..., L, S)`` with a mask applied: bool False and causal/window -> -inf."""
    L, S = scores.shape[-2:]
    mask = restrict(mask, visibility(L, S, causal=causal, window=window, device=scores.device))
    if mask is None:
        return scores
    if mask.dtype == torch.bool:
        return scores.masked_fill(~mask, float("-inf"))
    return scores + mask.detach().to(scores.dtype)


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """``(B, L, H·D)`` -> ``(B, H, L, D)``."""
    B, L, width = x.shape
    return x.view(B, L, num_heads, width // num_heads).transpose(1, 2)  # (B, H, L, D)


def merge_heads(x: Tensor) -> Tensor:
    """``(B, H, L, D)`` -> ``(B, L, H·D)``."""
    B, H, L, D = x.shape
    return x.transpose(1, 2).reshape(B, L, H * D)  # (B, L, H·D)


def check_input(name: str, x: object, width: int | None, what: str = "", *,
                length: str = "L", like: nn.Module | None = None) -> Tensor:
    """Check a module input is a floating ``(B, length, width)`` tensor (any width if None).

    With ``like``, the dtype must also match that module's parameters (unless autocast
    is on, which casts for the module), and so must the device. B, L and S may be 0
    (an empty output, or rows that see nothing); the width may not.
    """
    x = check_tensor(name, x)
    if x.dim() != 3 or (width is not None and x.shape[-1] != width):
        expected = f"(B, {length}, {width}) ({what})" if width is not None else f"(B, {length}, E)"
        raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")
    if x.shape[-1] == 0:
        raise ValueError(f"{name} needs a width E >= 1, got shape {tuple(x.shape)}")
    param = None if like is None else next(like.parameters(), None)
    device = x.device
    if device.type == "meta" or (param is not None and param.device != device):
        check_device(name, x, None if param is None else param.device, "the module's parameters")
    if param is not None and not torch.is_autocast_enabled(device.type):
        if param.dtype != x.dtype:
            raise TypeError(f"{name} has dtype {x.dtype} but the module's parameters are "
                            f"{param.dtype}; cast one to the other (e.g. module.to({x.dtype}))")
    return x


def check_key_value(module: nn.Module, query: Tensor, key: Tensor | None, value: Tensor | None,
                    kdim: int, vdim: int) -> tuple[Tensor, Tensor]:
    """Resolve and check key/value: key defaults to query, value to key (if widths allow).

    Shape:
        query ``(B, L, E)`` -> key ``(B, S, kdim)``, value ``(B, S, vdim)``.
    """
    key = query if key is None else check_input("key", key, kdim, "kdim", length="S",
                                                like=module)
    if value is None:
        if vdim != kdim:
            raise ValueError(f"value must be given when vdim ({vdim}) != kdim ({kdim}); "
                             f"only key {tuple(key.shape)} was")
        value = key
    elif value is not key:  # cross-attention passes the memory twice: check it once
        value = check_input("value", value, vdim, "vdim", length="S", like=module)
    if key.shape[0] != query.shape[0] or value.shape[0] != query.shape[0]:
        raise ValueError(f"query, key and value must have the same batch size B, got "
                         f"{query.shape[0]}, {key.shape[0]}, {value.shape[0]}")
    if key.shape[1] != value.shape[1]:
        raise ValueError(f"key and value must have the same length S, got key "
                         f"{tuple(key.shape)} and value {tuple(value.shape)}")
    return key, value


def check_dropout(dropout: object) -> float:
    """Check a dropout probability in [0, 1)."""
    return check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)


def check_embed_dim(embed_dim: object) -> int:
    """Check ``embed_dim`` is an int >= 1."""
    return check_int("embed_dim", embed_dim, minimum=1)


def module_mask(mask: Tensor | None, B: int, H: int, L: int, S: int,
                like: Tensor | None = None) -> Tensor | None:
    """Check a module-level mask: bool or float, broadcastable to ``(B, H, L, S)``.

    ``like`` (the queries) adds the device check and refuses NaN/``+inf`` biases.
    """
    if mask is None:
        return None
    return check_mask(mask, (B, H, L, S), like=like)


def check_cache(cache: object) -> KVCache | None:
    """Check a module's ``cache`` argument: None or a :class:`KVCache`."""
    if cache is not None and not isinstance(cache, KVCache):
        raise TypeError(f"cache must be a KVCache (or None), got {type(cache).__name__}; "
                        "a model takes a list with one KVCache per layer (model.new_cache())")
    return cache
