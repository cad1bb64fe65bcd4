"""What the visualisers take, normalised and checked: attention maps, token labels, indices.

Every visualiser takes the dict that ``capture_attention`` returns (qualified module
name -> ``(B, H, L, S)`` weights) or a single tensor, plus token labels. This module
turns both into one canonical form and checks them, so ``heatmap``, ``page`` and
``terminal`` report the same errors with the same words.

Shape letters: B batch, H heads, L queries, S keys.
"""

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from attnlab._validate import check_int, check_tensor

#: Name given to a bare tensor passed instead of a dict of maps.
SINGLE_NAME = "attention"

#: (query labels, key labels) of one module.
Labels = tuple[list[str], list[str]]
TokensArg = Sequence[str] | Mapping[str, Sequence[str] | Sequence[Sequence[str]]]


def as_maps(maps: Mapping[str, Tensor] | Tensor) -> dict[str, Tensor]:
    """Return ``maps`` as an ordered dict of ``(B, H, L, S)`` float tensors on the CPU.

    A bare tensor of shape ``(L, S)``, ``(H, L, S)`` or ``(B, H, L, S)`` becomes
    ``{"attention": tensor}`` with the missing leading dims added.
    """
    if isinstance(maps, Tensor):
        check_tensor("maps", maps, min_ndim=2)
        if maps.dim() > 4:
            raise ValueError(
                f"maps must have shape (L, S), (H, L, S) or (B, H, L, S), "
                f"got shape {tuple(maps.shape)}"
            )
        maps = {SINGLE_NAME: maps.reshape((1,) * (4 - maps.dim()) + tuple(maps.shape))}
    if not isinstance(maps, Mapping):
        raise TypeError(f"maps must be a dict of tensors or a tensor, got {type(maps).__name__}")
    if not maps:
        raise ValueError("maps is empty: nothing was captured (did the model run inside "
                         "capture_attention?)")
    out = {}
    for name, value in maps.items():
        if not isinstance(name, str):
            raise TypeError(f"maps keys must be module names (str), got {name!r}")
        check_tensor(f"maps[{name!r}]", value)
        if value.dim() != 4 or 0 in value.shape:
            raise ValueError(
                f"maps[{name!r}] must have shape (B, H, L, S) with no empty dim, "
                f"got shape {tuple(value.shape)}"
            )
        value = value.detach().to("cpu", torch.float32)
        if not torch.isfinite(value).all():
            raise ValueError(f"maps[{name!r}] contains NaN or infinite weights")
        out[name] = value
    return out


def display_name(name: str) -> str:
    """A module name as a reader wants it: no repeated parts, no adapter suffix.

    ``named_modules()`` names follow attribute nesting, so a sentence encoder's
    first layer is ``encoder.encoder.layers.0.self_attn`` and weightless attention
    sits in an adapter (``…self_attn.inner``). Labels keep the path but drop the
    repetition; the maps keep the real names.

    Example:
        >>> display_name("encoder.encoder.layers.0.self_attn")
        'encoder.layers.0.self_attn'
        >>> display_name("decoder.layers.1.self_attn.inner"), display_name("")
        ('decoder.layers.1.self_attn', 'attention')
    """
    parts: list[str] = []
    for part in name.split("."):
        if part and (not parts or parts[-1] != part):
            parts.append(part)
    if parts and parts[-1] == "inner":
        parts.pop()
    return ".".join(parts) or SINGLE_NAME


def select_layer(maps: Mapping[str, Tensor], layer: str | int) -> str:
    """Return the module name that ``layer`` (a name or an index into ``maps``) picks."""
    names = list(maps)
    if isinstance(layer, str):
        if layer in maps:
            return layer
        shown = [name for name in names if display_name(name) == layer]  # the label views show
        if len(shown) == 1:
            return shown[0]
        raise ValueError(f"layer {layer!r} is not in maps; valid layers: {names}")
    check_int("layer", layer)
    if not -len(names) <= layer < len(names):
        raise ValueError(
            f"layer index {layer} is out of range for {len(names)} modules "
            f"(valid: 0..{len(names) - 1} or a name in {names})"
        )
    return names[layer]


def check_head(head: int, num_heads: int, name: str) -> int:
    """Check that ``head`` indexes one of the ``num_heads`` heads of module ``name``."""
    return _check_index("head", head, num_heads, f"{name!r}, which has {num_heads} heads")


def check_batch_index(batch_index: int, batch: int) -> int:
    """Check that ``batch_index`` indexes one of ``batch`` examples."""
    return _check_index("batch_index", batch_index, batch, f"batch size {batch}")


def _check_index(arg: str, value: int, count: int, what: str) -> int:
    """``value`` (argument ``arg``) must be an int in ``0..count - 1``; ``what`` names the range."""
    check_int(arg, value)
    if not 0 <= value < count:
        raise ValueError(f"{arg} {value} is out of range for {what} (valid: 0..{count - 1})")
    return value


def _label_list(what: str, labels: object) -> list[str]:
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(f"{what} must be a list of str, got {type(labels).__name__}")
    bad = [t for t in labels if not isinstance(t, str)]
    if bad:
        raise TypeError(f"{what} must contain only str, got {bad[0]!r}")
    return list(labels)


def _is_label_list(value: object) -> bool:
    return isinstance(value, Sequence) and all(isinstance(t, str) for t in value)


def resolve_labels(
    maps: Mapping[str, Tensor],
    names: Sequence[str],
    tokens: TokensArg,
    key_tokens: Sequence[str] | None = None,
) -> dict[str, Labels]:
    """Return ``{name: (query_labels, key_labels)}`` for each of ``names``, checked.

    ``tokens`` is either one list of query labels shared by every module (key labels
    are ``key_tokens``, or ``tokens`` again), or a dict ``{module: labels}`` where
    ``labels`` is one list (self-attention) or a pair ``(query_labels, key_labels)``.
    """
    per_module: dict[str, tuple[object, object]] = {}
    if isinstance(tokens, Mapping):
        if key_tokens is not None:
            raise ValueError("key_tokens must be None when tokens is a dict; put "
                             "(query_tokens, key_tokens) pairs in the dict instead")
        missing = [n for n in names if n not in tokens]
        if missing:
            raise ValueError(f"tokens has no labels for modules {missing}; "
                             f"it has {list(tokens)}")
        for n in names:
            value = tokens[n]
            if _is_label_list(value):
                per_module[n] = (value, value)
            elif isinstance(value, Sequence) and len(value) == 2:
                per_module[n] = (value[0], value[1])
            else:
                raise TypeError(f"tokens[{n!r}] must be a list of str or a pair "
                                f"(query_tokens, key_tokens)")
    else:
        for n in names:
            per_module[n] = (tokens, tokens if key_tokens is None else key_tokens)
    from_dict = isinstance(tokens, Mapping)
    out = {}
    for n in names:
        if from_dict:
            q_name, k_name = f"tokens[{n!r}] queries", f"tokens[{n!r}] keys"
        else:
            q_name = "tokens"
            k_name = "key_tokens" if key_tokens is not None else "tokens (used as key_tokens)"
        queries = _label_list(q_name, per_module[n][0])
        keys = _label_list(k_name, per_module[n][1])
        _, _, length, source = maps[n].shape
        if len(queries) != length:
            raise ValueError(f"{q_name} has {len(queries)} labels but {n!r} has "
                             f"L={length} queries")
        if len(keys) != source:
            hint = ("; for cross-attention pass key_tokens (length S) or tokens as a "
                    "dict {module: (query_tokens, key_tokens)}" if not from_dict else "")
            raise ValueError(f"{k_name} has {len(keys)} labels but {n!r} has "
                             f"S={source} keys{hint}")
        out[n] = (queries, keys)
    return out
