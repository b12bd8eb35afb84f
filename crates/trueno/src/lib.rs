//! trueno: the Sovereign AI Stack's numeric kernels.
//!
//! Every kernel has a scalar reference implementation; SIMD backends are
//! selected once at run time ([`backend`]) and tested against that reference.

pub mod backend;
pub mod matmul;
pub mod reduce;

pub use backend::{Backend, set_backend};
pub use matmul::{gemv, gemv_f64, matmul, matmul_f64};
pub use reduce::dot;

/// Errors a kernel reports instead of panicking.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Two operands that must have the same length do not.
    LengthMismatch { left: usize, right: usize },
    /// A backend name that is not one of `scalar`, `avx2`, `avx512`, `neon`.
    UnknownBackend(String),
    /// The CPU (or build target) lacks features the backend needs.
    UnsupportedBackend {
        backend: &'static str,
        missing: String,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::LengthMismatch { left, right } => {
                write!(f, "length mismatch: {left} vs {right}")
            }
            Error::UnknownBackend(name) => write!(
                f,
                "unknown backend {name:?}: expected one of scalar, avx2, avx512, neon"
            ),
            Error::UnsupportedBackend { backend, missing } => {
                write!(
                    f,
                    "backend {backend} is not supported on this CPU: missing {missing}"
                )
            }
        }
    }
}

impl std::error::Error for Error {}
