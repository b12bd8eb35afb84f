"""realizar.TabularModel against scikit-learn on its bundled datasets.

Every supported estimator is fitted on iris, wine, breast_cancer or diabetes, exported
with `realizar.export_sklearn`, loaded back in Rust and compared with scikit-learn's own
predict / predict_proba. Tree ensembles replay scikit-learn's arithmetic (float32 inputs,
float64 thresholds and sums); linear models and MLPs run on trueno's float32 kernels.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
from sklearn import datasets
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import realizar

TOL = 1e-5


def _data(name: str, scale: bool) -> tuple[np.ndarray, np.ndarray]:
    loader = {
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "breast_cancer": datasets.load_breast_cancer,
        "diabetes": datasets.load_diabetes,
    }[name]
    x, y = loader(return_X_y=True)
    if scale:
        # Linear models and MLPs are fitted on standardised features, as they are in practice.
        x = StandardScaler().fit_transform(x)
    return np.ascontiguousarray(x, dtype=np.float64), y


def _roundtrip(est: Any, tmp_path: Path) -> Any:
    path = tmp_path / "model.safetensors"
    realizar.export_sklearn(est, path)
    return realizar.TabularModel.load(path)


CLASSIFIERS = [
    ("logreg-binary", lambda: LogisticRegression(max_iter=5000), "breast_cancer", True),
    ("logreg-multinomial", lambda: LogisticRegression(max_iter=5000), "iris", True),
    ("logreg-multinomial-wine", lambda: LogisticRegression(max_iter=5000, C=0.5), "wine", True),
    (
        "mlp-binary",
        lambda: MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0),
        "breast_cancer",
        True,
    ),
    (
        "mlp-multiclass-tanh",
        lambda: MLPClassifier(
            hidden_layer_sizes=(12, 8), activation="tanh", max_iter=400, random_state=0
        ),
        "wine",
        True,
    ),
    (
        "mlp-logistic",
        lambda: MLPClassifier(
            hidden_layer_sizes=(10,), activation="logistic", max_iter=400, random_state=0
        ),
        "iris",
        True,
    ),
    ("tree-multiclass", lambda: DecisionTreeClassifier(random_state=0), "iris", False),
    (
        "tree-binary-shallow",
        lambda: DecisionTreeClassifier(max_depth=3, random_state=0),
        "breast_cancer",
        False,
    ),
    (
        "forest-binary",
        lambda: RandomForestClassifier(n_estimators=50, random_state=0),
        "breast_cancer",
        False,
    ),
    (
        "forest-multiclass",
        lambda: RandomForestClassifier(n_estimators=30, max_depth=4, random_state=0),
        "wine",
        False,
    ),
    (
        "gb-binary",
        lambda: GradientBoostingClassifier(n_estimators=40, random_state=0),
        "breast_cancer",
        False,
    ),
    (
        "gb-multiclass",
        lambda: GradientBoostingClassifier(n_estimators=30, random_state=0),
        "iris",
        False,
    ),
    (
        "gb-exponential",
        lambda: GradientBoostingClassifier(loss="exponential", n_estimators=30, random_state=0),
        "breast_cancer",
        False,
    ),
    (
        "gb-zero-init",
        lambda: GradientBoostingClassifier(init="zero", n_estimators=20, random_state=0),
        "wine",
        False,
    ),
]


@pytest.mark.parametrize(
    ("make", "dataset", "scale"), [c[1:] for c in CLASSIFIERS], ids=[c[0] for c in CLASSIFIERS]
)
def test_classifier_matches_sklearn(make: Any, dataset: str, scale: bool, tmp_path: Path) -> None:
    x, y = _data(dataset, scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLP convergence warnings are irrelevant here
        est = make().fit(x, y)
    model = _roundtrip(est, tmp_path)
    assert model.is_classifier
    assert model.n_features == x.shape[1]
    np.testing.assert_array_equal(model.classes, est.classes_)
    want = est.predict_proba(x)
    got = model.predict_proba(x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    # Labels must agree except where scikit-learn's own top two probabilities tie
    # within the tolerance, where float32 rounding may legitimately pick the other one.
    top2 = np.sort(want, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * TOL
    pred = model.predict(x)
    assert pred.dtype == est.predict(x).dtype
    np.testing.assert_array_equal(pred[clear], est.predict(x)[clear])
    assert clear.mean() > 0.95


REGRESSORS = [
    ("linear", LinearRegression, "diabetes", False),
    (
        "mlp",
        lambda: MLPRegressor(hidden_layer_sizes=(32,), max_iter=500, random_state=0),
        "diabetes",
        True,
    ),
    ("tree", lambda: DecisionTreeRegressor(max_depth=6, random_state=0), "diabetes", False),
    ("forest", lambda: RandomForestRegressor(n_estimators=40, random_state=0), "diabetes", False),
    ("gb", lambda: GradientBoostingRegressor(n_estimators=60, random_state=0), "diabetes", False),
    (
        "gb-huber",
        lambda: GradientBoostingRegressor(loss="huber", n_estimators=30, random_state=0),
        "diabetes",
        False,
    ),
]


@pytest.mark.parametrize(
    ("make", "dataset", "scale"), [r[1:] for r in REGRESSORS], ids=[r[0] for r in REGRESSORS]
)
def test_regressor_matches_sklearn(make: Any, dataset: str, scale: bool, tmp_path: Path) -> None:
    x, y = _data(dataset, scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make().fit(x, y)
    model = _roundtrip(est, tmp_path)
    assert not model.is_classifier
    assert model.classes is None
    got = model.predict(x)
    want = est.predict(x)
    assert got.shape == want.shape
    # Targets are in the hundreds: compare relative to their magnitude.
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)


def test_multi_output_linear_regression(tmp_path: Path) -> None:
    x, y = _data("diabetes", False)
    y2 = np.column_stack([y, -2 * y + 3])
    est = LinearRegression().fit(x, y2)
    got = _roundtrip(est, tmp_path).predict(x)
    assert got.shape == (len(x), 2)
    np.testing.assert_allclose(got, est.predict(x), rtol=TOL, atol=TOL)


def test_float32_input_and_string_labels(tmp_path: Path) -> None:
    x, y = _data("iris", False)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    est = RandomForestClassifier(n_estimators=20, random_state=1).fit(x, names)
    model = _roundtrip(est, tmp_path)
    x32 = x.astype(np.float32)
    np.testing.assert_array_equal(model.predict(x32), est.predict(x32))
    np.testing.assert_allclose(model.predict_proba(x32), est.predict_proba(x32), atol=TOL)
    assert list(model.classes) == ["setosa", "versicolor", "virginica"]


def test_non_contiguous_input(tmp_path: Path) -> None:
    x, y = _data("wine", False)
    est = DecisionTreeClassifier(random_state=0).fit(x, y)
    model = _roundtrip(est, tmp_path)
    wide = np.asfortranarray(x)
    np.testing.assert_array_equal(model.predict(wide), est.predict(x))


def test_file_metadata_is_documented_json(tmp_path: Path) -> None:
    x, y = _data("iris", False)
    est = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(x, y)
    path = tmp_path / "gb.safetensors"
    realizar.export_sklearn(est, path)
    with safe_open(str(path), framework="numpy") as f:
        doc = json.loads(f.metadata()["realizar.tabular"])
        keys = set(f.keys())
    assert doc["format"] == "realizar.tabular"
    assert doc["format_version"] == 1
    assert doc["estimator"] == "GradientBoostingClassifier"
    assert doc["n_features"] == 4
    assert doc["classes"] == [0, 1, 2]
    assert doc["combine"] == "boost"
    assert len(doc["init"]) == 3
    assert {
        "tree.left",
        "tree.right",
        "tree.feature",
        "tree.threshold",
        "tree.value",
        "tree.roots",
    } <= keys


# --- errors ---------------------------------------------------------------


def test_wrong_feature_count_names_both_counts(tmp_path: Path) -> None:
    x, y = _data("iris", False)
    model = _roundtrip(LogisticRegression(max_iter=1000).fit(x, y), tmp_path)
    with pytest.raises(ValueError, match=r"X has 3 features.*expects 4 features"):
        model.predict(x[:, :3].copy())
    with pytest.raises(ValueError, match=r"X has 5 features.*expects 4 features"):
        model.predict_proba(np.ones((2, 5)))


def test_bad_input_types(tmp_path: Path) -> None:
    x, y = _data("iris", False)
    model = _roundtrip(DecisionTreeClassifier().fit(x, y), tmp_path)
    with pytest.raises(ValueError, match="2-D"):
        model.predict(x[0])
    with pytest.raises(TypeError, match="float64 or float32"):
        model.predict(x.astype(np.int64))
    with pytest.raises(TypeError):
        model.predict([[1.0, 2.0, 3.0, 4.0]])
    with pytest.raises(ValueError, match="finite"):
        model.predict(np.array([[1.0, np.nan, 3.0, 4.0]]))


def test_empty_batch(tmp_path: Path) -> None:
    x, y = _data("iris", False)
    model = _roundtrip(LogisticRegression(max_iter=1000).fit(x, y), tmp_path)
    assert model.predict(np.empty((0, 4))).shape == (0,)
    assert model.predict_proba(np.empty((0, 4))).shape == (0, 3)


def test_regressor_has_no_predict_proba(tmp_path: Path) -> None:
    x, y = _data("diabetes", False)
    model = _roundtrip(LinearRegression().fit(x, y), tmp_path)
    with pytest.raises(ValueError, match="regressor"):
        model.predict_proba(x)


def test_unsupported_estimator_is_type_error(tmp_path: Path) -> None:
    x, y = _data("iris", False)
    with pytest.raises(TypeError, match="SVC"):
        realizar.export_sklearn(SVC().fit(x, y), tmp_path / "m.safetensors")
    with pytest.raises(TypeError, match="str"):
        realizar.export_sklearn("not a model", tmp_path / "m.safetensors")


def test_unfitted_estimator_is_value_error(tmp_path: Path) -> None:
    for est in (
        LogisticRegression(),
        RandomForestRegressor(),
        MLPClassifier(),
        GradientBoostingClassifier(),
    ):
        with pytest.raises(ValueError, match="not fitted"):
            realizar.export_sklearn(est, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


def test_multi_output_tree_is_type_error(tmp_path: Path) -> None:
    x, y = _data("diabetes", False)
    est = DecisionTreeRegressor(max_depth=3).fit(x, np.column_stack([y, y]))
    with pytest.raises(TypeError, match="multi-output"):
        realizar.export_sklearn(est, tmp_path / "m.safetensors")


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="cannot read"):
        realizar.TabularModel.load(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(ValueError, match=r"realizar\.tabular"):
        realizar.TabularModel.load(junk)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not safetensors at all")
    with pytest.raises(ValueError, match="safetensors"):
        realizar.TabularModel.load(garbage)


def test_corrupt_tree_is_rejected(tmp_path: Path) -> None:
    x, y = _data("iris", False)
    path = tmp_path / "t.safetensors"
    realizar.export_sklearn(DecisionTreeClassifier(random_state=0).fit(x, y), path)
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    # A child pointing back at the root would make the walk loop forever.
    tensors["tree.left"][1] = 0
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match="child"):
        realizar.TabularModel.load(tmp_path / "bad.safetensors")
    newer = dict(meta)
    doc = json.loads(newer["realizar.tabular"])
    doc["format_version"] = 99
    newer["realizar.tabular"] = json.dumps(doc)
    save_file(load_file(str(path)), str(tmp_path / "v99.safetensors"), metadata=newer)
    with pytest.raises(ValueError, match="format_version 99"):
        realizar.TabularModel.load(tmp_path / "v99.safetensors")
