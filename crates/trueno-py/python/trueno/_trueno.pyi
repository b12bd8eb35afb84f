from typing import TypeVar

import numpy as np
import numpy.typing as npt

__source_hash__: str

def dot(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float: ...

# Linear algebra (crates/trueno/src/matmul.rs). Both operands share one dtype.
_F = TypeVar("_F", np.float32, np.float64)

def matmul(
    a: npt.NDArray[_F], b: npt.NDArray[_F], out: npt.NDArray[_F] | None = None, threads: int = 1
) -> npt.NDArray[_F]: ...
def gemv(a: npt.NDArray[_F], x: npt.NDArray[_F]) -> npt.NDArray[_F]: ...
