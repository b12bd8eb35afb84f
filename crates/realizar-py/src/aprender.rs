//! `realizar._realizar.aprender`: training with the aprender crate, exposed thinly.
//!
//! Each `fit_*` function converts NumPy input, releases the GIL, calls aprender and
//! returns an opaque fitted [`Model`]; the scikit-learn-shaped classes live in
//! `python/realizar/aprender.py`. aprender's errors (shape, NaN, one class, bad
//! parameters) become `ValueError`, a failed save `OSError`.
#![allow(
    clippy::needless_pass_by_value,
    reason = "pyo3 extracts NumPy arrays and paths into owned PyReadonlyArray/PathBuf arguments"
)]

use std::path::PathBuf;

use aprender::forest::{Forest, RandomForest};
use aprender::kmeans::{KMeans, KMeansModel};
use aprender::linear::{LinearModel, LinearRegression, Ridge};
use aprender::logistic::{LogisticModel, LogisticRegression};
use aprender::metrics::{self, Average};
use aprender::preprocessing::{StandardScaler, TestSize, train_test_split};
use aprender::save::SaveModel;
use aprender::tree::{Criterion, DecisionTree, MaxFeatures, Tree};
use aprender::{Error, Matrix};
use numpy::{
    IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

fn err(e: Error) -> PyErr {
    match e {
        Error::Save(realizar::Error::Io { .. }) => PyOSError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// Row-major contiguous copy-free view where NumPy allows (the Python side passes
/// `np.ascontiguousarray(X, dtype=float64)`).
fn slice2<'a>(x: &'a PyReadonlyArray2<'_, f64>) -> PyResult<(&'a [f64], usize, usize)> {
    let shape = x.shape();
    let data = x
        .as_slice()
        .map_err(|_| PyValueError::new_err("X must be C-contiguous"))?;
    Ok((data, shape[0], shape[1]))
}

fn slice1<'a, T: numpy::Element>(y: &'a PyReadonlyArray1<'_, T>) -> PyResult<&'a [T]> {
    y.as_slice()
        .map_err(|_| PyValueError::new_err("y must be contiguous"))
}

enum Fitted {
    Linear(LinearModel),
    Logistic(LogisticModel),
    Tree(Tree),
    Forest(Forest),
    KMeans(KMeansModel),
    Scaler(StandardScaler),
}

/// A fitted aprender model.
#[pyclass(module = "realizar._realizar", name = "AprenderModel", frozen)]
pub(crate) struct Model {
    fitted: Fitted,
}

fn wrap(f: Fitted) -> Model {
    Model { fitted: f }
}

fn f64_array<'py>(py: Python<'py>, v: Vec<f64>, cols: usize) -> PyResult<Bound<'py, PyAny>> {
    let rows = v.len() / cols.max(1);
    let a = v.into_pyarray(py);
    if cols == 0 {
        return Ok(a.into_any());
    }
    Ok(a.reshape([rows, cols])?.into_any())
}

#[pymethods]
impl Model {
    /// Predictions: labels (int64) for classifiers, values (float64) for regressors,
    /// cluster indices for k-means.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (data, rows, cols) = slice2(&x)?;
        enum Out {
            F(Vec<f64>),
            I(Vec<i64>),
        }
        let out = py
            .detach(|| {
                let m = Matrix::new(data, rows, cols)?;
                Ok(match &self.fitted {
                    Fitted::Linear(l) => Out::F(l.predict(&m)?),
                    Fitted::Logistic(l) => Out::I(l.predict(&m)?),
                    Fitted::Tree(t) if t.classes.is_empty() => Out::F(t.predict_values(&m)?),
                    Fitted::Tree(t) => Out::I(t.predict_classes(&m)?),
                    Fitted::Forest(f) if f.is_classifier() => Out::I(f.predict_classes(&m)?),
                    Fitted::Forest(f) => Out::F(f.predict_values(&m)?),
                    Fitted::KMeans(k) => {
                        Out::I(k.predict(&m)?.into_iter().map(|v| v as i64).collect())
                    }
                    Fitted::Scaler(s) => Out::F(s.transform(&m)?),
                })
            })
            .map_err(err)?;
        match out {
            Out::F(v) if matches!(self.fitted, Fitted::Scaler(_)) => f64_array(py, v, cols),
            Out::F(v) => Ok(v.into_pyarray(py).into_any()),
            Out::I(v) => Ok(v.into_pyarray(py).into_any()),
        }
    }

    /// Class probabilities `(n_samples, n_classes)` of a classifier.
    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (data, rows, cols) = slice2(&x)?;
        let (v, k) = py
            .detach(|| {
                let m = Matrix::new(data, rows, cols)?;
                match &self.fitted {
                    Fitted::Logistic(l) => Ok((l.predict_proba(&m)?, l.classes.len())),
                    Fitted::Tree(t) if !t.classes.is_empty() => {
                        Ok((t.predict_values(&m)?, t.classes.len()))
                    }
                    Fitted::Forest(f) if f.is_classifier() => {
                        Ok((f.predict_values(&m)?, f.classes.len()))
                    }
                    _ => Err(Error::Parameter("this model has no predict_proba".into())),
                }
            })
            .map_err(err)?;
        f64_array(py, v, k)
    }

    /// Raw scores of a logistic model, or the inverse transform of a scaler.
    fn decision_function<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (data, rows, cols) = slice2(&x)?;
        let (v, k) = py
            .detach(|| {
                let m = Matrix::new(data, rows, cols)?;
                match &self.fitted {
                    Fitted::Logistic(l) => Ok((l.decision_function(&m)?, l.intercept.len())),
                    Fitted::Scaler(s) => Ok((s.inverse_transform(&m)?, cols)),
                    _ => Err(Error::Parameter(
                        "this model has no decision_function".into(),
                    )),
                }
            })
            .map_err(err)?;
        f64_array(py, v, k)
    }

    /// Write the model in realizar's tabular format (what `realizar serve` loads).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| {
            match &self.fitted {
            Fitted::Linear(m) => m.save(&path),
            Fitted::Logistic(m) => m.save(&path),
            Fitted::Tree(m) => m.save(&path),
            Fitted::Forest(m) => m.save(&path),
            Fitted::KMeans(_) | Fitted::Scaler(_) => Err(Error::Parameter(
                "realizar's tabular format has no k-means or scaler kind: only predictors are saved"
                    .into(),
            )),
        }
        })
        .map_err(err)
    }

    /// Fitted attributes as a dict of NumPy arrays and numbers.
    fn attributes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let d = pyo3::types::PyDict::new(py);
        match &self.fitted {
            Fitted::Linear(m) => {
                d.set_item("coef_", m.coef.clone().into_pyarray(py))?;
                d.set_item("intercept_", m.intercept)?;
            }
            Fitted::Logistic(m) => {
                d.set_item("coef_", f64_array(py, m.coef.clone(), m.n_features)?)?;
                d.set_item("intercept_", m.intercept.clone().into_pyarray(py))?;
                d.set_item("classes_", m.classes.clone().into_pyarray(py))?;
                d.set_item("n_iter_", m.n_iter)?;
                d.set_item("converged_", m.converged)?;
            }
            Fitted::Tree(t) => {
                d.set_item(
                    "feature_importances_",
                    t.feature_importances().into_pyarray(py),
                )?;
                d.set_item("classes_", t.classes.clone().into_pyarray(py))?;
                d.set_item("node_count", t.node_count())?;
                d.set_item("depth", t.depth())?;
                d.set_item("n_leaves", t.leaf_count())?;
            }
            Fitted::Forest(f) => {
                d.set_item(
                    "feature_importances_",
                    f.feature_importances().into_pyarray(py),
                )?;
                d.set_item("classes_", f.classes.clone().into_pyarray(py))?;
                d.set_item("n_estimators", f.trees.len())?;
            }
            Fitted::KMeans(k) => {
                d.set_item(
                    "cluster_centers_",
                    f64_array(py, k.centers.clone(), k.n_features)?,
                )?;
                let labels: Vec<i64> = k.labels.iter().map(|&v| v as i64).collect();
                d.set_item("labels_", labels.into_pyarray(py))?;
                d.set_item("inertia_", k.inertia)?;
                d.set_item("n_iter_", k.n_iter)?;
            }
            Fitted::Scaler(s) => {
                d.set_item("mean_", s.mean.clone().into_pyarray(py))?;
                d.set_item("scale_", s.scale.clone().into_pyarray(py))?;
                d.set_item("var_", s.var.clone().into_pyarray(py))?;
            }
        }
        Ok(d)
    }
}

#[pyfunction]
#[pyo3(signature = (x, y, alpha, fit_intercept))]
fn fit_linear(
    py: Python<'_>,
    x: PyReadonlyArray2<'_, f64>,
    y: PyReadonlyArray1<'_, f64>,
    alpha: Option<f64>,
    fit_intercept: bool,
) -> PyResult<Model> {
    let (data, rows, cols) = slice2(&x)?;
    let y = slice1(&y)?;
    py.detach(|| {
        let m = Matrix::new(data, rows, cols)?;
        match alpha {
            None => LinearRegression { fit_intercept }.fit(&m, y),
            Some(alpha) => Ridge {
                alpha,
                fit_intercept,
            }
            .fit(&m, y),
        }
    })
    .map(|f| wrap(Fitted::Linear(f)))
    .map_err(err)
}

#[pyfunction]
fn fit_logistic(
    py: Python<'_>,
    x: PyReadonlyArray2<'_, f64>,
    y: PyReadonlyArray1<'_, i64>,
    c: f64,
    fit_intercept: bool,
    max_iter: usize,
    tol: f64,
) -> PyResult<Model> {
    let (data, rows, cols) = slice2(&x)?;
    let y = slice1(&y)?;
    py.detach(|| {
        let m = Matrix::new(data, rows, cols)?;
        LogisticRegression {
            c,
            fit_intercept,
            max_iter,
            tol,
        }
        .fit(&m, y)
    })
    .map(|f| wrap(Fitted::Logistic(f)))
    .map_err(err)
}

fn tree_params(
    criterion: &str,
    max_depth: Option<usize>,
    min_samples_split: usize,
    min_samples_leaf: usize,
    max_features: &Bound<'_, PyAny>,
    seed: u64,
) -> PyResult<DecisionTree> {
    let criterion = match criterion {
        "gini" => Criterion::Gini,
        "entropy" | "log_loss" => Criterion::Entropy,
        "squared_error" => Criterion::SquaredError,
        other => {
            return Err(PyValueError::new_err(format!(
                "criterion must be 'gini', 'entropy' or 'squared_error', got {other:?}"
            )));
        }
    };
    let max_features = if max_features.is_none() {
        MaxFeatures::All
    } else if let Ok(s) = max_features.extract::<String>() {
        match s.as_str() {
            "sqrt" => MaxFeatures::Sqrt,
            "log2" => MaxFeatures::Log2,
            other => {
                return Err(PyValueError::new_err(format!(
                    "max_features must be None, 'sqrt', 'log2', an int or a float, got {other:?}"
                )));
            }
        }
    } else if max_features.is_instance_of::<pyo3::types::PyInt>() {
        MaxFeatures::Count(max_features.extract()?)
    } else {
        MaxFeatures::Fraction(max_features.extract()?)
    };
    Ok(DecisionTree {
        criterion,
        max_depth,
        min_samples_split,
        min_samples_leaf,
        max_features,
        seed,
    })
}

/// `y` is int64 labels for a classifier, float64 values for a regressor (copied: one
/// value per row, negligible next to X).
enum Target {
    Classes(Vec<i64>),
    Values(Vec<f64>),
}

fn target(y: &Bound<'_, PyAny>, classifier: bool) -> PyResult<Target> {
    Ok(if classifier {
        Target::Classes(slice1(&y.extract::<PyReadonlyArray1<'_, i64>>()?)?.to_vec())
    } else {
        Target::Values(slice1(&y.extract::<PyReadonlyArray1<'_, f64>>()?)?.to_vec())
    })
}

#[pyfunction]
#[allow(clippy::too_many_arguments)] // scikit-learn's parameters, one by one
#[pyo3(signature = (x, y, classifier, criterion, max_depth, min_samples_split, min_samples_leaf, max_features, seed))]
fn fit_tree<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    y: &Bound<'py, PyAny>,
    classifier: bool,
    criterion: &str,
    max_depth: Option<usize>,
    min_samples_split: usize,
    min_samples_leaf: usize,
    max_features: &Bound<'py, PyAny>,
    seed: u64,
) -> PyResult<Model> {
    let params = tree_params(
        criterion,
        max_depth,
        min_samples_split,
        min_samples_leaf,
        max_features,
        seed,
    )?;
    let (data, rows, cols) = slice2(&x)?;
    let t = target(y, classifier)?;
    py.detach(|| {
        let m = Matrix::new(data, rows, cols)?;
        match t {
            Target::Classes(y) => params.fit_classifier(&m, &y),
            Target::Values(y) => params.fit_regressor(&m, &y),
        }
    })
    .map(|f| wrap(Fitted::Tree(f)))
    .map_err(err)
}

#[pyfunction]
#[allow(clippy::too_many_arguments)] // scikit-learn's parameters, one by one
#[pyo3(signature = (x, y, classifier, n_estimators, criterion, max_depth, min_samples_split, min_samples_leaf, max_features, bootstrap, seed, n_jobs))]
fn fit_forest<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    y: &Bound<'py, PyAny>,
    classifier: bool,
    n_estimators: usize,
    criterion: &str,
    max_depth: Option<usize>,
    min_samples_split: usize,
    min_samples_leaf: usize,
    max_features: &Bound<'py, PyAny>,
    bootstrap: bool,
    seed: u64,
    n_jobs: usize,
) -> PyResult<Model> {
    let tree = tree_params(
        criterion,
        max_depth,
        min_samples_split,
        min_samples_leaf,
        max_features,
        seed,
    )?;
    let forest = RandomForest {
        n_estimators,
        tree,
        bootstrap,
        seed,
        n_jobs,
    };
    let (data, rows, cols) = slice2(&x)?;
    let t = target(y, classifier)?;
    py.detach(|| {
        let m = Matrix::new(data, rows, cols)?;
        match t {
            Target::Classes(y) => forest.fit_classifier(&m, &y),
            Target::Values(y) => forest.fit_regressor(&m, &y),
        }
    })
    .map(|f| wrap(Fitted::Forest(f)))
    .map_err(err)
}

#[pyfunction]
fn fit_kmeans(
    py: Python<'_>,
    x: PyReadonlyArray2<'_, f64>,
    n_clusters: usize,
    n_init: usize,
    max_iter: usize,
    tol: f64,
    seed: u64,
) -> PyResult<Model> {
    let (data, rows, cols) = slice2(&x)?;
    py.detach(|| {
        let m = Matrix::new(data, rows, cols)?;
        KMeans {
            n_clusters,
            n_init,
            max_iter,
            tol,
            seed,
        }
        .fit(&m)
    })
    .map(|f| wrap(Fitted::KMeans(f)))
    .map_err(err)
}

#[pyfunction]
fn fit_scaler(py: Python<'_>, x: PyReadonlyArray2<'_, f64>) -> PyResult<Model> {
    let (data, rows, cols) = slice2(&x)?;
    py.detach(|| StandardScaler::fit(&Matrix::new(data, rows, cols)?))
        .map(|f| wrap(Fitted::Scaler(f)))
        .map_err(err)
}

/// `(train, test)` row indices.
type Indices<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

#[pyfunction]
#[pyo3(signature = (n, test_size, seed, stratify=None))]
fn split_indices<'py>(
    py: Python<'py>,
    n: usize,
    test_size: &Bound<'py, PyAny>,
    seed: u64,
    stratify: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<Indices<'py>> {
    let size = if test_size.is_instance_of::<pyo3::types::PyInt>() {
        TestSize::Count(test_size.extract()?)
    } else {
        TestSize::Fraction(test_size.extract()?)
    };
    let strat = stratify.as_ref().map(slice1).transpose()?;
    let (train, test) = train_test_split(n, size, seed, strat).map_err(err)?;
    let ints = |v: Vec<usize>| v.into_iter().map(|i| i as i64).collect::<Vec<_>>();
    Ok((ints(train).into_pyarray(py), ints(test).into_pyarray(py)))
}

#[pyfunction]
fn accuracy_score(
    y_true: PyReadonlyArray1<'_, i64>,
    y_pred: PyReadonlyArray1<'_, i64>,
) -> PyResult<f64> {
    metrics::accuracy_score(slice1(&y_true)?, slice1(&y_pred)?).map_err(err)
}

/// `average` is "binary", "micro", "macro" or "weighted".
#[pyfunction]
fn precision_recall_f1(
    y_true: PyReadonlyArray1<'_, i64>,
    y_pred: PyReadonlyArray1<'_, i64>,
    average: &str,
    pos_label: i64,
) -> PyResult<(f64, f64, f64)> {
    let average = match average {
        "binary" => Average::Binary { pos_label },
        "micro" => Average::Micro,
        "macro" => Average::Macro,
        "weighted" => Average::Weighted,
        other => {
            return Err(PyValueError::new_err(format!(
                "average must be 'binary', 'micro', 'macro' or 'weighted', got {other:?}"
            )));
        }
    };
    metrics::precision_recall_f1(slice1(&y_true)?, slice1(&y_pred)?, average).map_err(err)
}

#[pyfunction]
fn roc_auc_score(
    y_true: PyReadonlyArray1<'_, i64>,
    y_score: PyReadonlyArray1<'_, f64>,
) -> PyResult<f64> {
    metrics::roc_auc_score(slice1(&y_true)?, slice1(&y_score)?).map_err(err)
}

/// `y_proba` flattened row-major (the Python side ravels it).
#[pyfunction]
#[pyo3(signature = (y_true, y_proba, labels=None))]
fn log_loss(
    y_true: PyReadonlyArray1<'_, i64>,
    y_proba: PyReadonlyArray1<'_, f64>,
    labels: Option<PyReadonlyArray1<'_, i64>>,
) -> PyResult<f64> {
    let labels = labels.as_ref().map(slice1).transpose()?;
    metrics::log_loss(slice1(&y_true)?, slice1(&y_proba)?, labels).map_err(err)
}

#[pyfunction]
#[pyo3(signature = (y_true, y_pred, labels=None))]
fn confusion_matrix<'py>(
    py: Python<'py>,
    y_true: PyReadonlyArray1<'py, i64>,
    y_pred: PyReadonlyArray1<'py, i64>,
    labels: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<Bound<'py, PyAny>> {
    let labels = labels.as_ref().map(slice1).transpose()?;
    let (l, cm) =
        metrics::confusion_matrix(slice1(&y_true)?, slice1(&y_pred)?, labels).map_err(err)?;
    let k = l.len();
    let cm: Vec<i64> = cm.into_iter().map(|v| v as i64).collect();
    Ok(cm.into_pyarray(py).reshape([k, k])?.into_any())
}

#[pyfunction]
fn mean_squared_error(
    y_true: PyReadonlyArray1<'_, f64>,
    y_pred: PyReadonlyArray1<'_, f64>,
) -> PyResult<f64> {
    metrics::mean_squared_error(slice1(&y_true)?, slice1(&y_pred)?).map_err(err)
}

#[pyfunction]
fn r2_score(y_true: PyReadonlyArray1<'_, f64>, y_pred: PyReadonlyArray1<'_, f64>) -> PyResult<f64> {
    metrics::r2_score(slice1(&y_true)?, slice1(&y_pred)?).map_err(err)
}

/// The `aprender` submodule of the extension.
pub(crate) fn module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let m = PyModule::new(py, "aprender")?;
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(fit_linear, &m)?)?;
    m.add_function(wrap_pyfunction!(fit_logistic, &m)?)?;
    m.add_function(wrap_pyfunction!(fit_tree, &m)?)?;
    m.add_function(wrap_pyfunction!(fit_forest, &m)?)?;
    m.add_function(wrap_pyfunction!(fit_kmeans, &m)?)?;
    m.add_function(wrap_pyfunction!(fit_scaler, &m)?)?;
    m.add_function(wrap_pyfunction!(split_indices, &m)?)?;
    m.add_function(wrap_pyfunction!(accuracy_score, &m)?)?;
    m.add_function(wrap_pyfunction!(precision_recall_f1, &m)?)?;
    m.add_function(wrap_pyfunction!(roc_auc_score, &m)?)?;
    m.add_function(wrap_pyfunction!(log_loss, &m)?)?;
    m.add_function(wrap_pyfunction!(confusion_matrix, &m)?)?;
    m.add_function(wrap_pyfunction!(mean_squared_error, &m)?)?;
    m.add_function(wrap_pyfunction!(r2_score, &m)?)?;
    Ok(m)
}
