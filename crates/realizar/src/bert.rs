//! A BERT encoder forward pass (the architecture of MiniLM and most sentence
//! embedders), computed with trueno's kernels.
//!
//! ```text
//! x = LayerNorm(word[id] + position[i] + token_type[0])
//! repeat num_hidden_layers times:
//!     q, k, v = x Wq + bq, x Wk + bk, x Wv + bv           (one fused matmul)
//!     per head: ctx = softmax(q kᵀ / sqrt(d)) v            (only within one sentence)
//!     x = LayerNorm(x + ctx Wo + bo)
//!     x = LayerNorm(x + GELU(x Wi + bi) Wo2 + bo2)
//! ```
//!
//! Sentences are **packed**, not padded: the tokens of a whole batch sit in one
//! `tokens x hidden` matrix, so every linear layer is one large matmul with no rows
//! wasted on padding, and attention runs per sentence over exactly its own tokens. That
//! is the attention mask applied by construction: a padded position is never computed,
//! so it can neither attend nor be attended to.
//!
//! Weights are rearranged once at load: PyTorch stores a Linear as `out x in` and
//! computes `x Wᵀ`; here each is transposed to `in x out` so the forward pass is a plain
//! row-major `x W`, the query/key/value projections are fused into one `hidden x
//! 3*hidden` matrix, and the `1/sqrt(head_dim)` attention scale is folded into the
//! query weights.

use std::path::Path;

use serde_json::Value;
use trueno::PackedRhs;
use trueno::lowp::{Lhs, PackedB, Precision};

use crate::error::{Error, Result};
use crate::model_io::{Tensors, read_json};

/// The hyper-parameters of a BERT checkpoint (`config.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f32,
}

/// Upper bound on any one dimension read from a config: generous for real models,
/// small enough that a corrupt config cannot ask for absurd allocations.
const MAX_DIM: u64 = 1 << 20;

impl BertConfig {
    /// Parse and check `config.json`.
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let v = read_json(path)?;
        Self::from_json(&v).map_err(|message| Error::Format {
            path: path.to_path_buf(),
            message,
        })
    }

    fn from_json(v: &Value) -> std::result::Result<Self, String> {
        if let Some(t) = v.get("model_type").and_then(Value::as_str)
            && t != "bert"
        {
            return Err(format!("model_type is {t:?}; only \"bert\" is supported"));
        }
        if let Some(act) = v.get("hidden_act").and_then(Value::as_str)
            && act != "gelu"
        {
            return Err(format!(
                "hidden_act is {act:?}; only \"gelu\" (the erf form) is supported"
            ));
        }
        if let Some(p) = v.get("position_embedding_type").and_then(Value::as_str)
            && p != "absolute"
        {
            return Err(format!(
                "position_embedding_type is {p:?}; only \"absolute\" is supported"
            ));
        }
        let dim = |key: &str, default: Option<u64>| -> std::result::Result<usize, String> {
            let n = match v.get(key) {
                Some(x) => x
                    .as_u64()
                    .ok_or_else(|| format!("{key} must be a positive integer, got {x}"))?,
                None => default.ok_or_else(|| format!("missing {key}"))?,
            };
            if n == 0 || n > MAX_DIM {
                return Err(format!("{key} = {n} is outside 1..={MAX_DIM}"));
            }
            usize::try_from(n).map_err(|_| format!("{key} = {n} does not fit"))
        };
        let cfg = Self {
            vocab_size: dim("vocab_size", None)?,
            hidden_size: dim("hidden_size", None)?,
            num_hidden_layers: dim("num_hidden_layers", None)?,
            num_attention_heads: dim("num_attention_heads", None)?,
            intermediate_size: dim("intermediate_size", None)?,
            max_position_embeddings: dim("max_position_embeddings", Some(512))?,
            type_vocab_size: dim("type_vocab_size", Some(2))?,
            layer_norm_eps: v
                .get("layer_norm_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-12) as f32,
        };
        if !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                cfg.hidden_size, cfg.num_attention_heads
            ));
        }
        if !(cfg.layer_norm_eps.is_finite() && cfg.layer_norm_eps >= 0.0) {
            return Err(format!("layer_norm_eps {} is invalid", cfg.layer_norm_eps));
        }
        Ok(cfg)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

#[derive(Debug)]
struct Layer {
    /// `hidden x 3*hidden`: query (pre-scaled), key, value side by side.
    qkv_w: PackedRhs<f32>,
    qkv_b: Vec<f32>,
    out_w: PackedRhs<f32>,
    out_b: Vec<f32>,
    ln1_w: Vec<f32>,
    ln1_b: Vec<f32>,
    up_w: PackedRhs<f32>,
    up_b: Vec<f32>,
    down_w: PackedRhs<f32>,
    down_b: Vec<f32>,
    ln2_w: Vec<f32>,
    ln2_b: Vec<f32>,
}

/// BERT weights, rearranged for row-major `x W` matmuls.
#[derive(Debug)]
pub struct BertModel {
    config: BertConfig,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    emb_ln_w: Vec<f32>,
    emb_ln_b: Vec<f32>,
    layers: Vec<Layer>,
    /// The arithmetic of the four weight matmuls per layer (f32 unless opted out).
    precision: Precision,
    /// With a reduced precision: each layer's weights converted and packed once.
    packed: Vec<PackedLayer>,
}

/// One layer's weight matrices packed for `trueno::lowp` (bf16 or int8). The attention
/// products (activations times activations) stay f32.
#[derive(Debug)]
struct PackedLayer {
    qkv: PackedB,
    out: PackedB,
    up: PackedB,
    down: PackedB,
}

/// PyTorch `out x in` to row-major `in x out`, times `scale`.
fn transpose(w: &[f32], out_dim: usize, in_dim: usize, scale: f32) -> Vec<f32> {
    let mut t = vec![0.0; w.len()];
    for o in 0..out_dim {
        for i in 0..in_dim {
            t[i * out_dim + o] = w[o * in_dim + i] * scale;
        }
    }
    t
}

/// Pack a `k x n` weight matrix once, at load, for the active backend's f32 kernels.
fn pack(w: &[f32], k: usize, n: usize) -> Result<PackedRhs<f32>> {
    Ok(trueno::pack_rhs(w, k, n)?)
}

/// Add `bias` to every row of `x` (in place).
fn add_bias(x: &mut [f32], bias: &[f32]) -> Result<()> {
    for row in x.chunks_exact_mut(bias.len()) {
        trueno::axpy(1.0, bias, row)?;
    }
    Ok(())
}

impl BertModel {
    /// Load `config.json` and `model.safetensors` from a model directory.
    pub fn load(dir: &Path) -> Result<Self> {
        let config_path = dir.join("config.json");
        if !config_path.is_file() {
            return Err(Error::Format {
                path: dir.to_path_buf(),
                message: "not a model directory: config.json is missing".into(),
            });
        }
        let config = BertConfig::from_json_file(&config_path)?;
        let mut tensors = Tensors::read(&dir.join("model.safetensors"))?;
        Self::from_tensors(config, &mut tensors)
    }

    /// Build from loaded tensors, checking every name and shape against `config`.
    pub fn from_tensors(config: BertConfig, t: &mut Tensors) -> Result<Self> {
        // Checkpoints saved from `BertForX` carry a `bert.` prefix.
        let prefix = if t.contains("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            ""
        };
        let (h, i, v) = (
            config.hidden_size,
            config.intermediate_size,
            config.vocab_size,
        );
        let mut take = |name: &str, shape: &[usize]| t.take(&format!("{prefix}{name}"), shape);
        let word = take("embeddings.word_embeddings.weight", &[v, h])?;
        let position = take(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?;
        let token_type = take(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?;
        let emb_ln_w = take("embeddings.LayerNorm.weight", &[h])?;
        let emb_ln_b = take("embeddings.LayerNorm.bias", &[h])?;
        let scale = 1.0 / (config.head_dim() as f32).sqrt();
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}.");
            let mut w = |name: &str, shape: &[usize]| take(&format!("{p}{name}"), shape);
            let q_w = w("attention.self.query.weight", &[h, h])?;
            let k_w = w("attention.self.key.weight", &[h, h])?;
            let v_w = w("attention.self.value.weight", &[h, h])?;
            let q_b = w("attention.self.query.bias", &[h])?;
            let k_b = w("attention.self.key.bias", &[h])?;
            let v_b = w("attention.self.value.bias", &[h])?;
            // Fused [q | k | v] in `hidden x 3*hidden`, row r = input feature r.
            let (qt, kt, vt) = (
                transpose(&q_w, h, h, scale),
                transpose(&k_w, h, h, 1.0),
                transpose(&v_w, h, h, 1.0),
            );
            let mut qkv_w = Vec::with_capacity(3 * h * h);
            for r in 0..h {
                qkv_w.extend_from_slice(&qt[r * h..(r + 1) * h]);
                qkv_w.extend_from_slice(&kt[r * h..(r + 1) * h]);
                qkv_w.extend_from_slice(&vt[r * h..(r + 1) * h]);
            }
            let mut qkv_b: Vec<f32> = q_b.iter().map(|b| b * scale).collect();
            qkv_b.extend_from_slice(&k_b);
            qkv_b.extend_from_slice(&v_b);
            layers.push(Layer {
                qkv_w: pack(&qkv_w, h, 3 * h)?,
                qkv_b,
                out_w: pack(
                    &transpose(&w("attention.output.dense.weight", &[h, h])?, h, h, 1.0),
                    h,
                    h,
                )?,
                out_b: w("attention.output.dense.bias", &[h])?,
                ln1_w: w("attention.output.LayerNorm.weight", &[h])?,
                ln1_b: w("attention.output.LayerNorm.bias", &[h])?,
                up_w: pack(
                    &transpose(&w("intermediate.dense.weight", &[i, h])?, i, h, 1.0),
                    h,
                    i,
                )?,
                up_b: w("intermediate.dense.bias", &[i])?,
                down_w: pack(
                    &transpose(&w("output.dense.weight", &[h, i])?, h, i, 1.0),
                    i,
                    h,
                )?,
                down_b: w("output.dense.bias", &[h])?,
                ln2_w: w("output.LayerNorm.weight", &[h])?,
                ln2_b: w("output.LayerNorm.bias", &[h])?,
            });
        }
        Ok(Self {
            config,
            word,
            position,
            token_type,
            emb_ln_w,
            emb_ln_b,
            layers,
            precision: Precision::F32,
            packed: Vec::new(),
        })
    }

    /// The same model with its weight matmuls (QKV, attention output, FFN up and down)
    /// in `precision`: `Bf16` or `Int8` packs every layer's weights once (trueno::lowp;
    /// the packed f32 weights are kept), `F32` goes back. Attention stays f32.
    pub fn with_precision(mut self, precision: Precision) -> Result<Self> {
        let (h, i) = (self.config.hidden_size, self.config.intermediate_size);
        self.packed = match precision {
            Precision::F32 => Vec::new(),
            p => self
                .layers
                .iter()
                .map(|l| {
                    Ok(PackedLayer {
                        qkv: trueno::lowp::pack_b(p, &l.qkv_w.to_matrix(), h, 3 * h)?,
                        out: trueno::lowp::pack_b(p, &l.out_w.to_matrix(), h, h)?,
                        up: trueno::lowp::pack_b(p, &l.up_w.to_matrix(), h, i)?,
                        down: trueno::lowp::pack_b(p, &l.down_w.to_matrix(), i, h)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        };
        self.precision = precision;
        Ok(self)
    }

    /// The arithmetic of the weight matmuls ([`BertModel::with_precision`]).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The checkpoint's hyper-parameters.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Final hidden states of packed sentences.
    ///
    /// `ids` holds the sentences back to back, `lengths[s]` tokens each (so
    /// `ids.len() == lengths.iter().sum()`); the result is `ids.len() x hidden`,
    /// row-major. `threads` is passed to the large matmuls.
    pub fn forward(&self, ids: &[u32], lengths: &[usize], threads: usize) -> Result<Vec<f32>> {
        let c = &self.config;
        let (h, inter) = (c.hidden_size, c.intermediate_size);
        let total: usize = lengths.iter().sum();
        if total != ids.len() {
            return Err(Error::InvalidInput(format!(
                "lengths add up to {total} tokens but {} ids were given",
                ids.len()
            )));
        }
        if let Some(&l) = lengths.iter().find(|&&l| l > c.max_position_embeddings) {
            return Err(Error::InvalidInput(format!(
                "a sequence of {l} tokens is longer than the model's {} positions",
                c.max_position_embeddings
            )));
        }
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= c.vocab_size) {
            return Err(Error::InvalidInput(format!(
                "token id {id} is outside the vocabulary of {}",
                c.vocab_size
            )));
        }
        if total == 0 {
            return Ok(Vec::new());
        }

        // Embeddings: word + position + token type 0, then LayerNorm.
        let mut sum = vec![0.0f32; total * h];
        let mut row = 0;
        for &len in lengths {
            for pos in 0..len {
                let id = ids[row] as usize;
                let out = &mut sum[row * h..(row + 1) * h];
                trueno::add(
                    &self.word[id * h..(id + 1) * h],
                    &self.position[pos * h..(pos + 1) * h],
                    out,
                )?;
                trueno::axpy(1.0, &self.token_type[..h], out)?;
                row += 1;
            }
        }
        let mut x = vec![0.0f32; total * h];
        trueno::layer_norm_rows(
            &sum,
            h,
            Some(&self.emb_ln_w),
            Some(&self.emb_ln_b),
            c.layer_norm_eps,
            &mut x,
        )?;

        let mut qkv = vec![0.0f32; total * 3 * h];
        let mut ctx = vec![0.0f32; total * h];
        let mut x1 = vec![0.0f32; total * h];
        let mut up = vec![0.0f32; total * inter];
        let mut act = vec![0.0f32; total * inter];
        let mut scratch = Attention::default();
        // `x W`: f32 with the weights packed at load (no per-call packing), or the packed
        // reduced-precision weights when opted in.
        let linear = |x: &[f32], w: &PackedRhs<f32>, p: Option<&PackedB>, out: &mut [f32]| match p {
            Some(p) => trueno::lowp::matmul_packed(Lhs::F32(x), p, out, total, threads),
            None => trueno::matmul_packed_rhs(x, w, out, total, threads),
        };
        for (li, layer) in self.layers.iter().enumerate() {
            let packed = self.packed.get(li);
            linear(&x, &layer.qkv_w, packed.map(|p| &p.qkv), &mut qkv)?;
            add_bias(&mut qkv, &layer.qkv_b)?;
            let mut start = 0;
            for &len in lengths {
                scratch.run(c, &qkv, &mut ctx, start, len)?;
                start += len;
            }
            // x1 = LayerNorm(x + ctx Wo + bo), through `sum` as the pre-norm buffer.
            linear(&ctx, &layer.out_w, packed.map(|p| &p.out), &mut sum)?;
            add_bias(&mut sum, &layer.out_b)?;
            trueno::axpy(1.0, &x, &mut sum)?;
            trueno::layer_norm_rows(
                &sum,
                h,
                Some(&layer.ln1_w),
                Some(&layer.ln1_b),
                c.layer_norm_eps,
                &mut x1,
            )?;
            // x = LayerNorm(x1 + GELU(x1 Wi + bi) Wo2 + bo2).
            linear(&x1, &layer.up_w, packed.map(|p| &p.up), &mut up)?;
            add_bias(&mut up, &layer.up_b)?;
            trueno::gelu_erf(&up, &mut act)?;
            linear(&act, &layer.down_w, packed.map(|p| &p.down), &mut sum)?;
            add_bias(&mut sum, &layer.down_b)?;
            trueno::axpy(1.0, &x1, &mut sum)?;
            trueno::layer_norm_rows(
                &sum,
                h,
                Some(&layer.ln2_w),
                Some(&layer.ln2_b),
                c.layer_norm_eps,
                &mut x,
            )?;
        }
        Ok(x)
    }
}

/// Per-sentence attention buffers, reused across sentences and layers.
#[derive(Debug, Default)]
struct Attention {
    q: Vec<f32>,
    kt: Vec<f32>,
    v: Vec<f32>,
    scores: Vec<f32>,
    probs: Vec<f32>,
    out: Vec<f32>,
}

impl Attention {
    /// Self-attention of the `len` tokens starting at row `start` of the packed `qkv`
    /// (`tokens x 3*hidden`), written into the same rows of `ctx` (`tokens x hidden`).
    fn run(
        &mut self,
        c: &BertConfig,
        qkv: &[f32],
        ctx: &mut [f32],
        start: usize,
        len: usize,
    ) -> Result<()> {
        let (h, heads, d) = (c.hidden_size, c.num_attention_heads, c.head_dim());
        if len == 0 {
            return Ok(());
        }
        self.q.resize(len * d, 0.0);
        self.kt.resize(d * len, 0.0);
        self.v.resize(len * d, 0.0);
        self.scores.resize(heads * len * len, 0.0);
        self.probs.resize(heads * len * len, 0.0);
        self.out.resize(len * d, 0.0);
        let rows = &qkv[start * 3 * h..(start + len) * 3 * h];
        // Scores of every head first, so one softmax call covers them all.
        for head in 0..heads {
            for (t, r) in rows.chunks_exact(3 * h).enumerate() {
                self.q[t * d..(t + 1) * d].copy_from_slice(&r[head * d..(head + 1) * d]);
                for (j, &kv) in r[h + head * d..h + (head + 1) * d].iter().enumerate() {
                    self.kt[j * len + t] = kv;
                }
            }
            let s = &mut self.scores[head * len * len..(head + 1) * len * len];
            trueno::matmul(&self.q, &self.kt, s, len, d, len, 1)?;
        }
        trueno::softmax_rows(&self.scores, len, &mut self.probs)?;
        for head in 0..heads {
            for (t, r) in rows.chunks_exact(3 * h).enumerate() {
                self.v[t * d..(t + 1) * d]
                    .copy_from_slice(&r[2 * h + head * d..2 * h + (head + 1) * d]);
            }
            let p = &self.probs[head * len * len..(head + 1) * len * len];
            trueno::matmul(p, &self.v, &mut self.out, len, len, d, 1)?;
            for t in 0..len {
                let dst = (start + t) * h + head * d;
                ctx[dst..dst + d].copy_from_slice(&self.out[t * d..(t + 1) * d]);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
/// A tiny random BERT written as a real safetensors file plus config.json.
pub(crate) fn tiny_model_dir(tag: &str, layers: usize) -> std::path::PathBuf {
    let (v, h, i, p) = (20usize, 8usize, 16usize, 16usize);
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("embeddings.word_embeddings.weight".into(), vec![v, h]),
        ("embeddings.position_embeddings.weight".into(), vec![p, h]),
        ("embeddings.token_type_embeddings.weight".into(), vec![2, h]),
        ("embeddings.LayerNorm.weight".into(), vec![h]),
        ("embeddings.LayerNorm.bias".into(), vec![h]),
    ];
    for l in 0..layers {
        for (name, shape) in [
            ("attention.self.query.weight", vec![h, h]),
            ("attention.self.query.bias", vec![h]),
            ("attention.self.key.weight", vec![h, h]),
            ("attention.self.key.bias", vec![h]),
            ("attention.self.value.weight", vec![h, h]),
            ("attention.self.value.bias", vec![h]),
            ("attention.output.dense.weight", vec![h, h]),
            ("attention.output.dense.bias", vec![h]),
            ("attention.output.LayerNorm.weight", vec![h]),
            ("attention.output.LayerNorm.bias", vec![h]),
            ("intermediate.dense.weight", vec![i, h]),
            ("intermediate.dense.bias", vec![i]),
            ("output.dense.weight", vec![h, i]),
            ("output.dense.bias", vec![h]),
            ("output.LayerNorm.weight", vec![h]),
            ("output.LayerNorm.bias", vec![h]),
        ] {
            shapes.push((format!("encoder.layer.{l}.{name}"), shape));
        }
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape) in &shapes {
        let n: usize = shape.iter().product();
        let start = data.len();
        for _ in 0..n {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let x = (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            data.extend_from_slice(&x.to_le_bytes());
        }
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&header);
    file.extend_from_slice(&data);
    let dir = std::env::temp_dir().join(format!("realizar-tiny-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.safetensors"), file).unwrap();
    let config = serde_json::json!({
        "model_type": "bert", "hidden_act": "gelu", "vocab_size": v, "hidden_size": h,
        "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": i,
        "max_position_embeddings": p, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_json(extra: &str) -> Value {
        serde_json::from_str(&format!(
            r#"{{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
                "num_attention_heads": 2, "intermediate_size": 16 {extra}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn config_defaults_and_head_dim() {
        let c = BertConfig::from_json(&config_json("")).unwrap();
        assert_eq!((c.head_dim(), c.max_position_embeddings), (4, 512));
    }

    #[test]
    fn config_rejects_bad_values() {
        for (extra, want) in [
            (r#", "hidden_act": "relu""#, "hidden_act"),
            (r#", "model_type": "gpt2""#, "model_type"),
            (r#", "num_attention_heads": 3"#, "multiple"),
            (r#", "hidden_size": 0"#, "outside"),
            (r#", "intermediate_size": 1e30"#, "positive integer"),
        ] {
            // Later keys override earlier ones in serde_json's map.
            let err = BertConfig::from_json(&config_json(extra)).unwrap_err();
            assert!(err.contains(want), "{extra}: {err}");
        }
    }

    #[test]
    fn packed_sentences_equal_separate_runs() {
        let dir = tiny_model_dir("packed", 2);
        let m = BertModel::load(&dir).unwrap();
        let (a, b) = ([1u32, 5, 7, 2], [1u32, 9, 3, 3, 4, 11, 2]);
        let packed: Vec<u32> = a.iter().chain(&b).copied().collect();
        let both = m.forward(&packed, &[4, 7], 1).unwrap();
        let alone_a = m.forward(&a, &[4], 1).unwrap();
        let alone_b = m.forward(&b, &[7], 1).unwrap();
        let two_threads = m.forward(&packed, &[4, 7], 2).unwrap();
        let h = 8;
        for (x, y) in both[..4 * h].iter().zip(&alone_a) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        for (x, y) in both[4 * h..].iter().zip(&alone_b) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        for (x, y) in both.iter().zip(&two_threads) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        // LayerNorm output with unit-ish weights is finite and not constant.
        assert!(both.iter().all(|x| x.is_finite()));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn reduced_precision_weights_stay_close_to_f32() {
        let dir = tiny_model_dir("lowp", 2);
        let m = BertModel::load(&dir).unwrap();
        let ids = [1u32, 5, 7, 2, 1, 9, 3, 3, 4, 11, 2];
        let f32_out = m.forward(&ids, &[4, 7], 1).unwrap();
        let cosine = |a: &[f32], b: &[f32]| {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum();
            let n = |v: &[f32]| v.iter().map(|x| f64::from(x * x)).sum::<f64>().sqrt();
            dot / (n(a) * n(b))
        };
        let mut m = m;
        for (precision, floor) in [(Precision::Bf16, 0.999), (Precision::Int8, 0.99)] {
            m = m.with_precision(precision).unwrap();
            assert_eq!(m.precision(), precision);
            let got = m.forward(&ids, &[4, 7], 2).unwrap();
            assert_ne!(got, f32_out, "{precision:?} must change the arithmetic");
            for (g, w) in got.chunks(8).zip(f32_out.chunks(8)) {
                let c = cosine(g, w);
                assert!(c >= floor, "{precision:?}: token cosine {c} < {floor}");
            }
        }
        let back = m.with_precision(Precision::F32).unwrap();
        assert_eq!(back.forward(&ids, &[4, 7], 1).unwrap(), f32_out);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let dir = tiny_model_dir("inputs", 2);
        let m = BertModel::load(&dir).unwrap();
        assert!(m.forward(&[1, 2], &[3], 1).is_err());
        assert!(m.forward(&[1, 99], &[2], 1).is_err());
        assert!(m.forward(&[1; 17], &[17], 1).is_err());
        assert!(m.forward(&[], &[], 1).unwrap().is_empty());
        assert!(m.forward(&[], &[0], 1).unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn weights_that_do_not_match_the_config_are_errors() {
        // One layer of weights, a config that asks for two.
        let dir = tiny_model_dir("layers", 1);
        let err = BertModel::load(&dir).unwrap_err().to_string();
        assert!(
            err.contains("missing tensor") && err.contains("encoder.layer.1."),
            "{err}"
        );
        std::fs::remove_file(dir.join("config.json")).unwrap();
        let err = BertModel::load(&dir).unwrap_err().to_string();
        assert!(err.contains("config.json is missing"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn transpose_is_out_in_to_in_out() {
        // 2 outputs x 3 inputs.
        let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(transpose(&w, 2, 3, 2.0), [2.0, 8.0, 4.0, 10.0, 6.0, 12.0]);
    }
}
