"""realizar.onnx_export (all-MiniLM-L6-v2 as an ONNX graph, no PyTorch) run by onnxruntime,
against the float64 NumPy forward (realizar.minilm_reference) and realizar's encoder.

The export is the benchmark's onnxruntime baseline (``python -m realizar.bench --only
embeddings``): these tests are what make its rows a comparison of the same model.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import realizar
from realizar import models

sys.path.insert(0, str(Path(__file__).parent))
from encoder_texts import CORPUS
from realizar.minilm_reference import MiniLMReference
from realizar.onnx_export import OPSET, OnnxEncoder, export_minilm, padded_batches


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return models.default_model_dir()


@pytest.fixture(scope="module")
def exported(model_dir: Path):
    return export_minilm(model_dir)


@pytest.fixture(scope="module")
def onnx_encoder(exported) -> OnnxEncoder:
    return OnnxEncoder(exported, threads=1)


@pytest.fixture(scope="module")
def encoder():
    return realizar.Encoder.load()


@pytest.fixture(scope="module")
def ids(encoder) -> list[list[int]]:
    # realizar's tokenizer ids for both engines: only the forward pass is compared.
    return [encoder.tokenizer.encode(t).ids for t in CORPUS]


@pytest.fixture(scope="module")
def expected(model_dir: Path) -> np.ndarray:
    return MiniLMReference(model_dir, dtype=np.float64).encode(CORPUS, batch_size=1)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_graph_is_the_bert_encoder(exported) -> None:
    assert [(o.domain, o.version) for o in exported.opset_import] == [("", OPSET)]
    assert [i.name for i in exported.graph.input] == [
        "input_ids",
        "attention_mask",
        "token_type_ids",
    ]
    assert [o.name for o in exported.graph.output] == ["sentence_embedding"]
    ops = Counter(n.op_type for n in exported.graph.node)
    # Embedding LayerNorm + 2 per layer; q, k, v, out, up, down + qk and pv per layer.
    assert ops["LayerNormalization"] == 1 + 2 * 6
    assert ops["MatMul"] == 8 * 6
    assert ops["Erf"] == 6
    assert ops["Softmax"] == 6
    # Every weight of the checkpoint but the unused pooler (and position_ids) is in it.
    names = {t.name for t in exported.graph.initializer}
    assert "encoder.layer.5.output.dense.weight" in names
    assert not any(n.startswith("pooler") for n in names)


@pytest.mark.parametrize("batch", [1, 32])
def test_matches_the_float64_reference(onnx_encoder, ids, expected, batch: int) -> None:
    got = onnx_encoder.encode_ids(ids, batch_size=batch)
    assert got.shape == (len(CORPUS), 384)
    assert got.dtype == np.float32
    # Measured: min cosine 0.99999999, max |diff| 1.5e-7 (float32 against float64).
    assert _cosines(got, expected).min() >= 0.99999
    assert np.abs(got - expected).max() <= 1e-5


def test_matches_realizar(onnx_encoder, encoder, ids) -> None:
    got = onnx_encoder.encode_ids(ids, batch_size=32)
    want = encoder.encode_ids(ids, batch_size=32)
    assert _cosines(got, want).min() >= 0.99999
    assert np.abs(got - want).max() <= 1e-5


def test_the_padding_mask_is_applied(onnx_encoder, ids) -> None:
    # One batch padded to the 256-token row: padded keys must not change any embedding.
    padded = onnx_encoder.encode_ids(ids, batch_size=len(ids))
    alone = onnx_encoder.encode_ids(ids, batch_size=1)
    np.testing.assert_allclose(padded, alone, rtol=0, atol=1e-5)
    # And the check can fail: with the mask all ones, padding leaks into short rows.
    [(idx, feed)] = padded_batches(ids, len(ids))
    feed = {**feed, "attention_mask": np.ones_like(feed["attention_mask"])}
    leaked = np.zeros_like(padded)
    leaked[idx] = onnx_encoder.session.run(["sentence_embedding"], feed)[0]
    assert np.abs(leaked - alone).max() > 1e-2


def test_padded_batches_sort_longest_first_and_pad_with_zeros() -> None:
    rows = [[101, 7, 102], [101, 102], [101, 5, 6, 7, 102]]
    batches = padded_batches(rows, 2)
    assert [list(idx) for idx, _ in batches] == [[2, 0], [1]]
    feed = batches[0][1]
    assert feed["input_ids"].dtype == np.int64
    assert feed["input_ids"].tolist() == [[101, 5, 6, 7, 102], [101, 7, 102, 0, 0]]
    assert feed["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert not feed["token_type_ids"].any()
    assert padded_batches([], 4) == []


def test_empty_input_and_empty_row(onnx_encoder) -> None:
    assert onnx_encoder.encode_ids([]).shape == (0, 384)
    # No token to pool: the zero vector, as realizar gives (norm clamped at 1e-12).
    np.testing.assert_array_equal(onnx_encoder.encode_ids([[]]), np.zeros((1, 384), np.float32))


def test_bad_batch_size() -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        padded_batches([[101, 102]], 0)
    with pytest.raises(TypeError, match="batch_size must be an int, got float"):
        padded_batches([[101, 102]], 2.0)  # ty: ignore[invalid-argument-type]


def test_bad_model_directory(tmp_path: Path, model_dir: Path) -> None:
    config = (model_dir / "config.json").read_text()
    (tmp_path / "config.json").write_text(config.replace('"gelu"', '"relu"'))
    with pytest.raises(ValueError, match="hidden_act 'relu' is not 'gelu'"):
        export_minilm(tmp_path)
    (tmp_path / "config.json").write_text(config)
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        export_minilm(tmp_path)
