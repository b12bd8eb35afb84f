"""scikit-learn-shaped estimators over the aprender crate (training in Rust, GIL released).

Each class keeps its hyper-parameters like scikit-learn (same names and defaults where
aprender has the parameter), converts input to contiguous float64 / int64 arrays, and
calls ``realizar._realizar.aprender``: the algorithms and their checks live in
``crates/aprender``. ``save(path)`` writes realizar's tabular format, so
``realizar serve --model path`` serves the model and ``realizar.TabularModel.load``
predicts with it.

Classifier labels must be integers (or booleans); ``random_state`` seeds aprender's own
generator, so it does not reproduce scikit-learn's draws.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from realizar._realizar import aprender as _aprender

_ap = _aprender


def _x(x: Any) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got an array of shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"X must be numeric, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float64)


def _labels(y: Any) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"y must be 1-D, got an array of shape {a.shape}")
    if a.dtype.kind == "f" and a.size and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        a = a.astype(np.int64)
    if a.dtype.kind not in "biu":
        raise TypeError(f"class labels must be integers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _values(y: Any) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"y must be 1-D, got an array of shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"y must be numeric, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float64)


def _seed(random_state: int | None) -> int:
    if random_state is None:
        return int(np.random.default_rng().integers(2**63))
    if not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise ValueError(f"random_state must be None or an int >= 0, got {random_state!r}")
    return int(random_state)


class _Estimator:
    _model: Any = None

    def _fitted(self) -> Any:
        if self._model is None:
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit first")
        return self._model

    def _set(self, model: Any) -> None:
        self._model = model
        for k, v in model.attributes().items():
            setattr(self, k, v)

    def predict(self, x: Any) -> np.ndarray:
        return self._fitted().predict(_x(x))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model in realizar's tabular format (``realizar serve`` loads it)."""
        self._fitted().save(os.fspath(path))


class _Classifier(_Estimator):
    def predict_proba(self, x: Any) -> np.ndarray:
        return self._fitted().predict_proba(_x(x))

    def score(self, x: Any, y: Any) -> float:
        return accuracy_score(_labels(y), self.predict(x))


class _Regressor(_Estimator):
    def score(self, x: Any, y: Any) -> float:
        return r2_score(_values(y), self.predict(x))


class LinearRegression(_Regressor):
    """Least squares by a Cholesky solve of the Gram matrix."""

    coef_: np.ndarray
    intercept_: float

    def __init__(self, *, fit_intercept: bool = True) -> None:
        self.fit_intercept = fit_intercept

    def fit(self, x: Any, y: Any) -> LinearRegression:
        self._set(_ap.fit_linear(_x(x), _values(y), None, self.fit_intercept))
        return self


class Ridge(_Regressor):
    """``||y - Xw - b||^2 + alpha ||w||^2``, scikit-learn's ``Ridge(alpha)`` objective."""

    coef_: np.ndarray
    intercept_: float

    def __init__(self, alpha: float = 1.0, *, fit_intercept: bool = True) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept

    def fit(self, x: Any, y: Any) -> Ridge:
        self._set(_ap.fit_linear(_x(x), _values(y), float(self.alpha), self.fit_intercept))
        return self


class LogisticRegression(_Classifier):
    """L2 logistic regression (binary, or multinomial for 3+ classes) by L-BFGS."""

    coef_: np.ndarray
    intercept_: np.ndarray
    classes_: np.ndarray
    n_iter_: int

    def __init__(
        self,
        C: float = 1.0,  # noqa: N803 (scikit-learn's parameter name)
        *,
        fit_intercept: bool = True,
        max_iter: int = 100,
        tol: float = 1e-4,
    ) -> None:
        self.C = C
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, x: Any, y: Any) -> LogisticRegression:
        self._set(
            _ap.fit_logistic(
                _x(x),
                _labels(y),
                float(self.C),
                self.fit_intercept,
                int(self.max_iter),
                float(self.tol),
            )
        )
        return self

    def decision_function(self, x: Any) -> np.ndarray:
        s = self._fitted().decision_function(_x(x))
        return s[:, 0] if s.shape[1] == 1 else s


class _Tree:
    def __init__(
        self,
        *,
        criterion: str,
        max_depth: int | None = None,
        min_samples_split: int = 2,
        min_samples_leaf: int = 1,
        max_features: int | float | str | None = None,
        random_state: int | None = None,
    ) -> None:
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.random_state = random_state

    def _fit_tree(self, x: Any, y: np.ndarray, classifier: bool) -> Any:
        return _ap.fit_tree(
            _x(x),
            y,
            classifier,
            self.criterion,
            self.max_depth,
            self.min_samples_split,
            self.min_samples_leaf,
            self.max_features,
            _seed(self.random_state),
        )


class DecisionTreeClassifier(_Tree, _Classifier):
    """CART classification tree (gini or entropy)."""

    feature_importances_: np.ndarray
    classes_: np.ndarray
    node_count: int
    depth: int
    n_leaves: int

    def __init__(self, criterion: str = "gini", **kwargs: Any) -> None:
        super().__init__(criterion=criterion, **kwargs)

    def fit(self, x: Any, y: Any) -> DecisionTreeClassifier:
        self._set(self._fit_tree(x, _labels(y), True))
        return self


class DecisionTreeRegressor(_Tree, _Regressor):
    """CART regression tree (squared error)."""

    feature_importances_: np.ndarray
    node_count: int
    depth: int
    n_leaves: int

    def __init__(self, criterion: str = "squared_error", **kwargs: Any) -> None:
        super().__init__(criterion=criterion, **kwargs)

    def fit(self, x: Any, y: Any) -> DecisionTreeRegressor:
        self._set(self._fit_tree(x, _values(y), False))
        return self


class _Forest(_Tree):
    def __init__(
        self,
        n_estimators: int = 100,
        *,
        bootstrap: bool = True,
        n_jobs: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.n_estimators = n_estimators
        self.bootstrap = bootstrap
        self.n_jobs = n_jobs

    def _fit_forest(self, x: Any, y: np.ndarray, classifier: bool) -> Any:
        jobs = self.n_jobs or 1
        if jobs < 0:
            jobs = os.cpu_count() or 1
        return _ap.fit_forest(
            _x(x),
            y,
            classifier,
            int(self.n_estimators),
            self.criterion,
            self.max_depth,
            self.min_samples_split,
            self.min_samples_leaf,
            self.max_features,
            self.bootstrap,
            _seed(self.random_state),
            jobs,
        )


class RandomForestClassifier(_Forest, _Classifier):
    """Bagged CART classifiers with ``max_features="sqrt"`` feature subsets."""

    feature_importances_: np.ndarray
    classes_: np.ndarray

    def __init__(
        self,
        n_estimators: int = 100,
        *,
        criterion: str = "gini",
        max_features: int | float | str | None = "sqrt",
        **kwargs: Any,
    ) -> None:
        super().__init__(n_estimators, criterion=criterion, max_features=max_features, **kwargs)

    def fit(self, x: Any, y: Any) -> RandomForestClassifier:
        self._set(self._fit_forest(x, _labels(y), True))
        return self


class RandomForestRegressor(_Forest, _Regressor):
    """Bagged CART regressors (all features per split, scikit-learn's default)."""

    feature_importances_: np.ndarray

    def __init__(
        self,
        n_estimators: int = 100,
        *,
        criterion: str = "squared_error",
        max_features: int | float | str | None = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(n_estimators, criterion=criterion, max_features=max_features, **kwargs)

    def fit(self, x: Any, y: Any) -> RandomForestRegressor:
        self._set(self._fit_forest(x, _values(y), False))
        return self


class KMeans(_Estimator):
    """k-means++ seeding and Lloyd iterations, best of ``n_init`` runs."""

    cluster_centers_: np.ndarray
    labels_: np.ndarray
    inertia_: float
    n_iter_: int

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        n_init: int = 1,
        max_iter: int = 300,
        tol: float = 1e-4,
        random_state: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, x: Any, y: Any = None) -> KMeans:
        counts = {k: getattr(self, k) for k in ("n_clusters", "n_init", "max_iter")}
        for name, v in counts.items():
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name} must be an int, got {v!r}")
            if v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v}")
        self._set(
            _ap.fit_kmeans(
                _x(x),
                int(self.n_clusters),
                int(self.n_init),
                int(self.max_iter),
                float(self.tol),
                _seed(self.random_state),
            )
        )
        return self


class StandardScaler:
    """Centre each column and divide by its population standard deviation."""

    mean_: np.ndarray
    scale_: np.ndarray
    var_: np.ndarray

    def fit(self, x: Any, y: Any = None) -> StandardScaler:
        self._model = _ap.fit_scaler(_x(x))
        for k, v in self._model.attributes().items():
            setattr(self, k, v)
        return self

    def transform(self, x: Any) -> np.ndarray:
        return self._model.predict(_x(x))

    def fit_transform(self, x: Any, y: Any = None) -> np.ndarray:
        return self.fit(x).transform(x)

    def inverse_transform(self, x: Any) -> np.ndarray:
        return self._model.decision_function(_x(x))


def train_test_split(
    *arrays: Any,
    test_size: float | int = 0.25,
    random_state: int | None = None,
    stratify: Any = None,
) -> list[Any]:
    """Seeded shuffled split of every array by rows: ``[a_train, a_test, b_train, ...]``."""
    if not arrays:
        raise ValueError("at least one array is required")
    arrs = [np.asarray(a) for a in arrays]
    n = len(arrs[0])
    if any(len(a) != n for a in arrs):
        raise ValueError(f"arrays have different lengths: {[len(a) for a in arrs]}")
    strat = None if stratify is None else _labels(stratify)
    train, test = _ap.split_indices(n, test_size, _seed(random_state), strat)
    out: list[Any] = []
    for a in arrs:
        out += [a[train], a[test]]
    return out


def accuracy_score(y_true: Any, y_pred: Any) -> float:
    return _ap.accuracy_score(_labels(y_true), _labels(y_pred))


def _prf(y_true: Any, y_pred: Any, average: str, pos_label: int) -> tuple[float, float, float]:
    return _ap.precision_recall_f1(_labels(y_true), _labels(y_pred), average, int(pos_label))


def precision_score(
    y_true: Any, y_pred: Any, *, average: str = "binary", pos_label: int = 1
) -> float:
    return _prf(y_true, y_pred, average, pos_label)[0]


def recall_score(y_true: Any, y_pred: Any, *, average: str = "binary", pos_label: int = 1) -> float:
    return _prf(y_true, y_pred, average, pos_label)[1]


def f1_score(y_true: Any, y_pred: Any, *, average: str = "binary", pos_label: int = 1) -> float:
    return _prf(y_true, y_pred, average, pos_label)[2]


def roc_auc_score(y_true: Any, y_score: Any) -> float:
    return _ap.roc_auc_score(_labels(y_true), _values(y_score))


def log_loss(y_true: Any, y_proba: Any, *, labels: Any = None) -> float:
    p = np.ascontiguousarray(np.asarray(y_proba, dtype=np.float64).ravel())
    lab = None if labels is None else _labels(labels)
    return _ap.log_loss(_labels(y_true), p, lab)


def confusion_matrix(y_true: Any, y_pred: Any, *, labels: Any = None) -> np.ndarray:
    lab = None if labels is None else _labels(labels)
    return _ap.confusion_matrix(_labels(y_true), _labels(y_pred), lab)


def mean_squared_error(y_true: Any, y_pred: Any) -> float:
    return _ap.mean_squared_error(_values(y_true), _values(y_pred))


def r2_score(y_true: Any, y_pred: Any) -> float:
    return _ap.r2_score(_values(y_true), _values(y_pred))


__all__ = [
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "KMeans",
    "LinearRegression",
    "LogisticRegression",
    "RandomForestClassifier",
    "RandomForestRegressor",
    "Ridge",
    "StandardScaler",
    "accuracy_score",
    "confusion_matrix",
    "f1_score",
    "log_loss",
    "mean_squared_error",
    "precision_score",
    "r2_score",
    "recall_score",
    "roc_auc_score",
    "train_test_split",
]
