"""Fit time of realizar.aprender against scikit-learn, one thread each, side by side.

Every round runs each candidate once in random order (interleaved, so load drift hits
both), and the table reports the median of the per-round ratios
``sklearn_time / aprender_time`` (above 1: aprender is faster) with its spread. BLAS is
pinned to one thread with threadpoolctl, scikit-learn runs ``n_jobs=1`` and aprender's
forest one thread. The settings are the ones the tests compare at (same C, alpha,
n_init, tree limits), so both sides do the same job.

    python -m realizar.bench_aprender [--quick] [--rounds N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sklearn import cluster, datasets, ensemble, linear_model, tree
from threadpoolctl import threadpool_info, threadpool_limits

from realizar import aprender as ap
from trueno.bench.machine import describe, machine_info

Case = tuple[str, str, Callable[[], Any], Callable[[], Any]]


def cases(n: int) -> list[Case]:
    xr, yr = datasets.make_regression(n, 20, noise=5.0, random_state=0)
    xc, yc = datasets.make_classification(n, 20, n_informative=10, random_state=0)
    xm, ym = datasets.make_classification(
        n, 20, n_informative=10, n_classes=4, n_clusters_per_class=1, random_state=0
    )
    xc = (xc - xc.mean(0)) / xc.std(0)
    xm = (xm - xm.mean(0)) / xm.std(0)
    shape = f"{n}x20"
    return [
        (
            "LinearRegression",
            shape,
            lambda: linear_model.LinearRegression().fit(xr, yr),
            lambda: ap.LinearRegression().fit(xr, yr),
        ),
        (
            "Ridge(alpha=1)",
            shape,
            lambda: linear_model.Ridge(1.0, solver="cholesky").fit(xr, yr),
            lambda: ap.Ridge(1.0).fit(xr, yr),
        ),
        (
            "LogisticRegression binary",
            shape,
            lambda: linear_model.LogisticRegression(max_iter=1000, tol=1e-6).fit(xc, yc),
            lambda: ap.LogisticRegression(max_iter=1000, tol=1e-6).fit(xc, yc),
        ),
        (
            "LogisticRegression 4 classes",
            shape,
            lambda: linear_model.LogisticRegression(max_iter=1000, tol=1e-6).fit(xm, ym),
            lambda: ap.LogisticRegression(max_iter=1000, tol=1e-6).fit(xm, ym),
        ),
        (
            "DecisionTreeClassifier",
            shape,
            lambda: tree.DecisionTreeClassifier(random_state=0).fit(xc, yc),
            lambda: ap.DecisionTreeClassifier(random_state=0).fit(xc, yc),
        ),
        (
            "DecisionTreeRegressor(max_depth=8)",
            shape,
            lambda: tree.DecisionTreeRegressor(max_depth=8, random_state=0).fit(xr, yr),
            lambda: ap.DecisionTreeRegressor(max_depth=8, random_state=0).fit(xr, yr),
        ),
        (
            "RandomForestClassifier(50)",
            shape,
            lambda: ensemble.RandomForestClassifier(50, n_jobs=1, random_state=0).fit(xc, yc),
            lambda: ap.RandomForestClassifier(50, n_jobs=1, random_state=0).fit(xc, yc),
        ),
        (
            "KMeans(8, n_init=3)",
            shape,
            lambda: cluster.KMeans(8, n_init=3, random_state=0).fit(xc),
            lambda: ap.KMeans(8, n_init=3, random_state=0).fit(xc),
        ),
        # The row above depends on how many iterations each side's seeds happen to need;
        # this one fixes them (tol=0 stops only on unchanged labels, which this data does
        # not reach in 30), so its ratio is per-iteration speed plus one k-means++.
        (
            "KMeans(8, 30 iterations)",
            shape,
            lambda: cluster.KMeans(8, n_init=1, max_iter=30, tol=0.0, random_state=0).fit(xc),
            lambda: ap.KMeans(8, n_init=1, max_iter=30, tol=0.0, random_state=0).fit(xc),
        ),
    ]


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(n: int, rounds: int) -> list[dict[str, Any]]:
    rows = []
    for name, shape, sk, ours in cases(n):
        sk()
        ours()  # warm-up: imports, allocator, page faults
        sk_t, ap_t, ratios = [], [], []
        for _ in range(rounds):
            pair = [("sk", sk), ("ap", ours)]
            random.shuffle(pair)
            got = {k: timed(f) for k, f in pair}
            sk_t.append(got["sk"])
            ap_t.append(got["ap"])
            ratios.append(got["sk"] / got["ap"])
        q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
        rows.append(
            {
                "algorithm": name,
                "data": shape,
                "sklearn_ms": 1e3 * statistics.median(sk_t),
                "aprender_ms": 1e3 * statistics.median(ap_t),
                "ratio_median": statistics.median(ratios),
                "ratio_q1": q[0],
                "ratio_q3": q[2],
            }
        )
        print(
            f"{name:38s} sklearn {rows[-1]['sklearn_ms']:9.2f} ms  aprender "
            f"{rows[-1]['aprender_ms']:9.2f} ms  ratio {rows[-1]['ratio_median']:.2f}",
            flush=True,
        )
    return rows


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    out = [
        f"Machine: {describe(meta['machine'])}, {meta['rounds']} rounds, n={meta['n']}.",
        "",
        "| algorithm | data | scikit-learn (ms) | aprender (ms) | speed-up (median sk/ap) | IQR |",
        "|---|---|---|---|---|---|",
    ]
    out.extend(
        f"| {r['algorithm']} | {r['data']} | {r['sklearn_ms']:.2f} | {r['aprender_ms']:.2f} "
        f"| {r['ratio_median']:.2f}x | {r['ratio_q1']:.2f}-{r['ratio_q3']:.2f} |"
        for r in rows
    )
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, few rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--n", type=int, default=None, help="rows of the synthetic data")
    parser.add_argument("--out", type=Path, default=Path("build/bench-aprender"))
    args = parser.parse_args()
    n = args.n or (2000 if args.quick else 20000)
    rounds = args.rounds or (3 if args.quick else 7)
    meta: dict[str, Any] = {
        "machine": machine_info(packages=("realizar", "scikit-learn", "threadpoolctl")),
        "rounds": rounds,
        "n": n,
    }
    with threadpool_limits(1):
        meta["threadpools"] = [
            {k: i.get(k) for k in ("internal_api", "num_threads", "version")}
            for i in threadpool_info()
        ]
        rows = run(n, rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    table = markdown(rows, meta)
    (args.out / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
