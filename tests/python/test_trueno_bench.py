"""The benchmark harness (``python -m trueno.bench``) in its tiny ``--smoke`` mode.

Checks the shape of what it writes (JSON schema, Markdown table, PNG) and that its
correctness gate can fail: a deliberately wrong kernel must be reported as incorrect,
excluded from timing, and turn the exit code non-zero. Speed is never asserted here.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trueno")
bench = pytest.importorskip("trueno.bench")
measure = pytest.importorskip("trueno.bench.measure")

RESULT_KEYS = {
    "kernel",
    "size",
    "group",
    "level",
    "nbytes",
    "flops",
    "status",
    "target",
    "note",
    "numpy_s",
    "trueno_s",
    "ratio",
    "ratio_q1",
    "ratio_q3",
    "ratios",
    "rounds",
    "numpy_cpu_s",
    "trueno_cpu_s",
    "ratio_cpu",
    "ratio_cpu_q1",
    "ratio_cpu_q3",
    "cpu_share",
    "clock",
    "max_abs_err",
    "throughput",
    "throughput_unit",
    "roofline_s",
    "roofline_pct",
    "roofline_basis",
    "passed",
    "error",
}


def _run(tmp_path: Path, *args: str, overrides=None) -> tuple[int, dict]:
    code = bench.main(["--smoke", "--quiet", "--out", str(tmp_path), *args], overrides=overrides)
    return code, json.loads((tmp_path / "bench.json").read_text())


def test_smoke_run_writes_json_markdown_and_png(tmp_path: Path) -> None:
    code, report = _run(tmp_path)
    assert code == 0
    assert report["schema"] == bench.SCHEMA
    assert report["mode"] == "smoke"
    assert isinstance(report["busy"], bool)
    machine = report["machine"]
    for key in ("cpu", "ncpu", "numpy", "trueno", "trueno_backend", "threadpools", "loadavg_start"):
        assert key in machine
    model = machine["roofline_model"]
    assert set(model["read"]) >= {"L1", "L2", "DRAM"}
    assert model["caches"]["L1"] == machine["trueno_machine"]["caches"]["l1d_bytes"]
    assert 0 < model["call_floor_s"] < 1e-5
    assert machine["numpy"] == np.__version__
    results = report["results"]
    kernels = {r["kernel"] for r in results}
    assert {"dot", "sum", "norm", "add(out=)", "softmax", "matmul", "gemv"} <= kernels
    assert {"cosine pair", "cosine 1xN", "top_k k=10"} <= kernels
    for r in results:
        assert set(r) == RESULT_KEYS
        assert r["status"] in {"ok", "unavailable"}, r
        if r["status"] == "ok":
            assert r["numpy_s"] > 0
            assert r["trueno_s"] > 0
            assert r["ratio"] > 0
            assert r["ratio_q1"] <= r["ratio"] <= r["ratio_q3"]
            assert len(r["ratios"]) == r["rounds"] == 1
            assert r["roofline_pct"] > 0
            # One-thread rows (the main table and the informational groups) are judged on
            # CPU time, two-thread rows on wall time.
            assert r["clock"] == ("wall" if r["group"] == "2 threads" else "cpu")
            decisive = r["ratio_cpu"] if r["clock"] == "cpu" else r["ratio"]
            if r["target"] is None:  # a level the issue sets no target for
                assert r["passed"] is None
            else:
                assert r["passed"] is (decisive >= r["target"])
            # Reported, not judged: other threads of the process (BLAS workers still
            # spinning after a call) can push a sample's CPU time past its wall time.
            assert r["cpu_share"] > 0
        else:
            assert "not available" in r["error"]
    # The kernels of this part of the issue always exist.
    for name in ("matmul", "gemv", "dot"):
        assert any(r["kernel"] == name and r["status"] == "ok" for r in results)
    md = (tmp_path / "bench.md").read_text()
    assert "| kernel | size | level | NumPy | trueno | ratio, CPU time | ratio, wall |" in md
    assert "matmul" in md
    assert "load average" in md
    png = (tmp_path / "bench.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_wrong_kernel_fails_the_correctness_check(tmp_path: Path) -> None:
    def wrong_matmul(d: dict) -> np.ndarray:
        out = d["a"] @ d["b"]
        out[0, 0] += 1.0  # one wrong element is enough
        return out

    code, report = _run(tmp_path, "--kernels", "matmul,gemv", overrides={"matmul": wrong_matmul})
    assert code == 1
    by_kernel = {r["kernel"]: r for r in report["results"]}
    bad = by_kernel["matmul"]
    assert bad["status"] == "incorrect"
    assert bad["ratio"] is None  # never timed
    assert bad["max_abs_err"] == pytest.approx(1.0, rel=1e-3)
    assert by_kernel["gemv"]["status"] == "ok"  # the other kernels still ran
    assert report["summary"]["incorrect"] == 1
    assert "WRONG" in (tmp_path / "bench.md").read_text()


def test_crashing_kernel_is_reported_not_raised(tmp_path: Path) -> None:
    def boom(d: dict) -> None:
        raise RuntimeError("kernel exploded")

    code, report = _run(tmp_path, "--kernels", "gemv", overrides={"gemv": boom})
    assert code == 1
    (row,) = report["results"]
    assert row["status"] == "error"
    assert "kernel exploded" in row["error"]


def _model(**kw: object) -> bench.MachineModel:
    base = {
        "caches": {"L1": 48 << 10, "L2": 2 << 20, "L3": 480 << 20},
        "read": {"L1": 400e9, "L2": 200e9, "L3": 80e9, "DRAM": 20e9},
        "rw": {"L1": 500e9, "L2": 180e9, "L3": 70e9, "DRAM": 25e9},
        "peak": {"scalar": 8e9, "avx2": 150e9, "avx512": 300e9},
        "call_floor_s": 100e-9,
        "backend": "avx512",
    }
    return bench.MachineModel(**(base | kw))


def test_kernel_filter_and_roofline_levels() -> None:
    cases = bench.build_cases(bench.MODES["full"], ["matmul"])
    assert [c.size for c in cases if c.group == "1 thread"] == [
        "256x256x256",
        "512x512x512",
        "1024x1024x1024",
    ]
    # Levels come from the machine's caches, not from one CPU's sizes.
    xeon = _model()
    assert xeon.level_of(4 * 1000) == "L1"
    assert xeon.level_of(1 << 20) == "L2"
    assert xeon.level_of(256 << 20) == "L3"
    assert xeon.level_of(512 << 20 + 1) == "DRAM"
    laptop = _model(
        caches={"L1": 32 << 10, "L2": 256 << 10, "L3": 0},
        read={"L1": 200e9, "L2": 100e9, "DRAM": 20e9},
    )
    assert laptop.level_of(1 << 20) == "DRAM"
    assert laptop.bandwidth("L3", "read") == 20e9  # no L3: the next level out bounds it
    mm = cases[0]
    roof, basis = mm.roofline(xeon)
    assert roof == pytest.approx(2 * 256**3 / 300e9)
    assert basis == "FP32 peak 300 GFLOP/s"
    two = next(c for c in cases if c.cores == 2)
    assert two.roofline(xeon)[0] == pytest.approx(2 * 256**3 / 600e9)
    # The active backend's peak: scalar runs are judged against scalar FMA chains.
    assert mm.roofline(_model(backend="scalar"))[0] == pytest.approx(2 * 256**3 / 8e9)
    f64 = next(c for c in bench.build_cases(bench.MODES["full"], ["matmul float64"]))
    assert f64.roofline(xeon)[0] == pytest.approx(f64.flops / 150e9)
    # Memory-bound rows: read or read-write bandwidth of their level, or the call floor.
    (add,) = [c for c in bench.build_cases(bench.MODES["full"], ["add"]) if c.size == "128M"]
    assert add.traffic == "rw"
    assert add.roofline(xeon) == (pytest.approx(add.nbytes / 25e9), "DRAM read-write 25 GB/s")
    (dot,) = [c for c in bench.build_cases(bench.MODES["full"], ["dot"]) if c.size == "1e3"]
    assert dot.roofline(xeon) == (pytest.approx(100e-9), "call floor 100 ns")


def test_targets_follow_the_issue_sizes_not_the_machine() -> None:
    cases = bench.build_cases(bench.MODES["full"])
    by = {(c.kernel, c.size): c.target for c in cases if c.group == "1 thread"}
    assert by[("dot", "1e3")] == 2.5
    assert by[("dot", "64K")] == 1.0
    assert by[("dot", "1M")] is None
    assert by[("sum", "128M")] == 1.25
    assert by[("norm", "1M")] == 1.0
    assert by[("softmax", "16M")] == 3.0
    assert by[("matmul", "1024x1024x1024")] == 0.8


def test_a_row_faster_than_the_probe_is_flagged_not_clipped() -> None:
    model = _model()
    (case,) = [c for c in bench.build_cases(bench.MODES["full"], ["sum"]) if c.size == "128M"]
    res = bench.Result(
        case.kernel, case.size, case.group, case.level(model), case.nbytes, case.flops, "ok", 1.25
    )
    res.roofline_s, res.roofline_basis = case.roofline(model)
    fast = res.roofline_s / 1.2  # 120 % of the probed DRAM read ceiling
    bench._summarise(
        res,
        case,
        {"numpy": [0.03] * 3, "trueno": [fast] * 3},
        {"numpy": [0.03] * 3, "trueno": [fast] * 3},
        3,
    )
    assert res.roofline_pct == pytest.approx(120.0)
    assert "FASTER THAN THE PROBED CEILING" in res.note
    assert "DRAM read 20 GB/s" in res.note
    report = bench.report_dict([res], "full", {"ncpu": 2, "loadavg_start": None}, {"command": "x"})
    assert report["summary"]["over_roofline"] == 1


def test_quiesce_waits_for_a_spinning_thread() -> None:
    stop = time.perf_counter() + 0.4

    def spin() -> None:
        while time.perf_counter() < stop:
            pass

    assert bench._quiesce(limit=1.0) < 0.5  # idle: returns after a window or two
    t = threading.Thread(target=spin)
    t.start()
    waited = bench._quiesce(limit=2.0)
    t.join()
    assert waited >= 0.3


def test_multi_threaded_samples_start_after_the_same_idle_and_last_long() -> None:
    """Each sample of a multi-threaded row, whichever side ran before it, starts after
    at least MULTI_IDLE_S without calls and makes at least MULTI_MIN_TIME_S of calls; a
    one-thread row keeps the caller's min_time and no pause."""

    def timed_case(cores: int, calls: list[tuple[str, float, float]]) -> bench.Case:
        def fn(name: str):
            def call(d: dict) -> np.ndarray:
                t0 = time.perf_counter()
                while time.perf_counter() - t0 < 0.002:
                    pass
                calls.append((name, t0, time.perf_counter()))
                return d["x"]

            return call

        return bench.Case(
            "fake", "1", lambda rng: {"x": np.ones(4)}, fn("numpy"), fn("trueno"), 32, cores=cores
        )

    for cores in (2, 1):
        calls: list[tuple[str, float, float]] = []
        res = bench.run_case(timed_case(cores, calls), 2, 0.004, np.random.default_rng(0), _model())
        assert res.status == "ok"
        gaps = [b[1] - a[2] for a, b in itertools.pairwise(calls)]
        long_gaps = [g for g in gaps if g >= measure.MULTI_IDLE_S]
        durations = [c[2] - c[1] for c in calls]
        trueno_calls = sum(1 for c in calls if c[0] == "trueno")
        if cores == 2:
            # A pause before the second warm-up, each calibration and every timed sample.
            assert len(long_gaps) >= 6, gaps
            # Two timed samples of trueno, each of at least MULTI_MIN_TIME_S (the longest
            # call bounds the calls a sample needs from below).
            assert trueno_calls >= 2 * int(measure.MULTI_MIN_TIME_S / max(durations))
        else:
            assert not long_gaps, long_gaps
            # min_time 4 ms: a few calls per sample, far from MULTI_MIN_TIME_S's ~50.
            assert trueno_calls < int(measure.MULTI_MIN_TIME_S / float(np.median(durations)))


def test_quick_mode_skips_dram_sizes() -> None:
    cases = bench.build_cases(bench.MODES["quick"])
    assert all(c.level != "DRAM" or c.kernel in {"cosine 1xN", "top_k k=10"} for c in cases)
    assert max(c.nbytes for c in cases) < 64 << 20


def test_command_line_entry_point(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "trueno.bench",
            "--smoke",
            "--kernels",
            "gemv",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[1/1] gemv" in proc.stderr  # progress is shown
    assert (tmp_path / "bench.json").exists()


def test_machine_info_is_the_one_description_for_every_benchmark() -> None:
    from trueno.bench import machine  # noqa: PLC0415

    plain = machine.machine_info()
    assert "versions" not in plain  # trueno's own report keeps its schema
    asked = machine.machine_info(packages=("numpy", "no-such-distribution-xyz"))
    assert asked["versions"] == {
        "numpy": np.__version__,
        "no-such-distribution-xyz": "not installed",
    }
    assert set(asked) - set(plain) == {"versions"}
    assert asked["cpu"]["model"] in machine.describe(asked)
    assert f"{asked['ncpu']} CPUs" in machine.describe(asked)
    ncpu = 2
    quiet = {**asked, "ncpu": ncpu, "loadavg_start": [0.5, 0.5, 0.5]}
    busy = {**quiet, "loadavg_start": [machine.BUSY_LOAD_PER_CPU * ncpu + 0.01, 1.0, 1.0]}
    assert "load average 0.50" in machine.describe(quiet)
    assert "busy" not in machine.describe(quiet)
    assert "busy" in machine.describe(busy)
    assert "load average unknown" in machine.describe({**quiet, "loadavg_start": None})
    assert not machine.is_busy(None, ncpu)
