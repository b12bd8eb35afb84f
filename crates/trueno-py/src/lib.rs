//! The `trueno._trueno` extension: thin, checked, GIL-releasing wrappers over
//! the `trueno` crate. No numeric logic lives here.

use pyo3::exceptions::PyImportError;
use pyo3::prelude::*;

mod convert;
mod kernels;
mod linalg;
mod machine;
mod pool;

#[pymodule]
fn _trueno(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Resolve TRUENO_BACKEND now: a bad value fails the import with the
    // reason instead of failing every later call.
    trueno::backend::active().map_err(|e| PyImportError::new_err(format!("trueno: {e}")))?;
    m.add("__source_hash__", env!("SOURCE_FINGERPRINT"))?;
    kernels::register(m)?;
    linalg::register(m)?;
    machine::register(m)?;
    pool::register(m)?;
    Ok(())
}
