"""``--save_path``: the final weights in the file format the user chose.

* ``NAME.safetensors`` — the weights, with the training and model configs in the
  file's metadata; ``attnlab evaluate/generate NAME.safetensors`` use it directly.
* ``NAME.pth`` / ``NAME.pt`` — a plain PyTorch state dict (tensors only, so
  ``torch.load(path, weights_only=True)`` reads it and no code is pickled), and
  ``NAME.json`` beside it with both configs, to rebuild the model::

      import json, torch
      from attnlab.config import ModelConfig
      from attnlab.models import build_model
      about = json.load(open("NAME.json"))
      model = build_model(ModelConfig.from_dict(about["model_config"]))
      model.load_state_dict(torch.load("NAME.pth", weights_only=True))

  attnlab itself loads only safetensors (it never unpickles), so its commands
  take the run directory or a ``.safetensors`` file instead.

The path is checked before training starts (:func:`check_save_path`): an
existing file is replaced only with ``--force``, and a directory, a read-only
place or a name inside a file is refused at once, not after the training.
"""

import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._io import atomic_write
from . import checkpoint

PICKLE_SUFFIXES = (".pth", ".pt")


def sidecar(path: str | Path) -> Path | None:
    """The ``.json`` beside a ``.pth``/``.pt`` file (None for safetensors)."""
    path = Path(path)
    return path.with_suffix(".json") if path.suffix in PICKLE_SUFFIXES else None


def check_save_path(path: str | None, *, force: bool) -> None:
    """Refuse a ``--save_path`` that could not be written (or would replace a file).

    Raises:
        ValueError: Naming the path and the reason.
    """
    if path is None:
        return
    for target in (Path(path), sidecar(path)):
        if target is None:
            continue
        if target.is_dir():
            raise ValueError(f"--save_path {path}: {target} is a directory; give a file name")
        if target.exists() and not force:
            raise ValueError(f"--save_path {path}: {target} exists; choose another name, or "
                             "replace it with --force")
    parent = Path(path).absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"--save_path {path}: {parent} is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise ValueError(f"--save_path {path}: cannot write in {parent} "
                         f"({(exc.strerror or str(exc)).lower()})") from None


def save(path: str, model: nn.Module, about: dict[str, Any]) -> list[Path]:
    """Write the weights to ``path`` as its suffix says; returns the files written."""
    if Path(path).suffix not in PICKLE_SUFFIXES:
        return [checkpoint.save_weights(path, model, about)]
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    json_path = sidecar(path)
    assert json_path is not None
    atomic_write(json_path, json.dumps(about, indent=2, sort_keys=True) + "\n")
    return [atomic_write(path, lambda handle: torch.save(state, handle)), json_path]


def refuse_pickle(path: str | Path) -> None:
    """Explain why attnlab does not load a ``.pth``/``.pt`` file (``ValueError``)."""
    about = sidecar(path)
    where = ""
    if about is not None and about.is_file():
        try:
            out = json.loads(about.read_text())["train_config"]["out"]
            where = f" (this one was trained in {out})"
        except (ValueError, KeyError, TypeError, OSError):
            where = ""
    raise ValueError(f"{path} is a PyTorch pickle file, and attnlab loads only safetensors "
                     f"(it never unpickles): give the run directory{where}, or save with "
                     "--save_path NAME.safetensors; in your own code, torch.load(path, "
                     "weights_only=True) reads it")
