"""The training run's configuration: what the CLI parses and what each run directory records.

``attnlab train`` parses its options into a :class:`TrainConfig`; the run
directory holds it as ``config.json``, and ``--resume`` checks a checkpoint
against it.
"""

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from .. import tasks  # noqa: F401  (fills the task registry)
from .._validate import check_choice, check_divisible, check_fields, check_float, check_int
from ..registry import TASKS
from .mechanisms import MODELS, check_fits

DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run.

    The first nine fields are the seed project's options, with its defaults.

    Args:
        model: Attention mechanism (``attnlab models`` lists them).
        embed_dim: Model width.
        num_heads: Attention heads.
        learning_rate: Peak AdamW learning rate.
        batch_size: Global batch size (split across processes under torchrun).
        seq_length: Task sequence length (characters per chunk for ``text``).
        epochs: Epochs of ``steps_per_epoch`` optimiser steps.
        save_path: Where to also write the final weights (``.safetensors``).
        interactive: Ask for each option (CLI only).
        task: Task name.
        seed: Seed of the model, the data and dropout.
        device: ``auto`` (cuda, then mps, then cpu), ``cpu``, ``cuda`` or ``mps``.
        out: Run directory; default ``runs/<task>-<model>-<seed>``.
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
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose from: {', '.join(MODELS)}")
        check_fits(self.model, TASKS.get(self.task).kind, self.task)
        for name in ("embed_dim", "num_heads", "batch_size", "seq_length", "epochs",
                     "steps_per_epoch", "num_layers", "eval_every", "eval_batches"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("seed", self.seed, minimum=0)
        check_int("warmup_steps", self.warmup_steps, minimum=0)
        check_float("learning_rate", self.learning_rate, minimum=0.0, min_inclusive=False)
        check_float("weight_decay", self.weight_decay, minimum=0.0)
        check_float("grad_clip", self.grad_clip, minimum=0.0)
        check_float("dropout", self.dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
        check_choice("device", self.device, DEVICES)
        check_divisible("embed_dim", self.embed_dim, "num_heads", self.num_heads)
        if self.save_path is not None and not str(self.save_path).endswith(".safetensors"):
            raise ValueError(f"save_path must end in .safetensors, got {self.save_path!r}")

    @property
    def total_steps(self) -> int:
        """Optimiser steps in the whole run."""
        return self.epochs * self.steps_per_epoch

    def run_dir(self) -> str:
        """The run directory: ``out`` or ``runs/<task>-<model>-<seed>``."""
        return self.out or f"runs/{self.task}-{self.model}-{self.seed}"

    def to_json(self) -> str:
        """JSON text (what ``config.json`` holds)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Build from a dict; unknown keys are an error."""
        check_fields(cls, data)
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
