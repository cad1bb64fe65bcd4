"""The training run's configuration: what the CLI parses and what each run directory records.

``attnlab train`` parses its options into a :class:`TrainConfig`; the run
directory holds it as ``config.json``, and ``--resume`` checks a checkpoint
against it.
"""

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, get_type_hints

from .. import tasks  # noqa: F401  (fills the task registry)
from .._validate import check_choice, check_divisible, check_fields, check_float, check_int
from ..registry import TASKS
from .recipes import check_fits, choices

DEVICES = ("auto", "cpu", "cuda", "mps")
#: Suffixes ``save_path`` may have: safetensors (what attnlab loads), or a PyTorch state dict.
SAVE_SUFFIXES = (".safetensors", ".pth", ".pt")
#: The largest int any count may be (beyond it a size is a typo, not a plan).
MAX_INT = 2**31 - 1
#: The largest seed torch accepts.
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run.

    The first nine fields are the seed project's options, with its defaults.

    Args:
        model: Attention mechanism (``attnlab models`` lists them).
        embed_dim: Model width.
        num_heads: Attention heads (1 for the models without heads: ``selfhead``,
            ``additive``; the default 8 becomes 1 for them).
        learning_rate: Peak AdamW learning rate.
        batch_size: Global batch size (split across processes under torchrun).
        seq_length: Task sequence length (characters per chunk for ``text``).
        epochs: Epochs of ``steps_per_epoch`` optimiser steps.
        save_path: Where to also write the final weights: ``.safetensors`` (with the
            configs in its metadata), or ``.pth``/``.pt`` (a plain state dict that
            ``torch.load(path, weights_only=True)`` reads, plus the configs in a
            ``.json`` file beside it).
        interactive: Ask for each option (CLI only).
        task: Task name.
        seed: Seed of the model, the data and dropout.
        device: ``auto`` (cuda, then mps, then cpu), ``cpu``, ``cuda`` or ``mps``.
        out: Run directory; default ``runs/<task>-<model>-<seed>`` (or ``-2``, ``-3``…
            when that one holds an earlier run).
        steps_per_epoch: Optimiser steps per epoch.
        num_layers: Layers per stack.
        eval_every: Evaluate every this many epochs.
        eval_batches: Held-out batches per evaluation.
        warmup_steps: Linear warm-up steps before the cosine decay.
        weight_decay: AdamW weight decay.
        grad_clip: Gradient-norm clip (0 = off).
        dropout: Dropout probability.
        positions: Positional scheme (default: the task's choice).
        data: A UTF-8 text file for the ``text`` task.
        compile: Run the model through ``torch.compile``.
    """

    model: str = "multihead"
    embed_dim: int = 64
    num_heads: int = 8
    learning_rate: float = 0.001
    batch_size: int = 32
    seq_length: int = 10
    epochs: int = 100
    save_path: str | None = None
    interactive: bool = False
    task: str = "reverse"
    seed: int = 0
    device: str = "auto"
    out: str | None = None
    steps_per_epoch: int = 20
    num_layers: int = 2
    eval_every: int = 10
    eval_batches: int = 4
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    dropout: float = 0.0
    positions: str | None = None
    data: str | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        _check_types(self)
        models = choices()
        if self.model not in models:
            raise ValueError(f"unknown model {self.model!r}; choose from: {', '.join(models)}")
        check_fits(self.model, TASKS.get(self.task).kind, self.task)
        if not models[self.model].heads:
            if self.num_heads == DEFAULT_HEADS:
                object.__setattr__(self, "num_heads", 1)  # what is really built
            elif self.num_heads != 1:
                raise ValueError(f"num_heads must be 1 for model {self.model!r} (it has no "
                                 f"heads to split into), got {self.num_heads}")
        for name in ("embed_dim", "num_heads", "batch_size", "seq_length", "epochs",
                     "steps_per_epoch", "num_layers", "eval_every", "eval_batches"):
            _check_count(name, getattr(self, name), minimum=1)
        _check_count("warmup_steps", self.warmup_steps, minimum=0)
        check_int("seed", self.seed, minimum=0)
        if self.seed > MAX_SEED:
            raise ValueError(f"seed must be <= 2**63 - 1, got {self.seed}")
        _check_count("total steps (epochs x steps_per_epoch)", self.total_steps, minimum=1)
        check_float("learning_rate", self.learning_rate, minimum=0.0, min_inclusive=False)
        check_float("weight_decay", self.weight_decay, minimum=0.0)
        check_float("grad_clip", self.grad_clip, minimum=0.0)
        check_float("dropout", self.dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
        for name in ("learning_rate", "weight_decay", "grad_clip"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)}")
        check_choice("device", self.device, DEVICES)
        check_divisible("embed_dim", self.embed_dim, "num_heads", self.num_heads)
        for name in ("out", "save_path", "data"):
            if getattr(self, name) == "":
                raise ValueError(f"{name} must be a path, got an empty string")
        if self.save_path is not None and not self.save_path.endswith(SAVE_SUFFIXES):
            raise ValueError(f"save_path must end in {', '.join(SAVE_SUFFIXES)}, "
                             f"got {self.save_path!r}")

    @property
    def total_steps(self) -> int:
        """Optimiser steps in the whole run."""
        return self.epochs * self.steps_per_epoch

    def run_dir(self) -> str:
        """The run directory asked for: ``out`` or ``runs/<task>-<model>-<seed>``.

        (A new run without ``out`` may go to a numbered sibling of the default, see
        :mod:`attnlab.training.rundir`; its ``config.json`` then records that ``out``.)
        """
        return self.out or f"runs/{self.task}-{self.model}-{self.seed}"

    def to_json(self) -> str:
        """JSON text (what ``config.json`` holds)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Build from a dict (a saved ``config.json``): every field, nothing else, right types.

        Raises:
            ValueError: If ``data`` is not a dict, lacks fields, or has unknown ones.
            TypeError: If a field has the wrong type (e.g. ``"compile": "yes"``).
        """
        if not isinstance(data, dict):
            raise ValueError(f"a TrainConfig must be a JSON object of its fields, got "
                             f"{type(data).__name__}")
        check_fields(cls, data)
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise ValueError(f"TrainConfig fields missing: {', '.join(missing)}")
        return cls(**data)

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def same_model(self, other: "TrainConfig") -> list[str]:
        """Fields that differ in ways a checkpoint cannot survive (for ``--resume``)."""
        keys = ("model", "embed_dim", "num_heads", "num_layers", "task", "seq_length",
                "positions", "data", "seed", "batch_size", "steps_per_epoch", "learning_rate",
                "warmup_steps", "weight_decay")
        return [k for k in keys if getattr(self, k) != getattr(other, k)]


DEFAULT_HEADS = next(f.default for f in fields(TrainConfig) if f.name == "num_heads")


def _check_count(name: str, value: object, *, minimum: int) -> None:
    check_int(name, value, minimum=minimum)
    if value > MAX_INT:  # type: ignore[operator]
        raise ValueError(f"{name} must be <= {MAX_INT}, got {value}")


def _check_types(config: TrainConfig) -> None:
    """Every field has its annotated type (a bool is not an int; an int is a float)."""
    hints = get_type_hints(TrainConfig)
    for field in fields(config):
        value, kind = getattr(config, field.name), hints[field.name]
        allowed = getattr(kind, "__args__", (kind,))
        if float in allowed:
            allowed = (*allowed, int)
        ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
        if not ok:
            names = " or ".join("None" if a is type(None) else a.__name__ for a in allowed
                                if not (a is int and float in allowed))
            raise TypeError(f"{field.name} must be {names}, got {type(value).__name__} "
                            f"{value!r}")
