from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt

__source_hash__: str

# Linear algebra (crates/trueno/src/matmul.rs). Both operands share one dtype.
_F = TypeVar("_F", np.float32, np.float64)

# Backend selection (crates/trueno/src/backend.rs).
def backend() -> str:
    """The instruction set the kernels use: "scalar", "avx2", "avx512" or "neon"."""

def backends() -> list[str]:
    """The backends this CPU supports, narrowest first."""

def set_backend(name: str) -> None:
    """Select a backend process-wide; ValueError if unknown or unsupported here."""

# Array rules: C-contiguous input is read zero-copy, other layouts are copied;
# no broadcasting, no upcasting; ``out=`` must match dtype and shape and be
# C-contiguous and writeable. ``out=`` aliasing (every kernel that takes it,
# and axpy's y): as NumPy, an ``out`` that shares memory with an input (is it,
# a view of it at an offset, or another array over the same buffer) gives the
# result of the call on copies of the inputs; overlap is never refused.
# Functions typed with _F accept float32 or float64 (both operands the same);
# the others are float32 only.
_F32 = npt.NDArray[np.float32]

def add(
    a: npt.NDArray[_F], b: npt.NDArray[_F], out: npt.NDArray[_F] | None = None
) -> npt.NDArray[_F]:
    """Element-wise a + b."""

def sub(
    a: npt.NDArray[_F], b: npt.NDArray[_F], out: npt.NDArray[_F] | None = None
) -> npt.NDArray[_F]:
    """Element-wise a - b."""

def mul(
    a: npt.NDArray[_F], b: npt.NDArray[_F], out: npt.NDArray[_F] | None = None
) -> npt.NDArray[_F]:
    """Element-wise a * b."""

def div(
    a: npt.NDArray[_F], b: npt.NDArray[_F], out: npt.NDArray[_F] | None = None
) -> npt.NDArray[_F]:
    """Element-wise a / b (IEEE: x/0 = +-inf, 0/0 = nan)."""

def scale(x: npt.NDArray[_F], alpha: float, out: npt.NDArray[_F] | None = None) -> npt.NDArray[_F]:
    """alpha * x."""

def axpy(alpha: float, x: npt.NDArray[_F], y: npt.NDArray[_F]) -> None:
    """y += alpha * x, in place (y C-contiguous and writeable)."""

def fma(
    a: npt.NDArray[_F], b: npt.NDArray[_F], c: npt.NDArray[_F], out: npt.NDArray[_F] | None = None
) -> npt.NDArray[_F]:
    """a * b + c with a single rounding."""

def relu(x: npt.NDArray[_F], out: npt.NDArray[_F] | None = None) -> npt.NDArray[_F]:
    """max(x, 0); nan propagates."""

def sigmoid(x: npt.NDArray[_F], out: npt.NDArray[_F] | None = None) -> npt.NDArray[_F]:
    """1 / (1 + exp(-x)), accurate for large |x|."""

def tanh(x: npt.NDArray[_F], out: npt.NDArray[_F] | None = None) -> npt.NDArray[_F]:
    """Hyperbolic tangent."""

def gelu(
    x: npt.NDArray[_F],
    approximate: Literal["tanh", "none"] = "tanh",
    out: npt.NDArray[_F] | None = None,
) -> npt.NDArray[_F]:
    """GELU: tanh approximation, or the exact erf form with approximate="none"."""

def exp(x: npt.NDArray[_F], out: npt.NDArray[_F] | None = None) -> npt.NDArray[_F]:
    """e**x within 2 ulp (of float32 or float64)."""

def log(x: npt.NDArray[_F], out: npt.NDArray[_F] | None = None) -> npt.NDArray[_F]:
    """Natural logarithm within 2 ulp; log(0) = -inf, log(x < 0) = nan."""

def sum(x: npt.NDArray[np.float32] | npt.NDArray[np.float64]) -> float:
    """Sum of all elements (0.0 if empty)."""

def dot(a: npt.NDArray[_F], b: npt.NDArray[_F]) -> float:
    """Inner product of two 1-D arrays of the same length and dtype."""

def norm(x: npt.NDArray[np.float32] | npt.NDArray[np.float64]) -> float:
    """Euclidean norm of all elements (overflow-safe)."""

def min(x: npt.NDArray[np.float32] | npt.NDArray[np.float64]) -> float:
    """Smallest element; nan if any is nan; ValueError if empty."""

def max(x: npt.NDArray[np.float32] | npt.NDArray[np.float64]) -> float:
    """Largest element; nan if any is nan; ValueError if empty."""

def argmin(x: npt.NDArray[np.float32] | npt.NDArray[np.float64]) -> int:
    """Flat index of the first minimum (or first nan); ValueError if empty."""

def argmax(x: npt.NDArray[np.float32] | npt.NDArray[np.float64]) -> int:
    """Flat index of the first maximum (or first nan); ValueError if empty."""

def mean(x: npt.NDArray[np.float32] | npt.NDArray[np.float64]) -> float:
    """Arithmetic mean (nan if empty)."""

def var(x: npt.NDArray[np.float32] | npt.NDArray[np.float64], ddof: int = 0) -> float:
    """Variance with divisor n - ddof (numerically stable two-pass)."""

def std(x: npt.NDArray[np.float32] | npt.NDArray[np.float64], ddof: int = 0) -> float:
    """Standard deviation, sqrt(var(x, ddof))."""

def softmax(
    x: npt.NDArray[_F], axis: int = -1, out: npt.NDArray[_F] | None = None
) -> npt.NDArray[_F]:
    """Numerically stable softmax along axis."""

def log_softmax(
    x: npt.NDArray[_F], axis: int = -1, out: npt.NDArray[_F] | None = None
) -> npt.NDArray[_F]:
    """x - logsumexp(x) along axis."""

def layer_norm(
    x: npt.NDArray[_F],
    weight: npt.NDArray[_F] | None = None,
    bias: npt.NDArray[_F] | None = None,
    eps: float = 1e-5,
    out: npt.NDArray[_F] | None = None,
) -> npt.NDArray[_F]:
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis."""

def rms_norm(
    x: npt.NDArray[_F],
    weight: npt.NDArray[_F] | None = None,
    eps: float = 1e-6,
    out: npt.NDArray[_F] | None = None,
) -> npt.NDArray[_F]:
    """x / sqrt(mean(x**2) + eps) * weight over the last axis."""

def cosine_similarity(a: _F32, b: _F32) -> float | _F32:
    """Cosine similarity: (d,)x(d,) -> float, (d,)x(n,d) -> (n,), (m,d)x(n,d) -> (m,n)."""

def sqeuclidean(a: _F32, b: _F32) -> float | _F32:
    """Squared Euclidean distance, shapes as cosine_similarity."""

def top_k(
    query: _F32, matrix: _F32, k: int, metric: Literal["cosine", "dot", "sqeuclidean"] = "cosine"
) -> tuple[npt.NDArray[np.int64], _F32]:
    """The k best rows of matrix (n, d) per query, best first: (indices, scores)."""

def matmul(
    a: npt.NDArray[_F],
    b: npt.NDArray[_F],
    out: npt.NDArray[_F] | None = None,
    threads: int = 1,
    precision: str = "f32",
) -> npt.NDArray[_F]:
    """a @ b; precision "bf16" or "int8" (float32 operands) opts into trueno::lowp."""

def _lowp_path(precision: str) -> str:
    """The kernel matmul(precision=...) runs here: "amx_bf16"/"amx_int8",
    "avx512_bf16"/"avx512_vnni", or "reference" without the instructions."""

def _lowp_peak(precision: str) -> float | None:
    """Probed AMX tile-product peak (ops/s, one core) of that kernel; None off AMX."""

def _set_amx(allowed: bool) -> bool:
    """Allow or forbid the AMX kernels (TRUENO_AMX); returns the previous setting."""

class PoolBuffer:
    """The base of an allocating call's result of at least 4 MiB: owns a pooled
    buffer and returns it to trueno's pool when the array and its views die."""
    @property
    def capacity(self) -> int: ...

def _pool_stats() -> dict[str, int]:
    """Counters and bounds of the output buffer pool (introspection, not a stable API):
    idle_buffers, idle_bytes, hits, misses, evictions, max_buffers, max_bytes, min_bytes."""

def _pool_set_limits(max_buffers: int, max_bytes: int) -> tuple[int, int]:
    """Replace the pool's bounds (0 turns pooling off); returns the old ones."""

def gemv(a: npt.NDArray[_F], x: npt.NDArray[_F]) -> npt.NDArray[_F]: ...
def _machine_json(refresh: bool = False, probe: bool = True) -> tuple[str, str]:
    """(machine JSON, where its probe came from); see trueno.machine()."""

def _gemm_blocking(dtype: str) -> tuple[int, int, int, int, int]:
    """(MR, NR, KC, MC, NC) matmul uses for dtype on the active backend."""
