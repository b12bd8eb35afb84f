"""trueno: SIMD kernels of the Sovereign AI Stack, called on NumPy arrays.

The numeric work happens in the Rust crate ``trueno``; this package is the thin
binding that checks dtypes and shapes, releases the GIL and returns NumPy values.

Array rules: C-contiguous float32 (and, where a kernel has one, float64)
arrays are read zero-copy; other layouts are copied once into C order. Results
are fresh arrays or are written into ``out=`` (same dtype and shape,
C-contiguous). No broadcasting and no implicit upcasting: a wrong dtype is a
TypeError naming it, a shape mismatch a ValueError naming both shapes. Empty
input behaves like NumPy (sum 0, mean nan, min/argmax raise ValueError).
The functions are the Rust ones re-exported directly, for minimal call overhead.
"""

from trueno._trueno import (
    __source_hash__,
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
