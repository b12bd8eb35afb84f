"""trueno's pool of large output buffers, seen from Python.

Allocating calls whose result is at least 4 MiB return an ndarray over a
recycled buffer (its base a trueno PoolBuffer). These tests check that such
results equal the out= path and NumPy at sizes around the threshold and at 16M,
that buffers are reused (trueno._pool_stats, a debugging aid) but never while
an array or view still uses them, that threads can allocate concurrently, and
that the pool's bounds hold.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

trueno = pytest.importorskip("trueno")

MIN_BYTES = 4 << 20
HUGE = 2 << 20


@pytest.fixture(autouse=True)
def default_limits() -> Iterator[None]:
    """Each test starts and ends with the default bounds (and an empty pool)."""
    s = trueno._pool_stats()
    limits = (s["max_buffers"], s["max_bytes"])
    trueno._pool_set_limits(0, 0)
    trueno._pool_set_limits(*limits)
    yield
    trueno._pool_set_limits(0, 0)
    trueno._pool_set_limits(*limits)


def softmax_ref(x: np.ndarray) -> np.ndarray:
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def data(n: int, dtype: type, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 4).astype(dtype)


def is_pooled(a: np.ndarray) -> bool:
    return type(a.base).__name__ == "PoolBuffer"


KERNELS: dict[str, tuple[Callable[..., Any], Callable[[np.ndarray], np.ndarray]]] = {
    "softmax": (trueno.softmax, softmax_ref),
    "exp": (trueno.exp, lambda x: np.exp(x.astype(np.float64))),
    "add": (lambda x, **kw: trueno.add(x, x[::-1].copy(), **kw), lambda x: x + x[::-1]),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("delta", [-1, 0, 1, HUGE + 3])
def test_threshold_sizes_match_out_and_numpy(name: str, dtype: type, delta: int) -> None:
    n = MIN_BYTES // np.dtype(dtype).itemsize + delta
    call, ref = KERNELS[name]
    x = data(n, dtype)
    got = call(x)
    assert is_pooled(got) == (n * np.dtype(dtype).itemsize >= MIN_BYTES)
    assert got.shape == x.shape
    assert got.dtype == dtype
    out = np.empty_like(x)
    call(x, out=out)
    np.testing.assert_array_equal(got, out)
    # exp and add within a few ulp; softmax's sum over 1M terms within 2e-5 (float32)
    # as in test_trueno_rows_similarity, scaled to float64's epsilon.
    eps = float(np.finfo(np.dtype(dtype)).eps)
    tol = 4 * eps if name != "softmax" else 2e-5 * eps / float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(got, ref(x), rtol=tol, atol=0)
    # A second call reuses the buffer of a dead result and is just as right.
    addr = got.ctypes.data
    del got
    again = call(x)
    if n * np.dtype(dtype).itemsize >= MIN_BYTES:
        assert again.ctypes.data == addr
    np.testing.assert_array_equal(again, out)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_16m_float32_and_special_values(name: str) -> None:
    call, ref = KERNELS[name]
    x = data(1 << 24, np.float32, seed=1)
    x[:4] = [np.nan, np.inf, -np.inf, 88.0]
    if name == "softmax":
        x = x.reshape(1 << 12, 1 << 12)  # rows: the NaN row stays NaN, the others finite
    first = call(x)
    out = np.empty_like(x)
    call(x, out=out)
    np.testing.assert_array_equal(first, out)
    second = call(x)  # `first` is alive: other memory
    assert not np.shares_memory(first, second)
    np.testing.assert_array_equal(second, out)
    with np.errstate(invalid="ignore", over="ignore"):
        expected = ref(x)
    np.testing.assert_allclose(first, expected, rtol=2e-5, atol=0, equal_nan=True)


def test_buffers_are_reused_and_counted() -> None:
    x = data(1 << 22, np.float32)
    before = trueno._pool_stats()
    y = trueno.exp(x)
    addr = y.ctypes.data
    assert addr % HUGE == 0
    del y
    s = trueno._pool_stats()
    assert s["misses"] == before["misses"] + 1
    assert s["idle_buffers"] == 1
    assert s["idle_bytes"] == 16 << 20
    for _ in range(5):
        assert trueno.exp(x).ctypes.data == addr
    s = trueno._pool_stats()
    assert s["hits"] == before["hits"] + 5
    # Same byte size, other dtype and shape: the same buffer.
    z = trueno.exp(data(1 << 21, np.float64).reshape(1 << 10, 1 << 11))
    assert z.ctypes.data == addr
    assert z.shape == (1 << 10, 1 << 11)


def test_small_results_are_plain_numpy_arrays() -> None:
    y = trueno.exp(data(MIN_BYTES // 4 - 1, np.float32))
    assert y.base is None
    assert y.flags.owndata


def test_behaves_like_an_ndarray() -> None:
    x = data(1 << 21, np.float32)
    y = trueno.add(x, x)
    assert is_pooled(y)
    assert y.flags.writeable
    assert y.flags.c_contiguous
    assert y.flags.aligned
    assert not y.flags.owndata
    y[0] = 42.0
    assert y[0] == 42.0
    assert np.shares_memory(y, y[1:])
    assert not np.shares_memory(y, x)
    for dup in (pickle.loads(pickle.dumps(y)), copy.deepcopy(y), y.copy()):
        assert not np.shares_memory(dup, y)
        assert not is_pooled(dup)
        np.testing.assert_array_equal(dup, y)
    assert y.base.capacity >= y.nbytes
    assert "pooled buffer" in repr(y.base)
    # Works as an input and as out= of another call.
    np.testing.assert_array_equal(trueno.sub(y, y), np.zeros_like(x))
    trueno.exp(x, out=y)
    np.testing.assert_array_equal(y, trueno.exp(x))


def test_views_keep_the_buffer_and_arrays_outlive_their_producer() -> None:
    def produce() -> np.ndarray:
        return trueno.exp(data(1 << 21, np.float32))[100:]

    view = produce()
    keep = view.copy()
    idle_before = trueno._pool_stats()["idle_buffers"]
    # The producer's result is gone but the view holds its buffer: new calls of
    # the same size must get other memory, and the view must stay intact.
    others = [trueno.exp(data(1 << 21, np.float32, seed=s)) for s in range(3)]
    assert not any(np.shares_memory(view, o) for o in others)
    np.testing.assert_array_equal(view, keep)
    assert trueno._pool_stats()["idle_buffers"] == idle_before
    addr = view.__array_interface__["data"][0] - 100 * 4
    del others, view  # the view's buffer is the last one returned
    assert trueno.exp(data(1 << 21, np.float32)).ctypes.data == addr


def test_buffer_bound_holds() -> None:
    trueno._pool_set_limits(2, 1 << 30)
    x = data(1 << 21, np.float32)
    before = trueno._pool_stats()
    alive = [trueno.exp(x) for _ in range(5)]
    assert len({a.ctypes.data for a in alive}) == 5
    del alive
    s = trueno._pool_stats()
    assert s["idle_buffers"] == 2
    assert s["idle_bytes"] == 2 * (8 << 20)
    assert s["evictions"] == before["evictions"] + 3


def test_byte_bound_holds_and_zero_disables() -> None:
    trueno._pool_set_limits(4, 20 << 20)
    x = data(1 << 21, np.float32)  # 8 MiB results
    alive = [trueno.exp(x) for _ in range(4)]
    del alive
    s = trueno._pool_stats()
    assert s["idle_bytes"] <= 20 << 20
    assert s["idle_buffers"] == 2
    big = trueno.exp(data(6 << 20, np.float32))  # 24 MiB: over the byte bound
    del big
    assert trueno._pool_stats()["idle_bytes"] <= 20 << 20
    assert trueno._pool_set_limits(0, 0) == (4, 20 << 20)
    assert trueno._pool_stats()["idle_buffers"] == 0
    y = trueno.exp(x)
    assert y.base is None
    assert y.flags.owndata


def test_many_threads_allocate_concurrently() -> None:
    trueno._pool_set_limits(3, 1 << 30)
    inputs = [data((1 << 20) + 17 * i, np.float32, seed=i) for i in range(8)]
    expected = [trueno.exp(x, out=np.empty_like(x)) for x in inputs]

    def work(i: int) -> bool:
        x, e = inputs[i % 8], expected[i % 8]
        ok = True
        for _ in range(10):
            y = trueno.exp(x)
            z = trueno.softmax(x)
            ok &= bool(np.array_equal(y, e)) and not np.shares_memory(y, z)
        return ok

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert all(pool.map(work, range(24)))
    assert trueno._pool_stats()["idle_buffers"] <= 3


def test_bad_limits_are_rejected() -> None:
    with pytest.raises((TypeError, OverflowError)):
        trueno._pool_set_limits(-1, 0)
    with pytest.raises(TypeError):
        trueno._pool_set_limits("4", 0)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_fresh_buffers_cached_stores_match_streamed_out(name: str) -> None:
    # A byte bound of 1: every buffer is freed on return, so each call writes a new,
    # never-touched buffer (with cached stores) while out= is a reused one (streamed).
    trueno._pool_set_limits(4, 1)
    call, _ = KERNELS[name]
    x = data(1 << 24, np.float32, seed=2)
    before = trueno._pool_stats()
    fresh = call(x)
    assert is_pooled(fresh)
    assert trueno._pool_stats()["misses"] == before["misses"] + 1
    out = np.empty_like(x)
    call(x, out=out)
    np.testing.assert_array_equal(fresh, out)
