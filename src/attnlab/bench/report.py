"""Results as a markdown table and as a log-log plot of time and memory against N."""

from collections import defaultdict
from pathlib import Path


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


def series(results: dict) -> dict[str, list[tuple[int, float, float | None]]]:
    """``"bench: case-family · contender" -> [(N, ms, MiB)]`` for lines with 2+ lengths.

    The case family is the case name; rows of one family at different N form a line.
    """
    lines: dict[str, list[tuple[int, float, float | None]]] = defaultdict(list)
    for row in results["rows"]:
        if row["n"] is None:
            continue
        label = f"{row['suite']}: {row['case']} · {row['contender']}"
        if row.get("condition", "alone") != "alone":
            label += f" ({row['condition']})"
        lines[label].append((row["n"], row["time_ms"]["median"], row["memory_mib"]))
    return {label: sorted(points) for label, points in lines.items() if len(points) > 1}


def plot(results: dict, path: Path) -> bool:
    """Write the log-log plot of time and peak memory against N; False if nothing to plot.

    One colour per line, one line style per benchmark, one legend for both panels.
    Peak memory below 0.1 MiB (nothing beyond the inputs) is drawn at 0.1 MiB.
    """
    lines = series(results)
    if not lines:
        return False
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 8.5))  # no pyplot: nothing global changes (as in visualize)
    FigureCanvasAgg(fig)
    ax_time, ax_mem = fig.subplots(1, 2)
    colours = colormaps["tab20"].colors + colormaps["tab20b"].colors
    styles = {suite: style for suite, style in zip(
        dict.fromkeys(label.split(":")[0] for label in lines), ["-", "--", "-.", ":"] * 4,
        strict=False)}
    for index, (label, points) in enumerate(lines.items()):
        look = {"color": colours[index % len(colours)], "marker": "o", "markersize": 4,
                "linestyle": styles[label.split(":")[0]]}
        ax_time.plot([p[0] for p in points], [p[1] for p in points], label=label, **look)
        memory = [(p[0], max(p[2], 0.1)) for p in points if p[2] is not None]
        if len(memory) > 1:
            ax_mem.plot(*zip(*memory, strict=True), **look)
    for ax, what in ((ax_time, "time per call (ms)"),
                     (ax_mem, "peak memory added by the call (MiB; < 0.1 drawn at 0.1)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length N")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    fig.legend(*ax_time.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8,
               frameon=False)
    env = results["meta"]["environment"]
    fig.suptitle(f"attnlab benchmarks ({results['meta']['profile']}): {env['cpu']}, "
                 f"{env['torch_threads']} threads, torch {env['torch']}")
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    fig.savefig(path, dpi=110)
    return True
