"""LLM rows of the realizar benchmark: prefill and decode speed, first token, memory, roofline.

    python -m realizar.bench_llm [--model PATH] [--prompt-tokens 128] [--decode-tokens 64]
                                 [--rounds 3] [--threads 1 2] [--formats Q8_0 F32]
                                 [--json out.json]

For each thread count it measures, interleaved round by round with llama-cpp-python when that
is installed (the bench session builds it; it is never part of `make check`):

* prefill tokens/s: a prompt of ``--prompt-tokens`` tokens, one batch, to its first logits;
* time to first token: load excluded, prompt in, first sampled token out;
* decode tokens/s: ``--decode-tokens`` greedy tokens after the prompt;
* resident memory (VmRSS) after loading, per engine in a fresh process;
* the decode roofline: every token reads every weight once, so tokens/s <= bandwidth / bytes of
  weights, with the bandwidth measured here (NumPy copy of 512 MiB).

Ratios are per round (realizar / llama.cpp), reported as the median with the spread.

``--formats`` adds the same rows for the model re-quantised by ``realizar.quantize_gguf`` from
its dequantised values (default Q8_0 and F32; none with a bare ``--formats``), each file
written to a temporary directory and removed after: the same weights at 8.5 and 32 bits per
value beside the source's, to show what bytes per weight cost at prefill and at decode.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from realizar import quantize_gguf
from realizar.models import default_llm_path
from trueno.bench.machine import loadavg, machine_info

PROMPT_TEXT = (
    "The history of the printing press begins in the fifteenth century, when movable type "
    "changed how knowledge spread across Europe. "
)


def measured_bandwidth_gbs(mib: int = 512, repeats: int = 5) -> float:
    """Memory bandwidth from a NumPy copy (read + write bytes per second), best of `repeats`."""
    a = np.ones(mib * 2**20 // 8)
    b = np.empty_like(a)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.nbytes / best / 1e9


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _prompt_ids(tokenize, n: int) -> list[int]:
    ids: list[int] = []
    while len(ids) < n:
        ids += tokenize(PROMPT_TEXT)
    return ids[:n]


class RealizarEngine:
    name = "realizar"

    def __init__(self, path: Path, threads: int) -> None:
        import realizar  # noqa: PLC0415

        self.llm = realizar.LLM.load(path, threads=threads)

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text)

    def run(self, ids: list[int], decode: int) -> tuple[float, float, float]:
        """(prefill seconds, time to first token, decode seconds for `decode` - 1 tokens)."""
        t0 = time.perf_counter()
        self.llm.logits(ids[-1:])  # warm the caches of the call path, negligible
        t0 = time.perf_counter()
        marks: list[float] = []

        def on_token(_t: int) -> bool:
            marks.append(time.perf_counter())
            return True

        self.llm._inner.generate_ids(ids, max_tokens=decode, stop_token_ids=[], on_token=on_token)
        ttft = marks[0] - t0
        return ttft, ttft, marks[-1] - marks[0]


class LlamaCppEngine:
    name = "llama.cpp"

    def __init__(self, path: Path, threads: int) -> None:
        import llama_cpp  # noqa: PLC0415  # ty: ignore[import-not-found]

        self.version = llama_cpp.__version__
        self.llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=1024,
            n_threads=threads,
            n_threads_batch=threads,
            n_batch=512,
            verbose=False,
        )

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=False, special=True)

    def _argmax(self) -> int:
        # Llama.scores stays zero in 0.3.36 unless logits_all is set: read the context's.
        n = self.llm.n_vocab()
        return int(np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(n,)).argmax())

    def run(self, ids: list[int], decode: int) -> tuple[float, float, float]:
        self.llm.reset()
        t0 = time.perf_counter()
        self.llm.eval(ids)
        tok = self._argmax()
        ttft = time.perf_counter() - t0
        t1 = time.perf_counter()
        for _ in range(decode - 1):
            self.llm.eval([tok])
            tok = self._argmax()
        return ttft, ttft, time.perf_counter() - t1


def _rss_of(engine: str, path: Path, threads: int) -> float:
    """VmRSS of a fresh process that loaded `engine` (MiB)."""
    code = (
        "import sys; from pathlib import Path; from realizar.bench_llm import *; "
        f"e = {engine}(Path({str(path)!r}), {threads}); print(rss_mib())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def bench(path: Path, prompt_tokens: int, decode_tokens: int, rounds: int, threads: list[int]):
    engines = [RealizarEngine]
    try:
        import llama_cpp  # noqa: F401, PLC0415  # ty: ignore[import-not-found]

        engines.append(LlamaCppEngine)
    except ImportError:
        print("llama-cpp-python is not installed: realizar rows only", file=sys.stderr)
    weights = path.stat().st_size
    bw = measured_bandwidth_gbs()
    rows = []
    for t in threads:
        live = [cls(path, t) for cls in engines]
        ids = _prompt_ids(live[0].tokenize, prompt_tokens)
        res: dict[str, dict[str, list[float]]] = {
            e.name: {"prefill": [], "ttft": [], "decode": []} for e in live
        }
        for e in live:  # warm-up
            e.run(ids, 4)
        for r in range(rounds):
            order = live if r % 2 == 0 else live[::-1]
            for e in order:
                pre, ttft, dec = e.run(ids, decode_tokens)
                res[e.name]["prefill"].append(len(ids) / pre)
                res[e.name]["ttft"].append(ttft * 1e3)
                res[e.name]["decode"].append((decode_tokens - 1) / dec)
        for e in live:
            m = res[e.name]
            row = {
                "engine": e.name,
                "threads": t,
                "prompt_tokens": len(ids),
                "prefill_tok_s": statistics.median(m["prefill"]),
                "ttft_ms": statistics.median(m["ttft"]),
                "decode_tok_s": statistics.median(m["decode"]),
                "rss_mib": _rss_of(type(e).__name__, path, t),
                "roofline_decode_tok_s": bw * 1e9 / weights,
            }
            if e.name != "realizar" and "realizar" in res:
                base = res["realizar"]
                for k in ("prefill", "decode"):
                    ratios = [a / b for a, b in zip(base[k], m[k], strict=True)]
                    row[f"realizar_over_llamacpp_{k}"] = statistics.median(ratios)
                    row[f"realizar_over_llamacpp_{k}_spread"] = (min(ratios), max(ratios))
            rows.append(row)
        del live
    return {
        "model": path.name,
        "weights_bytes": weights,
        "bandwidth_gbs": bw,
        "load_average": loadavg(),
        "rows": rows,
    }


def markdown(report: dict, machine: dict) -> str:
    """The table of one :func:`bench` run; ``machine``: :func:`machine_info` of the run."""
    load = report["load_average"]
    head = (
        f"model {report['model']} ({report['weights_bytes'] / 1e6:.0f} MB), CPU "
        f"{machine['cpu']['model']}, {machine['ncpu']} CPUs, bandwidth "
        f"{report['bandwidth_gbs']:.1f} GB/s (NumPy copy), load average "
        + ("unknown" if load is None else ", ".join(f"{x:.1f}" for x in load))
    )
    cols = (
        "| engine | threads | prefill tok/s | first token ms | decode tok/s "
        "| decode roofline tok/s | RSS MiB |"
    )
    lines = [head, "", cols, "|---|---|---|---|---|---|---|"]
    lines.extend(
        f"| {r['engine']} | {r['threads']} | {r['prefill_tok_s']:.0f} | {r['ttft_ms']:.1f} | "
        f"{r['decode_tok_s']:.1f} | {r['roofline_decode_tok_s']:.0f} | {r['rss_mib']:.0f} |"
        for r in report["rows"]
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--prompt-tokens", type=int, default=128)
    p.add_argument("--decode-tokens", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--formats", nargs="*", default=["Q8_0", "F32"], metavar="TYPE")
    a = p.parse_args(argv)
    path = a.model or default_llm_path()
    machine = machine_info(packages=("realizar", "llama-cpp-python"))
    report = bench(path, a.prompt_tokens, a.decode_tokens, a.rounds, a.threads)
    report["machine"] = machine
    print(markdown(report, machine), flush=True)
    report["formats"] = {}
    with tempfile.TemporaryDirectory(prefix="bench-llm-") as tmp:
        for kind in a.formats:
            dst = Path(tmp) / f"{path.stem}.{kind}.gguf"
            quantize_gguf(path, dst, kind)
            sub = bench(dst, a.prompt_tokens, a.decode_tokens, a.rounds, a.threads)
            sub["model"] = f"{path.name} as {kind} (realizar.quantize_gguf)"
            report["formats"][kind] = sub
            print("\n" + markdown(sub, machine), flush=True)
            dst.unlink()
    if a.json:
        a.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
