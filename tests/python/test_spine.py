"""The spine's end-to-end proof: Rust kernel -> wheel -> `trueno.dot` == `np.dot`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import trueno


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 63, 64, 65, 1000, 4099])
def test_dot_equals_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    expected = float(np.dot(a.astype(np.float64), b.astype(np.float64)))
    assert trueno.dot(a, b) == pytest.approx(expected, rel=1e-5, abs=1e-4)


def test_dot_rejects_mismatched_shapes_naming_both() -> None:
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        trueno.dot(np.ones(3, np.float32), np.ones(4, np.float32))


def test_dot_rejects_integer_dtype_naming_it() -> None:
    wrong: Any = np.ones(3, np.int64)  # the stubs forbid it; the runtime must too
    with pytest.raises(TypeError, match="int64"):
        trueno.dot(wrong, wrong)
