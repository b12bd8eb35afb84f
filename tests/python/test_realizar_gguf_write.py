"""``realizar.quantize_gguf`` (the crate's GGUF writer and re-quantiser) against ``gguf``.

SmolLM2's Q4_1 file is rewritten as F32, Q8_0, Q4_0 and Q4_1. Each output is read back by
``gguf`` (llama.cpp's own Python reader): the metadata equals the source's (but
``general.file_type``), the tensor table has the same names and shapes with matrices in the
target type and vectors in F32, the bytes of a matrix equal ``gguf.quants.quantize`` of the
source's dequantised values, and the reported errors equal NumPy's. The quantised outputs
load in ``realizar.LLM`` and agree with the source model's logits.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

import realizar
from smollm2_reference import gguf_path

FILE_TYPE = {"F32": 0, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7}
QTYPE = {
    "F32": gguf.GGMLQuantizationType.F32,
    "Q8_0": gguf.GGMLQuantizationType.Q8_0,
    "Q4_0": gguf.GGMLQuantizationType.Q4_0,
    "Q4_1": gguf.GGMLQuantizationType.Q4_1,
}


@functools.cache
def source() -> gguf.GGUFReader:
    return gguf.GGUFReader(gguf_path())


def dequantized(reader: gguf.GGUFReader, name: str) -> np.ndarray:
    t = next(t for t in reader.tensors if t.name == name)
    return gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)


def fields(reader: gguf.GGUFReader) -> dict[str, Any]:
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


@pytest.fixture(scope="module", params=["Q8_0", "Q4_0", "Q4_1", "F32"])
def converted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    kind = request.param
    if kind == "F32":
        # Written once per session (conftest.py) for this module and test_realizar_llm_dense.
        dst, report = request.getfixturevalue("smollm2_f32")
        yield kind, dst, report
        return
    dst = tmp_path_factory.mktemp("gguf") / f"smollm2-{kind}.gguf"
    report = realizar.quantize_gguf(gguf_path(), dst, kind)
    yield kind, dst, report
    dst.unlink()


def test_gguf_reads_the_written_file(converted) -> None:
    kind, dst, report = converted
    out, src = gguf.GGUFReader(dst), source()
    want = fields(src)
    want["general.file_type"] = FILE_TYPE[kind]
    assert fields(out) == want
    assert [t.name for t in out.tensors] == [t.name for t in src.tensors]
    for t, s in zip(out.tensors, src.tensors, strict=True):
        assert list(t.shape) == list(s.shape), t.name
        expect = QTYPE[kind] if len(s.shape) >= 2 else gguf.GGMLQuantizationType.F32
        assert t.tensor_type == expect, t.name
    assert [r["name"] for r in report] == [t.name for t in src.tensors]
    assert not dst.with_suffix(".gguf.partial").exists()


def test_bytes_equal_gguf_quantize_and_errors_equal_numpy(converted) -> None:
    kind, dst, report = converted
    out, src = gguf.GGUFReader(dst), source()
    by_name = {r["name"]: r for r in report}
    for name in ["blk.0.attn_q.weight", "blk.3.ffn_down.weight", "token_embd.weight"]:
        x = dequantized(src, name)
        t = next(t for t in out.tensors if t.name == name)
        if kind == "F32":
            expected = x.tobytes()
        else:
            expected = gguf.quants.quantize(x.reshape(-1, t.shape[0]), QTYPE[kind]).tobytes()
        assert bytes(t.data.tobytes()) == expected, name
        back = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64).reshape(-1)
        err = back - x.astype(np.float64)
        r = by_name[name]
        assert r["bytes"] == len(expected)
        assert r["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-9, abs=1e-12)
        assert r["max_abs_err"] == pytest.approx(np.abs(err).max(), rel=1e-9, abs=1e-12)
        assert r["rms"] == pytest.approx(np.sqrt(np.mean(x.astype(np.float64) ** 2)), rel=1e-9)
    norms = [r for r in report if len(r["dims"]) == 1]
    assert norms
    assert all(r["to"] == "F32" and r["rmse"] == 0 for r in norms)
    if kind == "F32":
        assert all(r["rmse"] == 0 for r in report)


def test_errors_order_by_precision(converted) -> None:
    kind, _, report = converted
    rel = np.mean([r["rmse"] / r["rms"] for r in report if len(r["dims"]) >= 2])
    bound = {"F32": 0.0, "Q8_0": 0.01, "Q4_1": 0.01, "Q4_0": 0.2}[kind]
    assert rel <= bound, f"{kind}: mean relative error {rel}"
    if kind == "Q4_0":
        assert rel > 0.02, "symmetric 4-bit loses visibly against Q4_1's values"


TEXT = (
    "Bread needs time more than it needs skill. Mix flour, water, salt and a little "
    "yeast, leave the dough covered overnight, and in the morning it will have risen."
)


@functools.cache
def source_logits() -> tuple[list[int], np.ndarray]:
    llm = realizar.LLM.load(gguf_path())
    ids = llm.tokenize(TEXT)
    return ids, llm.logits(ids)


def test_quantised_outputs_run_and_agree_with_the_source(converted) -> None:
    kind, dst, _ = converted
    ids, ref = source_logits()
    got = realizar.LLM.load(dst).logits(ids)
    assert np.isfinite(got).all()
    agree = np.mean(ref.argmax(-1) == got.argmax(-1))
    # F32 holds the source's values exactly (only the activations are no longer rounded to
    # 8 bits); Q4_1 re-encodes the matrices almost exactly but the embedding (Q8_0 in the
    # source) loses; Q4_0 loses everywhere.
    assert agree >= {"F32": 0.9, "Q8_0": 0.9, "Q4_1": 0.7, "Q4_0": 0.3}[kind], agree


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown tensor type"):
        realizar.quantize_gguf(gguf_path(), tmp_path / "x.gguf", "Q5_K")
    with pytest.raises(ValueError, match="unknown tensor type"):
        realizar.quantize_gguf(
            gguf_path(), tmp_path / "x.gguf", "Q8_0", {"output_norm.weight": "Q9"}
        )
    with pytest.raises(ValueError, match="no_such_tensor"):
        realizar.quantize_gguf(gguf_path(), tmp_path / "x.gguf", "Q8_0", {"no_such_tensor": "F16"})
    with pytest.raises(FileNotFoundError):
        realizar.quantize_gguf(tmp_path / "missing.gguf", tmp_path / "x.gguf", "Q8_0")
    with pytest.raises(ValueError, match="differ"):
        realizar.quantize_gguf(gguf_path(), gguf_path(), "Q8_0")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)
    with pytest.raises(ValueError, match="GGUF"):
        realizar.quantize_gguf(junk, tmp_path / "x.gguf", "Q8_0")
    with pytest.raises(OSError, match=r"dir\.gguf"):
        realizar.quantize_gguf(gguf_path(), tmp_path / "no" / "such" / "dir.gguf", "Q8_0")
    assert not list(tmp_path.glob("*.partial"))
