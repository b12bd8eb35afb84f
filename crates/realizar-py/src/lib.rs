//! The `realizar._realizar` extension: thin wrappers over the `realizar` crate.

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

mod encoder;
mod server;
mod tabular;

/// Map a realizar error onto the Python exception a caller expects.
pub(crate) fn to_py_err(e: realizar::Error) -> PyErr {
    match e {
        realizar::Error::Io { .. } => PyOSError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

#[pymodule]
fn _realizar(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__source_hash__", env!("SOURCE_FINGERPRINT"))?;
    m.add_class::<tabular::TabularModel>()?;
    m.add_function(wrap_pyfunction!(server::serve, m)?)?;
    m.add_class::<encoder::Encoder>()?;
    m.add_class::<encoder::Tokenizer>()?;
    m.add_class::<encoder::Encoding>()?;
    Ok(())
}
