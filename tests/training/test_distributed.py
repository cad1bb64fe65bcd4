"""Two processes (gloo) train exactly what one process trains with the same global batch."""

import os
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from attnlab.training import TrainConfig, train
from attnlab.training.progress import Reporter

CONFIG = {"embed_dim": 16, "num_heads": 2, "num_layers": 1, "batch_size": 8, "epochs": 2,
          "steps_per_epoch": 4, "eval_every": 2, "eval_batches": 1, "warmup_steps": 2,
          "seq_length": 6}


SCRIPT = """
import os, sys, torch
import torch.multiprocessing as mp
from attnlab.training import TrainConfig, train
from attnlab.training.progress import Reporter


def worker(rank, world, port, out, config):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    cfg = TrainConfig(**config, out=out, device="cpu")
    train(cfg, reporter=Reporter(cfg.total_steps, enabled=False))


if __name__ == "__main__":
    port, out, config = int(sys.argv[1]), sys.argv[2], eval(sys.argv[3])
    mp.start_processes(worker, args=(2, port, out, config), nprocs=2, join=True,
                       start_method="spawn")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
    """Compared in float64: in float32 the key bias (whose gradient is analytically zero)
    takes Adam-normalised rounding noise, which differs with the reduction order."""
    single = str(tmp_path / "single")
    config = TrainConfig(**CONFIG, out=single, device="cpu")
    torch.set_default_dtype(torch.float64)
    try:
        train(config, reporter=Reporter(config.total_steps, enabled=False))
    finally:
        torch.set_default_dtype(torch.float32)
    double = str(tmp_path / "double")
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(_free_port()), double, repr(CONFIG)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    a = load_file(os.path.join(single, "model.safetensors"))
    b = load_file(os.path.join(double, "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        err = ((a[key] - b[key]).norm() / a[key].norm().clamp_min(1e-12)).item()
        assert err < 1e-5, (key, err)
        assert a[key].dtype == torch.float64


def test_batch_must_split_evenly():
    from attnlab.training.distributed import World
    from attnlab.training.trainer import Trainer

    with pytest.raises(ValueError, match=r"batch_size \(9\) must be divisible by the number "
                                         r"of processes \(2\)"):
        Trainer(TrainConfig(batch_size=9), torch.device("cpu"), World(rank=0, size=2))
