"""Checkpoints: safetensors only (never pickle), written to a temporary file and renamed.

One file, ``checkpoint.safetensors``, holds everything a resume needs — model
weights (``model.*``), AdamW moments (``optim.*``), RNG states (``rng.*``) —
and its metadata holds the step, the config and the optimiser's settings as
JSON. Because the whole file is renamed into place in one step, a crash while
writing leaves the previous checkpoint intact; a damaged file is reported as
such, never half-loaded.
"""

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import Tensor, nn

from .._io import atomic_write, parse_json


def atomic_save(path: str | Path, tensors: dict[str, Tensor], metadata: dict[str, Any]) -> Path:
    """Write ``tensors`` (+ JSON ``metadata``) to ``path`` atomically; returns the path.

    Raises:
        OSError: If the file cannot be written (full disk, no permission); a previous
            file at ``path`` is left intact.
    """
    meta = {key: json.dumps(value) for key, value in metadata.items()}
    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, meta)
    return atomic_write(path, data)


def load(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a file written by :func:`atomic_save`.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is damaged, truncated or not a safetensors file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with safe_open(path, framework="pt") as handle:  # one open: tensors and metadata
            raw = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        metadata = {key: parse_json(value, f"{path} metadata {key!r}")
                    for key, value in raw.items()}
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"checkpoint {path} is damaged or not a safetensors file: {error}") \
            from None
    return tensors, metadata


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a safetensors file, without reading its tensors.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is damaged or not a safetensors file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file {path}")
    try:
        with safe_open(path, framework="pt") as handle:
            raw = handle.metadata() or {}
        return {key: parse_json(value, f"{path} metadata {key!r}") for key, value in raw.items()}
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"{path} is damaged or not a safetensors file: {error}") from None


def meta_field(meta: dict[str, Any], key: str, kind: type | tuple[type, ...],
               source: str) -> Any:
    """``meta[key]``, checked to be of ``kind`` (a bool is never an int here).

    Raises:
        ValueError: Naming ``source`` and the key if it is missing or of another type.
    """
    if key not in meta:
        raise ValueError(f"{source} is damaged: its metadata has no {key!r}")
    value = meta[key]
    if (isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))) \
            or not isinstance(value, kind):
        raise ValueError(f"{source} is damaged: metadata {key!r} must be "
                         f"{getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def check_finite(name: str, tensor: Tensor, source: str) -> None:
    """Refuse a floating tensor holding NaN or infinity (``ValueError`` naming it)."""
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{source}: tensor {name} holds NaN or infinite values; "
                         "it was damaged or written by a run that diverged")


def model_tensors(model: nn.Module) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The model's state dict without tied duplicates, and the aliases that were dropped."""
    tensors: dict[str, Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[int, tuple[int, ...]], str] = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tuple(tensor.shape))
        if key in seen and tensor.numel() > 0:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = tensor
    return tensors, aliases


def load_model_tensors(model: nn.Module, tensors: dict[str, Tensor],
                       aliases: dict[str, str], source: str) -> None:
    """Load weights strictly: every key present, no extra keys, same shapes and dtypes, finite.

    A tampered or damaged file never loads half-way or silently converted (a bool or
    float16 tensor where the model holds float32 is refused, not cast).

    Raises:
        ValueError: Naming the missing/unexpected keys, the mismatched shapes or
            dtypes, or the tensor holding NaN/infinity.
    """
    if not isinstance(aliases, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()):
        raise ValueError(f"{source} is damaged: its 'aliases' metadata must map names to names")
    state = model.state_dict()
    full = dict(tensors)
    for alias, original in aliases.items():
        if original in full:
            full[alias] = full[original]
    missing = sorted(set(state) - set(full))
    unexpected = sorted(set(full) - set(state))
    wrong = [f"{k}: checkpoint {tuple(full[k].shape)} vs model {tuple(state[k].shape)}"
             for k in state if k in full and full[k].shape != state[k].shape]
    wrong += [f"{k}: checkpoint dtype {full[k].dtype} vs model {state[k].dtype}"
              for k in state if k in full and full[k].dtype != state[k].dtype]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:5])}")
        if wrong:
            parts.append("; ".join(wrong[:3]))
        raise ValueError(f"{source} does not fit this model ({'; '.join(parts)}); "
                         "was it written for another model or config?")
    for name in state:
        check_finite(name, full[name], source)
    with torch.no_grad():
        for name, tensor in state.items():
            tensor.copy_(full[name])


def save_weights(path: str | Path, model: nn.Module, metadata: dict[str, Any]) -> Path:
    """Write just the model's weights (for sharing, ``--save_path``, ``evaluate``)."""
    tensors, aliases = model_tensors(model)
    return atomic_save(path, tensors, {**metadata, "aliases": aliases})


def load_weights(path: str | Path, model: nn.Module) -> dict[str, Any]:
    """Load weights written by :func:`save_weights` into ``model``; returns the metadata."""
    tensors, metadata = load(path)
    load_model_tensors(model, tensors, meta_field(metadata, "aliases", dict, str(path)),
                       str(path))
    return metadata
