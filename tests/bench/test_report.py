"""The benchmark report's plot: one panel per case, attnlab against its peers, written whole."""

import os

import pytest
from matplotlib.figure import Figure

from attnlab.bench import harness, report


def _row(suite, case, n, contender, ms, *, mib=None, condition="alone"):
    return {"suite": suite, "case": case, "n": n, "contender": contender,
            "time_ms": {"median": ms}, "memory_mib": mib, "condition": condition}


def _results():
    rows = []
    for condition, slow in (("alone", 1.0), ("busy", 1.5)):
        for n in (256, 512):
            rows.append(_row("sdpa", "plain fwd", n, "torch SDPA", 4.0 * n / 256 * slow,
                             condition=condition))
            rows.append(_row("sdpa", "plain fwd", n, "attnlab", 2.0 * n / 256 * slow,
                             condition=condition))
    for n, mib in ((1024, 3.0), (4096, 0.01)):
        rows.append(_row("long", "causal fwd", n, "attnlab", n / 100, mib=mib))
    rows.append(_row("train", "step", None, "attnlab", 300.0))  # no N: no panel
    rows.append(_row("mha", "train", 2048, "attnlab", 200.0))  # one N: no line, no panel
    return {"meta": {"profile": "tiny", "environment": harness.environment()}, "rows": rows}


def _panels(fig):
    """(title, axes) of every visible panel, subfigures included, in drawing order."""
    figures = fig.subfigs or [fig]
    return [(ax.get_title(), ax) for sub in figures for ax in sub.axes if ax.get_visible()]


def test_panels_group_lines_by_case():
    cases = report.panels(_results())
    assert list(cases) == ["sdpa · plain fwd", "long · causal fwd"]
    assert set(cases["sdpa · plain fwd"]) == {("torch SDPA", "alone"), ("attnlab", "alone"),
                                              ("torch SDPA", "busy"), ("attnlab", "busy")}
    assert cases["long · causal fwd"] == {("attnlab", "alone"): [(1024, 10.24, 3.0),
                                                                 (4096, 40.96, 0.01)]}


def test_one_panel_per_case_then_memory():
    fig = report.figure(_results())
    titles = [title for title, _ in _panels(fig)]
    assert titles == ["sdpa · plain fwd", "long · causal fwd", "long · causal fwd"]
    sdpa, long_time, long_memory = (ax for _, ax in _panels(fig))
    assert len(sdpa.lines) == 4  # 2 contenders x (alone, busy)
    assert sorted(line.get_linestyle() for line in sdpa.lines) == ["-", "-", "--", "--"]
    assert len(long_time.lines) == 1
    assert list(long_memory.lines[0].get_ydata()) == [3.0, 0.1]  # < 0.1 MiB drawn at 0.1
    corner = [text.get_text() for text in sdpa.texts]
    assert corner == ["torch SDPA / attnlab: 2.00× at 512\n"
                      "torch SDPA (busy) / attnlab: 2.00× at 512"]
    assert len(long_time.texts) == 0  # no peer, no ratio
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert legend == ["attnlab", "torch SDPA", "alone", "busy (other work)"]
    # attnlab keeps one colour in every panel
    colours = {line.get_color() for _, ax in _panels(fig) for line in ax.lines
               if line.get_linewidth() > 2}
    assert len(colours) == 1


def test_nothing_to_plot():
    results = {"meta": {}, "rows": [_row("train", "step", None, "attnlab", 1.0)]}
    assert report.figure(results) is None
    assert report.plot(results, "never-written.png") is False
    assert not os.path.exists("never-written.png")


def test_a_failing_plot_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "scaling.png"
    path.write_bytes(b"the previous plot")

    def broken(self, handle, **kwargs):
        handle.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(OSError, match="No space left"):
        report.plot(_results(), path)
    assert path.read_bytes() == b"the previous plot"
    assert os.listdir(tmp_path) == ["scaling.png"]
