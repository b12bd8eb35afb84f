//! Block quantisation: ggml's Q8_0, Q4_0 and Q4_1 formats and products that
//! read them directly.
//!
//! A quantised row is a run of blocks of 32 values, each block one shared
//! scale (and for Q4_1 an offset) in IEEE half precision followed by the
//! packed integers, byte for byte as ggml lays them out:
//!
//! | kind | bytes | block | value of element `j` |
//! |---|---|---|---|
//! | Q8_0 | 34 | `d: f16, qs: [i8; 32]` | `d * qs[j]` |
//! | Q4_0 | 18 | `d: f16, qs: [u8; 16]` | `d * (nib(j) - 8)` |
//! | Q4_1 | 20 | `d: f16, m: f16, qs: [u8; 16]` | `d * nib(j) + m` |
//!
//! where `nib(j)` is the low nibble of `qs[j]` for `j < 16` and the high
//! nibble of `qs[j - 16]` otherwise.
//!
//! **Products.** A matrix-vector product over quantised weights is bound by
//! memory: each weight byte is read once per token. So the activations are
//! quantised too, to 8 bits per block of 32 ([`Q8Activations`], ggml's
//! Q8_0/Q8_1), and the inner loop is an integer dot product of 32 bytes by 32
//! bytes, one `vpdpbusd` (AVX-512 VNNI) or `vpmaddubsw` + `vpmaddwd` (AVX2),
//! scaled once per block in f32:
//!
//! ```text
//! Q4_1 . Q8:  Σ_blocks  d_w d_a Σ_j nib_j q_j  +  m_w s_a      (s_a = d_a Σ_j q_j)
//! Q4_0 . Q8:  Σ_blocks  d_w d_a (Σ_j nib_j q_j - 8 Σ_j q_j)
//! Q8_0 . Q8:  Σ_blocks  d_w d_a Σ_j w_j q_j
//! ```
//!
//! This is what llama.cpp computes, rounding included (`d_a` and `s_a` are
//! stored as f16), so greedy decoding follows the same path. The price is the
//! activation rounding: per block the product differs from the f32 product of
//! the dequantised weights by at most `Σ_j |w_j| * d_a / 2` (plus f16 rounding
//! of `s_a`), which the property tests assert on every backend. The scalar
//! code is the reference; the SIMD backends agree with it to f32 summation
//! order.
//!
//! Dispatch follows [`crate::backend`]: Avx512 uses VNNI when the CPU has
//! `avx512vnni` (else the AVX2 kernel), Avx2 uses AVX2, Scalar and Neon the
//! portable code.

pub mod ggml;
mod kernels;
mod quantize;

pub use quantize::{
    Q8_1_BLOCK_BYTES, quantize, quantize_q4_0, quantize_q4_1, quantize_q8_0, quantize_q8_1,
    quantize_row_q8_0, quantize_row_q8_1,
};

use crate::Error;
use crate::backend::{self, Backend};

/// Elements per block, for every kind here.
pub const BLOCK: usize = 32;

/// A ggml block-quantised element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)] // ggml's names, as learners meet them in GGUF files
pub enum QuantKind {
    Q4_0,
    Q4_1,
    Q8_0,
}

impl QuantKind {
    /// Elements per block.
    pub fn block_len(self) -> usize {
        BLOCK
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            QuantKind::Q4_0 => 18,
            QuantKind::Q4_1 => 20,
            QuantKind::Q8_0 => 34,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            QuantKind::Q4_0 => "Q4_0",
            QuantKind::Q4_1 => "Q4_1",
            QuantKind::Q8_0 => "Q8_0",
        }
    }

    /// Bytes of a row of `cols` elements, or an error if `cols` is not whole blocks.
    pub fn row_bytes(self, cols: usize) -> Result<usize, Error> {
        if !cols.is_multiple_of(BLOCK) {
            return Err(Error::Shape(format!(
                "{} rows hold whole blocks of {BLOCK}: {cols} columns is not a multiple",
                self.name()
            )));
        }
        Ok(cols / BLOCK * self.block_bytes())
    }
}

/// IEEE binary16 bits to f32 (exact).
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = (u32::from(h) & 0x8000) << 16;
    let exp = (u32::from(h) >> 10) & 0x1f;
    let man = u32::from(h) & 0x3ff;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: m * 2^-24, exact in f32.
            let v = m as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// f32 to IEEE binary16 bits, rounding to nearest even (as `_mm_cvtps_ph` and
/// ggml's `GGML_FP32_TO_FP16`).
#[inline]
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        // Subnormal or zero in f16.
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rest = m & ((1u32 << shift) - 1);
        let mut r = m >> shift;
        if rest > half || (rest == half && (r & 1) == 1) {
            r += 1;
        }
        return sign | r as u16;
    }
    let mut r = ((e as u32) << 10) | (man >> 13);
    let rest = man & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && (r & 1) == 1) {
        r += 1; // may carry into the exponent, which is the right rounding
    }
    sign | r as u16
}

/// Round an f32 to the nearest f16 value, returned as f32.
#[inline]
pub fn round_f16(x: f32) -> f32 {
    f16_to_f32(f32_to_f16(x))
}

#[inline]
fn f16_at(b: &[u8], i: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[i], b[i + 1]]))
}

/// Decode whole blocks of `kind` in `src` into `out` (`out.len()` elements).
pub fn dequantize(kind: QuantKind, src: &[u8], out: &mut [f32]) -> Result<(), Error> {
    let need = kind.row_bytes(out.len())?;
    if src.len() != need {
        return Err(Error::LengthMismatch {
            left: src.len(),
            right: need,
        });
    }
    let bb = kind.block_bytes();
    for (blk, o) in src.chunks_exact(bb).zip(out.chunks_exact_mut(BLOCK)) {
        let d = f16_at(blk, 0);
        match kind {
            QuantKind::Q8_0 => {
                for (o, &q) in o.iter_mut().zip(&blk[2..34]) {
                    *o = d * f32::from(q as i8);
                }
            }
            QuantKind::Q4_0 => {
                for (j, &q) in blk[2..18].iter().enumerate() {
                    o[j] = d * (f32::from(q & 0x0f) - 8.0);
                    o[j + 16] = d * (f32::from(q >> 4) - 8.0);
                }
            }
            QuantKind::Q4_1 => {
                let m = f16_at(blk, 2);
                for (j, &q) in blk[4..20].iter().enumerate() {
                    o[j] = d * f32::from(q & 0x0f) + m;
                    o[j + 16] = d * f32::from(q >> 4) + m;
                }
            }
        }
    }
    Ok(())
}

/// A row-major matrix of quantised rows, borrowed from a file or a buffer,
/// with its shape checked once.
#[derive(Debug, Clone, Copy)]
pub struct QuantMatrix<'a> {
    kind: QuantKind,
    rows: usize,
    cols: usize,
    data: &'a [u8],
}

impl<'a> QuantMatrix<'a> {
    /// `data` must hold exactly `rows` rows of `cols` elements (whole blocks).
    pub fn new(kind: QuantKind, data: &'a [u8], rows: usize, cols: usize) -> Result<Self, Error> {
        let need = kind
            .row_bytes(cols)?
            .checked_mul(rows)
            .ok_or_else(|| Error::Shape(format!("{rows} x {cols} overflows")))?;
        if data.len() != need {
            return Err(Error::LengthMismatch {
                left: data.len(),
                right: need,
            });
        }
        Ok(QuantMatrix {
            kind,
            rows,
            cols,
            data,
        })
    }

    pub fn kind(&self) -> QuantKind {
        self.kind
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The raw blocks of row `r`.
    pub fn row(&self, r: usize) -> &'a [u8] {
        let rb = self.cols / BLOCK * self.kind.block_bytes();
        &self.data[r * rb..(r + 1) * rb]
    }

    /// Row `r` decoded to f32 (an embedding lookup).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) -> Result<(), Error> {
        if r >= self.rows {
            return Err(Error::Shape(format!(
                "row {r} is out of range for {} rows",
                self.rows
            )));
        }
        dequantize(self.kind, self.row(r), out)
    }
}

/// Activations quantised to 8 bits per block of 32, for the integer dot
/// products: `n` rows of `cols` values. Buffers are reused across calls to
/// [`Q8Activations::quantize`], so a decode loop allocates nothing per token.
#[derive(Debug, Clone, Default)]
pub struct Q8Activations {
    n: usize,
    cols: usize,
    /// Per block: scale `d` (rounded to f16, as stored by ggml).
    d: Vec<f32>,
    /// Per block: `d * Σ q` (rounded to f16: ggml's Q8_1 `s`).
    s: Vec<f32>,
    /// Per block: `Σ q` (exact).
    isum: Vec<i32>,
    qs: Vec<i8>,
}

impl Q8Activations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn rows(&self) -> usize {
        self.n
    }
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Quantise `x`, `n = x.len() / cols` rows of `cols` (whole blocks) values.
    /// Rounding is ggml's SIMD quantiser: `d = max|x| / 127` per block,
    /// `q = round_half_even(x / d)`.
    pub fn quantize(&mut self, x: &[f32], cols: usize) -> Result<(), Error> {
        if cols == 0 || !cols.is_multiple_of(BLOCK) || !x.len().is_multiple_of(cols) {
            return Err(Error::Shape(format!(
                "activations of {} values cannot be rows of {cols} (a multiple of {BLOCK})",
                x.len()
            )));
        }
        let nb = x.len() / BLOCK;
        self.n = x.len() / cols;
        self.cols = cols;
        self.d.resize(nb, 0.0);
        self.s.resize(nb, 0.0);
        self.isum.resize(nb, 0);
        self.qs.resize(x.len(), 0);
        quantize::quantize_acts(x, &mut self.d, &mut self.s, &mut self.isum, &mut self.qs);
        Ok(())
    }

    /// The quantised values decoded back to f32 (for tests and teaching).
    pub fn dequantized(&self) -> Vec<f32> {
        self.qs
            .chunks_exact(BLOCK)
            .zip(&self.d)
            .flat_map(|(q, &d)| q.iter().map(move |&q| d * f32::from(q)))
            .collect()
    }

    fn block_view(&self, t: usize) -> kernels::ActRow<'_> {
        let nb = self.cols / BLOCK;
        kernels::ActRow {
            d: &self.d[t * nb..(t + 1) * nb],
            s: &self.s[t * nb..(t + 1) * nb],
            isum: &self.isum[t * nb..(t + 1) * nb],
            qs: &self.qs[t * self.cols..(t + 1) * self.cols],
        }
    }
}

/// Which inner kernel the active backend selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DotIsa {
    Scalar,
    Avx2,
    Avx512Vnni,
}

impl DotIsa {
    /// The kernel a trueno backend runs here (VNNI only when the CPU has it).
    pub fn for_backend(b: Backend) -> DotIsa {
        match b {
            Backend::Scalar | Backend::Neon => DotIsa::Scalar,
            Backend::Avx2 => DotIsa::Avx2,
            Backend::Avx512 => {
                if kernels::has_vnni() {
                    DotIsa::Avx512Vnni
                } else {
                    DotIsa::Avx2
                }
            }
        }
    }

    /// Every kernel this CPU can run (the tests compare them all).
    pub fn supported() -> Vec<DotIsa> {
        let mut v = vec![DotIsa::Scalar];
        if Backend::Avx2.is_supported() && kernels::has_f16c() {
            v.push(DotIsa::Avx2);
        }
        if Backend::Avx512.is_supported() && kernels::has_f16c() && kernels::has_vnni() {
            v.push(DotIsa::Avx512Vnni);
        }
        v
    }

    fn checked(self) -> Result<DotIsa, Error> {
        if DotIsa::supported().contains(&self) {
            Ok(self)
        } else {
            Err(Error::UnsupportedBackend {
                backend: match self {
                    DotIsa::Scalar => "scalar",
                    DotIsa::Avx2 => "avx2",
                    DotIsa::Avx512Vnni => "avx512",
                },
                missing: "f16c / avx512vnni".into(),
            })
        }
    }
}

/// The kernel selected by the active backend.
pub fn active_isa() -> Result<DotIsa, Error> {
    let isa = DotIsa::for_backend(backend::active()?);
    // AVX2 machines without F16C do not exist in practice; fall back anyway.
    Ok(if isa.checked().is_ok() {
        isa
    } else {
        DotIsa::Scalar
    })
}

/// `out[t * (r1 - r0) + (r - r0)] = W[r] . x[t]` for rows `r0..r1` of `w` and
/// every activation row `t`: a band of the matrix product `x W^T`, the unit a
/// thread computes. `out.len()` must be `x.rows() * (r1 - r0)`.
pub fn matmul_rows(
    w: &QuantMatrix<'_>,
    x: &Q8Activations,
    rows: std::ops::Range<usize>,
    out: &mut [f32],
) -> Result<(), Error> {
    matmul_rows_with(active_isa()?, w, x, rows, out)
}

/// [`matmul_rows`] on an explicit kernel.
pub fn matmul_rows_with(
    isa: DotIsa,
    w: &QuantMatrix<'_>,
    x: &Q8Activations,
    rows: std::ops::Range<usize>,
    out: &mut [f32],
) -> Result<(), Error> {
    let isa = isa.checked()?;
    if x.cols != w.cols {
        return Err(Error::LengthMismatch {
            left: x.cols,
            right: w.cols,
        });
    }
    if rows.start > rows.end || rows.end > w.rows {
        return Err(Error::Shape(format!(
            "row band {rows:?} is outside 0..{}",
            w.rows
        )));
    }
    let band = rows.end - rows.start;
    if out.len() != x.n * band {
        return Err(Error::LengthMismatch {
            left: out.len(),
            right: x.n * band,
        });
    }
    if band == 0 || x.n == 0 {
        return Ok(());
    }
    // Rows in tiles of a few: the tile's weights stay in L1 while every
    // activation row passes over them, so weights are read from memory once;
    // activation rows go TOKENS at a time, so a block's weights are unpacked
    // once for all of them (the kernels keep each (row, token) sum apart).
    const TILE: usize = 16;
    const TOKENS: usize = 4;
    #[cfg(target_arch = "x86_64")]
    {
        let min_tokens = match isa {
            DotIsa::Avx2 => 2,
            DotIsa::Avx512Vnni => 4,
            DotIsa::Scalar => usize::MAX,
        };
        if x.n >= min_tokens && matches!(w.kind(), QuantKind::Q4_1 | QuantKind::Q8_0) {
            // Prefill: each row group unpacked once for every token (kernels.rs says why).
            let acts: Vec<kernels::ActRow<'_>> = (0..x.n).map(|t| x.block_view(t)).collect();
            kernels::rows_prefill(isa, w, rows.start, band, &acts, out, band);
            return Ok(());
        }
    }
    let mut r = rows.start;
    while r < rows.end {
        let re = (r + TILE).min(rows.end);
        let col = r - rows.start;
        let mut t = 0;
        while t + TOKENS <= x.n {
            let acts: [kernels::ActRow<'_>; TOKENS] = std::array::from_fn(|k| x.block_view(t + k));
            kernels::dot_rows(isa, w, r, re - r, acts, &mut out[t * band + col..], band);
            t += TOKENS;
        }
        for t in t..x.n {
            kernels::dot_rows(
                isa,
                w,
                r,
                re - r,
                [x.block_view(t)],
                &mut out[t * band + col..],
                band,
            );
        }
        r = re;
    }
    Ok(())
}

/// `y = W x` for all rows of `w`: quantises `x` into `scratch` first.
pub fn matvec(
    w: &QuantMatrix<'_>,
    x: &[f32],
    scratch: &mut Q8Activations,
    y: &mut [f32],
) -> Result<(), Error> {
    if x.len() != w.cols {
        return Err(Error::LengthMismatch {
            left: x.len(),
            right: w.cols,
        });
    }
    scratch.quantize(x, w.cols)?;
    matmul_rows(w, scratch, 0..w.rows, y)
}

#[cfg(test)]
mod tests;
