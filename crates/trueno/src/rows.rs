//! Row-wise kernels on a row-major 2-D buffer: softmax, log-softmax,
//! layer norm and RMS norm (the normalisations of a transformer block).
//!
//! `x` holds `x.len() / cols` rows of `cols` values; a length that is not a
//! multiple of `cols` is an [`Error::Shape`]. Empty input is accepted for any
//! `cols` (zero rows).
//!
//! **Softmax in two passes, numerically stable.** The first pass keeps, per
//! SIMD lane, a running maximum `m` and a running `Σ e^(x - m)`, rescaling the
//! sum whenever the maximum grows (the "online softmax" of Milakov &
//! Gimelshein, applied per block of four vectors so that the rescaling costs
//! at most one extra `exp` per 4·LANES elements, and none once the maximum
//! has settled). No exponent is ever taken of a
//! positive number, so nothing overflows. The second pass writes
//! `e^(x - M) / S` (or `x - M - ln S` for log-softmax). NaN anywhere in a row
//! makes that row NaN, and a row of `-inf` is NaN, as with NumPy's
//! `exp(x - x.max())` expression.

use crate::Error;
use crate::backend;
use crate::elementwise::map1;
use crate::math;
use crate::reduce::{CenteredAdd, CenteredSq, block_sum1};
use crate::simd::{Op1, Simd, multiversion, op2};

fn check_rows(len: usize, cols: usize, out: usize) -> Result<(), Error> {
    if len != out {
        return Err(Error::LengthMismatch {
            left: len,
            right: out,
        });
    }
    if len != 0 && (cols == 0 || !len.is_multiple_of(cols)) {
        return Err(Error::Shape(format!(
            "buffer of {len} values is not a whole number of rows of {cols}"
        )));
    }
    Ok(())
}

fn check_param(name: &str, p: Option<&[f32]>, cols: usize) -> Result<(), Error> {
    match p {
        Some(v) if v.len() != cols => Err(Error::Shape(format!(
            "{name} has {} values but rows have {cols}",
            v.len()
        ))),
        _ => Ok(()),
    }
}

/// `e^(v - m) * inv`: the second softmax pass.
struct SoftExp<S: Simd> {
    m: S::V,
    inv: S::V,
}

impl<S: Simd> Op1<S> for SoftExp<S> {
    #[inline(always)]
    fn apply(&self, s: S, v: S::V) -> S::V {
        s.mul(math::exp(s, s.sub(v, self.m)), self.inv)
    }
}

/// `(v - m) - lse`: the second log-softmax pass.
struct LogSoft<S: Simd> {
    m: S::V,
    lse: S::V,
}

impl<S: Simd> Op1<S> for LogSoft<S> {
    #[inline(always)]
    fn apply(&self, s: S, v: S::V) -> S::V {
        s.sub(s.sub(v, self.m), self.lse)
    }
}

/// `(M, S)`: the row maximum and `Σ e^(x - M)` in one pass.
#[inline(always)]
fn max_sumexp<S: Simd>(s: S, x: &[f32]) -> (f32, f32) {
    let l = S::LANES;
    // Start from the most negative *finite* value: then -inf inputs give
    // e^(-inf) = 0 and an unchanged maximum rescales by e^0 = 1, so no lane
    // ever computes -inf - -inf. An all -inf row ends with S = 0 and becomes
    // 0/0 = NaN in the second pass, as in NumPy.
    let mut m = s.splat(f32::MIN);
    let mut acc = s.splat(0.0);
    let mut blocks = x.chunks_exact(4 * l);
    for c in &mut blocks {
        let (v0, v1, v2, v3) = (
            s.load(c),
            s.load(&c[l..]),
            s.load(&c[2 * l..]),
            s.load(&c[3 * l..]),
        );
        let bm = s.max(s.max(v0, v1), s.max(v2, v3));
        // The running maximum settles quickly, so the rescale (an extra exp)
        // is skipped unless some lane actually grew.
        if s.mask_any(s.lt(m, bm)) {
            let m_new = s.max(bm, m);
            acc = s.mul(acc, math::exp(s, s.sub(m, m_new)));
            m = m_new;
        }
        let e01 = s.add(math::exp(s, s.sub(v0, m)), math::exp(s, s.sub(v1, m)));
        let e23 = s.add(math::exp(s, s.sub(v2, m)), math::exp(s, s.sub(v3, m)));
        acc = s.add(acc, s.add(e01, e23));
    }
    let mut rest = blocks.remainder().chunks(l);
    for c in &mut rest {
        let v = if c.len() == l {
            s.load(c)
        } else {
            s.load_tail(c, f32::NEG_INFINITY)
        };
        let m_new = s.max(v, m);
        let e = math::exp(s, s.sub(v, m_new));
        acc = s.fma(acc, math::exp(s, s.sub(m, m_new)), e);
        m = m_new;
    }
    let big_m = s.reduce_max(m);
    let bm = s.splat(big_m);
    let total = s.reduce_add(s.mul(acc, math::exp(s, s.sub(m, bm))));
    // NaN input: s.max drops NaN lanes but the sums carry it.
    (big_m, total)
}

#[inline(always)]
fn softmax_k<S: Simd>(s: S, x: &[f32], cols: usize, out: &mut [f32], log: bool) {
    for (row, orow) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let (m, total) = max_sumexp(s, row);
        let mv = s.splat(m);
        if log {
            // (x - M) - ln S: no rounding of M + ln S, whose magnitude
            // can dwarf the result.
            let lse = s.splat(total.ln());
            map1(s, row, orow, &LogSoft::<S> { m: mv, lse });
        } else {
            let inv = s.splat(1.0 / total);
            // Streams (non-temporal stores) when the row is huge.
            map1(s, row, orow, &SoftExp::<S> { m: mv, inv });
        }
    }
}

#[inline(always)]
fn softmax_rows_k<S: Simd>(s: S, x: &[f32], cols: usize, out: &mut [f32]) {
    softmax_k(s, x, cols, out, false)
}
#[inline(always)]
fn log_softmax_rows_k<S: Simd>(s: S, x: &[f32], cols: usize, out: &mut [f32]) {
    softmax_k(s, x, cols, out, true)
}
multiversion! {
    fn softmax_d(x: &[f32], cols: usize, out: &mut [f32]) -> () = softmax_rows_k;
}
multiversion! {
    fn log_softmax_d(x: &[f32], cols: usize, out: &mut [f32]) -> () = log_softmax_rows_k;
}

/// Softmax of each row of `cols` values: `out = e^(x - max) / Σ e^(x - max)`.
pub fn softmax_rows(x: &[f32], cols: usize, out: &mut [f32]) -> Result<(), Error> {
    check_rows(x.len(), cols, out.len())?;
    if !x.is_empty() {
        softmax_d(backend::active()?, x, cols, out);
    }
    Ok(())
}

/// Log-softmax of each row: `out = x - max - ln Σ e^(x - max)`.
pub fn log_softmax_rows(x: &[f32], cols: usize, out: &mut [f32]) -> Result<(), Error> {
    check_rows(x.len(), cols, out.len())?;
    if !x.is_empty() {
        log_softmax_d(backend::active()?, x, cols, out);
    }
    Ok(())
}

/// `out = (x - c) * k * w + b` over one row, `w`/`b` optional.
#[inline(always)]
fn affine_row<S: Simd>(
    s: S,
    row: &[f32],
    c: f32,
    k: f32,
    w: Option<&[f32]>,
    b: Option<&[f32]>,
    out: &mut [f32],
) {
    let l = S::LANES;
    let (cv, kv) = (s.splat(c), s.splat(k));
    let cols = row.len();
    let main = cols - cols % l;
    let mut i = 0;
    while i < main {
        let mut y = s.mul(s.sub(s.load(&row[i..]), cv), kv);
        if let Some(w) = w {
            y = s.mul(y, s.load(&w[i..]));
        }
        if let Some(b) = b {
            y = s.add(y, s.load(&b[i..]));
        }
        s.store(&mut out[i..], y);
        i += l;
    }
    if main < cols {
        let mut y = s.mul(s.sub(s.load_tail(&row[main..], 0.0), cv), kv);
        if let Some(w) = w {
            y = s.mul(y, s.load_tail(&w[main..], 0.0));
        }
        if let Some(b) = b {
            y = s.add(y, s.load_tail(&b[main..], 0.0));
        }
        s.store_tail(&mut out[main..], y);
    }
}

#[inline(always)]
fn layer_norm_k<S: Simd>(
    s: S,
    x: &[f32],
    cols: usize,
    w: Option<&[f32]>,
    b: Option<&[f32]>,
    eps: f32,
    out: &mut [f32],
) {
    for (row, orow) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let n = cols as f64;
        let mean = f64::from(block_sum1(s, row, 0.0, &op2!(|s, a, v| s.add(a, v)))) / n;
        let c = mean as f32;
        let cv = s.splat(c);
        // Two-pass variance on the (cached) row; tail lanes filled with c.
        let d1 = f64::from(block_sum1(s, row, c, &CenteredAdd::<S>(cv)));
        let d2 = f64::from(block_sum1(s, row, c, &CenteredSq::<S>(cv)));
        let var = ((d2 - d1 * d1 / n) / n).max(0.0);
        let k = (1.0 / (var + f64::from(eps)).sqrt()) as f32;
        // Fold the mean correction d1/n into the centre.
        let c = (mean + d1 / n) as f32;
        affine_row(s, row, c, k, w, b, orow);
    }
}
multiversion! {
    fn layer_norm_d(
        x: &[f32],
        cols: usize,
        w: Option<&[f32]>,
        b: Option<&[f32]>,
        eps: f32,
        out: &mut [f32],
    ) -> () = layer_norm_k;
}

/// Layer normalisation of each row: `(x - mean) / sqrt(var + eps) * w + b`
/// (biased variance, as PyTorch). `weight`/`bias` have `cols` values each.
pub fn layer_norm_rows(
    x: &[f32],
    cols: usize,
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    eps: f32,
    out: &mut [f32],
) -> Result<(), Error> {
    check_rows(x.len(), cols, out.len())?;
    check_param("weight", weight, cols)?;
    check_param("bias", bias, cols)?;
    if !x.is_empty() {
        layer_norm_d(backend::active()?, x, cols, weight, bias, eps, out);
    }
    Ok(())
}

#[inline(always)]
fn rms_norm_k<S: Simd>(s: S, x: &[f32], cols: usize, w: Option<&[f32]>, eps: f32, out: &mut [f32]) {
    for (row, orow) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let ss = f64::from(block_sum1(s, row, 0.0, &op2!(|s, a, v| s.fma(v, v, a))));
        let k = (1.0 / (ss / cols as f64 + f64::from(eps)).sqrt()) as f32;
        affine_row(s, row, 0.0, k, w, None, orow);
    }
}
multiversion! {
    fn rms_norm_d(x: &[f32], cols: usize, w: Option<&[f32]>, eps: f32, out: &mut [f32]) -> () = rms_norm_k;
}

/// RMS normalisation of each row: `x / sqrt(mean(x²) + eps) * w`.
pub fn rms_norm_rows(
    x: &[f32],
    cols: usize,
    weight: Option<&[f32]>,
    eps: f32,
    out: &mut [f32],
) -> Result<(), Error> {
    check_rows(x.len(), cols, out.len())?;
    check_param("weight", weight, cols)?;
    if !x.is_empty() {
        rms_norm_d(backend::active()?, x, cols, weight, eps, out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::elementwise::test_backends;
    use proptest::prelude::*;

    fn softmax_ref(row: &[f32]) -> Vec<f64> {
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f64> = row
            .iter()
            .map(|&v| (f64::from(v) - f64::from(m)).exp())
            .collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    #[test]
    fn shapes_are_checked() {
        let mut out = [0.0; 6];
        assert!(matches!(
            softmax_rows(&[0.0; 6], 4, &mut out),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            softmax_rows(&[0.0; 6], 0, &mut out),
            Err(Error::Shape(_))
        ));
        assert_eq!(
            softmax_rows(&[0.0; 6], 3, &mut out[..5]),
            Err(Error::LengthMismatch { left: 6, right: 5 })
        );
        assert!(matches!(
            layer_norm_rows(&[0.0; 6], 3, Some(&[1.0; 2]), None, 1e-5, &mut out),
            Err(Error::Shape(_))
        ));
        assert_eq!(softmax_rows(&[], 0, &mut []), Ok(()));
    }

    #[test]
    fn softmax_specials_follow_numpy() {
        let mut out = [0.0; 4];
        softmax_rows(&[1000.0, 1000.0, -1000.0, f32::NEG_INFINITY], 4, &mut out).unwrap();
        assert_eq!(out, [0.5, 0.5, 0.0, 0.0]);
        softmax_rows(&[1.0, f32::NAN, 2.0, 3.0], 4, &mut out).unwrap();
        assert!(out.iter().all(|v| v.is_nan()));
        softmax_rows(&[f32::NEG_INFINITY; 4], 4, &mut out).unwrap();
        assert!(out.iter().all(|v| v.is_nan()));
        log_softmax_rows(&[0.0, 0.0, f32::NEG_INFINITY, 0.0], 4, &mut out).unwrap();
        let l3 = -(3.0f32.ln());
        assert_eq!(out, [l3, l3, f32::NEG_INFINITY, l3]);
    }

    fn matrix() -> impl Strategy<Value = (Vec<f32>, usize)> {
        (1usize..=4, 1usize..=1100).prop_flat_map(|(rows, cols)| {
            (
                prop::collection::vec(-60.0f32..60.0, rows * cols),
                Just(cols),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn softmax_matches_reference((x, cols) in matrix()) {
            for be in test_backends() {
                let mut out = vec![0.0; x.len()];
                softmax_d(be, &x, cols, &mut out);
                let mut lout = vec![0.0; x.len()];
                log_softmax_d(be, &x, cols, &mut lout);
                for (r, (o, lo)) in x.chunks(cols).zip(out.chunks(cols).zip(lout.chunks(cols))) {
                    let want = softmax_ref(r);
                    for ((&g, &lg), &w) in o.iter().zip(lo).zip(&want) {
                        // x - max is rounded to f32 first (as in NumPy):
                        // relative error grows with |ln w|.
                        let tol = w * (1e-6 + 1.2e-7 * w.ln().abs()) + 1e-38;
                        prop_assert!((f64::from(g) - w).abs() <= tol, "{be}: {g} vs {w}");
                        let lw = w.ln();
                        prop_assert!((f64::from(lg) - lw).abs() <= 4e-7 * lw.abs() + 1e-6, "{be}: log {lg} vs {lw}");
                    }
                }
            }
        }

        #[test]
        fn norms_match_reference((x, cols) in matrix(), shift in -100.0f32..100.0, with_affine: bool) {
            let x: Vec<f32> = x.iter().map(|v| v + shift).collect();
            let w: Vec<f32> = (0..cols).map(|i| 0.5 + (i % 7) as f32 * 0.25).collect();
            let b: Vec<f32> = (0..cols).map(|i| (i % 5) as f32 - 2.0).collect();
            let (wo, bo) = if with_affine { (Some(&w[..]), Some(&b[..])) } else { (None, None) };
            for be in test_backends() {
                let mut ln = vec![0.0; x.len()];
                layer_norm_d(be, &x, cols, wo, bo, 1e-5, &mut ln);
                let mut rms = vec![0.0; x.len()];
                rms_norm_d(be, &x, cols, wo, 1e-5, &mut rms);
                for (r, (lr, rr)) in x.chunks(cols).zip(ln.chunks(cols).zip(rms.chunks(cols))) {
                    let n = cols as f64;
                    let mean = r.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
                    let var = r.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
                    let ms = r.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n;
                    for j in 0..cols {
                        let (wj, bj) = if with_affine { (f64::from(w[j]), f64::from(b[j])) } else { (1.0, 0.0) };
                        let want = (f64::from(r[j]) - mean) / (var + 1e-5).sqrt() * wj + bj;
                        // Error dominated by rounding x - mean in f32.
                        let tol = 1e-6 * (f64::from(r[j]).abs() + mean.abs()) / (var + 1e-5).sqrt() * wj + 1e-5;
                        prop_assert!((f64::from(lr[j]) - want).abs() <= tol, "{be}: ln {} vs {want}", lr[j]);
                        let want = f64::from(r[j]) / (ms + 1e-5).sqrt() * wj;
                        prop_assert!((f64::from(rr[j]) - want).abs() <= 1e-6 * want.abs() + 1e-6, "{be}: rms {} vs {want}", rr[j]);
                    }
                }
            }
        }
    }

    #[test]
    fn scalar_backend_is_dispatchable() {
        let mut out = [0.0; 2];
        softmax_d(Backend::Scalar, &[0.0, 0.0], 2, &mut out);
        assert_eq!(out, [0.5, 0.5]);
    }
}
