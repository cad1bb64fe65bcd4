"""Record attention weights while a model runs: ``with capture_attention(model) as maps``.

Inside the context every chosen attention module computes its attention on the
math path and hands its per-head weights ``(B, H, L, S)`` (detached) to the
map; every other module, and every module outside the context, keeps the fused
path and records nothing. Weights are an output you ask for, never state a
module keeps: the recorders are removed when the context exits, even on error.
"""

import fnmatch
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from torch import Tensor, nn

from ..attention.base import AttentionModule


class AttentionMaps(dict[str, Tensor]):
    """``name -> (B, H, L, S)`` weights of each module's latest call.

    ``calls[name]`` keeps every call in order (e.g. one per generated token).
    With ``capture_attention(..., scores=True)``, ``scores[name]`` holds the
    latest call's pre-softmax scores ``(B, H, L, S)``: ``Q Kᵀ · scale`` plus
    any bias, with hidden keys at ``-inf`` (softmax of a row gives its weights).
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, list[Tensor]] = {}
        self.scores: dict[str, Tensor] = {}

    def _record(self, name: str, weights: Tensor) -> None:
        self[name] = weights
        self.calls.setdefault(name, []).append(weights)


def attention_modules(model: nn.Module) -> dict[str, AttentionModule]:
    """``{qualified name: module}`` of the attention modules, in ``named_modules()`` order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, AttentionModule)}


@contextmanager
def capture_attention(
    model: nn.Module, only: Sequence[str] | None = None, *, scores: bool = False
) -> Iterator[AttentionMaps]:
    """Capture the attention weights of ``model``'s attention modules.

    Args:
        model: Any module containing attnlab attention modules.
        only: Glob patterns over qualified module names (``model.named_modules()``);
            only matching modules record (and leave the fused path).
        scores: Also record the pre-softmax scores in ``maps.scores`` (opt-in:
            one more ``(B, H, L, S)`` tensor per module).

    Yields:
        An :class:`AttentionMaps` dict, filled as the model runs.

    Raises:
        ValueError: If ``model`` has no attention module, or a pattern in
            ``only`` matches none (the message lists the names).

    Example:
        >>> import torch, attnlab as al
        >>> model = torch.nn.Sequential(al.MultiHeadAttention(8, 2))
        >>> with al.capture_attention(model) as maps:
        ...     _ = model(torch.randn(1, 3, 8))
        >>> list(maps), maps["0"].shape
        (['0'], torch.Size([1, 2, 3, 3]))
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    modules = attention_modules(model)
    if not modules:
        raise ValueError(f"model ({type(model).__name__}) has no attnlab attention module")
    chosen = _select(modules, only)
    maps = AttentionMaps()
    installed: list[AttentionModule] = []
    try:
        for name in chosen:
            module = modules[name]
            if module._recorder is not None:
                raise ValueError(f"module {name!r} is already being captured")
            module._recorder = lambda w, name=name: maps._record(name, w)
            if scores:
                module._score_recorder = lambda s, name=name: maps.scores.__setitem__(name, s)
            installed.append(module)
        yield maps
    finally:
        for module in installed:
            module._recorder = None
            module._score_recorder = None


def _select(modules: dict[str, AttentionModule], only: Sequence[str] | None) -> list[str]:
    if only is None:
        return list(modules)
    if isinstance(only, str):
        raise TypeError(f"only must be a list of glob patterns, got the string {only!r}")
    chosen: list[str] = []
    for pattern in only:
        hits = [name for name in modules if fnmatch.fnmatchcase(name, pattern)]
        if not hits:
            raise ValueError(
                f"only pattern {pattern!r} matches no attention module; names: "
                f"{', '.join(modules)}"
            )
        chosen += [h for h in hits if h not in chosen]
    return chosen
