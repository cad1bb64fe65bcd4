"""Training runs as a user sees them: a run directory, resume, evaluate, generate.

A run directory holds:

* ``config.json`` — the :class:`TrainConfig`;
* ``metrics.jsonl`` — one JSON line per evaluation;
* ``model.safetensors`` — the weights (with both configs in its metadata);
* ``checkpoint.safetensors`` — everything ``--resume`` needs;
* ``sample.txt`` — a few held-out inputs with the model's outputs;
* ``curves.png``, ``attention.png`` (and ``alignment.png`` for seq2seq) — pictures.
"""

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..tasks.base import Task
from . import checkpoint
from .config import TrainConfig
from .distributed import barrier, setup, teardown
from .progress import Clock, Reporter
from .trainer import Interrupted, Trainer, build_model, build_task

__all__ = ["Interrupted", "evaluate", "generate", "load_run", "resolve_device", "train"]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda, then mps, then cpu; a named device must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps was asked for, but MPS is not available")
    return torch.device(name)


def train(config: TrainConfig, *, resume: str | None = None,
          reporter: Reporter | None = None) -> dict[str, Any]:
    """Train as ``config`` says (continuing ``resume`` if given); returns a summary dict.

    Raises:
        Interrupted: After saving a checkpoint, when Ctrl-C was pressed.
        ValueError: For a checkpoint from another config, or a damaged one.
    """
    device = resolve_device(config.device)
    world = setup(device)
    if world.size > 1 and device.type == "cuda":
        device = torch.device("cuda", world.rank % torch.cuda.device_count())
    try:
        trainer = Trainer(config, device, world)
        run_dir = Path(resume or config.run_dir())
        if resume is not None:
            _resume(trainer, run_dir, config)
        reporter = reporter or Reporter(config.total_steps, enabled=world.is_main)
        if world.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "config.json").write_text(config.to_json() + "\n")
        return _loop(trainer, run_dir, reporter)
    finally:
        teardown(world)


def _loop(trainer: Trainer, run_dir: Path, reporter: Reporter) -> dict[str, Any]:
    cfg, clock = trainer.config, Clock()
    start_step, tokens_seen, loss_avg = trainer.step, 0, float("nan")
    per_epoch = cfg.steps_per_epoch
    metrics: dict[str, float] = {}
    reporter.line(f"attnlab train: task {cfg.task} ({trainer.task.description}), model "
                  f"{cfg.model}, {_count(trainer.model)} parameters, {trainer.device}, "
                  f"run dir {run_dir}")
    reporter.start(trainer.step)
    with trainer.catch_interrupt():
        try:
            while trainer.step < cfg.total_steps:
                loss = trainer.train_step()
                loss_avg = loss if loss_avg != loss_avg else 0.9 * loss_avg + 0.1 * loss
                tokens_seen += trainer.last_tokens  # real (non-PAD) target tokens
                rate = tokens_seen / max(clock.elapsed(), 1e-9)
                reporter.step(trainer.step, {"loss": loss_avg, **_primary(trainer, metrics),
                                             "tok/s": rate})
                epoch_end = trainer.step % per_epoch == 0
                last = trainer.step == cfg.total_steps
                if (epoch_end and (trainer.step // per_epoch) % cfg.eval_every == 0) or last:
                    metrics = trainer.evaluate()
                    _record(trainer, run_dir, metrics, loss_avg, clock.elapsed())
                    _save(trainer, run_dir)  # every process: it holds a barrier
                elif trainer.stop_requested:
                    _save(trainer, run_dir)
                if trainer.stop_requested:  # saved just above, either way
                    raise Interrupted(str(run_dir))
        finally:
            reporter.stop()
    sample = _write_sample(trainer, run_dir)  # (the last step was evaluated and saved)
    from ..visualize.pictures import visualize_run  # matplotlib: imported when needed

    pictures = visualize_run(trainer, run_dir) if trainer.world.is_main else []
    if cfg.save_path and trainer.world.is_main:
        checkpoint.save_weights(cfg.save_path, trainer.model, _weights_meta(trainer))
    summary = {"run_dir": str(run_dir), "steps": trainer.step - start_step,
               "seconds": round(clock.elapsed(), 1), "metrics": metrics, "sample": sample,
               "pictures": [str(p) for p in pictures]}
    reporter.summary({"run dir": run_dir, "steps": trainer.step, "seconds": summary["seconds"],
                      **{k: round(v, 4) for k, v in metrics.items()},
                      **{p.stem: p for p in pictures}})
    return summary


def _primary(trainer: Trainer, metrics: dict[str, float]) -> dict[str, float]:
    key = trainer.task.primary_metric
    return {key: metrics[key]} if key in metrics else {}


def _record(trainer: Trainer, run_dir: Path, metrics: dict[str, float], train_loss: float,
            seconds: float) -> None:
    if not trainer.world.is_main:
        return
    line = {"step": trainer.step, "epoch": trainer.step / trainer.config.steps_per_epoch,
            "train_loss": train_loss, "lr": trainer.learning_rate(), "seconds": seconds,
            **metrics}
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps(line) + "\n")


def _weights_meta(trainer: Trainer) -> dict[str, Any]:
    return {"train_config": asdict(trainer.config), "model_config": trainer.model.config.to_dict()}


def _save(trainer: Trainer, run_dir: Path) -> None:
    """Write ``checkpoint.safetensors`` and ``model.safetensors`` (main process only)."""
    barrier(trainer.world)
    if not trainer.world.is_main:
        return
    weights, aliases = checkpoint.model_tensors(trainer.model)
    state, meta = trainer.state()
    about = {**_weights_meta(trainer), "aliases": aliases}
    checkpoint.atomic_save(run_dir / "checkpoint.safetensors",
                           {f"model.{k}": v for k, v in weights.items()} | state, {**meta, **about})
    checkpoint.atomic_save(run_dir / "model.safetensors", weights, about)  # = save_weights


def _resume(trainer: Trainer, run_dir: Path, config: TrainConfig) -> None:
    path = run_dir / "checkpoint.safetensors"
    if not run_dir.is_dir():
        raise FileNotFoundError(f"--resume: no run directory {run_dir}")
    tensors, meta = checkpoint.load(path)
    saved = TrainConfig.from_dict(meta["train_config"])
    differ = config.same_model(saved)
    if differ:
        detail = ", ".join(f"{k}={getattr(saved, k)!r} (now {getattr(config, k)!r})"
                           for k in differ)
        raise ValueError(f"--resume: checkpoint {path} was written by another config: {detail}")
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    checkpoint.load_model_tensors(trainer.model, weights, meta.get("aliases", {}), str(path))
    trainer.load_state(tensors, meta)


def _write_sample(trainer: Trainer, run_dir: Path, n: int = 5) -> list[dict[str, str]]:
    task, rows = trainer.task, []
    for source, target in task.examples("val", n, seed=trainer.config.seed):
        output = answer(trainer.model, task, source)
        rows.append({"input": source, "target": target, "output": output})
    if trainer.world.is_main:
        text = "".join(f"input:  {r['input']!r}\ntarget: {r['target']!r}\noutput: "
                       f"{r['output']!r}\n\n" for r in rows)
        (run_dir / "sample.txt").write_text(text)
    return rows


@torch.no_grad()
def answer(model: nn.Module, task: Task, prompt: str, max_new_tokens: int | None = None,
           temperature: float = 0.0) -> str:
    """``model``'s answer to ``prompt``: the task's output, or the continuation of text."""
    from ..tasks.base import BOS, EOS, PAD

    ids = task.encode_input(prompt)[None].to(next(model.parameters()).device)  # (1, S)
    if task.kind == "seq2seq":
        out = model.generate(ids, max_new_tokens or task.max_tgt_len - 1, bos_id=BOS,
                             eos_id=EOS, src_mask=ids != PAD, temperature=temperature)
        return task.decode_output(out[0, 1:].cpu())
    new = max_new_tokens or task.seq_length
    room = model.config.max_len - ids.shape[1]
    if room < new:
        ids = ids[:, -(model.config.max_len - new):]
    out = model.generate(ids, new, temperature=temperature)
    return task.vocab.decode(out[0, ids.shape[1]:].cpu())


def read_config(run_dir: str) -> TrainConfig:
    """The :class:`TrainConfig` saved in ``run_dir/config.json``.

    Raises:
        FileNotFoundError: If there is no ``config.json``.
        ValueError: If it is not valid JSON or not a valid config.
    """
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no config.json: is it a run directory?")
    try:
        return TrainConfig.from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc.msg})") from None


def load_run(run_dir: str, device: str = "auto") -> tuple[TrainConfig, Task, nn.Module]:
    """The config, task and trained model of a run directory.

    Raises:
        FileNotFoundError: If ``run_dir`` or its files are missing.
        ValueError: If the weights are damaged or do not fit the config.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"no run directory {run_dir}")
    config = read_config(run_dir)
    task = build_task(config)
    model = build_model(config, task)
    checkpoint.load_weights(path / "model.safetensors", model)
    return config, task, model.to(resolve_device(device)).eval()


def evaluate(run_dir: str, *, device: str = "auto",
             batches: int | None = None) -> dict[str, float]:
    """Held-out metrics of a trained run (on ``batches`` batches; default: the run's own)."""
    config, task, model = load_run(run_dir, device)
    trainer = Trainer(config, next(model.parameters()).device, task=task, model=model)
    return trainer.evaluate(batches)


def generate(run_dir: str, prompt: str, *, max_new_tokens: int | None = None,
             temperature: float = 0.0, device: str = "auto") -> str:
    """The trained model's answer to ``prompt`` (a task input, or text to continue)."""
    _, task, model = load_run(run_dir, device)
    return answer(model, task, prompt, max_new_tokens, temperature)


def _count(model: nn.Module) -> str:
    n = sum(p.numel() for p in model.parameters())
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"
