"""Reports: the JSON document (schema ``trueno-bench/1``), the Markdown table, the PNG plot."""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from trueno.bench.machine import BUSY_LOAD_PER_CPU, LEVELS, is_busy, loadavg
from trueno.bench.measure import Result

SCHEMA = "trueno-bench/1"


def _fmt_bytes(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return f"{nbytes:.3g} GiB"


def _fmt_time(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns")):
        if seconds >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"


# --------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------


def _ratio_str(r: Result, clock: str = "wall") -> str:
    mid, lo, hi = (
        (r.ratio_cpu, r.ratio_cpu_q1, r.ratio_cpu_q3)
        if clock == "cpu"
        else (r.ratio, r.ratio_q1, r.ratio_q3)
    )
    if mid is None or lo is None or hi is None:
        return "-"
    text = f"{mid:.2f}x [{lo:.2f}-{hi:.2f}]"
    return f"**{text}**" if clock == r.clock else text


def _verdict(r: Result) -> str:
    if r.status != "ok":
        return {"unavailable": "n/a", "incorrect": "**WRONG**", "error": "**ERROR**"}[r.status]
    if r.passed is None:
        return "-"
    return "pass" if r.passed else "**miss**"


def to_markdown(report: Mapping[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"# trueno vs NumPy ({report['mode']} run)",
        "",
        f"- command: `{report['command']}`",
        f"- date: {report['date']}",
        f"- CPU: {m['cpu']['model']} ({m['ncpu']} CPUs; {', '.join(m['cpu']['flags'])})",
        (
            f"- numpy {m['numpy']}, trueno {m['trueno']} (backend {m['trueno_backend']}), "
            f"Python {m['python']}"
        ),
        "- BLAS: "
        + (
            "; ".join(
                f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')})"
                for p in m["threadpools"]
            )
            or "threadpoolctl not installed: BLAS threads NOT pinned"
        )
        + ", pinned to 1 thread for the main table",
        f"- load average: start {m['loadavg_start']}, end {report['loadavg_end']}",
    ]
    if m["openblas_env_removed"]:
        lines.append(
            f"- removed from the benchmark process (they slow this NumPy's OpenBLAS): "
            f"{m['openblas_env_removed']}"
        )
    if m["openblas_env"]:
        lines.append(f"- OpenBLAS environment in effect: {m['openblas_env']}")
    lines.append(
        f"- {report['config']['rounds']} interleaved rounds per row, samples >= "
        f"{report['config']['min_time'] * 1e3:g} ms; ratio = t_numpy / t_trueno, "
        "median [IQR]; > 1 means trueno is faster",
    )
    lines.append(
        "- the **bold** ratio decides pass/miss: process CPU time for single-threaded rows "
        "(immune to the benchmark being descheduled; CPU share < 100% shows how often it "
        "was), wall time for multi-threaded rows; NumPy/trueno times and throughput use "
        "the same clock"
    )
    if report["busy"]:
        lines += [
            "",
            (
                "> **Busy machine:** the load average exceeded "
                f"{BUSY_LOAD_PER_CPU * m['ncpu']:g} during this run; absolute times are "
                "unreliable and ratios noisier than usual."
            ),
        ]
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in report["results"]:
        groups.setdefault(r["group"], []).append(r)
    for group, rows in groups.items():
        lines += [
            "",
            f"## {group}",
            "",
            (
                "| kernel | size | level | NumPy | trueno | ratio, CPU time | ratio, wall "
                "| CPU share | trueno throughput | % of roofline | roofline set by | target "
                "| result |"
            ),
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            r = Result(**row)
            thr = f"{r.throughput:.3g} {r.throughput_unit}" if r.throughput else "-"
            pct = f"{r.roofline_pct:.0f}%" if r.roofline_pct is not None else "-"
            tgt = f">= {r.target:g}x" if r.target is not None else "-"
            on_cpu = r.clock == "cpu"
            t_np = r.numpy_cpu_s if on_cpu else r.numpy_s
            t_tr = r.trueno_cpu_s if on_cpu else r.trueno_s
            share = f"{r.cpu_share:.0%}" if r.cpu_share is not None else "-"
            lines.append(
                f"| {r.kernel} | {r.size} ({_fmt_bytes(r.nbytes)}) | {r.level} "
                f"| {_fmt_time(t_np)} | {_fmt_time(t_tr)} | {_ratio_str(r, 'cpu')} "
                f"| {_ratio_str(r, 'wall')} | {share} | {thr} | {pct} | {r.roofline_basis or '-'} "
                f"| {tgt} | {_verdict(r)} |"
            )
    notes = [r for r in report["results"] if r["status"] != "ok" or r["note"]]
    if notes:
        lines += ["", "## Notes", ""]
        seen = set()
        for r in notes:
            text = r["error"] or r["note"]
            key = (r["kernel"], text)
            if key in seen:
                continue
            seen.add(key)
            lines.append(f"- {r['kernel']} {r['size']}: {text}")
    lines += [
        "",
        _roofline_text(m.get("roofline_model")),
        "",
    ]
    return "\n".join(lines)


def _roofline_text(model: Mapping[str, Any] | None) -> str:
    if not model:
        return "Roofline: no machine model recorded."
    gbs = ", ".join(
        f"{lv} {model['read'][lv] / 1e9:.3g} / {model['rw'][lv] / 1e9:.3g}"
        for lv in LEVELS
        if lv in model["read"]
    )
    sizes = model["caches"]
    caches = ", ".join(f"{lv} {_fmt_bytes(sizes[lv])}" for lv in ("L1", "L2", "L3") if sizes[lv])
    peaks = ", ".join(f"{b} {v / 1e9:.4g}" for b, v in model["peak"].items())
    load = model.get("probe_loadavg")
    return (
        "Roofline, measured on this machine by `trueno.machine()` "
        f"({model.get('origin', '')}; probe load average {load}): each row's lower bound "
        "is the largest of bytes / the bandwidth of the level its working set lives in "
        "(read bandwidth for kernels that only read, the read-write bandwidth of the "
        f"probe's c = a + b for those that write; GB/s read / read-write: {gbs}), flops / "
        f"the FMA-chain peak of the active backend (f32 GFLOP/s per core: {peaks}; f64 "
        f"half), and the {model['call_floor_s'] * 1e9:.0f} ns floor of the cheapest "
        f"call into the extension (measured now). Caches (from the OS): {caches}. A row "
        "above 100 % would mean the probe missed a faster way to use the hardware; such "
        "a row is flagged in its note, never clipped."
    )


def plot(report: Mapping[str, Any], path: Path) -> bool:
    """Speedup vs working-set size per kernel (log x); False if matplotlib is missing."""
    try:
        import matplotlib as mpl  # noqa: PLC0415

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return False
    fig = figure(report, plt)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def figure(report: Mapping[str, Any], plt: Any = None) -> Any:
    """The speedup figure as a matplotlib Figure (the notebook displays it)."""
    if plt is None:
        import matplotlib.pyplot as plt  # noqa: PLC0415
    fig, ax = plt.subplots(figsize=(9, 5.5))
    series: dict[str, list[dict[str, Any]]] = {}
    for row in report["results"]:
        if row["status"] == "ok" and row["ratio"]:
            r = dict(row)
            if r["clock"] == "cpu":  # plot the ratio that decides pass/miss
                r["ratio"], r["ratio_q1"], r["ratio_q3"] = (
                    r["ratio_cpu"],
                    r["ratio_cpu_q1"],
                    r["ratio_cpu_q3"],
                )
            label = r["kernel"] if r["group"] == "1 thread" else f"{r['kernel']} ({r['group']})"
            series.setdefault(label, []).append(r)
    for label, rows in sorted(series.items()):
        rows.sort(key=lambda r: r["nbytes"])
        x = [r["nbytes"] for r in rows]
        y = [r["ratio"] for r in rows]
        err = [
            [r["ratio"] - r["ratio_q1"] for r in rows],
            [r["ratio_q3"] - r["ratio"] for r in rows],
        ]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    model = report["machine"].get("roofline_model") or {}
    for level, cap in (model.get("caches") or {}).items():
        if not cap:
            continue
        ax.axvline(cap, color="grey", linewidth=0.6, linestyle=":")
        ax.text(cap, ax.get_ylim()[1], f" {level} size", va="top", fontsize=8, color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("working set (bytes)")
    ax.set_ylabel("speedup t_numpy / t_trueno (median, IQR)\n1 thread: CPU time; 2 threads: wall")
    busy = " - BUSY MACHINE" if report.get("busy") else ""
    ax.set_title(f"trueno vs NumPy, {report['machine']['cpu']['model']}{busy}", fontsize=10)
    if series:
        ax.legend(fontsize=8, ncol=2)
    ax.grid(visible=True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def report_dict(
    results: Sequence[Result], mode: str, machine: Mapping[str, Any], config: Mapping[str, Any]
) -> dict[str, Any]:
    load_end = loadavg()
    ncpu = machine["ncpu"]
    busy = is_busy(machine["loadavg_start"], ncpu) or is_busy(load_end, ncpu)
    rows = [asdict(r) for r in results]
    return {
        "schema": SCHEMA,
        "mode": mode,
        "command": config["command"],
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": dict(machine),
        "config": dict(config),
        "loadavg_end": load_end,
        "busy": busy,
        "results": rows,
        "summary": {
            "cases": len(rows),
            "ok": sum(r["status"] == "ok" for r in rows),
            "unavailable": sum(r["status"] == "unavailable" for r in rows),
            "incorrect": sum(r["status"] in ("incorrect", "error") for r in rows),
            "targets_met": sum(r["passed"] is True for r in rows),
            "targets_missed": sum(r["passed"] is False for r in rows),
            "over_roofline": sum((r["roofline_pct"] or 0) > 100 for r in rows),
        },
    }


def write_outputs(report: Mapping[str, Any], out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "bench.json", "md": out / "bench.md", "png": out / "bench.png"}
    paths["json"].write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    paths["md"].write_text(to_markdown(report))
    if not plot(report, paths["png"]):
        del paths["png"]
    return paths
