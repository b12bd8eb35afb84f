"""trueno: SIMD kernels of the Sovereign AI Stack, called on NumPy arrays.

The numeric work happens in the Rust crate ``trueno``; this package is the thin
binding that checks dtypes and shapes, releases the GIL and returns NumPy values.
"""

from trueno._trueno import __source_hash__, dot
from trueno._trueno import gemv, matmul

__all__ = ["__source_hash__", "dot"]
__all__ += ["gemv", "matmul"]
