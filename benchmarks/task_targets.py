"""Train every task with its documented command and check it against its target.

Run: ``uv run python benchmarks/task_targets.py [--only TASK ...] [--out DIR] [--threads N]``.

Each row of ``COMMANDS`` below is one documented ``attnlab train`` command; the README's
table comes from this script's output. For each row the script runs the command as a
child process (``python -m attnlab train ...``, exactly what ``uv run attnlab train ...``
runs) and records:

* wall time of the whole command (start-up, training, evaluations, checkpoints and the
  pictures it draws), its CPU time (user + system, from ``getrusage``) and the 1-minute
  load average sampled every few seconds while it ran (other jobs on the machine slow
  a run down: read wall time together with the load);
* the steps trained and the run's own last held-out evaluation (``metrics.jsonl``:
  ``eval_batches x batch_size`` examples);
* a larger held-out evaluation of the saved model (``--eval_batches`` batches, default
  32, i.e. 1024 examples or 32 x 32 text chunks), which is the figure checked against
  the target (held-out data is the same for every run with the same seed).

It prints a markdown table and writes ``results.json`` (and the run directories) under
``--out``. Exit status: 0 if every row met its target, 1 otherwise.

``--threads N`` sets ``OMP_NUM_THREADS=N`` for the commands (default: leave the
environment as it is). On a busy 2-core machine PyTorch's two intra-op threads on these
tiny models wait on each other and a step took 6 to 8 times longer than with one
(see docs/tasks.md).
"""

import argparse
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Command:
    """One documented command and its target.

    Args:
        name: Row name (``--only`` picks rows by it).
        options: ``attnlab train`` options (TrainConfig fields) beyond the defaults.
        metric: The held-out metric the target is about.
        goal: ``">="`` or ``"<="``.
        threshold: The target value of ``metric``.
        seconds: Wall-time limit of the target (None: none, only "reasonable").
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    metric: str = "seq_acc"
    goal: str = ">="
    threshold: float = 0.99
    seconds: float | None = None

    def args(self) -> list[str]:
        """The command-line options, in the order given."""
        out: list[str] = []
        for key, value in self.options.items():
            out += [f"--{key}", str(value)]
        return out

    def command(self) -> str:
        """The command a user types."""
        return shlex.join(["uv", "run", "attnlab", "train", *self.args()])

    def met(self, value: float) -> bool:
        """Whether ``value`` meets the metric target."""
        return value >= self.threshold if self.goal == ">=" else value <= self.threshold


# The documented command of every task: the one table this script runs and the README shows.
COMMANDS: tuple[Command, ...] = (
    Command("reverse", {}, "seq_acc", ">=", 0.99, seconds=180),  # the default command
    Command("copy", {"task": "copy"}, "seq_acc", ">=", 0.99),
    Command("sort", {"task": "sort"}, "seq_acc", ">=", 0.95),
    Command("recall", {"task": "recall", "learning_rate": 0.002, "epochs": 1000},
            "seq_acc", ">=", 0.95),
    Command("dates", {"task": "dates"}, "seq_acc", ">=", 0.95),
    Command("text", {"task": "text", "seq_length": 64, "embed_dim": 128, "num_layers": 4,
                     "learning_rate": 0.002, "epochs": 150},
            "bits_per_char", "<=", 2.2, seconds=600),
)


class LoadSampler:
    """Samples the 1-minute load average every ``every`` seconds in a thread."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.samples: list[float] = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        """Mean, min and max of the samples."""
        s = self.samples
        return {"mean": round(sum(s) / len(s), 2), "min": round(min(s), 2),
                "max": round(max(s), 2)}


def machine(threads: int | None) -> dict[str, Any]:
    """What the runs ran on."""
    from attnlab.bench.harness import environment

    env = environment()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    return {"cpus": env["cores"], "cpu_model": env["cpu"], "python": env["python"],
            "torch": env["torch"], "cuda": env["gpu"],
            "omp_num_threads": str(threads) if threads else os.environ.get("OMP_NUM_THREADS"),
            "commit": commit, "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def run_one(cmd: Command, out: Path, threads: int | None, eval_batches: int,
            timeout: float) -> dict[str, Any]:
    """Run one command; return its row of results."""
    from attnlab.training.run import evaluate
    from attnlab.visualize.curves import read_metrics

    run_dir = out / cmd.name
    if run_dir.exists():  # a fresh run, never a continuation of an old one
        shutil.rmtree(run_dir)
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    argv = [sys.executable, "-m", "attnlab", "train", *cmd.args(), "--out", str(run_dir)]
    print(f"\n=== {cmd.name}: {cmd.command()}", flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    log = out / f"{cmd.name}.log"
    with LoadSampler() as load, open(log, "w") as handle:
        try:
            proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=handle,
                                  stderr=subprocess.STDOUT, timeout=timeout)
            returncode = proc.returncode
        except subprocess.TimeoutExpired:
            returncode = None
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    row: dict[str, Any] = {"name": cmd.name, "command": cmd.command(), "options": cmd.options,
                           "metric": cmd.metric, "target": f"{cmd.goal} {cmd.threshold}",
                           "time_limit_s": cmd.seconds, "returncode": returncode,
                           "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                           "load": load.summary(), "log": str(log)}
    lines = read_metrics(run_dir) if (run_dir / "metrics.jsonl").is_file() else []
    if returncode != 0 or not lines:
        row.update(steps=None, value=None, met=False,
                   error="timed out" if returncode is None else f"exit status {returncode}")
        print(f"    FAILED ({row['error']}); see {log}", flush=True)
        return row
    last = lines[-1]
    row.update(steps=last["step"], train_s=round(last["seconds"], 1),
               run_eval={k: v for k, v in last.items()
                         if k not in ("step", "epoch", "lr", "seconds", "train_loss")},
               curve=[[x["step"], x.get(cmd.metric)] for x in lines])
    held_out = evaluate(str(run_dir), device="cpu", batches=eval_batches)
    value = held_out[cmd.metric]
    in_time = cmd.seconds is None or wall <= cmd.seconds
    row.update(held_out=held_out, eval_batches=eval_batches, value=value,
               metric_met=cmd.met(value), in_time=in_time, met=cmd.met(value) and in_time)
    print(f"    {cmd.metric} {value:.4f} (target {cmd.goal} {cmd.threshold}), wall {wall:.0f} s, "
          f"CPU {cpu:.0f} s, load {row['load']['mean']}: {'met' if row['met'] else 'MISSED'}",
          flush=True)
    return row


def fmt_metric(metric: str, value: float | None) -> str:
    """A metric for the table: accuracies in percent, bits per char as is."""
    if value is None:
        return "—"
    return f"{value:.3f}" if metric == "bits_per_char" else f"{100 * value:.1f}%"


def markdown(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    """The results as a markdown table, with the machine under it."""
    head = ("| task | command | steps | wall (s) | CPU (s) | load avg (mean / max) "
            "| held-out metric | target | met |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        target = f"{r['target'].replace('>=', '≥').replace('<=', '≤')}"
        if r["metric"] != "bits_per_char":
            target = target.split()[0] + " " + fmt_metric(r["metric"], float(target.split()[1]))
        target = f"{r['metric']} {target}"
        if r["time_limit_s"]:
            target += f", < {r['time_limit_s'] / 60:g} min"
        met = "yes" if r["met"] else "**no**"
        value = fmt_metric(r["metric"], r.get("value"))
        lines.append(
            f"| {r['name']} | `{r['command']}` | {r.get('steps') or '—'} | {r['wall_s']:.0f} "
            f"| {r['cpu_s']:.0f} | {r['load']['mean']:.1f} / {r['load']['max']:.1f} "
            f"| {value} | {target} | {met} |")
    lines.append("")
    lines.append(f"{info['cpus']} CPUs ({info['cpu_model']}), Python {info['python']}, "
                 f"torch {info['torch']}, OMP_NUM_THREADS={info['omp_num_threads'] or 'unset'}, "
                 f"commit {info['commit']}, {info['date']}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="TASK",
                        choices=[c.name for c in COMMANDS], help="run only these rows")
    parser.add_argument("--out", default="runs/task-targets",
                        help="where the run directories, logs and results.json go")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS for the commands (default: inherited)")
    parser.add_argument("--eval_batches", type=int, default=32,
                        help="held-out batches of the final evaluation (default 32)")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds after which a command is stopped (default 1800)")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # the final evaluations, in this process
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = machine(args.threads)
    chosen = [c for c in COMMANDS if not args.only or c.name in args.only]
    rows = []
    with LoadSampler(every=10.0) as load:
        for cmd in chosen:
            rows.append(run_one(cmd, out, args.threads, args.eval_batches, args.timeout))
            (out / "results.json").write_text(json.dumps(
                {"machine": info, "commands": [asdict(c) for c in chosen], "rows": rows},
                indent=2) + "\n")
    info["load_during_runs"] = load.summary()
    table = markdown(rows, info)
    (out / "results.json").write_text(json.dumps(
        {"machine": info, "commands": [asdict(c) for c in chosen], "rows": rows,
         "markdown": table}, indent=2) + "\n")
    print("\n" + table)
    print(f"\nload average during the runs: {info['load_during_runs']}; "
          f"results in {out / 'results.json'}")
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
