//! `realizar.TabularModel`: a scikit-learn model exported by `export_sklearn`, run in Rust.

use std::path::PathBuf;

use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use realizar::tabular::{Prediction, TabularModel as Model};

use crate::errors::to_py_err;

/// Copy a 2-D float64 or float32 array into a row-major float64 buffer.
fn rows_of(x: &Bound<'_, PyAny>) -> PyResult<(Vec<f64>, usize, usize)> {
    if let Ok(a) = x.extract::<PyReadonlyArray2<'_, f64>>() {
        let (r, c) = (a.shape()[0], a.shape()[1]);
        // `as_slice` also accepts Fortran order, whose memory is column-major.
        let data = match a.as_slice() {
            Ok(s) if a.is_c_contiguous() => s.to_vec(),
            _ => a.as_array().iter().copied().collect(),
        };
        return Ok((data, r, c));
    }
    if let Ok(a) = x.extract::<PyReadonlyArray2<'_, f32>>() {
        let (r, c) = (a.shape()[0], a.shape()[1]);
        return Ok((a.as_array().iter().map(|&v| f64::from(v)).collect(), r, c));
    }
    let ndim = x.getattr("ndim").and_then(|n| n.extract::<usize>()).ok();
    let dtype = x
        .getattr("dtype")
        .map(|d| d.to_string())
        .unwrap_or_else(|_| x.get_type().to_string());
    match ndim {
        Some(n) if n != 2 => Err(PyValueError::new_err(format!(
            "X must be 2-D (n_samples, n_features), got a {n}-D array; reshape a single row with X.reshape(1, -1)"
        ))),
        _ => Err(PyTypeError::new_err(format!(
            "X must be a float64 or float32 ndarray, got {dtype}"
        ))),
    }
}

/// A tabular model (linear, MLP or tree ensemble) loaded from a realizar file.
#[pyclass(module = "realizar._realizar", name = "TabularModel", frozen)]
pub(crate) struct TabularModel {
    model: Model,
    /// `classes_` as a NumPy array, so labels come back with scikit-learn's dtype.
    classes: Option<Py<PyAny>>,
}

impl TabularModel {
    fn checked(&self, x: &Bound<'_, PyAny>) -> PyResult<(Vec<f64>, usize)> {
        let (data, rows, cols) = rows_of(x)?;
        let nf = self.model.n_features();
        if cols != nf {
            return Err(PyValueError::new_err(format!(
                "X has {cols} features, but {} expects {nf} features",
                self.model.estimator()
            )));
        }
        Ok((data, rows))
    }
}

#[pymethods]
impl TabularModel {
    /// Load a model written by `realizar.export_sklearn`.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let model = py
            .detach(move || Model::load(&path))
            .map_err(|e| to_py_err(&e))?;
        let classes = if model.is_classifier() {
            let json = serde_json::to_string(model.classes())
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            let list = py.import("json")?.call_method1("loads", (json,))?;
            Some(
                py.import("numpy")?
                    .call_method1("asarray", (list,))?
                    .unbind(),
            )
        } else {
            None
        };
        Ok(Self { model, classes })
    }

    /// Predicted class labels (classifier) or values (regressor) for each row of X.
    fn predict<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let (data, rows) = self.checked(x)?;
        let out = py
            .detach(|| self.model.predict(&data, rows))
            .map_err(|e| to_py_err(&e))?;
        match out {
            Prediction::Classes(idx) => {
                let idx: Vec<i64> = idx.into_iter().map(|i| i as i64).collect();
                let classes = self
                    .classes
                    .as_ref()
                    .expect("a classifier has classes")
                    .bind(py);
                classes.get_item(idx.into_pyarray(py))
            }
            Prediction::Values(v) => {
                let arr = v.into_pyarray(py);
                let k = self.model.n_outputs();
                if k == 1 {
                    Ok(arr.into_any())
                } else {
                    Ok(arr.reshape([rows, k])?.into_any())
                }
            }
        }
    }

    /// Class probabilities, shape (n_samples, n_classes), columns in `classes` order.
    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (data, rows) = self.checked(x)?;
        let p = py
            .detach(|| self.model.predict_proba(&data, rows))
            .map_err(|e| to_py_err(&e))?;
        let k = self.model.classes().len();
        let arr: Bound<'py, PyArray1<f64>> = p.into_pyarray(py);
        Ok(arr.reshape([rows, k])?.into_any())
    }

    /// Number of input features.
    #[getter]
    fn n_features(&self) -> usize {
        self.model.n_features()
    }

    /// The scikit-learn class name the model was exported from.
    #[getter]
    fn estimator(&self) -> &str {
        self.model.estimator()
    }

    /// Class labels of a classifier, or None for a regressor.
    #[getter]
    fn classes(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.classes.as_ref().map(|c| c.clone_ref(py))
    }

    /// Whether the model is a classifier.
    #[getter]
    fn is_classifier(&self) -> bool {
        self.model.is_classifier()
    }

    fn __repr__(&self) -> String {
        format!(
            "TabularModel(estimator={:?}, n_features={})",
            self.model.estimator(),
            self.model.n_features()
        )
    }
}
