//! The OpenAI embeddings API: request parsing and the response document.
//!
//! `POST /v1/embeddings` with `{"input": "text" | ["text", ...], "model": "...",
//! "encoding_format": "float" | "base64"}` answers
//! `{"object": "list", "data": [{"object": "embedding", "index": i, "embedding": ...}],
//! "model": "...", "usage": {"prompt_tokens": n, "total_tokens": n}}`.
//! With `base64`, each embedding is the base64 of its little-endian float32 bytes, which
//! is what the official client asks for by default and decodes with NumPy.

use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::{Value, json};

/// A model that turns texts into embedding vectors: what `/v1/embeddings` serves.
pub trait Embedder: Send + Sync {
    /// Length of each embedding.
    fn dim(&self) -> usize;
    /// Name the model reports.
    fn model_name(&self) -> &str;
    /// Number of tokens `text` is encoded with (for `usage`).
    fn count_tokens(&self, text: &str) -> usize;
    /// `texts.len() x dim()` embeddings, row-major.
    fn encode(&self, texts: &[&str], batch_size: usize, normalize: bool)
    -> crate::Result<Vec<f32>>;
}

/// How embeddings are written in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Float,
    Base64,
}

/// A checked embeddings request.
#[derive(Debug, Clone)]
pub(crate) struct EmbeddingRequest {
    pub(crate) input: Vec<String>,
    pub(crate) encoding: Encoding,
}

type Rejection = (StatusCode, String);

fn reject<T>(message: impl Into<String>) -> Result<T, Rejection> {
    Err((StatusCode::BAD_REQUEST, message.into()))
}

impl EmbeddingRequest {
    /// Check a request body against the served model.
    pub(crate) fn parse(
        body: &Value,
        served: &str,
        dim: usize,
        max_batch: usize,
    ) -> Result<Self, Rejection> {
        let Value::Object(obj) = body else {
            return reject("the request body must be a JSON object with \"input\" and \"model\"");
        };
        let input = match obj.get("input") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    return reject("'input' must not be an empty list");
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::String(s) => Ok(s.clone()),
                        Value::Number(_) | Value::Array(_) => reject(format!(
                            "input[{i}]: token-id input is not supported; send text"
                        )),
                        _ => reject(format!("input[{i}] must be a string")),
                    })
                    .collect::<Result<_, _>>()?
            }
            Some(_) => return reject("'input' must be a string or a list of strings"),
            None => return reject("missing required field 'input'"),
        };
        if input.len() > max_batch {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "batch of {} inputs exceeds the limit of {max_batch} inputs per request",
                    input.len()
                ),
            ));
        }
        match obj.get("model") {
            Some(Value::String(m)) if m == served => {}
            Some(Value::String(m)) => {
                return Err((
                    StatusCode::NOT_FOUND,
                    format!("model {m:?} not found: this server serves {served:?}"),
                ));
            }
            Some(_) => return reject("'model' must be a string"),
            None => return reject("missing required field 'model'"),
        }
        let encoding = match obj.get("encoding_format") {
            None | Some(Value::Null) => Encoding::Float,
            Some(Value::String(f)) if f == "float" => Encoding::Float,
            Some(Value::String(f)) if f == "base64" => Encoding::Base64,
            Some(other) => {
                return reject(format!(
                    "'encoding_format' must be \"float\" or \"base64\", got {other}"
                ));
            }
        };
        match obj.get("dimensions") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.as_u64() == Some(dim as u64) => {}
            Some(other) => {
                return reject(format!(
                    "'dimensions' {other} is not supported: this model embeds in {dim}"
                ));
            }
        }
        Ok(Self { input, encoding })
    }
}

/// Encode the request's texts and build the OpenAI response document.
pub(crate) fn embed(
    encoder: &dyn Embedder,
    req: &EmbeddingRequest,
    served: &str,
    batch: usize,
) -> crate::Result<Value> {
    let texts: Vec<&str> = req.input.iter().map(String::as_str).collect();
    let dim = encoder.dim();
    let vectors = encoder.encode(&texts, batch.max(1), true)?;
    let tokens: usize = texts.iter().map(|t| encoder.count_tokens(t)).sum();
    let data: Vec<Value> = vectors
        .chunks_exact(dim.max(1))
        .enumerate()
        .map(|(index, v)| {
            let embedding = match req.encoding {
                Encoding::Float => json!(v),
                Encoding::Base64 => {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": served,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

impl Embedder for crate::encoder::SentenceEncoder {
    fn dim(&self) -> usize {
        crate::encoder::SentenceEncoder::dim(self)
    }
    fn model_name(&self) -> &str {
        crate::encoder::SentenceEncoder::model_name(self)
    }
    fn count_tokens(&self, text: &str) -> usize {
        crate::encoder::SentenceEncoder::count_tokens(self, text)
    }
    fn encode(
        &self,
        texts: &[&str],
        batch_size: usize,
        normalize: bool,
    ) -> crate::Result<Vec<f32>> {
        crate::encoder::SentenceEncoder::encode(self, texts, batch_size, normalize)
    }
}

/// Load a sentence-encoder directory for serving; it is served under its model name.
pub(crate) fn load_encoder(dir: &Path) -> crate::Result<(Arc<dyn Embedder>, String)> {
    let encoder = crate::encoder::SentenceEncoder::load(dir)?;
    let name = encoder.model_name().to_owned();
    Ok((Arc::new(encoder), name))
}
