"""Will the run fit in memory? An estimate checked before anything is allocated.

A typo such as ``--batch_size 10000000`` or ``--num_layers 99999`` should end in
one clear line at once, not in minutes of swapping or an allocator's stack trace.
:func:`check_memory` estimates the bytes a training run needs from the config
alone (no model is built) and refuses a run that cannot fit in the memory
available now. The estimate is deliberately rough — about the float32 weights,
their gradients and two AdamW moments (16 bytes per parameter), plus the
activations a training step keeps for the backward pass — and errs low, so it
never refuses a run that would fit.
"""

import os
from dataclasses import dataclass

import torch

from ..tasks.base import Task
from .train_config import TrainConfig
from .trainer import model_config_for


@dataclass(frozen=True)
class Estimate:
    """Bytes a training run needs, in two parts."""

    parameters: int
    weight_bytes: int
    activation_bytes: int

    @property
    def total(self) -> int:
        """All bytes."""
        return self.weight_bytes + self.activation_bytes


def estimate(config: TrainConfig, task: Task) -> Estimate:
    """The rough memory a training step of ``config`` on ``task`` needs (see module docs)."""
    mcfg = model_config_for(config, task)
    E, F, V, T = mcfg.embed_dim, mcfg.resolved_ffn_dim, mcfg.vocab_size, mcfg.max_len
    stacks = 2 if task.kind == "seq2seq" else 1
    per_layer = 2 * E * E + 2 * E * F  # at least Q and out projections, and the FFN
    params = V * E + stacks * config.num_layers * per_layer
    tokens = config.batch_size * T * stacks
    activations = tokens * E * config.num_layers * 8 + config.batch_size * T * V * 2
    return Estimate(params, 16 * params, 4 * activations)


def available_bytes(device: torch.device) -> int | None:
    """Memory free for this process on ``device`` now (None if unknown)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(config: TrainConfig, task: Task, device: torch.device) -> Estimate:
    """Refuse a run that cannot fit in memory, before anything is allocated.

    Raises:
        ValueError: Naming the estimate, what is available, and the options that
            make it large.
    """
    need = estimate(config, task)
    free = available_bytes(device)
    if free is None or need.total <= free:
        return need
    if need.weight_bytes >= need.activation_bytes:
        what = (f"the model alone (about {need.parameters:,} parameters with --embed_dim "
                f"{config.embed_dim}, --num_layers {config.num_layers}) needs "
                f"{_gib(need.weight_bytes)} to train")
    else:
        what = (f"one training step (--batch_size {config.batch_size}, --seq_length "
                f"{config.seq_length}, --embed_dim {config.embed_dim}, --num_layers "
                f"{config.num_layers}) needs {_gib(need.activation_bytes)} of activations")
    raise ValueError(f"this run cannot fit in memory: {what}, but {_gib(free)} is free on "
                     f"{device.type}; make those options smaller")


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**28 else f"{n / 2**20:,.0f} MiB"
