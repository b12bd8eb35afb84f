//! The `realizar._realizar` extension: thin wrappers over the `realizar` crate.

use pyo3::prelude::*;

#[pymodule]
fn _realizar(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__source_hash__", env!("SOURCE_FINGERPRINT"))?;
    Ok(())
}
