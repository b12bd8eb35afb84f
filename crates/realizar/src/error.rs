//! One error type for every way loading or running a model can fail.

use std::path::PathBuf;

/// Result alias used across realizar.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with enough context to fix it.
#[derive(Debug)]
pub enum Error {
    /// A file could not be read.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file was read but its content is not what the format requires.
    Format { path: PathBuf, message: String },
    /// Input to a model was the wrong shape or value.
    InvalidInput(String),
    /// A kernel rejected its operands.
    Kernel(trueno::Error),
    /// A sequence (prompt plus generated tokens) longer than the model's context.
    ContextLength { tokens: usize, limit: usize },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Error::Format { path, message } => write!(f, "{}: {message}", path.display()),
            Error::InvalidInput(message) => write!(f, "invalid input: {message}"),
            Error::Kernel(e) => write!(f, "kernel error: {e}"),
            Error::ContextLength { tokens, limit } => write!(
                f,
                "this model's maximum context length is {limit} tokens, but {tokens} were requested"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Kernel(e) => Some(e),
            _ => None,
        }
    }
}

impl From<trueno::Error> for Error {
    fn from(e: trueno::Error) -> Self {
        Error::Kernel(e)
    }
}
