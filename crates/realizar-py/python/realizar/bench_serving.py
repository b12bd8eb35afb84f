"""Serving benchmark: ``realizar serve`` against ``mlflow models serve`` on loopback.

``python -m realizar.bench_serving`` or ``python -m realizar.bench --only serving``.

One scikit-learn model (by default a RandomForestClassifier, 100 trees, on
breast_cancer) is exported twice: with ``realizar.export_sklearn`` and with
``mlflow.sklearn.save_model``. Each is served on a free 127.0.0.1 port
(``mlflow models serve --env-manager local``), and both get the same MLflow scoring
payload, one row per request in ``dataframe_split`` form, from the same client:
``--clients`` processes, each with one keep-alive HTTP/1.1 connection sending requests
back to back (closed loop). The load is bounded: ``--requests`` per server per round.

Method (docs/PERF.md): predictions of both servers on the whole dataset are checked
against scikit-learn first; then in each round the two servers run in a random order
and the per-round ratio of requests/second is taken; the report gives medians and the
spread. Latency percentiles are client-side (send to last byte of the answer), so they
include the Python client's own cost, which is the same for both servers.
The machine and its load average are recorded. Output: ``build/bench/realizar_serving.json``
and ``.md``, each naming the command that produced it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import http.client
import json
import multiprocessing as mp
import os
import random
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trueno.bench.machine import describe, machine_info

# /2: the machine block is trueno.bench.machine.machine_info()'s (it was this module's own).
SCHEMA = "realizar-bench-serving/2"
TARGET_RPS_RATIO = 20.0
TARGET_P50_MS = 1.0
STARTUP_SECONDS = 180


@dataclass
class Endpoint:
    name: str
    host: str
    port: int
    proc: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(conn: http.client.HTTPConnection, body: bytes) -> bytes:
    conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        msg = f"HTTP {resp.status}: {data[:300]!r}"
        raise RuntimeError(msg)
    return data


def _wait_ready(host: str, port: int, proc: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"server exited with {proc.returncode} before it was ready"
            raise RuntimeError(msg)
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection(host, port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                conn.close()
                return
        time.sleep(0.2)
    msg = f"server on port {port} not ready after {STARTUP_SECONDS}s"
    raise RuntimeError(msg)


@contextlib.contextmanager
def serve_realizar(model_file: Path, log: Path) -> Generator[Endpoint]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "realizar",
        "serve",
        "--model",
        str(model_file),
        "--port",
        str(port),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready("127.0.0.1", port, proc, "/health")
        yield Endpoint("realizar", "127.0.0.1", port, proc)
    finally:
        _stop(proc)


@contextlib.contextmanager
def serve_mlflow(model_dir: Path, workers: int, log: Path) -> Generator[Endpoint]:
    port = _free_port()
    bindir = str(Path(sys.executable).parent)
    exe = shutil.which("mlflow", path=bindir) or "mlflow"
    # mlflow starts `uvicorn` by name: the interpreter's own bin directory must be on PATH.
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    cmd = [exe, "models", "serve", "-m", str(model_dir), "-h", "127.0.0.1", "-p", str(port)]
    cmd += ["--env-manager", "local", "-w", str(workers)]
    with log.open("wb") as out:
        # Its own process group, so stopping it stops its uvicorn workers too.
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    try:
        _wait_ready("127.0.0.1", port, proc, "/ping")
        yield Endpoint("mlflow", "127.0.0.1", port, proc)
    finally:
        _stop(proc, group=True)


def _stop(proc: subprocess.Popen[bytes], group: bool = False) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(proc.pid, 15)
        else:
            proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, 9)
            else:
                proc.kill()
        proc.wait()


def _client(args: tuple[str, int, list[bytes], int, int]) -> tuple[list[int], int, int]:
    """One closed-loop client: warm up, then time each request on one keep-alive connection."""
    host, port, bodies, n, warmup = args
    conn = http.client.HTTPConnection(host, port, timeout=60)
    for i in range(warmup):
        _post(conn, bodies[i % len(bodies)])
    lat = []
    start = time.perf_counter_ns()
    for i in range(n):
        t0 = time.perf_counter_ns()
        _post(conn, bodies[i % len(bodies)])
        lat.append(time.perf_counter_ns() - t0)
    end = time.perf_counter_ns()
    conn.close()
    return lat, start, end


def run_load(ep: Endpoint, bodies: list[bytes], requests: int, clients: int, warmup: int) -> dict:
    per = max(1, requests // clients)
    ctx = mp.get_context("fork")
    with ctx.Pool(clients) as pool:
        results = pool.map(_client, [(ep.host, ep.port, bodies, per, warmup)] * clients)
    lat_ns = np.concatenate([np.asarray(r[0], dtype=np.int64) for r in results])
    wall = (max(r[2] for r in results) - min(r[1] for r in results)) / 1e9
    ms = lat_ns / 1e6
    return {
        "requests": int(lat_ns.size),
        "wall_s": wall,
        "rps": lat_ns.size / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
    }


def _payload(rows: np.ndarray) -> bytes:
    cols = [str(i) for i in range(rows.shape[1])]
    return json.dumps({"dataframe_split": {"columns": cols, "data": rows.tolist()}}).encode()


def _check(ep: Endpoint, x: np.ndarray, want: list[Any]) -> bool:
    conn = http.client.HTTPConnection(ep.host, ep.port, timeout=60)
    got: list[Any] = []
    for start in range(0, len(x), 64):
        got += json.loads(_post(conn, _payload(x[start : start + 64])))["predictions"]
    conn.close()
    return got == want


def _fit(model: str) -> tuple[Any, np.ndarray]:
    from sklearn.datasets import load_breast_cancer  # noqa: PLC0415 - bench-only deps
    from sklearn.ensemble import RandomForestClassifier  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    x, y = load_breast_cancer(return_X_y=True)
    if model == "forest":
        return RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y), x
    # Scaled features are folded into the data: the format holds estimators, not pipelines.
    xs = make_pipeline(StandardScaler()).fit_transform(x)
    return LogisticRegression(max_iter=5000).fit(xs, y), xs


def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import realizar  # noqa: PLC0415

    est, x = _fit(args.model)
    want = est.predict(x).tolist()
    model_file = workdir / f"cancer-{args.model}.safetensors"
    realizar.export_sklearn(est, model_file)
    rng = random.Random(args.seed)
    bodies = [_payload(x[i : i + 1]) for i in rng.sample(range(len(x)), 64)]
    result: dict[str, Any] = {
        "model": f"{type(est).__name__} on breast_cancer ({x.shape[1]} features)",
        "payload": "one row per request, dataframe_split",
        "clients": args.clients,
        "requests_per_round": args.requests,
        "rounds": args.serving_rounds,
        "correct": {},
        "runs": {"realizar": [], "mlflow": []},
        "mlflow_error": None,
    }
    servers: dict[str, contextlib.AbstractContextManager[Endpoint]] = {
        "realizar": serve_realizar(model_file, workdir / "realizar.log")
    }
    if not args.no_mlflow:
        try:
            import mlflow.sklearn  # noqa: PLC0415

            mlflow_dir = workdir / "mlflow-model"
            # MLflow 3 saves with skops, which refuses the tree storage type unless it is
            # named as trusted (it is: we just fitted it).
            trusted = ["sklearn.tree._tree.Tree"] if args.model == "forest" else None
            mlflow.sklearn.save_model(est, str(mlflow_dir), skops_trusted_types=trusted)
            servers["mlflow"] = serve_mlflow(
                mlflow_dir, args.mlflow_workers, workdir / "mlflow.log"
            )
        except ImportError as e:
            result["mlflow_error"] = f"mlflow is not installed: {e}"
    with contextlib.ExitStack() as stack:
        endpoints: dict[str, Endpoint] = {}
        for name, cm in servers.items():
            try:
                endpoints[name] = stack.enter_context(cm)
            except RuntimeError as e:
                log = (workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                result[f"{name}_error"] = f"{e}\n{log}"
        for name, ep in endpoints.items():
            result["correct"][name] = _check(ep, x, want)
        for _ in range(args.serving_rounds):
            order = list(endpoints)
            rng.shuffle(order)
            for name in order:
                run = run_load(endpoints[name], bodies, args.requests, args.clients, args.warmup)
                result["runs"][name].append(run)
    return result


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name, runs in result["runs"].items():
        if runs:
            summary[name] = {
                k: statistics.median(r[k] for r in runs)
                for k in ("rps", "p50_ms", "p90_ms", "p99_ms", "mean_ms")
            }
    real, ml = result["runs"]["realizar"], result["runs"]["mlflow"]
    if real and ml:
        ratios = sorted(a["rps"] / b["rps"] for a, b in zip(real, ml, strict=True))
        summary["rps_ratio"] = {
            "median": statistics.median(ratios),
            "min": ratios[0],
            "max": ratios[-1],
        }
        p50 = sorted(b["p50_ms"] / a["p50_ms"] for a, b in zip(real, ml, strict=True))
        summary["p50_ratio"] = {"median": statistics.median(p50), "min": p50[0], "max": p50[-1]}
    return summary


def markdown(
    result: dict[str, Any], summary: dict[str, Any], command: str, machine: dict, date: str
) -> str:
    lines = [
        "# realizar serving benchmark",
        "",
        f"Command: `{command}`",
        "",
        (
            f"Model: {result['model']}; payload: {result['payload']}; {result['clients']} client "
            f"processes with keep-alive connections, {result['requests_per_round']} requests per "
            f"server per round, {result['rounds']} rounds, medians over rounds."
        ),
        "",
        "| server | requests/s | p50 ms | p90 ms | p99 ms | predictions match sklearn |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("realizar", "mlflow"):
        if name in summary:
            s = summary[name]
            ok = result["correct"].get(name)
            lines.append(
                f"| {name} | {s['rps']:.0f} | {s['p50_ms']:.3f} | {s['p90_ms']:.3f} | "
                f"{s['p99_ms']:.3f} | {ok} |"
            )
    lines.append("")
    if "rps_ratio" in summary:
        r, p = summary["rps_ratio"], summary["p50_ratio"]
        lines.append(
            f"realizar / mlflow requests/s: **{r['median']:.1f}x** (rounds {r['min']:.1f}x to "
            f"{r['max']:.1f}x; target >= {TARGET_RPS_RATIO:.0f}x). p50 latency ratio "
            f"{p['median']:.1f}x."
        )
    lines += [f"\n{k}: {result[k]}" for k in ("mlflow_error", "realizar_error") if result.get(k)]
    if not result["runs"]["mlflow"] and not result.get("mlflow_error"):
        lines.append("\nmlflow: not measured (--no-mlflow).")
    if "realizar" in summary:
        p50 = summary["realizar"]["p50_ms"]
        verdict = "met" if p50 < TARGET_P50_MS else "NOT met"
        lines.append(f"\nrealizar p50 {p50:.3f} ms (target < {TARGET_P50_MS} ms: {verdict}).")
    lines += [
        "",
        (
            f"Machine: {describe(machine)}; Python {machine['python']}; "
            f"{json.dumps(machine['versions'])}; {date}."
        ),
    ]
    return "\n".join(lines) + "\n"


def run_serving_section(args: argparse.Namespace, command: str, machine: dict[str, Any]) -> bool:
    """Run the serving benchmark, write its reports; True when predictions were correct.

    ``machine``: :func:`trueno.bench.machine.machine_info` of the caller (with the
    versions of ``realizar.bench.PACKAGES``), recorded in the JSON and the Markdown.
    """
    with tempfile.TemporaryDirectory(prefix="realizar-serving-") as tmp:
        result = bench(args, Path(tmp))
    summary = summarize(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    date = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    doc = {
        "schema": SCHEMA,
        "command": command,
        "date": date,
        "machine": machine,
        **result,
        "summary": summary,
    }
    (out / "realizar_serving.json").write_text(json.dumps(doc, indent=2))
    text = markdown(result, summary, command, machine, date)
    (out / "realizar_serving.md").write_text(text)
    print(text)
    print(f"wrote {out / 'realizar_serving.json'}, {out / 'realizar_serving.md'}")
    return all(result["correct"].values()) and "realizar" in summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The serving options (shared with ``python -m realizar.bench``)."""
    parser.add_argument("--model", choices=("forest", "logistic"), default="forest")
    parser.add_argument("--requests", type=int, default=2000, help="per server per round")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--warmup", type=int, default=50, help="untimed requests per client")
    parser.add_argument("--mlflow-workers", type=int, default=2)
    parser.add_argument("--no-mlflow", action="store_true", help="measure realizar alone")
    parser.add_argument("--serving-rounds", type=int, default=3, help="interleaved rounds")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realizar.bench_serving", description=__doc__)
    add_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="build/bench")
    args = parser.parse_args(argv)
    argv_shown = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "-m", "realizar.bench_serving", *argv_shown])
    from realizar.bench import PACKAGES  # noqa: PLC0415 (bench imports this module)

    return 0 if run_serving_section(args, command, machine_info(packages=PACKAGES)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
