"""Run benchmark suites: measure each case, then write the table, the JSON and the plot.

A suite is a module of this package with ``DESCRIPTION`` and
``cases(profile) -> list[Case]``, listed in :data:`SUITES`. Profiles scale
every suite at once: ``full`` (the issue's sizes), ``quick`` (smaller sizes,
fewer repeats, a few minutes) and ``tiny`` (seconds; what the tests run).
"""

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .._io import atomic_write
from .._openmp import user_environment
from .harness import (
    Case,
    Contender,
    Stats,
    environment,
    load_average,
    matmul_ceiling,
    paired_ratios,
    peak_memory_mib,
    time_interleaved,
)
from .isolate import CONDITIONS, rows_from_json, run_isolated, under

#: Suite name -> module of this package, in run order.
SUITES = {
    "sdpa": "sdpa", "mha": "mha", "window": "window", "long": "long",
    "train": "train", "generate": "generate", "smollm2": "smollm2",
}


@dataclass(frozen=True)
class Profile:
    """How big and how often: ``name`` picks the sizes inside each suite."""

    name: str
    repeats: int
    warmup: int
    ceiling_size: int


PROFILES = {
    "full": Profile("full", repeats=7, warmup=1, ceiling_size=2048),
    "quick": Profile("quick", repeats=3, warmup=1, ceiling_size=1024),
    "tiny": Profile("tiny", repeats=2, warmup=0, ceiling_size=128),
}


@dataclass
class Row:
    """One contender's figures in one case (a line of the table)."""

    suite: str
    case: str
    n: int | None
    contender: str
    path: str
    is_peer: bool
    time_ms: Stats
    speedup: Stats | None = None
    target: float | None = None
    versus: str | None = None  # the contender the target is judged against (None: the peer)
    met: bool | None = None
    gflops: float | None = None
    ceiling_fraction: float | None = None
    ceiling_gflops: float | None = None
    ratio_of_medians: float | None = None
    tokens_per_s: float | None = None
    memory_mib: float | None = None
    max_abs_diff: float | None = None
    tolerance: float | None = None
    notes: list[str] = field(default_factory=list)
    condition: str = "alone"


CEILING = "fp32 matmul (ceiling)"


def _ceiling_contender(size: int) -> Contender:
    """A ``size``² fp32 matmul, timed in the same rounds as a case's contenders."""
    a, b, out = torch.randn(size, size), torch.randn(size, size), torch.empty(size, size)
    return Contender(CEILING, lambda: torch.mm(a, b, out=out))


def _timed_peak(fn: Callable[[], object]) -> tuple[float, float | None]:
    """One call: its seconds and the peak memory it added (for calls too slow to repeat)."""
    start = time.perf_counter()
    mib = peak_memory_mib(fn)
    return time.perf_counter() - start, mib


def _target_versus(row: Row, contender: Contender, times: dict[str, list[float]]) -> None:
    """Judge ``contender.target`` against ``contender.versus`` (paired), said in a note."""
    other, target = contender.versus, contender.target
    if other not in times:
        row.notes.append(f"target ≥ {target:g}× {other}: not judged, {other} did not run")
        return
    ratio = paired_ratios(times[other], times[contender.name]).median
    row.met = row.met is not False and ratio >= target
    row.notes.append(f"{ratio:.2f}× {other} (paired; target ≥ {target:g}× {other})")


class Skipped(Exception):
    """A case with nothing to time (a peer it needs is not installed); the message says why."""


def run_case(case: Case, profile: Profile) -> list[Row]:
    """Measure one case: interleaved timing, ratios, FLOP rate vs the ceiling, memory, accuracy.

    When the case states its FLOPs, an fp32 matmul runs in every round too, so
    the fraction of the ceiling compares rates measured under the same load.
    A case with ``repeats=1`` and ``memory`` is one call per contender, timed and
    measured at once (for calls of a minute or more).

    Raises:
        Skipped: If the case's ``make()`` gave no contenders (its notes say why).
    """
    setup = case.make()
    if not setup.contenders:
        raise Skipped("; ".join(setup.notes) or "no contenders")
    repeats = case.repeats if case.repeats is not None else profile.repeats
    if profile.name == "tiny":
        repeats = min(repeats, profile.repeats)
    contenders = list(setup.contenders)
    if case.flops is not None:
        contenders.append(_ceiling_contender(profile.ceiling_size))
    warmup = profile.warmup
    memory: dict[str, float | None] = {}
    if case.memory and repeats == 1:
        times: dict[str, list[float]] = {}
        for contender in contenders:
            seconds, memory[contender.name] = _timed_peak(contender.fn)
            times[contender.name] = [seconds]
    else:
        if case.memory:  # the first call of each contender: measures memory and warms up
            memory = {c.name: peak_memory_mib(c.fn) for c in setup.contenders}
            warmup = max(0, warmup - 1)
        times = time_interleaved(contenders, repeats=repeats, warmup=warmup)
    ceiling = None
    if case.flops is not None:
        ceiling = 2 * profile.ceiling_size**3 / Stats.of(times[CEILING]).median / 1e9
    diff = setup.check() if setup.check is not None else None
    names = [c.name for c in setup.contenders]
    if isinstance(diff, dict) and not set(diff) <= set(names):
        raise ValueError(f"check() names contenders the case does not have: "
                         f"{sorted(set(diff) - set(names))}; contenders: {names}")
    peer = case.peer if case.peer in names else None
    rows = []
    for contender in setup.contenders:
        samples = times[contender.name]
        seconds = Stats.of(samples).median
        row = Row(case.suite, case.name, case.n, contender.name, contender.path,
                  is_peer=contender.name == peer, time_ms=Stats.of(samples).scaled(1e3),
                  target=contender.target, versus=contender.versus,
                  notes=list(setup.notes) if not rows else [])
        if peer is not None and contender.name != peer:
            row.speedup = paired_ratios(times[peer], samples)
            row.ratio_of_medians = Stats.of(times[peer]).median / seconds
            if contender.target is not None and contender.versus is None:
                row.met = row.speedup.median >= contender.target
            mine = diff.get(contender.name) if isinstance(diff, dict) else diff
            if mine is not None:
                row.max_abs_diff, row.tolerance = mine, setup.tolerance
                if setup.tolerance is not None and mine > setup.tolerance:
                    row.met = False
                    row.notes.append(f"differs from {peer} by {mine:.2g} > {setup.tolerance:g}")
        if contender.target is not None and contender.versus is not None:
            _target_versus(row, contender, times)
        if case.flops is not None and ceiling is not None:
            row.gflops = case.flops / seconds / 1e9
            row.ceiling_gflops = ceiling
            row.ceiling_fraction = row.gflops / ceiling
        if case.tokens is not None:
            row.tokens_per_s = case.tokens / seconds
        row.memory_mib = memory.get(contender.name)
        rows.append(row)
    del setup
    return rows


def load_suite(name: str):  # noqa: ANN201 (a module)
    """The suite module for ``name``.

    Raises:
        ValueError: For an unknown name (listing the valid ones).
    """
    if name not in SUITES:
        raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(SUITES)}")
    return importlib.import_module(f"{__package__}.{SUITES[name]}")


def run(only: Sequence[str] | None = None, *, profile: str = "full", out: str | Path | None = None,
        threads: int | None = None, log: Callable[[str], None] | None = None,
        isolate: bool = True, conditions: Sequence[str] = ("alone", "busy")) -> dict:
    """Run the suites (all, or ``only`` those); return the results as a JSON-ready dict.

    Args:
        only: Suite names (see :data:`SUITES`); None runs all.
        profile: ``"full"``, ``"quick"`` or ``"tiny"``.
        out: Directory for ``results.json``, ``results.md`` and ``scaling.png``
            (created); None writes nothing.
        threads: ``torch.set_num_threads`` for the run (default: PyTorch's choice).
        log: Called with one line per finished case (progress); default stderr.
        isolate: Each case in a fresh process that imports torch first (as users
            run; see :mod:`attnlab.bench.isolate`); False runs them all in this one.
        conditions: Run every case under each: ``"alone"``, and ``"busy"`` (another
            process spinning on a core for the case's whole run).

    Raises:
        ValueError: For an unknown suite, profile or condition, or ``threads < 1``.
    """
    from .report import markdown, plot

    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
    chosen = PROFILES[profile]
    names = list(SUITES) if not only else list(dict.fromkeys(only))
    conditions = list(dict.fromkeys(conditions))
    if not conditions or not set(conditions) <= set(CONDITIONS):
        raise ValueError(f"conditions must be among {', '.join(CONDITIONS)}, got {conditions}")
    suites = {name: load_suite(name) for name in names}
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    cases_env = user_environment() if isolate else None  # the fresh processes' environment
    meta: dict = {"profile": profile, "suites": names, "environment": environment(cases_env),
                  "load_before": load_average(), "isolated": isolate,
                  "conditions": conditions}
    ceiling = matmul_ceiling(chosen.ceiling_size)
    log(f"matmul ceiling: {ceiling.median:.1f} GFLOP/s (fp32, {chosen.ceiling_size}², "
        f"{torch.get_num_threads()} threads; load {meta['load_before']})")
    rows: list[Row] = []
    skipped: list[str] = []
    for name, suite in suites.items():
        for index, case in enumerate(suite.cases(chosen)):
            for condition in conditions:
                try:
                    case_rows = _measure(name, index, case, chosen, threads, condition, isolate)
                except Skipped as why:
                    skipped.append(f"{case.suite} · {case.name}: {why}")
                    log(f"[{case.suite}] {case.name}: {why}")
                    break
                rows.extend(case_rows)
                log(_progress(case_rows))
    ceiling_after = matmul_ceiling(chosen.ceiling_size)
    meta.update(ceiling_before=asdict(ceiling), ceiling_after=asdict(ceiling_after),
                load_after=load_average(), skipped=skipped)
    results = {"meta": meta, "rows": [asdict(row) for row in rows]}
    table = markdown(results)
    results["table"] = table
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / "results.json", json.dumps(results, indent=1))
        atomic_write(folder / "results.md", table)
        if plot(results, folder / "scaling.png"):
            results["plot"] = str(folder / "scaling.png")
    return results


def _measure(suite: str, index: int, case: Case, profile: Profile, threads: int | None,
             condition: str, isolate: bool) -> list[Row]:
    """One case under one condition, in a fresh process or in this one."""
    if isolate:
        result = run_isolated(suite, index, profile.name, threads, condition)
        if "skipped" in result:
            raise Skipped(result["skipped"])
        rows = rows_from_json(result["rows"])
    else:
        with under(condition):
            rows = run_case(case, profile)
    for row in rows:
        row.condition = condition
    return rows


def _progress(rows: list[Row]) -> str:
    parts = []
    for row in rows:
        text = f"{row.contender} {row.time_ms.median:.1f} ms"
        if row.speedup is not None:
            text += f" ({row.speedup.median:.2f}x)"
        parts.append(text)
    head = rows[0]
    n = f" N={head.n}" if head.n is not None else ""
    return f"[{head.suite}] {head.case}{n} ({head.condition}): " + ", ".join(parts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``attnlab bench``."""
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(SUITES),
                        help=f"run only these benchmarks: {', '.join(SUITES)}")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes and fewer repeats (minutes, not tens of minutes)")
    parser.add_argument("--profile", choices=list(PROFILES), default=None,
                        help="full (default), quick (= --quick) or tiny (seconds; for tests)")
    parser.add_argument("--out", metavar="DIR", default="bench-results",
                        help="where results.json, results.md and scaling.png go "
                             "(default: bench-results)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch threads (default: PyTorch's choice)")
    parser.add_argument("--in-process", action="store_true",
                        help="run every case in this process (default: each in a fresh "
                             "process that imports torch first, as users run)")
    parser.add_argument("--conditions", nargs="+", choices=list(CONDITIONS),
                        default=list(CONDITIONS), metavar="WHEN",
                        help="alone and/or busy (another process spinning on a core "
                             "for the whole case); default: both")


def main_with(args: argparse.Namespace) -> int:
    """Run from parsed :func:`add_arguments` options; print the table; exit status."""
    profile = args.profile or ("quick" if args.quick else "full")
    results = run(args.only, profile=profile, out=args.out, threads=args.threads,
                  isolate=not args.in_process, conditions=args.conditions)
    print(results["table"])
    print(f"\nwrote {Path(args.out) / 'results.json'}, results.md"
          + (", scaling.png" if "plot" in results else ""))
    return 0
