//! Errors as values: every public function returns `Result<_, Error>`.

use std::fmt;

/// What went wrong, with the offending values named.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A parameter outside its domain (size 0, overlap >= size, k = 0, ...).
    InvalidParam(String),
    /// A vector whose length is not the index dimension.
    Dimension { expected: usize, got: usize },
    /// A label that the index does not hold.
    UnknownLabel(u64),
    /// A file that is not a valid index (bad magic, version, checksum, truncated).
    Corrupt(String),
    /// Reading or writing a file failed.
    Io(std::io::Error),
    /// A trueno kernel refused its input.
    Kernel(trueno::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidParam(m) => f.write_str(m),
            Error::Dimension { expected, got } => {
                write!(
                    f,
                    "vector has dimension {got}, the index expects {expected}"
                )
            }
            Error::UnknownLabel(l) => write!(f, "label {l} is not in the index"),
            Error::Corrupt(m) => write!(f, "corrupt index file: {m}"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Kernel(e) => write!(f, "kernel error: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<trueno::Error> for Error {
    fn from(e: trueno::Error) -> Self {
        Error::Kernel(e)
    }
}

/// Shorthand for an [`Error::InvalidParam`].
pub(crate) fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidParam(msg.into())
}

pub type Result<T> = std::result::Result<T, Error>;
