"""``out=`` that shares memory with an input: one rule for every trueno kernel.

The rule (``trueno`` module docs, ``_trueno.pyi``, ``crates/trueno-py/src/convert.rs``):
as NumPy's, the result is what the call gives when the inputs are copied first, whether
``out`` *is* an input (``add(a, b, out=a)``), a view of one with an offset
(``add(x[1:], x[:-1], out=x[:-1])``), or a second array over the same buffer. Nothing is
refused for overlapping; ``out`` is refused (ValueError) only when it is not writeable or
not C-contiguous, and (TypeError / ValueError) for the wrong dtype or shape.

Each case runs a kernel on aliased arrays inside one buffer and checks the whole buffer
afterwards against NumPy's own aliased call where NumPy has one (ufuncs, matmul), else
against a NumPy reference computed from copies, and bit for bit against trueno on copies
(so a kernel that read an element after writing over it cannot pass by tolerance). Sizes
cover both binding paths: below 32768 elements (GIL held, address-checked views) and
above (tracked borrows, GIL released), odd lengths included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest

trueno = pytest.importorskip("trueno")

# 1000: the short path; 40_001: past DETACH_MIN (1 << 15) and odd.
SIZES = [1000, 40_001]
DTYPES = [np.float32, np.float64]

Fn = Callable[..., Any]
DType = type[np.floating[Any]]


def _buffer(n: int, dtype: DType, seed: int, lo: float = -3.0, hi: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(lo, hi, n).astype(dtype)


def _other_base(a: np.ndarray) -> np.ndarray:
    """A second ndarray over ``a``'s memory whose ``base`` chain does not reach ``a``
    (as two arrays wrapping one foreign buffer): only an address check sees the overlap."""

    class Foreign:
        __array_interface__: ClassVar[dict[str, object]] = {
            "data": (a.ctypes.data, False),
            "shape": a.shape,
            "typestr": a.dtype.str,
            "version": 3,
        }

    view = np.asarray(Foreign())
    assert view.base is not a
    assert np.shares_memory(view, a)
    return view


def _one_input_layouts(n: int) -> list[tuple[slice, slice]]:
    """(input, out) index ranges along a buffer of n + 1: out is the input, starts one
    element (or row) after it, or one before it."""
    return [
        (slice(0, n), slice(0, n)),
        (slice(0, n), slice(1, n + 1)),
        (slice(1, n + 1), slice(0, n)),
    ]


def _check(
    buf: np.ndarray,
    run_trueno: Callable[[np.ndarray], object],
    run_numpy: Callable[[np.ndarray], object],
    rtol: float,
    atol: float = 0.0,
) -> None:
    """Run both on copies of ``buf`` (each writes its aliased result into its copy); the
    trueno buffer must match NumPy's within tolerance."""
    got, want = buf.copy(), buf.copy()
    run_trueno(got)
    run_numpy(want)
    if rtol == 0 and atol == 0:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# -- element-wise: add/sub/mul/div, fma, scale, axpy -------------------------------------

BINARY = [
    ("add", trueno.add, np.add),
    ("sub", trueno.sub, np.subtract),
    ("mul", trueno.mul, np.multiply),
    ("div", trueno.div, np.divide),
]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "ours", "theirs"), BINARY, ids=[b[0] for b in BINARY])
def test_binary_out_aliasing_matches_numpy(
    n: int, dtype: DType, name: str, ours: Fn, theirs: Fn
) -> None:
    # IEEE +, -, *, / are exact: trueno must equal NumPy bit for bit, aliased or not.
    buf = _buffer(2 * n + 1, dtype, 1, lo=0.5, hi=3.0)  # no division by ~0
    a_, b_ = slice(0, n), slice(n, 2 * n)
    # (a, b, out): out is a, is b, is both; starts one element after a (a kernel
    # streaming forward would read what it just wrote) or before it; straddles a and b.
    layouts = {
        "out=a": (a_, b_, a_),
        "out=b": (a_, b_, b_),
        "out=a=b": (a_, a_, a_),
        "out=a shifted +1": (a_, b_, slice(1, n + 1)),
        "out=a shifted -1": (slice(1, n + 1), slice(n + 1, 2 * n + 1), a_),
        "out over a and b": (a_, b_, slice(n // 2, n // 2 + n)),
    }
    for layout, (sa, sb, so) in layouts.items():
        try:
            _check(
                buf,
                lambda x, sa=sa, sb=sb, so=so: ours(x[sa], x[sb], out=x[so]),
                lambda x, sa=sa, sb=sb, so=so: theirs(x[sa], x[sb], out=x[so]),
                0,
            )
        except AssertionError as e:
            raise AssertionError(f"{name} {layout}: {e}") from e


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_out_over_the_same_memory_from_another_base(n: int, dtype: DType) -> None:
    buf = _buffer(2 * n + 1, dtype, 2, lo=0.5, hi=3.0)
    want = buf.copy()
    np.add(want[:n], want[n : 2 * n], out=want[1 : n + 1])
    got = buf.copy()
    alias = _other_base(got)
    trueno.add(got[:n], got[n : 2 * n], out=alias[1 : n + 1])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_fma_out_aliasing(n: int, dtype: DType) -> None:
    buf = _buffer(3 * n + 2, dtype, 3)
    tol = 4 * float(np.finfo(dtype).eps)  # NumPy's a * b + c rounds twice, fma once
    parts = (slice(0, n), slice(n, 2 * n), slice(2 * n, 3 * n))
    for out in [*parts, slice(1, n + 1), slice(2 * n + 2, 3 * n + 2), slice(n // 2, n // 2 + n)]:

        def ours(x: np.ndarray, out: slice = out) -> None:
            trueno.fma(*(x[p] for p in parts), out=x[out])

        def theirs(x: np.ndarray, out: slice = out) -> None:
            a, b, c = (x[p].copy() for p in parts)
            x[out] = a * b + c

        _check(buf, ours, theirs, rtol=tol, atol=tol)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_scale_and_axpy_aliasing(n: int, dtype: DType) -> None:
    buf = _buffer(n + 1, dtype, 4)
    alpha = 0.75  # exact in both dtypes: alpha * x is one rounding on either side
    for src, dst in _one_input_layouts(n):
        _check(
            buf,
            lambda x, s=src, d=dst: trueno.scale(x[s], alpha, out=x[d]),
            lambda x, s=src, d=dst: np.multiply(dtype(alpha), x[s], out=x[d]),
            0,
        )
        # axpy writes y += alpha * x; NumPy: y += alpha * x, the product a temporary.
        _check(
            buf,
            lambda x, s=src, d=dst: trueno.axpy(alpha, x[s], x[d]),
            lambda x, s=src, d=dst: np.add(x[d], dtype(alpha) * x[s], out=x[d]),
            rtol=2 * float(np.finfo(dtype).eps),
            atol=4 * float(np.finfo(dtype).eps),
        )


# -- element-wise maps (activations) -------------------------------------------------------


def _np_gelu_tanh(x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    return 0.5 * x64 * (1 + np.tanh(np.sqrt(2 / np.pi) * (x64 + 0.044715 * x64**3)))


MAPS = [
    ("relu", trueno.relu, lambda x: np.maximum(x, 0)),
    ("sigmoid", trueno.sigmoid, lambda x: 1 / (1 + np.exp(-x.astype(np.float64)))),
    ("tanh", trueno.tanh, lambda x: np.tanh(x.astype(np.float64))),
    ("exp", trueno.exp, lambda x: np.exp(x.astype(np.float64))),
    ("log", trueno.log, lambda x: np.log(np.abs(x.astype(np.float64)))),
    ("gelu", trueno.gelu, _np_gelu_tanh),
]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "ours", "ref"), MAPS, ids=[m[0] for m in MAPS])
def test_map_out_aliasing(n: int, dtype: DType, name: str, ours: Fn, ref: Fn) -> None:
    buf = _buffer(n + 1, dtype, 5)
    if name == "log":
        buf = np.abs(buf) + dtype(0.1)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for src, dst in _one_input_layouts(n):

        def theirs(x: np.ndarray, s: slice = src, d: slice = dst) -> None:
            x[d] = ref(x[s].copy()).astype(dtype)

        _check(buf, lambda x, s=src, d=dst: ours(x[s], out=x[d]), theirs, rtol=tol, atol=tol)
        # Aliased or not, the same bits: the kernel saw the inputs as they were.
        fresh = buf.copy()
        expect = ours(fresh[src].copy())
        ours(fresh[src], out=fresh[dst])
        np.testing.assert_array_equal(fresh[dst], expect)


# -- row-wise: softmax, log_softmax, layer_norm, rms_norm -----------------------------------


def _np_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _np_layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _np_rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * w


# (rows, cols): 7 x 33 the short path, 311 x 129 = 40119 elements the long one.
ROWS = [(7, 33), (311, 129)]


@pytest.mark.parametrize("shape", ROWS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_out_aliasing(shape: tuple[int, int], dtype: DType, axis: int, log: bool) -> None:
    rows, cols = shape
    buf = _buffer((rows + 1) * cols, dtype, 6).reshape(rows + 1, cols) * 4
    ours = trueno.log_softmax if log else trueno.softmax
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for src, dst in _one_input_layouts(rows):

        def theirs(x: np.ndarray, s: slice = src, d: slice = dst) -> None:
            p = _np_softmax(x[s].astype(np.float64), axis)
            x[d] = (np.log(p) if log else p).astype(dtype)

        _check(
            buf,
            lambda x, s=src, d=dst: ours(x[s], axis=axis, out=x[d]),
            theirs,
            rtol=tol,
            atol=tol,
        )


@pytest.mark.parametrize("shape", ROWS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_norms_out_aliasing(shape: tuple[int, int], dtype: DType) -> None:
    rows, cols = shape
    # Rows 0..rows of x, then the weight and bias rows: out may also cover those.
    buf = _buffer((rows + 3) * cols, dtype, 7).reshape(rows + 3, cols)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    x_, w_, b_ = slice(0, rows), rows + 1, rows + 2
    for dst in [slice(0, rows), slice(1, rows + 1), slice(3, rows + 3)]:

        def ln(x: np.ndarray, d: slice = dst) -> None:
            trueno.layer_norm(x[x_], x[w_], x[b_], eps=1e-5, out=x[d])

        def ln_ref(x: np.ndarray, d: slice = dst) -> None:
            f = x.astype(np.float64)
            x[d] = _np_layer_norm(f[x_], f[w_], f[b_], 1e-5).astype(dtype)

        def rms(x: np.ndarray, d: slice = dst) -> None:
            trueno.rms_norm(x[x_], x[w_], eps=1e-6, out=x[d])

        def rms_ref(x: np.ndarray, d: slice = dst) -> None:
            f = x.astype(np.float64)
            x[d] = _np_rms_norm(f[x_], f[w_], 1e-6).astype(dtype)

        _check(buf, ln, ln_ref, rtol=tol, atol=tol)
        _check(buf, rms, rms_ref, rtol=tol, atol=tol)


# -- matmul ----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [33, 200])  # 200 x 200 = 40000: the long path
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_matmul_out_aliasing_matches_numpy(n: int, dtype: DType, threads: int) -> None:
    buf = _buffer((2 * n + 1) * n, dtype, 8, lo=-1, hi=1).reshape(2 * n + 1, n)
    tol = (1e-5 if dtype == np.float32 else 1e-13) * n
    a_, b_ = slice(0, n), slice(n, 2 * n)
    layouts = {
        "out=a": (a_, b_, a_),
        "out=b": (a_, b_, b_),
        "out=a=b": (a_, a_, a_),
        "out=a shifted one row": (slice(1, n + 1), b_, a_),
        "out over a and b": (a_, b_, slice(n // 2, n // 2 + n)),
    }
    for name, (sa, sb, so) in layouts.items():
        try:
            _check(
                buf,
                lambda x, sa=sa, sb=sb, so=so: trueno.matmul(
                    x[sa], x[sb], out=x[so], threads=threads
                ),
                lambda x, sa=sa, sb=sb, so=so: np.matmul(x[sa], x[sb], out=x[so]),
                rtol=tol,
                atol=tol,
            )
        except AssertionError as e:
            raise AssertionError(f"matmul {name}: {e}") from e
        # Bit for bit what trueno gives on copies.
        got = buf.copy()
        expect = trueno.matmul(got[sa].copy(), got[sb].copy(), threads=threads)
        trueno.matmul(got[sa], got[sb], out=got[so], threads=threads)
        np.testing.assert_array_equal(got[so], expect)


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_lowp_matmul_out_aliasing(precision: str) -> None:
    n = 200
    buf = _buffer((2 * n + 1) * n, np.float32, 9, lo=-1, hi=1).reshape(2 * n + 1, n)
    for sa, sb, so in [
        (slice(0, n), slice(n, 2 * n), slice(0, n)),
        (slice(1, n + 1), slice(n + 1, 2 * n + 1), slice(0, n)),
        (slice(0, n), slice(n, 2 * n), slice(n // 2, n // 2 + n)),
    ]:
        got = buf.copy()
        expect = trueno.matmul(got[sa].copy(), got[sb].copy(), precision=precision)
        trueno.matmul(got[sa], got[sb], out=got[so], precision=precision)
        np.testing.assert_array_equal(got[so], expect)
        # And within lowp's stated bound of the exact product (operands in [-1, 1)).
        bound = {"bf16": (2**-7 + n * 2**-24) * n, "int8": (2 / 254 + 1 / 254**2) * n}[precision]
        exact = buf[sa].astype(np.float64) @ buf[sb].astype(np.float64)
        assert np.abs(got[so] - exact).max() <= bound


# -- what out= refuses ---------------------------------------------------------------------


def test_out_is_refused_only_for_layout_dtype_shape_or_read_only() -> None:
    x = np.linspace(-1, 1, 64, dtype=np.float32)
    ro = x.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        trueno.exp(x, out=ro)
    with pytest.raises(ValueError, match="writeable"):
        trueno.add(ro, ro, out=ro)  # aliasing its inputs does not make it writeable
    with pytest.raises(ValueError, match="C-contiguous"):
        trueno.exp(x[::2], out=np.empty(64, np.float32)[::2])
    with pytest.raises(ValueError, match=r"shape \(63,\)"):
        trueno.relu(x, out=np.empty(63, np.float32))
    with pytest.raises(TypeError, match="float32"):
        trueno.relu(x, out=np.empty(64, np.float64))
    m = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        trueno.matmul(m, m, out=np.empty((4, 4), np.float32, order="F"))
