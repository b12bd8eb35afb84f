"""``trueno.machine()``: the machine as the crate measures it, checked against what the
OS itself says (sysfs, /proc/cpuinfo) and against its own cache file's rules.

Speed is never asserted: the probe's figures are checked for shape and sanity (finite,
positive, ordered the way any cache hierarchy is), not for a value.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import trueno

SYSFS = Path("/sys/devices/system/cpu/cpu0/cache")


def _sysfs_size(text: str) -> int:
    text = text.strip()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1], 1)
    return int(text.rstrip("KMG")) * scale


def _sysfs_caches() -> dict[tuple[int, str], int]:
    out = {}
    for d in sorted(SYSFS.glob("index*")):
        level = int((d / "level").read_text())
        kind = (d / "type").read_text().strip().lower()
        out[level, kind] = _sysfs_size((d / "size").read_text())
    return out


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRUENO_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_identity_and_caches_match_the_os() -> None:
    m = trueno.machine(probe=False)
    assert m["probe"] is None
    assert m["origin"] == "not probed"
    assert m["schema"] == "trueno-machine/1"
    assert len(m["fingerprint"]) == 16
    assert m["cpu"]["backends"] == trueno.backends()
    caches = m["caches"]
    if SYSFS.is_dir():
        want = _sysfs_caches()
        assert caches["source"] == "sysfs"
        assert caches["l1d_bytes"] == want[1, "data"]
        assert caches["l2_bytes"] == want[2, "unified"]
        assert caches["l3_bytes"] == want.get((3, "unified"), 0)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        text = cpuinfo.read_text()
        flags = next(
            (
                line.split(":", 1)[1].split()
                for line in text.splitlines()
                if line.startswith("flags")
            ),
            [],
        )
        if flags:
            assert set(m["cpu"]["features"]) <= set(flags)
            for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile"):
                assert (f in flags) == (f in m["cpu"]["features"]), f


def test_probe_is_cached_per_machine_and_refreshed_on_demand(cache_dir: Path) -> None:
    first = trueno.machine(refresh=True)
    path = cache_dir / f"machine-{first['fingerprint']}.json"
    assert first["origin"] == f"measured now, cached in {path}"
    on_disk = json.loads(path.read_text())
    assert on_disk["probe"] == first["probe"]
    probe = first["probe"]
    peaks = {p["backend"]: p for p in probe["peaks"]}
    assert set(peaks) == set(trueno.backends())
    for p in peaks.values():
        assert math.isfinite(p["f32_flops"])
        assert p["f32_flops"] > 0
        assert p["f64_flops"] == pytest.approx(p["f32_flops"] / 2)
    levels = [b["level"] for b in probe["bandwidth"]]
    assert levels[:2] == ["L1", "L2"]
    assert levels[-1] == "DRAM"
    for b in probe["bandwidth"]:
        assert b["read"] == max(v for _, v in b["read_by_streams"]) > 0
        assert b["add"] > 0
    # A second call reads the file instead of probing again.
    second = trueno.machine()
    assert second["origin"] == f"cached: {path}"
    assert second["probe"] == first["probe"]
    # Measuring again on demand also forgets GEMM's cached L3 feed (the next process
    # that needs it times it again); reading the cache does not.
    feed = cache_dir / f"gemm-feed-{first['fingerprint']}.json"
    feed.write_text("{}")
    trueno.machine()
    assert feed.exists()
    trueno.machine(refresh=True)
    assert not feed.exists()


def test_invalid_cache_files_are_replaced_not_trusted(cache_dir: Path) -> None:
    # Each case costs a probe (~2 s), so two here; the Rust tests (machine.rs) cover
    # the other refusals (schema, fingerprint, size, non-finite figures) without one.
    good = trueno.machine(refresh=True)
    path = cache_dir / f"machine-{good['fingerprint']}.json"
    text = path.read_text()
    negative = json.loads(text)
    # A negative ceiling would make every row look impossibly fast.
    negative["probe"]["peaks"][0]["f32_flops"] = -1.0
    for bad in (text[: len(text) // 2], json.dumps(negative)):
        path.write_text(bad)
        m = trueno.machine()
        assert m["origin"].startswith("measured now"), bad[:40]
        assert json.loads(path.read_text())["fingerprint"] == good["fingerprint"]
        assert all(p["f32_flops"] > 0 for p in m["probe"]["peaks"])


def test_gemm_blocking_comes_from_the_caches() -> None:
    m = trueno.machine(probe=False)
    l2 = m["caches"]["l2_bytes"]
    for dtype, size in (("float32", 4), ("float64", 8)):
        g = m["gemm"][dtype]
        assert g["mc"] % g["mr"] == 0
        assert g["nc"] % g["nr"] == 0
        assert 128 <= g["kc"] <= 1024
        # The packed A block fits the L2 the OS reports.
        assert g["mc"] * g["kc"] * size <= l2
        # And matmul with that blocking is still NumPy's product across its edges.
        rng = np.random.default_rng(3)
        a = rng.standard_normal((g["mc"] + 5, g["kc"] + 3)).astype(dtype)
        b = rng.standard_normal((g["kc"] + 3, 2 * g["nr"] + 1)).astype(dtype)
        tol = 1e-3 if dtype == "float32" else 1e-9
        np.testing.assert_allclose(trueno.matmul(a, b), a @ b, rtol=tol, atol=tol)
        np.testing.assert_allclose(trueno.matmul(a, b, threads=2), a @ b, rtol=tol, atol=tol)


def test_bad_arguments_are_type_errors() -> None:
    # Deliberately wrong types go through Any, as in the kernel tests.
    yes: Any = "yes"
    one: Any = 1
    with pytest.raises(TypeError, match="'yes'"):
        trueno.machine(refresh=yes)
    with pytest.raises(TypeError, match="1"):
        trueno.machine(probe=one)
    with pytest.raises(ValueError, match="float16"):
        trueno._gemm_blocking("float16")
