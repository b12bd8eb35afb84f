"""trueno element-wise kernels and reductions against NumPy, on every backend.

Sizes are drawn around the SIMD widths (8 and 16 lanes, 4-vector unrolls, the
4096-element sum blocks) so every tail length is exercised; values include
NaN, +-inf, huge and subnormal numbers. Arithmetic must match NumPy bit for bit;
the transcendental kernels must stay within their documented error of an f64
reference; reductions within a few ulp-scaled bounds of the f64 sum.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import trueno

BACKENDS = trueno.backends()
EPS: dict[type, float] = {np.float32: 2.0**-23, np.float64: 2.0**-52}
BIG: dict[type, float] = {
    np.float32: float(np.finfo(np.float32).max),
    np.float64: float(np.finfo(np.float64).max),
}
EDGE_SIZES = [0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 255, 257, 4095, 4096, 4097]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test once per backend this CPU supports, then restore."""
    before = trueno.backend()
    trueno.set_backend(request.param)
    yield request.param
    trueno.set_backend(before)


def sizes() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(EDGE_SIZES), st.integers(0, 300))


def finite(dtype: type, bound: float = 1e3) -> st.SearchStrategy[float]:
    width = 32 if dtype == np.float32 else 64
    return st.floats(-bound, bound, width=width, allow_subnormal=True)


def special(dtype: type) -> st.SearchStrategy[float]:
    width = 32 if dtype == np.float32 else 64
    big = BIG[dtype]
    return st.one_of(
        st.floats(width=width, allow_nan=True, allow_infinity=True),
        st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, big, -big, 1e-40, -1e-40]),
    )


def arrays(dtype: type, n: int, elements: st.SearchStrategy[float]) -> st.SearchStrategy:
    return hnp.arrays(dtype, n, elements=elements)


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # NaN == NaN here


# -- element-wise arithmetic: bit-identical to NumPy --------------------------------------


@pytest.mark.usefixtures("backend")
@given(data=st.data(), n=sizes(), dtype=st.sampled_from([np.float32, np.float64]))
@settings(max_examples=40, deadline=None)
def test_arithmetic_is_exact(data: st.DataObject, n: int, dtype: type) -> None:
    a = data.draw(arrays(dtype, n, special(dtype)))
    b = data.draw(arrays(dtype, n, special(dtype)))
    with np.errstate(all="ignore"):
        for ours, theirs in [
            (trueno.add, np.add),
            (trueno.sub, np.subtract),
            (trueno.mul, np.multiply),
            (trueno.div, np.divide),
        ]:
            assert_same(ours(a, b), theirs(a, b))
            out = np.full_like(a, 7.0)
            assert ours(a, b, out=out) is out
            assert_same(out, theirs(a, b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_arithmetic_on_2d_noncontiguous_and_aliased(dtype: type) -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((37, 41)).astype(dtype)
    b = rng.standard_normal((41, 37)).astype(dtype)
    # Transposed (Fortran-order) and strided inputs are copied, never misread.
    assert_same(trueno.add(a, b.T), a + b.T)
    assert_same(trueno.mul(a[:, ::3], b.T[:, ::3]), a[:, ::3] * b.T[:, ::3])
    # out= partially overlapping an input: as if the inputs were copied first.
    x = np.arange(100, dtype=dtype)
    want = x[1:] + x[:-1]
    trueno.add(x[1:], x[:-1], out=x[:-1])
    assert_same(x[:-1], want)
    # out= aliasing an input, as np.add(a, b, out=a).
    want = a - b.T
    c = a.copy()
    trueno.sub(c, np.ascontiguousarray(b.T), out=c)
    assert_same(c, want)


def test_fma_scale_axpy() -> None:
    rng = np.random.default_rng(1)
    for n in EDGE_SIZES:
        a, b, c = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
        exact = a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)
        np.testing.assert_allclose(trueno.fma(a, b, c), exact, rtol=1e-6, atol=1e-6)
        assert_same(trueno.scale(a, 2.5), (np.float32(2.5) * a).astype(np.float32))
        y = c.copy()
        assert trueno.axpy(0.5, a, y) is None
        np.testing.assert_allclose(y, 0.5 * a.astype(np.float64) + c, rtol=1e-6, atol=1e-6)


# -- transcendental maps: documented error vs an f64 reference ----------------------------


def ulps(got: np.ndarray, want64: np.ndarray) -> np.ndarray:
    """|got - want| in units of the float32 spacing at the reference value."""
    ref32 = want64.astype(np.float32)
    spacing = np.spacing(np.abs(ref32)).astype(np.float64)
    with np.errstate(invalid="ignore"):
        d = np.abs(got.astype(np.float64) - want64) / spacing
    both_same = (got == ref32) | (np.isnan(got) & np.isnan(ref32))
    return np.where(both_same, 0.0, d)


@pytest.mark.usefixtures("backend")
def test_exp_and_log_within_2_ulp() -> None:
    x = np.concatenate(
        [
            np.linspace(-103.9, 88.7, 300_001, dtype=np.float32),
            np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -200.0, 200.0], np.float32),
        ]
    )
    with np.errstate(all="ignore"):
        assert ulps(trueno.exp(x), np.exp(x.astype(np.float64))).max() <= 2
        pos = np.abs(x) + np.float32(0)
        pos = np.concatenate([pos, np.geomspace(1e-45, 3e38, 100_000).astype(np.float32)])
        assert ulps(trueno.log(pos), np.log(pos.astype(np.float64))).max() <= 2
        neg = np.array([-1.0, -np.inf, 0.0, -0.0], np.float32)
        np.testing.assert_array_equal(trueno.log(neg), np.log(neg))


def _gelu_erf_ref(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erfc, otypes=[np.float64])
    return 0.5 * x * erf(-x / math.sqrt(2.0))


def _gelu_tanh_ref(x: np.ndarray) -> np.ndarray:
    k = math.sqrt(2.0 / math.pi)
    return 0.5 * x * (1.0 + np.tanh(k * (x + 0.044715 * x**3)))


@pytest.mark.usefixtures("backend")
@given(data=st.data(), n=sizes())
@settings(max_examples=30, deadline=None)
def test_activations_match_reference(data: st.DataObject, n: int) -> None:
    x = data.draw(arrays(np.float32, n, st.floats(-30, 30, width=32)))
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(trueno.tanh(x), np.tanh(x64), rtol=5e-7, atol=1e-7)
        np.testing.assert_allclose(trueno.sigmoid(x), 1 / (1 + np.exp(-x64)), rtol=5e-7, atol=1e-7)
        np.testing.assert_allclose(trueno.gelu(x), _gelu_tanh_ref(x64), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(
            trueno.gelu(x, approximate="none"), _gelu_erf_ref(x64), rtol=1e-6, atol=1e-7
        )
        assert_same(trueno.relu(x), np.maximum(x, np.float32(0)))


def test_activation_specials() -> None:
    x = np.array([np.nan, np.inf, -np.inf, 0.0, 100.0, -100.0], np.float32)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(trueno.relu(x), np.maximum(x, 0))
        np.testing.assert_array_equal(trueno.tanh(x), np.tanh(x))
        want = (1 / (1 + np.exp(-x.astype(np.float64)))).astype(np.float32)
        np.testing.assert_array_equal(trueno.sigmoid(x), want)  # incl. subnormal e^-100
        g = trueno.gelu(x, approximate="none")
        assert np.isnan(g[0])
        assert g[1] == np.inf
        assert g[4] == 100.0
        assert g[5] == 0.0
    loose: Any = trueno  # the stubs reject this value; the runtime must too
    with pytest.raises(ValueError, match="approximate"):
        loose.gelu(x, approximate="fast")


# -- reductions ---------------------------------------------------------------------------


# f32 lanes per backend, for the summation bound trueno's reduce module documents.
LANES = {"scalar": 1, "neon": 4, "avx2": 8, "avx512": 16}
BLOCK = 4096  # trueno::reduce::BLOCK


def sum_bound(dtype: type) -> float:
    """Relative error bound (in eps) of sum/dot: reduce.rs's (BLOCK/(8 L) + 7 + log2 L)."""
    if dtype != np.float32:
        return 64
    lanes = LANES[trueno.backend()]
    return max(64, BLOCK / (8 * lanes) + 7 + math.log2(lanes))


@pytest.mark.usefixtures("backend")
@given(data=st.data(), n=sizes(), dtype=st.sampled_from([np.float32, np.float64]))
@settings(max_examples=40, deadline=None)
def test_reductions_match_numpy(data: st.DataObject, n: int, dtype: type) -> None:
    x = data.draw(arrays(dtype, n, finite(dtype)))
    y = data.draw(arrays(dtype, n, finite(dtype)))
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    eps = EPS[dtype]
    bound = sum_bound(dtype)
    scale = float(np.abs(x64).sum()) + 1e-30
    assert abs(trueno.sum(x) - x64.sum()) <= bound * eps * scale
    dscale = float(np.abs(x64 * y64).sum()) + 1e-30
    assert abs(trueno.dot(x, y) - x64 @ y64) <= bound * eps * dscale
    # Lane sums see n/16 terms each (f64 input; float32 is squared in f64).
    assert trueno.norm(x) == pytest.approx(math.sqrt(x64 @ x64), rel=(n / 16 + 4) * eps, abs=1e-30)
    if n == 0:
        assert math.isnan(trueno.mean(x))
        for f in (trueno.min, trueno.max, trueno.argmin, trueno.argmax):
            with pytest.raises(ValueError, match=r"empty|zero-size"):
                f(x)
        return
    assert trueno.min(x) == np.min(x)
    assert trueno.max(x) == np.max(x)
    assert trueno.argmin(x) == np.argmin(x)
    assert trueno.argmax(x) == np.argmax(x)
    assert abs(trueno.mean(x) - x64.mean()) <= 64 * eps * scale / n
    for ddof in (0, 1):
        if n > ddof:
            want = x64.var(ddof=ddof)
            assert trueno.var(x, ddof=ddof) == pytest.approx(want, rel=1e-4, abs=1e-6)
            assert trueno.std(x, ddof=ddof) == pytest.approx(math.sqrt(want), rel=1e-4, abs=1e-4)


@pytest.mark.usefixtures("backend")
@given(data=st.data(), n=st.integers(1, 300), dtype=st.sampled_from([np.float32, np.float64]))
@settings(max_examples=40, deadline=None)
def test_reduction_specials_follow_numpy(data: st.DataObject, n: int, dtype: type) -> None:
    x = data.draw(arrays(dtype, n, special(dtype)))
    with np.errstate(all="ignore"):
        for ours, theirs in [
            (trueno.min, np.min),
            (trueno.max, np.max),
            (trueno.argmin, np.argmin),
            (trueno.argmax, np.argmax),
        ]:
            got, want = ours(x), theirs(x)
            assert got == want or (math.isnan(got) and math.isnan(want)), (ours, x)
        if np.isnan(x).any() or (np.isinf(x).any() and np.isinf(x).sum() > 1):
            # NaN propagates; inf - inf may give NaN: check only NaN-ness where NumPy is NaN.
            if np.isnan(x).any():
                assert math.isnan(trueno.sum(x))
                assert math.isnan(trueno.mean(x))
                assert math.isnan(trueno.norm(x))
        else:
            s = trueno.sum(x)
            want = float(x.astype(np.float64).sum())
            fin = x[np.isfinite(x)]
            no_overflow = fin.size == 0 or float(np.abs(fin).max()) < 1e30
            if math.isinf(want) and no_overflow:
                # With huge finite terms the f32 result depends on the order.
                assert s == want


def test_sum_beats_a_naive_float32_loop() -> None:
    x = np.full(10_000_000, 0.1, np.float32)
    exact = float(x.astype(np.float64).sum())
    assert abs(trueno.sum(x) - exact) / exact < 1e-6
    assert trueno.norm(np.array([3e30, 4e30], np.float32)) == pytest.approx(5e30, rel=1e-7)


def test_reductions_accept_any_shape_and_layout() -> None:
    rng = np.random.default_rng(2)
    a = rng.standard_normal((30, 70)).astype(np.float32)
    for v in (a, a.T, a[::2, 5:], a.reshape(7, 300)):
        assert trueno.argmax(v) == np.argmax(v)
        assert trueno.argmin(v) == np.argmin(v)
        assert trueno.sum(v) == pytest.approx(float(v.astype(np.float64).sum()), abs=1e-3)


# -- bad input ----------------------------------------------------------------------------


def test_wrong_dtype_is_a_type_error_naming_it() -> None:
    a = np.ones(4, np.float32)
    loose: Any = trueno  # the stubs reject these arguments; the runtime must too
    with pytest.raises(TypeError, match="int64"):
        loose.add(a, np.ones(4, np.int64))
    with pytest.raises(TypeError, match="float16"):
        loose.sum(np.ones(4, np.float16))
    with pytest.raises(TypeError, match="list"):
        loose.dot([1.0, 2.0], a)
    with pytest.raises(TypeError, match=r"float32 but b is float64"):
        loose.add(a, np.ones(4))
    with pytest.raises(TypeError, match="int32"):
        loose.exp(np.ones(4, np.int32))
    with pytest.raises(TypeError, match="float64"):
        loose.exp(a, out=np.ones(4))
    with pytest.raises(TypeError, match="float64"):
        loose.add(a, a, out=np.ones(4))


def test_shape_mismatch_is_a_value_error_naming_both_shapes() -> None:
    a = np.ones(4, np.float32)
    with pytest.raises(ValueError, match=r"\(4,\).*\(5,\)"):
        trueno.add(a, np.ones(5, np.float32))
    with pytest.raises(ValueError, match=r"\(4,\).*\(2, 2\)"):
        trueno.mul(a, np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"\(4,\).*\(3,\)"):
        trueno.dot(a, np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"out has shape \(5,\)"):
        trueno.exp(a, out=np.ones(5, np.float32))
    with pytest.raises(ValueError, match="ddof"):
        trueno.var(a, ddof=-1)


def test_readonly_out_is_refused() -> None:
    a = np.ones(4, np.float32)
    ro = np.zeros(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        trueno.add(a, a, out=ro)


def test_var_of_too_few_elements_is_like_numpy() -> None:
    with np.errstate(all="ignore"):
        assert math.isnan(trueno.var(np.ones(1, np.float32), ddof=1))
        assert math.isnan(trueno.var(np.ones(0, np.float32)))
        assert trueno.var(np.array([1, 2], np.float32), ddof=2) == np.inf
