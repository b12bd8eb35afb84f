"""realizar.LLM on F32, F16 and mixed GGUF files against the independent NumPy forward.

The files are made from the course's Q4_1 model by ``realizar.quantize_gguf``: the F32 copy
holds exactly the values the Q4_1 file dequantises to (test_realizar_gguf_write checks the
bytes); the F16 copy holds those values rounded to binary16, with one layer's down
projection in Q8_0 and another's value projection in F32, so one forward runs all three
kinds of product (one file instead of two keeps the suite's time down: the reference reads
and dequantises a whole file each time). The reference (tests/python/llama_reference.py) is
float64 on the weights the ``gguf`` package decodes from each file.

Dense matrices are multiplied by unrounded f32 activations (a block-quantised one by 8-bit
activations, as llama.cpp does), and keys, values, queries and attention probabilities are
still rounded to f16 as in llama.cpp's default KV cache, so the F32 model differs from the
float64 reference by f32 arithmetic plus that f16 rounding. The stated tolerances, per
position: max |difference| <= TOL * (max - min of the reference logits), correlation >=
CORR, and the top-1 token equal wherever the reference's top-2 gap exceeds GAP. Measured on
the two prompts (20 positions): worst max |difference| 0.059 % of the spread for F32 and
0.33 % for the F16 file (0.069 % for an all-F16 file: most of it is the Q8_0 matrix's
8-bit activations); correlation >= 0.9999997 and 0.99998; top-1 equal at every position.
The Q4_1 model (the same weight values as F32, with 8-bit activations everywhere) is off by
5.5 %, about 90 times F32, and the test asserts at least 20 times.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

import realizar
from llama_reference import LlamaReference
from smollm2_reference import gguf_path

PROMPTS = ["The capital of France is", "Émilie a mangé 3 croissants 🥐 et"]
TOL = {"F32": 0.002, "F16+": 0.01}
CORR = {"F32": 0.99999, "F16+": 0.9999}
GAP = {"F32": 0.05, "F16+": 0.1}
# The F16 file has one matrix in Q8_0 and one in F32, so one forward runs every kind of product.
MIXED = {"blk.7.ffn_down.weight": "Q8_0", "blk.3.attn_v.weight": "F32"}


def reference_logits(path: Path) -> list[np.ndarray]:
    """The reference's logits for PROMPTS (the float64 weights are dropped afterwards)."""
    ref = LlamaReference(path)
    llm = realizar.LLM.load(gguf_path())
    return [ref.logits(llm.tokenize(p)) for p in PROMPTS]


@pytest.fixture(scope="module")
def source_reference() -> list[np.ndarray]:
    return reference_logits(gguf_path())


@pytest.fixture(scope="module")
def mixed_file(tmp_path_factory: pytest.TempPathFactory):
    dst = tmp_path_factory.mktemp("gguf-mixed") / "smollm2-mixed.gguf"
    realizar.quantize_gguf(gguf_path(), dst, "F16", tensor_types=MIXED)
    yield dst
    dst.unlink()


def deviations(llm: realizar.LLM, want: list[np.ndarray]) -> list[dict[str, Any]]:
    """Per position of every prompt: max |diff| / spread, correlation, top-1 agreement."""
    out = []
    for prompt, w in zip(PROMPTS, want, strict=True):
        ids = llm.tokenize(prompt)
        got = llm.logits(ids)
        assert got.dtype == np.float32
        assert got.shape == w.shape
        assert np.isfinite(got).all()
        for g, r in zip(got.astype(np.float64), w, strict=True):
            top2 = np.sort(r)[-2:]
            out.append(
                {
                    "rel": np.abs(g - r).max() / (r.max() - r.min()),
                    "corr": np.corrcoef(g, r)[0, 1],
                    "gap": top2[1] - top2[0],
                    "same_top": g.argmax() == r.argmax(),
                }
            )
    return out


def check(kind: str, devs: list[dict[str, Any]]) -> None:
    for i, d in enumerate(devs):
        assert d["rel"] <= TOL[kind], (kind, i, d)
        assert d["corr"] >= CORR[kind], (kind, i, d)
        if d["gap"] > GAP[kind]:
            assert d["same_top"], (kind, i, d)


def test_f32_logits_match_the_reference_closer_than_q4_1(smollm2_f32, source_reference):
    path, _ = smollm2_f32
    f32 = deviations(realizar.LLM.load(path, threads=1), source_reference)
    check("F32", f32)
    # The Q4_1 file holds the same weight values; its 8-bit activations are what differs.
    q41 = deviations(realizar.LLM.load(gguf_path(), threads=1), source_reference)
    worst = lambda ds: max(d["rel"] for d in ds)  # noqa: E731
    assert worst(f32) * 20 < worst(q41), (worst(f32), worst(q41))


def test_f32_two_threads_and_prefill_equal_decode(smollm2_f32):
    path, _ = smollm2_f32
    one = realizar.LLM.load(path, threads=1)
    two = realizar.LLM.load(path, threads=2)
    ids = one.tokenize(PROMPTS[0])
    np.testing.assert_allclose(two.logits(ids), one.logits(ids), rtol=0, atol=1e-4)
    # Prefill multiplies all positions as one GEMM; generation decodes token by token
    # (GEMV): greedy continuation must be the argmax of the batched logits.
    g = one.generate(ids, max_tokens=4)
    full = one.logits(ids + g.tokens)
    assert list(full[len(ids) - 1 : -1].argmax(-1)) == g.tokens


def test_f16_file_with_mixed_in_types_matches_its_reference(mixed_file, smollm2_f32):
    reader = gguf.GGUFReader(mixed_file)
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["token_embd.weight"] == "F16"
    assert types["blk.0.attn_q.weight"] == "F16"
    assert types["blk.7.ffn_down.weight"] == "Q8_0"
    assert types["blk.3.attn_v.weight"] == "F32"
    assert 0.49 < mixed_file.stat().st_size / smollm2_f32[0].stat().st_size < 0.51
    llm = realizar.LLM.load(mixed_file, threads=2)
    check("F16+", deviations(llm, reference_logits(mixed_file)))


def _byte_tokens() -> list[str]:
    """GPT-2's byte-level alphabet: one printable character per byte value."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    shifted = iter(range(256, 512))
    return [chr(b) if b in keep else chr(next(shifted)) for b in range(256)]


BYTE_TOKENS = _byte_tokens()


def write_gguf(path: Path, tensors: dict[str, tuple[np.ndarray, gguf.GGMLQuantizationType]]):
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(1)
    w.add_embedding_length(32)
    w.add_feed_forward_length(32)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_context_length(64)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_rope_freq_base(10000.0)
    w.add_token_list([*BYTE_TOKENS, "!!"])
    w.add_token_merges(["! !"])
    for name, (data, dtype) in tensors.items():
        w.add_tensor(name, data, raw_dtype=dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def small_model(embed: np.ndarray, dtype: gguf.GGMLQuantizationType):
    f32 = gguf.GGMLQuantizationType.F32
    mat = np.zeros((32, 32), dtype=np.float32)
    kv = np.zeros((16, 32), dtype=np.float32)
    norm = np.ones(32, dtype=np.float32)
    tensors = {"token_embd.weight": (embed, dtype), "output_norm.weight": (norm, f32)}
    for name, m in [
        ("attn_q", mat),
        ("attn_k", kv),
        ("attn_v", kv),
        ("attn_output", mat),
        ("ffn_gate", mat),
        ("ffn_up", mat),
        ("ffn_down", mat),
    ]:
        tensors[f"blk.0.{name}.weight"] = (m, f32)
    tensors["blk.0.attn_norm.weight"] = (norm, f32)
    tensors["blk.0.ffn_norm.weight"] = (norm, f32)
    return tensors


def test_unsupported_tensor_type_is_refused_clearly(tmp_path):
    path = tmp_path / "bf16.gguf"
    bf16 = np.zeros((257, 32), dtype=np.uint16)
    write_gguf(path, small_model(bf16, gguf.GGMLQuantizationType.BF16))
    with pytest.raises(ValueError, match=r"ggml type 30.*F32, F16, Q4_0, Q4_1, Q8_0"):
        realizar.LLM.load(path)


def test_small_f32_model_equals_the_reference(tmp_path):
    # A model every weight of which is known: a random F32 embedding (tied to the output)
    # and one layer whose matrices are zero, so the residual stream passes through and the
    # logits are rmsnorm(e_t) . E^T: the dense embedding lookup and output GEMM, exactly.
    rng = np.random.default_rng(3)
    embed = rng.standard_normal((257, 32)).astype(np.float32)
    path = tmp_path / "small.gguf"
    write_gguf(path, small_model(embed, gguf.GGMLQuantizationType.F32))
    llm = realizar.LLM.load(path)
    ids = [0, 256, 3, 1, 2]
    got = llm.logits(ids)
    want = LlamaReference(path).logits(ids)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        llm.logits([257])
