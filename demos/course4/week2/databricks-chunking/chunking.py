# Databricks notebook source
# MAGIC %md
# MAGIC # Chunking: how to cut documents for retrieval, compared by measurement
# MAGIC
# MAGIC Course 4, week 2. A retriever returns passages, not documents: a 3,000-character
# MAGIC manual is too long for the embedding model (MiniLM reads 256 tokens, about 1,000
# MAGIC characters, and silently drops the rest) and too long to paste into a prompt five at a
# MAGIC time. So documents are **chunked** before they are indexed. How they are cut decides
# MAGIC what can be found:
# MAGIC
# MAGIC - **fixed size**: every `size` characters, optionally overlapping by `overlap`;
# MAGIC - **recursive**: at the largest separator that fits (blank lines, then line breaks,
# MAGIC   sentence ends, spaces), so paragraphs stay whole where they can;
# MAGIC - **sentences**: whole sentences packed up to `size`;
# MAGIC - **markdown**: at headings first, then recursively inside a section, each chunk
# MAGIC   keeping the path of headings above it.
# MAGIC
# MAGIC All four come from `realizar.rag` (the course's crate `trueno-rag`). Every chunk
# MAGIC knows its character range in the source, so we can say exactly whether it holds the
# MAGIC answer to a labelled question. On Databricks the same functions run on the driver (or
# MAGIC in a pandas UDF over a table of documents) once the `realizar` wheel is installed; the
# MAGIC chunks then go to a Delta table that a Vector Search index syncs from (previous lesson).
# MAGIC
# MAGIC No strategy is assumed to win. We measure three things:
# MAGIC
# MAGIC 1. **structure** (whole knowledge base, no model): how many chunks, whether the
# MAGIC    sentence that answers each question survives in one piece, whether a chunk mixes
# MAGIC    two sections, whether it fits the model's window;
# MAGIC 2. **keyword retrieval** (BM25, whole knowledge base, all 123 questions): recall@5 and
# MAGIC    MRR with each strategy's chunks;
# MAGIC 3. **vector retrieval** (MiniLM embeddings) on a sample of questions and documents (the
# MAGIC    `n_questions` widget; embedding every strategy's chunks of the whole base takes
# MAGIC    minutes on a laptop).

# COMMAND ----------

import itertools
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import realizar
from realizar import rag

_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "knowledge_base.py").is_file())
sys.path.insert(0, str(_root / "data"))
import knowledge_base  # noqa: E402 (found through sys.path above)

dbutils.widgets.text("chunk_size", "400")
dbutils.widgets.text("n_questions", "8")
SIZE = int(dbutils.widgets.get("chunk_size"))
N_QUESTIONS = int(dbutils.widgets.get("n_questions"))
kb = knowledge_base.generate()
docs = {d.doc_id: d for d in kb.documents}
passages = {p.passage_id: p for p in kb.passages}
print(knowledge_base.summary(kb))

# COMMAND ----------

# MAGIC %md
# MAGIC ## 1. The strategies on one manual
# MAGIC
# MAGIC The first chunks of a product manual, cut four ways at 400 characters. Fixed-size
# MAGIC chunks start mid-word and run across headings; the markdown chunker starts each chunk
# MAGIC at a section and remembers the headings above it (`headings`), which
# MAGIC `contextual_text()` puts in front of the chunk's text for embedding.

# COMMAND ----------

STRATEGIES = {
    "fixed, no overlap": lambda text: rag.chunk_fixed(text, SIZE, 0),
    "fixed, 20% overlap": lambda text: rag.chunk_fixed(text, SIZE, SIZE // 5),
    "recursive": lambda text: rag.chunk_recursive(text, SIZE),
    "sentences": lambda text: rag.chunk_sentences(text, SIZE),
    "markdown": lambda text: rag.chunk_markdown(text, SIZE),
}
manual = docs["manual-kestrel-sweep-s1"].text
for name, chunker in STRATEGIES.items():
    print(f"--- {name}")
    for c in chunker(manual)[:3]:
        print(f"[{c.start:4}, {c.end:4}) headings={c.headings} {c.text[:70]!r}...")

# COMMAND ----------

# MAGIC %md
# MAGIC ### What every chunker guarantees
# MAGIC
# MAGIC Asserted on every document of the knowledge base: a chunk's text is exactly its
# MAGIC range of the source; no chunk is longer than `size`; the chunks cover the document in
# MAGIC order, and fixed chunks with their overlaps removed give back the document itself.
# MAGIC An overlap as large as the size would never advance: it is refused, not looped on.

# COMMAND ----------

for d in kb.documents:
    for name, chunker in STRATEGIES.items():
        chunks = chunker(d.text)
        assert all(d.text[c.start : c.end] == c.text for c in chunks), (name, d.doc_id)
        assert all(len(c.text) <= SIZE for c in chunks), (name, d.doc_id)
        assert all(a.start <= b.start for a, b in itertools.pairwise(chunks))
        # Each chunk's text past the previous chunk's end: the document without the overlaps.
        ends = [0] + [c.end for c in chunks[:-1]]
        covered = "".join(
            d.text[max(c.start, end) : c.end] for c, end in zip(chunks, ends, strict=True)
        )
        if name.startswith("fixed"):
            assert covered == d.text, (name, d.doc_id)
        else:  # the boundary-aware chunkers may drop the whitespace they cut at
            assert re.sub(r"\s+", "", covered) == re.sub(r"\s+", "", d.text), (name, d.doc_id)
try:
    rag.chunk_fixed(manual, 100, 100)
except ValueError as err:
    print("refused:", err)
else:
    raise AssertionError("overlap == size was accepted")
print(f"all {len(kb.documents)} documents: ranges, sizes and coverage hold for every strategy")

# COMMAND ----------

# MAGIC %md
# MAGIC ## 2. Structure: does the answer survive the cut?
# MAGIC
# MAGIC For each labelled question we locate its answer in the labelled passage and take the
# MAGIC **answer unit**: the sentence (or table row) that contains it, which is what a reader
# MAGIC needs to see ("Full-time employees accrue 25 days of paid time off per calendar
# MAGIC year."). A chunk *holds the answer* when it contains the whole unit. The same rule
# MAGIC decides relevance in the retrieval measurements below, so a chunk with "25 days" but
# MAGIC not what it refers to does not count.
# MAGIC
# MAGIC Per strategy, over the whole knowledge base: the number of chunks (the index's size),
# MAGIC the share of questions whose answer unit is intact in some chunk, the share of chunks
# MAGIC that mix two markdown sections, and the chunks longer than the model's window.

# COMMAND ----------

sentences = {d.doc_id: rag.sentence_spans(d.text) for d in kb.documents}


def answer_units(q: knowledge_base.Question) -> list[tuple[str, int, int]]:
    """(doc_id, start, end) of the sentence or table row holding the answer, per gold passage."""
    units = []
    for pid in q.passage_ids:
        p = passages[pid]
        text = docs[p.doc_id].text
        at = text.lower().find(q.answer.lower(), p.start)
        if at < 0 or at + len(q.answer) > p.end:
            continue
        line_start = text.rfind("\n", 0, at) + 1
        line_end = text.find("\n", at)
        line_end = len(text) if line_end < 0 else line_end
        s, e = next(((s, e) for s, e in sentences[p.doc_id] if s <= at < e), (0, len(text)))
        units.append((p.doc_id, max(s, line_start), min(e, line_end)))
    return units


units = {q.question_id: answer_units(q) for q in kb.questions}
assert all(units.values()), "every labelled answer is found in its passage"
headings = {d.doc_id: [m.start() + 1 for m in re.finditer(r"\n## ", d.text)] for d in kb.documents}
encoder = realizar.Encoder.load(threads=1)


Chunks = list[tuple[str, int, int, str]]


def chunk_all(chunker, contextual: bool = False) -> Chunks:
    """(doc_id, start, end, text to index) for every chunk of every document."""
    return [
        (d.doc_id, c.start, c.end, c.contextual_text() if contextual else c.text)
        for d in kb.documents
        for c in chunker(d.text)
    ]


def relevant(chunks, q) -> set[int]:
    return {
        j
        for j, (doc, s, e, _) in enumerate(chunks)
        if any(doc == u_doc and s <= a and b <= e for u_doc, a, b in units[q.question_id])
    }


whole: Chunks = [(d.doc_id, 0, len(d.text), d.text) for d in kb.documents]
variants: dict[str, Chunks] = {"whole document": whole}
for name, chunker in STRATEGIES.items():
    variants[name] = chunk_all(chunker)
variants["markdown + headings"] = chunk_all(STRATEGIES["markdown"], contextual=True)

structure = []
for name in ["whole document", *STRATEGIES]:
    chunks = variants[name]
    intact = np.mean([bool(relevant(chunks, q)) for q in kb.questions])
    mixed = np.mean([any(c[1] < h < c[2] for h in headings[c[0]]) for c in chunks])
    too_long = sum(encoder.count_tokens(t) >= encoder.max_seq_length for *_, t in chunks)
    structure.append(
        {
            "strategy": name,
            "chunks": len(chunks),
            "mean chars": round(float(np.mean([len(t) for *_, t in chunks]))),
            "answer intact": float(intact),
            "mixes sections": float(mixed),
            "over the window": too_long,
        }
    )
structure = pd.DataFrame(structure).set_index("strategy")
display(structure.reset_index())

# COMMAND ----------

# MAGIC %md
# MAGIC What the table shows (asserted):
# MAGIC
# MAGIC - Fixed-size chunks without overlap cut some answer sentences in two; with 20 %
# MAGIC   overlap a sentence cut at one boundary is whole in the next chunk, so more answers
# MAGIC   survive, for more chunks to index.
# MAGIC - The boundary-aware chunkers (recursive, sentences, markdown) never cut an answer unit
# MAGIC   shorter than the chunk size.
# MAGIC - Only the markdown chunker keeps sections apart.
# MAGIC - Whole documents often exceed the window: the model never sees their end.

# COMMAND ----------

st = structure
assert st.loc["fixed, no overlap", "answer intact"] < 1.0
assert st.loc["fixed, 20% overlap", "answer intact"] > st.loc["fixed, no overlap", "answer intact"]
assert st.loc["fixed, 20% overlap", "chunks"] > st.loc["fixed, no overlap", "chunks"]
for name in ("recursive", "sentences", "markdown"):
    assert st.loc[name, "answer intact"] == 1.0, name
assert st.loc["markdown", "mixes sections"] == 0.0
assert (st.drop(index="markdown")["mixes sections"] > 0).all()
assert st.loc["whole document", "over the window"] > 0
assert (st.drop(index="whole document")["over the window"] == 0).all()

# COMMAND ----------

# MAGIC %md
# MAGIC ## 3. Keyword retrieval with each strategy (BM25, every question)
# MAGIC
# MAGIC Index each strategy's chunks with BM25, ask all 123 questions, and score the ranking:
# MAGIC **recall@5** here is the share of questions with a chunk holding the answer unit in
# MAGIC the top 5, **MRR** the mean of 1 / rank of the first such chunk (0 past rank 10). The
# MAGIC markdown chunks are indexed twice: bare, and with their heading path in front
# MAGIC (`contextual_text()`). The last column is the price of a hit: the characters a
# MAGIC prompt receives from the top 5.

# COMMAND ----------


def score(ranking: list[list[int]], chunks, questions) -> dict[str, float]:
    ranks = []
    for ranked, q in zip(ranking, questions, strict=True):
        rel = relevant(chunks, q)
        ranks.append(next((r for r, j in enumerate(ranked, start=1) if j in rel), None))
    return {
        "recall@5": float(np.mean([r is not None and r <= 5 for r in ranks])),
        "MRR@10": float(np.mean([1 / r if r and r <= 10 else 0.0 for r in ranks])),
        "chars in top 5": round(
            float(np.mean([sum(len(chunks[j][3]) for j in ranked[:5]) for ranked in ranking]))
        ),
    }


keyword = []
for name, chunks in variants.items():
    bm25 = rag.BM25.from_texts([t for *_, t in chunks], stop_words=True)
    ranking = [
        bm25.top_k(rag.analyze(q.question, stop_words=True), 10)[0].tolist() for q in kb.questions
    ]
    keyword.append({"strategy": name, **score(ranking, chunks, kb.questions)})
keyword = pd.DataFrame(keyword).set_index("strategy")
display(keyword.reset_index())
kw = keyword
assert kw.loc["fixed, 20% overlap", "recall@5"] > kw.loc["fixed, no overlap", "recall@5"]
assert kw.loc["markdown + headings", "MRR@10"] > kw.loc["markdown", "MRR@10"]
chunked = kw.drop(index="whole document")
assert (chunked["chars in top 5"] < kw.loc["whole document", "chars in top 5"] / 3).all()

# COMMAND ----------

# MAGIC %md
# MAGIC With keywords, overlap pays (a question's terms and its answer end up in one chunk
# MAGIC more often), and so do headings: a section's heading names the product and the topic
# MAGIC ("Kestrel Sweep S1 > Warranty") that its body never repeats. Whole documents score
# MAGIC well on recall because a manual contains everything about its product, but each hit
# MAGIC hands the prompt several thousand characters, most of them irrelevant.
# MAGIC
# MAGIC ## 4. Vector retrieval with each strategy (MiniLM, a sample)
# MAGIC
# MAGIC The same comparison with embeddings, on `n_questions` questions drawn at random
# MAGIC (seeded), the documents that answer them, and half as many other manuals and
# MAGIC policies as distractors. Identical chunk texts are embedded once. With 8 questions,
# MAGIC one question moves recall by 12 points: read the table as an illustration, and raise
# MAGIC `n_questions` to measure (the whole set takes several minutes).

# COMMAND ----------

rng = random.Random(0)
sample = rng.sample(kb.questions, min(N_QUESTIONS, len(kb.questions)))
gold_docs = sorted({u[0] for q in sample for u in units[q.question_id]})
others = sorted(d.doc_id for d in kb.documents if d.kind in {"manual", "policy"})
distractors = [d for d in rng.sample(others, len(others)) if d not in gold_docs]
corpus = set(gold_docs + distractors[: len(gold_docs) // 2])
dense_variants = [
    "whole document",
    "fixed, no overlap",
    "fixed, 20% overlap",
    "recursive",
    "markdown + headings",
]
question_vectors = encoder.encode([q.question for q in sample])
cache: dict[str, np.ndarray] = {}
dense = []
start = time.perf_counter()
for name in dense_variants:
    chunks = [c for c in variants[name] if c[0] in corpus]
    texts = [t for *_, t in chunks]
    new = [t for t in dict.fromkeys(texts) if t not in cache]
    if new:
        cache.update(zip(new, encoder.encode(new), strict=True))
    vectors = np.stack([cache[t] for t in texts])
    ranking = np.argsort(-(question_vectors @ vectors.T), axis=1, kind="stable")[:, :10]
    dense.append(
        {"strategy": name, "chunks": len(chunks), **score(ranking.tolist(), chunks, sample)}
    )
dense = pd.DataFrame(dense).set_index("strategy")
seconds = time.perf_counter() - start
print(f"{len(sample)} questions, {len(corpus)} documents: {len(cache)} texts in {seconds:.1f} s")
display(dense.reset_index())
assert dense.drop(index="whole document")["recall@5"].max() >= 0.75, dense

# COMMAND ----------

# MAGIC %md
# MAGIC ## What to take away
# MAGIC
# MAGIC - Chunk at boundaries the text already has (sections, paragraphs, sentences): the
# MAGIC   answer sentence stays whole, and a chunk stays about one thing.
# MAGIC - If you cut at fixed sizes, overlap: it saves the sentences a boundary would split,
# MAGIC   at the price of more chunks to embed and store.
# MAGIC - Keep the context a chunk lost: the heading path in front of a section's text helped
# MAGIC   keyword retrieval here.
# MAGIC - Whatever you choose, measure it on labelled questions, as here: the best size and
# MAGIC   strategy depend on the documents and on the questions.
