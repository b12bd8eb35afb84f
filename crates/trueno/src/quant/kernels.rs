//! The inner loops of the quantised products: block dot products, scalar
//! reference and x86 (AVX2, AVX-512 VNNI).

use super::{BLOCK, DotIsa, QuantKind, QuantMatrix, f16_to_f32};

/// One quantised activation row, borrowed block by block.
#[derive(Clone, Copy)]
pub(super) struct ActRow<'a> {
    pub(super) d: &'a [f32],
    pub(super) s: &'a [f32],
    pub(super) isum: &'a [i32],
    pub(super) qs: &'a [i8],
}

pub(super) fn has_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512vnni")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

pub(super) fn has_f16c() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[inline]
fn f16_le(b: &[u8]) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[0], b[1]]))
}

/// The reference: block by block, integer dot then one f32 scale.
fn dot_scalar(kind: QuantKind, w: &[u8], a: ActRow<'_>) -> f32 {
    let bb = kind.block_bytes();
    let mut acc = 0f32;
    for (b, blk) in w.chunks_exact(bb).enumerate() {
        let q = &a.qs[b * BLOCK..(b + 1) * BLOCK];
        let dw = f16_le(blk);
        match kind {
            QuantKind::Q8_0 => {
                let mut s = 0i32;
                for (&w, &q) in blk[2..34].iter().zip(q) {
                    s += i32::from(w as i8) * i32::from(q);
                }
                acc += dw * a.d[b] * s as f32;
            }
            QuantKind::Q4_0 | QuantKind::Q4_1 => {
                let nibbles = if kind == QuantKind::Q4_0 {
                    &blk[2..18]
                } else {
                    &blk[4..20]
                };
                let mut s = 0i32;
                for (j, &n) in nibbles.iter().enumerate() {
                    s += i32::from(n & 0x0f) * i32::from(q[j]);
                    s += i32::from(n >> 4) * i32::from(q[j + 16]);
                }
                if kind == QuantKind::Q4_0 {
                    acc += dw * a.d[b] * (s - 8 * a.isum[b]) as f32;
                } else {
                    acc += dw * a.d[b] * s as f32 + f16_le(&blk[2..4]) * a.s[b];
                }
            }
        }
    }
    acc
}

/// `out[i] = W[r0 + i] . a` on `isa` (already checked to be supported).
pub(super) fn dot_rows(
    isa: DotIsa,
    w: &QuantMatrix<'_>,
    r0: usize,
    a: ActRow<'_>,
    out: &mut [f32],
) {
    match isa {
        DotIsa::Scalar => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = dot_scalar(w.kind(), w.row(r0 + i), a);
            }
        }
        #[cfg(target_arch = "x86_64")]
        DotIsa::Avx2 => {
            for (i, o) in out.iter_mut().enumerate() {
                // SAFETY: `DotIsa::checked` verified avx2, fma and f16c.
                *o = unsafe { x86::dot_avx2(w.kind(), w.row(r0 + i), a) };
            }
        }
        #[cfg(target_arch = "x86_64")]
        DotIsa::Avx512Vnni => {
            for (i, o) in out.iter_mut().enumerate() {
                // SAFETY: `DotIsa::checked` verified avx512f/vl/vnni and f16c.
                *o = unsafe { x86::dot_vnni(w.kind(), w.row(r0 + i), a) };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        _ => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = dot_scalar(w.kind(), w.row(r0 + i), a);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{ActRow, BLOCK, QuantKind};
    use std::arch::x86_64::*;

    /// Two f16 values at `p` (d and, for Q4_1, m) widened to f32 lanes 0 and 1.
    #[inline(always)]
    unsafe fn halves(p: *const u8) -> __m128 {
        // SAFETY: the caller points `p` at 4 readable bytes; f16c is enabled
        // by the calling function.
        unsafe { _mm_cvtph_ps(_mm_cvtsi32_si128(std::ptr::read_unaligned(p as *const i32))) }
    }

    /// The 32 nibbles of a Q4 block at `p` in element order (low nibbles, then high).
    #[inline(always)]
    unsafe fn nibbles(p: *const u8) -> __m256i {
        // SAFETY: the caller points `p` at 16 readable bytes; avx2 is enabled.
        unsafe {
            let q = _mm_loadu_si128(p as *const __m128i);
            let m4 = _mm_set1_epi8(0x0f);
            let lo = _mm_and_si128(q, m4);
            let hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
            _mm256_set_m128i(hi, lo)
        }
    }

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        // SAFETY: plain register arithmetic under the caller's avx2.
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_movehdup_ps(s));
            _mm_cvtss_f32(s)
        }
    }

    /// One kernel body for both ISAs: `$dot(u8 weights, i8 activations)` is
    /// the 8 x i32 partial sums of a 32-byte block product.
    macro_rules! dot_body {
        ($kind:expr, $w:expr, $a:expr, $dotu:expr) => {{
            let kind: QuantKind = $kind;
            let w: &[u8] = $w;
            let a: ActRow<'_> = $a;
            let bb = kind.block_bytes();
            let nb = w.len() / bb;
            debug_assert!(a.qs.len() >= nb * BLOCK && a.d.len() >= nb);
            let wp = w.as_ptr();
            let qp = a.qs.as_ptr();
            // One accumulator and a fused `m * s` sum, as ggml's
            // `ggml_vec_dot_q4_1_q8_1` / `ggml_vec_dot_q8_0_q8_0` (AVX2 path,
            // which its AVX-512 build also runs): the same rounding, so the
            // same greedy tokens as llama.cpp.
            let mut acc = _mm256_setzero_ps();
            let mut extra = 0f32;
            for b in 0..nb {
                // SAFETY: block b of the row lies in `w` (nb whole blocks) and
                // its 32 activations in `a.qs` (asserted lengths above are the
                // caller's invariant: both rows have `cols` elements).
                unsafe {
                    let blk = wp.add(b * bb);
                    let q = _mm256_loadu_si256(qp.add(b * BLOCK) as *const __m256i);
                    let h = halves(blk);
                    let dw = _mm_cvtss_f32(h);
                    let ad = *a.d.get_unchecked(b);
                    let sums = match kind {
                        QuantKind::Q8_0 => {
                            let wv = _mm256_loadu_si256(blk.add(2) as *const __m256i);
                            $dotu(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(q, wv))
                        }
                        QuantKind::Q4_0 => {
                            let s = $dotu(nibbles(blk.add(2)), q);
                            extra -= dw * ad * (8 * *a.isum.get_unchecked(b)) as f32;
                            s
                        }
                        QuantKind::Q4_1 => {
                            let m = _mm_cvtss_f32(_mm_movehdup_ps(h));
                            extra = m.mul_add(*a.s.get_unchecked(b), extra);
                            $dotu(nibbles(blk.add(4)), q)
                        }
                    };
                    let f = _mm256_cvtepi32_ps(sums);
                    let scale = _mm256_set1_ps(dw * ad);
                    acc = _mm256_fmadd_ps(scale, f, acc);
                }
            }
            // SAFETY: register arithmetic under the enabled features.
            unsafe { hsum(acc) + extra }
        }};
    }

    #[inline(always)]
    unsafe fn dotu_avx2(w: __m256i, q: __m256i) -> __m256i {
        // SAFETY: register arithmetic under the caller's avx2. u8 x i8 pairs
        // stay inside i16: |15 * 127 * 2| and |128 * 127 * 2| < 32767.
        unsafe { _mm256_madd_epi16(_mm256_maddubs_epi16(w, q), _mm256_set1_epi16(1)) }
    }

    #[inline(always)]
    unsafe fn dotu_vnni(w: __m256i, q: __m256i) -> __m256i {
        // SAFETY: register arithmetic under the caller's avx512vnni + avx512vl.
        unsafe { _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, q) }
    }

    /// Dot of one quantised row with one activation row (AVX2 + FMA + F16C).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_avx2(kind: QuantKind, w: &[u8], a: ActRow<'_>) -> f32 {
        dot_body!(kind, w, a, dotu_avx2)
    }

    /// Dot of one quantised row with one activation row (AVX-512 VNNI on ymm).
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
    pub(super) unsafe fn dot_vnni(kind: QuantKind, w: &[u8], a: ActRow<'_>) -> f32 {
        dot_body!(kind, w, a, dotu_vnni)
    }
}
