"""trueno runtime behaviour: backend selection (TRUENO_BACKEND, set_backend), GIL
release on large inputs, zero-copy inputs."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from gil_probe import ticks_during

trueno = pytest.importorskip("trueno")

ALL = ["scalar", "avx2", "avx512", "neon"]


def _run(backend: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TRUENO_BACKEND=backend)
    code = (
        "import trueno, numpy as np; "
        "print(trueno.backend()); print(trueno.sum(np.ones(33, np.float32)))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", ALL)
def test_env_selects_or_refuses_backend(name: str) -> None:
    proc = _run(name)
    if name in trueno.backends():
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [name, "33.0"]
    else:
        assert proc.returncode != 0
        assert "ImportError" in proc.stderr
        assert f"backend {name} is not supported on this CPU" in proc.stderr


def test_env_unknown_backend_is_refused_by_name() -> None:
    proc = _run("sse9")
    assert proc.returncode != 0
    assert 'unknown backend "sse9"' in proc.stderr


def test_env_is_case_insensitive_and_empty_means_detect() -> None:
    best = trueno.backends()[-1]
    assert _run(best.upper()).stdout.split()[0] == best
    assert _run("").stdout.split()[0] == best


def test_set_backend_switches_and_refuses() -> None:
    before = trueno.backend()
    x = np.linspace(-5, 5, 1001, dtype=np.float32)
    try:
        results = {}
        for name in trueno.backends():
            trueno.set_backend(name)
            assert trueno.backend() == name
            results[name] = trueno.exp(x)
        for r in results.values():
            np.testing.assert_allclose(r, results["scalar"], rtol=1e-6)
        for name in set(ALL) - set(trueno.backends()):
            with pytest.raises(ValueError, match=f"backend {name} is not supported"):
                trueno.set_backend(name)
            assert trueno.backend() == trueno.backends()[-1] or trueno.backend() != name
        with pytest.raises(ValueError, match="unknown backend"):
            trueno.set_backend("fastest")
    finally:
        trueno.set_backend(before)


def test_large_calls_release_the_gil() -> None:
    """A Python thread keeps running while a big kernel executes."""
    x = np.random.default_rng(0).standard_normal(1 << 24).astype(np.float32)
    out = np.empty_like(x)
    inside = ticks_during(
        lambda: (trueno.exp(x, out=out), trueno.softmax(x, out=out), trueno.sum(x))
    )
    # With the GIL held the spinner could not append a single tick in a window.
    assert inside > 100, inside


def test_inputs_are_not_copied_or_modified() -> None:
    x = np.arange(1000, dtype=np.float32)
    before = x.copy()
    base = x.ctypes.data
    trueno.softmax(x)
    trueno.sum(x)
    assert x.ctypes.data == base
    np.testing.assert_array_equal(x, before)
    assert x.flags.writeable  # a read borrow never leaves the array read-only
