"""Checkpoints: safetensors only (never pickle), written to a temporary file and renamed.

One file, ``checkpoint.safetensors``, holds everything a resume needs — model
weights (``model.*``), AdamW moments (``optim.*``), RNG states (``rng.*``) —
and its metadata holds the step, the config and the optimiser's settings as
JSON. Because the whole file is renamed into place in one step, a crash while
writing leaves the previous checkpoint intact; a damaged file is reported as
such, never half-loaded.
"""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn


def atomic_save(path: str | Path, tensors: dict[str, Tensor], metadata: dict[str, Any]) -> Path:
    """Write ``tensors`` (+ JSON ``metadata``) to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        meta = {key: json.dumps(value) for key, value in metadata.items()}
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, meta)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


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
        metadata = {key: json.loads(value) for key, value in raw.items()}
    except (SafetensorError, json.JSONDecodeError, OSError) as error:
        raise ValueError(f"checkpoint {path} is damaged or not a safetensors file: {error}") \
            from None
    return tensors, metadata


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
    """Load weights strictly: every key present, no extra keys, same shapes.

    Raises:
        ValueError: Naming the missing/unexpected keys or the mismatched shapes.
    """
    state = model.state_dict()
    full = dict(tensors)
    for alias, original in aliases.items():
        if original in full:
            full[alias] = full[original]
    missing = sorted(set(state) - set(full))
    unexpected = sorted(set(full) - set(state))
    wrong = [f"{k}: checkpoint {tuple(full[k].shape)} vs model {tuple(state[k].shape)}"
             for k in state if k in full and full[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:5])}")
        if wrong:
            parts.append("shape " + "; ".join(wrong[:3]))
        raise ValueError(f"{source} does not fit this model ({'; '.join(parts)}); "
                         "was it written for another model or config?")
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
    load_model_tensors(model, tensors, metadata.get("aliases", {}), str(path))
    return metadata
