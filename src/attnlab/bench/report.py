"""Results as a markdown table, and as small multiples of time and memory against N."""

import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _range(stats: dict, digits: int = 1) -> str:
    return (f"{stats['median']:.{digits}f} ({stats['low']:.{digits}f}–"
            f"{stats['high']:.{digits}f})")


def _row_cells(row: dict) -> list[str]:
    if row["is_peer"]:
        speedup = "peer"
    elif row["speedup"] is not None:
        speedup = _range(row["speedup"], 2) + "×"
        if row.get("ratio_of_medians") is not None:
            speedup += f"; {row['ratio_of_medians']:.2f}× by medians"
    else:
        speedup = ""
    target = f"≥ {row['target']:g}×" if row["target"] is not None else ""
    if target and row.get("versus"):
        target += f" {row['versus']}"
    met = {True: "yes", False: "**no**", None: ""}[row["met"]]
    rate = ""
    if row["gflops"] is not None:
        rate = f"{row['gflops']:.1f}"
        if row["ceiling_fraction"] is not None:
            rate += f" ({100 * row['ceiling_fraction']:.0f}% of {row['ceiling_gflops']:.0f})"
    if row["tokens_per_s"] is not None:
        rate = (rate + " · " if rate else "") + f"{row['tokens_per_s']:.0f} tok/s"
    memory = f"{row['memory_mib']:.0f}" if row["memory_mib"] is not None else ""
    diff = f"{row['max_abs_diff']:.1e}" if row["max_abs_diff"] is not None else ""
    return [row["suite"], row["case"], row.get("condition", "alone"),
            "" if row["n"] is None else str(row["n"]),
            row["contender"], row["path"], _range(row["time_ms"]), speedup, target, met, rate,
            memory, diff, "; ".join(row["notes"])]


HEADER = ["bench", "case", "other work", "N", "contender", "path", "ms: median (min–max)",
          "speed-up vs peer: paired (min–max); by medians", "target", "met",
          "GFLOP/s (% of ceiling) · tok/s", "peak MiB", "max abs Δ", "notes"]


def markdown(results: dict) -> str:
    """The table, preceded by the machine, the load and the matmul ceiling."""
    meta = results["meta"]
    env = meta["environment"]
    ceiling = meta.get("ceiling_before")
    after = meta.get("ceiling_after")
    lines = [
        f"Machine: {env['cpu']}, {env['cores']} cores, {env['torch_threads']} torch threads, "
        f"torch {env['torch']}, GPU: {'yes' if env['gpu'] else 'none (not measured)'}"
        + "".join(f", {k}={v}" for k, v in env.get("env", {}).items()) + ".",
        f"Load average (1/5/15 min) before: {_load(meta.get('load_before'))}, after: "
        f"{_load(meta.get('load_after'))}.",
    ]
    if ceiling:
        text = f"fp32 matmul ceiling: {_range(ceiling)} GFLOP/s before"
        if after:
            text += f", {_range(after)} after"
        lines.append(text + ". Each case with FLOPs also times this matmul in every round: "
                     "'% of X' is the fraction of the X GFLOP/s measured alongside it.")
    if meta.get("isolated"):
        lines.append("Each case ran in a fresh process that imports torch first; 'other work' "
                     "busy = another process spinning on a core for the case's whole run.")
    lines += [f"Profile: {meta['profile']}. Speed-up = peer time / contender time per "
              "interleaved round: median (min–max) of those paired ratios, then the ratio of "
              "the medians; > 1 is faster. Targets hold at the issue's sizes only.", ""]
    lines.append("| " + " | ".join(HEADER) + " |")
    lines.append("|" + "---|" * len(HEADER))
    for row in results["rows"]:
        lines.append("| " + " | ".join(_row_cells(row)) + " |")
    skipped = meta.get("skipped") or []
    if skipped:
        lines += ["", "Skipped:", *(f"- {line}" for line in skipped)]
    return "\n".join(lines) + "\n"


def _load(load: object) -> str:
    if not load:
        return "unknown"
    return " / ".join(f"{x:.2f}" for x in load)  # type: ignore[union-attr]


#: One line of a panel: (contender, condition), e.g. ``("attnlab", "busy")``.
Line = tuple[str, str]
#: ``"suite · case" -> {line: [(N, median ms, peak MiB or None)]}``.
Panels = dict[str, dict[Line, list[tuple[int, float, float | None]]]]


def panels(results: dict) -> Panels:
    """The lines of the plot, grouped by case: one panel per case, one line per contender.

    Rows of one case, contender and condition (alone, or with other work on the
    machine) at different N form a line; a line needs two lengths, and a case
    without any line has no panel.

    Example:
        >>> row = {"suite": "sdpa", "case": "plain fwd", "contender": "attnlab",
        ...        "time_ms": {"median": 2.0}, "memory_mib": None}
        >>> panels({"rows": [{**row, "n": 256}, {**row, "n": 512}]})
        {'sdpa · plain fwd': {('attnlab', 'alone'): [(256, 2.0, None), (512, 2.0, None)]}}
    """
    grouped: Panels = defaultdict(lambda: defaultdict(list))
    for row in results["rows"]:
        if row["n"] is not None:
            line = (row["contender"], row.get("condition", "alone"))
            grouped[f"{row['suite']} · {row['case']}"][line].append(
                (row["n"], row["time_ms"]["median"], row["memory_mib"]))
    out: Panels = {}
    for case, lines in grouped.items():
        kept = {line: sorted(points) for line, points in lines.items() if len(points) > 1}
        if kept:
            out[case] = kept
    return out


#: attnlab is drawn in this colour in every panel, thick and under its peers' thin lines
#: (so a peer at parity shows as a line inside attnlab's).
OURS = "attnlab"
_OURS_COLOUR = "#d62728"
_PEER_COLOURS = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#ff7f0e", "#17becf", "#7f7f7f",
                 "#bcbd22", "#e377c2"]


def plot(results: dict, path: Path) -> bool:
    """Write :func:`figure` to ``path`` as a PNG, atomically; False if nothing to plot."""
    from .._io import atomic_write

    fig = figure(results)
    if fig is None:
        return False
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=110))
    return True


def figure(results: dict) -> "Figure | None":
    """Small multiples of time and peak memory against N; None if nothing to plot.

    One log-log panel per case: attnlab against the peers timed in the same rounds,
    with each peer's time over attnlab's at the largest N written in the corner
    (> 1: attnlab is faster); then one panel of peak memory per case that measured
    it. A contender keeps its colour in every panel; a run with other work on the
    machine is dashed. Peak memory below 0.1 MiB (nothing beyond the inputs) is drawn
    at 0.1 MiB.
    """
    cases = panels(results)
    if not cases:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    memory: Panels = {}
    for case, lines in cases.items():
        drawn = {line: [(n, max(mib, 0.1), None) for n, _, mib in points if mib is not None]
                 for line, points in lines.items()}
        drawn = {line: points for line, points in drawn.items() if len(points) > 1}
        if drawn:
            memory[case] = drawn
    names = list(dict.fromkeys(name for lines in cases.values() for name, _ in lines))
    peers = [name for name in names if name != OURS]
    colour = {name: _PEER_COLOURS[i % len(_PEER_COLOURS)] for i, name in enumerate(peers)}
    colour[OURS] = _OURS_COLOUR

    columns = min(3, max(len(cases), len(memory)))
    time_rows, memory_rows = -(-len(cases) // columns), -(-len(memory) // columns)
    fig = Figure(figsize=(3.9 * columns, 2.9 * (time_rows + memory_rows) + 1.6),
                 layout="constrained")  # no pyplot: nothing global changes (as in visualize)
    FigureCanvasAgg(fig)
    parts = (fig.subfigures(2, 1, height_ratios=[time_rows + 0.25, memory_rows + 0.25])
             if memory else [fig.subfigures(1, 1)])
    _grid(parts[0], cases, columns, colour, "time per call (ms), median of the rounds; "
                                            "in the corner: peer's time / attnlab's at the "
                                            "largest N (> 1: attnlab faster)", ratios=True)
    if memory:
        _grid(parts[1], memory, columns, colour,
              "peak memory added by the call (MiB; < 0.1 drawn at 0.1)", ratios=False)
    handles = [Line2D([], [], color=colour[name], marker="o", markersize=4,
                      **_look(name), label=name) for name in (OURS, *peers) if name in names]
    conditions = sorted({c for lines in cases.values() for _, c in lines} - {"alone"})
    if conditions:
        handles += [Line2D([], [], color="black", label="alone")]
        handles += [Line2D([], [], color="black", linestyle="--", label=f"{c} (other work)")
                    for c in conditions]
    env = results["meta"]["environment"]
    fig.suptitle(f"attnlab against its peers, case by case ({results['meta']['profile']} "
                 f"profile): {env['cpu']}, {env['torch_threads']} threads, torch "
                 f"{env['torch']}; log-log, lower is better", fontsize=12)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 8),
               fontsize=10, frameon=False)
    return fig


def _look(name: str) -> dict:
    """How a contender's line looks: attnlab thick and underneath, peers thin on top."""
    return {"linewidth": 3.2, "alpha": 0.8, "zorder": 2} if name == OURS else \
        {"linewidth": 1.3, "zorder": 3}


def _grid(fig: Any, cases: Panels, columns: int, colour: dict[str, str], what: str, *,
          ratios: bool) -> None:
    """One log-log panel per case on ``fig`` (a figure or subfigure): value against N."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    rows = -(-len(cases) // columns)
    axes = fig.subplots(rows, columns, squeeze=False)
    fig.suptitle(what, fontsize=11)
    for ax, (case, lines) in zip(axes.flat, cases.items(), strict=False):
        for (name, condition), points in lines.items():
            ax.plot([p[0] for p in points], [p[1] for p in points], color=colour[name],
                    marker="o", markersize=4, linestyle="-" if condition == "alone" else "--",
                    **_look(name))
        ax.set_yscale("log")
        text = _ratios(lines) if ratios else ""
        if text:  # above the lines: the log range grows by 12% per line of text
            low, high = ax.get_ylim()
            ax.set_ylim(low, high * (high / low) ** (0.12 * (text.count("\n") + 1)))
            ax.text(0.03, 0.96, text, transform=ax.transAxes, ha="left", va="top",
                    fontsize=8.5, linespacing=1.3)
        lengths = sorted({p[0] for points in lines.values() for p in points})
        ax.set_title(case, fontsize=10)
        ax.set_xscale("log", base=2)
        ax.set_xticks(lengths, [_length(n) for n in lengths])
        ax.minorticks_off()
        low, high = ax.get_ylim()
        decades = math.log10(high / low)  # label every decade, or 1-2-5, or finer when narrow
        subs = (1.0,) if decades > 3 else (1.0, 2.0, 5.0) if decades > 1.2 else \
            (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.tick_params(labelsize=9)
        ax.set_xlabel("sequence length N", fontsize=9, labelpad=1)
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(cases):]:
        ax.set_visible(False)


def _ratios(lines: dict[Line, list[tuple[int, float, float | None]]]) -> str:
    """``"torch SDPA / attnlab: 1.01× at 2k"`` per peer line (by medians), one per row.

    Example:
        >>> _ratios({("torch SDPA", "alone"): [(512, 3.0, None), (1024, 9.0, None)],
        ...          ("attnlab", "alone"): [(512, 2.0, None), (1024, 6.0, None)]})
        'torch SDPA / attnlab: 1.50× at 1024'
    """
    text = []
    for (name, condition), points in lines.items():
        ours = dict((n, ms) for n, ms, _ in lines.get((OURS, condition), []))
        shared = [(n, ms) for n, ms, _ in points if n in ours]
        if name == OURS or not shared:
            continue
        n, ms = shared[-1]
        when = "" if condition == "alone" else f" ({condition})"
        text.append(f"{name}{when} / attnlab: {ms / ours[n]:.2f}× at {_length(n)}")
    return "\n".join(text)


def _length(n: int) -> str:
    """A sequence length as a tick label: ``512``, ``2k``, ``64k``."""
    return f"{n // 1024}k" if n >= 2048 and n % 1024 == 0 else str(n)
