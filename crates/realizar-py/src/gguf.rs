//! `realizar.quantize_gguf`: a GGUF model re-quantised to another element type, thin over
//! `realizar::gguf::write::requantize`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use realizar::gguf::Gguf;
use realizar::gguf::write::{requantize, tensor_type_from_name};

use crate::errors::to_py_err;

/// Write `src` to `dst` with every matrix in `type` (F32, F16, Q8_0, Q4_0, Q4_1), and the
/// tensors named in `tensor_types` in theirs; returns one dict per tensor: name, dims, from,
/// to, bytes, rms, rmse, max_abs_err.
#[pyfunction]
#[pyo3(signature = (src, dst, r#type, tensor_types = None))]
#[allow(
    clippy::needless_pass_by_value,
    reason = "pyo3 extracts paths and the mapping into owned arguments"
)]
pub(crate) fn quantize_gguf<'py>(
    py: Python<'py>,
    src: PathBuf,
    dst: PathBuf,
    r#type: &str,
    tensor_types: Option<BTreeMap<String, String>>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let to = tensor_type_from_name(r#type).map_err(|e| to_py_err(&e))?;
    let per_tensor = tensor_types
        .unwrap_or_default()
        .into_iter()
        .map(|(name, ty)| Ok((name, tensor_type_from_name(&ty).map_err(|e| to_py_err(&e))?)))
        .collect::<PyResult<Vec<_>>>()?;
    if src == dst {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "dst must differ from src ({})",
            src.display()
        )));
    }
    let reports = py
        .detach(|| Gguf::open(&src).and_then(|g| requantize(&g, &dst, to, &per_tensor)))
        .map_err(|e| to_py_err(&e))?;
    reports
        .into_iter()
        .map(|r| {
            let d = PyDict::new(py);
            d.set_item("name", r.name)?;
            d.set_item("dims", r.dims)?;
            d.set_item("from", r.from.name())?;
            d.set_item("to", r.to.name())?;
            d.set_item("bytes", r.bytes)?;
            d.set_item("rms", r.rms)?;
            d.set_item("rmse", r.rmse)?;
            d.set_item("max_abs_err", r.max_abs_err)?;
            Ok(d)
        })
        .collect()
}
