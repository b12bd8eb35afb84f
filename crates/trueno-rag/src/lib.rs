//! trueno-rag: retrieval built from scratch on trueno's kernels.
//!
//! | module | teaches |
//! |---|---|
//! | [`chunk`] | cutting documents into passages: fixed windows (chars or tokens) with overlap, recursive on separators, sentences, markdown sections |
//! | [`bm25`] | lexical retrieval: an analyser and an inverted index scored with BM25 Okapi (equal to `rank_bm25`) |
//!
//! Distances are never computed here: every score comes from a trueno kernel
//! (`trueno::scores_gather`, `trueno::top_k`, `trueno::cosine`). Errors are
//! values ([`Error`]).

pub mod bm25;
pub mod chunk;
mod error;

pub use error::{Error, Result};
