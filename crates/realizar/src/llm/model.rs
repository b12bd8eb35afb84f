//! The Llama decoder forward pass over GGUF weights.
//!
//! ```text
//! x = embed[token]                                    (Q8_0 rows, dequantised)
//! for each of the L layers:
//!     h = rmsnorm(x) * w_attn_norm
//!     q, k, v = h Wq^T, h Wk^T, h Wv^T                (9 query heads, 3 key/value heads)
//!     q, k = rope(q, pos), rope(k, pos)               (pairs (2i, 2i+1), theta = base^(-2i/d))
//!     K, V cache += k, v
//!     a = softmax(q K^T / sqrt(d) + causal) V         (query head h reads kv head h / 3)
//!     x = x + a Wo^T
//!     h = rmsnorm(x) * w_ffn_norm
//!     x = x + (silu(h Wgate^T) * (h Wup^T)) Wdown^T
//! logits = rmsnorm(x) * w_out_norm  Wemb^T            (embeddings tied to the output)
//! ```
//!
//! RoPE rotates *adjacent* pairs: llama.cpp's "normal" mode for the llama
//! architecture. The Hugging Face checkpoint rotates the two halves of each
//! head instead; the GGUF converter permuted the rows of Wq and Wk so the two
//! agree, which is why this file reads them as stored.
//!
//! Prefill runs all prompt tokens through each layer as one matrix product
//! (the weights are read once for the whole prompt); decode then runs one
//! token at a time against the cached keys and values. A product over a
//! block-quantised matrix reads the blocks directly (`trueno::quant`) with
//! activations quantised to 8 bits, as llama.cpp does. A matrix stored as F32
//! or F16 is decoded once at load into the form its kernels read (`f32` rows
//! for `trueno::gemv`/`matmul`, 2-byte rows for `trueno::f16`) and multiplied
//! by unrounded f32 activations; one file may mix the three (llama.cpp's
//! quantiser keeps the embedding or output in another type on request).
//! Keys, values, queries and attention
//! probabilities are rounded to f16 where llama.cpp stores or converts them
//! in f16 (its default KV cache type), and every other step (RMSNorm, RoPE,
//! the attention dots, softmax, SwiGLU) is llama.cpp's CPU arithmetic to the
//! rounding (`trueno::quant::ggml`), so greedy decoding follows it token for
//! token: all twelve fixture prompts, 64 tokens each, equal llama.cpp 0.3.36.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use trueno::lowp::{Lhs, PackedB, Precision};
use trueno::quant::{self, Q8Activations, QuantKind, QuantMatrix, ggml, round_f16};

use crate::gguf::{Gguf, TensorType};
use crate::{Error, Result};
use trueno::team::Team;

/// Hyper-parameters read from the GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub n_layers: usize,
    pub dim: usize,
    pub ffn_dim: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub context_length: usize,
    pub rope_base: f32,
    pub rms_eps: f32,
}

/// A weight matrix `[rows, cols]`, row-major, in the form its products read.
#[derive(Debug, Clone)]
struct Weight {
    rows: usize,
    cols: usize,
    data: WeightData,
    /// With a reduced prefill precision: `W^T` converted and packed once for
    /// `trueno::lowp`, read by products over several tokens (prefill) only.
    prefill: Option<PackedB>,
}

#[derive(Debug, Clone)]
enum WeightData {
    /// Block-quantised: where its blocks lie in [`Model::bytes`].
    Quant {
        kind: QuantKind,
        range: Range<usize>,
    },
    /// Decoded from the file's little-endian f32 once, at load. Shared, because the
    /// output projection may be the embedding itself.
    F32(Arc<[f32]>),
    /// The file's binary16 bits, read by `trueno::f16` (half F32's bytes per token).
    F16(Arc<[u16]>),
}

impl Weight {
    fn is_quant(&self) -> bool {
        matches!(self.data, WeightData::Quant { .. })
    }

    /// The packed reduced-precision form a product over `n` token rows reads: the
    /// prefill's (`n > 1`) when opted in; a single row (decode) never reads it.
    fn lowp(&self, n: usize) -> Option<&PackedB> {
        if n > 1 { self.prefill.as_ref() } else { None }
    }
}
#[derive(Debug)]
struct Layer {
    attn_norm: Vec<f32>,
    ffn_norm: Vec<f32>,
    wq: Weight,
    wk: Weight,
    wv: Weight,
    wo: Weight,
    gate: Weight,
    up: Weight,
    down: Weight,
}

impl Layer {
    /// The layer's seven matrices, in the order of the forward pass.
    fn matrices(&self) -> [&Weight; 7] {
        [
            &self.wq, &self.wk, &self.wv, &self.wo, &self.gate, &self.up, &self.down,
        ]
    }

    fn matrices_mut(&mut self) -> [&mut Weight; 7] {
        [
            &mut self.wq,
            &mut self.wk,
            &mut self.wv,
            &mut self.wo,
            &mut self.gate,
            &mut self.up,
            &mut self.down,
        ]
    }
}

/// Weights and configuration.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) cfg: LlamaConfig,
    /// The blocks of the quantised matrices (only those: decoded F32/F16 tensors are not
    /// kept twice).
    bytes: Vec<u8>,
    embed: Weight,
    output: Weight,
    out_norm: Vec<f32>,
    layers: Vec<Layer>,
    /// `base^(-2/d)`: RoPE's theta is multiplied by it pair by pair, as in ggml.
    theta_scale: f32,
    /// The arithmetic of prefill's weight products (f32 unless opted in).
    prefill_precision: Precision,
}

fn bad(g: &Gguf, message: String) -> Error {
    Error::Format {
        path: g.path.clone(),
        message,
    }
}

/// The matrix `name` of shape `[rows, cols]` (GGML dims `[cols, rows]`), in any type the
/// forward runs: quantised blocks stay in the file bytes, F32 and F16 are decoded here.
fn weight(g: &Gguf, name: &str, rows: usize, cols: usize) -> Result<Weight> {
    let (t, raw) = g.tensor(name)?;
    if t.dims != [cols, rows] {
        return Err(bad(
            g,
            format!("{name} has shape {:?}, expected [{cols}, {rows}]", t.dims),
        ));
    }
    // The reader checked that the byte range holds exactly rows * cols elements.
    let data = match t.ty {
        TensorType::Quant(kind) => WeightData::Quant {
            kind,
            range: t.start..t.start + t.len,
        },
        TensorType::F32 => WeightData::F32(
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        TensorType::F16 => WeightData::F16(
            raw.chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect(),
        ),
    };
    Ok(Weight {
        rows,
        cols,
        data,
        prefill: None,
    })
}

fn vector(g: &Gguf, name: &str, len: usize) -> Result<Vec<f32>> {
    let (t, _) = g.tensor(name)?;
    if t.dims != [len] {
        return Err(bad(
            g,
            format!("{name} has shape {:?}, expected [{len}]", t.dims),
        ));
    }
    g.tensor_f32(name)
}

impl Model {
    pub(crate) fn from_gguf(g: Gguf) -> Result<Model> {
        let arch = g.meta("general.architecture")?;
        if arch.as_str() != Some("llama") {
            return Err(bad(
                &g,
                format!("architecture {arch:?} is not supported (llama is)"),
            ));
        }
        let n_heads = g.meta_usize("llama.attention.head_count")?;
        let n_kv_heads = g.meta_usize("llama.attention.head_count_kv")?;
        let dim = g.meta_usize("llama.embedding_length")?;
        if n_heads == 0 || n_kv_heads == 0 || dim % n_heads != 0 || n_heads % n_kv_heads != 0 {
            return Err(bad(
                &g,
                format!("unusable heads: {n_heads} query / {n_kv_heads} kv heads for width {dim}"),
            ));
        }
        let head_dim = dim / n_heads;
        if let Ok(rd) = g.meta_usize("llama.rope.dimension_count")
            && rd != head_dim
        {
            return Err(bad(
                &g,
                format!("partial RoPE ({rd} of {head_dim} dims) is not supported"),
            ));
        }
        if head_dim % 2 != 0 || dim % quant::BLOCK != 0 {
            return Err(bad(
                &g,
                format!("head dimension {head_dim} / width {dim} unusable"),
            ));
        }
        let (embed_t, _) = g.tensor("token_embd.weight")?;
        let vocab = embed_t.dims.get(1).copied().unwrap_or(0);
        let cfg = LlamaConfig {
            n_layers: g.meta_usize("llama.block_count")?,
            dim,
            ffn_dim: g.meta_usize("llama.feed_forward_length")?,
            n_heads,
            n_kv_heads,
            head_dim,
            vocab,
            context_length: g.meta_usize("llama.context_length")?,
            rope_base: g.meta_f64("llama.rope.freq_base").unwrap_or(10_000.0) as f32,
            rms_eps: g.meta_f64("llama.attention.layer_norm_rms_epsilon")? as f32,
        };
        if cfg.n_layers == 0 || cfg.vocab == 0 || cfg.context_length == 0 {
            return Err(bad(&g, format!("degenerate configuration {cfg:?}")));
        }
        let kv = n_kv_heads * head_dim;
        let mut embed = weight(&g, "token_embd.weight", vocab, dim)?;
        let mut output = if g.file.tensor("output.weight").is_some() {
            weight(&g, "output.weight", vocab, dim)?
        } else {
            embed.clone()
        };
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for l in 0..cfg.n_layers {
            let n = |s: &str| format!("blk.{l}.{s}.weight");
            layers.push(Layer {
                attn_norm: vector(&g, &n("attn_norm"), dim)?,
                ffn_norm: vector(&g, &n("ffn_norm"), dim)?,
                wq: weight(&g, &n("attn_q"), dim, dim)?,
                wk: weight(&g, &n("attn_k"), kv, dim)?,
                wv: weight(&g, &n("attn_v"), kv, dim)?,
                wo: weight(&g, &n("attn_output"), dim, dim)?,
                gate: weight(&g, &n("ffn_gate"), cfg.ffn_dim, dim)?,
                up: weight(&g, &n("ffn_up"), cfg.ffn_dim, dim)?,
                down: weight(&g, &n("ffn_down"), dim, cfg.ffn_dim)?,
            });
        }
        let out_norm = vector(&g, "output_norm.weight", dim)?;
        let theta_scale = cfg.rope_base.powf(-2.0 / head_dim as f32);
        let bytes = {
            let mut all: Vec<&mut Weight> = vec![&mut embed, &mut output];
            for l in &mut layers {
                all.extend(l.matrices_mut());
            }
            keep_quant_blocks(g.bytes, &mut all)
        };
        Ok(Model {
            cfg,
            bytes,
            embed,
            output,
            out_norm,
            layers,
            theta_scale,
            prefill_precision: Precision::F32,
        })
    }

    /// Run prefill's weight products (every layer's seven matrices and the output, for
    /// batches of two or more tokens) in `precision`: `Bf16` or `Int8` converts each
    /// matrix once, here, into `trueno::lowp`'s packed form (the matrices' own form is
    /// kept for decode, which is unchanged); `F32` drops the packed copies.
    pub(crate) fn set_prefill_precision(&mut self, precision: Precision) -> Result<()> {
        let pack = |w: &Weight| -> Result<Option<PackedB>> {
            match precision {
                Precision::F32 => Ok(None),
                p => {
                    let t = self.transposed(w)?;
                    Ok(Some(trueno::lowp::pack_b(p, &t, w.cols, w.rows)?))
                }
            }
        };
        let output = pack(&self.output)?;
        let layers = self
            .layers
            .iter()
            .map(|l| {
                l.matrices()
                    .map(pack)
                    .into_iter()
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        self.output.prefill = output;
        for (l, packed) in self.layers.iter_mut().zip(layers) {
            for (w, p) in l.matrices_mut().into_iter().zip(packed) {
                w.prefill = p;
            }
        }
        self.prefill_precision = precision;
        Ok(())
    }

    /// The arithmetic of prefill's weight products.
    pub(crate) fn prefill_precision(&self) -> Precision {
        self.prefill_precision
    }

    /// `W^T` (`cols x rows`: the `k x n` right operand of `x W^T`) decoded to f32.
    fn transposed(&self, w: &Weight) -> Result<Vec<f32>> {
        let m = self.mat(w);
        let (rows, cols) = (w.rows, w.cols);
        let mut t = vec![0.0f32; rows * cols];
        // Blocks of rows decoded, then scattered column by column (stride `rows`).
        const BLOCK: usize = 64;
        let mut block = vec![0.0f32; BLOCK * cols];
        for r0 in (0..rows).step_by(BLOCK) {
            let b = BLOCK.min(rows - r0);
            for i in 0..b {
                m.row(r0 + i, &mut block[i * cols..(i + 1) * cols])?;
            }
            for c in 0..cols {
                let dst = &mut t[c * rows + r0..c * rows + r0 + b];
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = block[i * cols + c];
                }
            }
        }
        Ok(t)
    }

    /// `out = x W^T` over the rows of `x`: prefill's packed reduced-precision weights
    /// when `w` has them and there are several rows, else the matrix's own kernels.
    fn apply(&self, team: &Team, w: &Weight, x: Input<'_>, out: &mut Vec<f32>) -> Result<()> {
        let n = x.x.len() / w.cols;
        match w.lowp(n) {
            Some(p) => lowp_product(team, p, x.x, out),
            None => product(team, &self.mat(w), x, out),
        }
    }

    /// The matrix as its kernels take it.
    fn mat<'a>(&'a self, w: &'a Weight) -> Mat<'a> {
        match &w.data {
            // The shape was checked against the tensor table at load.
            WeightData::Quant { kind, range } => Mat::Quant(
                QuantMatrix::new(*kind, &self.bytes[range.clone()], w.rows, w.cols)
                    .expect("weight shape validated at load"),
            ),
            WeightData::F32(v) => Mat::F32(v, w.rows, w.cols),
            WeightData::F16(v) => Mat::F16(v, w.rows, w.cols),
        }
    }
}

/// The file bytes reduced to the blocks of the quantised matrices, their ranges moved to
/// match. A file whose matrices are all quantised is kept whole (its other bytes are the
/// small header and norm vectors); one with F32 or F16 matrices would otherwise hold
/// those twice, as bytes and decoded.
fn keep_quant_blocks(bytes: Vec<u8>, weights: &mut [&mut Weight]) -> Vec<u8> {
    if weights.iter().all(|w| w.is_quant()) {
        return bytes;
    }
    let mut kept = Vec::new();
    let mut moved: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for w in weights.iter_mut() {
        if let WeightData::Quant { range, .. } = &mut w.data {
            let start = *moved.entry(range.start).or_insert_with(|| {
                let at = kept.len();
                kept.extend_from_slice(&bytes[range.clone()]);
                at
            });
            *range = start..start + range.len();
        }
    }
    kept
}

/// `out[t * b + r] = src[r * n + t]`: a `[b, n]` block to `[n, b]`.
fn transpose_into(src: &[f32], n: usize, out: &mut [f32]) {
    let b = src.len() / n;
    for (r, row) in src.chunks_exact(n).enumerate() {
        for (t, &v) in row.iter().enumerate() {
            out[t * b + r] = v;
        }
    }
}

/// A weight matrix borrowed for one product.
#[derive(Debug, Clone, Copy)]
enum Mat<'a> {
    Quant(QuantMatrix<'a>),
    F32(&'a [f32], usize, usize),
    F16(&'a [u16], usize, usize),
}

impl Mat<'_> {
    fn rows(&self) -> usize {
        match self {
            Mat::Quant(q) => q.rows(),
            Mat::F32(_, r, _) | Mat::F16(_, r, _) => *r,
        }
    }

    fn cols(&self) -> usize {
        match self {
            Mat::Quant(q) => q.cols(),
            Mat::F32(_, _, c) | Mat::F16(_, _, c) => *c,
        }
    }

    /// Row `r` decoded to f32 (an embedding lookup).
    fn row(&self, r: usize, out: &mut [f32]) -> Result<()> {
        let c = self.cols();
        if r >= self.rows() || out.len() != c {
            return Err(Error::InvalidInput(format!(
                "row {r} of a {} x {c} matrix into {} values",
                self.rows(),
                out.len()
            )));
        }
        match self {
            Mat::Quant(q) => q.dequantize_row(r, out)?,
            Mat::F32(w, ..) => out.copy_from_slice(&w[r * c..(r + 1) * c]),
            Mat::F16(w, ..) => trueno::f16::to_f32(&w[r * c..(r + 1) * c], out)?,
        }
        Ok(())
    }

    /// `out[t * (r1 - r0) + (r - r0)] = W[r] . x[t]` for rows `r0..r1` (token-major, as
    /// `quant::matmul_rows`). `x` is `n` rows of f32, `acts` the same rows quantised
    /// (read only by a quantised matrix), `xt` the f32 rows transposed to `[cols, n]`
    /// (read only by a dense one when `n > 1`), `tmp` a scratch.
    fn band(
        &self,
        x: &[f32],
        acts: &Q8Activations,
        xt: &[f32],
        rows: Range<usize>,
        out: &mut [f32],
        tmp: &mut Vec<f32>,
    ) -> Result<()> {
        let c = self.cols();
        let n = x.len() / c;
        let b = rows.len();
        match self {
            Mat::Quant(q) => quant::matmul_rows(q, acts, rows, out)?,
            Mat::F32(w, ..) if n == 1 => {
                trueno::gemv(&w[rows.start * c..rows.end * c], x, out, b, c)?;
            }
            Mat::F16(w, ..) if n == 1 => {
                trueno::f16::gemv_f16(&w[rows.start * c..rows.end * c], x, out, b, c)?;
            }
            // Many tokens: the band of W times X^T is a GEMM ([b, c] x [c, n]); its
            // [b, n] result is transposed into the token-major band.
            Mat::F32(w, ..) => {
                tmp.resize(b * n, 0.0);
                trueno::matmul(&w[rows.start * c..rows.end * c], xt, tmp, b, c, n, 1)?;
                transpose_into(tmp, n, out);
            }
            Mat::F16(w, ..) => {
                tmp.resize(b * n, 0.0);
                let w = &w[rows.start * c..rows.end * c];
                trueno::f16::matmul_f16(w, xt, tmp, b, c, n, 1)?;
                transpose_into(tmp, n, out);
            }
        }
        Ok(())
    }
}

/// Per-generation state: the KV cache and every scratch buffer, sized once.
#[derive(Debug)]
pub(crate) struct Session {
    /// Per layer, `[pos, kv_dim]`, f16-rounded.
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    pub(crate) pos: usize,
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    kk: Vec<f32>,
    vv: Vec<f32>,
    att: Vec<f32>,
    o: Vec<f32>,
    g: Vec<f32>,
    u: Vec<f32>,
    /// Attention scratch per thread of the team (scores, the V product's lanes).
    scratch: Vec<Mutex<AttentionScratch>>,
    rope: Vec<(f32, f32)>,
    acts: Q8Activations,
    /// The current product input transposed (dense matrices, several tokens).
    xt: Vec<f32>,
    pub(crate) logits: Vec<f32>,
    team: Team,
}

impl Session {
    pub(crate) fn new(m: &Model, capacity: usize, threads: usize) -> Session {
        let kv = m.cfg.n_kv_heads * m.cfg.head_dim;
        Session {
            k: (0..m.cfg.n_layers)
                .map(|_| Vec::with_capacity(capacity * kv))
                .collect(),
            v: (0..m.cfg.n_layers)
                .map(|_| Vec::with_capacity(capacity * kv))
                .collect(),
            pos: 0,
            x: Vec::new(),
            h: Vec::new(),
            q: Vec::new(),
            kk: Vec::new(),
            vv: Vec::new(),
            att: Vec::new(),
            o: Vec::new(),
            g: Vec::new(),
            u: Vec::new(),
            scratch: vec![Mutex::new(AttentionScratch {
                scores: Vec::with_capacity(capacity),
                vacc: Vec::new(),
            })],
            rope: Vec::new(),
            acts: Q8Activations::new(),
            xt: Vec::new(),
            logits: Vec::new(),
            team: Team::new(threads),
        }
    }
}

/// One thread's attention scratch: a row of scores, the V product's lanes.
#[derive(Debug, Default)]
struct AttentionScratch {
    scores: Vec<f32>,
    vacc: Vec<f32>,
}

/// `parts + 1` token boundaries `0 = b0 <= b1 <= ... = n` splitting the `n` rows of a
/// prompt starting at position `pos0` into ranges of about equal attention work (row
/// `t` reads `pos0 + t + 1` keys).
fn attention_bounds(n: usize, pos0: usize, parts: usize) -> Vec<usize> {
    let parts = parts.clamp(1, n.max(1));
    let work = |t: usize| (pos0 + t + 1) as u64;
    let total: u64 = (0..n).map(work).sum();
    let mut bounds = vec![0];
    let mut acc = 0u64;
    for t in 0..n {
        acc += work(t);
        let k = bounds.len() as u64; // the next boundary to place
        if bounds.len() < parts && acc * parts as u64 >= k * total {
            bounds.push(t + 1);
        }
    }
    bounds.resize(parts, n);
    bounds.push(n);
    bounds
}

/// The inputs of a product, `n` rows of `cols` values, in the forms its matrix reads.
#[derive(Clone, Copy)]
struct Input<'a> {
    x: &'a [f32],
    /// `x` quantised (for block-quantised matrices).
    acts: &'a Q8Activations,
    /// `x` transposed to `[cols, n]` (for dense matrices when `n > 1`).
    xt: &'a [f32],
}

/// Prepare `x` (rows of `cols`) for products with `ws`: quantised if any is quantised,
/// transposed if any is dense and there are several rows (a matrix whose packed
/// reduced-precision form runs reads `x` as it is).
fn prepare(
    ws: &[&Weight],
    x: &[f32],
    cols: usize,
    acts: &mut Q8Activations,
    xt: &mut Vec<f32>,
) -> Result<()> {
    let n = x.len() / cols;
    let own = || ws.iter().filter(|w| w.lowp(n).is_none());
    if own().any(|w| w.is_quant()) {
        acts.quantize(x, cols)?;
    }
    if n > 1 && own().any(|w| !w.is_quant()) {
        xt.resize(x.len(), 0.0);
        for (t, row) in x.chunks_exact(cols).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                xt[j * n + t] = v;
            }
        }
    }
    Ok(())
}

/// `out[n, w.rows] = x W^T` with the rows of W split across the team.
fn product(team: &Team, w: &Mat<'_>, x: Input<'_>, out: &mut Vec<f32>) -> Result<()> {
    let n = x.x.len() / w.cols();
    let rows = w.rows();
    out.resize(n * rows, 0.0);
    let run = |r: Range<usize>, o: &mut [f32]| {
        let mut tmp = Vec::new();
        w.band(x.x, x.acts, x.xt, r, o, &mut tmp)
    };
    let t = team.threads().min(rows.div_ceil(64)).max(1);
    if t == 1 {
        return run(0..rows, out);
    }
    // Bands of whole 16-row tiles, one per thread.
    let band = rows.div_ceil(t).div_ceil(16) * 16;
    let err = std::sync::Mutex::new(None);
    if n == 1 {
        let parts: Vec<std::sync::Mutex<&mut [f32]>> =
            out.chunks_mut(band).map(std::sync::Mutex::new).collect();
        team.run(team.threads(), &|i| {
            if let Some(p) = parts.get(i) {
                let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
                let r0 = i * band;
                let r1 = (r0 + band).min(rows);
                if let Err(e) = run(r0..r1, &mut p) {
                    *err.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                }
            }
        });
    } else {
        // Prefill: each band is [n, band] in its own buffer, then scattered.
        let bands: Vec<std::sync::Mutex<Vec<f32>>> = (0..rows.div_ceil(band))
            .map(|_| std::sync::Mutex::new(Vec::new()))
            .collect();
        team.run(team.threads(), &|i| {
            if let Some(b) = bands.get(i) {
                let r0 = i * band;
                let r1 = (r0 + band).min(rows);
                let mut b = b.lock().unwrap_or_else(|e| e.into_inner());
                b.resize(n * (r1 - r0), 0.0);
                if let Err(e) = run(r0..r1, &mut b) {
                    *err.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                }
            }
        });
        for (i, b) in bands.into_iter().enumerate() {
            let b = b.into_inner().unwrap_or_else(|e| e.into_inner());
            let r0 = i * band;
            let w = b.len() / n;
            for t in 0..n {
                out[t * rows + r0..t * rows + r0 + w].copy_from_slice(&b[t * w..(t + 1) * w]);
            }
        }
    }
    match err.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `out[n, p.n()] = x p` in `p`'s reduced precision, the token rows split across the
/// team in bands of whole 12-row tiles (on the team's threads: its waiting workers
/// would otherwise compete with threads of the kernel's own).
fn lowp_product(team: &Team, p: &PackedB, x: &[f32], out: &mut Vec<f32>) -> Result<()> {
    let (k, cols) = (p.k(), p.n());
    let n = x.len() / k;
    out.resize(n * cols, 0.0);
    if out.is_empty() {
        return Ok(());
    }
    let t = team.threads().min(n.div_ceil(12)).max(1);
    if t == 1 {
        return Ok(trueno::lowp::matmul_packed(Lhs::F32(x), p, out, n, 1)?);
    }
    let band = n.div_ceil(t).div_ceil(12) * 12;
    let parts: Vec<std::sync::Mutex<&mut [f32]>> = out
        .chunks_mut(band * cols)
        .map(std::sync::Mutex::new)
        .collect();
    let err = std::sync::Mutex::new(None);
    team.run(team.threads(), &|i| {
        if let Some(part) = parts.get(i) {
            let mut part = part.lock().unwrap_or_else(|e| e.into_inner());
            let rows = part.len() / cols;
            let a = &x[i * band * k..(i * band + rows) * k];
            if let Err(e) = trueno::lowp::matmul_packed(Lhs::F32(a), p, &mut part, rows, 1) {
                *err.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
            }
        }
    });
    match err.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Rotate adjacent pairs of every head of `x` (`n` rows of `heads * hd`)
/// for positions `pos0..pos0 + n`, with ggml's theta recurrence and fused
/// rotation (`quant::ggml`).
fn rope(
    x: &mut [f32],
    heads: usize,
    hd: usize,
    pos0: usize,
    theta_scale: f32,
    cache: &mut Vec<(f32, f32)>,
) {
    cache.resize(hd / 2, (0.0, 0.0));
    for (t, row) in x.chunks_exact_mut(heads * hd).enumerate() {
        ggml::rope_cache(pos0 + t, theta_scale, cache);
        for head in row.chunks_exact_mut(hd) {
            ggml::rope_pairs(head, cache);
        }
    }
}

/// `out[i] = rmsnorm(x[i]) * w` for each row, in ggml's rounding.
fn rms_norm_rows(x: &[f32], d: usize, w: &[f32], eps: f32, out: &mut [f32]) {
    for (xr, yr) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        ggml::rms_norm(xr, w, eps, yr);
    }
}

/// Which positions of the batch need logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    Last,
    All,
}

impl Model {
    /// Run `tokens` at positions `s.pos..` through the model, appending to
    /// the cache; leaves the logits of the wanted positions in `s.logits`.
    pub(crate) fn forward(&self, s: &mut Session, tokens: &[u32], want: Want) -> Result<()> {
        let c = &self.cfg;
        let n = tokens.len();
        if n == 0 {
            return Err(Error::InvalidInput("no tokens to run".into()));
        }
        if s.pos + n > c.context_length {
            return Err(Error::ContextLength {
                tokens: s.pos + n,
                limit: c.context_length,
            });
        }
        let (d, hd, kvd) = (c.dim, c.head_dim, c.n_kv_heads * c.head_dim);
        let embed = self.mat(&self.embed);
        s.x.resize(n * d, 0.0);
        for (t, &id) in tokens.iter().enumerate() {
            if id as usize >= c.vocab {
                return Err(Error::InvalidInput(format!(
                    "token id {id} is outside the vocabulary of {}",
                    c.vocab
                )));
            }
            embed.row(id as usize, &mut s.x[t * d..(t + 1) * d])?;
        }
        s.h.resize(n * d, 0.0);
        s.att.resize(n * d, 0.0);
        let scale = 1.0 / (hd as f32).sqrt();
        let group = c.n_heads / c.n_kv_heads;
        let pos0 = s.pos;
        for (li, layer) in self.layers.iter().enumerate() {
            rms_norm_rows(&s.x, d, &layer.attn_norm, c.rms_eps, &mut s.h);
            prepare(
                &[&layer.wq, &layer.wk, &layer.wv],
                &s.h,
                d,
                &mut s.acts,
                &mut s.xt,
            )?;
            let input = Input {
                x: &s.h,
                acts: &s.acts,
                xt: &s.xt,
            };
            self.apply(&s.team, &layer.wq, input, &mut s.q)?;
            self.apply(&s.team, &layer.wk, input, &mut s.kk)?;
            self.apply(&s.team, &layer.wv, input, &mut s.vv)?;
            rope(&mut s.q, c.n_heads, hd, pos0, self.theta_scale, &mut s.rope);
            rope(
                &mut s.kk,
                c.n_kv_heads,
                hd,
                pos0,
                self.theta_scale,
                &mut s.rope,
            );
            // llama.cpp keeps K and V in f16 and converts Q to f16 for Q K^T.
            for v in s.q.iter_mut() {
                *v = round_f16(*v);
            }
            let kc = &mut s.k[li];
            kc.extend(s.kk.iter().map(|&v| round_f16(v)));
            let vc = &mut s.v[li];
            vc.extend(s.vv.iter().map(|&v| round_f16(v)));
            let (kc, vc) = (&s.k[li], &s.v[li]);
            // llama.cpp multiplies a batch of 2+ query rows through its
            // tinyBLAS f16 GEMM and a single row through ggml_vec_dot_f16;
            // the two sum in different orders, and so do we.
            let order = ggml::F16Order::for_rows(n);
            // The rows of a prompt in parallel: contiguous token ranges of about equal
            // work (token t reads pos0 + t + 1 keys), each range's rows of `att` written
            // by one thread with its own scratch. Each (token, head) is computed exactly
            // as on one thread.
            let parts = s.team.threads().min(n).max(1);
            let bounds = attention_bounds(n, pos0, parts);
            if s.scratch.len() < parts {
                s.scratch
                    .resize_with(parts, || Mutex::new(AttentionScratch::default()));
            }
            let mut rest = &mut s.att[..n * d];
            let mut rows = Vec::with_capacity(parts);
            for w in bounds.windows(2) {
                let (a, b) = rest.split_at_mut((w[1] - w[0]) * d);
                rows.push(Mutex::new(a));
                rest = b;
            }
            let (q_all, scratch) = (&s.q, &s.scratch);
            s.team.run(parts, &|i| {
                let mut att = rows[i].lock().unwrap_or_else(|e| e.into_inner());
                let mut sc = scratch[i].lock().unwrap_or_else(|e| e.into_inner());
                let AttentionScratch { scores, vacc } = &mut *sc;
                for t in bounds[i]..bounds[i + 1] {
                    let len = pos0 + t + 1; // causal: keys 0..=pos
                    let row = t - bounds[i];
                    for h in 0..c.n_heads {
                        let kvh = h / group;
                        let q = &q_all[t * d + h * hd..t * d + (h + 1) * hd];
                        scores.resize(len, 0.0);
                        for (j, sc) in scores.iter_mut().enumerate() {
                            let k = &kc[j * kvd + kvh * hd..j * kvd + (kvh + 1) * hd];
                            *sc = ggml::dot_f16(order, q, k) * scale;
                        }
                        ggml::softmax(scores);
                        // The probabilities enter the V product as f16.
                        for p in scores.iter_mut() {
                            *p = round_f16(*p);
                        }
                        let out = &mut att[row * d + h * hd..row * d + (h + 1) * hd];
                        ggml::weighted_rows_f16(order, scores, &vc[kvh * hd..], kvd, out, vacc);
                    }
                }
            });
            prepare(&[&layer.wo], &s.att, d, &mut s.acts, &mut s.xt)?;
            let input = Input {
                x: &s.att,
                acts: &s.acts,
                xt: &s.xt,
            };
            self.apply(&s.team, &layer.wo, input, &mut s.o)?;
            trueno::axpy(1.0, &s.o, &mut s.x)?;

            rms_norm_rows(&s.x, d, &layer.ffn_norm, c.rms_eps, &mut s.h);
            prepare(&[&layer.gate, &layer.up], &s.h, d, &mut s.acts, &mut s.xt)?;
            let input = Input {
                x: &s.h,
                acts: &s.acts,
                xt: &s.xt,
            };
            self.apply(&s.team, &layer.gate, input, &mut s.g)?;
            self.apply(&s.team, &layer.up, input, &mut s.u)?;
            // SwiGLU: silu(g) * u, with silu(g) = g / (1 + exp(-g)).
            s.o.resize(s.g.len(), 0.0);
            ggml::silu_mul(&s.g, &s.u, &mut s.o);
            prepare(&[&layer.down], &s.o, c.ffn_dim, &mut s.acts, &mut s.xt)?;
            let input = Input {
                x: &s.o,
                acts: &s.acts,
                xt: &s.xt,
            };
            self.apply(&s.team, &layer.down, input, &mut s.g)?;
            trueno::axpy(1.0, &s.g, &mut s.x)?;
        }
        s.pos += n;
        let rows = match want {
            Want::Last => (n - 1)..n,
            Want::All => 0..n,
        };
        let xs = &s.x[rows.start * d..rows.end * d];
        s.h.resize(xs.len(), 0.0);
        rms_norm_rows(xs, d, &self.out_norm, c.rms_eps, &mut s.h);
        prepare(&[&self.output], &s.h, d, &mut s.acts, &mut s.xt)?;
        let input = Input {
            x: &s.h,
            acts: &s.acts,
            xt: &s.xt,
        };
        self.apply(&s.team, &self.output, input, &mut s.logits)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The dense paths against each other on a small random model: batched prefill (GEMM,
    //! transposed bands) must equal token-by-token decode (GEMV), on one thread and on two,
    //! for F32, F16 and a file mixing them with Q8_0; and F16 must be F32 on the rounded
    //! values. (The logits against an independent NumPy forward are in
    //! tests/python/test_realizar_llm_dense.py.)
    use super::*;
    use crate::gguf::Value;
    use crate::gguf::write::{TensorSpec, write};
    use trueno::quant::f32_to_f16;

    /// The attention ranges cover the prompt in order, one per part, with about equal
    /// work: no range exceeds an equal share by more than one row's keys.
    #[test]
    fn attention_bounds_split_the_work_evenly() {
        for (n, pos0) in [(1, 0), (2, 0), (3, 7), (64, 0), (65, 100), (7, 0), (200, 3)] {
            for parts in 1..=4 {
                let b = attention_bounds(n, pos0, parts);
                let parts = parts.min(n);
                assert_eq!(b.len(), parts + 1, "{n} {pos0} {parts}");
                assert_eq!((b[0], b[parts]), (0, n));
                assert!(b.windows(2).all(|w| w[0] <= w[1]));
                let work = |r: std::ops::Range<usize>| r.map(|t| pos0 + t + 1).sum::<usize>();
                let share = work(0..n).div_ceil(parts);
                for w in b.windows(2) {
                    assert!(
                        work(w[0]..w[1]) <= share + pos0 + n,
                        "{n} {pos0} {parts}: {b:?}"
                    );
                }
            }
        }
    }

    const DIM: usize = 64;
    const FFN: usize = 96;
    const VOCAB: usize = 40;
    const KV: usize = 32; // one kv head of 32, two query heads

    fn shapes() -> Vec<(String, Vec<usize>)> {
        let mut v = vec![
            ("token_embd.weight".to_string(), vec![DIM, VOCAB]),
            ("output_norm.weight".to_string(), vec![DIM]),
        ];
        for l in 0..2 {
            for (n, d) in [
                ("attn_norm", vec![DIM]),
                ("ffn_norm", vec![DIM]),
                ("attn_q", vec![DIM, DIM]),
                ("attn_k", vec![DIM, KV]),
                ("attn_v", vec![DIM, KV]),
                ("attn_output", vec![DIM, DIM]),
                ("ffn_gate", vec![DIM, FFN]),
                ("ffn_up", vec![DIM, FFN]),
                ("ffn_down", vec![FFN, DIM]),
            ] {
                v.push((format!("blk.{l}.{n}.weight"), d));
            }
        }
        v
    }

    /// A model file whose matrices take `ty(name)`; values seeded, identical across types
    /// up to each type's rounding.
    fn model(dir: &std::path::Path, tag: &str, ty: impl Fn(&str) -> TensorType) -> Model {
        let meta: Vec<(String, Value)> = [
            ("general.architecture", Value::String("llama".into())),
            ("llama.block_count", Value::U32(2)),
            ("llama.embedding_length", Value::U32(DIM as u32)),
            ("llama.feed_forward_length", Value::U32(FFN as u32)),
            ("llama.attention.head_count", Value::U32(2)),
            ("llama.attention.head_count_kv", Value::U32(1)),
            ("llama.context_length", Value::U32(64)),
            ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let specs: Vec<TensorSpec> = shapes()
            .into_iter()
            .map(|(name, dims)| TensorSpec {
                ty: if dims.len() == 1 {
                    TensorType::F32
                } else {
                    ty(&name)
                },
                name,
                dims,
            })
            .collect();
        let path = dir.join(format!("{tag}.gguf"));
        let mut f = std::fs::File::create(&path).unwrap();
        write(&mut f, &meta, &specs, |i| {
            let s = &specs[i];
            let n: usize = s.dims.iter().product();
            let mut rng = trueno::rng::Rng::new(i as u64 + 1);
            let x: Vec<f32> = (0..n)
                .map(|_| {
                    if s.dims.len() == 1 {
                        1.0 + 0.1 * rng.uniform() as f32
                    } else {
                        (rng.uniform() as f32 - 0.5) * 0.5
                    }
                })
                .collect();
            Ok(match s.ty {
                TensorType::F32 => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
                TensorType::F16 => x
                    .iter()
                    .flat_map(|&v| f32_to_f16(v).to_le_bytes())
                    .collect(),
                TensorType::Quant(k) => quant::quantize(k, &x).unwrap(),
            })
        })
        .unwrap();
        Model::from_gguf(Gguf::open(&path).unwrap()).unwrap()
    }

    fn prefill(m: &Model, tokens: &[u32], threads: usize) -> Vec<f32> {
        let mut s = Session::new(m, 64, threads);
        m.forward(&mut s, tokens, Want::All).unwrap();
        s.logits.clone()
    }

    fn decode(m: &Model, tokens: &[u32], threads: usize) -> Vec<f32> {
        let mut s = Session::new(m, 64, threads);
        let mut out = Vec::new();
        for &t in tokens {
            m.forward(&mut s, &[t], Want::Last).unwrap();
            out.extend_from_slice(&s.logits);
        }
        out
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn dense_prefill_equals_decode_on_one_and_two_threads() {
        let dir = std::env::temp_dir().join(format!("realizar-dense-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tokens = [3u32, 17, 0, 39, 8, 8, 21];
        let f32m = model(&dir, "f32", |_| TensorType::F32);
        let f16m = model(&dir, "f16", |_| TensorType::F16);
        let mixed = model(&dir, "mixed", |n| match n {
            "blk.0.ffn_up.weight" | "token_embd.weight" => TensorType::Quant(QuantKind::Q8_0),
            "blk.1.attn_q.weight" => TensorType::F32,
            _ => TensorType::F16,
        });
        // Only the Q8_0 blocks stay as bytes; decoded F32/F16 matrices are not kept twice.
        assert!(f32m.bytes.is_empty() && f16m.bytes.is_empty());
        let q8_bytes = (VOCAB * DIM + DIM * FFN) / 32 * 34;
        assert_eq!(mixed.bytes.len(), q8_bytes);
        for m in [&f32m, &f16m, &mixed] {
            let base = prefill(m, &tokens, 1);
            assert_eq!(base.len(), tokens.len() * VOCAB);
            assert!(base.iter().all(|v| v.is_finite()));
            for threads in [1, 2] {
                // Summation order differs between GEMM and GEMV (and 8-bit activations of a
                // batch are quantised per row either way), so equal to f32 rounding.
                assert!(max_diff(&decode(m, &tokens, threads), &base) < 1e-4);
                assert!(max_diff(&prefill(m, &tokens, threads), &base) < 1e-4);
            }
        }
        // F16 rounds each weight by at most 2^-11 relative: the logits move by little.
        let (a, b) = (prefill(&f32m, &tokens, 1), prefill(&f16m, &tokens, 1));
        let d = max_diff(&a, &b);
        assert!(d > 0.0 && d < 2e-2, "{d}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reduced_precision_prefill_is_close_and_decode_is_unchanged() {
        let dir = std::env::temp_dir().join(format!("realizar-lowp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // 14 tokens: two bands of 12-row tiles on two threads.
        let tokens = [3u32, 17, 0, 39, 8, 8, 21, 5, 30, 2, 11, 12, 13, 14];
        type Kind = fn(&str) -> TensorType;
        let kinds: [(&str, Kind); 2] = [
            ("f32", |_| TensorType::F32),
            ("mixed", |n| match n {
                "blk.0.ffn_up.weight" | "token_embd.weight" => TensorType::Quant(QuantKind::Q8_0),
                "blk.1.attn_q.weight" => TensorType::F32,
                _ => TensorType::F16,
            }),
        ];
        for (tag, ty) in kinds {
            let base = model(&dir, tag, ty);
            assert_eq!(base.prefill_precision(), Precision::F32);
            let want = prefill(&base, &tokens, 1);
            let spread = want.iter().fold(f32::MIN, |m, &v| m.max(v))
                - want.iter().fold(f32::MAX, |m, &v| m.min(v));
            for (p, bound) in [(Precision::Bf16, 0.02), (Precision::Int8, 0.05)] {
                let mut m = model(&dir, tag, ty);
                m.set_prefill_precision(p).unwrap();
                assert_eq!(m.prefill_precision(), p);
                for threads in [1, 2] {
                    let d = max_diff(&prefill(&m, &tokens, threads), &want) / spread;
                    // Nonzero: the reduced-precision products ran; small: within bound
                    // (measured: bf16 0.0046 and 0.0074, int8 0.018 and 0.017).
                    assert!(d > 0.0 && d < bound, "{tag} {p:?} {threads}: {d}");
                    // One token per step never reads the packed weights: bit for bit.
                    assert_eq!(
                        decode(&m, &tokens, threads),
                        decode(&base, &tokens, threads)
                    );
                }
                m.set_prefill_precision(Precision::F32).unwrap();
                assert_eq!(prefill(&m, &tokens, 1), want);
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_tokens_are_errors_not_panics() {
        let dir = std::env::temp_dir().join(format!("realizar-dense-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = model(&dir, "ok", |_| TensorType::F16);
        let mut s = Session::new(&m, 64, 1);
        assert!(matches!(
            m.forward(&mut s, &[VOCAB as u32], Want::Last),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            m.forward(&mut s, &[], Want::Last),
            Err(Error::InvalidInput(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
