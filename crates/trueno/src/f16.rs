//! Half-precision (IEEE binary16) weights: widening to f32, and the products that read them.
//!
//! A model stored in F16 holds half the bytes of F32 at 11 significant bits. What a kernel
//! does with those bytes depends on which resource bounds it:
//!
//! - **Matrix-vector** ([`gemv_f16`], one token of decode) is bound by memory: every weight
//!   is read once per call and used once. So the weights stay 2 bytes wide all the way into
//!   the registers, are widened there (`vcvtph2ps`: AVX-512F, or F16C beside AVX2) and
//!   multiplied by f32 activations with f32 accumulation. Half the bytes of the f32 GEMV,
//!   the same arithmetic.
//! - **Matrix-matrix** ([`matmul_f16`], prefill of many tokens) is bound by arithmetic: each
//!   weight is used once per activation row. So a band of weight rows is widened to f32 once
//!   into a scratch that fits the L2 cache and handed to the f32 GEMM ([`crate::matmul`]):
//!   widening costs `O(m k)` against the product's `O(m k n)`, and there is one GEMM.
//!
//! Widening is exact (every binary16 value is an f32, subnormals, infinities and NaN
//! included; [`crate::quant::f16_to_f32`] is the scalar reference), so both products equal
//! the f32 kernels on the widened matrix up to summation order, which the tests bound.
//! Weights are `u16` bit patterns, as GGUF stores them (little-endian on disk).

use crate::Error;
use crate::backend::{self, Backend};
use crate::matmul;
use crate::quant::f16_to_f32;

fn f16c() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Which widening kernel a backend runs here: AVX2 needs F16C too (every AVX2 CPU shipped
/// has it, but it is a separate CPUID bit), otherwise the portable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

fn isa_for(b: Backend) -> Result<Isa, Error> {
    let missing = b.missing_features();
    if !missing.is_empty() {
        return Err(Error::UnsupportedBackend {
            backend: b.name(),
            missing: missing.join(", "),
        });
    }
    Ok(match b {
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => Isa::Avx512,
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 if f16c() => Isa::Avx2,
        _ => Isa::Scalar,
    })
}

/// `out[i] = src[i]` widened from binary16 bits to f32 (exact), on the active backend.
pub fn to_f32(src: &[u16], out: &mut [f32]) -> Result<(), Error> {
    to_f32_with(backend::active()?, src, out)
}

/// [`to_f32`] on an explicit backend.
pub fn to_f32_with(b: Backend, src: &[u16], out: &mut [f32]) -> Result<(), Error> {
    if src.len() != out.len() {
        return Err(Error::LengthMismatch {
            left: src.len(),
            right: out.len(),
        });
    }
    match isa_for(b)? {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Avx512 is only chosen after the CPU reported AVX-512F/BW/VL.
        Isa::Avx512 => unsafe { x86::widen_avx512(src, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Avx2 is only chosen after the CPU reported AVX2, FMA and F16C.
        Isa::Avx2 => unsafe { x86::widen_avx2(src, out) },
        Isa::Scalar => widen_scalar(src, out),
    }
    Ok(())
}

fn widen_scalar(src: &[u16], out: &mut [f32]) {
    for (o, &h) in out.iter_mut().zip(src) {
        *o = f16_to_f32(h);
    }
}

fn check_gemv(a: usize, x: usize, y: usize, m: usize, n: usize) -> Result<(), Error> {
    let need = m
        .checked_mul(n)
        .ok_or_else(|| Error::Shape(format!("{m} x {n} overflows")))?;
    for (got, want) in [(a, need), (x, n), (y, m)] {
        if got != want {
            return Err(Error::LengthMismatch {
                left: got,
                right: want,
            });
        }
    }
    Ok(())
}

/// `y[m] = a[m x n] * x[n]`: `a` row-major binary16 bits, `x` and `y` f32, on the active
/// backend. Lengths must be `m*n`, `n`, `m` ([`Error::LengthMismatch`] otherwise); `n == 0`
/// gives zeros.
pub fn gemv_f16(a: &[u16], x: &[f32], y: &mut [f32], m: usize, n: usize) -> Result<(), Error> {
    gemv_f16_with(backend::active()?, a, x, y, m, n)
}

/// [`gemv_f16`] on an explicit backend (the tests compare them all).
pub fn gemv_f16_with(
    b: Backend,
    a: &[u16],
    x: &[f32],
    y: &mut [f32],
    m: usize,
    n: usize,
) -> Result<(), Error> {
    check_gemv(a.len(), x.len(), y.len(), m, n)?;
    let isa = isa_for(b)?;
    if m == 0 {
        return Ok(());
    }
    if n == 0 {
        y.fill(0.0);
        return Ok(());
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX-512F/BW/VL (checked by `isa_for`); lengths checked above.
        Isa::Avx512 => unsafe { x86::gemv_avx512(a, x, y, n) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2, FMA and F16C; lengths checked above.
        Isa::Avx2 => unsafe { x86::gemv_avx2(a, x, y, n) },
        Isa::Scalar => gemv_scalar(a, x, y, n),
    }
    Ok(())
}

/// The portable GEMV: eight partial sums per row, so the additions are not one serial
/// dependency chain (the same scheme as the f32 portable GEMV).
fn gemv_scalar(a: &[u16], x: &[f32], y: &mut [f32], n: usize) {
    for (row, out) in a.chunks_exact(n).zip(y.iter_mut()) {
        let mut acc = [0f32; 8];
        let rc = row.chunks_exact(8);
        let xc = x.chunks_exact(8);
        let (rt, xt) = (rc.remainder(), xc.remainder());
        for (r8, x8) in rc.zip(xc) {
            for i in 0..8 {
                acc[i] += f16_to_f32(r8[i]) * x8[i];
            }
        }
        let mut total: f32 = acc.iter().sum();
        for (&h, &v) in rt.iter().zip(xt) {
            total += f16_to_f32(h) * v;
        }
        *out = total;
    }
}

/// Bytes of widened weights per GEMM call: a band this size stays in a 1-2 MiB L2 beside
/// the GEMM's own packed panels.
const BAND_BYTES: usize = 256 * 1024;

/// `out[m x n] = a[m x k] * b[k x n]`: `a` row-major binary16 bits, `b` and `out` row-major
/// f32, on the active backend, with `threads` OS threads (`0` and `1`: the caller's only).
///
/// Row bands of `a` are widened into a per-thread scratch and multiplied by the f32 GEMM.
/// `out` is overwritten; lengths must be `m*k`, `k*n`, `m*n`; `k == 0` gives zeros.
#[allow(clippy::too_many_arguments)] // BLAS-shaped: operands, sizes, then threads
pub fn matmul_f16(
    a: &[u16],
    b: &[f32],
    out: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    threads: usize,
) -> Result<(), Error> {
    matmul_f16_with(backend::active()?, a, b, out, m, k, n, threads)
}

/// [`matmul_f16`] on an explicit backend.
#[allow(clippy::too_many_arguments)] // BLAS-shaped: backend, operands, sizes, then threads
pub fn matmul_f16_with(
    isa: Backend,
    a: &[u16],
    b: &[f32],
    out: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    threads: usize,
) -> Result<(), Error> {
    let size = |x: usize, y: usize| {
        x.checked_mul(y)
            .ok_or_else(|| Error::Shape(format!("{x} x {y} overflows")))
    };
    for (got, want) in [
        (a.len(), size(m, k)?),
        (b.len(), size(k, n)?),
        (out.len(), size(m, n)?),
    ] {
        if got != want {
            return Err(Error::LengthMismatch {
                left: got,
                right: want,
            });
        }
    }
    isa_for(isa)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        out.fill(0.0);
        return Ok(());
    }
    // Whole 16-row groups (a multiple of every GEMM tile height) per band.
    let band = (BAND_BYTES / (4 * k)).max(16) / 16 * 16;
    let threads = threads.clamp(1, m.div_ceil(band));
    if threads == 1 {
        return matmul_rows(isa, a, b, out, k, n, band);
    }
    let per = m.div_ceil(threads).div_ceil(16) * 16;
    let results: Vec<Result<(), Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = a
            .chunks(per * k)
            .zip(out.chunks_mut(per * n))
            .map(|(a, o)| s.spawn(move || matmul_rows(isa, a, b, o, k, n, band)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Shape("a matmul_f16 thread panicked".into())))
            })
            .collect()
    });
    results.into_iter().collect()
}

/// One thread's share: bands of `band` rows of `a`, widened, then one f32 GEMM each.
fn matmul_rows(
    isa: Backend,
    a: &[u16],
    b: &[f32],
    out: &mut [f32],
    k: usize,
    n: usize,
    band: usize,
) -> Result<(), Error> {
    let mut wide = vec![0f32; band.min(a.len() / k) * k];
    for (a, o) in a.chunks(band * k).zip(out.chunks_mut(band * n)) {
        let w = &mut wide[..a.len()];
        to_f32_with(isa, a, w)?;
        matmul::matmul_with(isa, w, b, o, a.len() / k, k, n, 1)?;
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::quant::f16_to_f32;

    /// # Safety
    /// The CPU supports AVX-512F/BW/VL; `src.len() == out.len()`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn widen_avx512(src: &[u16], out: &mut [f32]) {
        let n = src.len();
        let (s, o) = (src.as_ptr(), out.as_mut_ptr());
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: i + 16 <= n for both buffers.
            unsafe {
                let h = _mm256_loadu_si256(s.add(i).cast());
                _mm512_storeu_ps(o.add(i), _mm512_cvtph_ps(h));
            }
            i += 16;
        }
        if i < n {
            let m: __mmask16 = (1u32 << (n - i)) as u16 - 1;
            // SAFETY: masked lanes beyond n are neither read nor written.
            unsafe {
                let h = _mm256_maskz_loadu_epi16(m, s.add(i).cast());
                _mm512_mask_storeu_ps(o.add(i), m, _mm512_cvtph_ps(h));
            }
        }
    }

    /// # Safety
    /// The CPU supports AVX2 and F16C; `src.len() == out.len()`.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) unsafe fn widen_avx2(src: &[u16], out: &mut [f32]) {
        let n = src.len();
        let (s, o) = (src.as_ptr(), out.as_mut_ptr());
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n for both buffers.
            unsafe {
                let h = _mm_loadu_si128(s.add(i).cast());
                _mm256_storeu_ps(o.add(i), _mm256_cvtph_ps(h));
            }
            i += 8;
        }
        for j in i..n {
            out[j] = f16_to_f32(src[j]);
        }
    }

    /// Four rows at a time share each load of `x`; two accumulators per row keep eight
    /// FMA chains in flight. The row tail is one masked step.
    ///
    /// # Safety
    /// The CPU supports AVX-512F/BW/VL; `a.len() == y.len() * n`, `x.len() == n`, `n > 0`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn gemv_avx512(a: &[u16], x: &[f32], y: &mut [f32], n: usize) {
        let m = y.len();
        let full = n / 16 * 16;
        let tail: __mmask16 = ((1u32 << (n - full)) - 1) as u16;
        let (ap, xp) = (a.as_ptr(), x.as_ptr());
        // SAFETY: row r spans a[r * n..(r + 1) * n] (a.len() == m * n) and r < m; every
        // unmasked load starts at j with j + 16 <= full <= n, and the masked tail loads
        // only lanes < n - full, so no load leaves the row or `x`.
        unsafe {
            let wide = |p: *const u16| _mm512_cvtph_ps(_mm256_loadu_si256(p.cast()));
            let wide_tail =
                |p: *const u16| _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail, p.cast()));
            let xt = _mm512_maskz_loadu_ps(tail, xp.add(full));
            let mut r = 0;
            while r + 4 <= m {
                let p = [0, 1, 2, 3].map(|i| ap.add((r + i) * n));
                let mut acc = [[_mm512_setzero_ps(); 2]; 4];
                let mut j = 0;
                while j + 32 <= full {
                    let (x0, x1) = (_mm512_loadu_ps(xp.add(j)), _mm512_loadu_ps(xp.add(j + 16)));
                    for i in 0..4 {
                        acc[i][0] = _mm512_fmadd_ps(wide(p[i].add(j)), x0, acc[i][0]);
                        acc[i][1] = _mm512_fmadd_ps(wide(p[i].add(j + 16)), x1, acc[i][1]);
                    }
                    j += 32;
                }
                if j < full {
                    let x0 = _mm512_loadu_ps(xp.add(j));
                    for i in 0..4 {
                        acc[i][0] = _mm512_fmadd_ps(wide(p[i].add(j)), x0, acc[i][0]);
                    }
                }
                if full < n {
                    for i in 0..4 {
                        acc[i][1] = _mm512_fmadd_ps(wide_tail(p[i].add(full)), xt, acc[i][1]);
                    }
                }
                for i in 0..4 {
                    y[r + i] = _mm512_reduce_add_ps(_mm512_add_ps(acc[i][0], acc[i][1]));
                }
                r += 4;
            }
            while r < m {
                let p = ap.add(r * n);
                let mut acc = [_mm512_setzero_ps(); 2];
                let mut j = 0;
                while j + 32 <= full {
                    acc[0] = _mm512_fmadd_ps(wide(p.add(j)), _mm512_loadu_ps(xp.add(j)), acc[0]);
                    acc[1] = _mm512_fmadd_ps(
                        wide(p.add(j + 16)),
                        _mm512_loadu_ps(xp.add(j + 16)),
                        acc[1],
                    );
                    j += 32;
                }
                if j < full {
                    acc[0] = _mm512_fmadd_ps(wide(p.add(j)), _mm512_loadu_ps(xp.add(j)), acc[0]);
                }
                if full < n {
                    acc[1] = _mm512_fmadd_ps(wide_tail(p.add(full)), xt, acc[1]);
                }
                y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
                r += 1;
            }
        }
    }

    /// AVX2 + F16C: one row at a time, two accumulators, scalar tail.
    ///
    /// # Safety
    /// The CPU supports AVX2, FMA and F16C; `a.len() == y.len() * n`, `x.len() == n`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn gemv_avx2(a: &[u16], x: &[f32], y: &mut [f32], n: usize) {
        let full = n / 8 * 8;
        let xp = x.as_ptr();
        for (r, out) in y.iter_mut().enumerate() {
            let row = &a[r * n..(r + 1) * n];
            let p = row.as_ptr();
            let mut s = [_mm256_setzero_ps(); 2];
            // SAFETY: every load starts at j with j + 8 <= full <= n, inside the row and `x`.
            unsafe {
                let wide = |j: usize| _mm256_cvtph_ps(_mm_loadu_si128(p.add(j).cast()));
                let xs = |j: usize| _mm256_loadu_ps(xp.add(j));
                let mut j = 0;
                while j + 16 <= full {
                    s[0] = _mm256_fmadd_ps(wide(j), xs(j), s[0]);
                    s[1] = _mm256_fmadd_ps(wide(j + 8), xs(j + 8), s[1]);
                    j += 16;
                }
                if j < full {
                    s[0] = _mm256_fmadd_ps(wide(j), xs(j), s[0]);
                }
            }
            let v = _mm256_add_ps(s[0], s[1]);
            let mut lanes = [0.0f32; 8];
            // SAFETY: `lanes` is 8 f32s.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
            let mut total: f32 = lanes.iter().sum();
            for (&h, &xv) in row[full..].iter().zip(&x[full..]) {
                total = f16_to_f32(h).mul_add(xv, total);
            }
            *out = total;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::f32_to_f16;
    use proptest::prelude::*;

    fn backends() -> Vec<Backend> {
        Backend::ALL
            .into_iter()
            .filter(|b| b.is_supported())
            .collect()
    }

    fn halves(v: &[f32]) -> Vec<u16> {
        v.iter().map(|&x| f32_to_f16(x)).collect()
    }

    /// `a x` in f64 on the exactly widened weights, and `Σ |a_ij x_j|` per row (the
    /// scale of f32 summation error).
    fn reference(a: &[u16], x: &[f64], m: usize, n: usize) -> (Vec<f64>, Vec<f64>) {
        (0..m)
            .map(|r| {
                let row = &a[r * n..(r + 1) * n];
                row.iter().zip(x).fold((0.0, 0.0), |(s, t), (&h, &v)| {
                    let w = f64::from(f16_to_f32(h));
                    (s + w * v, t + (w * v).abs())
                })
            })
            .unzip()
    }

    #[test]
    fn widening_is_exact_for_every_half_on_every_backend() {
        let all: Vec<u16> = (0..=u16::MAX).collect();
        for b in backends() {
            // An odd length exercises the masked or scalar tail.
            let src = &all[..all.len() - 3];
            let mut out = vec![0f32; src.len()];
            to_f32_with(b, src, &mut out).unwrap();
            for (&h, &f) in src.iter().zip(&out) {
                let want = f16_to_f32(h);
                assert!(
                    f.to_bits() == want.to_bits() || (f.is_nan() && want.is_nan()),
                    "{b:?}: {h:#06x} -> {f}, want {want}"
                );
            }
        }
    }

    #[test]
    fn empty_and_mismatched_lengths() {
        for b in backends() {
            to_f32_with(b, &[], &mut []).unwrap();
            assert!(matches!(
                to_f32_with(b, &[0; 3], &mut [0.0; 2]),
                Err(Error::LengthMismatch { left: 3, right: 2 })
            ));
            let mut y = [7.0f32; 3];
            gemv_f16_with(b, &[], &[], &mut y, 3, 0).unwrap();
            assert_eq!(y, [0.0; 3]);
            gemv_f16_with(b, &[], &[1.0; 4], &mut [], 0, 4).unwrap();
            assert!(gemv_f16_with(b, &[0; 5], &[0.0; 2], &mut [0.0; 3], 3, 2).is_err());
            assert!(gemv_f16_with(b, &[0; 6], &[0.0; 3], &mut [0.0; 3], 3, 2).is_err());
            assert!(gemv_f16_with(b, &[0; 6], &[0.0; 2], &mut [0.0; 2], 3, 2).is_err());
            let mut out = [5.0f32; 6];
            matmul_f16_with(b, &[], &[], &mut out, 3, 0, 2, 1).unwrap();
            assert_eq!(out, [0.0; 6]);
            assert!(matmul_f16_with(b, &[0; 5], &[0.0; 4], &mut [0.0; 6], 3, 2, 2, 1).is_err());
            assert!(matmul_f16_with(b, &[0; 6], &[0.0; 4], &mut [0.0; 5], 3, 2, 2, 1).is_err());
        }
        assert!(matches!(
            gemv_f16(&[], &[], &mut [], usize::MAX, 2),
            Err(Error::Shape(_))
        ));
    }

    #[test]
    fn nan_and_infinity_stay_in_their_row() {
        let n = 37;
        let mut w = vec![0.5f32; 3 * n];
        w[n + 5] = f32::NAN;
        w[2 * n + 36] = f32::INFINITY;
        let a = halves(&w);
        let x = vec![1.0f32; n];
        for b in backends() {
            let mut y = [0f32; 3];
            gemv_f16_with(b, &a, &x, &mut y, 3, n).unwrap();
            assert_eq!(y[0], 0.5 * n as f32, "{b:?}");
            assert!(y[1].is_nan(), "{b:?}");
            assert_eq!(y[2], f32::INFINITY, "{b:?}");
        }
    }

    #[test]
    fn huge_values_overflow_like_f32() {
        // 65504 is the largest half; a row of them times 1e35 overflows f32, as NumPy would.
        let a = vec![f32_to_f16(65504.0); 16];
        let mut y = [0f32; 1];
        for b in backends() {
            gemv_f16_with(b, &a, &[1e35; 16], &mut y, 1, 16).unwrap();
            assert_eq!(y[0], f32::INFINITY, "{b:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn gemv_matches_the_f64_reference_on_every_backend(
            m in 0usize..11,
            n in 0usize..150,
            seed in any::<u64>(),
        ) {
            let mut rng = crate::rng::Rng::new(seed);
            let w: Vec<f32> = (0..m * n).map(|_| (rng.uniform() as f32 - 0.5) * 4.0).collect();
            let x: Vec<f32> = (0..n).map(|_| (rng.uniform() as f32 - 0.5) * 2.0).collect();
            let a = halves(&w);
            let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
            let (want, scale) = reference(&a, &x64, m, n);
            for b in backends() {
                let mut y = vec![f32::NAN; m];
                gemv_f16_with(b, &a, &x, &mut y, m, n).unwrap();
                for r in 0..m {
                    // f32 summation of n products: |error| <= n * 2^-24 * Σ|a x| (plus slack).
                    let bound = (n as f64 + 2.0) * f64::from(f32::EPSILON) * scale[r] + 1e-30;
                    let err = (f64::from(y[r]) - want[r]).abs();
                    prop_assert!(err <= bound, "{:?} row {} of {}x{}: {} vs {}", b, r, m, n, y[r], want[r]);
                }
            }
        }

        #[test]
        fn matmul_equals_f32_matmul_of_the_widened_matrix(
            m in 0usize..40,
            k in 0usize..70,
            n in 0usize..9,
            threads in 1usize..3,
            seed in any::<u64>(),
        ) {
            let mut rng = crate::rng::Rng::new(seed);
            let w: Vec<f32> = (0..m * k).map(|_| rng.uniform() as f32 - 0.5).collect();
            let bm: Vec<f32> = (0..k * n).map(|_| rng.uniform() as f32 - 0.5).collect();
            let a = halves(&w);
            let mut wide = vec![0f32; m * k];
            widen_scalar(&a, &mut wide);
            let want = matmul::matmul_reference(&wide, &bm, m, k, n);
            for b in backends() {
                let mut out = vec![f32::NAN; m * n];
                matmul_f16_with(b, &a, &bm, &mut out, m, k, n, threads).unwrap();
                for (i, (&g, &e)) in out.iter().zip(&want).enumerate() {
                    let bound = (k as f64 + 2.0) * f64::from(f32::EPSILON) * 0.25 * k as f64 + 1e-30;
                    prop_assert!((f64::from(g) - e).abs() <= bound, "{:?} [{}] {} vs {}", b, i, g, e);
                }
            }
        }
    }

    #[test]
    fn matmul_crosses_band_boundaries() {
        // k = 1024 gives 64-row bands: 150 rows is two full bands and a ragged one.
        let (m, k, n) = (150, 1024, 3);
        let mut rng = crate::rng::Rng::new(7);
        let w: Vec<f32> = (0..m * k).map(|_| rng.uniform() as f32 - 0.5).collect();
        let bm: Vec<f32> = (0..k * n).map(|_| rng.uniform() as f32 - 0.5).collect();
        let a = halves(&w);
        let mut wide = vec![0f32; m * k];
        widen_scalar(&a, &mut wide);
        let want = matmul::matmul_reference(&wide, &bm, m, k, n);
        for threads in [1, 2] {
            let mut out = vec![0f32; m * n];
            matmul_f16(&a, &bm, &mut out, m, k, n, threads).unwrap();
            for (&g, &e) in out.iter().zip(&want) {
                assert!((f64::from(g) - e).abs() < 1e-3, "{g} vs {e}");
            }
        }
    }
}
