"""realizar.Encoder(precision="bf16" | "int8"): the reduced-precision opt-in, against f32.

The weight matmuls (QKV, attention output, FFN up and down) run through trueno::lowp with
the weights converted once at load; attention, LayerNorm, GELU and pooling stay f32. The
references: the default f32 encoder (itself within 1e-4 of the float64 NumPy forward,
test_realizar_encoder.py) and that float64 NumPy forward (realizar.minilm_reference).

Stated bounds, asserted per sentence (measured on this corpus, all-MiniLM-L6-v2, AVX-512
BF16/VNNI kernels, in parentheses; see docs/benchmarks-realizar.md):

* bf16: cosine to the f32 embedding and to the float64 reference >= 0.9995 (worst 0.99996);
  max |difference| <= 0.005 (0.0015).
* int8: cosine >= 0.98 to both (worst 0.984, on the 2-3 token inputs "?" and ""; 0.996-0.998
  on sentences); max |difference| <= 0.05 (0.031). Activations are quantised per token row,
  so a short input's few rows carry BERT's outlier features alone.
* Retrieval on a small query/document set: top-1 always the f32 top-1, and each query ranks
  two documents as f32 does wherever their f32 scores differ by more than 0.005 (bf16) or
  0.04 (int8): about twice the largest score change measured (0.0016 and 0.018).

Without the instruction set (AVX-512 BF16 / VNNI, or a trueno backend other than avx512),
trueno::lowp runs the same arithmetic on its portable reference path: `lowp_path` says
"reference" and loading warns (RuntimeWarning) rather than falling back silently.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import realizar
from encoder_texts import CORPUS
from lowp_fallback import fallback_reason
from realizar import models
from realizar.minilm_reference import MiniLMReference

# (precision, cosine floor, max |difference| bound, ranking gap): the stated bounds above.
BOUNDS = [("bf16", 0.9995, 0.005, 0.005), ("int8", 0.98, 0.05, 0.04)]

DOCS = [
    "Delta Lake adds ACID transactions to Parquet tables.",
    "MLflow tracks experiments, parameters and metrics.",
    "A vector index answers nearest-neighbour queries over embeddings.",
    "Spark distributes a DataFrame's partitions across executors.",
    "The chef roasted vegetables with olive oil and garlic.",
    "Football fans celebrated the championship in the streets.",
    "Unity Catalog governs tables, volumes and models by name.",
    "Quantisation stores weights in fewer bits to save memory.",
]
QUERIES = [
    "How do I log model metrics?",
    "transactional tables on object storage",
    "similarity search over vectors",
    "cooking dinner at home",
    "compressing neural network weights",
    "who won the match",
]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.fixture(scope="module")
def f32() -> realizar.Encoder:
    return realizar.Encoder.load()


@pytest.fixture(scope="module", params=[b[0] for b in BOUNDS])
def lowp(request: pytest.FixtureRequest) -> realizar.Encoder:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enc = realizar.Encoder.load(precision=request.param)
    notes = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    # Never a silent fallback: the reference path is announced, the SIMD path is not.
    if enc.lowp_path == "reference":
        assert len(notes) == 1, notes
        assert "reference" in notes[0], notes
    else:
        assert notes == [], notes
    return enc


@pytest.fixture(scope="module")
def expected() -> np.ndarray:
    ref = MiniLMReference(models.default_model_dir(), dtype=np.float64)
    return ref.encode(CORPUS, batch_size=1)


def _bounds(precision: str) -> tuple[float, float]:
    _, floor, diff, _ = next(b for b in BOUNDS if b[0] == precision)
    return floor, diff


def test_default_is_f32_and_unchanged(f32) -> None:
    assert f32.precision == "f32"
    assert f32.lowp_path is None
    explicit = realizar.Encoder.load(precision="f32")
    assert explicit.precision == "f32"
    # Not bitwise even for one encoder: trueno's reductions round with buffer alignment.
    np.testing.assert_allclose(explicit.encode(CORPUS), f32.encode(CORPUS), rtol=0, atol=1e-6)
    assert "precision='f32'" in repr(f32) or 'precision="f32"' in repr(f32)


def test_precision_and_path_read_back(lowp) -> None:
    want = {
        "bf16": {"amx_bf16", "avx512_bf16", "reference"},
        "int8": {"amx_int8", "avx512_vnni", "reference"},
    }
    assert lowp.lowp_path in want[lowp.precision]
    assert lowp.precision in repr(lowp)
    assert lowp.dim == 384


def test_embeddings_within_the_stated_bound_of_f32_and_reference(lowp, f32, expected) -> None:
    floor, bound = _bounds(lowp.precision)
    got = lowp.encode(CORPUS)
    base = f32.encode(CORPUS)
    assert got.shape == base.shape == (len(CORPUS), 384)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    to_f32, to_ref = _cos(got, base), _cos(got, expected)
    for i, text in enumerate(CORPUS):
        assert to_f32[i] >= floor, (text, to_f32[i])
        assert to_ref[i] >= floor, (text, to_ref[i])
    diff = np.abs(got - base).max()
    assert diff <= bound, diff
    # The bound can fail: the reduced precision did change the numbers.
    assert diff > 0


def test_bound_is_tight_enough_to_catch_a_wrong_sentence(lowp, f32) -> None:
    floor, _ = _bounds(lowp.precision)
    got, base = lowp.encode(CORPUS[:2]), f32.encode(CORPUS[:2])
    # Two close paraphrases are further apart than the bound allows for one sentence.
    assert _cos(got[0], base[1]) < floor


def test_retrieval_order_matches_f32(lowp, f32) -> None:
    def scores(enc: realizar.Encoder) -> np.ndarray:
        return enc.encode(QUERIES) @ enc.encode(DOCS).T

    gap = next(b[3] for b in BOUNDS if b[0] == lowp.precision)
    want, got = scores(f32), scores(lowp)
    assert (got.argmax(axis=1) == want.argmax(axis=1)).all()
    for q in range(len(QUERIES)):
        for i in range(len(DOCS)):
            for j in range(len(DOCS)):
                if want[q, i] > want[q, j] + gap:
                    assert got[q, i] > got[q, j], (QUERIES[q], DOCS[i], DOCS[j])


def test_edge_cases(lowp, f32) -> None:
    floor, _ = _bounds(lowp.precision)
    empty = lowp.encode([])
    assert empty.shape == (0, 384)
    assert empty.dtype == np.float32
    e = lowp.encode([""])
    assert np.isfinite(e).all()
    assert abs(np.linalg.norm(e) - 1.0) < 1e-5
    assert _cos(e[0], f32.encode([""])[0]) >= floor
    # Batching does not change a sentence's embedding beyond f32 rounding.
    one_by_one = np.stack([lowp.encode([t], batch_size=1)[0] for t in CORPUS])
    np.testing.assert_allclose(lowp.encode(CORPUS, batch_size=5), one_by_one, rtol=0, atol=1e-5)


def test_bad_precision_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"precision: unknown precision \"fp8\""):
        realizar.Encoder.load(precision="fp8")  # ty: ignore[invalid-argument-type]
    with pytest.raises(ValueError, match='"BF16"'):
        realizar.Encoder.load(precision="BF16")  # ty: ignore[invalid-argument-type]
    with pytest.raises(TypeError, match="precision"):
        realizar.Encoder.load(precision=16)  # ty: ignore[invalid-argument-type]
    with pytest.raises(TypeError, match="precision"):
        realizar.Encoder.load(precision=None)  # ty: ignore[invalid-argument-type]


_SCALAR_CHILD = """
import json, sys, warnings
import realizar
texts = json.loads(sys.argv[1])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    enc = realizar.Encoder.load(precision=sys.argv[2])
notes = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
print(json.dumps({"path": enc.lowp_path, "notes": notes, "emb": enc.encode(texts).tolist()}))
"""


@pytest.mark.parametrize("precision", [b[0] for b in BOUNDS])
def test_without_the_instruction_set_the_reference_path_runs_and_says_so(
    precision: str, f32
) -> None:
    # TRUENO_BACKEND=scalar rules out every SIMD kernel, as a CPU without AVX-512 would.
    texts = CORPUS[:3]
    env = dict(os.environ, TRUENO_BACKEND="scalar")
    out = subprocess.run(
        [sys.executable, "-c", _SCALAR_CHILD, json.dumps(texts), precision],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    child = json.loads(out.stdout)
    assert child["path"] == "reference"
    assert len(child["notes"]) == 1, child["notes"]
    note = child["notes"][0]
    for word in (f'"{precision}"', "reference", fallback_reason(precision)):
        assert word in note, note
    floor, bound = _bounds(precision)
    got = np.asarray(child["emb"], dtype=np.float32)
    base = f32.encode(texts)
    assert (_cos(got, base) >= floor).all()
    assert np.abs(got - base).max() <= bound
