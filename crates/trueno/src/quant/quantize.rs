//! Quantisers: f32 values to ggml blocks, for weights and for activations.
//!
//! Two families, because ggml has two and they round differently:
//!
//! * **Weights** (`quantize_q8_0`, `quantize_q4_0`, `quantize_q4_1`,
//!   `quantize_q8_1`): ggml's reference quantisers `quantize_row_*_ref`, the
//!   ones that write model files. They divide by the scale through its
//!   reciprocal (`x * (1 / d)`) and round half away from zero (`roundf`), or
//!   for the 4-bit kinds add 0.5 and truncate. A file written here reads the
//!   same in llama.cpp, byte for byte.
//! * **Activations** (`quantize_row_q8_0`, `quantize_row_q8_1`,
//!   [`super::Q8Activations`]): what ggml's CPU backend does to the f32 input
//!   of every product with quantised weights before the integer dot (the
//!   weights' `vec_dot_type`: Q8_1 for Q4_1, Q8_0 for Q8_0 and Q4_0). Its SIMD
//!   code multiplies by `127 / max|x|` and rounds half to even
//!   (`_mm256_round_ps`), so a value can land one step away from the
//!   reference's. Reproducing this, not the reference, is what makes
//!   realizar's products equal llama.cpp's.
//!
//! Both store `d = max|x| / 127` as f16; Q8_1 also stores `s = d * Σq` as f16
//! (computed from the unrounded `d`), so a Q4_1 product can add the block
//! offset `m * s` without touching the 32 values again.
//!
//! NaN: a weight block holding NaN quantises like ggml's C (NaN compares
//! false, so it is skipped by min/max and its own value becomes 0); an
//! activation block holding NaN gets NaN scales, so the NaN reaches the
//! product instead of disappearing.

use super::{BLOCK, QuantKind, f32_to_f16, round_f16};
use crate::Error;

/// Bytes of a Q8_1 block: `d: f16, s: f16, qs: [i8; 32]`.
pub const Q8_1_BLOCK_BYTES: usize = 36;

fn whole_blocks(what: &str, n: usize) -> Result<usize, Error> {
    if n.is_multiple_of(BLOCK) {
        Ok(n / BLOCK)
    } else {
        Err(Error::Shape(format!(
            "{what} rows hold whole blocks of {BLOCK}: {n} values is not a multiple"
        )))
    }
}

/// Encode `x` (whole blocks of 32) as `kind` with ggml's reference quantiser.
pub fn quantize(kind: QuantKind, x: &[f32]) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; kind.row_bytes(x.len())?];
    let bb = kind.block_bytes();
    for (blk, o) in x.chunks_exact(BLOCK).zip(out.chunks_exact_mut(bb)) {
        match kind {
            QuantKind::Q8_0 => {
                let (d, id) = q8_ref_scale(blk);
                o[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
                for (q, &v) in o[2..].iter_mut().zip(blk) {
                    // roundf: half away from zero; `as` saturates like the
                    // int8 store for anything past +-127.5.
                    *q = (v * id).round() as i8 as u8;
                }
            }
            QuantKind::Q4_0 => {
                // The signed value of largest magnitude maps to -8.
                let mut amax = 0f32;
                let mut max = 0f32;
                for &v in blk {
                    if amax < v.abs() {
                        amax = v.abs();
                        max = v;
                    }
                }
                let d = max / -8.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                o[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
                for j in 0..16 {
                    let lo = ((blk[j] * id + 8.5) as i8).min(15) as u8;
                    let hi = ((blk[j + 16] * id + 8.5) as i8).min(15) as u8;
                    o[2 + j] = lo | (hi << 4);
                }
            }
            QuantKind::Q4_1 => {
                // ggml starts from +-FLT_MAX and compares with `<` / `>`, so a
                // NaN never becomes the min or max.
                let mut min = f32::MAX;
                let mut max = -f32::MAX;
                for &v in blk {
                    if v < min {
                        min = v;
                    }
                    if v > max {
                        max = v;
                    }
                }
                let d = (max - min) / 15.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                o[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
                o[2..4].copy_from_slice(&f32_to_f16(min).to_le_bytes());
                for j in 0..16 {
                    let lo = (((blk[j] - min) * id + 0.5) as i8).min(15) as u8;
                    let hi = (((blk[j + 16] - min) * id + 0.5) as i8).min(15) as u8;
                    o[4 + j] = lo | (hi << 4);
                }
            }
        }
    }
    Ok(out)
}

/// `d = max|x| / 127` and its reciprocal, as `quantize_row_q8_{0,1}_ref`.
fn q8_ref_scale(blk: &[f32]) -> (f32, f32) {
    let amax = blk.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    (d, if d != 0.0 { 1.0 / d } else { 0.0 })
}

/// Weights to Q8_0 (34-byte blocks), as ggml's `quantize_row_q8_0_ref`.
pub fn quantize_q8_0(x: &[f32]) -> Result<Vec<u8>, Error> {
    quantize(QuantKind::Q8_0, x)
}

/// Weights to Q4_0 (18-byte blocks), as ggml's `quantize_row_q4_0_ref`.
pub fn quantize_q4_0(x: &[f32]) -> Result<Vec<u8>, Error> {
    quantize(QuantKind::Q4_0, x)
}

/// Weights to Q4_1 (20-byte blocks), as ggml's `quantize_row_q4_1_ref`.
pub fn quantize_q4_1(x: &[f32]) -> Result<Vec<u8>, Error> {
    quantize(QuantKind::Q4_1, x)
}

/// Q8_1 blocks (36 bytes: `d`, `s`, 32 values) by ggml's reference
/// `quantize_row_q8_1_ref` (`roundf`, `x * (1 / d)`).
pub fn quantize_q8_1(x: &[f32]) -> Result<Vec<u8>, Error> {
    let nb = whole_blocks("Q8_1", x.len())?;
    let mut out = vec![0u8; nb * Q8_1_BLOCK_BYTES];
    for (blk, o) in x
        .chunks_exact(BLOCK)
        .zip(out.chunks_exact_mut(Q8_1_BLOCK_BYTES))
    {
        let (d, id) = q8_ref_scale(blk);
        let mut sum = 0i32;
        for (q, &v) in o[4..].iter_mut().zip(blk) {
            let r = (v * id).round() as i8;
            *q = r as u8;
            sum += i32::from(r);
        }
        o[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        o[2..4].copy_from_slice(&f32_to_f16(sum as f32 * d).to_le_bytes());
    }
    Ok(out)
}

/// One activation block by ggml's CPU quantiser: writes the 32 values and
/// returns the unrounded scale `max|x| / 127`, `Σq`, and whether a NaN was seen.
#[inline(always)]
fn act_block(xb: &[f32], qb: &mut [i8]) -> (f32, i32, bool) {
    let mut amax = 0f32;
    let mut nan = false;
    for &v in xb {
        nan |= v.is_nan();
        amax = amax.max(v.abs());
    }
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut sum = 0i32;
    for (q, &v) in qb.iter_mut().zip(xb) {
        // |v * id| <= 127 up to rounding; `as` saturates anything else.
        let r = (v * id).round_ties_even() as i8;
        *q = r;
        sum += i32::from(r);
    }
    (amax / 127.0, sum, nan)
}

/// Activations to Q8_0 blocks (34 bytes) as ggml's CPU backend quantises the
/// input of a Q8_0 or Q4_0 product (`quantize_row_q8_0`, SIMD rounding).
pub fn quantize_row_q8_0(x: &[f32]) -> Result<Vec<u8>, Error> {
    let nb = whole_blocks("Q8_0", x.len())?;
    let mut out = vec![0u8; nb * QuantKind::Q8_0.block_bytes()];
    let mut q = [0i8; BLOCK];
    for (xb, o) in x.chunks_exact(BLOCK).zip(out.chunks_exact_mut(34)) {
        let (d, _, nan) = act_block(xb, &mut q);
        let d = if nan { f32::NAN } else { d };
        o[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        for (o, &q) in o[2..].iter_mut().zip(&q) {
            *o = q as u8;
        }
    }
    Ok(out)
}

/// Activations to Q8_1 blocks (36 bytes) as ggml's CPU backend quantises the
/// input of a Q4_1 product (`quantize_row_q8_1`, SIMD rounding).
pub fn quantize_row_q8_1(x: &[f32]) -> Result<Vec<u8>, Error> {
    let nb = whole_blocks("Q8_1", x.len())?;
    let mut out = vec![0u8; nb * Q8_1_BLOCK_BYTES];
    let mut q = [0i8; BLOCK];
    for (xb, o) in x
        .chunks_exact(BLOCK)
        .zip(out.chunks_exact_mut(Q8_1_BLOCK_BYTES))
    {
        let (d, sum, nan) = act_block(xb, &mut q);
        let (d, s) = if nan {
            (f32::NAN, f32::NAN)
        } else {
            (d, d * sum as f32)
        };
        o[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        o[2..4].copy_from_slice(&f32_to_f16(s).to_le_bytes());
        for (o, &q) in o[4..].iter_mut().zip(&q) {
            *o = q as u8;
        }
    }
    Ok(out)
}

/// The unpacked form the products read ([`super::Q8Activations`]): per block
/// `d` and `s` already rounded through f16 (as the products decode them),
/// `Σq` exact, values contiguous.
pub(super) fn quantize_acts(
    x: &[f32],
    d: &mut [f32],
    s: &mut [f32],
    isum: &mut [i32],
    qs: &mut [i8],
) {
    #[cfg(target_arch = "x86_64")]
    {
        /// The same code with SSE4.1's `roundps` for `round_ties_even`, which
        /// is otherwise a libm call per value (5% of decode time). Both round
        /// exactly, so the values are the same.
        #[target_feature(enable = "avx2")]
        unsafe fn fast(x: &[f32], d: &mut [f32], s: &mut [f32], isum: &mut [i32], qs: &mut [i8]) {
            acts_body(x, d, s, isum, qs)
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the feature `fast` is compiled for was detected.
            return unsafe { fast(x, d, s, isum, qs) };
        }
    }
    acts_body(x, d, s, isum, qs)
}

#[inline(always)]
fn acts_body(x: &[f32], d: &mut [f32], s: &mut [f32], isum: &mut [i32], qs: &mut [i8]) {
    for (b, (xb, qb)) in x
        .chunks_exact(BLOCK)
        .zip(qs.chunks_exact_mut(BLOCK))
        .enumerate()
    {
        let (db, sum, nan) = act_block(xb, qb);
        let (db, sb) = if nan {
            (f32::NAN, f32::NAN)
        } else {
            (round_f16(db), round_f16(db * sum as f32))
        };
        d[b] = db;
        s[b] = sb;
        isum[b] = sum;
    }
}
