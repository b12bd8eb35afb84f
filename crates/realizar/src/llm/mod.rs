//! A generative language model (Llama architecture, GGUF weights) and text
//! generation: prefill, decode with a KV cache, sampling and stopping rules.
//!
//! [`Llm::load`] reads a GGUF file once: block-quantised weights (Q8_0, Q4_0,
//! Q4_1) stay in their blocks (read directly by `trueno::quant`), F32 and F16
//! matrices are decoded once into the rows `trueno`'s dense and `trueno::f16`
//! kernels read, and one file may mix them; the tokenizer and chat template
//! come from the file's metadata. [`Llm::generate`] runs one request: its own
//! KV cache and scratch buffers (so concurrent requests never wait for one
//! another), batched prefill of the prompt, then one token at a time through
//! [`sample`], until a stop token, a stop sequence, `max_tokens`, the context
//! limit, or the caller's callback cancels.

mod model;
pub mod sample;

use std::path::Path;

pub use model::LlamaConfig;
use model::{Model, Session, Want};
pub use sample::{Rng, SamplingParams};

use crate::bpe::{BpeConfig, BpeTokenizer};
use crate::gguf::{Gguf, Value};
use crate::{Error, Result};

/// Options of one generation request.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Most tokens to generate (the stop token is not counted in `tokens`).
    pub max_tokens: usize,
    /// 0 is greedy (argmax); must be finite and >= 0.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches `top_p`, in (0, 1].
    pub top_p: f32,
    /// llama.cpp's penalty on the last 64 tokens: positive logits divided,
    /// negative multiplied; 1 is off, must be > 0.
    pub repetition_penalty: f32,
    /// Seed of the sampler: the same seed, prompt and options give the same tokens.
    pub seed: u64,
    /// Extra token ids that end generation (the model's end-of-sequence always does).
    pub stop_token_ids: Vec<u32>,
    /// Text that ends generation; the text returned stops before it.
    pub stop: Vec<String>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 128,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: 0,
            stop_token_ids: Vec::new(),
            stop: Vec::new(),
        }
    }
}

impl GenerateOptions {
    /// Refuse options no sampler can honour (the server answers them with 400).
    pub fn validate(&self) -> Result<()> {
        let t = self.temperature;
        if !t.is_finite() || t < 0.0 {
            return Err(Error::InvalidInput(format!(
                "temperature must be a finite number >= 0, got {t}"
            )));
        }
        let p = self.top_p;
        if !(p > 0.0 && p <= 1.0) {
            return Err(Error::InvalidInput(format!(
                "top_p must be in (0, 1], got {p}"
            )));
        }
        let r = self.repetition_penalty;
        if !r.is_finite() || r <= 0.0 {
            return Err(Error::InvalidInput(format!(
                "repetition_penalty must be a finite number > 0, got {r}"
            )));
        }
        if self.stop.iter().any(String::is_empty) {
            return Err(Error::InvalidInput(
                "stop sequences must not be empty strings".into(),
            ));
        }
        Ok(())
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// A stop token or stop sequence.
    Stop,
    /// `max_tokens` reached, or the context is full.
    Length,
    /// The callback returned false (the client went away).
    Cancelled,
}

impl FinishReason {
    /// The OpenAI name (`stop`, `length`; a cancelled request reports `stop`
    /// nowhere since nobody listens, but `cancelled` names it in logs).
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "cancelled",
        }
    }
}

/// The result of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// Generated token ids, without the stop token; when a stop sequence
    /// ended generation, the tokens up to and including the one that
    /// completed it.
    pub tokens: Vec<u32>,
    /// Decoded text, cut before the first stop sequence.
    pub text: String,
    pub finish_reason: FinishReason,
    pub prompt_tokens: usize,
    /// Tokens sampled (the stop token included, as OpenAI counts them).
    pub completion_tokens: usize,
}

/// A loaded model: weights, tokenizer, chat template. `Send + Sync`: one
/// `Arc<Llm>` serves concurrent requests.
#[derive(Debug)]
pub struct Llm {
    model: Model,
    tokenizer: BpeTokenizer,
    chat_template: Option<String>,
    name: String,
    threads: usize,
}

fn strings(g: &Gguf, key: &str) -> Result<Vec<String>> {
    let v = g.meta(key)?;
    let items = v.as_array().ok_or_else(|| Error::Format {
        path: g.path.clone(),
        message: format!("{key} must be an array of strings"),
    })?;
    items
        .iter()
        .map(|s| {
            s.as_str().map(str::to_owned).ok_or_else(|| Error::Format {
                path: g.path.clone(),
                message: format!("{key} must be an array of strings, found {s:?}"),
            })
        })
        .collect()
}

fn opt_id(g: &Gguf, key: &str) -> Option<u32> {
    g.file
        .get(key)
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
}

impl Llm {
    /// Load a GGUF file; `threads` (>= 1) threads compute each matrix product.
    pub fn load(path: &Path, threads: usize) -> Result<Llm> {
        if threads == 0 {
            return Err(Error::InvalidInput("threads must be at least 1".into()));
        }
        let g = Gguf::open(path)?;
        let model_kind = g.meta("tokenizer.ggml.model")?;
        if model_kind.as_str() != Some("gpt2") {
            return Err(Error::Format {
                path: path.to_owned(),
                message: format!(
                    "tokenizer.ggml.model is {model_kind:?}; only byte-level BPE (gpt2) is supported"
                ),
            });
        }
        let tokens = strings(&g, "tokenizer.ggml.tokens")?;
        let merges = strings(&g, "tokenizer.ggml.merges")?;
        let token_types = match g.file.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .as_array()
                .unwrap_or(&[])
                .iter()
                .map(|t| match t {
                    Value::I32(t) => Ok(*t),
                    other => Err(Error::Format {
                        path: path.to_owned(),
                        message: format!("tokenizer.ggml.token_type holds {other:?}, not i32"),
                    }),
                })
                .collect::<Result<Vec<i32>>>()?,
            None => vec![1; tokens.len()],
        };
        let cfg = BpeConfig {
            tokens,
            merges,
            token_types,
            bos: opt_id(&g, "tokenizer.ggml.bos_token_id"),
            eos: opt_id(&g, "tokenizer.ggml.eos_token_id"),
            pad: opt_id(&g, "tokenizer.ggml.padding_token_id"),
            unk: opt_id(&g, "tokenizer.ggml.unknown_token_id"),
            add_bos: g
                .file
                .get("tokenizer.ggml.add_bos_token")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            pre: g
                .file
                .get("tokenizer.ggml.pre")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_owned(),
        };
        let tokenizer = BpeTokenizer::new(cfg)?;
        let chat_template = g
            .file
            .get("tokenizer.chat_template")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let name = g
            .file
            .get("general.name")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
        let model = Model::from_gguf(g)?;
        if tokenizer.vocab_size() != model.cfg.vocab {
            return Err(Error::Format {
                path: path.to_owned(),
                message: format!(
                    "tokenizer has {} tokens but the embedding has {} rows",
                    tokenizer.vocab_size(),
                    model.cfg.vocab
                ),
            });
        }
        Ok(Llm {
            model,
            tokenizer,
            chat_template,
            name,
            threads,
        })
    }

    pub fn tokenizer(&self) -> &BpeTokenizer {
        &self.tokenizer
    }

    /// The Jinja chat template stored in the file (`tokenizer.chat_template`).
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// Most tokens (prompt + generated) one sequence may hold.
    pub fn context_length(&self) -> usize {
        self.model.cfg.context_length
    }

    /// `general.name` from the file.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.model.cfg
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The same model with prefill's weight products (every product over two or more
    /// tokens: the prompt's pass through the layers, and all-position logits) in
    /// `precision` through `trueno::lowp`: `Bf16` or `Int8` converts every layer matrix
    /// and the output matrix once, here (about 2 or 1 bytes per weight more memory);
    /// decode (one token per step) is unchanged. Opt-in: the default is f32, and `F32`
    /// goes back. Which kernel runs: [`crate::precision::lowp_path`].
    pub fn with_prefill_precision(mut self, precision: trueno::lowp::Precision) -> Result<Llm> {
        self.model.set_prefill_precision(precision)?;
        Ok(self)
    }

    /// The arithmetic of prefill's weight products.
    pub fn prefill_precision(&self) -> trueno::lowp::Precision {
        self.model.prefill_precision()
    }

    /// Logits (`ids.len() x vocab`, row-major) of every position of `ids`.
    pub fn logits(&self, ids: &[u32]) -> Result<Vec<f32>> {
        self.check_prompt(ids)?;
        let mut s = Session::new(&self.model, ids.len(), self.threads);
        self.model.forward(&mut s, ids, Want::All)?;
        Ok(s.logits)
    }

    fn check_prompt(&self, ids: &[u32]) -> Result<()> {
        if ids.is_empty() {
            return Err(Error::InvalidInput("the prompt has no tokens".into()));
        }
        if ids.len() > self.context_length() {
            return Err(Error::ContextLength {
                tokens: ids.len(),
                limit: self.context_length(),
            });
        }
        Ok(())
    }

    /// Generate from `prompt_ids`. `on_token` sees each token once it can no
    /// longer be part of a stop sequence (tokens that complete a stop sequence
    /// are never passed); returning false cancels.
    pub fn generate(
        &self,
        prompt_ids: &[u32],
        opts: &GenerateOptions,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> Result<Generation> {
        opts.validate()?;
        self.check_prompt(prompt_ids)?;
        let ctx = self.context_length();
        let capacity = (prompt_ids.len() + opts.max_tokens).min(ctx);
        let mut s = Session::new(&self.model, capacity, self.threads);
        let mut stops: Vec<u32> = opts.stop_token_ids.clone();
        stops.extend(self.tokenizer.eos_id());
        let params = SamplingParams {
            temperature: opts.temperature,
            top_k: opts.top_k,
            top_p: opts.top_p,
            repetition_penalty: opts.repetition_penalty,
        };
        let mut rng = Rng::new(opts.seed);
        let mut history: Vec<u32> = prompt_ids.to_vec();
        let mut tokens: Vec<u32> = Vec::new();
        let mut emitted = 0usize; // tokens already passed to on_token
        let mut sampled = 0usize;
        let mut scratch = sample::Scratch::default();
        let mut finish = FinishReason::Length;
        let mut cut: Option<usize> = None;

        if opts.max_tokens > 0 {
            self.model.forward(&mut s, prompt_ids, Want::Last)?;
        }
        while tokens.len() < opts.max_tokens {
            let next = sample::sample(&mut s.logits, &history, &params, &mut rng, &mut scratch);
            sampled += 1;
            if stops.contains(&next) {
                finish = FinishReason::Stop;
                break;
            }
            tokens.push(next);
            history.push(next);
            if opts.stop.is_empty() {
                emitted += 1;
                if !on_token(next) {
                    finish = FinishReason::Cancelled;
                    break;
                }
            } else {
                let text = self.tokenizer.decode(&tokens);
                if let Some(at) = opts
                    .stop
                    .iter()
                    .filter_map(|st| text.find(st.as_str()))
                    .min()
                {
                    cut = Some(at);
                    finish = FinishReason::Stop;
                    break;
                }
                // Hold back the tail of the text that could still begin a stop sequence.
                let held = opts
                    .stop
                    .iter()
                    .map(|st| overlap(&text, st))
                    .max()
                    .unwrap_or(0);
                let safe = text.len() - held;
                while emitted < tokens.len()
                    && self.tokenizer.decode(&tokens[..=emitted]).len() <= safe
                {
                    if !on_token(tokens[emitted]) {
                        finish = FinishReason::Cancelled;
                        break;
                    }
                    emitted += 1;
                }
                if finish == FinishReason::Cancelled {
                    break;
                }
            }
            if tokens.len() >= opts.max_tokens || s.pos >= ctx {
                // max_tokens reached, or no position left to feed `next`.
                break;
            }
            self.model.forward(&mut s, &[next], Want::Last)?;
        }
        if finish == FinishReason::Length {
            // Nothing can follow: release what was held back.
            while emitted < tokens.len() {
                if !on_token(tokens[emitted]) {
                    finish = FinishReason::Cancelled;
                    break;
                }
                emitted += 1;
            }
        }
        let mut text = self.tokenizer.decode(&tokens);
        if let Some(at) = cut {
            text.truncate(at);
        }
        Ok(Generation {
            tokens,
            text,
            finish_reason: finish,
            prompt_tokens: prompt_ids.len(),
            completion_tokens: sampled,
        })
    }
}

/// The length of the longest suffix of `text` that is a proper prefix of `stop`.
fn overlap(text: &str, stop: &str) -> usize {
    (1..stop.len().min(text.len() + 1))
        .rev()
        .find(|&k| {
            stop.is_char_boundary(k)
                && text.is_char_boundary(text.len() - k)
                && text.ends_with(&stop[..k])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        let ok = GenerateOptions::default();
        assert!(ok.validate().is_ok());
        for bad in [
            GenerateOptions {
                temperature: -0.1,
                ..ok.clone()
            },
            GenerateOptions {
                temperature: f32::NAN,
                ..ok.clone()
            },
            GenerateOptions {
                top_p: 0.0,
                ..ok.clone()
            },
            GenerateOptions {
                top_p: 1.5,
                ..ok.clone()
            },
            GenerateOptions {
                repetition_penalty: 0.0,
                ..ok.clone()
            },
            GenerateOptions {
                stop: vec![String::new()],
                ..ok.clone()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::InvalidInput(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn stop_prefixes() {
        assert_eq!(overlap("hello <|im", "<|im_end|>"), 4);
        assert_eq!(overlap("hello", "<|im_end|>"), 0);
        assert_eq!(overlap("ab\n", "\n\n"), 1);
        assert_eq!(overlap("", "x"), 0);
        assert_eq!(overlap("naï", "ïve"), "ï".len());
        assert_eq!(overlap("abc", "abc"), 0); // a whole match is found by `find`, not here
    }
}
