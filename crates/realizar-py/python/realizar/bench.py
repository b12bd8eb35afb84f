"""realizar benchmarks (``python -m realizar.bench``): sentence embeddings vs NumPy and
onnxruntime.

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
call per sentence, the latency case) and batch 32 (the throughput case); and, on
realizar's token ids (``Encoder.encode_ids``, so only the forward pass is compared),
against onnxruntime running ``realizar.onnx_export``'s ONNX graph of the same weights (one
intra-op and one inter-op thread, the default ``ORT_ENABLE_ALL`` optimisations).
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
from collections.abc import Callable, Mapping
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
PACKAGES = (
    "realizar",
    "safetensors",
    "tokenizers",
    "onnx",
    "onnxruntime",
    "scikit-learn",
    "mlflow",
    "threadpoolctl",
)
# The targets, against sentence-transformers (not measurable here).
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


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _agreement(got: np.ndarray, want: np.ndarray, reference: str) -> dict[str, Any]:
    """Min cosine and max |diff| of ``got`` against ``want``, under the section's bar."""
    cos, diff = float(_cosines(got, want).min()), float(np.abs(got - want).max())
    return {
        "passed": bool(cos >= 0.99999 and diff <= 1e-4),
        "min_cosine": cos,
        "max_abs_diff": diff,
        "bar": "cosine >= 0.99999 and max |diff| <= 1e-4 per sentence",
        "reference": reference,
    }


def _load_onnx_baseline(model_dir: Path) -> tuple[Any, ModuleType]:
    """The exported MiniLM in a one-thread onnxruntime session, and the export module."""
    try:
        from realizar import onnx_export  # noqa: PLC0415
    except ImportError as e:
        msg = (
            f"the onnxruntime rows need onnx and onnxruntime ({e}): install the pyproject.toml "
            "bench group (onnx==1.23.2, onnxruntime==1.32.0)"
        )
        raise SystemExit(msg) from e
    return onnx_export.OnnxEncoder(onnx_export.export_minilm(model_dir), threads=1), onnx_export


def _interleaved(
    candidates: Mapping[str, Callable[[], object]],
    pairs: Mapping[str, tuple[str, str]],
    *,
    rounds: int,
    min_time: float,
    rng: random.Random,
) -> tuple[dict[str, list[float]], dict[str, dict[str, float]]]:
    """Seconds per call of each candidate per round (random order within a round), and
    per pair ``name: (baseline, candidate)`` the median [IQR] of baseline / candidate."""
    for fn in candidates.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in candidates}
    for _ in range(rounds):
        order = list(candidates)
        rng.shuffle(order)
        for k in order:
            times[k].append(_calibrated(candidates[k], min_time))
    ratios = {}
    for name, (base, cand) in pairs.items():
        q1, med, q3 = _quartiles([b / c for b, c in zip(times[base], times[cand], strict=True)])
        ratios[name] = {"median": med, "q1": q1, "q3": q3}
    return times, ratios


def bench_embeddings(
    *,
    rounds: int = 7,
    min_time: float = 0.3,
    seed: int = 0,
    reference_path: str | None = None,
    sentences: int = 64,
) -> dict[str, Any]:
    """Time realizar.Encoder against the NumPy reference and onnxruntime at batch 1 and 32
    (one thread each), on a corpus of ``sentences`` (a quarter of them at batch 1)."""
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
    onnx_encoder, onnx_export = _load_onnx_baseline(model_dir)
    texts = make_corpus(encoder, sentences, seed)
    # realizar's tokenizer ids feed both realizar.encode_ids and onnxruntime: those two
    # rows compare the forward pass (and pooling) only.
    ids = [encoder.tokenizer.encode(t).ids for t in texts]
    tokens = [len(r) for r in ids]

    with threadpool_limits(limits=1):
        from threadpoolctl import threadpool_info  # noqa: PLC0415

        # machine_info() reports BLAS as configured; this is what the timing ran with.
        blas_threads_timed = sorted({p.get("num_threads") for p in threadpool_info()})
        # Correctness gate, on the whole corpus, before anything is timed.
        got = encoder.encode(texts, batch_size=32)
        want = reference.encode(texts, batch_size=32)
        correctness = _agreement(got, want, "realizar.minilm_reference, float32, BLAS 1 thread")
        ort_got = onnx_encoder.encode_ids(ids, batch_size=32)
        ort_vs_numpy = _agreement(ort_got, want, "realizar.minilm_reference, float32")
        ort_vs_realizar = _agreement(
            ort_got, encoder.encode_ids(ids, batch_size=32), "realizar.Encoder.encode_ids"
        )
        correct = all(c["passed"] for c in (correctness, ort_vs_numpy, ort_vs_realizar))

        cases: dict[str, dict[str, Any]] = {}
        for batch, n in ((1, max(1, sentences // 4)), (32, sentences)):
            sub, sub_ids = texts[:n], ids[:n]
            # onnxruntime's inputs are padded int64 arrays: made here, outside the timing.
            ort_batches = [onnx_export.padded_batches(sub_ids, batch)]
            if batch == 1:
                ort_batches = [onnx_export.padded_batches([r], 1) for r in sub_ids]

            def run_realizar(sub: list[str] = sub, batch: int = batch) -> object:
                if batch == 1:
                    return [encoder.encode([t], batch_size=1) for t in sub]
                return encoder.encode(sub, batch_size=batch)

            def run_numpy(sub: list[str] = sub, batch: int = batch) -> object:
                if batch == 1:
                    return [reference.encode([t], batch_size=1) for t in sub]
                return reference.encode(sub, batch_size=batch)

            def run_realizar_ids(sub_ids: list[list[int]] = sub_ids, batch: int = batch) -> object:
                if batch == 1:
                    return [encoder.encode_ids([r], batch_size=1) for r in sub_ids]
                return encoder.encode_ids(sub_ids, batch_size=batch)

            def run_onnxruntime(ort_batches: list[Any] = ort_batches) -> object:
                return [onnx_encoder.run(b) for b in ort_batches]

            candidates = {
                "realizar": run_realizar,
                "numpy": run_numpy,
                "realizar_ids": run_realizar_ids,
                "onnxruntime": run_onnxruntime,
            }
            times, ratios = _interleaved(
                candidates,
                {"numpy": ("numpy", "realizar"), "onnxruntime": ("onnxruntime", "realizar_ids")},
                rounds=rounds,
                min_time=min_time,
                rng=random.Random(seed + batch),
            )
            emb_per_s = {k: n / statistics.median(v) for k, v in times.items()}
            cases[f"batch{batch}"] = {
                "batch_size": batch,
                "sentences": n,
                "mean_tokens": float(np.mean(tokens[:n])),
                "realizar_emb_per_s": emb_per_s["realizar"],
                "numpy_emb_per_s": emb_per_s["numpy"],
                "speedup_vs_numpy": ratios["numpy"],
                "realizar_ids_emb_per_s": emb_per_s["realizar_ids"],
                "onnxruntime_emb_per_s": emb_per_s["onnxruntime"],
                "speedup_vs_onnxruntime": ratios["onnxruntime"],
                "target_vs_sentence_transformers": ST_TARGETS[batch],
                "sentence_transformers_measured": False,
            }
    import onnxruntime  # noqa: PLC0415

    options = onnx_encoder.options
    return {
        "model": encoder.model_name,
        "model_dir": str(model_dir),
        "threads": 1,
        "blas_threads_timed": blas_threads_timed,
        "rounds": rounds,
        "min_time_s": min_time,
        "correctness": {**correctness, "passed": correct},
        "onnxruntime": {
            "version": onnxruntime.__version__,
            "export": f"realizar.onnx_export, opset {onnx_export.OPSET}",
            "intra_op_num_threads": options.intra_op_num_threads,
            "inter_op_num_threads": options.inter_op_num_threads,
            "graph_optimization_level": str(options.graph_optimization_level).split(".")[-1],
            "vs_numpy": ort_vs_numpy,
            "vs_realizar": ort_vs_realizar,
        },
        "cases": cases,
        "note": (
            "sentence-transformers could not be installed here (it pulls multi-GB CUDA "
            "PyTorch wheels); its targets (>=1.0x at batch 32, >=3x at batch 1) are not "
            "measured. The baselines are the NumPy/OpenBLAS forward pass (text in, both "
            "sides tokenize) and onnxruntime on realizar.onnx_export's graph of the same "
            "weights (realizar's token ids in, for realizar.Encoder.encode_ids and "
            "onnxruntime alike)."
        ),
    }


def embeddings_markdown(result: dict[str, Any], command: str, machine: dict[str, Any]) -> str:
    """The Markdown report of :func:`bench_embeddings`."""
    c, ort = result["correctness"], result["onnxruntime"]
    verdict = "PASS" if c["passed"] else "FAIL"

    def agreement(a: dict[str, Any]) -> str:
        return f"min cosine {a['min_cosine']:.8f}, max |diff| {a['max_abs_diff']:.2e}"

    lines = [
        "# realizar sentence embeddings vs NumPy and onnxruntime",
        "",
        f"Command: `{command}`  ",
        (
            f"Model: {result['model']}, realizar threads: 1, BLAS threads: 1, "
            f"{result['rounds']} interleaved rounds, samples >= {result['min_time_s']} s.  "
        ),
        (
            f"onnxruntime {ort['version']} on {ort['export']}: intra_op_num_threads "
            f"{ort['intra_op_num_threads']}, inter_op_num_threads "
            f"{ort['inter_op_num_threads']}, {ort['graph_optimization_level']} (the default).  "
        ),
        f"Machine: {describe(machine)}",
        "",
        (
            f"Correctness ({c['bar']}): {verdict}: realizar {agreement(c)} vs {c['reference']}; "
            f"onnxruntime {agreement(ort['vs_numpy'])} vs the same, "
            f"{agreement(ort['vs_realizar'])} vs {ort['vs_realizar']['reference']}."
        ),
        "",
        "Text in (each side tokenizes), realizar.Encoder.encode against the NumPy forward:",
        "",
        (
            "| batch | sentences | mean tokens | realizar emb/s | NumPy emb/s "
            "| speed-up (median [IQR]) | issue target vs sentence-transformers |"
        ),
        "|---|---|---|---|---|---|---|",
    ]

    def ratio(s: dict[str, float]) -> str:
        return f"{s['median']:.2f}x [{s['q1']:.2f}-{s['q3']:.2f}]"

    lines += [
        f"| {case['batch_size']} | {case['sentences']} | {case['mean_tokens']:.0f} "
        f"| {case['realizar_emb_per_s']:.1f} | {case['numpy_emb_per_s']:.1f} "
        f"| {ratio(case['speedup_vs_numpy'])} "
        f"| >= {case['target_vs_sentence_transformers']:.1f}x (not measured) |"
        for case in result["cases"].values()
    ]
    lines += [
        "",
        "realizar's token ids in, realizar.Encoder.encode_ids against onnxruntime:",
        "",
        (
            "| batch | sentences | mean tokens | realizar emb/s | onnxruntime emb/s "
            "| realizar / onnxruntime (median [IQR]) |"
        ),
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {case['batch_size']} | {case['sentences']} | {case['mean_tokens']:.0f} "
        f"| {case['realizar_ids_emb_per_s']:.1f} | {case['onnxruntime_emb_per_s']:.1f} "
        f"| {ratio(case['speedup_vs_onnxruntime'])} |"
        for case in result["cases"].values()
    ]
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
