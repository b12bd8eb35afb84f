//! `realizar.serve(...)`: the Rust HTTP server, run from Python with the GIL released.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use realizar::server::{ServeOptions, ServerConfig, run};

/// Serve a model over HTTP until SIGINT or SIGTERM (blocks; the GIL is released).
#[pyfunction]
#[pyo3(signature = (model, host = "127.0.0.1".to_owned(), port = 8080, *, name = None,
                    max_batch = 4096, max_body_bytes = 8 * 1024 * 1024, timeout_secs = 30.0, threads = 0))]
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the CLI's options one to one"
)]
pub(crate) fn serve(
    py: Python<'_>,
    model: PathBuf,
    host: String,
    port: u16,
    name: Option<String>,
    max_batch: usize,
    max_body_bytes: usize,
    timeout_secs: f64,
    threads: usize,
) -> PyResult<()> {
    let config = ServerConfig {
        max_batch,
        max_body_bytes,
        request_timeout: Duration::try_from_secs_f64(timeout_secs)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("timeout_secs: {e}")))?,
        ..ServerConfig::default()
    };
    let opts = ServeOptions {
        model,
        host,
        port,
        name,
        config,
        threads,
    };
    py.detach(|| run(&opts))
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))
}
