"""realizar.aprender (the aprender crate) against scikit-learn 1.9.1 on its bundled data.

Tolerances, stated once:
* convex models (LinearRegression, Ridge, LogisticRegression) at the same regularisation:
  coefficients within 1e-4 relative, with ``atol`` 1e-5 of the largest coefficient for
  entries near zero: logistic features are standardised and both solvers run to
  ``tol=1e-10``, yet on breast_cancer at C=10 scikit-learn's lbfgs stops at a largest
  gradient entry of 4.6e-9 (aprender's: 7.7e-10), which leaves a coefficient of 0.0033
  (1e-3 of the largest) 3e-6 apart;
* a single tree is compared prediction for prediction on a held-out split wherever
  scikit-learn itself is deterministic there (five ``random_state`` values give the same
  predictions, i.e. no exact ties between features); otherwise accuracy within 0.05;
* forests (different random streams): held-out accuracy at least scikit-learn's minus
  0.03, R^2 at least scikit-learn's minus 0.05;
* k-means: best inertia over ``n_init=10`` within 1 % of scikit-learn's best;
* metrics equal ``sklearn.metrics`` to 1e-12, including the edge cases.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import cluster, datasets, ensemble, linear_model, metrics, model_selection, tree
from sklearn.preprocessing import StandardScaler as SkScaler
from threadpoolctl import threadpool_limits

import realizar
from gil_probe import ticks_during
from realizar import aprender as ap

LOADERS = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
}


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "diabetes":
        x, y = datasets.load_diabetes(return_X_y=True)
    else:
        x, y = LOADERS[name](return_X_y=True)
    return np.asarray(x, dtype=np.float64), np.asarray(y)


def close_coef(got: np.ndarray, want: np.ndarray) -> None:
    scale = float(np.max(np.abs(want)))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale)


# ---------------------------------------------------------------- linear models


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_linear_regression_matches_sklearn(fit_intercept: bool) -> None:
    x, y = load("diabetes")
    ours = ap.LinearRegression(fit_intercept=fit_intercept).fit(x, y)
    ref = linear_model.LinearRegression(fit_intercept=fit_intercept).fit(x, y)
    close_coef(ours.coef_, ref.coef_)
    assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-4, abs=1e-9)
    np.testing.assert_allclose(ours.predict(x), ref.predict(x), rtol=1e-6)
    assert ours.score(x, y) == pytest.approx(ref.score(x, y), abs=1e-10)


@pytest.mark.parametrize("name", ["diabetes", "breast_cancer"])
@pytest.mark.parametrize("alpha", [0.01, 1.0, 100.0])
def test_ridge_matches_sklearn(name: str, alpha: float) -> None:
    x, y = load(name)
    y = y.astype(np.float64)
    ours = ap.Ridge(alpha).fit(x, y)
    # solver="cholesky": the same normal equations; scikit-learn's Ridge objective is
    # ||y - Xw||^2 + alpha ||w||^2, unscaled, like aprender's.
    ref = linear_model.Ridge(alpha=alpha, solver="cholesky").fit(x, y)
    close_coef(ours.coef_, ref.coef_)
    assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-4)


# ---------------------------------------------------------------- logistic regression


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
@pytest.mark.parametrize("c", [0.1, 1.0, 10.0])
def test_logistic_matches_sklearn_lbfgs(name: str, c: float) -> None:
    x, y = load(name)
    x = SkScaler().fit_transform(x)
    ours = ap.LogisticRegression(c, max_iter=10_000, tol=1e-10).fit(x, y)
    ref = linear_model.LogisticRegression(C=c, max_iter=10_000, tol=1e-10).fit(x, y)
    assert ours.coef_.shape == ref.coef_.shape
    close_coef(ours.coef_, ref.coef_)
    close_coef(ours.intercept_, ref.intercept_)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    np.testing.assert_allclose(ours.predict_proba(x), ref.predict_proba(x), atol=1e-6)
    assert np.mean(ours.predict(x) == ref.predict(x)) >= 0.99


# ---------------------------------------------------------------- trees


def held_out(name: str) -> tuple[np.ndarray, ...]:
    x, y = load(name)
    return tuple(model_selection.train_test_split(x, y, test_size=0.3, random_state=0))


def sklearn_is_deterministic(make: Any, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray) -> bool:
    # Probabilities (classifiers) or values, not only labels: two features that tie
    # can give trees with the same labels but different leaves.
    fits = [make(random_state=s).fit(xtr, ytr) for s in range(5)]
    preds = [getattr(f, "predict_proba", f.predict)(xte) for f in fits]
    return all(np.array_equal(preds[0], p) for p in preds[1:])


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
@pytest.mark.parametrize("criterion", ["gini", "entropy"])
@pytest.mark.parametrize(
    "params", [{}, {"max_depth": 3}, {"min_samples_leaf": 5, "min_samples_split": 12}]
)
def test_tree_classifier_matches_sklearn(name: str, criterion: str, params: dict[str, Any]) -> None:
    xtr, xte, ytr, yte = held_out(name)

    def make(**kw: Any) -> Any:
        return tree.DecisionTreeClassifier(criterion=criterion, **params, **kw)

    ref = make(random_state=0).fit(xtr, ytr)
    ours = ap.DecisionTreeClassifier(criterion=criterion, **params).fit(xtr, ytr)
    if sklearn_is_deterministic(make, xtr, ytr, xte):
        np.testing.assert_array_equal(ours.predict(xte), ref.predict(xte))
        np.testing.assert_allclose(ours.predict_proba(xte), ref.predict_proba(xte), atol=1e-12)
        assert ours.node_count == ref.tree_.node_count
    else:
        assert ours.score(xte, yte) >= ref.score(xte, yte) - 0.05
    assert ours.depth <= params.get("max_depth", 10**9)


@pytest.mark.parametrize("params", [{"max_depth": 4}, {"min_samples_leaf": 10}])
def test_tree_regressor_matches_sklearn(params: dict[str, Any]) -> None:
    xtr, xte, ytr, yte = held_out("diabetes")

    def make(**kw: Any) -> Any:
        return tree.DecisionTreeRegressor(**params, **kw)

    ref = make(random_state=0).fit(xtr, ytr)
    ours = ap.DecisionTreeRegressor(**params).fit(xtr, ytr)
    if sklearn_is_deterministic(make, xtr, ytr, xte):
        np.testing.assert_allclose(ours.predict(xte), ref.predict(xte), rtol=1e-12)
        np.testing.assert_allclose(ours.feature_importances_, ref.feature_importances_, atol=1e-10)
    else:
        assert ours.score(xte, yte) >= ref.score(xte, yte) - 0.05


# ---------------------------------------------------------------- forests


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
def test_forest_classifier_accuracy(name: str) -> None:
    xtr, xte, ytr, yte = held_out(name)
    ref = ensemble.RandomForestClassifier(100, random_state=0).fit(xtr, ytr)
    ours = ap.RandomForestClassifier(100, random_state=0).fit(xtr, ytr)
    assert ours.score(xte, yte) >= ref.score(xte, yte) - 0.03
    np.testing.assert_allclose(ours.predict_proba(xte).sum(axis=1), 1.0, atol=1e-12)
    assert ours.feature_importances_.sum() == pytest.approx(1.0)
    # The same seed, the same forest (and threads do not change it).
    again = ap.RandomForestClassifier(100, random_state=0, n_jobs=2).fit(xtr, ytr)
    np.testing.assert_array_equal(again.predict_proba(xte), ours.predict_proba(xte))


def test_forest_regressor_r2() -> None:
    xtr, xte, ytr, yte = held_out("diabetes")
    ref = ensemble.RandomForestRegressor(100, random_state=0).fit(xtr, ytr)
    ours = ap.RandomForestRegressor(100, random_state=0).fit(xtr, ytr)
    assert ours.score(xte, yte) >= ref.score(xte, yte) - 0.05


# ---------------------------------------------------------------- k-means


def sk_kmeans(x: np.ndarray, *args: Any, **kwargs: Any) -> Any:
    """scikit-learn's KMeans fitted on one OpenMP thread: on a shared 2-core machine its
    two spinning threads took 4-11 s per fit here, one thread 0.1 s (same results)."""
    with threadpool_limits(1):
        return cluster.KMeans(*args, **kwargs).fit(x)


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
@pytest.mark.parametrize("k", [3, 5])
def test_kmeans_inertia_within_one_percent(name: str, k: int) -> None:
    x = SkScaler().fit_transform(load(name)[0])
    ref = sk_kmeans(x, k, n_init=10, random_state=0)
    ours = ap.KMeans(k, n_init=10, random_state=0).fit(x)
    assert ours.inertia_ <= ref.inertia_ * 1.01, (ours.inertia_, ref.inertia_)
    assert ours.cluster_centers_.shape == (k, x.shape[1])
    np.testing.assert_array_equal(ours.predict(x), ours.labels_)


def exact_inertia(x: np.ndarray, centers: np.ndarray, labels: np.ndarray) -> float:
    return float(((x - centers[labels]) ** 2).sum())


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal labelings up to a renaming of the clusters."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_kmeans_matches_sklearn_on_synthetic_data() -> None:
    # The benchmark's data (smaller): a harder landscape than the bundled sets.
    x, _ = datasets.make_classification(3000, 20, n_informative=10, random_state=0)
    x = (x - x.mean(0)) / x.std(0)
    ref = sk_kmeans(x, 8, n_init=3, random_state=0)
    ours = ap.KMeans(8, n_init=3, random_state=0).fit(x)
    assert ours.inertia_ <= ref.inertia_ * 1.01, (ours.inertia_, ref.inertia_)
    assert 1 <= ours.n_iter_ <= 300


def test_kmeans_result_is_a_lloyd_fixed_point() -> None:
    # Run to strict convergence (tol=0): every centre is the mean of its points, every
    # point is at its nearest centre, and the inertia is the exact sum.
    x = SkScaler().fit_transform(load("wine")[0])
    km = ap.KMeans(4, n_init=1, tol=0.0, random_state=3).fit(x)
    for j in range(4):
        np.testing.assert_allclose(km.cluster_centers_[j], x[km.labels_ == j].mean(0), atol=1e-12)
    d = ((x[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(km.labels_, d.argmin(1))
    assert km.inertia_ == pytest.approx(exact_inertia(x, km.cluster_centers_, km.labels_), 1e-12)
    # sklearn started from our centres lands on the same fixed point in one step.
    ref = sk_kmeans(x, 4, init=km.cluster_centers_, n_init=1, tol=0.0)
    np.testing.assert_array_equal(ref.labels_, km.labels_)
    assert ref.inertia_ == pytest.approx(km.inertia_, rel=1e-12)


def test_kmeans_separated_blobs_same_labels_as_sklearn() -> None:
    # Deterministic case: well separated blobs have one optimum, found by both with
    # n_init=1 whatever the seed; the labels agree up to a permutation.
    x, truth = datasets.make_blobs(600, 5, centers=6, cluster_std=0.3, random_state=1)
    ref = sk_kmeans(x, 6, n_init=1, random_state=0)
    for seed in range(3):
        ours = ap.KMeans(6, n_init=1, random_state=seed).fit(x)
        assert same_partition(ours.labels_, ref.labels_)
        assert same_partition(ours.labels_, truth)
        assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-9)


def test_kmeans_is_deterministic_per_seed() -> None:
    x = SkScaler().fit_transform(load("breast_cancer")[0])
    a = ap.KMeans(5, n_init=2, random_state=11).fit(x)
    b = ap.KMeans(5, n_init=2, random_state=11).fit(x)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_kmeans_stops_on_tol_like_sklearn() -> None:
    # A tolerance larger than any shift stops both after the first iteration; the
    # labels still match the returned centres (the final assignment).
    x = SkScaler().fit_transform(load("iris")[0])
    ref = sk_kmeans(x, 3, n_init=1, tol=1e6, random_state=0)
    ours = ap.KMeans(3, n_init=1, tol=1e6, random_state=0).fit(x)
    assert ref.n_iter_ == ours.n_iter_ == 1
    np.testing.assert_array_equal(ours.predict(x), ours.labels_)
    one = ap.KMeans(3, n_init=1, max_iter=1, random_state=0).fit(x)
    assert one.n_iter_ == 1
    np.testing.assert_array_equal(one.predict(x), one.labels_)


def test_kmeans_duplicates_and_k_equal_n() -> None:
    # Three distinct points, each repeated: k=3 puts each group in its own cluster
    # with zero inertia; k=4 cannot do better than zero either (as sklearn).
    base = np.array([[0.0, 0.0], [5.0, 1.0], [-3.0, 7.0]])
    x = np.repeat(base, [4, 3, 5], axis=0)
    km = ap.KMeans(3, n_init=2, random_state=0).fit(x)
    # Zero up to the rounding of centring (x - mean + mean), as scikit-learn.
    assert km.inertia_ == pytest.approx(0.0, abs=1e-20)
    assert same_partition(km.labels_, np.repeat([0, 1, 2], [4, 3, 5]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn: fewer distinct clusters than k
        ref = sk_kmeans(x, 4, n_init=1, random_state=0)
    assert ref.inertia_ == pytest.approx(0.0, abs=1e-20)
    assert ap.KMeans(4, n_init=1, random_state=0).fit(x).inertia_ == pytest.approx(0.0, abs=1e-20)
    # k == n: every point is its own centre.
    y = np.array([[1.0], [2.0], [4.0], [8.0]])
    kn = ap.KMeans(4, random_state=0).fit(y)
    assert kn.inertia_ == pytest.approx(0.0, abs=1e-20)
    np.testing.assert_allclose(np.sort(kn.cluster_centers_.ravel()), [1, 2, 4, 8], rtol=1e-15)
    single = ap.KMeans(1).fit(np.array([[3.0, -1.0]]))
    np.testing.assert_array_equal(single.cluster_centers_, [[3.0, -1.0]])


def test_kmeans_far_from_the_origin() -> None:
    # Data offset by 1e7: the distance expansion would cancel catastrophically without
    # centring; the fit equals the one on the unshifted data.
    x = SkScaler().fit_transform(load("iris")[0])
    near = ap.KMeans(3, n_init=3, random_state=0).fit(x)
    far = ap.KMeans(3, n_init=3, random_state=0).fit(x + 1e7)
    assert same_partition(near.labels_, far.labels_)
    np.testing.assert_allclose(far.cluster_centers_ - 1e7, near.cluster_centers_, atol=1e-6)
    assert far.inertia_ == pytest.approx(near.inertia_, rel=1e-6)
    ref = sk_kmeans(x + 1e7, 3, n_init=3, random_state=0)
    assert far.inertia_ <= ref.inertia_ * 1.01


def test_kmeans_bad_input_is_refused() -> None:
    x = load("iris")[0]
    with pytest.raises(ValueError, match=r"n_clusters=151 must be in \[1, n_samples=150\]"):
        ap.KMeans(151).fit(x)
    for bad in (0, -2):
        with pytest.raises(ValueError, match=f"n_clusters must be an int >= 1, got {bad}"):
            ap.KMeans(bad).fit(x)
    with pytest.raises(ValueError, match="n_init must be an int >= 1, got 0"):
        ap.KMeans(3, n_init=0).fit(x)
    with pytest.raises(ValueError, match="max_iter must be an int >= 1, got -1"):
        ap.KMeans(3, max_iter=-1).fit(x)
    with pytest.raises(TypeError, match="n_clusters must be an int"):
        ap.KMeans(2.5).fit(x)  # ty: ignore[invalid-argument-type]
    for tol in (-1e-4, float("nan")):
        with pytest.raises(ValueError, match="tol >= 0"):
            ap.KMeans(3, tol=tol).fit(x)
    for v, shown in ((np.nan, "NaN"), (np.inf, "inf")):
        bad = x.copy()
        bad[7, 1] = v
        with pytest.raises(ValueError, match=f"{shown} at row 7, column 1"):
            ap.KMeans(3).fit(bad)
    huge = x.copy()
    huge[5] = 1e300
    with pytest.raises(ValueError, match="too large"):
        ap.KMeans(3).fit(huge)
    with pytest.raises(ValueError, match=r"shape \(0, 4\)"):
        ap.KMeans(1).fit(np.empty((0, 4)))
    km = ap.KMeans(3, random_state=0).fit(x)
    with pytest.raises(ValueError, match="4 features"):
        km.predict(x[:, :2])


# ---------------------------------------------------------------- scaler and split


def test_scaler_matches_sklearn() -> None:
    x = load("wine")[0]
    x[:, 3] = 7.0  # a constant column keeps scale 1
    ours = ap.StandardScaler().fit(x)
    ref = SkScaler().fit(x)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-13)
    np.testing.assert_allclose(ours.scale_, ref.scale_, rtol=1e-13)
    np.testing.assert_allclose(ours.transform(x), ref.transform(x), atol=1e-12)
    np.testing.assert_allclose(ours.inverse_transform(ours.transform(x)), x, rtol=1e-12)


def test_split_sizes_and_stratification_match_sklearn() -> None:
    x, y = load("iris")
    xtr, xte, _, yte = ap.train_test_split(x, y, test_size=0.3, random_state=1, stratify=y)
    rtr, rte, _, ryte = model_selection.train_test_split(
        x, y, test_size=0.3, random_state=1, stratify=y
    )
    assert (len(xtr), len(xte)) == (len(rtr), len(rte))
    np.testing.assert_array_equal(np.bincount(yte), np.bincount(ryte))
    assert sorted(map(tuple, np.vstack([xtr, xte]))) == sorted(map(tuple, x))
    a = ap.train_test_split(x, test_size=0.25, random_state=5)
    b = ap.train_test_split(x, test_size=0.25, random_state=5)
    np.testing.assert_array_equal(a[1], b[1])


# ---------------------------------------------------------------- metrics


def sk(fn: Any, *args: Any, **kw: Any) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # UndefinedMetricWarning on zero division
        return float(fn(*args, **kw))


LABEL_CASES = {
    "random": (
        np.random.default_rng(0).integers(0, 2, 50),
        np.random.default_rng(1).integers(0, 2, 50),
    ),
    "all_one_class_pred": (np.array([0, 1, 1, 0, 1]), np.zeros(5, dtype=int)),
    "all_one_class_both": (np.ones(6, dtype=int), np.ones(6, dtype=int)),
    "no_positive_true": (np.zeros(4, dtype=int), np.array([0, 1, 0, 0])),
    "perfect": (np.array([1, 0, 1, 1]), np.array([1, 0, 1, 1])),
}


@pytest.mark.parametrize("case", list(LABEL_CASES))
def test_binary_metrics_equal_sklearn(case: str) -> None:
    t, p = LABEL_CASES[case]
    assert ap.accuracy_score(t, p) == pytest.approx(metrics.accuracy_score(t, p), abs=1e-12)
    for name in ["precision_score", "recall_score", "f1_score"]:
        got = getattr(ap, name)(t, p)
        want = sk(getattr(metrics, name), t, p)
        assert got == pytest.approx(want, abs=1e-12), name
    np.testing.assert_array_equal(ap.confusion_matrix(t, p), metrics.confusion_matrix(t, p))


@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=80),
    st.sampled_from(["micro", "macro", "weighted"]),
)
@settings(max_examples=60, deadline=None)
def test_multiclass_metrics_equal_sklearn(pairs: list[tuple[int, int]], average: str) -> None:
    t = np.array([a for a, _ in pairs])
    p = np.array([b for _, b in pairs])
    for name in ["precision_score", "recall_score", "f1_score"]:
        got = getattr(ap, name)(t, p, average=average)
        want = sk(getattr(metrics, name), t, p, average=average)
        assert got == pytest.approx(want, abs=1e-12), (name, average)
    np.testing.assert_array_equal(ap.confusion_matrix(t, p), metrics.confusion_matrix(t, p))


@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 5)), min_size=2, max_size=80))
@settings(max_examples=60, deadline=None)
def test_roc_auc_equals_sklearn_with_ties(pairs: list[tuple[int, int]]) -> None:
    y = np.array([a for a, _ in pairs])
    s = np.array([b / 5 for _, b in pairs])
    if len(set(y.tolist())) < 2:
        with pytest.raises(ValueError, match="one class"):
            ap.roc_auc_score(y, s)
        return
    assert ap.roc_auc_score(y, s) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)


def test_log_loss_and_regression_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 40)
    p = rng.dirichlet(np.ones(3), 40)
    p[0] = [1.0, 0.0, 0.0]  # exact zeros and ones are clipped to [eps, 1 - eps]
    assert ap.log_loss(y, p) == pytest.approx(metrics.log_loss(y, p), abs=1e-12)
    yb = rng.integers(0, 2, 30)
    pb = rng.uniform(size=30)
    pb[:2] = [0.0, 1.0]
    assert ap.log_loss(yb, pb) == pytest.approx(metrics.log_loss(yb, pb), abs=1e-12)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert ap.mean_squared_error(a, b) == pytest.approx(metrics.mean_squared_error(a, b), abs=1e-12)
    assert ap.r2_score(a, b) == pytest.approx(metrics.r2_score(a, b), abs=1e-12)
    const = np.full(5, 2.0)
    assert ap.r2_score(const, const) == metrics.r2_score(const, const) == 1.0
    assert ap.r2_score(const, const + 1) == metrics.r2_score(const, const + 1) == 0.0


# ---------------------------------------------------------------- errors


def test_errors_raise_value_error_naming_the_problem() -> None:
    x, y = load("iris")
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN at row 3, column 2"):
        ap.LogisticRegression().fit(bad, y)
    with pytest.raises(ValueError, match="150 samples but y has 149"):
        ap.DecisionTreeClassifier().fit(x, y[:-1])
    with pytest.raises(ValueError, match="only one class"):
        ap.RandomForestClassifier(5).fit(x, np.zeros(150, dtype=int))
    with pytest.raises(ValueError, match="n_clusters=200"):
        ap.KMeans(200).fit(x)
    with pytest.raises(ValueError, match=r"shape \(0, 4\)"):
        ap.Ridge().fit(np.empty((0, 4)), np.empty(0))
    with pytest.raises(ValueError, match="2-D"):
        ap.LinearRegression().fit(x[:, 0], y)
    with pytest.raises(ValueError, match="features"):
        ap.LinearRegression().fit(x, y.astype(float)).predict(x[:, :2])
    with pytest.raises(ValueError, match="singular"):
        ap.LinearRegression().fit(np.c_[x, x[:, :1]], y.astype(float))
    with pytest.raises(ValueError, match="C must be"):
        ap.LogisticRegression(C=-1.0).fit(x, y)
    with pytest.raises(ValueError, match="not fitted"):
        ap.Ridge().predict(x)
    with pytest.raises(TypeError, match="integers"):
        ap.LogisticRegression().fit(x, np.array(["a", "b"] * 75))


# ---------------------------------------------------------------- realizar format


@pytest.mark.parametrize(
    "make",
    [
        ap.LinearRegression,
        lambda: ap.Ridge(3.0),
        lambda: ap.LogisticRegression(max_iter=500),
        lambda: ap.DecisionTreeClassifier(max_depth=5),
        lambda: ap.DecisionTreeRegressor(max_depth=5),
        lambda: ap.RandomForestClassifier(20, random_state=0),
        lambda: ap.RandomForestRegressor(20, random_state=0),
    ],
)
def test_saved_model_loads_in_realizar_with_equal_predictions(make: Any, tmp_path: Path) -> None:
    est = make()
    classifier = hasattr(est, "predict_proba")
    x, y = load("wine" if classifier else "diabetes")
    x = SkScaler().fit_transform(x)
    est.fit(x, y)
    path = tmp_path / "model.safetensors"
    est.save(path)
    served = realizar.TabularModel.load(path)
    if classifier:
        np.testing.assert_array_equal(served.predict(x), est.predict(x))
        np.testing.assert_allclose(served.predict_proba(x), est.predict_proba(x), atol=1e-12)
    else:
        np.testing.assert_allclose(served.predict(x), est.predict(x), rtol=1e-12, atol=1e-12)


def test_kmeans_is_not_saved_silently(tmp_path: Path) -> None:
    km = ap.KMeans(2, random_state=0).fit(load("iris")[0])
    with pytest.raises(ValueError, match="no k-means"):
        km.save(tmp_path / "km.safetensors")


def test_fit_releases_the_gil() -> None:
    x, y = load("breast_cancer")
    inside = ticks_during(lambda: ap.RandomForestClassifier(30, random_state=0).fit(x, y))
    assert inside > 100, inside
