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
# C-contiguous. Functions typed with _F accept float32 or float64 (both
# operands the same); the others are float32 only.
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

def scale(x: _F32, alpha: float, out: _F32 | None = None) -> _F32:
    """alpha * x."""

def axpy(alpha: float, x: _F32, y: _F32) -> None:
    """y += alpha * x, in place (y C-contiguous and writeable)."""

def fma(a: _F32, b: _F32, c: _F32, out: _F32 | None = None) -> _F32:
    """a * b + c with a single rounding."""

def relu(x: _F32, out: _F32 | None = None) -> _F32:
    """max(x, 0); nan propagates."""

def sigmoid(x: _F32, out: _F32 | None = None) -> _F32:
    """1 / (1 + exp(-x)), accurate for large |x|."""

def tanh(x: _F32, out: _F32 | None = None) -> _F32:
    """Hyperbolic tangent."""

def gelu(x: _F32, approximate: Literal["tanh", "none"] = "tanh", out: _F32 | None = None) -> _F32:
    """GELU: tanh approximation, or the exact erf form with approximate="none"."""

def exp(x: _F32, out: _F32 | None = None) -> _F32:
    """e**x within 2 ulp."""

def log(x: _F32, out: _F32 | None = None) -> _F32:
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

def softmax(x: _F32, axis: int = -1, out: _F32 | None = None) -> _F32:
    """Numerically stable softmax along axis."""

def log_softmax(x: _F32, axis: int = -1, out: _F32 | None = None) -> _F32:
    """x - logsumexp(x) along axis."""

def layer_norm(
    x: _F32,
    weight: _F32 | None = None,
    bias: _F32 | None = None,
    eps: float = 1e-5,
    out: _F32 | None = None,
) -> _F32:
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis."""

def rms_norm(
    x: _F32, weight: _F32 | None = None, eps: float = 1e-6, out: _F32 | None = None
) -> _F32:
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
    a: npt.NDArray[_F], b: npt.NDArray[_F], out: npt.NDArray[_F] | None = None, threads: int = 1
) -> npt.NDArray[_F]: ...
def gemv(a: npt.NDArray[_F], x: npt.NDArray[_F]) -> npt.NDArray[_F]: ...
