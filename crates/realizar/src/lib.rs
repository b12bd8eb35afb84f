//! realizar: inference for real models, computed with trueno's kernels.

pub mod bert;
pub mod bpe;
pub mod chat_template;
pub mod encoder;
pub mod error;
pub mod gguf;
pub mod llm;
pub mod metrics;
pub mod model_io;
pub mod precision;
pub mod server;
pub mod tabular;
pub mod tokenizer;

pub use error::{Error, Result};
