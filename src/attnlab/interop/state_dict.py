"""Declarative weight copying: a key-mapping table, explicit transposes, strict checks.

Every foreign architecture (GPT-2, BERT, Llama, ``nn.TransformerEncoderLayer``)
is loaded the same way: a table of ``(attnlab name, foreign name)`` pairs, in
which ``{i}`` stands for a layer index, is expanded against the target
model's parameter names; every tensor is shape-checked before anything is
copied; and the copy fails, naming the keys, if a target parameter would stay
unset or a source tensor would go unused (unless listed as ignorable, such as
GPT-2's causal-mask buffers ``attn.bias``).

Fused foreign weights are split explicitly with :func:`split_fused` (GPT-2's
``c_attn`` and torch's ``in_proj_weight`` pack q/k/v), and weights stored
transposed (GPT-2's ``Conv1D``: ``(in, out)`` instead of ``nn.Linear``'s
``(out, in)``) are listed in ``transpose``. Nothing else is implicit
(torchtune's ``convert_weights.py``, nanoGPT's ``from_pretrained``).

Example:
    >>> import torch
    >>> from torch import nn
    >>> lin = nn.Linear(3, 2)
    >>> foreign = {"w": torch.ones(3, 2), "b": torch.zeros(2), "step": torch.tensor(7)}
    >>> report = copy_weights(lin, foreign, [("weight", "w"), ("bias", "b")],
    ...                       transpose={"w"}, ignore_source=["step"])
    >>> report.ignored
    ('step',)
    >>> lin.weight.shape
    torch.Size([2, 3])
"""

import fnmatch
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

LAYER = "{i}"  # the layer-index placeholder of table templates
Table = Sequence[tuple[str, str]]
Mapper = Callable[[str], str | None]


@dataclass(frozen=True)
class CopyReport:
    """What :func:`copy_weights` did.

    Attributes:
        copied: ``(target key, source key)`` pairs, in table order.
        transposed: Source keys that were transposed on the way.
        ignored: Source keys left unused because they matched ``ignore_source``.
    """

    copied: tuple[tuple[str, str], ...]
    transposed: tuple[str, ...]
    ignored: tuple[str, ...]


def copy_weights(
    target: nn.Module, source: Mapping[str, Tensor], table: Table | Mapper, *,
    transpose: Collection[str] = (), ignore_source: Collection[str] = (),
) -> CopyReport:
    """Copy foreign tensors into ``target``'s parameters and buffers by a key table.

    Args:
        target: The module receiving the weights (its ``state_dict`` names).
        source: Foreign ``name -> tensor`` (e.g. a Hugging Face ``state_dict()``).
        table: ``(target name, source name)`` pairs; ``{i}`` in both stands for
            every layer index the target has. Or a function ``target name ->
            source name`` (None leaves it unmapped, which is an error).
        transpose: Source names (as written in the table) whose 2-D tensors are
            stored ``(in, out)`` and must be transposed.
        ignore_source: ``fnmatch`` patterns of source keys that may stay unused.

    Returns:
        A :class:`CopyReport`.

    Raises:
        ValueError: Before copying anything, if a table entry matches nothing in
            ``target``, names a missing source key, two entries write the same
            tensor, a shape differs (both keys and shapes named), a
            ``transpose`` entry is not a table source, a target tensor stays
            unset, or a source key stays unused and is not ignored.
    """
    targets = target.state_dict(keep_vars=True)
    pairs = _expand(table, list(targets))
    _check_transpose(table, transpose)
    problems: list[str] = []
    written: dict[int, str] = {}  # id(target tensor) -> source key written into it
    plan: list[tuple[Tensor, Tensor]] = []
    for target_key, source_key, template in pairs:
        flip = template in transpose or source_key in transpose
        value = _checked(targets, source, target_key, source_key, flip, problems)
        if value is None:
            continue
        dest = targets[target_key]
        if id(dest) in written:
            problems.append(f"{target_key!r} <- {source_key!r} writes a tensor already set "
                            f"from {written[id(dest)]!r} (tied weights?)")
            continue
        written[id(dest)] = source_key
        plan.append((dest, value))
    unset = [k for k, v in targets.items() if id(v) not in written]
    used = {source_key for _, source_key, _ in pairs}
    unused = [k for k in source if k not in used]
    ignored = [k for k in unused if any(fnmatch.fnmatchcase(k, p) for p in ignore_source)]
    unused = [k for k in unused if k not in ignored]
    if unset:
        problems.append(f"{len(unset)} target tensor(s) left unset: {_listing(unset)}")
    if unused:
        problems.append(f"{len(unused)} source tensor(s) unused: {_listing(unused)}")
    if problems:
        raise ValueError("copy_weights: " + "; ".join(problems))
    with torch.no_grad():
        for dest, value in plan:
            dest.copy_(value)
    return CopyReport(
        copied=tuple((t, s) for t, s, _ in pairs),
        transposed=tuple(s for _, s, tmpl in pairs if tmpl in transpose or s in transpose),
        ignored=tuple(ignored),
    )


def split_fused(source: Mapping[str, Tensor], key: str, names: Sequence[str], *,
                dim: int = 0) -> dict[str, Tensor]:
    """Split a fused tensor into equal named parts: ``key`` -> ``key:name`` for each name.

    Args:
        source: Foreign ``name -> tensor``; not modified.
        key: Name of the fused tensor; ``{i}`` matches every layer index present.
        names: Part names, in packing order (e.g. ``("q", "k", "v")``).
        dim: Dimension along which the parts are concatenated.

    Returns:
        A new dict with each matched fused tensor replaced by its parts.

    Raises:
        ValueError: If ``key`` matches nothing or a size is not divisible by the
            number of parts.

    Example:
        >>> import torch
        >>> parts = split_fused({"h.0.qkv": torch.arange(6.0)}, "h.{i}.qkv", ("q", "k", "v"))
        >>> sorted(parts), parts["h.0.qkv:k"].tolist()
        (['h.0.qkv:k', 'h.0.qkv:q', 'h.0.qkv:v'], [2.0, 3.0])
    """
    pattern = _template_regex(key)
    matched = [k for k in source if pattern.fullmatch(k)]
    if not matched:
        raise ValueError(f"split_fused: no source key matches {key!r}")
    out = dict(source)
    for fused in matched:
        tensor = out.pop(fused)
        size = tensor.shape[dim]
        if size % len(names):
            raise ValueError(f"split_fused: {fused!r} has size {size} along dim {dim}, "
                             f"not divisible into {len(names)} parts {tuple(names)}")
        for name, part in zip(names, tensor.split(size // len(names), dim=dim), strict=True):
            out[f"{fused}:{name}"] = part
    return out


def _checked(targets: Mapping[str, Tensor], source: Mapping[str, Tensor], target_key: str,
             source_key: str, flip: bool, problems: list[str]) -> Tensor | None:
    """The source tensor for ``target_key``, transposed if asked; None (and a problem) if unfit."""
    if target_key not in targets:
        problems.append(f"table names target {target_key!r}, which the model lacks")
        return None
    if source_key not in source:
        problems.append(f"target {target_key!r} needs source {source_key!r}, which is missing")
        return None
    value = source[source_key]
    if flip:
        if value.dim() != 2:
            problems.append(f"cannot transpose {source_key!r}: shape {tuple(value.shape)}")
            return None
        value = value.t()
    shape = tuple(targets[target_key].shape)
    if tuple(value.shape) != shape:
        how = " (after transposing)" if flip else ""
        problems.append(f"shape mismatch: target {target_key!r} {shape} <- source "
                        f"{source_key!r} {tuple(value.shape)}{how}")
        return None
    return value


def _expand(table: Table | Mapper, target_keys: list[str]) -> list[tuple[str, str, str]]:
    """Concrete ``(target key, source key, source template)`` triples."""
    if callable(table):
        pairs = []
        for key in target_keys:
            source_key = table(key)
            if source_key is not None:
                pairs.append((key, source_key, source_key))
        return pairs
    out = []
    for target_tmpl, source_tmpl in table:
        if LAYER not in target_tmpl:
            out.append((target_tmpl, source_tmpl, source_tmpl))
            continue
        pattern = _template_regex(target_tmpl)
        found = [(k, m.group(1)) for k in target_keys if (m := pattern.fullmatch(k))]
        if not found:
            raise ValueError(f"copy_weights: table entry {target_tmpl!r} matches no target key")
        out.extend((k, source_tmpl.replace(LAYER, i), source_tmpl) for k, i in found)
    return out


def _check_transpose(table: Table | Mapper, transpose: Collection[str]) -> None:
    if callable(table) or not transpose:
        return
    sources = {s for _, s in table}
    stray = sorted(set(transpose) - sources)
    if stray:
        raise ValueError(f"copy_weights: transpose names {stray}, which no table entry reads")


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile(re.escape(template).replace(re.escape(LAYER), r"(\d+)"))


def _listing(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(sorted(keys)[:limit])
    return shown + (f", ... and {len(keys) - limit} more" if len(keys) > limit else "")
