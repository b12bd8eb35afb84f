//! `trueno.machine()`: the crate's machine description (`trueno::machine`) handed to
//! Python as its JSON text, plus the GEMM blocking derived from it. No logic here.

use crate::convert::kernel_error;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use trueno::machine::Origin;

/// _machine_json(refresh=False, probe=True) -> (json, origin): the machine, probed
/// (from the per-machine cache unless `refresh`) or, with `probe=False`, only its
/// identity and caches. `origin` says where the probe came from. The GIL is released
/// while the probe runs (about a second).
#[pyfunction]
#[pyo3(signature = (refresh = false, probe = true))]
fn _machine_json(py: Python<'_>, refresh: bool, probe: bool) -> (String, String) {
    if !probe {
        return (
            trueno::machine::describe().to_json(),
            "not probed".to_owned(),
        );
    }
    let (m, origin) = py.detach(|| trueno::machine::machine(refresh));
    let origin = match origin {
        Origin::Cached(p) => format!("cached: {}", p.display()),
        Origin::Measured(p) => format!("measured now, cached in {}", p.display()),
        Origin::MeasuredUncached(why) => format!("measured now, not cached: {why}"),
    };
    (m.to_json(), origin)
}

/// _gemm_blocking(dtype) -> (mr, nr, kc, mc, nc): the register tile and cache blocking
/// `matmul` uses for "float32" or "float64" on the active backend of this machine.
#[pyfunction]
fn _gemm_blocking(dtype: &str) -> PyResult<(usize, usize, usize, usize, usize)> {
    let isa = trueno::backend::active().map_err(kernel_error)?;
    let (mr, nr, b) = match dtype {
        "float32" => trueno::matmul::tile_and_blocking::<f32>(isa),
        "float64" => trueno::matmul::tile_and_blocking::<f64>(isa),
        other => {
            return Err(PyValueError::new_err(format!(
                "dtype must be 'float32' or 'float64', got {other:?}"
            )));
        }
    }
    .map_err(kernel_error)?;
    Ok((mr, nr, b.kc, b.mc, b.nc))
}

/// _lowp_path(precision) -> str: the kernel `matmul(precision=...)` runs for "bf16"
/// or "int8" on the active backend ("reference" when the CPU lacks the instructions).
#[pyfunction]
fn _lowp_path(precision: &str) -> PyResult<&'static str> {
    let p: trueno::lowp::Precision = precision.parse().map_err(kernel_error)?;
    Ok(trueno::lowp::path(p).map_err(kernel_error)?.name())
}

/// Register this module's functions on the extension module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_machine_json, m)?)?;
    m.add_function(wrap_pyfunction!(_gemm_blocking, m)?)?;
    m.add_function(wrap_pyfunction!(_lowp_path, m)?)?;
    Ok(())
}
