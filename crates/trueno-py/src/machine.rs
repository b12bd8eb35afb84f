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
/// or "int8" on the active backend: "amx_bf16" / "amx_int8", "avx512_bf16" /
/// "avx512_vnni", or "reference" when the CPU lacks the instructions.
#[pyfunction]
fn _lowp_path(precision: &str) -> PyResult<&'static str> {
    let p: trueno::lowp::Precision = precision.parse().map_err(kernel_error)?;
    Ok(trueno::lowp::path(p).map_err(kernel_error)?.name())
}

/// _lowp_peak(precision) -> float | None: the probed peak (operations per second, a
/// multiply-add counts two, one core) of the AMX tile product `matmul(precision=...)`
/// runs on; None when it runs on another path (whose bound is the FMA-chain peak).
/// About 50 ms; the GIL is released meanwhile.
#[pyfunction]
fn _lowp_peak(py: Python<'_>, precision: &str) -> PyResult<Option<f64>> {
    let p: trueno::lowp::Precision = precision.parse().map_err(kernel_error)?;
    let path = trueno::lowp::path(p).map_err(kernel_error)?;
    if !matches!(
        path,
        trueno::lowp::Path::AmxBf16 | trueno::lowp::Path::AmxInt8
    ) {
        return Ok(None);
    }
    Ok(py.detach(|| trueno::lowp::probe_amx_peak(p)))
}

/// _set_amx(allowed) -> bool: allow or forbid the AMX paths for `matmul(precision=...)`
/// (forbidden, the AVX-512 kernels run: for comparing them); returns the previous
/// setting (`TRUENO_AMX` until first set).
#[pyfunction]
fn _set_amx(allowed: bool) -> PyResult<bool> {
    let before = trueno::lowp::amx_allowed().map_err(kernel_error)?;
    trueno::lowp::set_amx(allowed);
    Ok(before)
}

/// Register this module's functions on the extension module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_machine_json, m)?)?;
    m.add_function(wrap_pyfunction!(_gemm_blocking, m)?)?;
    m.add_function(wrap_pyfunction!(_lowp_path, m)?)?;
    m.add_function(wrap_pyfunction!(_lowp_peak, m)?)?;
    m.add_function(wrap_pyfunction!(_set_amx, m)?)?;
    Ok(())
}
