"""Allocating calls against ``out=`` calls (``python -m trueno.bench.alloc``).

What an allocating trueno call costs beyond its kernel: per round, NumPy's call, trueno's
allocating call and trueno's ``out=`` call run back to back (3 calls each), for softmax,
exp and add on float32; the table shows medians of process CPU time per call, ratios,
and minor page faults per call (``getrusage``). Run it once as is and once with
``TRUENO_POOL_BYTES=0`` (trueno's output pool off) to see what the pool saves.
``--pool-miss`` makes every allocating call a first call of its size (a fresh buffer).
``--order out-first`` swaps the two trueno calls: the call right after NumPy's finds its
input evicted from cache, so compare the orders before reading a difference into them.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from collections.abc import Callable

import numpy as np

import trueno


def _np_softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max())
    return e / e.sum()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m trueno.bench.alloc", description=__doc__)
    p.add_argument("--n", type=int, default=1 << 24, help="elements (default 16M)")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--order", choices=["alloc-first", "out-first"], default="alloc-first")
    p.add_argument(
        "--pool-miss",
        action="store_true",
        help="keep no idle buffers: every allocating call gets a fresh, never-touched buffer",
    )
    args = p.parse_args(argv)
    if args.n < 1 or args.rounds < 1:
        p.error(f"--n and --rounds must be positive, got {args.n} and {args.rounds}")

    if args.pool_miss:
        # Bounds of 4 buffers and 1 byte: the pool stays on but frees every buffer on
        # return, so each allocating call takes a new mapping (a first call of its size).
        trueno._pool_set_limits(4, 1)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(args.n) * 4).astype(np.float32)
    y = rng.standard_normal(args.n).astype(np.float32)
    buf = np.empty_like(x)
    kernels: dict[str, tuple[Callable[[], object], ...]] = {
        "softmax": (
            lambda: _np_softmax(x),
            lambda: trueno.softmax(x),
            lambda: trueno.softmax(x, out=buf),
        ),
        "exp": (lambda: np.exp(x), lambda: trueno.exp(x), lambda: trueno.exp(x, out=buf)),
        "add": (
            lambda: np.add(x, y),
            lambda: trueno.add(x, y),
            lambda: trueno.add(x, y, out=buf),
        ),
    }
    names = ["numpy", "alloc", "out="]
    if args.order == "out-first":
        names = ["numpy", "out=", "alloc"]
    cases = {
        (k, name): fns[["numpy", "alloc", "out="].index(name)]
        for k, fns in kernels.items()
        for name in names
    }
    times: dict[tuple[str, str], list[float]] = {c: [] for c in cases}
    faults: dict[tuple[str, str], list[float]] = {c: [] for c in cases}
    for f in cases.values():
        f()
    for _ in range(args.rounds):
        for c, f in cases.items():
            m0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            c0 = time.process_time()
            for _ in range(3):
                f()
            times[c].append((time.process_time() - c0) / 3)
            faults[c].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - m0) / 3)

    med = {c: statistics.median(v) * 1e3 for c, v in times.items()}
    pool = os.environ.get("TRUENO_POOL_BYTES", "unset (pool on)")
    miss = ", every pool request a miss" if args.pool_miss else ""
    print(
        f"n={args.n} float32, {args.rounds} rounds, order {args.order}, "
        f"TRUENO_POOL_BYTES={pool}{miss}"
    )
    print(f"load average {os.getloadavg()}")
    print("| kernel | call | CPU ms | NumPy / this | out= / this | faults/call |")
    print("|---|---|---|---|---|---|")
    for k, name in cases:
        t = med[(k, name)]
        print(
            f"| {k} | {name} | {t:.2f} | {med[(k, 'numpy')] / t:.2f}x | "
            f"{med[(k, 'out=')] / t:.2f}x | {statistics.median(faults[(k, name)]):.0f} |"
        )
    print(f"pool: {trueno._pool_stats()}")


if __name__ == "__main__":
    main()
