"""trueno.matmul(precision="bf16" | "int8") against NumPy.

The references are written here from the formats' definitions, in NumPy: bf16 rounding
(round-to-nearest-even on the f32 bits, subnormals flushed to zero, as the hardware
does), symmetric int8 quantisation per row of a and per column of b (``np.rint``), and
the integer product in int64. The bounds asserted are the ones crates/trueno/src/lowp.rs
states: bf16 is exact products with f32 summation (``|c - exact| <= k 2^-24 S`` over the
rounded inputs, ``S = |a| @ |b|``), about 2^-7 of S against the raw inputs; int8 is bit for
bit the integer product scaled in f32, within half a quantisation step per operand of the
raw product.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest

import trueno
from gil_probe import ticks_during

U32 = 2.0**-24
U16 = 2.0**-8

SHAPES = [
    (1, 1, 1),
    (1, 7, 1),
    (1, 300, 600),
    (600, 5, 1),
    (2, 5, 3),
    (13, 63, 33),
    (11, 255, 31),
    (25, 600, 65),
    (100, 3, 129),
    (37, 4, 16),
]


def bf16_round(x: np.ndarray) -> np.ndarray:
    """x rounded to bf16 and widened back to float32 (the definition, on the bits)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) & 0xFFFF
    magnitude = bits & 0x7FFFFFFF
    out = np.where(magnitude < 0x00800000, (bits >> 16) & 0x8000, rounded)
    out = np.where(magnitude > 0x7F800000, ((bits >> 16) | 0x40) & 0xFFFF, out)
    return (out.astype(np.uint32) << 16).view(np.float32).reshape(np.shape(x))


def quantise(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8: scale max|x| / 127 along `axis`, q = rint(x / s) in [-127, 127]."""
    scale = (np.abs(x).max(axis=axis, keepdims=True) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.clip(np.rint(x / scale), -127, 127)
    q = np.where(scale == 0, 0, q).astype(np.int64)
    return q, scale


def int8_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    qa, sa = quantise(a, axis=1)
    qb, sb = quantise(b, axis=0)
    acc = qa @ qb
    return (acc.astype(np.float32) * sa) * sb


def _rand(rng: np.random.Generator, shape: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    return ((rng.random(shape) * 2 - 1) * scale).astype(np.float32)


@pytest.fixture(params=["default", "no-amx", "scalar"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test runs on the widest path (AMX on a CPU with it), with AMX forbidden (the
    AVX-512 kernels, when the CPU has them) and on the reference."""
    before = trueno.backend()
    amx_before = trueno._set_amx(request.param != "no-amx")
    if request.param == "scalar":
        trueno.set_backend("scalar")
    yield request.param
    trueno.set_backend(before)
    trueno._set_amx(amx_before)


def test_bf16_rounding_reference_is_round_to_nearest_even() -> None:
    one = np.float32(1.0)
    ulp = np.float32(2.0**-7)
    x = np.array(
        [one + ulp / 2, one + 3 * ulp / 2, -(one + ulp / 2), one + ulp * 0.51, 3.0, 1e-40, -1e-40],
        dtype=np.float32,
    )
    want = np.array([1.0, 1.0 + 2 * ulp, -1.0, 1.0 + ulp, 3.0, 0.0, -0.0], dtype=np.float32)
    got = bf16_round(x)
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got[-1])
    assert np.isinf(bf16_round(np.array([np.finfo(np.float32).max]))[0])
    assert np.isnan(bf16_round(np.array([np.nan], dtype=np.float32))[0])


@pytest.mark.parametrize(("m", "k", "n"), SHAPES)
def test_bf16_is_f32_summation_of_rounded_inputs(backend: str, m: int, k: int, n: int) -> None:
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a, b = _rand(rng, (m, k)), _rand(rng, (k, n))
    got = trueno.matmul(a, b, precision="bf16")
    assert got.dtype == np.float32
    assert got.shape == (m, n)
    ar, br = bf16_round(a).astype(np.float64), bf16_round(b).astype(np.float64)
    exact, s = ar @ br, np.abs(ar) @ np.abs(br)
    err = np.abs(got - exact)
    assert np.all(err <= k * U32 * s + 1e-30), float((err / (s + 1e-300)).max())
    # NumPy's own f32 product of the rounded inputs obeys the same bound: both within 2x.
    np_f32 = bf16_round(a) @ bf16_round(b)
    assert np.all(np.abs(got - np_f32) <= 2 * k * U32 * s + 1e-30)


def test_bf16_error_against_raw_f32(backend: str) -> None:
    rng = np.random.default_rng(5)
    m, k, n = 40, 513, 70
    a, b = _rand(rng, (m, k), 100.0), _rand(rng, (k, n))
    got = trueno.matmul(a, b, precision="bf16")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    s = np.abs(a64) @ np.abs(b64)
    rel = np.abs(got - a64 @ b64) / s
    assert rel.max() <= 2 * U16 + U16**2 + k * U32
    # The bound is not vacuous: the inputs really were rounded.
    assert rel.max() > 1e-5
    # And the default precision is untouched f32.
    assert np.abs(trueno.matmul(a, b) - a64 @ b64).max() / s.max() < 1e-5


def test_bf16_special_values_propagate_like_numpy(backend: str) -> None:
    rng = np.random.default_rng(9)
    a, b = _rand(rng, (14, 9)), _rand(rng, (9, 35))
    a[2, 3], a[5, 0], a[13, 8] = np.nan, np.inf, -np.inf
    b[4, 30] = np.inf
    got = trueno.matmul(a, b, precision="bf16")
    with np.errstate(invalid="ignore"):
        want = bf16_round(a) @ bf16_round(b)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    np.testing.assert_array_equal(got[np.isinf(want)], want[np.isinf(want)])


@pytest.mark.parametrize(("m", "k", "n"), SHAPES)
def test_int8_is_exact_integer_arithmetic(backend: str, m: int, k: int, n: int) -> None:
    rng = np.random.default_rng(m * 7 + k * 3 + n)
    a, b = _rand(rng, (m, k)), _rand(rng, (k, n), 1e3)
    if m > 3:
        a[3] = 0.0  # a zero row: scale 0, zeros out
    if n > 2:
        b[:, 2] = 0.0
    got = trueno.matmul(a, b, precision="int8")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, int8_reference(a, b))


def test_int8_error_against_raw_f32(backend: str) -> None:
    rng = np.random.default_rng(11)
    m, k, n = 29, 300, 45
    a, b = _rand(rng, (m, k)), _rand(rng, (k, n), 0.01)
    got = trueno.matmul(a, b, precision="int8").astype(np.float64)
    _, sa = quantise(a, axis=1)
    _, sb = quantise(b, axis=0)
    ea, eb = sa.astype(np.float64) / 2, sb.astype(np.float64) / 2
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    bound = ea * np.abs(b64).sum(axis=0) + eb * np.abs(a64).sum(axis=1, keepdims=True)
    bound = bound + k * ea * eb + 3 * U32 * np.abs(got)
    assert np.all(np.abs(got - a64 @ b64) <= bound)


def test_huge_and_tiny_values(backend: str) -> None:
    a = np.array([[3e38, -3e38, 1e-30], [1.0, 2.0, 3.0]], dtype=np.float32)
    b = np.array([[1e-38], [1e-38], [1.0]], dtype=np.float32)
    np.testing.assert_array_equal(trueno.matmul(a, b, precision="int8"), int8_reference(a, b))
    got = trueno.matmul(a, b, precision="bf16")
    ar, br = bf16_round(a).astype(np.float64), bf16_round(b).astype(np.float64)
    np.testing.assert_allclose(got, ar @ br, rtol=3 * U32 * 3, atol=1e-37)


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_empty_and_zero_depth_follow_numpy(precision: str) -> None:
    for m, k, n in [(0, 4, 3), (2, 4, 0), (2, 0, 3), (0, 0, 0)]:
        a, b = np.ones((m, k), np.float32), np.ones((k, n), np.float32)
        got = trueno.matmul(a, b, precision=precision)
        np.testing.assert_array_equal(got, a @ b)
        assert got.shape == (m, n)


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_layouts_out_and_threads(precision: str) -> None:
    rng = np.random.default_rng(3)
    a, b = _rand(rng, (50, 40)), _rand(rng, (40, 37))
    want = trueno.matmul(a, b, precision=precision)
    # Transposed / strided operands are the same matrices.
    got = trueno.matmul(np.asfortranarray(a), b[:, :].T.copy().T, precision=precision)
    np.testing.assert_array_equal(got, want)
    # Threads split rows: the same numbers.
    np.testing.assert_array_equal(trueno.matmul(a, b, threads=3, precision=precision), want)
    out = np.full((50, 37), np.nan, np.float32)
    res = trueno.matmul(a, b, out=out, precision=precision)
    assert res is out
    np.testing.assert_array_equal(out, want)
    # out= that is also an operand: computed from copies, like NumPy.
    sq = _rand(rng, (33, 33))
    expect = trueno.matmul(sq, sq, precision=precision)
    trueno.matmul(sq, sq, out=sq, precision=precision)
    np.testing.assert_array_equal(sq, expect)


def test_bad_input_is_a_clear_error() -> None:
    a = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"'BF16'|\"BF16\""):
        trueno.matmul(a, a.T, precision="BF16")
    with pytest.raises(TypeError):
        trueno.matmul(a, a.T, precision=None)  # ty: ignore[invalid-argument-type]
    with pytest.raises(TypeError, match=r"float32 operands.*float64"):
        trueno.matmul(a.astype(np.float64), a.T.astype(np.float64), precision="bf16")
    with pytest.raises(TypeError, match="float32 operands"):
        trueno.matmul(a, a.T.astype(np.float64), precision="int8")
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 3\)"):
        trueno.matmul(a, a, precision="bf16")
    with pytest.raises(ValueError, match="out has shape"):
        trueno.matmul(a, a.T, out=np.empty((3, 3), np.float32), precision="int8")
    bad = a.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"a\[1, 2\] = NaN"):
        trueno.matmul(bad, a.T, precision="int8")
    b = np.ones((3, 2), np.float32)
    b[2, 1] = -np.inf
    with pytest.raises(ValueError, match=r"b\[2, 1\] = -inf"):
        trueno.matmul(a, b, precision="int8")
    deep = np.ones((1, 133_144), np.float32)
    with pytest.raises(ValueError, match="133143"):
        trueno.matmul(deep, deep.T, precision="int8")
    with pytest.raises(ValueError, match="threads"):
        trueno.matmul(a, a.T, threads=0, precision="bf16")


def _cpuinfo_flags() -> set[str]:
    """The CPU's flags as Linux lists them (independent of trueno's cpuid code)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def test_the_path_is_reported_and_follows_the_backend() -> None:
    info = trueno.machine(probe=False)
    features = set(info["cpu"]["features"])
    flags = _cpuinfo_flags()
    paths = info["lowp"]
    before, amx_before = trueno.backend(), trueno._set_amx(True)
    try:
        if trueno.backend() == "avx512":
            for precision, avx512, amx in (
                ("bf16", "avx512_bf16", "amx_bf16"),
                ("int8", "avx512_vnni", "amx_int8"),
            ):
                simd = avx512 if avx512 in features else "reference"
                widest = amx if {"amx_tile", amx} <= flags else simd
                assert trueno.machine(probe=False)["lowp"][precision] == widest
                assert paths[precision] == (widest if amx_before else simd)
                # AMX forbidden: the AVX-512 kernel; the AMX peak is only reported for AMX.
                trueno._set_amx(False)
                assert trueno.machine(probe=False)["lowp"][precision] == simd
                assert trueno._lowp_peak(precision) is None
                trueno._set_amx(True)
                peak = trueno._lowp_peak(precision)
                if widest == amx:
                    # More than the AVX-512 FMA-chain peak x 4 (bf16) / 8 (int8) lanes.
                    fma = max(p["f32_flops"] for p in trueno.machine()["probe"]["peaks"])
                    assert peak is not None
                    assert peak > fma * (4 if precision == "bf16" else 8)
                else:
                    assert peak is None
        trueno.set_backend("scalar")
        assert trueno.machine(probe=False)["lowp"] == {"bf16": "reference", "int8": "reference"}
    finally:
        trueno.set_backend(before)
        trueno._set_amx(amx_before)
    with pytest.raises(TypeError):
        trueno._set_amx("off")  # ty: ignore[invalid-argument-type]


def test_amx_and_avx512_kernels_agree() -> None:
    """int8 bit for bit, bf16 each within its bound of the rounded inputs' product, over
    sizes past the AMX blocks (32 rows x 32 columns x 32 bf16 / 64 int8 of depth)."""
    rng = np.random.default_rng(9)
    before = trueno._set_amx(True)
    try:
        for m, k, n in ((33, 100, 31), (64, 1031, 17), (1, 65, 1000), (100, 64, 64)):
            a, b = _rand(rng, (m, k)), _rand(rng, (k, n), 10.0)
            results = {}
            for allowed in (True, False):
                trueno._set_amx(allowed)
                results[allowed] = {
                    p: trueno.matmul(a, b, precision=p, threads=2) for p in ("bf16", "int8")
                }
            np.testing.assert_array_equal(results[True]["int8"], results[False]["int8"])
            np.testing.assert_array_equal(results[True]["int8"], int8_reference(a, b))
            ar, br = bf16_round(a).astype(np.float64), bf16_round(b).astype(np.float64)
            exact, s = ar @ br, np.abs(ar) @ np.abs(br)
            for allowed in (True, False):
                err = np.abs(results[allowed]["bf16"] - exact)
                assert np.all(err <= k * U32 * s + 1e-30), (allowed, m, k, n)
    finally:
        trueno._set_amx(before)


def test_trueno_amx_environment_variable() -> None:
    """TRUENO_AMX=off keeps matmul on the AVX-512 kernels; a bad value is a clear error."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    script = (
        "import numpy as np, trueno\n"
        "print(trueno.machine(probe=False)['lowp']['bf16'])\n"
        "trueno.matmul(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), "
        "precision='bf16')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRUENO_BACKEND"}
    off = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "TRUENO_AMX": "off"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert not off.stdout.strip().startswith("amx"), off.stdout
    bad = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "TRUENO_AMX": "sometimes"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0
    assert "TRUENO_AMX" in bad.stderr, bad.stderr
    assert "sometimes" in bad.stderr, bad.stderr


def test_large_products_release_the_gil() -> None:
    """A Python thread keeps running while a product of some 10-20 ms executes."""
    rng = np.random.default_rng(1)
    a = _rand(rng, (768, 768))
    for precision in ("bf16", "int8"):
        inside = ticks_during(lambda p=precision: trueno.matmul(a, a, precision=p))
        assert inside > 100, (precision, inside)
