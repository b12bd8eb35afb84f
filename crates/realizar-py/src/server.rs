//! `realizar serve ...` from Python: the Rust command line (`realizar::server::cli`),
//! run with the GIL released. The options, defaults and help text live there only.

use pyo3::prelude::*;

/// Run `realizar` with `argv` (without the program name); returns the exit status.
/// Blocks until the server shuts down (SIGINT or SIGTERM).
#[pyfunction]
#[allow(
    clippy::needless_pass_by_value,
    reason = "pyo3 converts a Python list into an owned Vec"
)]
pub(crate) fn cli_main(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.detach(|| realizar::server::cli::main(&argv))
}
