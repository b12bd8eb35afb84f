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
            && std::arch::is_x86_feature_detected!("avx512bw")
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

/// How many four-row groups ahead the multi-row kernel prefetches (tuned on
/// SmolLM2's matrices: 2 and 8 were slower than 4).
#[cfg(target_arch = "x86_64")]
const PREFETCH_GROUPS: usize = 4;

/// One row's dot on `isa` (already checked to be supported), one row per
/// pass: the order every multi-row kernel must reproduce bit for bit.
pub(super) fn dot_one(isa: DotIsa, kind: QuantKind, row: &[u8], a: ActRow<'_>) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `DotIsa::checked` verified avx2, fma and f16c.
        DotIsa::Avx2 => unsafe { x86::dot_avx2(kind, row, a) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `DotIsa::checked` verified avx512f/vl/vnni and f16c.
        DotIsa::Avx512Vnni => unsafe { x86::dot_vnni(kind, row, a) },
        _ => dot_scalar(kind, row, a),
    }
}

/// `out[t * stride + i] = W[r0 + i] . a[t]` for rows `r0..r0 + n` and the `T`
/// activation rows `a`, on `isa` (already checked to be supported). Every
/// value is the one-row kernel's ([`dot_one`]), whatever `T` and `n`.
pub(super) fn dot_rows<const T: usize>(
    isa: DotIsa,
    w: &QuantMatrix<'_>,
    r0: usize,
    n: usize,
    a: [ActRow<'_>; T],
    out: &mut [f32],
    stride: usize,
) {
    let kind = w.kind();
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    if isa == DotIsa::Avx512Vnni && matches!(kind, QuantKind::Q4_1 | QuantKind::Q8_0) {
        while i + 4 <= n {
            let rows = [0, 1, 2, 3].map(|k| w.row(r0 + i + k));
            let mut o = [[0f32; 4]; T];
            // Software prefetch a few groups ahead: four rows read side by side are
            // four short streams (a row is a few hundred bytes), too short for the
            // hardware prefetcher to follow; without it this kernel ran slower than
            // the one-row kernel. Rows are contiguous, so the next groups are the
            // next bytes (past the matrix the hint is harmless).
            let pf = rows[0]
                .as_ptr()
                .wrapping_add(PREFETCH_GROUPS * 4 * rows[0].len());
            // SAFETY: `DotIsa::checked` verified avx512f/bw/vl/vnni and f16c
            // (Backend::Avx512 includes bw).
            unsafe { x86::dot4_vnni(kind, rows, a, &mut o, pf) };
            for (t, o) in o.iter().enumerate() {
                out[t * stride + i..t * stride + i + 4].copy_from_slice(o);
            }
            i += 4;
        }
    }
    #[cfg(target_arch = "x86_64")]
    if isa == DotIsa::Avx2 && matches!(kind, QuantKind::Q4_1 | QuantKind::Q8_0) {
        while i + 4 <= n {
            let rows = [0, 1, 2, 3].map(|k| w.row(r0 + i + k));
            let pf = rows[0]
                .as_ptr()
                .wrapping_add(PREFETCH_GROUPS * 4 * rows[0].len());
            // One token per pass: this is decode (one activation row); prefill with
            // more goes through [`rows_prefill`], which unpacks a group once for
            // all of its tokens.
            for (t, &at) in a.iter().enumerate() {
                let mut o = [[0f32; 4]; 1];
                // SAFETY: `DotIsa::checked` verified avx2, fma and f16c.
                unsafe { x86::dot4_avx2(kind, rows, [at], &mut o, pf) };
                out[t * stride + i..t * stride + i + 4].copy_from_slice(&o[0]);
            }
            i += 4;
        }
    }
    for r in i..n {
        let row = w.row(r0 + r);
        for (t, &a) in a.iter().enumerate() {
            out[t * stride + r] = dot_one(isa, kind, row, a);
        }
    }
}

/// A group of four weight rows unpacked once, then multiplied with the activation
/// rows (tokens) `TOKENS` or one at a time: the prefill kernels of [`rows_prefill`].
#[cfg(target_arch = "x86_64")]
trait UnpackedGroup {
    /// Tokens per full pass (at most 4).
    const TOKENS: usize;
    /// Unpack rows of equal length; `pf` is where to prefetch (see [`PREFETCH_GROUPS`]).
    ///
    /// # Safety
    /// The CPU has the kernel's instruction sets (the caller checked its [`DotIsa`]).
    unsafe fn unpack(&mut self, rows: [&[u8]; 4], pf: *const u8);
    /// `out[t][r]` = row `r` . `a[t]` for the unpacked rows, with `a.len()` either
    /// `TOKENS` or 1 and `out.len() == a.len()`.
    ///
    /// # Safety
    /// As for [`UnpackedGroup::unpack`], which ran first; the token rows have the
    /// rows' number of blocks.
    unsafe fn dot(&mut self, a: &[ActRow<'_>], out: &mut [[f32; 4]]);
}

/// AVX2: [`x86::unpack4_avx2`]'s scratch, two tokens per pass.
#[cfg(target_arch = "x86_64")]
struct Avx2Group {
    kind: QuantKind,
    nb: usize,
    w: Vec<u8>,
    h: Vec<f32>,
    s: Vec<f32>,
}

#[cfg(target_arch = "x86_64")]
impl UnpackedGroup for Avx2Group {
    const TOKENS: usize = 2;
    unsafe fn unpack(&mut self, rows: [&[u8]; 4], pf: *const u8) {
        // SAFETY: the caller's (avx2, fma, f16c); the buffers hold `nb` blocks.
        unsafe { x86::unpack4_avx2(self.kind, rows, &mut self.w, &mut self.h, pf) }
    }
    unsafe fn dot(&mut self, a: &[ActRow<'_>], out: &mut [[f32; 4]]) {
        let (nb, w, h, s) = (self.nb, &self.w, &self.h, &mut self.s);
        // SAFETY: the caller's; `out` has `a.len()` entries (1 or 2).
        unsafe {
            match (a.len(), self.kind == QuantKind::Q4_1) {
                (2, true) => {
                    x86::dot4_unpacked_avx2::<2, true>(nb, w, h, s, [a[0], a[1]], fit(out))
                }
                (2, false) => {
                    x86::dot4_unpacked_avx2::<2, false>(nb, w, h, s, [a[0], a[1]], fit(out))
                }
                (_, true) => x86::dot4_unpacked_avx2::<1, true>(nb, w, h, s, [a[0]], fit(out)),
                (_, false) => x86::dot4_unpacked_avx2::<1, false>(nb, w, h, s, [a[0]], fit(out)),
            }
        }
    }
}

/// AVX-512 VNNI: [`x86::VnniUnpacked`], four tokens per pass.
#[cfg(target_arch = "x86_64")]
struct VnniGroup {
    kind: QuantKind,
    buf: x86::VnniUnpacked,
}

#[cfg(target_arch = "x86_64")]
impl UnpackedGroup for VnniGroup {
    const TOKENS: usize = 4;
    unsafe fn unpack(&mut self, rows: [&[u8]; 4], pf: *const u8) {
        // SAFETY: the caller's (avx512f/bw/vl/vnni, f16c); the buffer holds `nb` blocks.
        unsafe { x86::unpack4_vnni(self.kind, rows, &mut self.buf, pf) }
    }
    unsafe fn dot(&mut self, a: &[ActRow<'_>], out: &mut [[f32; 4]]) {
        let b = &self.buf;
        // SAFETY: the caller's; `out` has `a.len()` entries (1 or 4).
        unsafe {
            match (a.len(), self.kind == QuantKind::Q4_1) {
                (4, true) => {
                    x86::dot4_unpacked_vnni::<4, true>(b, [a[0], a[1], a[2], a[3]], fit(out))
                }
                (4, false) => {
                    x86::dot4_unpacked_vnni::<4, false>(b, [a[0], a[1], a[2], a[3]], fit(out))
                }
                (_, true) => x86::dot4_unpacked_vnni::<1, true>(b, [a[0]], fit(out)),
                (_, false) => x86::dot4_unpacked_vnni::<1, false>(b, [a[0]], fit(out)),
            }
        }
    }
}

/// `out` as the fixed-size array a kernel writes (its length is the token count).
#[cfg(target_arch = "x86_64")]
fn fit<const T: usize>(out: &mut [[f32; 4]]) -> &mut [[f32; 4]; T] {
    out.try_into().expect("one output per token")
}

/// `out[t * stride + i] = W[r0 + i] . a[t]` for rows `r0..r0 + n` and every activation
/// row in `a` (prefill), on AVX2 (two or more tokens) or AVX-512 VNNI (four or more),
/// for Q4_1 and Q8_0. Each group of four rows is unpacked once into an L1 scratch and
/// then every token passes over it, `TOKENS` at a time. Against unpacking per pass of
/// tokens in registers: the AVX2 two-token kernel spilled its accumulators to the stack
/// on every block (its 4 x 2 accumulators and four unpacked rows exceed the 16 ymm
/// registers), and VNNI prefill ran 20-30 % faster on Zen 4 with the unpacking shared by
/// all tokens. Every value is still [`dot_one`]'s bit for bit.
#[cfg(target_arch = "x86_64")]
pub(super) fn rows_prefill(
    isa: DotIsa,
    w: &QuantMatrix<'_>,
    r0: usize,
    n: usize,
    a: &[ActRow<'_>],
    out: &mut [f32],
    stride: usize,
) {
    let kind = w.kind();
    assert!(matches!(kind, QuantKind::Q4_1 | QuantKind::Q8_0));
    let nb = w.cols() / BLOCK;
    match isa {
        DotIsa::Avx2 => {
            let g = Avx2Group {
                kind,
                nb,
                w: vec![0u8; nb * x86::unpacked_bytes(kind)],
                h: vec![0f32; nb * 8],
                s: vec![0f32; 2 * nb * 8],
            };
            // SAFETY: `DotIsa::checked` verified avx2, fma and f16c.
            unsafe { prefill_groups(g, isa, w, r0, n, a, out, stride) }
        }
        DotIsa::Avx512Vnni => {
            let g = VnniGroup {
                kind,
                buf: x86::VnniUnpacked::new(nb),
            };
            // SAFETY: `DotIsa::checked` verified avx512f/bw/vl/vnni and f16c.
            unsafe { prefill_groups(g, isa, w, r0, n, a, out, stride) }
        }
        DotIsa::Scalar => unreachable!("no scalar prefill kernel"),
    }
}

/// [`rows_prefill`]'s loops for one kind of [`UnpackedGroup`].
///
/// # Safety
/// The CPU has `g`'s instruction sets.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn prefill_groups<G: UnpackedGroup>(
    mut g: G,
    isa: DotIsa,
    w: &QuantMatrix<'_>,
    r0: usize,
    n: usize,
    a: &[ActRow<'_>],
    out: &mut [f32],
    stride: usize,
) {
    let mut i = 0;
    while i + 4 <= n {
        let rows = [0, 1, 2, 3].map(|k| w.row(r0 + i + k));
        let pf = rows[0]
            .as_ptr()
            .wrapping_add(PREFETCH_GROUPS * 4 * rows[0].len());
        // SAFETY: the caller's; rows of one matrix have equal lengths.
        unsafe { g.unpack(rows, pf) };
        let mut t = 0;
        while t < a.len() {
            let k = if t + G::TOKENS <= a.len() {
                G::TOKENS
            } else {
                1
            };
            let mut o = [[0f32; 4]; 4];
            // SAFETY: as above; the token rows have `cols` elements (the caller's invariant).
            unsafe { g.dot(&a[t..t + k], &mut o[..k]) };
            for (j, o) in o[..k].iter().enumerate() {
                out[(t + j) * stride + i..(t + j) * stride + i + 4].copy_from_slice(o);
            }
            t += k;
        }
        i += 4;
    }
    for r in i..n {
        let row = w.row(r0 + r);
        for (t, &a) in a.iter().enumerate() {
            out[t * stride + r] = dot_one(isa, w.kind(), row, a);
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

    /// The 32 nibbles of a Q4 block at `p` in element order, as [`nibbles`] gives
    /// them: the 16 bytes loaded into both halves, the high half shifted down by
    /// 4 (`shift` = `[0, 0, 4, 4]` per 64-bit lane), then masked.
    #[inline(always)]
    unsafe fn nibbles_bcast(p: *const u8, shift: __m256i, m4: __m256i) -> __m256i {
        // SAFETY: the caller points `p` at 16 readable bytes; avx2 is enabled.
        unsafe {
            let q = _mm256_broadcastsi128_si256(_mm_loadu_si128(p as *const __m128i));
            _mm256_and_si256(_mm256_srlv_epi64(q, shift), m4)
        }
    }

    /// Four weight rows against `T` activation rows (tokens) on AVX2: a block's
    /// activations are loaded once for the four rows and its weights unpacked
    /// once for the `T` tokens; each (row, token) keeps its own 8-lane
    /// accumulator and `m * s` sum with exactly [`dot_avx2`]'s operations in its
    /// order (`dw * da` one f32 product, `fma(scale, sums, acc)`, `fma(m, s, extra)`,
    /// `hsum(acc) + extra`), so `out[t][r]` is bit for bit `dot_avx2(kind, w[r], a[t])`.
    /// Only Q4_1 and Q8_0; `w` rows of equal length. Run with `T` = 1 (decode):
    /// at 2 its 4 x 2 accumulators and four unpacked rows did not fit the 16 ymm
    /// registers and spilled, so prefill uses [`unpack4_avx2`] and
    /// [`dot4_unpacked_avx2`] instead. `pf` is where to prefetch (see
    /// [`PREFETCH_GROUPS`]); never dereferenced.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot4_avx2<const T: usize>(
        kind: QuantKind,
        w: [&[u8]; 4],
        a: [ActRow<'_>; T],
        out: &mut [[f32; 4]; T],
        pf: *const u8,
    ) {
        let bb = kind.block_bytes();
        let nb = w[0].len() / bb;
        debug_assert!(w.iter().all(|r| r.len() == nb * bb));
        debug_assert!(
            a.iter()
                .all(|a| a.qs.len() >= nb * BLOCK && a.d.len() >= nb && a.s.len() >= nb)
        );
        let p = [w[0].as_ptr(), w[1].as_ptr(), w[2].as_ptr(), w[3].as_ptr()];
        let q4 = kind == QuantKind::Q4_1;
        // SAFETY: register set-up and arithmetic under the enabled features;
        // the loads read block b of each row (nb whole blocks) and the block's
        // 32 activations of each token (the caller's invariant: rows of `cols`
        // elements).
        unsafe {
            let m4 = _mm256_set1_epi8(0x0f);
            let shift = _mm256_set_epi64x(4, 4, 0, 0);
            let ones = _mm256_set1_epi16(1);
            let mut acc = [[_mm256_setzero_ps(); 4]; T];
            let mut extra = [_mm256_setzero_ps(); T];
            for b in 0..nb {
                let o = b * bb;
                let f = pf.wrapping_add(4 * o);
                _mm_prefetch::<_MM_HINT_T0>(f as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(f.wrapping_add(64) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(f.wrapping_add(4 * bb - 1) as *const i8);
                // [d0, m0, d1, m1, d2, m2, d3, m3] (Q8_0: odd lanes unused).
                let h = halves4(p, o);
                // Q4_1: the nibbles; Q8_0: the values, whose signs move onto the
                // activations as in the one-row kernel.
                let mut wv = [_mm256_setzero_si256(); 4];
                for r in 0..4 {
                    wv[r] = if q4 {
                        nibbles_bcast(p[r].add(o + 4), shift, m4)
                    } else {
                        _mm256_loadu_si256(p[r].add(o + 2) as *const __m256i)
                    };
                }
                for t in 0..T {
                    let q = _mm256_loadu_si256(a[t].qs.as_ptr().add(b * BLOCK) as *const __m256i);
                    // `dw * da` rounded once per row, as the one-row kernel's scalar product.
                    let sc = _mm256_mul_ps(h, _mm256_set1_ps(*a[t].d.get_unchecked(b)));
                    let mut s = [0f32; 8];
                    _mm256_storeu_ps(s.as_mut_ptr(), sc);
                    if q4 {
                        // Odd lanes: extra_r = fma(m_r, s_a, extra_r); even lanes unused.
                        let sa = _mm256_set1_ps(*a[t].s.get_unchecked(b));
                        extra[t] = _mm256_fmadd_ps(h, sa, extra[t]);
                    }
                    for r in 0..4 {
                        let (x, y) = if q4 {
                            (wv[r], q)
                        } else {
                            (_mm256_sign_epi8(wv[r], wv[r]), _mm256_sign_epi8(q, wv[r]))
                        };
                        let sums = _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), ones);
                        acc[t][r] = _mm256_fmadd_ps(
                            _mm256_set1_ps(s[2 * r]),
                            _mm256_cvtepi32_ps(sums),
                            acc[t][r],
                        );
                    }
                }
            }
            for t in 0..T {
                let mut e = [0f32; 8];
                _mm256_storeu_ps(e.as_mut_ptr(), extra[t]);
                for r in 0..4 {
                    // Q8_0's `extra` stays 0.0, added as the one-row kernel adds it.
                    let x = if q4 { e[2 * r + 1] } else { 0.0 };
                    out[t][r] = hsum(acc[t][r]) + x;
                }
            }
        }
    }

    /// Bytes [`unpack4_avx2`] writes per block: four rows of 32 unpacked values, and
    /// for Q8_0 the four rows' raw values after them (their signs move onto the
    /// activations).
    pub(super) fn unpacked_bytes(kind: QuantKind) -> usize {
        if kind == QuantKind::Q4_1 {
            4 * 32
        } else {
            8 * 32
        }
    }

    /// Four Q4_1 / Q8_0 rows, unpacked as [`dot4_avx2`] unpacks them, block by block
    /// into `wbuf` ([`unpacked_bytes`] per block) and their widened halves
    /// ([`halves4`]) into `hbuf` (8 per block). `pf` is where to prefetch (see
    /// [`PREFETCH_GROUPS`]); never dereferenced.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn unpack4_avx2(
        kind: QuantKind,
        w: [&[u8]; 4],
        wbuf: &mut [u8],
        hbuf: &mut [f32],
        pf: *const u8,
    ) {
        let bb = kind.block_bytes();
        let nb = w[0].len() / bb;
        let per = unpacked_bytes(kind);
        assert!(w.iter().all(|r| r.len() == nb * bb));
        assert!(wbuf.len() >= nb * per && hbuf.len() >= nb * 8);
        let p = w.map(|r| r.as_ptr());
        let q4 = kind == QuantKind::Q4_1;
        // SAFETY: the loads read block b of each row (nb whole blocks, asserted), the
        // stores write block b's part of the buffers (asserted lengths).
        unsafe {
            let m4 = _mm256_set1_epi8(0x0f);
            let shift = _mm256_set_epi64x(4, 4, 0, 0);
            for b in 0..nb {
                let o = b * bb;
                let f = pf.wrapping_add(4 * o);
                _mm_prefetch::<_MM_HINT_T0>(f as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(f.wrapping_add(64) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(f.wrapping_add(4 * bb - 1) as *const i8);
                _mm256_storeu_ps(hbuf.as_mut_ptr().add(8 * b), halves4(p, o));
                let dst = wbuf.as_mut_ptr().add(b * per);
                for (r, &pr) in p.iter().enumerate() {
                    let d = dst.add(32 * r) as *mut __m256i;
                    if q4 {
                        _mm256_storeu_si256(d, nibbles_bcast(pr.add(o + 4), shift, m4));
                    } else {
                        let wv = _mm256_loadu_si256(pr.add(o + 2) as *const __m256i);
                        _mm256_storeu_si256(d, _mm256_sign_epi8(wv, wv));
                        _mm256_storeu_si256(dst.add(128 + 32 * r) as *mut __m256i, wv);
                    }
                }
            }
        }
    }

    /// [`dot4_avx2`] on rows [`unpack4_avx2`] unpacked into `wbuf` / `hbuf` (`nb`
    /// blocks), `Q4` for Q4_1 and not for Q8_0: the same operations per (row, token)
    /// in the same order, so `out[t][r]` is bit for bit `dot_avx2(kind, w[r], a[t])`.
    /// A first pass per token writes the `dw * da` products into `sbuf` (`T * nb * 8`),
    /// so the block loop broadcasts them from memory instead of shuffling registers,
    /// and its 4 x 2 accumulators stay in registers. In the block loop each row's
    /// unpacked block is loaded once for the `T` tokens (5-7 % faster prefill on Zen 4
    /// than one load per row and token: loads, not arithmetic, were the limit).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot4_unpacked_avx2<const T: usize, const Q4: bool>(
        nb: usize,
        wbuf: &[u8],
        hbuf: &[f32],
        sbuf: &mut [f32],
        a: [ActRow<'_>; T],
        out: &mut [[f32; 4]; T],
    ) {
        let per = unpacked_bytes(if Q4 { QuantKind::Q4_1 } else { QuantKind::Q8_0 });
        assert!(wbuf.len() >= nb * per && hbuf.len() >= nb * 8 && sbuf.len() >= T * nb * 8);
        assert!(
            a.iter()
                .all(|a| a.qs.len() >= nb * BLOCK && a.d.len() >= nb && a.s.len() >= nb)
        );
        // SAFETY: register arithmetic under the enabled features; the loads and stores
        // touch block b of the buffers and of each token's row (asserted lengths).
        unsafe {
            for (t, at) in a.iter().enumerate() {
                let st = sbuf.as_mut_ptr().add(t * nb * 8);
                for b in 0..nb {
                    let h = _mm256_loadu_ps(hbuf.as_ptr().add(8 * b));
                    // `dw * da` rounded once per row, as the one-row kernel's scalar product.
                    let sc = _mm256_mul_ps(h, _mm256_set1_ps(*at.d.get_unchecked(b)));
                    _mm256_storeu_ps(st.add(8 * b), sc);
                }
            }
            let ones = _mm256_set1_epi16(1);
            let mut acc = [[_mm256_setzero_ps(); T]; 4];
            let mut extra = [_mm256_setzero_ps(); T];
            let sp = sbuf.as_ptr();
            for b in 0..nb {
                let wb = wbuf.as_ptr().add(b * per);
                let h = _mm256_loadu_ps(hbuf.as_ptr().add(8 * b));
                let mut q = [_mm256_setzero_si256(); T];
                for t in 0..T {
                    if Q4 {
                        // Odd lanes: extra_r = fma(m_r, s_a, extra_r); even lanes unused
                        // (the product commutes, so `s_a * m_r` is the same number).
                        let sa = _mm256_set1_ps(*a[t].s.get_unchecked(b));
                        extra[t] = _mm256_fmadd_ps(sa, h, extra[t]);
                    }
                    q[t] = _mm256_loadu_si256(a[t].qs.as_ptr().add(b * BLOCK) as *const __m256i);
                }
                // Each row's unpacked block is loaded once for the T tokens.
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = _mm256_loadu_si256(wb.add(32 * r) as *const __m256i);
                    let wv = if Q4 {
                        x
                    } else {
                        _mm256_loadu_si256(wb.add(128 + 32 * r) as *const __m256i)
                    };
                    for t in 0..T {
                        let y = if Q4 { q[t] } else { _mm256_sign_epi8(q[t], wv) };
                        let sums = _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), ones);
                        let sc = _mm256_broadcast_ss(&*sp.add(t * nb * 8 + 8 * b + 2 * r));
                        acc[t] = _mm256_fmadd_ps(sc, _mm256_cvtepi32_ps(sums), acc[t]);
                    }
                }
            }
            for t in 0..T {
                let mut e = [0f32; 8];
                _mm256_storeu_ps(e.as_mut_ptr(), extra[t]);
                for r in 0..4 {
                    // Q8_0's `extra` stays 0.0, added as the one-row kernel adds it.
                    let x = if Q4 { e[2 * r + 1] } else { 0.0 };
                    out[t][r] = hsum(acc[r][t]) + x;
                }
            }
        }
    }

    /// Four rows' `(d, m)` f16 pairs of block `off` (bytes `off..off + 4` of
    /// each row) widened to `[d0, m0, d1, m1, d2, m2, d3, m3]`. For Q8_0 the
    /// odd lanes are the first quantised values, unused.
    #[inline(always)]
    unsafe fn halves4(p: [*const u8; 4], off: usize) -> __m256 {
        // SAFETY: the caller points each row at a block with 4 readable bytes
        // at `off`; f16c is enabled by the calling function.
        unsafe {
            let rd = |p: *const u8| std::ptr::read_unaligned(p.add(off) as *const i32);
            _mm256_cvtph_ps(_mm_set_epi32(rd(p[3]), rd(p[2]), rd(p[1]), rd(p[0])))
        }
    }

    /// The 16 nibble bytes of two Q4 blocks at `x` and `y` as one zmm: `[A, A, B, B]`
    /// (128-bit lanes, `dup`), the odd copies shifted down by 4 (`shift`) and masked:
    /// `[lo A, hi A, lo B, hi B]`, each block's 32 values in element order as
    /// [`nibbles`] gives them.
    #[inline(always)]
    unsafe fn nibbles2(
        x: *const u8,
        y: *const u8,
        dup: __m512i,
        shift: __m512i,
        m4: __m512i,
    ) -> __m512i {
        // SAFETY: the caller points `x` and `y` at 16 readable bytes each and
        // enables avx512f.
        unsafe {
            let ab = _mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_loadu_si128(x as *const __m128i)),
                _mm_loadu_si128(y as *const __m128i),
                1,
            );
            let z = _mm512_permutexvar_epi64(dup, _mm512_castsi256_si512(ab));
            _mm512_and_si512(_mm512_srlv_epi64(z, shift), m4)
        }
    }

    /// Two Q8_0 blocks' values at `x` and `y` (low and high 256 bits): `|w|`
    /// and the mask of the negative values.
    #[inline(always)]
    unsafe fn signed2(x: *const u8, y: *const u8) -> (__m512i, __mmask64) {
        // SAFETY: the caller points `x` and `y` at 32 readable bytes each and
        // enables avx512f/bw.
        unsafe {
            let wv = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256(x as *const __m256i)),
                _mm256_loadu_si256(y as *const __m256i),
                1,
            );
            (_mm512_abs_epi8(wv), _mm512_movepi8_mask(wv))
        }
    }

    /// Block `$o` (bytes) of the four rows `$p` as the VNNI four-row kernels use it,
    /// after prefetching the group at `$pf` (see [`PREFETCH_GROUPS`]): `(h, d01, d23,
    /// w01, w23, n01, n23)`, the halves ([`halves4`]), the scale vectors (lane `i` of
    /// `d01` is row `i / 8`'s `d`), the weights two rows per zmm (row `2k` in the low
    /// 256 bits, `2k + 1` in the high) and Q8_0's masks of negative weights. A macro,
    /// so each kernel compiles it in place under its target features.
    macro_rules! vnni_unpack_block {
        ($kind:expr, $p:expr, $o:expr, $bb:expr, $pf:expr) => {{
            let (p, o, bb): ([*const u8; 4], usize, usize) = ($p, $o, $bb);
            // The group at `pf` is 4 * nb blocks: 4 blocks' bytes per step
            // (80 or 136, so three lines cover them; repeats are cheap).
            let f = $pf.wrapping_add(4 * o);
            _mm_prefetch::<_MM_HINT_T0>(f as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(f.wrapping_add(64) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(f.wrapping_add(4 * bb - 1) as *const i8);
            // Lane i of the scale vector of rows (0, 1) takes d of row i / 8,
            // lane 0 (d0) or 2 (d1) of `halves4`; rows (2, 3) lanes 4 and 6.
            let lo_pair = _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
            let hi_pair = _mm512_set_epi32(6, 6, 6, 6, 6, 6, 6, 6, 4, 4, 4, 4, 4, 4, 4, 4);
            // `nibbles2`'s lane order and shifts.
            let dup = _mm512_set_epi64(3, 2, 3, 2, 1, 0, 1, 0);
            let shift = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);
            let m4 = _mm512_set1_epi8(0x0f);
            let h = halves4(p, o);
            let hz = _mm512_castps256_ps512(h);
            let d01 = _mm512_permutexvar_ps(lo_pair, hz);
            let d23 = _mm512_permutexvar_ps(hi_pair, hz);
            // Q4_1: the nibbles; Q8_0: |w| and where w < 0 (the one-row
            // kernel's sign trick: q is negated there; where w = 0 the
            // product is 0 either way, so the same integer partial sums).
            if $kind == QuantKind::Q4_1 {
                let w01 = nibbles2(p[0].add(o + 4), p[1].add(o + 4), dup, shift, m4);
                let w23 = nibbles2(p[2].add(o + 4), p[3].add(o + 4), dup, shift, m4);
                (h, d01, d23, w01, w23, 0, 0)
            } else {
                let (w01, n01) = signed2(p[0].add(o + 2), p[1].add(o + 2));
                let (w23, n23) = signed2(p[2].add(o + 2), p[3].add(o + 2));
                (h, d01, d23, w01, w23, n01, n23)
            }
        }};
    }

    /// One token's step over one block of the VNNI four-row kernels: exactly
    /// [`dot_vnni`]'s operations per row, rows (0, 1) in `$acc01` and (2, 3) in `$acc23`
    /// ([`dot4_vnni`]'s layout), `$extra` the `m * s` sums of Q4_1. A macro, so both
    /// kernels compile it in place under their target features.
    macro_rules! vnni_token_step {
        ($q4:expr, $a:expr, $b:expr, $w01:expr, $w23:expr, $d01:expr, $d23:expr, $h:expr,
         $n01:expr, $n23:expr, $acc01:expr, $acc23:expr, $extra:expr) => {{
            let a: ActRow<'_> = $a;
            let b: usize = $b;
            let zero = _mm512_setzero_si512();
            let q = _mm512_broadcast_i64x4(_mm256_loadu_si256(
                a.qs.as_ptr().add(b * BLOCK) as *const __m256i
            ));
            let ad = _mm512_set1_ps(*a.d.get_unchecked(b));
            // `dw * ad` rounded once per row, as the one-row kernel's scalar product.
            let s01 = _mm512_mul_ps($d01, ad);
            let s23 = _mm512_mul_ps($d23, ad);
            let (q01, q23) = if $q4 {
                // Odd lanes: extra_r = fma(m_r, s_a, extra_r); even lanes unused.
                let sa = _mm256_set1_ps(*a.s.get_unchecked(b));
                $extra = _mm256_fmadd_ps($h, sa, $extra);
                (q, q)
            } else {
                (
                    _mm512_mask_sub_epi8(q, $n01, zero, q),
                    _mm512_mask_sub_epi8(q, $n23, zero, q),
                )
            };
            let f01 = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, $w01, q01));
            let f23 = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, $w23, q23));
            $acc01 = _mm512_fmadd_ps(s01, f01, $acc01);
            $acc23 = _mm512_fmadd_ps(s23, f23, $acc23);
        }};
    }

    /// The four rows' dots of one token from [`vnni_token_step!`]'s accumulators.
    macro_rules! vnni_token_out {
        ($q4:expr, $acc01:expr, $acc23:expr, $extra:expr) => {{
            let mut e = [0f32; 8];
            _mm256_storeu_ps(e.as_mut_ptr(), $extra);
            let accs = [
                _mm512_castps512_ps256($acc01),
                _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd($acc01), 1)),
                _mm512_castps512_ps256($acc23),
                _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd($acc23), 1)),
            ];
            let mut o = [0f32; 4];
            for r in 0..4 {
                // Q8_0's `extra` stays 0.0, added as the one-row kernel adds it.
                let x = if $q4 { e[2 * r + 1] } else { 0.0 };
                o[r] = hsum(accs[r]) + x;
            }
            o
        }};
    }

    /// Four weight rows against `T` activation rows (tokens), two rows per zmm
    /// (row `2k` in the low 256 bits, `2k + 1` in the high): a block's
    /// activations are loaded once for the four rows, a block's weights unpacked
    /// once for the `T` tokens, and each (row, token) keeps its own 8-lane
    /// accumulator and `m * s` sum with exactly [`dot_vnni`]'s operations in its
    /// order, so `out[t][r]` is bit for bit `dot_vnni(kind, w[r], a[t])`.
    /// Only Q4_1 and Q8_0 (the kinds llama models ship); `w` rows of equal length.
    /// `pf` is where to prefetch (see [`PREFETCH_GROUPS`]); never dereferenced.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(super) unsafe fn dot4_vnni<const T: usize>(
        kind: QuantKind,
        w: [&[u8]; 4],
        a: [ActRow<'_>; T],
        out: &mut [[f32; 4]; T],
        pf: *const u8,
    ) {
        let bb = kind.block_bytes();
        let nb = w[0].len() / bb;
        debug_assert!(w.iter().all(|r| r.len() == nb * bb));
        debug_assert!(
            a.iter()
                .all(|a| a.qs.len() >= nb * BLOCK && a.d.len() >= nb && a.s.len() >= nb)
        );
        let p = w.map(|r| r.as_ptr());
        // SAFETY: register set-up and arithmetic under the enabled features;
        // the loads read block b of each row (nb whole blocks) and the block's
        // 32 activations of each token (the caller's invariant: rows of `cols`
        // elements).
        unsafe {
            let mut acc01 = [_mm512_setzero_ps(); T];
            let mut acc23 = [_mm512_setzero_ps(); T];
            let mut extra = [_mm256_setzero_ps(); T];
            for b in 0..nb {
                let (h, d01, d23, w01, w23, n01, n23) = vnni_unpack_block!(kind, p, b * bb, bb, pf);
                for t in 0..T {
                    vnni_token_step!(
                        kind == QuantKind::Q4_1,
                        a[t],
                        b,
                        w01,
                        w23,
                        d01,
                        d23,
                        h,
                        n01,
                        n23,
                        acc01[t],
                        acc23[t],
                        extra[t]
                    );
                }
            }
            for t in 0..T {
                out[t] = vnni_token_out!(kind == QuantKind::Q4_1, acc01[t], acc23[t], extra[t]);
            }
        }
    }

    /// A four-row group unpacked for [`dot4_unpacked_vnni`], `nb` blocks: per block the
    /// two zmm of weights ([`dot4_vnni`]'s `w01`, `w23`), Q8_0's two negative masks, the
    /// halves ([`halves4`]) and the two scale vectors `d01`, `d23`.
    pub(super) struct VnniUnpacked {
        nb: usize,
        w: Vec<__m512i>,
        neg: Vec<__mmask64>,
        h: Vec<__m256>,
        d: Vec<__m512>,
    }

    impl VnniUnpacked {
        pub(super) fn new(nb: usize) -> Self {
            // SAFETY: all-zero bits are valid values of these plain vector types.
            let (zi, zh, zd) = unsafe {
                (
                    std::mem::zeroed::<__m512i>(),
                    std::mem::zeroed::<__m256>(),
                    std::mem::zeroed::<__m512>(),
                )
            };
            Self {
                nb,
                w: vec![zi; 2 * nb],
                neg: vec![0; 2 * nb],
                h: vec![zh; nb],
                d: vec![zd; 2 * nb],
            }
        }
    }

    /// Four Q4_1 / Q8_0 rows (of `buf.nb` blocks) unpacked into `buf` exactly as
    /// [`dot4_vnni`] unpacks them block by block. `pf` is where to prefetch (see
    /// [`PREFETCH_GROUPS`]); never dereferenced.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(super) unsafe fn unpack4_vnni(
        kind: QuantKind,
        w: [&[u8]; 4],
        buf: &mut VnniUnpacked,
        pf: *const u8,
    ) {
        let bb = kind.block_bytes();
        let nb = buf.nb;
        assert!(w.iter().all(|r| r.len() == nb * bb));
        let p = w.map(|r| r.as_ptr());
        // SAFETY: the loads read block b of each row (nb whole blocks, asserted); the
        // buffer's vectors hold nb blocks (its constructor).
        unsafe {
            for b in 0..nb {
                let (h, d01, d23, w01, w23, n01, n23) = vnni_unpack_block!(kind, p, b * bb, bb, pf);
                *buf.h.get_unchecked_mut(b) = h;
                *buf.d.get_unchecked_mut(2 * b) = d01;
                *buf.d.get_unchecked_mut(2 * b + 1) = d23;
                *buf.w.get_unchecked_mut(2 * b) = w01;
                *buf.w.get_unchecked_mut(2 * b + 1) = w23;
                *buf.neg.get_unchecked_mut(2 * b) = n01;
                *buf.neg.get_unchecked_mut(2 * b + 1) = n23;
            }
        }
    }

    /// [`dot4_vnni`] on a group [`unpack4_vnni`] unpacked (`Q4` for Q4_1, else Q8_0):
    /// per (row, token) the same operations in the same order, so `out[t][r]` is bit
    /// for bit `dot_vnni(kind, w[r], a[t])`.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(super) unsafe fn dot4_unpacked_vnni<const T: usize, const Q4: bool>(
        buf: &VnniUnpacked,
        a: [ActRow<'_>; T],
        out: &mut [[f32; 4]; T],
    ) {
        let nb = buf.nb;
        assert!(
            a.iter()
                .all(|a| a.qs.len() >= nb * BLOCK && a.d.len() >= nb && a.s.len() >= nb)
        );
        // SAFETY: register arithmetic under the enabled features; the loads read block
        // b of the buffer (nb blocks) and of each token's row (asserted lengths).
        unsafe {
            let mut acc01 = [_mm512_setzero_ps(); T];
            let mut acc23 = [_mm512_setzero_ps(); T];
            let mut extra = [_mm256_setzero_ps(); T];
            for b in 0..nb {
                let w01 = *buf.w.get_unchecked(2 * b);
                let w23 = *buf.w.get_unchecked(2 * b + 1);
                let d01 = *buf.d.get_unchecked(2 * b);
                let d23 = *buf.d.get_unchecked(2 * b + 1);
                let h = *buf.h.get_unchecked(b);
                let n01 = *buf.neg.get_unchecked(2 * b);
                let n23 = *buf.neg.get_unchecked(2 * b + 1);
                for t in 0..T {
                    vnni_token_step!(
                        Q4, a[t], b, w01, w23, d01, d23, h, n01, n23, acc01[t], acc23[t], extra[t]
                    );
                }
            }
            for t in 0..T {
                out[t] = vnni_token_out!(Q4, acc01[t], acc23[t], extra[t]);
            }
        }
    }

    /// Dot of one quantised row with one activation row (AVX-512 VNNI on ymm).
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
    pub(super) unsafe fn dot_vnni(kind: QuantKind, w: &[u8], a: ActRow<'_>) -> f32 {
        dot_body!(kind, w, a, dotu_vnni)
    }
}
