"""What every attention module shares: the attend step and the capture hook point.

Every attention module subclasses :class:`AttentionModule` and computes its
attention through :meth:`AttentionModule.attend`. Outside
``capture_attention`` that call takes the fused path; inside, the capture
context installs a recorder on the module, the math path runs, and the
per-head weights ``(B, H, L, S)`` are handed to the recorder, detached.

Shape letters: B batch, H query heads, G key/value heads, L queries, S keys,
E model width, D head width.
"""

from collections.abc import Callable

from torch import Tensor, nn

from .._validate import check_float, check_int, check_tensor
from ..functional import attend
from ..functional.masks import check_mask

Recorder = Callable[[Tensor], None]


class AttentionModule(nn.Module):
    """Base class of attention modules; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._recorder: Recorder | None = None  # set only inside capture_attention

    def attend(
        self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *,
        causal: bool = False, window: int | None = None, dropout_p: float = 0.0,
        scale: float | None = None,
    ) -> Tensor:
        """Attention over head-split tensors, recording weights if a recorder is set.

        Shape:
            q ``(B, H, L, D)``, k ``(B, G, S, D)``, v ``(B, G, S, Dv)`` -> ``(B, H, L, Dv)``.
        """
        scale = q.shape[-1] ** -0.5 if scale is None else scale
        if mask is not None and mask.is_floating_point() and mask.dtype != q.dtype:
            mask = mask.to(q.dtype)
        dropout_p = dropout_p if self.training else 0.0
        if self._recorder is None:
            out = attend(q, k, v, mask, causal=causal, window=window, scale=scale,
                         dropout_p=dropout_p)
            assert isinstance(out, Tensor)
            return out
        out, weights = attend(q, k, v, mask, causal=causal, window=window, scale=scale,
                              dropout_p=dropout_p, need_weights=True)
        self._recorder(weights.detach())  # (B, H, L, S)
        return out


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """``(B, L, H·D)`` -> ``(B, H, L, D)``."""
    B, L, _ = x.shape
    return x.view(B, L, num_heads, -1).transpose(1, 2)  # (B, H, L, D)


def merge_heads(x: Tensor) -> Tensor:
    """``(B, H, L, D)`` -> ``(B, L, H·D)``."""
    B, H, L, D = x.shape
    return x.transpose(1, 2).reshape(B, L, H * D)  # (B, L, H·D)


def check_input(name: str, x: object, width: int | None, what: str = "") -> Tensor:
    """Check a module input is a floating ``(B, L, width)`` tensor (any width if None)."""
    x = check_tensor(name, x)
    if x.dim() != 3 or (width is not None and x.shape[-1] != width):
        expected = f"(B, L, {width}) ({what})" if width is not None else "(B, L, E)"
        raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")
    return x


def check_dropout(dropout: object) -> float:
    """Check a dropout probability in [0, 1)."""
    return check_float("dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)


def check_embed_dim(embed_dim: object) -> int:
    """Check ``embed_dim`` is an int >= 1."""
    return check_int("embed_dim", embed_dim, minimum=1)


def module_mask(mask: Tensor | None, B: int, H: int, L: int, S: int) -> Tensor | None:
    """Check a module-level mask: bool or float, broadcastable to ``(B, H, L, S)``."""
    if mask is None:
        return None
    return check_mask(mask, (B, H, L, S))
