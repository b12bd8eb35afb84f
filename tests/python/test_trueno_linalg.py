"""trueno.matmul and trueno.gemv against NumPy: values, layouts, dtypes, errors.

The Rust crate checks its kernels against an f64 triple loop; these tests check the
binding: that every layout NumPy can hand over reaches the kernel as the right matrix,
that the result has NumPy's shape and dtype, and that misuse fails loudly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trueno
from gil_probe import ticks_during

DTYPES = [np.float32, np.float64]


EPS: dict[type, float] = {
    np.float32: float(np.finfo(np.float32).eps),
    np.float64: float(np.finfo(np.float64).eps),
}


def _close(got: np.ndarray, want: np.ndarray, dtype: type, k: int) -> None:
    """Within the rounding error of length-k dot products of values in [-1, 1)."""
    eps = EPS[dtype]
    np.testing.assert_allclose(got, want, rtol=8 * eps * max(k, 1) ** 0.5, atol=8 * eps * max(k, 1))


def _rand(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return (rng.random(shape) * 2 - 1).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("m", "k", "n"),
    [(1, 1, 1), (17, 31, 7), (7, 17, 31), (13, 257, 33), (64, 64, 64), (100, 3, 129), (1, 500, 1)],
)
def test_matmul_matches_numpy(dtype: type, m: int, k: int, n: int) -> None:
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a, b = _rand(rng, (m, k), dtype), _rand(rng, (k, n), dtype)
    got = trueno.matmul(a, b)
    assert got.dtype == dtype
    assert got.shape == (m, n)
    _close(got, a.astype(np.float64) @ b.astype(np.float64), dtype, k)


@given(
    m=st.integers(0, 40),
    k=st.integers(0, 300),
    n=st.integers(0, 70),
    threads=st.integers(1, 4),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=60, deadline=None)
def test_matmul_property(*, m: int, k: int, n: int, threads: int, dtype: type, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = _rand(rng, (m, k), dtype), _rand(rng, (k, n), dtype)
    got = trueno.matmul(a, b, threads=threads)
    want = a @ b
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    _close(got, want, dtype, k)


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_layouts_are_copied_correctly(dtype: type) -> None:
    rng = np.random.default_rng(7)
    base = _rand(rng, (40, 60), dtype)
    a_t = base[:30, :20].T  # (20, 30), a strided transpose view
    b_f = np.asfortranarray(_rand(rng, (30, 9), dtype))  # memory order is the transpose
    b_step = _rand(rng, (60, 18), dtype)[::2, ::2]  # (30, 9) with steps
    for b in (b_f, b_step):
        _close(trueno.matmul(a_t, b), a_t @ b, dtype, 30)
    # The inputs are untouched.
    np.testing.assert_array_equal(base[:30, :20].T, a_t)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_is_written_and_returned(dtype: type) -> None:
    rng = np.random.default_rng(3)
    a, b = _rand(rng, (5, 6), dtype), _rand(rng, (6, 7), dtype)
    out = np.full((5, 7), np.nan, dtype=dtype)
    res = trueno.matmul(a, b, out=out)
    assert res is out
    _close(out, a @ b, dtype, 6)


def test_threads_give_the_same_answer() -> None:
    rng = np.random.default_rng(11)
    a, b = _rand(rng, (301, 257), np.float32), _rand(rng, (257, 129), np.float32)
    one = trueno.matmul(a, b, threads=1)
    for t in (2, 3, 8):
        # Each output element is computed by exactly one thread in the same order.
        np.testing.assert_array_equal(trueno.matmul(a, b, threads=t), one)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "k", "n"), [(0, 3, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0)])
def test_empty_like_numpy(dtype: type, m: int, k: int, n: int) -> None:
    a, b = np.ones((m, k), dtype), np.ones((k, n), dtype)
    got = trueno.matmul(a, b)
    want = a @ b
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # k == 0 gives zeros, not garbage


def test_special_values_propagate() -> None:
    a = np.ones((3, 4), np.float32)
    a[1, 2] = np.nan
    a[2, 0] = np.inf
    b = np.ones((4, 5), np.float32)
    got = trueno.matmul(a, b)
    with np.errstate(invalid="ignore"):  # NumPy flags the NaN it propagates
        want = a @ b
    np.testing.assert_array_equal(got, want)


def test_wrong_dtype_is_a_type_error_naming_it() -> None:
    ints = np.ones((2, 2), np.int64)
    # The stubs reject these arguments; the runtime must reject them too.
    loose: Any = trueno
    with pytest.raises(TypeError, match="int64"):
        loose.matmul(ints, ints)
    with pytest.raises(TypeError, match="float16"):
        loose.gemv(np.ones((2, 2), np.float16), np.ones(2, np.float16))
    with pytest.raises(TypeError, match=r"float32.*float64"):
        loose.matmul(np.ones((2, 2), np.float32), np.ones((2, 2), np.float64))
    with pytest.raises(TypeError, match="list"):
        loose.matmul([[1.0]], np.ones((1, 1), np.float32))
    with pytest.raises(TypeError, match="float64"):
        loose.matmul(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), out=np.ones((2, 2)))


def test_shape_mismatch_is_a_value_error_naming_both_shapes() -> None:
    a, b = np.ones((3, 4), np.float32), np.ones((5, 6), np.float32)
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5, 6\)"):
        trueno.matmul(a, b)
    with pytest.raises(ValueError, match="2-D"):
        trueno.matmul(np.ones(3, np.float32), b)
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5,\)"):
        trueno.gemv(a, np.ones(5, np.float32))
    with pytest.raises(ValueError, match=r"out has shape \(4, 3\)"):
        trueno.matmul(a, np.ones((4, 3), np.float32), out=np.empty((4, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        trueno.matmul(a, np.ones((4, 3), np.float32), out=np.empty((3, 3), np.float32, order="F"))
    with pytest.raises(ValueError, match="threads"):
        trueno.matmul(a, np.ones((4, 3), np.float32), threads=0)


def test_out_aliasing_an_input_is_computed_from_copies_like_numpy() -> None:
    # One out= rule across the bindings (as the element-wise kernels): an out that is
    # also an operand gives what NumPy's np.matmul(a, b, out=a) gives.
    rng = np.random.default_rng(5)
    for dtype in DTYPES:
        a = rng.standard_normal((37, 37)).astype(dtype)
        b = rng.standard_normal((37, 37)).astype(dtype)
        want_sq = a @ a
        want_ab = a @ b
        x = a.copy()
        trueno.matmul(x, x, out=x)
        np.testing.assert_allclose(x, want_sq, rtol=1e-4, atol=1e-4)
        y = a.copy()
        trueno.matmul(y, b, out=y, threads=2)
        np.testing.assert_allclose(y, want_ab, rtol=1e-4, atol=1e-4)
    ro = np.eye(4, dtype=np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        trueno.matmul(np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32), out=ro)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("m", "n"), [(0, 5), (5, 0), (1, 1), (4, 16), (5, 17), (37, 384), (9, 100)]
)
def test_gemv_matches_numpy(dtype: type, m: int, n: int) -> None:
    rng = np.random.default_rng(m + 31 * n)
    a, x = _rand(rng, (m, n), dtype), _rand(rng, (n,), dtype)
    got = trueno.gemv(a, x)
    assert got.shape == (m,)
    assert got.dtype == dtype
    _close(got, a.astype(np.float64) @ x.astype(np.float64), dtype, n)


def test_gemv_strided_inputs() -> None:
    rng = np.random.default_rng(5)
    a = _rand(rng, (20, 30), np.float32).T  # (30, 20) transposed view
    x = _rand(rng, (40,), np.float32)[::2]  # (20,) with a step
    _close(trueno.gemv(a, x), a @ x, np.float32, 20)


@given(
    m=st.integers(0, 50),
    n=st.integers(0, 200),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=60, deadline=None)
def test_gemv_property(*, m: int, n: int, dtype: type, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, x = _rand(rng, (m, n), dtype), _rand(rng, (n,), dtype)
    _close(trueno.gemv(a, x), a @ x, dtype, n)


def test_matmul_releases_the_gil() -> None:
    """A Python thread keeps running while a ~20 ms product executes."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((768, 768), dtype=np.float32)
    m = rng.standard_normal((20_000, 384), dtype=np.float32)
    x = rng.standard_normal(384, dtype=np.float32)
    inside = ticks_during(lambda: (trueno.matmul(a, a), trueno.gemv(m, x)))
    # Holding the GIL, the spinner could not append a single tick inside a window.
    assert inside > 100, inside
