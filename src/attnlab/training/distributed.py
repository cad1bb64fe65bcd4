"""Multi-process training with PyTorch's own engine (``torchrun``), DDP.

Under ``torchrun --nproc_per_node=N -m attnlab train ...`` each process reads
``RANK``/``WORLD_SIZE`` from the environment, joins a process group (gloo on
CPU, NCCL on GPUs), and trains its slice of every global batch. Every process
draws the same global batch from the same seeded generator and keeps its rows,
so the global batch — and the result — is that of one process.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


class JobFailed(RuntimeError):
    """Another process of this torchrun job stopped; this one cannot go on alone."""


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Only the main process prints and writes files."""
        return self.rank == 0

    def rows(self, batch_size: int) -> slice:
        """This process's rows of a global batch."""
        per = batch_size // self.size
        return slice(self.rank * per, (self.rank + 1) * per)


def setup(device: torch.device) -> World:
    """Join the process group if launched by torchrun; otherwise a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return World(rank=dist.get_rank(), size=dist.get_world_size())


def all_sum(value: float, world: World, device: torch.device) -> float:
    """Sum a number over all processes."""
    if world.size == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item())


def broadcast(objects: list, world: World) -> list:
    """The main process's ``objects`` (picklable, sent between this job's processes only)."""
    if world.size > 1:
        dist.broadcast_object_list(objects, src=0)
    return objects


def barrier(world: World) -> None:
    """Wait for every process."""
    if world.size > 1:
        dist.barrier()


def teardown(world: World) -> None:
    """Leave the process group."""
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
