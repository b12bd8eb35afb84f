"""float64, NumPy's default dtype, through every element-wise map and row kernel.

References are NumPy's own float64 functions (and SciPy-free closed forms for GELU);
bounds are in float64 ulps as trueno's math64 module states them: exp and log 2 ulp,
tanh 3 ulp, sigmoid 5 ulp (against a reference rounded three times). Each kernel runs
on every backend this CPU offers.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import trueno

BACKENDS = trueno.backends()


def ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """|got - want| in units of the float64 spacing at the reference (0 where equal)."""
    both_nan = np.isnan(got) & np.isnan(want)
    same = (got == want) | both_nan
    spacing = np.spacing(np.maximum(np.abs(want), np.finfo(np.float64).smallest_subnormal))
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(got - want) / spacing
    return np.where(same, 0.0, np.where(np.isnan(d), np.inf, d))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest):
    before = trueno.backend()
    trueno.set_backend(request.param)
    yield request.param
    trueno.set_backend(before)


def inputs() -> np.ndarray:
    rng = np.random.default_rng(64)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-310, 5e-324, 709.78, -745.1, 0.625]
    return np.concatenate(
        [
            np.array(special),
            rng.uniform(-745, 709, 20_001),
            rng.standard_normal(1003),
            np.geomspace(1e-300, 1e300, 999) * rng.choice([-1, 1], 999),
        ]
    )


def test_the_issue_example_works() -> None:
    x = np.random.default_rng(0).random(10)  # float64, as np.random gives it
    got = trueno.exp(x)
    assert got.dtype == np.float64
    assert ulps(got, np.exp(x)).max() <= 2


@pytest.mark.parametrize(
    ("name", "ref", "bound"),
    [
        ("exp", np.exp, 2),
        ("log", np.log, 2),
        ("tanh", np.tanh, 3),
        # The reference 1 / (1 + exp(-x)) is itself rounded three times.
        ("sigmoid", lambda x: 1.0 / (1.0 + np.exp(-x)), 5),
        ("relu", lambda x: np.where(np.isnan(x), x, np.maximum(x, 0.0)), 0),
    ],
)
def test_maps_within_their_ulp_bounds(backend: str, name: str, ref, bound: int) -> None:
    x = inputs()
    if name == "log":
        x = np.concatenate([np.abs(x), [-1.0, -np.inf]])
    with np.errstate(all="ignore"):
        want = ref(x)
    got = getattr(trueno, name)(x)
    assert got.dtype == np.float64
    worst = ulps(got, want)
    at = x[worst.argmax()]
    assert worst.max() <= bound, f"{name} on {backend}: {worst.max()} ulp at x={at!r}"


def test_gelu_both_forms(backend: str) -> None:
    x = np.linspace(-30, 30, 6001)
    k = math.sqrt(2 / math.pi)
    u = k * (x + 0.044715 * x**3)
    # 0.5 x (1 + tanh u) written without cancellation: x / (1 + e^-2u).
    with np.errstate(over="ignore"):
        want = x / (1 + np.exp(-2 * u))
    np.testing.assert_allclose(trueno.gelu(x), want, rtol=1e-12, atol=1e-300)
    erf = np.vectorize(math.erf)
    pos = x[x > -3]
    np.testing.assert_allclose(
        trueno.gelu(pos, approximate="none"), 0.5 * pos * (1 + erf(pos / math.sqrt(2))), rtol=1e-12
    )


def fma_exact(a: float, b: float, c: float) -> float:
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def test_linear_maps_and_out(backend: str) -> None:
    rng = np.random.default_rng(3)
    a, b, c = (rng.standard_normal(1001) for _ in range(3))
    np.testing.assert_array_equal(trueno.scale(a, 0.1), 0.1 * a)
    y = b.copy()
    trueno.axpy(-1.5, a, y)
    # One rounding per element: the exact a*b+c (rational arithmetic) rounded once.
    fused = np.array([fma_exact(-1.5, p, q) for p, q in zip(a, b, strict=True)])
    np.testing.assert_array_equal(y, fused)
    fma = np.array([fma_exact(p, q, r) for p, q, r in zip(a, b, c, strict=True)])
    np.testing.assert_array_equal(trueno.fma(a, b, c), fma)
    out = np.empty_like(a)
    assert trueno.exp(a, out=out) is out
    with pytest.raises(TypeError, match="float32"):
        trueno.fma(a, b, c.astype(np.float32))


def test_rows_match_numpy(backend: str) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 129)) * 30
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(trueno.softmax(x), e / e.sum(-1, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(
        trueno.softmax(x, axis=0),
        np.exp(x - x.max(0)) / np.exp(x - x.max(0)).sum(0),
        rtol=1e-14,
    )
    lse = np.log(e.sum(-1, keepdims=True)) + x.max(-1, keepdims=True)
    np.testing.assert_allclose(trueno.log_softmax(x), x - lse, rtol=1e-13, atol=1e-13)
    w, b = rng.standard_normal(129), rng.standard_normal(129)
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(
        trueno.layer_norm(x, w, b), (x - mean) / np.sqrt(var + 1e-5) * w + b, rtol=1e-12, atol=1e-12
    )
    ms = (x**2).mean(-1, keepdims=True)
    np.testing.assert_allclose(trueno.rms_norm(x, w), x / np.sqrt(ms + 1e-6) * w, rtol=1e-13)
    nan_row = np.array([[1.0, np.nan, 3.0]])
    assert np.isnan(trueno.softmax(nan_row)).all()
    assert trueno.softmax(np.empty((0, 3))).shape == (0, 3)
