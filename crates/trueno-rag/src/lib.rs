//! trueno-rag: retrieval built from scratch on trueno's kernels.
//!
//! | module | teaches |
//! |---|---|
//! | [`chunk`] | cutting documents into passages: fixed windows (chars or tokens) with overlap, recursive on separators, sentences, markdown sections |
//! | [`bm25`] | lexical retrieval: an analyser and an inverted index scored with BM25 Okapi (equal to `rank_bm25`) |
//! | [`hnsw`] | approximate nearest neighbours on a layered graph: insert, delete, filtered search, checked files; exact search as the baseline |
//! | [`filter`] | metadata filters in Databricks Vector Search's dictionary syntax |
//! | [`fusion`] | hybrid retrieval: weighted reciprocal rank fusion of ranked lists |
//! | [`eval`] | recall@k, precision@k, MRR, nDCG |
//! | [`ground`] | groundedness of an answer against retrieved passages, with its method and limits |
//!
//! Distances are never computed here: every score comes from a trueno kernel
//! (`trueno::scores_gather`, `trueno::top_k`, `trueno::cosine`). Errors are
//! values ([`Error`]).

pub mod bm25;
pub mod chunk;
mod error;
pub mod eval;
pub mod filter;
pub mod fusion;
pub mod ground;
pub mod hnsw;

pub use error::{Error, Result};
