//! trueno: the Sovereign AI Stack's numeric kernels.
//!
//! Every kernel has a scalar reference implementation; SIMD backends are
//! selected once at run time and tested against that reference.

pub mod reduce;

pub use reduce::dot;

/// Errors a kernel reports instead of panicking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Two operands that must have the same length do not.
    LengthMismatch { left: usize, right: usize },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::LengthMismatch { left, right } => {
                write!(f, "length mismatch: {left} vs {right}")
            }
        }
    }
}

impl std::error::Error for Error {}
