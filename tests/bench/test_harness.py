"""The benchmark harness: statistics, interleaving, memory, the report, and every suite's
tiny profile end to end. Nothing here asserts a speed (one test sleeps 2 ms against a
no-op, so that a ratio's side is certain)."""

import importlib.util
import json
import time
from dataclasses import asdict

import pytest
import torch

from attnlab.bench import harness, isolate, report, runner
from attnlab.bench.harness import Contender, Stats, paired_ratios, time_interleaved


def test_stats_median_min_max():
    assert Stats.of([5.0, 1.0, 3.0]) == Stats(3.0, 1.0, 5.0, 3)
    assert Stats.of([4.0, 1.0, 2.0, 3.0]) == Stats(2.5, 1.0, 4.0, 4)  # even: mean of middle two
    assert Stats.of([7]) == Stats(7.0, 7.0, 7.0, 1)
    assert Stats.of([1.0, 3.0]).scaled(1e3) == Stats(2000.0, 1000.0, 3000.0, 2)


def test_stats_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="samples must not be empty"):
        Stats.of([])


def test_paired_ratios_pair_by_repeat():
    # peer/contender per repeat: 2/1=2, 9/3=3, 4/4=1 -> median 2, not median(peer)/median(ours)
    assert paired_ratios([2.0, 9.0, 4.0], [1.0, 3.0, 4.0]) == Stats(2.0, 1.0, 3.0, 3)
    assert paired_ratios([1.0], [4.0]).median == 0.25  # slower than the peer: below 1


@pytest.mark.parametrize(("peer", "ours", "match"), [
    ([1.0, 2.0], [1.0], "same number of repeats"),
    ([1.0], [0.0], "times must be > 0"),
    ([], [], "samples must not be empty"),
])
def test_paired_ratios_errors(peer, ours, match):
    with pytest.raises(ValueError, match=match):
        paired_ratios(peer, ours)


def test_time_interleaved_warms_up_then_rotates_the_order():
    calls = []
    contenders = [Contender(name, lambda name=name: calls.append(name)) for name in "abc"]
    times = time_interleaved(contenders, repeats=4, warmup=2)
    assert calls[:6] == ["a", "a", "b", "b", "c", "c"]  # warm-up, each on its own
    rounds = [calls[6 + 3 * r: 9 + 3 * r] for r in range(4)]
    assert rounds == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert {name: len(t) for name, t in times.items()} == {"a": 4, "b": 4, "c": 4}
    assert all(t > 0 for ts in times.values() for t in ts)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"repeats": 0, "warmup": 0}, "repeats must be >= 1"),
    ({"repeats": 1, "warmup": -1}, "warmup >= 0"),
])
def test_time_interleaved_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        time_interleaved([Contender("a", lambda: None)], **kwargs)
    with pytest.raises(ValueError, match="unique"):
        time_interleaved([Contender("a", lambda: None)] * 2, repeats=1, warmup=0)


def test_peak_memory_sees_torch_allocations():
    mib = harness.peak_memory_mib(lambda: torch.ones(64, 2**20 // 4))  # 64 MiB of float32
    if mib is None:
        pytest.skip("/proc/self/clear_refs is not available here")
    assert 60 <= mib <= 200
    freed = [torch.ones(2**24) for _ in range(2)]  # 2 x 64 MiB, then back to the allocator
    del freed
    again = harness.peak_memory_mib(lambda: torch.ones(2**24))
    assert 60 <= again <= 200  # reused memory is counted too (malloc_trim before the call)
    small = harness.peak_memory_mib(lambda: torch.ones(4))
    assert small is not None
    assert small < 16


def test_matmul_ceiling_is_a_positive_rate():
    ceiling = harness.matmul_ceiling(size=64, repeats=2)
    assert ceiling.count == 2
    assert 0 < ceiling.low <= ceiling.median <= ceiling.high
    with pytest.raises(ValueError, match="size and repeats"):
        harness.matmul_ceiling(size=0)


def _row(**overrides):
    row = runner.Row("sdpa", "plain fwd", 1024, "attnlab", "fused", is_peer=False,
                     time_ms=Stats(10.0, 9.0, 12.0, 3), speedup=Stats(1.02, 0.9, 1.1, 3),
                     target=0.95, met=True, gflops=50.0, ceiling_fraction=0.5,
                     ceiling_gflops=100.0, ratio_of_medians=1.0, max_abs_diff=1e-7,
                     tolerance=1e-5)
    for key, value in overrides.items():
        setattr(row, key, value)
    return runner.asdict(row)


def test_markdown_table_shows_ratios_targets_and_the_ceiling():
    rows = [_row(contender="torch SDPA", is_peer=True, speedup=None, target=None, met=None,
                 max_abs_diff=None), _row(), _row(n=2048, met=False, speedup=Stats(0.5, 0.4,
                                                                                       0.6, 3))]
    results = {"meta": {"profile": "tiny", "environment": harness.environment(),
                        "load_before": (1.0, 2.0, 3.0), "load_after": None,
                        "ceiling_before": runner.asdict(Stats(100.0, 90.0, 110.0, 5))},
               "rows": rows}
    table = report.markdown(results)
    lines = table.splitlines()
    assert "fp32 matmul ceiling: 100.0 (90.0–110.0) GFLOP/s" in table
    assert "before: 1.00 / 2.00 / 3.00, after: unknown" in table
    body = [line for line in lines if line.startswith("| sdpa")]
    assert len(body) == 3
    assert "| peer |" in body[0]
    assert "| 1.02 (0.90–1.10)×; 1.00× by medians | ≥ 0.95× | yes | 50.0 (50% of 100) |" \
        in body[1]
    assert "| 0.50 (0.40–0.60)×; 1.00× by medians | ≥ 0.95× | **no** |" in body[2]
    # one panel per case; the peer has one length only, so it draws no line
    assert report.panels(results) == {"sdpa · plain fwd": {("attnlab", "alone"): [
        (1024, 10.0, None), (2048, 10.0, None)]}}


def test_unknown_suite_or_profile_is_an_error():
    with pytest.raises(ValueError, match="unknown benchmark 'nope'; choose from sdpa"):
        runner.run(["nope"], profile="tiny")
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        runner.run(["sdpa"], profile="huge")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Every suite once, tiny profile, through the same entry point as ``attnlab bench``."""
    out = tmp_path_factory.mktemp("bench")
    pytest.importorskip("transformers")
    lines = []
    results = runner.run(None, profile="tiny", out=out, log=lines.append, isolate=False,
                         conditions=["alone"])
    return results, out, lines


def test_every_suite_produces_rows_and_a_table(tiny_run):
    results, out, lines = tiny_run
    rows = results["rows"]
    assert {row["suite"] for row in rows} == set(runner.SUITES)
    for row in rows:
        assert row["time_ms"]["count"] >= 1
        assert row["time_ms"]["median"] > 0
        if not row["is_peer"] and row["max_abs_diff"] is not None:
            assert row["max_abs_diff"] <= row["tolerance"], row  # attnlab agrees with the peer
    assert any(line.startswith("matmul ceiling:") for line in lines)
    table = (out / "results.md").read_text()
    assert table == results["table"]
    assert table.count("\n| ") == len(rows) + 1  # header + one line per contender
    for module, contender in [("x_transformers", "x-transformers"),
                              ("local_attention", "local-attention")]:
        if importlib.util.find_spec(module) is None:  # the peers group is optional
            assert f"{contender} not installed: skipped" in table
        else:
            assert {row["suite"] for row in rows if row["contender"] == contender}, contender


def test_a_case_whose_peer_is_missing_is_listed_as_skipped(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "x_transformers" else real(name, *a))
    lines = []
    results = runner.run(["train"], profile="tiny", out=tmp_path, log=lines.append,
                         isolate=False, conditions=["alone"])
    assert {row["case"] for row in results["rows"]} == {"GPT-2 shape step B=2 T=16",
                                                        "GPT-2 shape step B=2 T=16 bf16 autocast"}
    assert results["meta"]["skipped"] == [
        "train · GPT-2 shape step B=2 T=16 vs x-transformers: x-transformers not installed: "
        "skipped"]
    assert "Skipped:\n- train · GPT-2 shape step B=2 T=16 vs x-transformers" in results["table"]
    assert any(line.endswith("x-transformers not installed: skipped") for line in lines)


def test_optional_peers_compute_what_attnlab_computes(tiny_run):
    pytest.importorskip("local_attention")
    window = [row for row in tiny_run[0]["rows"] if row["contender"] == "local-attention"]
    assert window
    assert all(row["max_abs_diff"] <= 1e-5 for row in window)  # the same band, exactly


def test_a_check_can_give_each_contender_its_own_difference():
    def make():
        return harness.Setup([Contender("peer", lambda: None), Contender("a", lambda: None),
                              Contender("b", lambda: None)],
                             check=lambda: {"a": 1e-7, "b": 0.5}, tolerance=1e-5)

    profile = runner.PROFILES["tiny"]
    rows = runner.run_case(harness.Case("s", "c", make, peer="peer"), profile)
    by_name = {row.contender: row for row in rows}
    assert by_name["peer"].max_abs_diff is None
    assert by_name["a"].max_abs_diff == 1e-7
    assert by_name["b"].max_abs_diff == 0.5
    assert by_name["b"].met is False
    assert by_name["b"].notes == ["differs from peer by 0.5 > 1e-05"]

    def misspelled():
        return harness.Setup([Contender("peer", lambda: None), Contender("a", lambda: None)],
                             check=lambda: {"A": 0.0})

    with pytest.raises(ValueError, match=r"does not have: \['A'\]; contenders: \['peer', 'a'\]"):
        runner.run_case(harness.Case("s", "c", misspelled, peer="peer"), profile)


def test_the_run_writes_json_and_a_plot(tiny_run):
    results, out, _ = tiny_run
    saved = json.loads((out / "results.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(results["rows"]))
    assert saved["meta"]["profile"] == "tiny"
    assert saved["meta"]["load_before"] is not None
    assert (out / "scaling.png").read_bytes()[:4] == b"\x89PNG"


def test_flop_rates_are_fractions_of_a_ceiling_timed_alongside(tiny_run):
    rows = [row for row in tiny_run[0]["rows"] if row["gflops"] is not None]
    assert {row["suite"] for row in rows} == {"sdpa", "mha", "window", "long", "train"}
    for row in rows:
        assert row["ceiling_gflops"] > 0
        assert row["ceiling_fraction"] == pytest.approx(row["gflops"] / row["ceiling_gflops"])
    assert all(row["contender"] != runner.CEILING for row in tiny_run[0]["rows"])


def test_targets_only_at_the_issue_sizes(tiny_run):
    assert all(row["target"] is None for row in tiny_run[0]["rows"])


def test_cli_options_parse_like_the_script():
    import argparse

    parser = argparse.ArgumentParser()
    runner.add_arguments(parser)
    args = parser.parse_args(["--only", "sdpa", "window", "--quick", "--out", "x"])
    assert (args.only, args.quick, args.out, args.profile) == (["sdpa", "window"], True, "x",
                                                               None)


def test_run_case_single_call_cases_time_and_measure_memory_at_once():
    calls = []

    def make():
        return harness.Setup([Contender("peer", lambda: calls.append("peer")),
                              Contender("ours", lambda: calls.append("ours"), target=2.0)])

    case = harness.Case("x", "slow", make, peer="peer", n=8, flops=1e6, memory=True, repeats=1)
    rows = runner.run_case(case, runner.PROFILES["full"])
    assert calls == ["peer", "ours"]  # one call each: no warm-up, no second measurement
    assert [row.time_ms.count for row in rows] == [1, 1]
    assert rows[1].speedup is not None
    assert rows[1].met is (rows[1].speedup.median >= 2.0)
    assert rows[0].is_peer
    assert rows[0].speedup is None


def test_generation_reports_its_matvec_floor_without_a_token_check(tiny_run):
    rows = {row["contender"]: row for row in tiny_run[0]["rows"] if row["suite"] == "generate"}
    assert set(rows) == {"HF generate", "attnlab eager", "attnlab compiled", "matvec floor"}
    assert rows["attnlab eager"]["max_abs_diff"] == 0.0  # the same tokens as HF
    assert rows["attnlab compiled"]["max_abs_diff"] == 0.0
    assert rows["matvec floor"]["max_abs_diff"] is None  # produces no tokens to compare
    assert rows["matvec floor"]["speedup"] is not None


def test_busy_condition_runs_a_spinning_process_only_for_the_body():
    with isolate.under("alone") as nothing:
        assert nothing is None
    with isolate.under("busy") as busy:
        assert busy.poll() is None  # spinning while the case runs
    assert busy.poll() is not None  # and stopped after
    with pytest.raises(ValueError, match=r"conditions must be among alone, busy, got \['x'\]"):
        runner.run(["sdpa"], profile="tiny", conditions=["x"])


def test_a_case_runs_in_a_fresh_process_that_imports_torch_first():
    """The child's first statement is ``import torch``; its rows come back whole."""
    assert isolate.CHILD.startswith("import torch\n")
    alone = isolate.run_isolated("sdpa", 0, "tiny", 1, "alone")
    busy = isolate.run_isolated("sdpa", 0, "tiny", 1, "busy")
    for result in (alone, busy):
        rows = isolate.rows_from_json(result["rows"])
        assert {row.contender for row in rows} >= {"attnlab"}
        assert all(isinstance(row.time_ms, Stats) for row in rows)
        assert any(row.speedup is not None for row in rows)


def test_the_table_says_under_which_condition_a_row_ran():
    rows = [_row(), _row(condition="busy")]
    results = {"meta": {"profile": "tiny", "environment": harness.environment(),
                        "load_before": None, "isolated": True}, "rows": rows}
    table = report.markdown(results)
    assert "| sdpa | plain fwd | alone | 1024 |" in table
    assert "| sdpa | plain fwd | busy | 1024 |" in table
    assert "fresh process that imports torch first" in table


def test_cases_run_in_the_users_environment(monkeypatch):
    """What the attnlab command set for itself is taken out; what the user set stays."""
    from attnlab._openmp import OPENMP_SET_MARK, user_environment

    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")
    monkeypatch.setenv("KMP_BLOCKTIME", "0")
    monkeypatch.setenv(OPENMP_SET_MARK, "GOMP_SPINCOUNT KMP_BLOCKTIME")
    env = user_environment()
    assert "GOMP_SPINCOUNT" not in env
    assert "KMP_BLOCKTIME" not in env
    assert OPENMP_SET_MARK not in env
    monkeypatch.delenv(OPENMP_SET_MARK)
    assert user_environment()["GOMP_SPINCOUNT"] == "1000"  # the user's own setting


def test_the_command_marks_what_it_set():
    import os
    import subprocess
    import sys

    from attnlab import _openmp

    env = {k: v for k, v in os.environ.items()
           if k not in (*_openmp.OPENMP_VARIABLES, _openmp.OPENMP_SET_MARK)}
    code = ("import os, sys; from attnlab.cli.main import main; "
            "from attnlab._openmp import OPENMP_SET_MARK as M; "
            "main(['models']); sys.stderr.write(os.environ.get(M, '-'))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stderr == "GOMP_SPINCOUNT KMP_BLOCKTIME"


def test_a_target_can_be_judged_against_another_contender():
    def make(target):
        def setup():
            return harness.Setup([Contender("peer", lambda: time.sleep(0.004)),
                                  Contender("other", lambda: None),
                                  Contender("ours", lambda: time.sleep(0.002), target=target,
                                            versus="other")])
        return setup

    profile = runner.PROFILES["tiny"]
    for target, met in [(0.8, False), (1e-9, True)]:  # ours is far slower than "other"
        rows = runner.run_case(harness.Case("s", "c", make(target), peer="peer"), profile)
        ours = rows[2]
        assert ours.met is met
        assert ours.speedup.median > 1  # the speed-up column stays against the peer
        assert ours.versus == "other"
        assert ours.notes[-1].endswith(f"× other (paired; target ≥ {target:g}× other)")
    table = report.markdown({"meta": {"profile": "tiny", "environment": harness.environment()},
                             "rows": [asdict(row) for row in rows]})
    assert "≥ 1e-09× other" in table

    def missing():
        return harness.Setup([Contender("peer", lambda: None),
                              Contender("ours", lambda: None, target=0.8, versus="gone")])

    rows = runner.run_case(harness.Case("s", "c", missing, peer="peer"), profile)
    assert rows[1].met is None
    assert rows[1].notes == ["target ≥ 0.8× gone: not judged, gone did not run"]


def test_the_smollm2_case_reports_int8_agreement_without_a_token_check(tiny_run):
    rows = {row["contender"]: row for row in tiny_run[0]["rows"] if row["suite"] == "smollm2"}
    assert set(rows) == {"HF generate", "attnlab eager", "attnlab compiled",
                         "attnlab int8 compiled"}
    assert rows["attnlab compiled"]["max_abs_diff"] == 0.0
    assert rows["attnlab int8 compiled"]["max_abs_diff"] is None  # approximate: no exact check
    note = next(n for n in rows["HF generate"]["notes"]
                if n.startswith("attnlab int8 against float32"))
    assert "teacher-forced over 3 steps: top-1 agreement" in note
