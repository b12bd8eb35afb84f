"""The Course 4 knowledge base (data/knowledge_base.py): deterministic, consistent labels.

Each question's answer must be found in a passage it is labelled with, every passage must be
the exact slice of its document, and BM25 over the passages (realizar.rag, checked against
rank_bm25 on the same tokens) must find the labelled passage for most lexical questions, so
the labels are usable as a retrieval benchmark.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from realizar import rag

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "data"))
import knowledge_base as kbmod


@pytest.fixture(scope="module")
def kb() -> kbmod.KnowledgeBase:
    return kbmod.generate()


def test_deterministic_and_sized(kb: kbmod.KnowledgeBase) -> None:
    again = kbmod.generate()
    assert [d.text for d in again.documents] == [d.text for d in kb.documents]
    assert [q.question for q in again.questions] == [q.question for q in kb.questions]
    assert [d.text for d in kbmod.generate(seed=5).documents] != [d.text for d in kb.documents]
    s = kbmod.summary(kb)
    assert s["questions"] >= 100
    assert s["characters"] > 350_000
    assert {"manual", "faq", "policy", "support", "release_notes", "guide"} <= {
        d.kind for d in kb.documents
    }
    assert len({d.doc_id for d in kb.documents}) == len(kb.documents)
    assert len({p.passage_id for p in kb.passages}) == len(kb.passages)


def test_passages_slice_documents_and_labels_hold_the_answer(kb: kbmod.KnowledgeBase) -> None:
    docs = {d.doc_id: d for d in kb.documents}
    passages = {p.passage_id: p for p in kb.passages}
    for p in kb.passages:
        assert docs[p.doc_id].text[p.start : p.end] == p.text
    # Passages tile each document.
    for d in kb.documents:
        own = sorted((p.start, p.end) for p in kb.passages if p.doc_id == d.doc_id)
        assert own[0][0] == 0
        assert own[-1][1] == len(d.text)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(own))
    for q in kb.questions:
        texts = [passages[pid].text.lower() for pid in q.passage_ids]
        assert any(q.answer.lower() in t for t in texts), (q.question, q.answer)
    assert {q.kind for q in kb.questions} == {"lexical", "semantic", "both"}


def test_write_round_trip(kb: kbmod.KnowledgeBase, tmp_path: Path) -> None:
    root = kbmod.write(kb, tmp_path / "kb")
    assert len(list((root / "docs").iterdir())) == len(kb.documents)
    qs = json.loads((root / "questions.json").read_text())
    assert qs[0]["passage_ids"] == kb.questions[0].passage_ids
    lines = (root / "passages.jsonl").read_text().splitlines()
    assert len(lines) == len(kb.passages)


def test_bm25_finds_labelled_passages(kb: kbmod.KnowledgeBase) -> None:
    texts = [p.text for p in kb.passages]
    tokens = [rag.analyze(t, stop_words=True) for t in texts]
    bm = rag.BM25(tokens)
    ref = BM25Okapi(tokens)
    ids = [p.passage_id for p in kb.passages]
    runs = []
    for q in kb.questions:
        qt = rag.analyze(q.question, stop_words=True)
        np.testing.assert_allclose(bm.get_scores(qt), ref.get_scores(qt), atol=1e-6, rtol=0)
        top, _ = bm.top_k(qt, 10)
        label = {ids.index(pid) for pid in q.passage_ids}
        runs.append((q.kind, top.tolist(), sorted(label)))
    lexical = [(t, r) for k, t, r in runs if k == "lexical"]
    found = np.mean([bool(set(t) & set(r)) for t, r in lexical])
    assert found >= 0.8, found
    summary = rag.evaluate([(t, r) for t, r in lexical], 10)
    assert 0 < summary["mrr"] <= 1
