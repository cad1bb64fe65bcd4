"""Training runs as a user sees them: a run directory, resume, evaluate, generate.

A run directory holds:

* ``config.json`` — the :class:`TrainConfig`;
* ``metrics.jsonl`` — one JSON line per evaluation;
* ``model.safetensors`` — the weights (with both configs in its metadata);
* ``checkpoint.safetensors`` — everything ``--resume`` needs;
* ``sample.txt`` — a few held-out inputs with the model's outputs;
* ``curves.png``, ``attention.png`` (and ``alignment.png`` for seq2seq) — pictures.

Every file is written whole or not at all (:func:`attnlab._io.atomic_write`), one
run per directory (:mod:`~attnlab.training.rundir`), and nothing non-finite is
ever saved: training stops at the first NaN/inf loss or gradient.
"""

import json
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._io import atomic_write, parse_json, read_json
from ..models.generation import sample_next
from ..tasks.base import Task
from . import budget, checkpoint, exports, rundir
from . import trainer as trainer_module
from .distributed import JobFailed, World, barrier, broadcast, setup, teardown
from .progress import Clock, Reporter
from .train_config import TrainConfig
from .trainer import Diverged, Interrupted, Trainer, build_task, model_for_task

__all__ = ["Diverged", "Interrupted", "JobFailed", "RunComplete", "evaluate", "generate",
           "load_run", "resolve_device", "train"]


class RunComplete(Exception):
    """``--resume`` of a run that already did every step (the message says how to extend it)."""


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


def train(config: TrainConfig, *, resume: str | None = None, force: bool = False,
          reporter: Reporter | None = None) -> dict[str, Any]:
    """Train as ``config`` says (continuing ``resume`` if given); returns a summary dict.

    A new run never touches an earlier one: it gets a directory of its own (see
    :mod:`~attnlab.training.rundir`); ``force`` replaces the run in ``config.out``
    (and an existing ``save_path``). Everything that can be checked is checked before
    any work: the paths, the memory the run needs, the checkpoint to resume.

    Raises:
        Interrupted: After saving a checkpoint, when Ctrl-C was pressed.
        Diverged: At the first non-finite loss or gradient; nothing non-finite is saved.
        RunComplete: When ``resume`` names a run that already did every step.
        ValueError: For a directory or path that cannot be used, a run too large for
            memory, or a checkpoint that is damaged or from another config.
    """
    if resume is not None:
        if not Path(resume).is_dir():
            raise FileNotFoundError(f"--resume: no run directory {resume}")
        if config.out is not None and Path(config.out).resolve() != Path(resume).resolve():
            raise ValueError(f"--out cannot move a resumed run: it stays in {resume} "
                             f"(got --out {config.out})")
    else:
        rundir.check_out(config.out, force=force)
    exports.check_save_path(config.save_path, force=force)
    device = resolve_device(config.device)
    task = build_task(config)
    budget.check_memory(config, task, device)
    world = setup(device)
    if world.size > 1 and device.type == "cuda":
        device = torch.device("cuda", world.rank % torch.cuda.device_count())
    try:
        run_dir, lock = _claim(config, resume, force, world)
        try:
            asked, config = config, config.replace(out=str(run_dir))
            trainer = Trainer(config, device, world, task=task)
            reporter = reporter or Reporter(config.total_steps, enabled=world.is_main)
            if resume is not None:
                _resume(trainer, run_dir, config)
            elif asked.out is None and not force and str(run_dir) != asked.run_dir():
                reporter.line(f"{asked.run_dir()} holds an earlier run; this run goes to "
                              f"{run_dir}")
            if world.is_main:
                atomic_write(run_dir / "config.json", config.to_json() + "\n")
            try:
                with _stopped_by_torchrun(world):
                    return _loop(trainer, run_dir, reporter)
            except (torch.distributed.DistError, RuntimeError) as exc:
                if world.size == 1 or isinstance(exc, Diverged):
                    raise
                # under torchrun, a collective that fails means a worker died
                kept = "no checkpoint was saved yet" if trainer.saved_step is None else \
                    f"the checkpoint of step {trainer.saved_step} in {run_dir} is intact"
                first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else "lost"
                raise JobFailed(f"another process of this torchrun job stopped ({first}); "
                                f"{kept}; resume with: attnlab train --resume {run_dir}") \
                    from None
        finally:
            if lock is not None:
                lock.release()
    finally:
        teardown(world)


@contextmanager
def _stopped_by_torchrun(world: World) -> Iterator[None]:
    """Under torchrun, turn the SIGTERM it sends when another worker failed into JobFailed."""
    if world.size == 1:
        yield
        return

    def handler(signum, frame):  # noqa: ANN001, ARG001
        raise torch.distributed.DistError("torchrun stopped this process")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _claim(config: TrainConfig, resume: str | None, force: bool,
           world: World) -> tuple[Path, rundir.RunLock | None]:
    """The run directory, locked by the main process; every process learns its path."""
    default = f"runs/{config.task}-{config.model}-{config.seed}"
    found: list[Any] = [("", "")]
    lock = None
    if world.is_main:
        try:
            if resume is not None:
                path, lock = Path(resume), rundir.lock_for_resume(Path(resume))
            else:
                path, lock = rundir.claim(config.out, default, force=force)
            found = [("path", str(path))]
        except ValueError as exc:
            found = [("error", str(exc))]
    (kind, text), = broadcast(found, world)
    if kind == "error":
        raise ValueError(text)
    return Path(text), lock


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
                try:
                    loss = trainer.train_step()
                except Diverged as exc:
                    raise Diverged(f"{exc}; {_last_good(trainer, run_dir)}; try a lower "
                                   f"--learning_rate (now {cfg.learning_rate:g}) or more "
                                   "--warmup_steps") from None
                loss_avg = loss if loss_avg != loss_avg else 0.9 * loss_avg + 0.1 * loss
                tokens_seen += trainer.last_tokens  # real (non-PAD) target tokens
                rate = tokens_seen / max(clock.elapsed(), 1e-9)
                reporter.step(trainer.step, {"loss": loss_avg, **_primary(trainer, metrics),
                                             "tok/s": rate})
                epoch_end = trainer.step % per_epoch == 0
                last = trainer.step == cfg.total_steps
                if (epoch_end and (trainer.step // per_epoch) % cfg.eval_every == 0) or last:
                    evaluated = trainer.evaluate()  # {} when Ctrl-C cut it short
                    with _saving(trainer, run_dir):
                        if evaluated:
                            metrics = evaluated
                            _record(trainer, run_dir, metrics, loss_avg, clock.elapsed())
                        _save(trainer, run_dir)  # every process: it holds a barrier
                elif trainer.stop_requested:
                    with _saving(trainer, run_dir):
                        _save(trainer, run_dir)
                if trainer.stop_requested:  # saved just above, either way
                    raise Interrupted(str(run_dir))
        finally:
            reporter.stop()
    from .pictures import draw_run_pictures  # matplotlib: imported when needed

    saved: list[Path] = []
    with _saving(trainer, run_dir):  # (the last step was evaluated and saved)
        sample = _write_sample(trainer, run_dir)
        pictures = draw_run_pictures(trainer, run_dir) if trainer.world.is_main else []
        if cfg.save_path and trainer.world.is_main:
            saved = exports.save(cfg.save_path, trainer.model, _weights_meta(trainer))
    summary = {"run_dir": str(run_dir), "steps": trainer.step - start_step,
               "seconds": round(clock.elapsed(), 1), "metrics": metrics, "sample": sample,
               "pictures": [str(p) for p in pictures], "saved": [str(p) for p in saved]}
    reporter.summary({"run dir": run_dir, "steps": trainer.step, "seconds": summary["seconds"],
                      **{k: round(v, 4) for k, v in metrics.items()},
                      **{p.stem: p for p in pictures},
                      **({"saved": ", ".join(map(str, saved))} if saved else {})})
    return summary


def _last_good(trainer: Trainer, run_dir: Path) -> str:
    if trainer.saved_step is None:
        return f"no checkpoint was saved in {run_dir} yet (no evaluation step was reached)"
    return (f"the last good checkpoint (step {trainer.saved_step}) is kept in {run_dir}; "
            "nothing non-finite was saved")


def _primary(trainer: Trainer, metrics: dict[str, float]) -> dict[str, float]:
    key = trainer.task.primary_metric
    return {key: metrics[key]} if key in metrics else {}


def _record(trainer: Trainer, run_dir: Path, metrics: dict[str, float], train_loss: float,
            seconds: float) -> None:
    """Add this evaluation's line to ``metrics.jsonl`` (the whole file rewritten atomically)."""
    if not trainer.world.is_main:
        return
    line = {"step": trainer.step, "epoch": trainer.step / trainer.config.steps_per_epoch,
            "train_loss": train_loss, "lr": trainer.learning_rate(), "seconds": seconds,
            **metrics}
    _write_metrics(run_dir, [*_metric_lines(run_dir, trainer.step - 1), json.dumps(line)])


def _metric_lines(run_dir: Path, last_step: int) -> list[str]:
    """The lines of ``metrics.jsonl`` up to ``last_step`` (a cut or foreign line is dropped)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    lines = []
    for text in path.read_text(errors="replace").splitlines():
        try:
            step = parse_json(text, "metrics line")["step"]
        except (ValueError, TypeError, KeyError):
            continue
        if isinstance(step, int) and 0 < step <= last_step:
            lines.append(text)
    return lines


def _write_metrics(run_dir: Path, lines: list[str]) -> None:
    atomic_write(run_dir / "metrics.jsonl", "".join(f"{line}\n" for line in lines))


def _weights_meta(trainer: Trainer) -> dict[str, Any]:
    return {"train_config": asdict(trainer.config), "model_config": trainer.model.config.to_dict()}


def _save(trainer: Trainer, run_dir: Path) -> None:
    """Write ``checkpoint.safetensors`` and ``model.safetensors`` (main process only).

    Raises:
        Diverged: If a weight is not finite (then nothing is written).
        OSError: If the files cannot be written (e.g. a full disk); the previous
            checkpoint is left intact.
    """
    barrier(trainer.world)
    if not trainer.world.is_main:
        return
    weights, aliases = checkpoint.model_tensors(trainer.model)
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise Diverged(f"weight {name} is not finite at step {trainer.step}; "
                           f"{_last_good(trainer, run_dir)}")
    state, meta = trainer.state()
    about = {**_weights_meta(trainer), "aliases": aliases}
    checkpoint.atomic_save(run_dir / "checkpoint.safetensors",
                           {f"model.{k}": v for k, v in weights.items()} | state,
                           {**meta, **about})
    checkpoint.atomic_save(run_dir / "model.safetensors", weights, about)
    trainer.saved_step = trainer.step


@contextmanager
def _saving(trainer: Trainer, run_dir: Path) -> Iterator[None]:
    """Turn a failed write (a full disk...) into one line that says what is still intact."""
    try:
        yield
    except OSError as exc:
        kept = "" if trainer.saved_step is None else \
            f"; the checkpoint of step {trainer.saved_step} is intact"
        name = Path(exc.filename).name if exc.filename else "a file"
        raise ValueError(f"could not save to {run_dir}: {(exc.strerror or str(exc)).lower()} "
                         f"(writing {name}){kept}") from None


def _resume(trainer: Trainer, run_dir: Path, config: TrainConfig) -> None:
    """Load the checkpoint of ``run_dir`` into ``trainer``, checking every part of it.

    Raises:
        RunComplete: If the run already did ``config.total_steps`` steps.
        ValueError: For a damaged or tampered checkpoint, another config, or fewer
            steps than the run already did.
    """
    path = run_dir / "checkpoint.safetensors"
    source = str(path)
    tensors, meta = checkpoint.load(path)
    saved = TrainConfig.from_dict(checkpoint.meta_field(meta, "train_config", dict, source))
    differ = config.same_model(saved)
    if differ:
        detail = ", ".join(f"{k}={getattr(saved, k)!r} (now {getattr(config, k)!r})"
                           for k in differ)
        raise ValueError(f"--resume: checkpoint {path} was written by another config: {detail}")
    step = checkpoint.meta_field(meta, "step", int, source)
    if not 1 <= step <= saved.total_steps:
        raise ValueError(f"{source} is damaged: step {step} is outside 1..{saved.total_steps}")
    if step == config.total_steps:
        raise RunComplete(f"{run_dir} is complete: it did all {step} steps "
                          f"({config.epochs} epochs). To train it further, give more epochs: "
                          f"attnlab train --resume {run_dir} --epochs {2 * config.epochs}")
    if step > config.total_steps:
        raise ValueError(f"--epochs {config.epochs} gives {config.total_steps} steps, but "
                         f"{run_dir} is already at step {step}; give more --epochs to "
                         "continue it")
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    aliases = checkpoint.meta_field(meta, "aliases", dict, source)
    checkpoint.load_model_tensors(trainer.model, weights, aliases, source)
    trainer.load_state(tensors, meta, source)
    trainer.saved_step = step
    if trainer.world.is_main:  # drop what a killed process wrote after this checkpoint
        _write_metrics(run_dir, _metric_lines(run_dir, step))


def _write_sample(trainer: Trainer, run_dir: Path, n: int = 5) -> list[dict[str, str]]:
    task, rows = trainer.task, []
    for source, target in task.examples("val", n, seed=trainer.config.seed):
        output = answer(trainer.model, task, source)
        rows.append({"input": source, "target": target, "output": output})
    if trainer.world.is_main:
        text = "".join(f"input:  {r['input']!r}\ntarget: {r['target']!r}\noutput: "
                       f"{r['output']!r}\n\n" for r in rows)
        atomic_write(run_dir / "sample.txt", text)
    return rows


@torch.no_grad()
def answer(model: nn.Module, task: Task, prompt: str, max_new_tokens: int | None = None,
           temperature: float = 0.0, *, on_crop: Callable[[str], None] | None = None) -> str:
    """``model``'s answer to ``prompt``: the task's output, or the continuation of text.

    A language model continues past its context as GPT-2-style code does: once the
    text is longer than ``max_len`` tokens, each new token is predicted from the
    last ``max_len`` tokens only (its absolute positions end there). ``on_crop``
    is told so, once per call, when that happens.
    """
    from ..tasks.base import BOS, EOS, PAD

    ids = task.encode_input(prompt)[None].to(next(model.parameters()).device)  # (1, S)
    if task.kind == "seq2seq":
        out = model.generate(ids, max_new_tokens or task.max_tgt_len - 1, bos_id=BOS,
                             eos_id=EOS, src_mask=ids != PAD, temperature=temperature)
        return task.decode_output(out[0, 1:].cpu())
    new, limit, start = max_new_tokens or task.seq_length, model.config.max_len, ids.shape[1]
    if start + new > limit and on_crop is not None:
        on_crop(f"the model sees at most {limit} tokens (its context); the prompt has "
                f"{start} and {new} more were asked for, so each new token is predicted "
                f"from the last {limit} tokens only")
    first = max(0, min(new, limit - start))  # what fits in one cached generate call
    if first:
        ids = model.generate(ids, first, temperature=temperature)
    for _ in range(new - first):  # past the context: crop, then one token at a time
        logits = model(ids[:, -limit:])[:, -1]  # (1, V)
        ids = torch.cat([ids, sample_next(logits, temperature, None)[:, None]], dim=1)
    return task.vocab.decode(ids[0, start:].cpu())


def read_config(run_dir: str) -> TrainConfig:
    """The :class:`TrainConfig` saved in ``run_dir/config.json``.

    Raises:
        FileNotFoundError: If there is no ``config.json``.
        ValueError: If it is not valid JSON or not a valid config.
        TypeError: If a field has the wrong type.
    """
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no config.json: is it a run directory?")
    try:
        return TrainConfig.from_dict(read_json(path))
    except (ValueError, TypeError) as exc:
        message = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
        raise type(exc)(message) from None


def load_run(run_dir: str, device: str = "auto") -> tuple[TrainConfig, Task, nn.Module]:
    """The config, task and trained model of a run directory or a saved ``.safetensors`` file.

    Raises:
        FileNotFoundError: If ``run_dir`` or its files are missing.
        ValueError: If the weights are damaged or do not fit the config, or for a
            ``.pth``/``.pt`` file (attnlab never unpickles: see ``exports``).
    """
    path = Path(run_dir)
    if path.is_file():
        if path.suffix in exports.PICKLE_SUFFIXES:
            exports.refuse_pickle(path)
        weights = path
        meta = checkpoint.read_metadata(weights)
        config = TrainConfig.from_dict(checkpoint.meta_field(meta, "train_config", dict,
                                                             str(path)))
    elif path.is_dir():
        config = read_config(run_dir)
        weights = path / "model.safetensors"
        meta = checkpoint.read_metadata(weights)
    else:
        raise FileNotFoundError(f"no run directory {run_dir}")
    task = build_task(config)
    _check_record(config, task, meta, str(weights))
    model = model_for_task(config, task)
    checkpoint.load_weights(weights, model)
    model = model.to(resolve_device(device)).eval()
    _probe(model, task, str(weights))
    return config, task, model


@torch.no_grad()
def _probe(model: nn.Module, task: Task, source: str) -> None:
    """One held-out example through the model: finite weights can still overflow (1e38)."""
    batch = task.batch("val", 1, torch.Generator().manual_seed(0))
    loss = trainer_module.loss_sum(model, batch.to(next(model.parameters()).device), task.kind)
    if not bool(torch.isfinite(loss)):
        raise ValueError(f"{source}: the model's outputs are not finite (its weights are out of "
                         "range: damaged, or from a run that diverged)")


#: TrainConfig fields that decide the model and its task: config.json must agree with the
#: weights' own record on these (a resume may change the others, e.g. epochs).
MODEL_FIELDS = ("model", "embed_dim", "num_heads", "num_layers", "dropout", "positions", "task",
                "seq_length", "data")


def _check_record(config: TrainConfig, task: Task, meta: dict[str, Any], source: str) -> None:
    """Refuse a config.json that disagrees with the weights' metadata, before building.

    A model built from an edited config can have the same tensor shapes (``num_heads``,
    ``model``) and compute something else; and an absurd size must not be allocated.
    """
    saved = checkpoint.meta_field(meta, "train_config", dict, source)
    differ = [f"{k}={saved.get(k)!r} (config.json says {getattr(config, k)!r})"
              for k in MODEL_FIELDS if saved.get(k) != getattr(config, k)]
    built = trainer_module.model_config_for(config, task).to_dict()
    recorded = meta.get("model_config")
    if not differ and recorded != built:
        if not isinstance(recorded, dict):
            raise ValueError(f"{source} is damaged: its model_config record is "
                             f"{type(recorded).__name__}, not the model's config")
        differ = [f"model_config {k}={recorded.get(k)!r} (config.json gives {built.get(k)!r})"
                  for k in sorted(set(recorded) | set(built)) if recorded.get(k) != built.get(k)]
    if differ:
        raise ValueError(f"{source} was written by another model than config.json describes: "
                         f"{'; '.join(differ[:3])}")
    need = budget.estimate(config, task).parameters * 4
    free = budget.available_bytes(torch.device("cpu"))
    if free is not None and need > free:
        raise ValueError(f"{source}: the model needs {need / 2**30:.1f} GiB, more than the "
                         f"{free / 2**30:.1f} GiB free")


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
