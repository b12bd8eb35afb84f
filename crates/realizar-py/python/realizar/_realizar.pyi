from os import PathLike
from typing import Any

import numpy as np
import numpy.typing as npt

__source_hash__: str

class TabularModel:
    """A scikit-learn model exported by `realizar.export_sklearn`, run in Rust."""

    @staticmethod
    def load(path: str | PathLike[str]) -> TabularModel: ...
    def predict(self, x: npt.NDArray[np.float64] | npt.NDArray[np.float32]) -> npt.NDArray[Any]: ...
    def predict_proba(
        self, x: npt.NDArray[np.float64] | npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float64]: ...
    @property
    def n_features(self) -> int: ...
    @property
    def estimator(self) -> str: ...
    @property
    def classes(self) -> npt.NDArray[Any] | None: ...
    @property
    def is_classifier(self) -> bool: ...

def serve(
    model: str | PathLike[str],
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    name: str | None = None,
    max_batch: int = 4096,
    max_body_bytes: int = 8388608,
    timeout_secs: float = 30.0,
    threads: int = 0,
) -> None:
    """Serve a model over HTTP until SIGINT/SIGTERM (blocks, GIL released)."""
