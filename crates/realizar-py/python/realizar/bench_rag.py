"""Retrieval benchmarks (``python -m realizar.bench_rag``): realizar.rag against its peers.

Rows, each checked for correctness in the same run before it is timed:

- **HNSW** (trueno-rag) against faiss ``IndexHNSWFlat`` and hnswlib, all on one thread, on
  ``--n`` unit vectors of dimension 384 drawn around 1,000 Gaussian centres (sigma 0.3, the
  issue's clustered set), M=16, ef_construction=200: build time, then per ef_search the
  recall@10 against exact NumPy search and the QPS of one batched call over ``--queries``
  queries, and the index memory.
- **BM25**: indexing and query throughput of realizar.rag.BM25 against bm25s (method
  ``"robertson"``, its rank_bm25-like variant; bm25s floors idf differently, so top-10
  overlap is reported, not asserted equal) and rank_bm25 (scores asserted equal).
- **Chunking**: throughput in MB/s of each strategy on the Course 4 knowledge base text.
- **Retrieval quality** on the knowledge base's 123 labelled questions over its 1,406
  passages: recall@5, MRR and nDCG@5 of BM25, of MiniLM vectors (realizar.Encoder + HNSW)
  and of their reciprocal rank fusion, per question kind (lexical, semantic, both).

Absolute figures drift on a shared machine: the report records the load average, and the
ratios (measured back to back in one run) are what to compare. Outputs under ``--out``:
``rag.json`` and ``rag.md``, each naming the command that produced it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from realizar import rag


def clustered(n: int, dim: int, centres: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    out = []
    for s in range(0, len(queries), 256):
        scores = queries[s : s + 256] @ data.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.take_along_axis(scores, top, 1).argsort(axis=1)[:, ::-1]
        out.append(np.take_along_axis(top, order, 1))
    return np.vstack(out)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def timed(f: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    r = f()
    return time.perf_counter() - t, r


def bench_hnsw(n: int, nq: int, efs: list[int]) -> list[dict[str, Any]]:
    import importlib  # noqa: PLC0415

    import faiss  # noqa: PLC0415

    # hnswlib is a bare extension module without type information.
    hnswlib: Any = importlib.import_module("hnswlib")

    faiss.omp_set_num_threads(1)
    dim = 384
    data = clustered(n, dim, 1000, 0)
    queries = clustered(nq, dim, 1000, 1)
    truth = exact(data, queries, 10)
    rows = []
    ours = rag.HNSW(dim, M=16, ef_construction=200, seed=1)
    t_ours, _ = timed(lambda: ours.add(data, list(range(n))))
    fa = faiss.IndexHNSWFlat(dim, 16, faiss.METRIC_INNER_PRODUCT)
    fa.hnsw.efConstruction = 200
    t_fa, _ = timed(lambda: fa.add(data))
    hl = hnswlib.Index(space="ip", dim=dim)
    hl.init_index(max_elements=n, M=16, ef_construction=200, random_seed=1)
    hl.set_num_threads(1)
    t_hl, _ = timed(lambda: hl.add_items(data, np.arange(n)))
    builds = {"trueno-rag": t_ours, "faiss": t_fa, "hnswlib": t_hl}
    memory = {"trueno-rag": ours.memory_bytes(), "faiss": None, "hnswlib": None}
    for ef in efs:
        fa.hnsw.efSearch = ef
        hl.set_ef(ef)
        for name, search in (
            ("trueno-rag", lambda ef=ef: ours.search(queries, 10, ef=ef)[0]),
            ("faiss", lambda: fa.search(queries, 10)[1]),
            ("hnswlib", lambda: hl.knn_query(queries, k=10)[0]),
        ):
            search()  # warm-up
            t, labels = timed(search)
            rows.append(
                {
                    "row": "hnsw",
                    "library": name,
                    "n": n,
                    "dim": dim,
                    "ef_search": ef,
                    "recall@10": round(recall(np.asarray(labels), truth), 4),
                    "qps": round(nq / t, 1),
                    "build_s": round(builds[name], 2),
                    "memory_bytes": memory[name],
                }
            )
    return rows


def bench_bm25(texts: list[str], queries: list[str]) -> list[dict[str, Any]]:
    import bm25s  # noqa: PLC0415
    from rank_bm25 import BM25Okapi  # noqa: PLC0415

    tokens = [rag.analyze(t, stop_words=True) for t in texts]
    qtok = [rag.analyze(q, stop_words=True) for q in queries]
    t_ours, ours = timed(lambda: rag.BM25(tokens))
    t_ref, ref = timed(lambda: BM25Okapi(tokens))
    worst = max(float(np.abs(ours.get_scores(q) - ref.get_scores(q)).max()) for q in qtok)
    if worst > 1e-6:
        msg = f"BM25 differs from rank_bm25 by {worst}"
        raise AssertionError(msg)
    t_bs, bs = timed(lambda: _bm25s_index(bm25s, tokens))
    t_q_ours, top_ours = timed(lambda: [ours.top_k(q, 10)[0] for q in qtok])
    t_q_ref, _ = timed(lambda: [np.argsort(-ref.get_scores(q))[:10] for q in qtok])
    t_q_bs, top_bs = timed(lambda: bs.retrieve(qtok, k=10, show_progress=False, n_threads=1)[0])
    overlap = float(
        np.mean(
            [
                len(set(a.tolist()) & set(b.tolist())) / 10
                for a, b in zip(top_ours, top_bs, strict=True)
            ]
        )
    )
    nq = len(qtok)
    return [
        {
            "row": "bm25",
            "library": "trueno-rag",
            "index_s": round(t_ours, 4),
            "qps": round(nq / t_q_ours, 1),
            "max_abs_diff_vs_rank_bm25": worst,
        },
        {
            "row": "bm25",
            "library": "rank_bm25",
            "index_s": round(t_ref, 4),
            "qps": round(nq / t_q_ref, 1),
        },
        {
            "row": "bm25",
            "library": "bm25s (robertson)",
            "index_s": round(t_bs, 4),
            "qps": round(nq / t_q_bs, 1),
            "top10_overlap": round(overlap, 3),
        },
    ]


def _bm25s_index(bm25s: Any, tokens: list[list[str]]) -> Any:
    r = bm25s.BM25(method="robertson")
    r.index(tokens, show_progress=False)
    return r


def bench_chunking(text: str) -> list[dict[str, Any]]:
    mb = len(text.encode()) / 1e6
    rows = []
    for name, f in (
        ("fixed 512/64", lambda: rag.chunk_fixed(text, 512, 64)),
        ("recursive 512", lambda: rag.chunk_recursive(text, 512)),
        ("sentences 512", lambda: rag.chunk_sentences(text, 512)),
        ("markdown 512", lambda: rag.chunk_markdown(text, 512)),
    ):
        f()
        t, chunks = timed(f)
        rows.append(
            {
                "row": "chunking",
                "strategy": name,
                "mb_per_s": round(mb / t, 1),
                "chunks": len(chunks),
            }
        )
    return rows


def bench_quality(data: Path) -> list[dict[str, Any]]:
    """BM25, vectors and RRF on the labelled questions, per question kind."""
    import realizar  # noqa: PLC0415

    sys.path.insert(0, str(data.resolve()))
    import knowledge_base  # noqa: PLC0415

    kb = knowledge_base.generate()
    ids = {p.passage_id: i for i, p in enumerate(kb.passages)}
    enc = realizar.Encoder.load()
    t_embed, emb = timed(lambda: enc.encode([p.text for p in kb.passages]))
    index = rag.HNSW(emb.shape[1], seed=1)
    index.add(emb, list(range(len(kb.passages))))
    bm = rag.BM25([rag.analyze(p.text, stop_words=True) for p in kb.passages])
    qe = enc.encode([q.question for q in kb.questions])
    runs: dict[str, list[tuple[str, list[int], list[int]]]] = {"bm25": [], "vector": [], "rrf": []}
    for q, v in zip(kb.questions, qe, strict=True):
        rel = [ids[x] for x in q.passage_ids]
        lexical = bm.top_k(rag.analyze(q.question, stop_words=True), 50)[0].tolist()
        vector = index.search(v, 50, ef=200)[0].tolist()
        fused = [i for i, _ in rag.rrf([lexical, vector], [1.0, 1.0], 60.0)]
        for name, ranked in (("bm25", lexical), ("vector", vector), ("rrf", fused)):
            runs[name].append((q.kind, ranked, rel))
    rows = []
    for kind in ("lexical", "semantic", "both", "all"):
        for name, rs in runs.items():
            sel = [(r, rel) for k, r, rel in rs if kind in {"all", k}]
            s = rag.evaluate(sel, 5)
            rows.append(
                {
                    "row": "quality",
                    "questions": kind,
                    "n": len(sel),
                    "retriever": name,
                    "recall@5": round(s["recall"], 3),
                    "mrr": round(s["mrr"], 3),
                    "ndcg@5": round(s["ndcg"], 3),
                    "embed_s": round(t_embed, 1),
                }
            )
    return rows


def knowledge_base_texts(data: Path) -> tuple[list[str], list[str], str]:
    """Passages, questions and the whole text of data/knowledge_base.py's knowledge base."""
    sys.path.insert(0, str(data.resolve()))
    import knowledge_base  # noqa: PLC0415

    kb = knowledge_base.generate()
    return (
        [p.text for p in kb.passages],
        [q.question for q in kb.questions],
        "\n\n".join(d.text for d in kb.documents),
    )


def markdown(report: dict[str, Any]) -> str:
    lines = [f"Command: `{report['command']}`", "", f"Machine: {report['machine']}", ""]
    lines += ["| library | ef_search | recall@10 | QPS | build s |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['library']} | {r['ef_search']} | {r['recall@10']} | {r['qps']} | {r['build_s']} |"
        for r in report["hnsw"]
    ]
    lines += ["", "| BM25 | index s | QPS | note |", "|---|---|---|---|"]
    for r in report["bm25"]:
        note = r.get("max_abs_diff_vs_rank_bm25", r.get("top10_overlap", ""))
        lines.append(f"| {r['library']} | {r['index_s']} | {r['qps']} | {note} |")
    lines += ["", "| chunking | MB/s | chunks |", "|---|---|---|"]
    lines += [f"| {r['strategy']} | {r['mb_per_s']} | {r['chunks']} |" for r in report["chunking"]]
    lines += ["", "| questions | retriever | recall@5 | MRR | nDCG@5 |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['questions']} ({r['n']}) | {r['retriever']} | {r['recall@5']} | {r['mrr']} | "
        f"{r['ndcg@5']} |"
        for r in report["quality"]
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--ef", default="16,32,64,128,256")
    ap.add_argument("--out", type=Path, default=Path("build/bench"))
    ap.add_argument("--data", type=Path, default=Path("data"), help="the repo's data/ folder")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    passages, questions, corpus = knowledge_base_texts(args.data)
    with threadpool_limits(1):
        report = {
            "command": "python -m realizar.bench_rag "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()}",
            "hnsw": bench_hnsw(args.n, args.queries, [int(x) for x in args.ef.split(",")]),
            "bm25": bench_bm25(passages, questions),
            "chunking": bench_chunking(corpus),
            "quality": bench_quality(args.data),
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rag.json").write_text(json.dumps(report, indent=1))
    (args.out / "rag.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
