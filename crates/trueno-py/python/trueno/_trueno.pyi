import numpy as np
import numpy.typing as npt

__source_hash__: str

def dot(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float: ...
