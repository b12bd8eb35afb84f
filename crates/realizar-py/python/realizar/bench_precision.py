"""The reduced-precision opt-ins, side by side (``python -m realizar.bench --only precision``).

Two opt-ins run through trueno::lowp with their weights converted once at load:
``realizar.Encoder.load(precision=...)`` (all-MiniLM-L6-v2's weight matmuls) and
``realizar.LLM.load(prefill_precision=...)`` (SmolLM2's prompt pass; decode unchanged). Each
precision is timed against f32 in the same run, interleaved in a random order per round,
and reported as the median of the per-round speed ratios (f32 time / lowp time) with its
interquartile range; accuracy is measured in the same run against the f32 path. One
thread everywhere.

* Encoder: 16 sentences one per call (batch 1) and 64 sentences at batch 32, 8-128 tokens
  (``realizar.bench.make_corpus``); accuracy: min cosine to the f32 embeddings and max
  |difference| over the 64.
* LLM: time to first token, ``generate(ids, max_tokens=1)`` (the prefill plus one sampled
  token), for prompts of 32 and 128 tokens; accuracy: over every position of those prompts
  and of three short ones, the worst max |difference| of the logits relative to the f32
  logits' spread, and the share of positions whose top-1 token equals f32's.

Outputs under ``--out``: ``realizar_precision.json`` and ``realizar_precision.md``.
"""

from __future__ import annotations

import argparse
import random
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from trueno.bench.machine import describe

PRECISIONS = ("bf16", "int8")
_LLM_PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Émilie a mangé 3 croissants 🥐 et",
]
_FILLER = (
    "The lakehouse keeps tables in open formats on object storage, and every job reads them "
    "through one catalog so that lineage, permissions and versions stay in one place. "
)


def _ratios(
    candidates: dict[str, Callable[[], object]], rounds: int, min_time: float, seed: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per-candidate times and per-round ratios ``f32 / candidate``, interleaved rounds."""
    from realizar.bench import _calibrated  # noqa: PLC0415

    for fn in candidates.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in candidates}
    ratios: dict[str, list[float]] = {k: [] for k in candidates if k != "f32"}
    rng = random.Random(seed)
    for _ in range(rounds):
        order = list(candidates)
        rng.shuffle(order)
        t = {k: _calibrated(candidates[k], min_time) for k in order}
        for k, v in t.items():
            times[k].append(v)
        for k, xs in ratios.items():
            xs.append(t["f32"] / t[k])
    return times, ratios


def _summary(xs: list[float]) -> dict[str, float]:
    from realizar.bench import _quartiles  # noqa: PLC0415

    q1, med, q3 = _quartiles(xs)
    return {"median": med, "q1": q1, "q3": q3}


def bench_encoder(*, rounds: int, min_time: float, seed: int) -> dict[str, Any]:
    import realizar  # noqa: PLC0415
    from realizar.bench import make_corpus  # noqa: PLC0415

    encoders = {"f32": realizar.Encoder.load(threads=1)}
    for p in PRECISIONS:
        encoders[p] = realizar.Encoder.load(threads=1, precision=p)
    texts = make_corpus(encoders["f32"], 64, seed)
    base = encoders["f32"].encode(texts, batch_size=32).astype(np.float64)
    accuracy = {}
    for p in PRECISIONS:
        got = encoders[p].encode(texts, batch_size=32).astype(np.float64)
        cos = (got * base).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(base, axis=1))
        accuracy[p] = {
            "path": encoders[p].lowp_path,
            "min_cosine_to_f32": float(cos.min()),
            "median_cosine_to_f32": float(np.median(cos)),
            "max_abs_diff_to_f32": float(np.abs(got - base).max()),
        }
    cases = {}
    for batch, n in ((1, 16), (32, 64)):
        subset = texts[:n]

        def run(enc: Any, subset: list[str] = subset, batch: int = batch) -> Callable[[], object]:
            if batch == 1:
                return lambda: [enc.encode([t], batch_size=1) for t in subset]
            return lambda: enc.encode(subset, batch_size=batch)

        times, ratios = _ratios(
            {k: run(e) for k, e in encoders.items()}, rounds, min_time, seed + batch
        )
        cases[f"batch{batch}"] = {
            "batch_size": batch,
            "sentences": n,
            "emb_per_s": {k: n / statistics.median(v) for k, v in times.items()},
            "speedup_vs_f32": {k: _summary(v) for k, v in ratios.items()},
        }
    return {"model": encoders["f32"].model_name, "accuracy": accuracy, "cases": cases}


def bench_llm(*, rounds: int, min_time: float, seed: int) -> dict[str, Any]:
    import realizar  # noqa: PLC0415

    llms = {"f32": realizar.LLM.load(threads=1)}
    for p in PRECISIONS:
        llms[p] = realizar.LLM.load(threads=1, prefill_precision=p)
    base = llms["f32"]
    long_ids = base.tokenize(_FILLER * 8)
    prompts = {n: long_ids[:n] for n in (32, 128)}
    checked = [base.tokenize(t) for t in _LLM_PROMPTS] + list(prompts.values())
    accuracy = {}
    for p in PRECISIONS:
        worst, top1, positions = 0.0, 0, 0
        for ids in checked:
            want, got = base.logits(ids), llms[p].logits(ids)
            spread = want.max(axis=1) - want.min(axis=1)
            worst = max(worst, float((np.abs(got - want).max(axis=1) / spread).max()))
            top1 += int((got.argmax(axis=1) == want.argmax(axis=1)).sum())
            positions += len(ids)
        accuracy[p] = {
            "path": llms[p].prefill_lowp_path,
            "max_diff_over_spread": worst,
            "top1_equal": top1 / positions,
            "positions": positions,
        }
    cases = {}
    for n, ids in prompts.items():
        times, ratios = _ratios(
            {k: (lambda m=m, ids=ids: m.generate(ids, max_tokens=1)) for k, m in llms.items()},
            rounds,
            min_time,
            seed + n,
        )
        cases[f"prompt{n}"] = {
            "prompt_tokens": n,
            "ttft_ms": {k: 1e3 * statistics.median(v) for k, v in times.items()},
            "speedup_vs_f32": {k: _summary(v) for k, v in ratios.items()},
        }
    return {"model": base.name, "accuracy": accuracy, "cases": cases}


def precision_markdown(result: dict[str, Any], command: str, machine: dict[str, Any]) -> str:
    enc, llm = result["encoder"], result["llm"]

    def ratio(s: dict[str, float]) -> str:
        return f"{s['median']:.2f}x [{s['q1']:.2f}-{s['q3']:.2f}]"

    lines = [
        "# realizar reduced-precision opt-ins vs f32",
        "",
        f"Command: `{command}`  ",
        (
            f"One thread, {result['rounds']} interleaved rounds, "
            f"samples >= {result['min_time_s']} s.  "
        ),
        f"Machine: {describe(machine)}",
        "",
        f"## Encoder ({enc['model']}, `Encoder.load(precision=...)`)",
        "",
        (
            "| precision | kernel | min cosine to f32 | max abs diff | batch 1 emb/s | vs f32 "
            "| batch 32 emb/s | vs f32 |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    b1, b32 = enc["cases"]["batch1"], enc["cases"]["batch32"]
    lines.append(
        f"| f32 | trueno::matmul | 1 | 0 | {b1['emb_per_s']['f32']:.1f} | 1 "
        f"| {b32['emb_per_s']['f32']:.1f} | 1 |"
    )
    for p in PRECISIONS:
        a = enc["accuracy"][p]
        lines.append(
            f"| {p} | {a['path']} | {a['min_cosine_to_f32']:.5f} | {a['max_abs_diff_to_f32']:.4f} "
            f"| {b1['emb_per_s'][p]:.1f} | {ratio(b1['speedup_vs_f32'][p])} "
            f"| {b32['emb_per_s'][p]:.1f} | {ratio(b32['speedup_vs_f32'][p])} |"
        )
    lines += [
        "",
        f"## LLM prefill ({llm['model']}, `LLM.load(prefill_precision=...)`)",
        "",
        (
            "Time to first token, `generate(ids, max_tokens=1)`; accuracy over every position "
            "of five prompts (3-128 tokens) against the f32 logits."
        ),
        "",
        "| precision | kernel | max diff / spread | top-1 equal "
        + "".join(f"| TTFT {c['prompt_tokens']} tok (ms) | vs f32 " for c in llm["cases"].values())
        + "|",
        "|---|---|---|---" + "|---|---" * len(llm["cases"]) + "|",
    ]
    row = "| f32 (default) | Q4_1 x Q8 activations (trueno::quant) | 0 | 1 "
    for c in llm["cases"].values():
        row += f"| {c['ttft_ms']['f32']:.1f} | 1 "
    lines.append(row + "|")
    for p in PRECISIONS:
        a = llm["accuracy"][p]
        row = f"| {p} | {a['path']} | {a['max_diff_over_spread']:.4f} | {a['top1_equal']:.3f} "
        for c in llm["cases"].values():
            row += f"| {c['ttft_ms'][p]:.1f} | {ratio(c['speedup_vs_f32'][p])} "
        lines.append(row + "|")
    lines.append("")
    return "\n".join(lines)


def run_precision_section(args: argparse.Namespace, command: str, machine: dict[str, Any]) -> bool:
    """Run, write and print the precision section (always True: accuracy is reported)."""
    opts = {"rounds": args.rounds, "min_time": args.min_time, "seed": args.seed}
    result = {
        "rounds": args.rounds,
        "min_time_s": args.min_time,
        "encoder": bench_encoder(**opts),
        "llm": bench_llm(**opts),
    }
    from realizar.bench import write_report  # noqa: PLC0415 (bench imports this module)

    markdown = precision_markdown(result, command, machine)
    js, md = write_report(
        "precision", result, markdown, out=Path(args.out), command=command, machine=machine
    )
    print(md.read_text())
    print("wrote", js, md)
    return True
