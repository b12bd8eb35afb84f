"""realizar.rag: retrieval from scratch (the `trueno-rag` crate) for notebooks.

Chunking, BM25, HNSW with metadata filters, reciprocal rank fusion, retrieval
metrics and groundedness, all in Rust (GIL released). `embed_and_judge` is the
one convenience that joins two crates: it embeds an answer's claims and the
passages with realizar's sentence encoder, then judges groundedness.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from realizar._realizar import Encoder
from realizar._realizar import rag as _rag

Chunk = _rag.Chunk
BM25 = _rag.BM25
HNSW = _rag.HNSW
chunk_fixed = _rag.chunk_fixed
chunk_tokens = _rag.chunk_tokens
chunk_recursive = _rag.chunk_recursive
chunk_sentences = _rag.chunk_sentences
chunk_markdown = _rag.chunk_markdown
sentence_spans = _rag.sentence_spans
analyze = _rag.analyze
rrf = _rag.rrf
recall_at_k = _rag.recall_at_k
precision_at_k = _rag.precision_at_k
reciprocal_rank = _rag.reciprocal_rank
ndcg_at_k = _rag.ndcg_at_k
evaluate = _rag.evaluate
claim_spans = _rag.claim_spans
groundedness = _rag.groundedness


def embed_and_judge(
    encoder: Encoder,
    answer: str,
    passages: Sequence[str],
    *,
    min_cosine: float = 0.5,
    min_overlap: float = 0.5,
    check_numbers: bool = True,
) -> dict[str, Any]:
    """Groundedness of `answer` against `passages`, embedded with `encoder`."""
    claims = [answer[s:e] for s, e in claim_spans(answer)]
    dim = encoder.dim
    sentence_embeddings = encoder.encode(claims) if claims else _empty(dim)
    passage_embeddings = encoder.encode(list(passages)) if passages else _empty(dim)
    return groundedness(
        answer,
        sentence_embeddings,
        list(passages),
        passage_embeddings,
        min_cosine=min_cosine,
        min_overlap=min_overlap,
        check_numbers=check_numbers,
    )


def _empty(dim: int) -> np.ndarray:
    return np.zeros((0, dim), dtype=np.float32)


__all__ = [
    "BM25",
    "HNSW",
    "Chunk",
    "analyze",
    "chunk_fixed",
    "chunk_markdown",
    "chunk_recursive",
    "chunk_sentences",
    "chunk_tokens",
    "claim_spans",
    "embed_and_judge",
    "evaluate",
    "groundedness",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank",
    "rrf",
    "sentence_spans",
]
