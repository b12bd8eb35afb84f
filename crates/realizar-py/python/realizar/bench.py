"""realizar benchmarks (``python -m realizar.bench``): sentence embeddings vs NumPy.

Method (docs/PERF.md): correctness is checked first in the same run; realizar and the
baseline are timed back to back in a random order each round, every sample calibrated to
at least ``--min-time`` of work after a warm-up, and the report gives the median of the
per-round speed ratios with its interquartile range. BLAS is pinned to one thread and
realizar runs on one thread. The machine is recorded by
``trueno.bench.machine.machine_info`` (CPU, flags, load average, BLAS, versions,
trueno's measured machine model), so realizar's benchmark modules need the ``trueno``
wheel beside ``realizar`` (the bench sessions install both; ``import realizar`` does not).

**Embeddings.** all-MiniLM-L6-v2 through ``realizar.Encoder`` against the independent
NumPy forward pass of ``realizar.minilm_reference`` (float32, the dtype
sentence-transformers computes in), on sentences of 8 to 128 tokens, at batch 1 (one
call per sentence, the latency case) and batch 32 (the throughput case).
sentence-transformers itself cannot be installed here (it pulls PyTorch's multi-GB CUDA
wheels), so the issue's targets (>= 1.0x sentence-transformers at batch 32, >= 3x at
batch 1) are not measured; NumPy with OpenBLAS stands in for them.

Outputs (``--out``, default ``build/bench/``): ``realizar_embeddings.json`` and
``realizar_embeddings.md``, each naming the command that produced it. Other sections
register in :data:`SECTIONS`. Exit code 1 when a correctness check fails.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import importlib.util
import json
import random
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from realizar.bench_precision import run_precision_section
from realizar.bench_serving import add_arguments as add_serving_arguments
from realizar.bench_serving import run_serving_section
from trueno.bench.machine import describe, machine_info

# /2: the machine block is trueno.bench.machine.machine_info()'s (it was realizar's own).
SCHEMA = "realizar-bench/2"
# Versions the reports record beside trueno's and NumPy's.
PACKAGES = ("realizar", "safetensors", "tokenizers", "scikit-learn", "mlflow", "threadpoolctl")
# The issue's targets, against sentence-transformers (not measurable here).
ST_TARGETS = {1: 3.0, 32: 1.0}

_WORDS = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "for",
    "on",
    "with",
    "as",
    "by",
    "at",
    "from",
    "that",
    "this",
    "model",
    "data",
    "vector",
    "kernel",
    "sentence",
    "embedding",
    "search",
    "query",
    "document",
    "retrieval",
    "rust",
    "python",
    "lakehouse",
    "delta",
    "spark",
    "table",
    "stream",
    "batch",
    "token",
    "attention",
    "layer",
    "matrix",
    "cosine",
    "similarity",
    "fast",
    "slow",
    "small",
    "large",
    "engineer",
    "course",
    "notebook",
    "cluster",
    "pipeline",
    "feature",
    "training",
    "inference",
    "serving",
    "latency",
    "throughput",
    "benchmark",
    "memory",
    "cache",
    "core",
    "thread",
    "simd",
    "avx",
    "compile",
    "release",
    "wheel",
    "package",
    "naïve",
    "café",
    "résumé",
    "über",
    "straße",
    "北京",
    "数据",
    "😀",
    "3.14",
    "2024",
    "x-ray",
    "e-mail",
    "don't",
    "it's",
]


def find_reference(path: str | None = None) -> ModuleType:
    """The NumPy forward (``realizar.minilm_reference``), or the module at ``path``."""
    if path is None:
        return importlib.import_module("realizar.minilm_reference")
    spec = importlib.util.spec_from_file_location("minilm_reference", path)
    if spec is None or spec.loader is None:
        msg = f"cannot import a reference module from {path}"
        raise FileNotFoundError(msg)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_corpus(encoder: Any, n: int, seed: int, lo: int = 8, hi: int = 128) -> list[str]:
    """``n`` sentences of ``lo`` to ``hi`` tokens ([CLS]/[SEP] included), reproducible."""
    rng = random.Random(seed)
    texts = []
    while len(texts) < n:
        target = rng.randint(lo, hi)
        words: list[str] = []
        while encoder.count_tokens(" ".join(words)) < target:
            words.append(rng.choice(_WORDS))
        text = " ".join(words)
        if encoder.count_tokens(text) <= hi:
            texts.append(text)
    return texts


def _calibrated(fn: Callable[[], object], min_time: float) -> float:
    """Seconds per call of ``fn``, repeating until ``min_time`` of work."""
    reps, start = 0, time.perf_counter()
    while True:
        fn()
        reps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / reps


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], statistics.median(xs), q[2]


def bench_embeddings(
    *, rounds: int = 7, min_time: float = 0.3, seed: int = 0, reference_path: str | None = None
) -> dict[str, Any]:
    """Time realizar.Encoder against the NumPy reference at batch 1 and 32 (one thread)."""
    import realizar  # noqa: PLC0415
    from realizar.models import default_model_dir  # noqa: PLC0415

    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
    except ImportError as e:
        msg = "the benchmark pins BLAS to one thread with threadpoolctl: pip install threadpoolctl"
        raise SystemExit(msg) from e

    ref_mod = find_reference(reference_path)
    model_dir = default_model_dir()
    encoder = realizar.Encoder.load(threads=1)  # the packaged model, under its name
    reference = ref_mod.MiniLMReference(model_dir, dtype=np.float32)
    texts = make_corpus(encoder, 64, seed)
    tokens = [encoder.count_tokens(t) for t in texts]

    with threadpool_limits(limits=1):
        from threadpoolctl import threadpool_info  # noqa: PLC0415

        # machine_info() reports BLAS as configured; this is what the timing ran with.
        blas_threads_timed = sorted({p.get("num_threads") for p in threadpool_info()})
        # Correctness gate, on the whole corpus, before anything is timed.
        got = encoder.encode(texts, batch_size=32).astype(np.float64)
        want = reference.encode(texts, batch_size=32).astype(np.float64)
        cos = np.sum(got * want, axis=1) / (
            np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1)
        )
        max_diff = float(np.abs(got - want).max())
        correct = bool(cos.min() >= 0.99999 and max_diff <= 1e-4)

        cases: dict[str, dict[str, Any]] = {}
        for batch, n in ((1, 16), (32, 64)):
            subset = texts[:n]

            def run_realizar(subset: list[str] = subset, batch: int = batch) -> object:
                if batch == 1:
                    return [encoder.encode([t], batch_size=1) for t in subset]
                return encoder.encode(subset, batch_size=batch)

            def run_numpy(subset: list[str] = subset, batch: int = batch) -> object:
                if batch == 1:
                    return [reference.encode([t], batch_size=1) for t in subset]
                return reference.encode(subset, batch_size=batch)

            candidates = {"realizar": run_realizar, "numpy": run_numpy}
            for fn in candidates.values():
                fn()  # warm-up
            times: dict[str, list[float]] = {k: [] for k in candidates}
            ratios = []
            rng = random.Random(seed + batch)
            for _ in range(rounds):
                order = list(candidates)
                rng.shuffle(order)
                t = {k: _calibrated(candidates[k], min_time) for k in order}
                for k, v in t.items():
                    times[k].append(v)
                ratios.append(t["numpy"] / t["realizar"])
            q1, med, q3 = _quartiles(ratios)
            cases[f"batch{batch}"] = {
                "batch_size": batch,
                "sentences": n,
                "mean_tokens": float(np.mean(tokens[:n])),
                "realizar_emb_per_s": n / statistics.median(times["realizar"]),
                "numpy_emb_per_s": n / statistics.median(times["numpy"]),
                "speedup_vs_numpy": {"median": med, "q1": q1, "q3": q3},
                "target_vs_sentence_transformers": ST_TARGETS[batch],
                "sentence_transformers_measured": False,
            }
    return {
        "model": encoder.model_name,
        "model_dir": str(model_dir),
        "threads": 1,
        "blas_threads_timed": blas_threads_timed,
        "rounds": rounds,
        "min_time_s": min_time,
        "correctness": {
            "passed": correct,
            "min_cosine": float(cos.min()),
            "max_abs_diff": max_diff,
            "bar": "cosine >= 0.99999 and max |diff| <= 1e-4 per sentence",
            "reference": "realizar.minilm_reference, float32, BLAS 1 thread",
        },
        "cases": cases,
        "note": (
            "sentence-transformers could not be installed here (it pulls multi-GB CUDA "
            "PyTorch wheels); its targets (>=1.0x at batch 32, >=3x at batch 1) are not "
            "measured. The baseline is the NumPy/OpenBLAS forward pass."
        ),
    }


def embeddings_markdown(result: dict[str, Any], command: str, machine: dict[str, Any]) -> str:
    """The Markdown report of :func:`bench_embeddings`."""
    c = result["correctness"]
    verdict = "PASS" if c["passed"] else "FAIL"
    lines = [
        "# realizar sentence embeddings vs NumPy",
        "",
        f"Command: `{command}`  ",
        (
            f"Model: {result['model']}, realizar threads: 1, BLAS threads: 1, "
            f"{result['rounds']} interleaved rounds, samples >= {result['min_time_s']} s.  "
        ),
        f"Machine: {describe(machine)}",
        "",
        (
            f"Correctness ({c['bar']}): {verdict}: min cosine {c['min_cosine']:.8f}, "
            f"max |diff| {c['max_abs_diff']:.2e} vs {c['reference']}."
        ),
        "",
        (
            "| batch | sentences | mean tokens | realizar emb/s | NumPy emb/s "
            "| speed-up (median [IQR]) | issue target vs sentence-transformers |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for case in result["cases"].values():
        s = case["speedup_vs_numpy"]
        lines.append(
            f"| {case['batch_size']} | {case['sentences']} | {case['mean_tokens']:.0f} "
            f"| {case['realizar_emb_per_s']:.1f} | {case['numpy_emb_per_s']:.1f} "
            f"| {s['median']:.2f}x [{s['q1']:.2f}-{s['q3']:.2f}] "
            f"| >= {case['target_vs_sentence_transformers']:.1f}x (not measured) |"
        )
    lines += ["", result["note"], ""]
    return "\n".join(lines)


def write_report(
    section: str,
    result: dict[str, Any],
    markdown: str,
    *,
    out: Path,
    command: str,
    machine: dict[str, Any],
) -> list[Path]:
    """Write a section's ``realizar_<section>.{json,md}`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "schema": SCHEMA,
        "section": section,
        "command": command,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        **result,
    }
    js, md = out / f"realizar_{section}.json", out / f"realizar_{section}.md"
    js.write_text(json.dumps(payload, indent=2) + "\n")
    md.write_text(markdown)
    return [js, md]


def run_embeddings_section(args: argparse.Namespace, command: str, machine: dict[str, Any]) -> bool:
    """Run, write and print the embeddings section; True when correctness passed."""
    result = bench_embeddings(
        rounds=args.rounds, min_time=args.min_time, seed=args.seed, reference_path=args.reference
    )
    markdown = embeddings_markdown(result, command, machine)
    paths = write_report(
        "embeddings", result, markdown, out=Path(args.out), command=command, machine=machine
    )
    print(markdown)
    print("wrote", ", ".join(str(p) for p in paths))
    return bool(result["correctness"]["passed"])


# Sections by name: each takes (args, command, machine) and returns whether its
# correctness checks passed.
SECTIONS: dict[str, Callable[[argparse.Namespace, str, dict[str, Any]], bool]] = {
    "embeddings": run_embeddings_section,
    "precision": run_precision_section,
    "serving": run_serving_section,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realizar.bench", description=__doc__)
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append", help="sections to run")
    parser.add_argument("--out", default="build/bench", help="report directory")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.3, help="seconds per sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference", default=None, help="path to minilm_reference.py")
    add_serving_arguments(parser)
    args = parser.parse_args(argv)
    command = shlex.join(
        ["python", "-m", "realizar.bench", *(sys.argv[1:] if argv is None else argv)]
    )
    machine = machine_info(packages=PACKAGES)
    ok = True
    for name in args.only or sorted(SECTIONS):
        ok = SECTIONS[name](args, command, machine) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
