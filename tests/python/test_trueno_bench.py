"""The benchmark harness (``python -m trueno.bench``) in its tiny ``--smoke`` mode.

Checks the shape of what it writes (JSON schema, Markdown table, PNG) and that its
correctness gate can fail: a deliberately wrong kernel must be reported as incorrect,
excluded from timing, and turn the exit code non-zero. Speed is never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trueno")
bench = pytest.importorskip("trueno.bench")

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
            assert r["clock"] == ("cpu" if r["group"] == "1 thread" else "wall")
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


def test_kernel_filter_and_roofline_levels() -> None:
    cases = bench.build_cases(bench.MODES["full"], ["matmul"])
    assert [c.size for c in cases if c.group == "1 thread"] == [
        "256x256x256",
        "512x512x512",
        "1024x1024x1024",
    ]
    assert bench.level_of(4 * 1000) == "L1"
    assert bench.level_of(4 * 65_536) == "L2"
    assert bench.level_of(4 << 20) == "L3"
    assert bench.level_of(256 << 20) == "DRAM"
    mm = cases[0]
    assert mm.roofline_s() == pytest.approx(2 * 256**3 / bench.PEAK_FLOPS)


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
