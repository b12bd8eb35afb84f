"""trueno: SIMD kernels of the Sovereign AI Stack, called on NumPy arrays.

The numeric work happens in the Rust crate ``trueno``; this package is the thin
binding that checks dtypes and shapes, releases the GIL and returns NumPy values.

Array rules: C-contiguous float32 (and, where a kernel has one, float64)
arrays are read zero-copy; other layouts are copied once into C order. Results
are fresh arrays or are written into ``out=`` (same dtype and shape,
C-contiguous, writeable). ``out=`` may share memory with an input, as in NumPy:
``add(a, b, out=a)``, ``add(x[1:], x[:-1], out=x[:-1])`` or another array over the
same buffer give what the call gives on copies of the inputs (the binding copies
them first); overlap is never refused. No broadcasting and no implicit upcasting: a wrong dtype is a
TypeError naming it, a shape mismatch a ValueError naming both shapes. Empty
input behaves like NumPy (sum 0, mean nan, min/argmax raise ValueError).
The functions are the Rust ones re-exported directly, for minimal call overhead.

``trueno.machine()`` describes the CPU as the crate measures it (cache sizes from the
OS, features from cpuid, peak FLOP/s and bandwidth per cache level from a short probe
cached per machine); the benchmark's roofline comes from it.
"""

from __future__ import annotations

import json
from typing import Any

from trueno._trueno import (
    __source_hash__,
    _gemm_blocking,
    _lowp_path,
    _machine_json,
    add,
    argmax,
    argmin,
    axpy,
    backend,
    backends,
    cosine_similarity,
    div,
    dot,
    exp,
    fma,
    gelu,
    gemv,
    layer_norm,
    log,
    log_softmax,
    matmul,
    max,
    mean,
    min,
    mul,
    norm,
    relu,
    rms_norm,
    scale,
    set_backend,
    sigmoid,
    softmax,
    sqeuclidean,
    std,
    sub,
    sum,
    tanh,
    top_k,
    var,
)
from trueno._trueno import (
    _lowp_peak as _lowp_peak,  # the benchmark's AMX roofline
)
from trueno._trueno import (
    _pool_set_limits as _pool_set_limits,  # the output buffer pool's bounds (tests, bench)
)
from trueno._trueno import (
    _pool_stats as _pool_stats,  # the output buffer pool's counters (introspection)
)
from trueno._trueno import (
    _set_amx as _set_amx,  # TRUENO_AMX at run time (the benchmark compares)
)

__all__ = [
    "__source_hash__",
    "add",
    "argmax",
    "argmin",
    "axpy",
    "backend",
    "backends",
    "cosine_similarity",
    "div",
    "dot",
    "exp",
    "fma",
    "gelu",
    "layer_norm",
    "log",
    "log_softmax",
    "max",
    "mean",
    "min",
    "mul",
    "norm",
    "relu",
    "rms_norm",
    "scale",
    "set_backend",
    "sigmoid",
    "softmax",
    "sqeuclidean",
    "std",
    "sub",
    "sum",
    "tanh",
    "top_k",
    "var",
]
__all__ += ["gemv", "matmul"]
__all__ += ["machine"]


def machine(refresh: bool = False, *, probe: bool = True) -> dict[str, Any]:
    """This machine as trueno measures it: ``cpu`` (vendor, model, features, usable
    backends), ``caches`` (from sysfs or cpuid), ``probe`` (peak FLOP/s per backend,
    read and read-write bandwidth per cache level; ``None`` with ``probe=False``),
    ``origin`` (cached file or fresh measurement) and ``gemm`` (the register tile and
    cache blocking ``matmul`` derives from the caches, per dtype) and ``lowp`` (the kernel
    ``matmul(precision="bf16" | "int8")`` runs: ``"amx_bf16"`` / ``"amx_int8"`` on a CPU
    with AMX, else ``"avx512_bf16"`` / ``"avx512_vnni"``, or ``"reference"``;
    ``TRUENO_AMX=off`` keeps it off AMX).

    The probe takes about a second and is cached per machine (``$TRUENO_CACHE_DIR``,
    else ``~/.cache/trueno``); ``refresh=True`` measures again and rewrites the cache.
    """
    if not isinstance(refresh, bool) or not isinstance(probe, bool):
        raise TypeError(f"refresh and probe must be bool, got {refresh!r}, {probe!r}")
    text, origin = _machine_json(refresh, probe)
    info: dict[str, Any] = json.loads(text)
    info["origin"] = origin
    info["gemm"] = {
        dtype: dict(zip(("mr", "nr", "kc", "mc", "nc"), _gemm_blocking(dtype), strict=True))
        for dtype in ("float32", "float64")
    }
    info["lowp"] = {precision: _lowp_path(precision) for precision in ("bf16", "int8")}
    return info
