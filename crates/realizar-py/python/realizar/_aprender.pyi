# Stubs of the extension submodule `realizar._realizar.aprender`
# (crates/realizar-py/src/aprender.rs), wrapped by realizar/aprender.py. There is no
# realizar/_aprender.py: at run time the module is the attribute `aprender` of the
# extension (see `aprender` in _realizar.pyi).
from typing import Any

import numpy as np
from numpy.typing import NDArray

class AprenderModel:
    """A model fitted by the aprender crate."""

    def predict(self, x: NDArray[np.float64]) -> NDArray[Any]: ...
    def predict_proba(self, x: NDArray[np.float64]) -> NDArray[np.float64]: ...
    def decision_function(self, x: NDArray[np.float64]) -> NDArray[np.float64]: ...
    def save(self, path: str) -> None: ...
    def attributes(self) -> dict[str, Any]: ...

def fit_linear(
    x: NDArray[np.float64], y: NDArray[np.float64], alpha: float | None, fit_intercept: bool
) -> AprenderModel: ...
def fit_logistic(
    x: NDArray[np.float64],
    y: NDArray[np.int64],
    c: float,
    fit_intercept: bool,
    max_iter: int,
    tol: float,
) -> AprenderModel: ...
def fit_tree(
    x: NDArray[np.float64],
    y: NDArray[Any],
    classifier: bool,
    criterion: str,
    max_depth: int | None,
    min_samples_split: int,
    min_samples_leaf: int,
    max_features: int | float | str | None,
    seed: int,
) -> AprenderModel: ...
def fit_forest(
    x: NDArray[np.float64],
    y: NDArray[Any],
    classifier: bool,
    n_estimators: int,
    criterion: str,
    max_depth: int | None,
    min_samples_split: int,
    min_samples_leaf: int,
    max_features: int | float | str | None,
    bootstrap: bool,
    seed: int,
    n_jobs: int,
) -> AprenderModel: ...
def fit_kmeans(
    x: NDArray[np.float64], n_clusters: int, n_init: int, max_iter: int, tol: float, seed: int
) -> AprenderModel: ...
def fit_scaler(x: NDArray[np.float64]) -> AprenderModel: ...
def split_indices(
    n: int, test_size: float | int, seed: int, stratify: NDArray[np.int64] | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64]]: ...
def accuracy_score(y_true: NDArray[np.int64], y_pred: NDArray[np.int64]) -> float: ...
def precision_recall_f1(
    y_true: NDArray[np.int64], y_pred: NDArray[np.int64], average: str, pos_label: int
) -> tuple[float, float, float]: ...
def roc_auc_score(y_true: NDArray[np.int64], y_score: NDArray[np.float64]) -> float: ...
def log_loss(
    y_true: NDArray[np.int64],
    y_proba: NDArray[np.float64],
    labels: NDArray[np.int64] | None = None,
) -> float: ...
def confusion_matrix(
    y_true: NDArray[np.int64],
    y_pred: NDArray[np.int64],
    labels: NDArray[np.int64] | None = None,
) -> NDArray[np.int64]: ...
def mean_squared_error(y_true: NDArray[np.float64], y_pred: NDArray[np.float64]) -> float: ...
def r2_score(y_true: NDArray[np.float64], y_pred: NDArray[np.float64]) -> float: ...
