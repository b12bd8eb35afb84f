# Databricks notebook source
# MAGIC %md
# MAGIC # Checks: lab_embeddings
# MAGIC
# MAGIC Run by the lab's last cell. Each function is compared with an independent reference:
# MAGIC scikit-learn's `cosine_similarity`, a NumPy ranking and trueno's `top_k`, the exact
# MAGIC search of `realizar.rag.HNSW`, and the retrieval metrics of `realizar.rag`.

# COMMAND ----------

import numpy as np
from sklearn.metrics.pairwise import cosine_similarity as _sk_cosine

import trueno
from realizar import rag as _rag

lab = Lab("course4/week2/lab_embeddings")
_rng = np.random.default_rng(2026)


def _raises_value_error(fn, *args) -> bool:
    try:
        fn(*args)
    except ValueError:
        return True
    return False


@lab.check(
    "Task 1: cosine_similarity equals scikit-learn's and refuses bad input",
    "divide each row by its length, then one matrix product; check shapes and zero rows first",
)
def _():
    a = _rng.standard_normal((7, 16)) * _rng.uniform(0.01, 1e6, (7, 1))
    b = _rng.standard_normal((5, 16)).astype(np.float32)
    got = cosine_similarity(a, b)
    if is_blank(got):
        raise BlankNotFilledError("a FILL_IN is still there")
    got = np.asarray(got)
    assert got.shape == (7, 5), f"expected shape (7, 5), got {got.shape}"
    assert np.allclose(got, _sk_cosine(a, b), atol=1e-5), "values differ from scikit-learn's"
    unit = passage_vectors[:3]
    assert np.allclose(cosine_similarity(unit, unit), unit @ unit.T, atol=1e-5), (
        "for unit vectors the cosine should equal the dot product"
    )
    assert _raises_value_error(cosine_similarity, a, _rng.standard_normal((3, 15))), (
        "different dimensions (16 and 15) should raise ValueError"
    )
    zero = np.vstack([b, np.zeros(16, dtype=np.float32)])
    assert _raises_value_error(cosine_similarity, a, zero), "a zero row should raise ValueError"


@lab.check(
    "Task 2: top_k ranks like a stable sort and like trueno",
    "np.argsort of the negated scores with kind='stable', then the first k columns",
)
def _():
    ties = _rng.integers(0, 4, (6, 9)).astype(float)  # many equal scores
    want = np.argsort(-ties, axis=1, kind="stable")[:, :3]
    got = top_k(ties, 3)
    if is_blank(got):
        raise BlankNotFilledError("a FILL_IN is still there")
    got = np.asarray(got)
    assert got.shape == (6, 3), f"expected shape (6, 3), got {got.shape}"
    assert (got == want).all(), "order differs (highest first, equal scores by lower column)"
    assert np.asarray(top_k(ties, 50)).shape == (6, 9), "k above n should return all n columns"
    q = passage_vectors[::7]
    ours = np.asarray(top_k(q @ passage_vectors.T, 4))
    theirs, _ = trueno.top_k(q, passage_vectors, 4, metric="dot")
    assert (ours == theirs).all(), "on the passage embeddings the ranking differs from trueno's"


@lab.check(
    "Task 3: the top 5 passages per question equal an exact vector search",
    "encoder.encode the question texts; top_k(cosine_similarity(...), 5); map columns to ids",
)
def _():
    if is_blank(retrieved):
        raise BlankNotFilledError("a FILL_IN is still there")
    assert len(retrieved) == len(questions), (
        f"{len(retrieved)} lists for {len(questions)} questions"
    )
    assert all(len(r) == 5 for r in retrieved), "each list should hold 5 passage ids"
    assert all(isinstance(x, str) for r in retrieved for x in r), "use the ids from passage_ids"
    index = _rag.HNSW(passage_vectors.shape[1])
    index.add(passage_vectors, list(range(len(passage_ids))))
    exact, _ = index.search_exact(encoder.encode([q.question for q in questions]), 5)
    want = [[passage_ids[j] for j in row] for row in exact.tolist()]
    same = sum(a == b for a, b in zip(retrieved, want, strict=True))
    assert same >= len(want) - 1, f"{len(want) - same} questions differ from exact search"


@lab.check(
    "Task 4: recall_at_k and reciprocal_rank agree with realizar.rag",
    "drop repeats first (dict.fromkeys keeps order); then the first k, or the first hit's rank",
)
def _():
    for _case in range(200):
        got = _rng.integers(0, 12, _rng.integers(0, 9)).tolist()  # may repeat ids, may be empty
        gold = _rng.choice(12, _rng.integers(1, 4), replace=False).tolist()
        k = int(_rng.integers(1, 8))
        want_recall = _rag.recall_at_k(got, gold, k)
        assert abs(recall_at_k(got, gold, k) - want_recall) < 1e-12, (
            f"recall_at_k({got}, {gold}, {k}) should be {want_recall:.3f}"
        )
        want_rr = _rag.reciprocal_rank(got, gold)
        assert abs(reciprocal_rank(got, gold) - want_rr) < 1e-12, (
            f"reciprocal_rank({got}, {gold}) should be {want_rr:.3f}"
        )
    assert _raises_value_error(recall_at_k, [1, 2], [], 5), "empty relevant should raise"
    assert _raises_value_error(reciprocal_rank, [1, 2], []), "empty relevant should raise"


@lab.check(
    "Task 4: the metrics of your search, and that it works",
    "the mean over questions of recall_at_k(retrieved, q.passage_ids, 5) and of reciprocal_rank",
)
def _():
    if is_blank(metrics) or is_blank(retrieved):
        raise BlankNotFilledError("a FILL_IN is still there")
    assert set(metrics) >= {"recall@5", "mrr"}, f"metrics has keys {sorted(metrics)}"
    number = {pid: i for i, pid in enumerate(passage_ids)}
    runs = [
        ([number[x] for x in got], [number[x] for x in q.passage_ids])
        for got, q in zip(retrieved, questions, strict=True)
    ]
    want = _rag.evaluate(runs, 5)
    assert abs(metrics["recall@5"] - want["recall"]) < 1e-9, (
        f"recall@5 {metrics['recall@5']:.4f}, expected {want['recall']:.4f}"
    )
    assert abs(metrics["mrr"] - want["mrr"]) < 1e-9, (
        f"mrr {metrics['mrr']:.4f} vs {want['mrr']:.4f}"
    )
    assert metrics["recall@5"] >= 0.8, f"recall@5 is only {metrics['recall@5']:.2f}"


lab.summary()
