//! pacha: a model registry, the part of an ML platform that says which bytes *are*
//! "fraud-model, the champion", and proves it.
//!
//! What it teaches, each a module:
//!
//! - content addressing: an artifact is stored once, under the SHA-256 of its bytes, so
//!   a name can never silently point at different bytes ([`registry`]);
//! - versions, aliases (`champion`, `challenger`) and the model card (metrics, data
//!   hash, schema, lineage to the training run) ([`registry`]);
//! - signatures: each version's manifest is signed with Ed25519 and checked on every
//!   load, so a tampered, truncated or foreign artifact is refused with the reason
//!   ([`keys`], [`registry`]);
//! - crash safety: temp file, fsync, rename, fsync of the directory, in an order where
//!   a writer killed at any instant leaves a consistent registry ([`fsio`]);
//! - concurrency: one writer at a time through a lock file; readers need no lock;
//! - garbage collection of blobs no version names.
//!
//! The `pacha` command (src/main.rs) drives it; realizar loads `pacha://ROOT/name@alias`.

pub mod fsio;
pub mod keys;
pub mod registry;

use std::fmt;

pub use registry::{Loaded, Manifest, ModelRef, Registry};

/// What went wrong, for callers that react differently (exit codes, HTTP statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input: a name, alias, card or key file that does not follow the rules.
    Invalid,
    NotFound,
    /// Bytes on disk that do not match what was signed: edited, truncated, missing.
    Tampered,
    /// A signature that does not verify.
    BadSignature,
    /// A signature by a key the registry does not trust.
    Untrusted,
    Io,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: String) -> Error {
        Error { kind, message }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
