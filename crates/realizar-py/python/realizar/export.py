"""Export fitted scikit-learn estimators to realizar's tabular model format.

The file is one safetensors file: the estimator's arrays as tensors, and a JSON document
under the safetensors metadata key ``realizar.tabular`` that says how to read them
(``docs/realizar-format.md`` specifies every field). ``realizar.TabularModel.load`` reads
it back in Rust and predicts without Python, NumPy or scikit-learn.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import sklearn.ensemble
import sklearn.linear_model
import sklearn.neural_network
import sklearn.tree
from safetensors.numpy import save_file
from sklearn import __version__ as sklearn_version
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

FORMAT_NAME = "realizar.tabular"
FORMAT_VERSION = 1
METADATA_KEY = "realizar.tabular"

SUPPORTED = (
    "LinearRegression",
    "LogisticRegression",
    "MLPClassifier",
    "MLPRegressor",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "RandomForestClassifier",
    "RandomForestRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
)

Tensors = dict[str, np.ndarray]


def _f64(a: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64))


def _i64(a: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.int64))


def _classes(estimator: Any) -> list[Any]:
    classes = np.asarray(estimator.classes_)
    if classes.ndim != 1:
        name = type(estimator).__name__
        raise TypeError(f"{name} fitted on several outputs (multi-output) is not supported")
    return classes.tolist()


def _linear_regression(est: Any) -> tuple[dict[str, Any], Tensors]:
    coef = np.atleast_2d(_f64(est.coef_))
    intercept = np.broadcast_to(_f64(est.intercept_), (coef.shape[0],))
    meta = {
        "task": "regression",
        "n_outputs": coef.shape[0],
        "kind": "linear",
        "output": "identity",
    }
    return meta, {"coef": coef, "intercept": _f64(intercept)}


def _logistic_regression(est: Any) -> tuple[dict[str, Any], Tensors]:
    classes = _classes(est)
    coef = np.atleast_2d(_f64(est.coef_))
    intercept = _f64(np.atleast_1d(est.intercept_))
    if len(classes) == 2:
        output = "logistic"
    elif getattr(est, "multi_class", None) == "ovr" or getattr(est, "solver", None) == "liblinear":
        output = "ovr"
    else:
        output = "softmax"
    meta = {"task": "classification", "classes": classes, "kind": "linear", "output": output}
    return meta, {"coef": coef, "intercept": intercept}


def _mlp(est: Any, classifier: bool) -> tuple[dict[str, Any], Tensors]:
    tensors: Tensors = {}
    for i, (w, b) in enumerate(zip(est.coefs_, est.intercepts_, strict=True)):
        # scikit-learn keeps (in, out); the file keeps (out, in) so each output is one row.
        tensors[f"layers.{i}.weight"] = _f64(np.asarray(w).T)
        tensors[f"layers.{i}.bias"] = _f64(b)
    meta: dict[str, Any] = {
        "kind": "mlp",
        "activation": est.activation,
        "n_layers": len(est.coefs_),
    }
    if classifier:
        classes = _classes(est)
        out = est.out_activation_
        if out == "logistic" and len(classes) == 2 and est.n_outputs_ == 1:
            output = "logistic"
        elif out == "softmax":
            output = "softmax"
        else:
            raise TypeError("MLPClassifier fitted for multi-label output is not supported")
        meta.update(task="classification", classes=classes, output=output)
    else:
        if est.out_activation_ != "identity":
            raise TypeError(
                f"MLPRegressor with output activation {est.out_activation_!r} "
                f"(loss={est.loss!r}) is not supported"
            )
        meta.update(task="regression", n_outputs=int(est.n_outputs_), output="identity")
    return meta, tensors


class _TreePack:
    """Concatenates scikit-learn `Tree` objects into one set of flat node arrays."""

    def __init__(self) -> None:
        self.left: list[np.ndarray] = []
        self.right: list[np.ndarray] = []
        self.feature: list[np.ndarray] = []
        self.threshold: list[np.ndarray] = []
        self.value: list[np.ndarray] = []
        self.roots: list[int] = []
        self.columns: list[int] = []
        self.nodes = 0

    def add(self, tree: Any, column: int = 0) -> None:
        if tree.n_outputs != 1:
            raise TypeError("trees fitted on several outputs (multi-output) are not supported")
        n = int(tree.node_count)
        left = np.asarray(tree.children_left, dtype=np.int64)
        right = np.asarray(tree.children_right, dtype=np.int64)
        leaf = left < 0
        # Child indices become absolute in the packed arrays; leaves keep -1.
        self.left.append(np.where(leaf, -1, left + self.nodes))
        self.right.append(np.where(leaf, -1, right + self.nodes))
        self.feature.append(np.where(leaf, 0, np.asarray(tree.feature, dtype=np.int64)))
        self.threshold.append(np.where(leaf, 0.0, np.asarray(tree.threshold, dtype=np.float64)))
        self.value.append(np.asarray(tree.value, dtype=np.float64)[:, 0, :])
        self.roots.append(self.nodes)
        self.columns.append(column)
        self.nodes += n

    def tensors(self) -> Tensors:
        return {
            "tree.left": _i64(np.concatenate(self.left)),
            "tree.right": _i64(np.concatenate(self.right)),
            "tree.feature": _i64(np.concatenate(self.feature)),
            "tree.threshold": _f64(np.concatenate(self.threshold)),
            "tree.value": _f64(np.concatenate(self.value)),
            "tree.roots": _i64(self.roots),
            "tree.column": _i64(self.columns),
        }


def _forest(est: Any, trees: list[Any], classifier: bool) -> tuple[dict[str, Any], Tensors]:
    pack = _TreePack()
    for t in trees:
        pack.add(t.tree_)
    if classifier:
        classes = _classes(est)
        meta = {
            "task": "classification",
            "classes": classes,
            "output": "probability",
            "combine": "mean_normalized",
        }
    else:
        meta = {"task": "regression", "n_outputs": 1, "output": "identity", "combine": "mean"}
    meta["kind"] = "trees"
    return meta, pack.tensors()


def _gradient_boosting(est: Any, classifier: bool) -> tuple[dict[str, Any], Tensors]:
    init = est.init_
    if not (isinstance(init, str) and init == "zero") and not isinstance(
        init, DummyClassifier | DummyRegressor
    ):
        raise TypeError(
            f"{type(est).__name__} with init={type(init).__name__} is not supported: "
            "only the default (Dummy prior/mean) or 'zero' initial estimator is"
        )
    # The init estimator ignores X, so one row of zeros gives the constant raw score.
    raw_init = est._raw_predict_init(np.zeros((1, est.n_features_in_)))[0]
    pack = _TreePack()
    n_iter, k = est.estimators_.shape
    for i in range(n_iter):
        for c in range(k):
            pack.add(est.estimators_[i, c].tree_, column=c)
    meta: dict[str, Any] = {
        "kind": "trees",
        "combine": "boost",
        "learning_rate": float(est.learning_rate),
        "init": [float(v) for v in np.atleast_1d(raw_init)],
    }
    if classifier:
        classes = _classes(est)
        if len(classes) == 2:
            output = "exponential" if est.loss == "exponential" else "logistic"
        else:
            output = "softmax"
        meta.update(task="classification", classes=classes, output=output)
    else:
        meta.update(task="regression", n_outputs=1, output="identity")
    return meta, pack.tensors()


def _convert(est: Any, name: str) -> tuple[dict[str, Any], Tensors]:
    if name == "LinearRegression":
        return _linear_regression(est)
    if name == "LogisticRegression":
        return _logistic_regression(est)
    if name in ("MLPClassifier", "MLPRegressor"):
        return _mlp(est, classifier=name == "MLPClassifier")
    if name in ("DecisionTreeClassifier", "DecisionTreeRegressor"):
        return _forest(est, [est], classifier=name == "DecisionTreeClassifier")
    if name in ("RandomForestClassifier", "RandomForestRegressor"):
        return _forest(est, list(est.estimators_), classifier=name == "RandomForestClassifier")
    if name in ("GradientBoostingClassifier", "GradientBoostingRegressor"):
        return _gradient_boosting(est, classifier=name == "GradientBoostingClassifier")
    raise AssertionError(name)  # pragma: no cover - guarded by SUPPORTED


def _supported_name(estimator: Any) -> str:
    """The scikit-learn class an estimator is, or TypeError naming what it is."""
    modules = (sklearn.linear_model, sklearn.neural_network, sklearn.tree, sklearn.ensemble)
    for name in SUPPORTED:
        cls = next(getattr(m, name) for m in modules if hasattr(m, name))
        if type(estimator) is cls:
            return name
    shown = type(estimator).__qualname__
    raise TypeError(
        f"export_sklearn does not support {shown}; supported estimators: {', '.join(SUPPORTED)}"
    )


def export_sklearn(estimator: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted scikit-learn estimator to ``path`` in realizar's tabular format.

    Raises ``TypeError`` for an estimator type (or configuration) the format cannot hold,
    and ``ValueError`` for an estimator that has not been fitted.
    """
    name = _supported_name(estimator)
    try:
        check_is_fitted(estimator)
    except NotFittedError as e:
        raise ValueError(f"{name} is not fitted: call fit() before export_sklearn ({e})") from e
    meta, tensors = _convert(estimator, name)
    feature_names = getattr(estimator, "feature_names_in_", None)
    doc = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "estimator": name,
        "producer": f"realizar.export_sklearn (scikit-learn {sklearn_version})",
        "n_features": int(estimator.n_features_in_),
        "n_outputs": 1,
        "feature_names": None if feature_names is None else [str(f) for f in feature_names],
        "classes": [],
        **meta,
    }
    save_file(tensors, os.fspath(path), metadata={METADATA_KEY: json.dumps(doc)})
