"""trueno softmax / log_softmax / layer_norm / rms_norm and the similarity kernels
(cosine, squared L2, top-k) against NumPy float64 references."""

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
COLS = [1, 2, 7, 15, 16, 17, 63, 64, 65, 100, 255, 1000, 1025]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    before = trueno.backend()
    trueno.set_backend(request.param)
    yield request.param
    trueno.set_backend(before)


def softmax_ref(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def matrices() -> st.SearchStrategy[np.ndarray]:
    shapes = st.tuples(st.integers(0, 5), st.one_of(st.sampled_from(COLS), st.integers(1, 130)))
    return shapes.flatmap(
        lambda s: hnp.arrays(np.float32, s, elements=st.floats(-50, 50, width=32))
    )


@pytest.mark.usefixtures("backend")
@given(x=matrices())
@settings(max_examples=40, deadline=None)
def test_softmax_and_log_softmax_match_reference(x: np.ndarray) -> None:
    want = softmax_ref(x)
    got = trueno.softmax(x)
    assert got.dtype == np.float32
    assert got.shape == x.shape
    # x - max is rounded to float32 first (as NumPy does): error grows with |x - max|.
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-12)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(trueno.log_softmax(x), np.log(want), rtol=1e-5, atol=2e-5)


def test_softmax_axis_out_and_layouts() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5, 33)).astype(np.float32) * 10
    for axis in (0, 1, 2, -1, -2, -3):
        np.testing.assert_allclose(
            trueno.softmax(x, axis=axis), softmax_ref(x, axis), rtol=1e-5, atol=1e-12
        )
    out = np.empty_like(x)
    assert trueno.softmax(x, out=out) is out
    np.testing.assert_allclose(out, softmax_ref(x), rtol=1e-5)
    xt = x.transpose(2, 0, 1)  # non-contiguous: copied, never misread
    np.testing.assert_allclose(trueno.softmax(xt), softmax_ref(xt), rtol=1e-5, atol=1e-12)
    with pytest.raises(ValueError, match="axis 3 is out of bounds"):
        trueno.softmax(x, axis=3)
    with pytest.raises(ValueError, match="0-d"):
        trueno.softmax(np.ones((), np.float32))


def test_softmax_specials_follow_numpy() -> None:
    x = np.array(
        [[1000, 1000, -1000, -np.inf], [1, np.nan, 2, 3], [-np.inf] * 4, [0, 0, 0, 0]], np.float32
    )
    got = trueno.softmax(x)
    np.testing.assert_array_equal(got[0], [0.5, 0.5, 0, 0])
    assert np.isnan(got[1]).all()
    assert np.isnan(got[2]).all()  # NumPy: exp(-inf - -inf) = nan
    np.testing.assert_array_equal(got[3], [0.25] * 4)
    assert trueno.softmax(np.empty((0, 3), np.float32)).shape == (0, 3)
    assert trueno.softmax(np.empty((3, 0), np.float32)).shape == (3, 0)


@pytest.mark.usefixtures("backend")
@given(x=matrices(), shift=st.floats(-1000, 1000), affine=st.booleans())
@settings(max_examples=40, deadline=None)
def test_layer_norm_and_rms_norm_match_reference(x: np.ndarray, shift: float, affine: bool) -> None:
    x = (x + np.float32(shift)).astype(np.float32)
    cols = x.shape[1]
    w = (np.arange(cols) % 7 * 0.25 + 0.5).astype(np.float32) if affine else None
    b = (np.arange(cols) % 5 - 2.0).astype(np.float32) if affine else None
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=-1, keepdims=True)
    var = x64.var(axis=-1, keepdims=True)
    want = (x64 - mean) / np.sqrt(var + 1e-5)
    ms = (x64**2).mean(axis=-1, keepdims=True)
    want_rms = x64 / np.sqrt(ms + 1e-6)
    if affine:
        want = want * w + b
        want_rms = want_rms * w
    # float32 rounding of x - mean, relative to the row's spread.
    tol = 2e-6 * (np.abs(x64).max(initial=0) + 1) / np.sqrt(var.min(initial=1) + 1e-5) + 1e-5
    np.testing.assert_allclose(trueno.layer_norm(x, w, b), want, rtol=1e-5, atol=tol)
    np.testing.assert_allclose(trueno.rms_norm(x, w), want_rms, rtol=2e-6, atol=1e-6)


def test_norm_parameter_errors() -> None:
    x = np.ones((2, 4), np.float32)
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), expected \(4,\)"):
        trueno.layer_norm(x, np.ones(3, np.float32))
    loose: Any = trueno  # the stubs reject a float64 weight for float32 x; the runtime must too
    with pytest.raises(TypeError, match="x's dtype, got float64"):
        loose.rms_norm(x, np.ones(4))
    with pytest.raises(TypeError, match="int64"):
        loose.softmax(x.astype(np.int64))


# -- similarity ---------------------------------------------------------------------------


def cos_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(all="ignore"):
        return (a64 @ b64.T) / np.multiply.outer(
            np.linalg.norm(a64, axis=-1), np.linalg.norm(b64, axis=-1)
        )


def sq_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    d = ((a64[:, None, :] - b64[None, :, :]) ** 2).sum(-1)
    return d.reshape(a.shape[:-1] + b.shape[:-1])


@pytest.mark.usefixtures("backend")
@given(
    d=st.one_of(st.sampled_from([1, 15, 16, 17, 64, 384]), st.integers(1, 100)),
    m=st.integers(1, 4),
    n=st.integers(0, 40),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=40, deadline=None)
def test_similarity_shapes_and_values(d: int, m: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, d)).astype(np.float32)
    b = rng.standard_normal((n, d)).astype(np.float32)
    # (m, d) x (n, d) -> (m, n)
    got = trueno.cosine_similarity(a, b)
    assert isinstance(got, np.ndarray)
    assert got.shape == (m, n)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, cos_ref(a, b), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(trueno.sqeuclidean(a, b), sq_ref(a, b), rtol=1e-5, atol=1e-4)
    # (d,) x (n, d) -> (n,)
    got1 = trueno.cosine_similarity(a[0], b)
    assert isinstance(got1, np.ndarray)
    assert got1.shape == (n,)
    np.testing.assert_allclose(got1, cos_ref(a[:1], b)[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        trueno.sqeuclidean(a[0], b), sq_ref(a[:1], b)[0], rtol=1e-5, atol=1e-4
    )
    # (d,) x (d,) -> float
    if n:
        c = trueno.cosine_similarity(a[0], b[0])
        assert isinstance(c, float)
        assert c == pytest.approx(float(cos_ref(a[:1], b[:1])[0, 0]), rel=1e-5, abs=1e-6)


def test_cosine_pair_of_zero_vector_is_nan_like_numpy() -> None:
    z = np.zeros(8, np.float32)
    assert math.isnan(trueno.cosine_similarity(z, np.ones(8, np.float32)))
    with pytest.raises(ValueError, match=r"\(8,\).*\(7,\)"):
        trueno.cosine_similarity(z, np.ones(7, np.float32))
    with pytest.raises(ValueError, match="shape"):
        trueno.cosine_similarity(np.ones((2, 2, 2), np.float32), z[:2])


def topk_ref(q: np.ndarray, mat: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    q2 = np.atleast_2d(q)
    if metric == "cosine":
        s = cos_ref(q2, mat)
        key = -s
    elif metric == "dot":
        s = q2.astype(np.float64) @ mat.astype(np.float64).T
        key = -s
    else:
        s = sq_ref(q2, mat)
        key = s
    order = np.argsort(key, axis=1, kind="stable")[:, : min(k, mat.shape[0])]
    return order, np.take_along_axis(s, order, axis=1)


@pytest.mark.usefixtures("backend")
@given(
    d=st.integers(1, 40),
    m=st.integers(1, 3),
    n=st.integers(0, 300),
    k=st.integers(0, 12),
    metric=st.sampled_from(["cosine", "dot", "sqeuclidean"]),
    seed=st.integers(0, 2**32 - 1),
    one_d=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_top_k_matches_full_sort(
    *, d: int, m: int, n: int, k: int, metric: str, seed: int, one_d: bool
) -> None:
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((m, d)).astype(np.float32)
    mat = rng.standard_normal((n, d)).astype(np.float32)
    if one_d:
        q = q[0]
    loose: Any = trueno  # `metric` comes from parametrize as a plain str
    idx, scores = loose.top_k(q, mat, k, metric=metric)
    kk = min(k, n)
    assert idx.dtype == np.int64
    assert scores.dtype == np.float32
    assert idx.shape == ((kk,) if one_d else (m, kk))
    want_idx, want_scores = topk_ref(q, mat, k, metric)
    got_idx, got_scores = np.atleast_2d(idx), np.atleast_2d(scores)
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-4, atol=1e-4)
    # Indices may differ only between (nearly) tied scores.
    s_full = topk_ref(q, mat, n, metric)[1] if kk else None
    for i in range(got_idx.shape[0]):
        for j in range(kk):
            if got_idx[i, j] != want_idx[i, j]:
                assert s_full is not None
                assert abs(got_scores[i, j] - want_scores[i, j]) <= 1e-4 * max(
                    1, abs(want_scores[i, j])
                )


def test_top_k_large_and_errors() -> None:
    rng = np.random.default_rng(5)
    mat = rng.standard_normal((20_000, 384)).astype(np.float32)
    q = rng.standard_normal((3, 384)).astype(np.float32)
    idx, scores = trueno.top_k(q, mat, 10)
    want_idx, want_scores = topk_ref(q, mat, 10, "cosine")
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5)
    idx1, _ = trueno.top_k(q[1], mat, 10)
    np.testing.assert_array_equal(idx1, want_idx[1])
    with pytest.raises(ValueError, match="k must be >= 0"):
        trueno.top_k(q, mat, -1)
    loose: Any = trueno  # the stubs reject an unknown metric; the runtime must too
    with pytest.raises(ValueError, match="metric"):
        loose.top_k(q, mat, 3, metric="hamming")
    with pytest.raises(ValueError, match=r"\(3, 384\).*\(20000, 383\)"):
        trueno.top_k(q, mat[:, 1:], 3)
    with pytest.raises(TypeError, match="float64"):
        trueno.top_k(q.astype(np.float64), mat, 3)


def test_top_k_nan_rows_rank_last() -> None:
    mat = np.array([[1, 0], [np.nan, 0], [0.5, 0], [2, 0]], np.float32)
    idx, scores = trueno.top_k(np.array([1, 0], np.float32), mat, 4, metric="dot")
    np.testing.assert_array_equal(idx, [3, 0, 2, 1])
    assert np.isnan(scores[-1])


def test_top_k_zero_length_vectors_follow_numpy() -> None:
    # Decided in the crate (trueno::similarity::top_k_rows), not the binding: NumPy's
    # expressions give 0 for dot and squared L2 and 0 / 0 = nan for cosine.
    mat = np.empty((5, 0), np.float32)
    q = np.empty(0, np.float32)
    with np.errstate(invalid="ignore"):
        want = {
            "cosine": (mat @ q) / (np.linalg.norm(mat, axis=1) * np.linalg.norm(q)),
            "dot": mat @ q,
            "sqeuclidean": ((mat - q) ** 2).sum(axis=1),
        }
    loose: Any = trueno  # `metric` is a plain str here
    for metric, scores in want.items():
        idx, got = loose.top_k(q, mat, 3, metric=metric)
        np.testing.assert_array_equal(idx, [0, 1, 2])
        np.testing.assert_array_equal(got, scores[:3])
        idx2, got2 = loose.top_k(np.empty((2, 0), np.float32), mat, 9, metric=metric)
        assert idx2.shape == got2.shape == (2, 5)
        np.testing.assert_array_equal(idx2, [[0, 1, 2, 3, 4]] * 2)
