//! The reduced-precision options of `realizar.Encoder` and `realizar.LLM`, thin over
//! `realizar::precision`: the name parsed (as `trueno.matmul(precision=...)` parses it),
//! the kernel that runs read back, and a `RuntimeWarning` for the reference path.

use pyo3::exceptions::{PyRuntimeWarning, PyValueError};
use pyo3::prelude::*;
use trueno::lowp::Precision;

use crate::errors::to_py_err;

/// A reduced-precision option by name (`"f32"`, `"bf16"`, `"int8"`, as
/// `trueno.matmul(precision=...)`): a `ValueError` naming an unknown value (a non-str is
/// pyo3's `TypeError` naming the argument).
pub(crate) fn precision_of(arg: &str, value: &str) -> PyResult<Precision> {
    value
        .parse()
        .map_err(|e: trueno::Error| PyValueError::new_err(format!("{arg}: {e}")))
}

/// The name of the `trueno::lowp` kernel `precision` runs on (None for f32).
pub(crate) fn lowp_path_name(precision: Precision) -> PyResult<Option<&'static str>> {
    Ok(realizar::precision::lowp_path(precision)
        .map_err(|e| to_py_err(&e))?
        .map(|p| p.name()))
}

/// A `RuntimeWarning` when `precision` runs on lowp's portable reference path: the
/// arithmetic asked for, but much slower than the SIMD kernel (never a silent fallback).
pub(crate) fn warn_if_reference(py: Python<'_>, precision: Precision) -> PyResult<()> {
    if let Some(note) = realizar::precision::fallback_note(precision).map_err(|e| to_py_err(&e))? {
        let category = py.get_type::<PyRuntimeWarning>();
        let msg = std::ffi::CString::new(note).map_err(|e| PyValueError::new_err(e.to_string()))?;
        PyErr::warn(py, &category, &msg, 1)?;
    }
    Ok(())
}
