"""Write ggml's quantised bytes for crafted f32 rows to tests/python/fixtures/ggml_quants.txt.

trueno's quantisers (crates/trueno/src/quant/quantize.rs) must be bit-exact with ggml. The
references here are independent of trueno:

* weights (`q8_0`, `q4_0`, `q4_1`): the `gguf` package's `quants` module (llama.cpp's own
  Python port of `quantize_row_*_ref`, documented as bit-exact with ggml-quants.c);
* `q8_1` (reference rounding) and the CPU backend's activation quantisers `row_q8_0` /
  `row_q8_1` (SIMD rounding: `x * (127 / max|x|)`, round half to even), which gguf does not
  implement, in NumPy float32 arithmetic written from ggml's C.

One line per case: `<kind> <input as little-endian f32 hex> <expected bytes hex>`. The Rust test
`quant::tests::quantisers_equal_ggml_fixture` reads it; tests/python/test_ggml_quants_fixture.py
regenerates it and fails if the committed file differs. Run `python tests/python/ggml_quants_gen.py`
to rewrite it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType
from gguf.quants import np_roundf, quantize

FIXTURE = Path(__file__).parent / "fixtures" / "ggml_quants.txt"
F32 = np.float32


def rows() -> list[np.ndarray]:
    """Rows of 64 values (two blocks) that reach every rounding branch."""
    rng = np.random.default_rng(20261201)
    out = [rng.standard_normal(64).astype(F32) * F32(s) for s in (1e-3, 0.02, 1.0, 3e3)]
    out.append(rng.uniform(-1, 1, 64).astype(F32))
    # Exact ties: with max|x| = 127 the Q8 step is 1, so k + 0.5 is a tie (roundf and
    # round-half-even disagree on even k); with min 0 and max 15 the Q4_1 step is 1.
    ties = np.array([127.0, -0.5, 0.5, 1.5, 2.5, -2.5, -3.5, 4.5] * 8, dtype=F32)
    out.append(ties)
    q41 = np.array([0.0, 15.0, 0.5, 1.5, 7.5, 14.5, 3.49, 3.51] * 8, dtype=F32)
    out.append(q41)
    out.append(np.zeros(64, dtype=F32))  # d = 0: every value 0, no division
    out.append(np.full(64, F32(-2.0)))  # constant block: Q4_1's d = 0
    huge = np.array([3e38, -1e30, 7e4, 1.0] * 16, dtype=F32)  # scales past f16: inf
    out.append(huge)
    tiny = np.array([1e-40, -3e-39, 1e-8, 0.0] * 16, dtype=F32)  # subnormal inputs
    out.append(tiny)
    return out


def q8_1_ref(x: np.ndarray) -> bytes:
    b = x.reshape(-1, 32)
    d = (np.abs(b).max(axis=1, keepdims=True) / F32(127)).astype(F32)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, F32(0), F32(1) / d).astype(F32)
    qs = np_roundf((b * inv).astype(F32)).astype(np.int8)
    s = (qs.astype(np.int32).sum(axis=1, keepdims=True).astype(F32) * d).astype(F32)
    return _pack(d, s, qs)


def row_q8(x: np.ndarray, with_sum: bool) -> bytes:
    """ggml-cpu's SIMD quantize_row_q8_0 / quantize_row_q8_1."""
    b = x.reshape(-1, 32)
    amax = np.abs(b).max(axis=1, keepdims=True).astype(F32)
    with np.errstate(divide="ignore"):
        mul = np.where(amax == 0, F32(0), F32(127) / amax).astype(F32)
    qs = np.rint((b * mul).astype(F32)).astype(np.int8)
    d = (amax / F32(127)).astype(F32)
    if not with_sum:
        return _pack(d, None, qs)
    s = (d * qs.astype(np.int32).sum(axis=1, keepdims=True).astype(F32)).astype(F32)
    return _pack(d, s, qs)


def _pack(d: np.ndarray, s: np.ndarray | None, qs: np.ndarray) -> bytes:
    with np.errstate(over="ignore"):
        parts = [d.astype("<f2").view(np.uint8)]
        if s is not None:
            parts.append(s.astype("<f2").view(np.uint8))
    parts.append(qs.view(np.uint8))
    return np.concatenate(parts, axis=1).tobytes()


def cases() -> list[str]:
    kinds = {
        "q8_0": GGMLQuantizationType.Q8_0,
        "q4_0": GGMLQuantizationType.Q4_0,
        "q4_1": GGMLQuantizationType.Q4_1,
    }
    lines = []
    for x in rows():
        inp = x.astype("<f4").tobytes().hex()
        with np.errstate(over="ignore", invalid="ignore"):
            for name, ty in kinds.items():
                lines.append(f"{name} {inp} {quantize(x.reshape(1, -1), ty).tobytes().hex()}")
            lines.append(f"q8_1 {inp} {q8_1_ref(x).hex()}")
            lines.append(f"row_q8_0 {inp} {row_q8(x, with_sum=False).hex()}")
            lines.append(f"row_q8_1 {inp} {row_q8(x, with_sum=True).hex()}")
    return lines


def render() -> str:
    return "\n".join(cases()) + "\n"


if __name__ == "__main__":
    FIXTURE.write_text(render())
    print(f"wrote {FIXTURE}")
