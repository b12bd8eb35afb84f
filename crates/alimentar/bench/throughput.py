"""alimentar against pyarrow: Parquet and CSV read and write throughput, side by side.

Run by ``nox -s bench-alimentar`` (which builds alimentar's ``throughput`` example with
the ``profiling`` profile first), or directly::

    cargo build --profile profiling -p alimentar --example throughput
    python crates/alimentar/bench/throughput.py \\
        --binary target/profiling/examples/throughput --rows 1000000 --out build/bench-alimentar

The data is the course's fraud transactions (``data/fraud_data.py``: ints, a string
category, a microsecond timestamp, float amounts), written once by pyarrow as Parquet
(snappy, 64 Ki-row groups: alimentar's defaults) and as CSV. Every round times each case
for alimentar (its example binary, timed inside the process, start-up excluded) and for
pyarrow in this process, once with one thread (like for like: alimentar reads on one)
and once with pyarrow's default thread pool; the order alternates between rounds so
neither side always runs on a warmer cache. What each side wrote is read back by
pyarrow and must equal the input before any number is reported.

Results: ``throughput.json`` and ``throughput.md`` under ``--out``: best and median
rows/s per case, and the ratio alimentar / pyarrow (one thread) of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(ROOT / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

ROW_GROUP = 64 * 1024
CASES = (("parquet", "read"), ("parquet", "write"), ("csv", "read"), ("csv", "write"))


def pyarrow_once(
    fmt: str, op: str, src: Path, out: Path, table: pa.Table, *, threads: bool
) -> float:
    start = time.perf_counter()
    if (fmt, op) == ("parquet", "read"):
        pq.read_table(src, use_threads=threads)
    elif (fmt, op) == ("csv", "read"):
        pacsv.read_csv(src, read_options=pacsv.ReadOptions(use_threads=threads))
    elif fmt == "parquet":
        pq.write_table(table, out, compression="snappy", row_group_size=ROW_GROUP)
    else:
        pacsv.write_csv(table, out)
    return time.perf_counter() - start


def alimentar(binary: Path, op: str, src: Path, out: Path, reps: int) -> list[float]:
    args = [str(binary), op, str(src), *([str(out)] if op == "write" else []), str(reps)]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip()}")
    result = json.loads(done.stdout)
    return [float(s) for s in result["seconds"]]


def same_table(path: Path, fmt: str, expected: pa.Table) -> None:
    """What a writer produced, read by pyarrow, equals the input (CSV: as pyarrow parses it)."""
    got = pq.read_table(path) if fmt == "parquet" else pacsv.read_csv(path)
    want = expected if fmt == "parquet" else pacsv.read_csv(path.with_name("data.csv"))
    if got.num_rows != want.num_rows or got.column_names != want.column_names:
        raise SystemExit(f"{path}: {got.num_rows} rows {got.column_names}, expected the input's")
    for name in want.column_names:
        a, b = got[name], want[name].cast(got[name].type)
        if not a.equals(b):
            raise SystemExit(f"{path}: column {name} differs from the input")


def summary(rows: int, seconds: list[float]) -> dict[str, float]:
    return {
        "best_rows_per_s": rows / min(seconds),
        "median_rows_per_s": rows / statistics.median(seconds),
        "median_s": statistics.median(seconds),
        "n": len(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", type=Path, required=True, help="alimentar's throughput")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions per round")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench-alimentar")
    args = parser.parse_args()
    if not args.binary.is_file():
        raise SystemExit(f"{args.binary} does not exist: build alimentar's throughput example")
    if args.rows < 1000 or args.rounds < 1 or args.reps < 1:
        raise SystemExit("--rows must be >= 1000, --rounds and --reps >= 1")
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "files"
    work.mkdir(exist_ok=True)

    frame = fraud_data.generate(args.rows, seed=7).transactions
    table = pa.Table.from_pandas(frame, preserve_index=False)
    src = {"parquet": work / "data.parquet", "csv": work / "data.csv"}
    pq.write_table(table, src["parquet"], compression="snappy", row_group_size=ROW_GROUP)
    pacsv.write_csv(table, src["csv"])
    # alimentar writes what it read; its CSV write starts from its own CSV read.
    tables = {"parquet": table, "csv": pacsv.read_csv(src["csv"])}

    sides = ("alimentar", "pyarrow (1 thread)", "pyarrow (threads)")
    times: dict[str, dict[str, list[float]]] = {
        f"{fmt} {op}": {s: [] for s in sides} for fmt, op in CASES
    }
    for r in range(args.rounds):
        for fmt, op in CASES:
            out = {s: work / f"out-{i}.{fmt}" for i, s in enumerate(sides)}
            runs = [
                (
                    "alimentar",
                    lambda fmt=fmt, op=op, out=out: alimentar(
                        args.binary, op, src[fmt], out["alimentar"], args.reps
                    ),
                ),
                *(
                    (
                        side,
                        lambda fmt=fmt, op=op, out=out, side=side, threads=threads: [
                            pyarrow_once(fmt, op, src[fmt], out[side], tables[fmt], threads=threads)
                            for _ in range(args.reps)
                        ],
                    )
                    for side, threads in (
                        ("pyarrow (1 thread)", False),
                        ("pyarrow (threads)", True),
                    )
                ),
            ]
            for side, run in runs if r % 2 == 0 else runs[::-1]:
                times[f"{fmt} {op}"][side].extend(run())
            if op == "write" and r == 0:
                for side in sides:
                    same_table(out[side], fmt, tables[fmt])

    results: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "rows": args.rows,
        "rounds": args.rounds,
        "reps": args.reps,
        "bytes": {fmt: path.stat().st_size for fmt, path in src.items()},
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "python": platform.python_version(),
            "pyarrow": pa.__version__,
            "platform": platform.platform(),
        },
        "cases": {},
    }
    for case, by_side in times.items():
        stats: dict[str, Any] = {side: summary(args.rows, secs) for side, secs in by_side.items()}
        stats["ratio_vs_pyarrow_1_thread"] = (
            stats["alimentar"]["median_rows_per_s"]
            / stats["pyarrow (1 thread)"]["median_rows_per_s"]
        )
        results["cases"][case] = stats
    (args.out / "throughput.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    lines = [
        f"# alimentar vs pyarrow: {args.rows} fraud transactions",
        "",
        (
            f"`{results['command']}`; {args.rounds} rounds x {args.reps} reps, load average "
            f"{', '.join(f'{v:.1f}' for v in results['machine']['load_average'])} "
            f"on {results['machine']['cpus']} CPUs."
        ),
        "",
        (
            "| case | alimentar rows/s | pyarrow 1 thread rows/s | pyarrow threads rows/s "
            "| alimentar / pyarrow (1 thread) |"
        ),
        "|---|---:|---:|---:|---:|",
    ]
    for name, case in results["cases"].items():
        cells = [f"{case[s]['median_rows_per_s']:,.0f}" for s in sides]
        lines.append(f"| {name} | {' | '.join(cells)} | {case['ratio_vs_pyarrow_1_thread']:.2f} |")
    lines.append("")
    lines.append("Medians of every timed repetition; best-of and raw counts in throughput.json.")
    (args.out / "throughput.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
