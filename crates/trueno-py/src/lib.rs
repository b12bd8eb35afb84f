//! The `trueno._trueno` extension: thin, checked, GIL-releasing wrappers over
//! the `trueno` crate. No numeric logic lives here.

use numpy::{PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

mod linalg;

/// Borrow a 1-D float32 array, or say which dtype/shape was given instead.
fn as_f32_1d<'py>(name: &str, obj: &Bound<'py, PyAny>) -> PyResult<PyReadonlyArray1<'py, f32>> {
    match obj.extract::<PyReadonlyArray1<'py, f32>>() {
        Ok(arr) => Ok(arr),
        Err(_) => {
            let dtype = obj.getattr("dtype").map(|d| d.to_string()).unwrap_or_else(|_| obj.get_type().to_string());
            let ndim = obj.getattr("ndim").and_then(|n| n.extract::<usize>()).ok();
            match ndim {
                Some(n) if n != 1 && dtype == "float32" => {
                    Err(PyValueError::new_err(format!("{name} must be 1-D, got {n}-D")))
                }
                _ => Err(PyTypeError::new_err(format!("{name} must be a float32 ndarray, got {dtype}"))),
            }
        }
    }
}

/// dot(a, b) -> float: inner product of two 1-D float32 arrays.
#[pyfunction]
fn dot(py: Python<'_>, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<f32> {
    let a = as_f32_1d("a", a)?;
    let b = as_f32_1d("b", b)?;
    if a.len() != b.len() {
        return Err(PyValueError::new_err(format!(
            "shapes ({},) and ({},) not aligned",
            a.len(),
            b.len()
        )));
    }
    let (xa, xb) = (a.as_slice()?, b.as_slice()?);
    py.detach(|| trueno::dot(xa, xb)).map_err(|e| PyValueError::new_err(e.to_string()))
}

#[pymodule]
fn _trueno(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__source_hash__", env!("SOURCE_FINGERPRINT"))?;
    m.add_function(wrap_pyfunction!(dot, m)?)?;
    linalg::register(m)?;
    Ok(())
}
