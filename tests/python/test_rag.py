"""realizar.rag (the trueno-rag crate) against independent references.

BM25 against rank_bm25 (BM25Okapi, with its negative-idf floor); HNSW recall
against exact NumPy search, with faiss IndexHNSWFlat and hnswlib as peers on
the same clustered set; metrics against hand computations and scikit-learn's
ndcg_score; token chunking with the Hugging Face tokenizer's offsets; and the
edge cases: empty text, overlap >= size, unicode, corrupt index files,
deletes, filters, wrong dtypes and dimensions.
"""

from __future__ import annotations

import importlib
import itertools
import math
import random
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rank_bm25 import BM25Okapi
from sklearn.metrics import ndcg_score
from tokenizers import Tokenizer

import realizar
from gil_probe import ticks_during
from realizar import rag
from realizar.models import default_model_dir

# hnswlib is a bare extension module without type information.
hnswlib: Any = importlib.import_module("hnswlib")

# ---------------------------------------------------------------------------
# Chunking


CHUNKERS = {
    "fixed": lambda t, n: rag.chunk_fixed(t, n, n // 3),
    "recursive": rag.chunk_recursive,
    "sentences": rag.chunk_sentences,
    "markdown": rag.chunk_markdown,
}


def check_contract(text: str, chunks: list[rag.Chunk], size: int | None) -> None:
    """Cover the text, respect the size, rebuild it once overlaps are removed."""
    if not text:
        assert chunks == []
        return
    assert chunks[0].start == 0
    assert chunks[-1].end == len(text)
    rebuilt = chunks[0].text
    for prev, c in itertools.pairwise(chunks):
        assert prev.start < c.start <= prev.end
        rebuilt += text[prev.end : c.end]
    for c in chunks:
        assert c.text == text[c.start : c.end]
        if size is not None:
            assert len(c.text) <= size
    assert rebuilt == text


pieces = st.sampled_from(
    [
        "Refunds take 14 days. ",
        "Dr. Lee signed it! ",
        "\n",
        "\n\n",
        "# Returns\n",
        "## Window\n",
        "| plan | price |\n|---|---|\n| Pro | $12 |\n",
        "é",
        "日本語。",
        "🦀",
        "e\u0301",
        "word ",
    ]
)


@settings(max_examples=150, deadline=None)
@given(text=st.lists(pieces, max_size=40).map("".join), size=st.integers(1, 80))
def test_every_chunker_keeps_the_contract(text: str, size: int) -> None:
    for name, chunker in CHUNKERS.items():
        chunks = chunker(text, size)
        assert chunks is not None, name
        check_contract(text, chunks, size)


def test_chunking_edge_cases() -> None:
    assert rag.chunk_fixed("", 10, 3) == []
    for size, overlap in [(10, 10), (10, 12), (1, 1)]:
        with pytest.raises(ValueError, match="overlap"):
            rag.chunk_fixed("some text", size, overlap)
        with pytest.raises(ValueError, match="overlap"):
            rag.chunk_tokens("a b", [(0, 1), (2, 3)], size, overlap)
    with pytest.raises(ValueError, match="size"):
        rag.chunk_recursive("text", 0)
    # Emoji and combining marks are characters, never split inside UTF-8.
    text = "🦀é" * 5
    chunks = rag.chunk_fixed(text, 3, 1)
    assert [c.text for c in chunks[:2]] == ["🦀é🦀", "🦀é🦀"]
    check_contract(text, chunks, 3)
    with pytest.raises(ValueError, match="past the end"):
        rag.chunk_tokens("ab", [(0, 5)], 2)


def test_markdown_headings_travel_with_their_text() -> None:
    doc = (
        "# Returns\nItems may be returned within 30 days.\n\n"
        "## Exceptions\n" + "Final-sale items cannot be returned. " * 8 + "\n"
        "# Shipping\n| region | days |\n|---|---|\n| EU | 3 |\n"
    )
    chunks = rag.chunk_markdown(doc, 120)
    check_contract(doc, chunks, 120)
    assert chunks[0].headings == ["Returns"]
    exceptions = [c for c in chunks if c.headings == ["Returns", "Exceptions"]]
    assert len(exceptions) >= 2
    assert all(c.contextual_text().startswith("Returns > Exceptions\n") for c in exceptions)
    table = [c for c in chunks if c.headings == ["Shipping"]]
    assert len(table) == 1
    assert "| EU | 3 |" in table[0].text


def test_token_chunks_with_the_models_tokenizer() -> None:
    tok = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    # The model's file pads and truncates to 128 tokens; count real tokens here.
    tok.no_truncation()
    tok.no_padding()
    text = "Naïve café owners 🦀 file expense reports within 30 days. " * 12
    enc = tok.encode(text, add_special_tokens=False)
    chunks = rag.chunk_tokens(text, enc.offsets, 32, 8)
    check_contract(text, chunks, None)
    assert len(chunks) > 3
    for c in chunks:
        n = len(tok.encode(c.text, add_special_tokens=False).ids)
        # Re-tokenising a chunk can differ by the word cut at its edge only.
        assert n <= 32 + 2


# ---------------------------------------------------------------------------
# BM25


def corpus(seed: int, docs: int = 300) -> list[list[str]]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(400)]
    # Zipf-ish: a few terms in most documents (negative idf), a long tail.
    weights = [1.0 / (i + 1) for i in range(len(vocab))]
    return [rng.choices(vocab, weights, k=rng.randint(1, 60)) for _ in range(docs)]


@pytest.mark.parametrize(
    ("k1", "b", "epsilon"), [(1.5, 0.75, 0.25), (1.2, 0.3, 0.1), (0.5, 1.0, 0.5), (2.0, 0.0, 0.25)]
)
def test_bm25_equals_rank_bm25(k1: float, b: float, epsilon: float) -> None:
    docs = corpus(7)
    ours = rag.BM25(docs, k1=k1, b=b, epsilon=epsilon)
    ref = BM25Okapi(docs, k1=k1, b=b, epsilon=epsilon)
    rng = random.Random(1)
    worst = 0.0
    for _ in range(50):
        q = [f"w{rng.randint(0, 450)}" for _ in range(rng.randint(1, 6))]  # some unknown
        q.append(q[0])  # a repeated term counts twice in both
        want = ref.get_scores(q)
        assert np.isfinite(want).all()
        worst = max(worst, float(np.abs(ours.get_scores(q) - want).max()))
    assert worst < 1e-6
    # The negative-idf floor is exercised: w0 is in most documents.
    assert ref.idf["w0"] == pytest.approx(epsilon * ref.average_idf)
    assert ours.idf("w0") == pytest.approx(ref.idf["w0"], abs=1e-12)


def test_bm25_empty_document_scores_zero_where_rank_bm25_gives_nan() -> None:
    # The one divergence: with b = 1 an empty document's denominator is 0 and
    # rank_bm25 computes 0/0; an empty document matches nothing, so it scores 0 here.
    docs = [["a", "b"], [], ["b", "c"]]
    with np.errstate(invalid="ignore"):
        ref = BM25Okapi(docs, b=1.0).get_scores(["a"])
    ours = rag.BM25(docs, b=1.0).get_scores(["a"])
    assert np.isnan(ref[1])
    assert ours[1] == 0.0
    np.testing.assert_allclose(ours[[0, 2]], ref[[0, 2]], atol=1e-12)


def test_bm25_on_analysed_text_and_top_k() -> None:
    texts = [
        "Refunds are issued within 30 days of the return.",
        "The Aurora X2 vacuum has a 90-minute battery.",
        "Employees accrue 25 days of paid leave per year.",
        "Return shipping is free for Pro members.",
    ]
    tokens = [rag.analyze(t, stop_words=True) for t in texts]
    assert tokens[0] == ["refunds", "issued", "within", "30", "days", "return"]
    bm = rag.BM25.from_texts(texts, stop_words=True)
    ref = BM25Okapi(tokens)
    q = rag.analyze("How many days for refunds?", stop_words=True)
    np.testing.assert_allclose(bm.get_scores(q), ref.get_scores(q), atol=1e-9)
    idx, scores = bm.top_k(q, 2)
    assert idx.tolist() == list(np.argsort(-ref.get_scores(q), kind="stable")[:2])
    assert scores.dtype == np.float64
    assert len(bm) == 4
    assert rag.BM25([]).get_scores(["x"]).shape == (0,)
    with pytest.raises(ValueError, match="b must be"):
        rag.BM25([["a"]], b=2.0)


# ---------------------------------------------------------------------------
# HNSW


def clustered(n: int, dim: int, centres: int, seed: int) -> np.ndarray:
    """Unit vectors around Gaussian centres (sigma 0.3), the issue's benchmark shape."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top_k(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ data.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


@pytest.fixture(scope="module")
def dataset() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = clustered(6000, 48, 60, 0)
    queries = clustered(200, 48, 60, 1)
    return data, queries, exact_top_k(data, queries, 10)


@pytest.fixture(scope="module")
def index(dataset: tuple[np.ndarray, np.ndarray, np.ndarray]) -> rag.HNSW:
    data, _, _ = dataset
    h = rag.HNSW(48, M=16, ef_construction=100, ef_search=64, seed=3)
    meta = [{"shard": i % 3, "name": f"doc-{i}"} for i in range(len(data))]
    h.add(data, list(range(len(data))), meta)
    return h


def test_hnsw_recall_against_numpy_and_peers(
    dataset: tuple[np.ndarray, np.ndarray, np.ndarray], index: rag.HNSW
) -> None:
    data, queries, truth = dataset
    labels, scores = index.search(queries, 10, ef=128)
    ours = recall(labels, truth)
    # Scores are cosines, equal to NumPy's for the returned labels.
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", queries, data[labels]), atol=1e-5)
    exact_labels, _ = index.search_exact(queries, 10)
    assert recall(exact_labels, truth) >= 0.999

    fa = faiss.IndexHNSWFlat(48, 16, faiss.METRIC_INNER_PRODUCT)
    fa.hnsw.efConstruction = 100
    fa.add(data)
    fa.hnsw.efSearch = 128
    _, fl = fa.search(queries, 10)
    hl = hnswlib.Index(space="ip", dim=48)
    hl.init_index(max_elements=len(data), M=16, ef_construction=100, random_seed=3)
    hl.set_num_threads(1)
    hl.add_items(data, np.arange(len(data)))
    hl.set_ef(128)
    hlab, _ = hl.knn_query(queries, k=10)
    peers = {"faiss": recall(fl, truth), "hnswlib": recall(hlab, truth)}
    assert ours >= 0.95, (ours, peers)
    assert ours >= min(peers.values()) - 0.02, (ours, peers)


def test_hnsw_filters_and_deletes(
    dataset: tuple[np.ndarray, np.ndarray, np.ndarray], index: rag.HNSW
) -> None:
    data, queries, _ = dataset
    labels, _ = index.search(queries[:20], 10, filters={"shard": 1})
    assert (labels % 3 == 1).all()
    # Filtered during the search: still k results, and they are the exact filtered top k.
    exact, _ = index.search_exact(queries[:20], 10, filters={"shard": 1})
    assert (exact % 3 == 1).all()
    assert recall(labels, exact) >= 0.9
    labels, _ = index.search(queries[:5], 10, filters={"shard NOT": [0, 2], "name LIKE": "doc-1"})
    assert all(f"doc-{x}".startswith("doc-1") and x % 3 == 1 for x in labels.ravel())
    # Fewer matches than k: padded with -1 and NaN.
    labels, scores = index.search(queries[:2], 10, filters={"name": ["doc-4", "doc-5"]})
    assert sorted(labels[0][:2].tolist()) == [4, 5]
    assert (labels[:, 2:] == -1).all()
    assert np.isnan(scores[:, 2:]).all()
    assert rag.HNSW.filter_columns({"a": 1, "b OR c": [1, 2]}) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="operator"):
        index.search(queries[0], 3, filters={"shard ~": 1})
    not_a_dict: Any = [("shard", 1)]  # a deliberate stub violation
    with pytest.raises(TypeError, match="dict"):
        index.search(queries[0], 3, filters=not_a_dict)

    small = rag.HNSW(48, seed=1)
    small.add(data[:500], list(range(500)))
    gone = small.search(data[7], 5)[0].tolist()
    for label in gone:
        small.delete(label)
    assert len(small) == 495
    assert 7 not in small
    assert not set(small.search(data[7], 20)[0].tolist()) & set(gone)
    assert not set(small.search_exact(data[7], 20)[0].tolist()) & set(gone)
    with pytest.raises(KeyError):
        small.delete(gone[0])
    # Re-adding a label replaces its vector.
    small.add(data[7:8], [7])
    assert small.search(data[7], 1)[0].tolist() == [7]


def test_hnsw_files_round_trip_and_corruption_is_refused(
    tmp_path: Path, dataset: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    data, queries, _ = dataset
    h = rag.HNSW(48, M=8, ef_construction=40, seed=5)
    h.add(data[:800], list(range(800)), [{"i": i} for i in range(800)])
    path = tmp_path / "index.hnsw"
    h.save(path)
    back = rag.HNSW.load(path)
    for a, b in zip(h.search(queries[:10], 5), back.search(queries[:10], 5), strict=True):
        np.testing.assert_array_equal(a, b)
    assert back.metadata(17) == {"i": 17}
    raw = path.read_bytes()
    for name, bad in {
        "flipped": raw[:5000] + bytes([raw[5000] ^ 1]) + raw[5001:],
        "truncated": raw[: len(raw) // 2],
        "empty": b"",
        "foreign": b"PK\x03\x04" + raw[4:],
    }.items():
        p = tmp_path / f"{name}.hnsw"
        p.write_bytes(bad)
        with pytest.raises(ValueError, match="corrupt"):
            rag.HNSW.load(p)
    with pytest.raises(FileNotFoundError):
        rag.HNSW.load(tmp_path / "missing.hnsw")


def test_hnsw_bad_input(index: rag.HNSW) -> None:
    float64: Any = np.zeros(48, dtype=np.float64)  # a deliberate stub violation
    with pytest.raises(TypeError, match="float32"):
        index.search(float64, 3)
    with pytest.raises(ValueError, match="dimension 7"):
        index.search(np.ones(7, dtype=np.float32), 3)
    h = rag.HNSW(4)
    with pytest.raises(ValueError, match="labels"):
        h.add(np.ones((2, 4), dtype=np.float32), [1])
    with pytest.raises(ValueError, match="zero vector"):
        h.add(np.zeros((1, 4), dtype=np.float32), [1])
    with pytest.raises(ValueError, match="NaN"):
        h.add(np.full((1, 4), np.nan, dtype=np.float32), [1])
    with pytest.raises(ValueError, match="M must"):
        rag.HNSW(4, M=1)
    with pytest.raises(ValueError, match="unknown metric"):
        rag.HNSW(4, metric="hamming")
    assert h.search(np.ones(4, dtype=np.float32), 3)[0].shape == (0,)
    # A non-contiguous view is accepted (copied), the result matches the contiguous one.
    q = np.ones((3, 96), dtype=np.float32)[:, ::2]
    a = index.search(q, 3)[0]
    b = index.search(np.ascontiguousarray(q), 3)[0]
    np.testing.assert_array_equal(a, b)


def test_hnsw_search_releases_the_gil(
    dataset: tuple[np.ndarray, np.ndarray, np.ndarray], index: rag.HNSW
) -> None:
    _, queries, _ = dataset
    assert ticks_during(lambda: index.search(queries, 10, ef=400)) > 0


def test_l2_metric_matches_numpy() -> None:
    rng = np.random.default_rng(4)
    data = rng.standard_normal((1000, 16)).astype(np.float32)
    q = rng.standard_normal((10, 16)).astype(np.float32)
    h = rag.HNSW(16, metric="sqeuclidean", seed=2)
    h.add(data, list(range(1000)))
    d2 = ((q[:, None, :] - data[None, :, :]) ** 2).sum(-1)
    labels, dist = h.search_exact(q, 5)
    np.testing.assert_array_equal(labels, np.argsort(d2, axis=1, kind="stable")[:, :5])
    np.testing.assert_allclose(dist, np.sort(d2, axis=1)[:, :5], rtol=1e-5)
    approx, _ = h.search(q, 5, ef=100)
    assert recall(approx, labels) >= 0.95


# ---------------------------------------------------------------------------
# Fusion and metrics


def test_rrf_by_hand() -> None:
    fused = rag.rrf([[1, 2, 3], [3, 1, 4]], [1.0, 0.5], k=60)
    want = {
        1: 1 / 61 + 0.5 / 62,
        2: 1 / 62,
        3: 1 / 63 + 0.5 / 61,
        4: 0.5 / 63,
    }
    assert [i for i, _ in fused] == sorted(want, key=lambda i: -want[i])
    for i, s in fused:
        assert s == pytest.approx(want[i], abs=1e-15)
    with pytest.raises(ValueError, match="weights"):
        rag.rrf([[1]], [1.0, 2.0])


def test_metrics_against_hand_and_sklearn() -> None:
    retrieved = [7, 3, 9, 1, 5]
    relevant = [3, 1, 8]
    assert rag.recall_at_k(retrieved, relevant, 5) == pytest.approx(2 / 3)
    assert rag.precision_at_k(retrieved, relevant, 5) == pytest.approx(2 / 5)
    assert rag.reciprocal_rank(retrieved, relevant) == 0.5
    grades = {3: 2.0, 1: 1.0, 8: 3.0}
    # sklearn: true relevance and predicted scores per candidate (no ties in scores).
    ids = [7, 3, 9, 1, 5, 8]
    y_true = np.array([[grades.get(i, 0.0) for i in ids]])
    y_score = np.array([[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    for k in (1, 3, 5, 6):
        want = ndcg_score(y_true, y_score, k=k)
        assert rag.ndcg_at_k([*retrieved, 8], grades, k) == pytest.approx(want, abs=1e-12)
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 3 + 2 / math.log2(3) + 1 / 2
    assert rag.ndcg_at_k(retrieved, grades, 5) == pytest.approx(dcg / idcg)
    summary = rag.evaluate([(retrieved, relevant), ([8], [8])], 5)
    assert summary["mrr"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no relevant"):
        rag.recall_at_k(retrieved, [], 5)


# ---------------------------------------------------------------------------
# Groundedness with MiniLM


def test_groundedness_method_and_limits() -> None:
    enc = realizar.Encoder.load()
    passages = [
        "Refunds are issued to the original payment method within 14 days.",
        "The Aurora X2 battery lasts 90 minutes on the eco setting.",
    ]

    def judge(answer: str) -> dict:
        return rag.embed_and_judge(enc, answer, passages)

    ok = judge("Refunds are issued within 14 days. The Aurora X2 battery lasts 90 minutes.")
    assert ok["score"] == 1.0
    assert [s["passage"] for s in ok["sentences"]] == [0, 1]
    changed = judge("The Aurora X2 battery lasts 120 minutes.")
    assert changed["score"] == 0.0
    assert not changed["sentences"][0]["numbers_ok"]
    unrelated = judge("Our offices close at noon on Fridays.")
    assert unrelated["score"] == 0.0
    # The stated limit: a negated claim keeps its words and its embedding.
    negated = judge("Refunds are not issued within 14 days.")
    assert negated["score"] == 1.0
