"""realizar.Encoder (all-MiniLM-L6-v2 in Rust) against an independent NumPy forward pass."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import realizar
from realizar import models

sys.path.insert(0, str(Path(__file__).parent))
from encoder_texts import CORPUS
from realizar.minilm_reference import MiniLMReference


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return models.default_model_dir()


@pytest.fixture(scope="module")
def encoder():
    return realizar.Encoder.load()


@pytest.fixture(scope="module")
def reference(model_dir: Path) -> MiniLMReference:
    return MiniLMReference(model_dir, dtype=np.float64)


@pytest.fixture(scope="module")
def expected(reference: MiniLMReference) -> np.ndarray:
    # One sentence per batch: no padding, so the exact-erf float64 pass stays quick.
    return reference.encode(CORPUS, batch_size=1)


def test_shape_dtype_and_metadata(encoder) -> None:
    out = encoder.encode(CORPUS)
    assert out.shape == (len(CORPUS), 384)
    assert out.dtype == np.float32
    assert out.flags.c_contiguous
    assert encoder.dim == 384
    assert encoder.max_seq_length == 256
    assert encoder.model_name == "sentence-transformers/all-MiniLM-L6-v2"


@pytest.mark.parametrize("i", range(len(CORPUS)))
def test_each_sentence_matches_the_reference(encoder, expected: np.ndarray, i: int) -> None:
    got = encoder.encode([CORPUS[i]])[0].astype(np.float64)
    want = expected[i]
    cos = got @ want / (np.linalg.norm(got) * np.linalg.norm(want))
    assert cos >= 0.99999, f"{CORPUS[i]!r}: cosine {cos}"
    assert np.abs(got - want).max() <= 1e-4, f"{CORPUS[i]!r}: max diff {np.abs(got - want).max()}"


def test_unnormalised_mean_pooling_matches(encoder, reference: MiniLMReference) -> None:
    texts = CORPUS[:4]
    got = encoder.encode(texts, normalize=False)
    want = reference.encode(texts, normalize=False)
    assert not np.allclose(np.linalg.norm(got, axis=1), 1.0)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_reference_can_fail(encoder, expected: np.ndarray) -> None:
    # The bar is tight enough to catch a real mistake: neighbouring sentences differ.
    got = encoder.encode(CORPUS[:2])
    assert np.abs(got[0] - expected[1]).max() > 1e-2


def test_batched_equals_unbatched(encoder) -> None:
    batched = encoder.encode(CORPUS, batch_size=32)
    one_by_one = np.stack([encoder.encode([t], batch_size=1)[0] for t in CORPUS])
    odd = encoder.encode(CORPUS, batch_size=3)
    np.testing.assert_allclose(batched, one_by_one, rtol=0, atol=1e-6)
    np.testing.assert_allclose(batched, odd, rtol=0, atol=1e-6)


def test_similarity_is_meaningful(encoder) -> None:
    e = encoder.encode(CORPUS[:3])
    sim = e @ e.T
    assert sim[0, 1] > 0.7 > sim[0, 2]


def test_empty_list_and_empty_string(encoder) -> None:
    empty = encoder.encode([])
    assert empty.shape == (0, 384)
    assert empty.dtype == np.float32
    e = encoder.encode([""])
    assert np.isfinite(e).all()
    assert abs(np.linalg.norm(e) - 1.0) < 1e-5


def test_count_tokens(encoder) -> None:
    assert encoder.count_tokens("") == 2
    assert encoder.count_tokens("word " * 400) == 256
    tok = encoder.tokenizer
    assert encoder.count_tokens(CORPUS[5]) == len(tok.encode(CORPUS[5]).ids)


def test_tuple_input_and_threads_option(model_dir: Path, encoder) -> None:
    two = realizar.Encoder.load(model_dir, threads=2, model_name="minilm")
    assert two.threads == 2
    assert two.model_name == "minilm"
    np.testing.assert_allclose(two.encode(tuple(CORPUS[:3])), encoder.encode(CORPUS[:3]), atol=1e-6)


def test_concurrent_calls_release_the_gil_and_agree(encoder) -> None:
    want = encoder.encode(CORPUS)
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(encoder.encode(CORPUS))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    for r in results:
        # Not bitwise: trueno reductions may round differently with buffer alignment.
        np.testing.assert_allclose(r, want, rtol=0, atol=1e-6)


def test_bad_arguments(encoder) -> None:
    with pytest.raises(TypeError, match=r"texts\[1\] must be str, got int"):
        encoder.encode(["ok", 3])
    with pytest.raises(TypeError, match="single str"):
        encoder.encode("a bare string")
    with pytest.raises(TypeError, match="NoneType"):
        encoder.encode(None)
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(["x"], batch_size=0)


def test_encode_ids_is_encode_without_the_tokenizer(encoder, expected: np.ndarray) -> None:
    ids = [encoder.tokenizer.encode(t).ids for t in CORPUS]
    for batch in (1, 3, 32):
        # Not bitwise: trueno reductions may round differently with buffer alignment.
        np.testing.assert_allclose(
            encoder.encode_ids(ids, batch_size=batch),
            encoder.encode(CORPUS, batch_size=batch),
            rtol=0,
            atol=1e-6,
        )
    got = encoder.encode_ids(ids).astype(np.float64)
    assert np.abs(got - expected).max() <= 1e-4
    # NumPy rows and tuples are accepted; unnormalised pooling is passed through.
    np.testing.assert_allclose(
        encoder.encode_ids([np.array(ids[0]), tuple(ids[1])], normalize=False),
        encoder.encode(CORPUS[:2], normalize=False),
        rtol=0,
        atol=1e-6,
    )
    empty = encoder.encode_ids([])
    assert empty.shape == (0, 384)
    assert empty.dtype == np.float32
    # An empty row pools no token: the zero vector, as encode_padded gives an all-pad row.
    np.testing.assert_array_equal(encoder.encode_ids([[]]), np.zeros((1, 384), np.float32))


def test_encode_ids_bad_arguments(encoder) -> None:
    with pytest.raises(TypeError, match="ids must be a list of lists of int, got str"):
        encoder.encode_ids("101 102")
    with pytest.raises(TypeError, match="got NoneType"):
        encoder.encode_ids(None)
    with pytest.raises(TypeError, match=r"ids\[1\] must be a list of int, got int"):
        encoder.encode_ids([[101, 102], 7])
    with pytest.raises(TypeError, match=r"ids\[0\]\[1\] must be an int token id, got float"):
        encoder.encode_ids([[101, 1.5, 102]])
    with pytest.raises(ValueError, match=r"ids\[0\]\[0\] = -1 is not a token id"):
        encoder.encode_ids([[-1]])
    with pytest.raises(ValueError, match=r"ids\[0\]\[0\] = 10{30} is not a token id"):
        encoder.encode_ids([[10**30]])
    with pytest.raises(ValueError, match="token id 30522 is outside the vocabulary of 30522"):
        encoder.encode_ids([[101, 30522, 102]])
    with pytest.raises(ValueError, match="513 tokens is longer than the model's 512 positions"):
        encoder.encode_ids([[101] * 513])
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode_ids([[101, 102]], batch_size=0)


# --- bad model directories: clear errors naming the path, never a crash -------------


def _model_copy(src: Path, dst: Path, *, weights: bool = True, vocab: bool = True) -> Path:
    dst.mkdir(exist_ok=True)
    for name in ("config.json", "sentence_bert_config.json", "tokenizer_config.json"):
        shutil.copy(src / name, dst / name)
    (dst / "1_Pooling").mkdir(exist_ok=True)
    shutil.copy(src / "1_Pooling" / "config.json", dst / "1_Pooling" / "config.json")
    if vocab:
        shutil.copy(src / "vocab.txt", dst / "vocab.txt")
    if weights:
        (dst / "model.safetensors").symlink_to(src / "model.safetensors")
    return dst


def test_copied_directory_loads(tmp_path: Path, model_dir: Path, encoder) -> None:
    d = _model_copy(model_dir, tmp_path / "MiniLM")
    enc = realizar.Encoder.load(d)
    assert enc.model_name == "MiniLM"
    np.testing.assert_allclose(
        enc.encode(CORPUS[:2]), encoder.encode(CORPUS[:2]), rtol=0, atol=1e-6
    )


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        realizar.Encoder.load(tmp_path / "nope")


def test_directory_without_config(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"config\.json is missing") as e:
        realizar.Encoder.load(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_missing_vocabulary(tmp_path: Path, model_dir: Path) -> None:
    d = _model_copy(model_dir, tmp_path / "m", vocab=False)
    with pytest.raises(ValueError, match="missing vocabulary") as e:
        realizar.Encoder.load(d)
    assert str(d) in str(e.value)


def test_missing_weights(tmp_path: Path, model_dir: Path) -> None:
    d = _model_copy(model_dir, tmp_path / "m", weights=False)
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        realizar.Encoder.load(d)


def test_truncated_weights(tmp_path: Path, model_dir: Path) -> None:
    d = _model_copy(model_dir, tmp_path / "m", weights=False)
    with (model_dir / "model.safetensors").open("rb") as f:
        (d / "model.safetensors").write_bytes(f.read(1 << 20))
    with pytest.raises(ValueError, match="invalid safetensors") as e:
        realizar.Encoder.load(d)
    assert "model.safetensors" in str(e.value)


def test_header_claiming_a_huge_size(tmp_path: Path, model_dir: Path) -> None:
    d = _model_copy(model_dir, tmp_path / "m", weights=False)
    (d / "model.safetensors").write_bytes((50_000_000).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        realizar.Encoder.load(d)
    (d / "model.safetensors").write_bytes((2**63).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match="header claims"):
        realizar.Encoder.load(d)


def test_garbage_weights(tmp_path: Path, model_dir: Path) -> None:
    d = _model_copy(model_dir, tmp_path / "m", weights=False)
    (d / "model.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{oops")
    with pytest.raises(ValueError, match=r"model\.safetensors"):
        realizar.Encoder.load(d)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_size": 256, "num_attention_heads": 8}, "shape"),
        ({"num_hidden_layers": 7}, "missing tensor"),
        ({"hidden_act": "relu"}, "hidden_act"),
        ({"num_attention_heads": 5}, "multiple"),
        ({"vocab_size": -1}, "vocab_size"),
    ],
)
def test_config_that_does_not_match_the_weights(
    tmp_path: Path, model_dir: Path, change: dict[str, object], message: str
) -> None:
    d = _model_copy(model_dir, tmp_path / "m")
    config = json.loads((d / "config.json").read_text())
    config.update(change)
    (d / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message) as e:
        realizar.Encoder.load(d)
    assert str(d) in str(e.value)


def test_invalid_config_json(tmp_path: Path, model_dir: Path) -> None:
    d = _model_copy(model_dir, tmp_path / "m")
    (d / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="invalid JSON"):
        realizar.Encoder.load(d)
