//! Sentence embeddings: tokenizer + BERT + mean pooling + L2 normalisation, the
//! recipe of sentence-transformers models such as all-MiniLM-L6-v2.
//!
//! Texts are sorted by token count before batching, so each batch holds sentences of
//! similar length; with packed attention (see [`crate::bert`]) no padding is computed at
//! all, and the order of results is restored at the end.

use std::path::Path;

use serde_json::Value;

use crate::bert::BertModel;
use crate::error::{Error, Result};
use crate::model_io::read_json;
use crate::tokenizer::WordPiece;

/// A loaded sentence encoder. Read-only after [`SentenceEncoder::load`], so one instance
/// can serve many threads.
#[derive(Debug)]
pub struct SentenceEncoder {
    tokenizer: WordPiece,
    model: BertModel,
    name: String,
    threads: usize,
}

/// The name a model directory is known by: its own name, or its parent's when the
/// directory is a generic `model` folder inside a package.
fn directory_name(dir: &Path) -> String {
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let own = canonical.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !own.is_empty() && own != "model" {
        return own.to_owned();
    }
    canonical
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .map(|n| n.replace('_', "-"))
        .unwrap_or_else(|| "sentence-encoder".to_owned())
}

impl SentenceEncoder {
    /// Load a sentence-transformers model directory: `config.json`,
    /// `model.safetensors`, `tokenizer.json` or `vocab.txt`, and optionally
    /// `sentence_bert_config.json` and `1_Pooling/config.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "model directory does not exist",
                ),
            });
        }
        let model = BertModel::load(dir)?;
        let config = model.config();
        let mut tokenizer = WordPiece::load(dir)?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(Error::Format {
                path: WordPiece::vocabulary_path(dir),
                message: format!(
                    "the vocabulary has {} tokens but the model only {} embeddings",
                    tokenizer.vocab_size(),
                    config.vocab_size
                ),
            });
        }
        if tokenizer.max_length() > config.max_position_embeddings {
            tokenizer = tokenizer.with_max_length(config.max_position_embeddings)?;
        }
        let pooling = dir.join("1_Pooling").join("config.json");
        if pooling.is_file() {
            let p = read_json(&pooling)?;
            let flag = |k: &str| p.get(k).and_then(Value::as_bool).unwrap_or(false);
            if !flag("pooling_mode_mean_tokens")
                || flag("pooling_mode_cls_token")
                || flag("pooling_mode_max_tokens")
                || flag("pooling_mode_mean_sqrt_len_tokens")
            {
                return Err(Error::Format {
                    path: pooling,
                    message: "only mean pooling is supported".into(),
                });
            }
        }
        Ok(Self {
            tokenizer,
            model,
            name: directory_name(dir),
            threads: 1,
        })
    }

    /// The same encoder under another name (what the server reports as `model`).
    pub fn with_model_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The same encoder running its matmuls on `threads` threads (default 1).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// The same encoder with its weight matmuls in `precision` (bf16 or int8 through
    /// `trueno::lowp`, weights packed once; see `BertModel::with_precision`). Opt-in:
    /// the default is f32.
    pub fn with_precision(mut self, precision: trueno::lowp::Precision) -> Result<Self> {
        self.model = self.model.with_precision(precision)?;
        Ok(self)
    }

    /// The arithmetic of the weight matmuls.
    pub fn precision(&self) -> trueno::lowp::Precision {
        self.model.precision()
    }

    /// Threads used by the matmuls.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Embedding width (384 for MiniLM-L6).
    pub fn dim(&self) -> usize {
        self.model.config().hidden_size
    }

    /// The model's name.
    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// The tokenizer the encoder uses.
    pub fn tokenizer(&self) -> &WordPiece {
        &self.tokenizer
    }

    /// Longest input in tokens (`[CLS]`/`[SEP]` included); longer texts are truncated.
    pub fn max_seq_length(&self) -> usize {
        self.tokenizer.max_length()
    }

    /// Tokens the model sees for `text`: `[CLS]` and `[SEP]` included, after truncation.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer.count_tokens(text)
    }

    /// Embed `texts`: `texts.len() x dim` floats, row-major, in input order.
    ///
    /// `batch_size` texts of similar length go through the model together; with
    /// `normalize` every row has unit L2 norm (as for cosine similarity).
    pub fn encode(&self, texts: &[&str], batch_size: usize, normalize: bool) -> Result<Vec<f32>> {
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| self.tokenizer.encode(t).ids).collect();
        self.encode_ids(&ids, batch_size, normalize)
    }

    /// Embed already tokenised texts (each `[CLS] ... [SEP]`, unpadded).
    pub fn encode_ids(
        &self,
        ids: &[Vec<u32>],
        batch_size: usize,
        normalize: bool,
    ) -> Result<Vec<f32>> {
        if batch_size == 0 {
            return Err(Error::InvalidInput("batch_size must be at least 1".into()));
        }
        let dim = self.dim();
        let mut out = vec![0.0f32; ids.len() * dim];
        // Longest first: the first batch shows the peak memory at once.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        for chunk in order.chunks(batch_size) {
            let lengths: Vec<usize> = chunk.iter().map(|&i| ids[i].len()).collect();
            let packed: Vec<u32> = chunk.iter().flat_map(|&i| ids[i].iter().copied()).collect();
            let hidden = self.model.forward(&packed, &lengths, self.threads)?;
            let mut row = 0;
            for (&i, &len) in chunk.iter().zip(&lengths) {
                let dst = &mut out[i * dim..(i + 1) * dim];
                mean_pool(&hidden[row * dim..(row + len) * dim], dim, dst)?;
                if normalize {
                    l2_normalize(dst)?;
                }
                row += len;
            }
        }
        Ok(out)
    }

    /// Embed a padded batch as produced by [`WordPiece::encode_batch`]: `batch` rows
    /// of `seq_len` ids with their attention mask (ones, then zeros for padding).
    pub fn encode_padded(
        &self,
        ids: &[u32],
        attention_mask: &[u32],
        seq_len: usize,
        normalize: bool,
    ) -> Result<Vec<f32>> {
        if ids.len() != attention_mask.len() || seq_len == 0 || !ids.len().is_multiple_of(seq_len) {
            return Err(Error::InvalidInput(format!(
                "{} ids and {} mask values do not form rows of {seq_len}",
                ids.len(),
                attention_mask.len()
            )));
        }
        let mut rows = Vec::with_capacity(ids.len() / seq_len);
        for (r, m) in ids
            .chunks_exact(seq_len)
            .zip(attention_mask.chunks_exact(seq_len))
        {
            let len = m.iter().take_while(|&&x| x != 0).count();
            if m[len..].iter().any(|&x| x != 0) {
                return Err(Error::InvalidInput(
                    "attention mask must be ones followed by zeros (right padding)".into(),
                ));
            }
            rows.push(r[..len].to_vec());
        }
        let n = rows.len().max(1);
        self.encode_ids(&rows, n, normalize)
    }
}

/// Mean of the `len x dim` token rows (an empty sentence pools to zeros).
fn mean_pool(hidden: &[f32], dim: usize, out: &mut [f32]) -> Result<()> {
    out.fill(0.0);
    let n = hidden.len() / dim;
    if n == 0 {
        return Ok(());
    }
    for row in hidden.chunks_exact(dim) {
        trueno::axpy(1.0, row, out)?;
    }
    let acc = out.to_vec();
    trueno::scale(&acc, 1.0 / n as f32, out)?;
    Ok(())
}

/// Scale to unit L2 norm; the zero vector stays zero (sentence-transformers clamps the
/// norm at 1e-12 the same way).
fn l2_normalize(v: &mut [f32]) -> Result<()> {
    let norm = trueno::dot(v, v)?.sqrt().max(1e-12);
    let acc = v.to_vec();
    trueno::scale(&acc, 1.0 / norm, v)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_and_normalisation() {
        let hidden = [1.0, 2.0, 3.0, 6.0];
        let mut out = [0.0; 2];
        mean_pool(&hidden, 2, &mut out).unwrap();
        assert_eq!(out, [2.0, 4.0]);
        l2_normalize(&mut out).unwrap();
        assert!((out[0] - 1.0 / 5f32.sqrt()).abs() < 1e-6);
        let mut zero = [0.0; 3];
        l2_normalize(&mut zero).unwrap();
        assert_eq!(zero, [0.0; 3]);
    }

    #[test]
    fn missing_directory_is_an_error() {
        let err = SentenceEncoder::load(Path::new("/nonexistent/model")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/model"));
    }

    /// The tiny random BERT of `bert.rs` with a 20-token vocabulary.
    fn tiny_encoder(tag: &str) -> (SentenceEncoder, std::path::PathBuf) {
        let dir = crate::bert::tiny_model_dir(tag, 2);
        let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncat\nsat\non\nmat\n\
                     a\ndog\nran\n.\n,\n##s\nred\nblue\nbig\nsmall\n";
        std::fs::write(dir.join("vocab.txt"), vocab).unwrap();
        (SentenceEncoder::load(&dir).unwrap(), dir)
    }

    #[test]
    fn padded_batch_with_mask_equals_unpadded_texts() {
        let (enc, dir) = tiny_encoder("padded");
        assert_eq!((enc.dim(), enc.max_seq_length()), (8, 16));
        let texts = ["the cat sat on the mat.", "a dog", ""];
        let batch = enc.tokenizer().encode_batch(&texts);
        let seq_len = batch[0].ids.len();
        let ids: Vec<u32> = batch.iter().flat_map(|e| e.ids.clone()).collect();
        let mask: Vec<u32> = batch
            .iter()
            .flat_map(|e| e.attention_mask.clone())
            .collect();
        let padded = enc.encode_padded(&ids, &mask, seq_len, true).unwrap();
        let plain = enc.encode(&texts, 2, true).unwrap();
        let one_by_one: Vec<f32> = texts
            .iter()
            .flat_map(|t| enc.encode(&[t], 1, true).unwrap())
            .collect();
        for ((a, b), c) in padded.iter().zip(&plain).zip(&one_by_one) {
            assert!((a - b).abs() < 1e-6 && (a - c).abs() < 1e-6, "{a} {b} {c}");
        }
        for row in plain.chunks(8) {
            let norm: f32 = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        }
        // Truncated to the 16 positions of the tiny model.
        assert_eq!(enc.count_tokens(&"cat ".repeat(40)), 16);
        assert_eq!(
            enc.encode(&[&"cat ".repeat(40)], 4, false).unwrap().len(),
            8
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_padded_input_and_batch_size_are_errors() {
        let (enc, dir) = tiny_encoder("badpad");
        assert!(enc.encode_padded(&[2, 5, 0], &[1, 0, 1], 3, true).is_err());
        assert!(enc.encode_padded(&[2, 5, 3], &[1, 1], 3, true).is_err());
        assert!(enc.encode_padded(&[2, 5, 3], &[1, 1, 1], 0, true).is_err());
        assert!(enc.encode(&["cat"], 0, true).is_err());
        assert!(enc.encode(&[], 4, true).unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn encoder_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SentenceEncoder>();
    }
}
