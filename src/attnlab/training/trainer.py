"""The training loop: AdamW, warm-up + cosine schedule, clipping, evaluation, checkpoints.

Determinism is part of the design: the model, the data generator and dropout
are seeded from the config, evaluation uses its own fixed generator, and a
checkpoint holds every state the loop reads (weights, AdamW moments, the step,
the data generator's and torch's CPU RNG states, and the CUDA RNG state when
training on CUDA). So a run stopped at step k and resumed ends with the same
weights as a run that never stopped.

Ctrl-C is caught between steps (never inside an optimiser update): the loop
saves a checkpoint and raises :class:`Interrupted`. An evaluation stops at its
next batch when Ctrl-C is pressed, and a second Ctrl-C stops at once
(``KeyboardInterrupt``; the last checkpoint stays as it was).

A step whose loss or gradient is not finite raises :class:`Diverged` before the
optimiser touches the weights, so the weights and the last checkpoint stay good.
"""

import math
import signal
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from ..registry import TASKS
from ..tasks.base import BOS, EOS, PAD, Batch, Task
from .distributed import World, all_sum
from .recipes import model_config
from .train_config import TrainConfig


class Interrupted(Exception):
    """Training stopped on request (Ctrl-C) after saving a checkpoint."""


class Diverged(RuntimeError):
    """The loss or a gradient became NaN or infinite; the weights were not updated."""


def build_task(config: TrainConfig) -> Task:
    """The task the config names."""
    task_class = TASKS.get(config.task)
    if config.data is not None:
        if config.task != "text":
            raise ValueError(f"--data is for the text task, got --task {config.task}")
        return task_class(seq_length=config.seq_length, data=config.data)
    return task_class(seq_length=config.seq_length)


def model_config_for(config: TrainConfig, task: Task) -> ModelConfig:
    """The :class:`ModelConfig` a run of ``config`` on ``task`` builds."""
    max_len = max(task.max_src_len, task.max_tgt_len) + 1
    return model_config(config.model, task.kind, vocab_size=len(task.vocab), max_len=max_len,
                        embed_dim=config.embed_dim, num_heads=config.num_heads,
                        num_layers=config.num_layers, dropout=config.dropout,
                        positions=config.positions, task_defaults=task.model_defaults)


def model_for_task(config: TrainConfig, task: Task) -> nn.Module:
    """The model a training run trains: ``task``'s architecture, ``config``'s mechanism.

    Initialised from ``config.seed``; :func:`attnlab.models.build_model` builds it.
    """
    from ..models import build_model

    mcfg = model_config_for(config, task)
    torch.manual_seed(config.seed)
    return build_model(mcfg)


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0.1 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def loss_sum(model: nn.Module, batch: Batch, kind: str) -> Tensor:
    """Summed next-token cross-entropy over the non-PAD targets (a scalar tensor).

    The caller counts the targets (``target_count``) from the CPU batch, so the
    training step never waits on the device for a number it already knows.
    """
    if kind == "seq2seq":
        assert batch.src is not None
        logits = model(batch.src, batch.tgt[:, :-1], batch.src != PAD)  # (B, L-1, V)
    else:
        logits = model(batch.tgt[:, :-1])  # (B, L-1, V)
    targets = batch.tgt[:, 1:]  # (B, L-1)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=PAD, reduction="sum")
    return loss


def target_count(batch: Batch) -> int:
    """Non-PAD next-token targets in ``batch`` (what :func:`loss_sum` sums over)."""
    return int((batch.tgt[:, 1:] != PAD).sum())


class Trainer:
    """Runs one training job; see the module docstring.

    Args:
        config: The run's :class:`TrainConfig`.
        device: Where to train.
        world: This process's place under torchrun.
        task: The task, if already built from ``config`` (else built here).
        model: The model, if already built (e.g. loaded from a run; else built here).
    """

    def __init__(self, config: TrainConfig, device: torch.device,
                 world: World | None = None, *, task: Task | None = None,
                 model: nn.Module | None = None) -> None:
        world = world or World()
        if config.batch_size % world.size:
            raise ValueError(f"batch_size ({config.batch_size}) must be divisible by the number "
                             f"of processes ({world.size})")
        self.config, self.device, self.world = config, device, world
        self.task = task or build_task(config)
        self.model = (model or model_for_task(config, self.task)).to(device)
        self.net: nn.Module = self.model
        if world.size > 1:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        if config.compile:
            self.net = torch.compile(self.net)
        decay = [p for n, p in self.model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in self.model.named_parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay},
             {"params": no_decay, "weight_decay": 0.0}], lr=config.learning_rate)
        self.data = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.last_tokens = 0  # non-PAD target tokens of the last training step's global batch
        self.stop_requested = False
        self.saved_step: int | None = None  # the step of the last checkpoint written or loaded

    def learning_rate(self) -> float:
        """The learning rate for the current step."""
        cfg = self.config
        return cfg.learning_rate * lr_factor(self.step, cfg.warmup_steps, cfg.total_steps)

    def train_step(self) -> float:
        """One optimiser step on one global batch; returns its mean loss."""
        cfg = self.config
        batch = self.task.batch("train", cfg.batch_size, self.data)
        tokens = target_count(batch)  # the whole global batch's count, before it moves
        self.last_tokens = tokens
        rows = self.world.rows(cfg.batch_size)
        mine = Batch(None if batch.src is None else batch.src[rows], batch.tgt[rows],
                     None, batch.tgt_lengths[rows]).to(self.device)
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        self.net.train()
        with self._autocast():
            total = loss_sum(self.net, mine, self.task.kind)
        # DDP averages gradients over processes, so scale by the world size to get the
        # global-batch mean exactly.
        (total * self.world.size / tokens).backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        if cfg.grad_clip > 0:
            norm = nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        else:
            norm = nn.utils.get_total_norm([p.grad for p in params])
        loss = all_sum(float(total.detach()), self.world, self.device) / tokens
        if not math.isfinite(loss) or not math.isfinite(float(norm)):
            self.optimizer.zero_grad(set_to_none=True)
            what = f"loss is {loss}" if not math.isfinite(loss) else f"gradient norm is {norm}"
            raise Diverged(f"training diverged at step {self.step + 1}: the {what}")
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return loss

    @torch.no_grad()
    def evaluate(self, batches: int | None = None) -> dict[str, float]:
        """Held-out metrics on a fixed set of validation batches (same every call).

        Returns ``{}`` if Ctrl-C (:attr:`stop_requested`) cut the evaluation short.
        """
        cfg = self.config
        generator = torch.Generator().manual_seed(10_000 + cfg.seed)
        self.model.eval()
        nll, count, scores = 0.0, 0, []
        for _ in range(batches or cfg.eval_batches):
            if self.stop_requested:
                return {}
            batch = self.task.batch("val", cfg.batch_size, generator)
            count += target_count(batch)
            batch = batch.to(self.device)
            nll += float(loss_sum(self.model, batch, self.task.kind))
            if self.task.kind == "seq2seq":
                scores.append(self.task.score(self.predict(batch.src).cpu(), batch.to("cpu")))
        if not math.isfinite(nll):
            raise ValueError("the model's held-out loss is not finite: its weights are out of "
                             "range (damaged, or from a run that diverged)")
        metrics = {"val_loss": nll / count}
        if self.task.kind == "lm":
            metrics["bits_per_char"] = self.task.bits_per_char(nll / count)
        else:
            for key in scores[0]:
                metrics[key] = sum(s[key] for s in scores) / len(scores)
        return metrics

    @torch.no_grad()
    def predict(self, src: Tensor) -> Tensor:
        """Greedy outputs ``(B, L)`` (after BOS) for padded sources ``(B, S)``."""
        self.model.eval()
        out = self.model.generate(src, self.task.max_tgt_len - 1, bos_id=BOS, eos_id=EOS,
                                  src_mask=src != PAD, temperature=0.0)
        return out[:, 1:]

    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """Optimiser and RNG tensors plus JSON-able scalars, for a checkpoint."""
        tensors: dict[str, Tensor] = {"rng.data": self.data.get_state(),
                                      "rng.torch": torch.get_rng_state()}
        if self.device.type == "cuda":  # dropout on CUDA draws from the device's generator
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        opt = self.optimizer.state_dict()
        for index, values in opt["state"].items():
            for name, value in values.items():
                tensors[f"optim.{index}.{name}"] = value
        groups = [{k: v for k, v in g.items() if k != "params"} | {"params": g["params"]}
                  for g in opt["param_groups"]]
        return tensors, {"step": self.step, "param_groups": groups}

    def load_state(self, tensors: dict[str, Tensor], meta: dict[str, Any],
                   source: str = "checkpoint") -> None:
        """Restore what :meth:`state` saved, after checking every part of it.

        Raises:
            ValueError: Naming ``source`` and the part that is missing, mis-shaped or
                not finite (a resume must continue exactly, or not at all).
        """
        expected = self.optimizer.state_dict()["param_groups"]
        groups = meta.get("param_groups")
        if not isinstance(groups, list) or len(groups) != len(expected) or any(
                not isinstance(g, dict) or g.get("params") != e["params"]
                or set(g) != set(e) for g, e in zip(groups, expected, strict=False)):
            raise ValueError(f"{source} is damaged: its optimiser settings (param_groups) do "
                             "not match this model")
        for group in groups:
            for key in ("lr", "weight_decay", "eps"):
                value = group[key]
                if isinstance(value, bool) or not isinstance(value, int | float) or \
                        not math.isfinite(value):
                    raise ValueError(f"{source} is damaged: optimiser {key} is {value!r}")
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        state: dict[int, dict[str, Tensor]] = {}
        for index, param in enumerate(params):
            entry = {}
            for name, shape in (("step", ()), ("exp_avg", param.shape),
                                ("exp_avg_sq", param.shape)):
                key = f"optim.{index}.{name}"
                value = tensors.get(key)
                if value is None:
                    raise ValueError(f"{source} is damaged: it has no optimiser tensor {key} "
                                     "(a resume would not continue the same run)")
                dtype = torch.get_default_dtype() if name == "step" else param.dtype
                if tuple(value.shape) != tuple(shape) or value.dtype != dtype:
                    raise ValueError(f"{source} is damaged: {key} is {value.dtype} "
                                     f"{tuple(value.shape)}, expected {dtype} {tuple(shape)}")
                if not bool(torch.isfinite(value).all()):
                    raise ValueError(f"{source}: optimiser tensor {key} holds NaN or infinite "
                                     "values; it cannot be resumed")
                if name == "step" and float(value) != meta["step"]:
                    raise ValueError(f"{source} is damaged: its step is {meta['step']} but "
                                     f"the optimiser has taken {float(value):g} steps")
                entry[name] = value.to(self.device)
            state[index] = entry
        extra = sorted(k for k in tensors if k.startswith("optim.")
                       and int(k.split(".")[1]) >= len(params))
        if extra:
            raise ValueError(f"{source} is damaged: unexpected optimiser tensor {extra[0]}")
        rng = {"rng.data": self.data.get_state(), "rng.torch": torch.get_rng_state()}
        for key, like in rng.items():
            value = tensors.get(key)
            if value is None or value.dtype != like.dtype or value.shape != like.shape:
                got = "missing" if value is None else f"{value.dtype} {tuple(value.shape)}"
                raise ValueError(f"{source} is damaged: RNG state {key} is {got}, expected "
                                 f"{like.dtype} {tuple(like.shape)}")
        self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        self.data.set_state(tensors["rng.data"])
        torch.set_rng_state(tensors["rng.torch"])
        if self.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.step = int(meta["step"])

    @contextmanager
    def _autocast(self):  # noqa: ANN202
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                yield
        else:
            yield

    @contextmanager
    def catch_interrupt(self):  # noqa: ANN202
        """Turn Ctrl-C into ``stop_requested`` (checked between steps)."""
        def handler(signum, frame):  # noqa: ANN001, ARG001
            self.stop_requested = True
            signal.signal(signal.SIGINT, signal.default_int_handler)  # a 2nd Ctrl-C: now

        try:
            previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: leave signals alone
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
