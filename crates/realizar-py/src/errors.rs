//! The one mapping from `realizar::Error` to Python exceptions, for every binding.
//!
//! A missing file is `FileNotFoundError`, other I/O `OSError`, a file with bad content
//! or a bad argument `ValueError` (a sequence past the model's context included); a
//! kernel failure is `RuntimeError`. Every message names the path or the value.

use pyo3::PyErr;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};

pub(crate) fn to_py_err(e: &realizar::Error) -> PyErr {
    match e {
        realizar::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(e.to_string())
        }
        realizar::Error::Io { .. } => PyOSError::new_err(e.to_string()),
        realizar::Error::Kernel(_) => PyRuntimeError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}
