//! Row-wise kernels on a row-major 2-D buffer: softmax, log-softmax,
//! layer norm and RMS norm (the normalisations of a transformer block).
//!
//! `x` holds `x.len() / cols` rows of `cols` values; a length that is not a
//! multiple of `cols` is an [`Error::Shape`]. Empty input is accepted for any
//! `cols` (zero rows).
//!
//! **Softmax, numerically stable.** Pass 1 finds the row maximum `M`; pass 2
//! sums `e^(x - M)` (every exponent is <= 0, so nothing overflows) in f32
//! chunks of 1024 folded into an f64 total. Rows that fit in cache store the
//! terms in pass 2 and pass 3 scales them by `1/S` in place (one `exp` per
//! element). Rows too long for the cache find `M` and `S` in one read (per-lane
//! online softmax, see `online_max_sumexp`) and then write `e^(x - M) / S`
//! with streaming stores: two reads of DRAM instead of re-reading a copy.
//! Log-softmax writes `(x - M) - ln S`. NaN anywhere in a row makes that row NaN, and a row of
//! `-inf` is NaN, exactly as NumPy's `exp(x - x.max())` expression.

use crate::Error;
use crate::backend;
use crate::elementwise::map1;
use crate::math;
use crate::math64;
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

fn check_param<T>(name: &str, p: Option<&[T]>, cols: usize) -> Result<(), Error> {
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
        math::exp_nonpos_times(s, s.sub(v, self.m), self.inv)
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

/// Rows up to this long (4 MiB, input and output together well inside L3)
/// store `e^(x - M)` and rescale it in place (one `exp` per element); longer
/// rows recompute it in the last pass instead of re-reading a stored copy
/// from DRAM.
const THREE_PASS_MAX: usize = 1 << 20;

/// Terms one f32 accumulator lane sums before they are folded into an f64
/// total (1024 elements per fold on AVX-512, 64 on the scalar backend).
const FOLD_TERMS_PER_LANE: usize = 64;

/// Row maximum over the non-NaN values (-inf if there are none); a NaN is
/// caught later because it poisons the sum.
#[inline(always)]
fn row_max<S: Simd>(s: S, x: &[f32]) -> f32 {
    let l = S::LANES;
    let n = x.len();
    let mut m = [s.splat(f32::NEG_INFINITY); 4];
    let mut i = 0;
    while i + 4 * l <= n {
        for (j, mj) in m.iter_mut().enumerate() {
            *mj = s.max(s.load(&x[i + j * l..]), *mj);
        }
        i += 4 * l;
    }
    while i + l <= n {
        m[0] = s.max(s.load(&x[i..]), m[0]);
        i += l;
    }
    if i < n {
        m[1] = s.max(s.load_tail(&x[i..], f32::NEG_INFINITY), m[1]);
    }
    s.reduce_max(s.max(s.max(m[0], m[1]), s.max(m[2], m[3])))
}

/// `Σ e^(x - m)`, also writing the terms to `out` when given. Partial sums
/// of 1024 terms are folded into an f64 total, so long rows lose no accuracy.
#[inline(always)]
fn sum_exp<S: Simd>(s: S, x: &[f32], m: f32, mut out: Option<&mut [f32]>) -> f64 {
    let l = S::LANES;
    // At most 32 terms per f32 accumulator lane before folding into f64,
    // whatever the lane count: with one lane (scalar) a 1024-term f32 run
    // loses ~3e-5 relative on a row like [12, 0, 0, ...].
    let chunk = FOLD_TERMS_PER_LANE * l;
    let n = x.len();
    let mv = s.splat(m);
    let mut total = 0.0f64;
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let mut acc = [s.splat(0.0); 2];
        let mut i = start;
        while i + 2 * l <= end {
            for (j, a) in acc.iter_mut().enumerate() {
                let e = math::exp_nonpos(s, s.sub(s.load(&x[i + j * l..]), mv));
                if let Some(o) = out.as_deref_mut() {
                    s.store(&mut o[i + j * l..], e);
                }
                *a = s.add(*a, e);
            }
            i += 2 * l;
        }
        while i < end {
            // -inf fill gives e^(-inf) = 0 in the unused lanes.
            let full = i + l <= end;
            let v = if full {
                s.load(&x[i..])
            } else {
                s.load_tail(&x[i..end], f32::NEG_INFINITY)
            };
            let e = math::exp_nonpos(s, s.sub(v, mv));
            if let Some(o) = out.as_deref_mut() {
                if full {
                    s.store(&mut o[i..], e);
                } else {
                    s.store_tail(&mut o[i..end], e);
                }
            }
            acc[0] = s.add(acc[0], e);
            i += l;
        }
        total += f64::from(s.reduce_add(s.add(acc[0], acc[1])));
        start = end;
    }
    total
}

/// `(M, Σ e^(x - M))` in a single read, for rows too long for the cache.
///
/// Each SIMD lane keeps a running maximum `m` and a running `Σ e^(x - m)`,
/// rescaled by `e^(m_old - m_new)` when the maximum grows (the "online
/// softmax" of Milakov & Gimelshein; checked once per four vectors, and
/// almost never true once the maximum has settled). Every 1024 elements the
/// f32 lane sums are folded into per-lane f64 totals, so accuracy does not
/// degrade with length. `m` starts at the most negative finite f32, so a
/// `-inf` input contributes `e^(-inf) = 0` and never forms `-inf - -inf`.
/// The summed terms use [`math::exp_nonpos_for_sum`] (two fewer vector
/// operations per exp; this pass is compute-bound), the rare rescaling
/// factors the full-accuracy exp.
#[inline(always)]
fn online_max_sumexp<S: Simd>(s: S, x: &[f32]) -> (f32, f64) {
    let l = S::LANES;
    let chunk = FOLD_TERMS_PER_LANE * l;
    let n = x.len();
    let mut m = s.splat(f32::MIN);
    let mut lane_m = [f32::MIN; 16];
    let mut lane_tot = [0.0f64; 16];
    let (mut mbuf, mut abuf) = ([0.0f32; 16], [0.0f32; 16]);
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let mut acc = s.splat(0.0);
        let mut i = start;
        while i + 4 * l <= end {
            let v = [
                s.load(&x[i..]),
                s.load(&x[i + l..]),
                s.load(&x[i + 2 * l..]),
                s.load(&x[i + 3 * l..]),
            ];
            let bm = s.max(s.max(v[0], v[1]), s.max(v[2], v[3]));
            if s.mask_any(s.lt(m, bm)) {
                let m_new = s.max(bm, m);
                acc = s.mul(acc, math::exp_nonpos(s, s.sub(m, m_new)));
                m = m_new;
            }
            let e01 = s.add(
                math::exp_nonpos_for_sum(s, s.sub(v[0], m)),
                math::exp_nonpos_for_sum(s, s.sub(v[1], m)),
            );
            let e23 = s.add(
                math::exp_nonpos_for_sum(s, s.sub(v[2], m)),
                math::exp_nonpos_for_sum(s, s.sub(v[3], m)),
            );
            acc = s.add(acc, s.add(e01, e23));
            i += 4 * l;
        }
        while i < end {
            let v = if i + l <= end {
                s.load(&x[i..])
            } else {
                s.load_tail(&x[i..end], f32::NEG_INFINITY)
            };
            let m_new = s.max(v, m);
            acc = s.mul(acc, math::exp_nonpos(s, s.sub(m, m_new)));
            m = m_new;
            acc = s.add(acc, math::exp_nonpos_for_sum(s, s.sub(v, m)));
            i += l;
        }
        // Fold this chunk's lane sums into the f64 lane totals.
        s.store(&mut mbuf, m);
        s.store(&mut abuf, acc);
        for j in 0..l {
            if mbuf[j] != lane_m[j] {
                lane_tot[j] *= (f64::from(lane_m[j]) - f64::from(mbuf[j])).exp();
                lane_m[j] = mbuf[j];
            }
            lane_tot[j] += f64::from(abuf[j]);
        }
        start = end;
    }
    let big_m = lane_m[..l].iter().copied().fold(f32::MIN, f32::max);
    let mut total = 0.0f64;
    for j in 0..l {
        total += lane_tot[j] * (f64::from(lane_m[j]) - f64::from(big_m)).exp();
    }
    (big_m, total)
}

/// `x *= k` in place.
#[inline(always)]
fn scale_in_place<S: Simd>(s: S, x: &mut [f32], k: f32) {
    let l = S::LANES;
    let kv = s.splat(k);
    let n = x.len();
    let mut i = 0;
    while i + l <= n {
        let v = s.mul(s.load(&x[i..]), kv);
        s.store(&mut x[i..], v);
        i += l;
    }
    if i < n {
        let v = s.mul(s.load_tail(&x[i..], 0.0), kv);
        s.store_tail(&mut x[i..], v);
    }
}

#[inline(always)]
fn softmax_k<S: Simd>(s: S, x: &[f32], cols: usize, out: &mut [f32], log: bool) {
    for (row, orow) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let (m, total) = if cols <= THREE_PASS_MAX {
            let m = row_max(s, row);
            if !log {
                // In cache: write e^(x - M) while summing, scale in place.
                let total = sum_exp(s, row, m, Some(&mut *orow));
                scale_in_place(s, orow, (1.0 / total) as f32);
                continue;
            }
            (m, sum_exp(s, row, m, None))
        } else {
            online_max_sumexp(s, row)
        };
        let mv = s.splat(m);
        if log {
            // (x - M) - ln S: no rounding of M + ln S, whose magnitude
            // can dwarf the result.
            let lse = s.splat(total.ln() as f32);
            map1(s, row, orow, &LogSoft::<S> { m: mv, lse });
        } else {
            // Huge rows: recompute e^(x - M) rather than re-read a stored
            // copy, and stream the result past the caches.
            // Total 0 (a row of -inf) or NaN: NaN, as NumPy's 0/0. (A
            // factor of inf would not give it through the fused scaling.)
            let k = (1.0 / total) as f32;
            let inv = s.splat(if k.is_finite() { k } else { f32::NAN });
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

// ---------------------------------------------------------------- f64 rows
//
// NumPy's default dtype. Plain loops over eight independent accumulators (so the
// autovectoriser can keep them in one zmm register or two ymm), instantiated per
// backend; transcendental maps from `math64` (2 ulp exp, 2 ulp log).

const ACC: usize = 8;

/// `Σ f(v)` over a row with eight partial sums, combined pairwise.
#[inline(always)]
fn sum64(row: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0f64; ACC];
    let chunks = row.chunks_exact(ACC);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(rest) {
        *a += f(v);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// The row's maximum; NaN anywhere makes it NaN (NumPy's `max`).
#[inline(always)]
fn max64(row: &[f64]) -> f64 {
    let mut acc = [f64::NEG_INFINITY; ACC];
    let chunks = row.chunks_exact(ACC);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            // Once a lane holds NaN neither test replaces it.
            *a = if v > *a || v.is_nan() { v } else { *a };
        }
    }
    for (a, &v) in acc.iter_mut().zip(rest) {
        *a = if v > *a || v.is_nan() { v } else { *a };
    }
    let mut m = f64::NEG_INFINITY;
    for v in acc {
        if v.is_nan() {
            return v;
        }
        m = m.max(v);
    }
    m
}

#[inline(always)]
fn softmax64_k<S: Simd>(_s: S, x: &[f64], cols: usize, out: &mut [f64], log: bool) {
    for (row, orow) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let m = max64(row);
        if log {
            let lse = m + math64::log(sum64(row, |v| math64::exp(v - m)));
            for (o, &v) in orow.iter_mut().zip(row) {
                *o = v - lse;
            }
        } else {
            for (o, &v) in orow.iter_mut().zip(row) {
                *o = math64::exp(v - m);
            }
            let inv = 1.0 / sum64(orow, |v| v);
            for o in orow.iter_mut() {
                *o *= inv;
            }
        }
    }
}
#[inline(always)]
fn softmax64_rows_k<S: Simd>(s: S, x: &[f64], cols: usize, out: &mut [f64]) {
    softmax64_k(s, x, cols, out, false)
}
#[inline(always)]
fn log_softmax64_rows_k<S: Simd>(s: S, x: &[f64], cols: usize, out: &mut [f64]) {
    softmax64_k(s, x, cols, out, true)
}
multiversion! {
    fn softmax64_d(x: &[f64], cols: usize, out: &mut [f64]) -> () = softmax64_rows_k;
}
multiversion! {
    fn log_softmax64_d(x: &[f64], cols: usize, out: &mut [f64]) -> () = log_softmax64_rows_k;
}

/// f64 softmax of each row of `cols` values.
pub fn softmax_rows_f64(x: &[f64], cols: usize, out: &mut [f64]) -> Result<(), Error> {
    check_rows(x.len(), cols, out.len())?;
    if !x.is_empty() {
        softmax64_d(backend::active()?, x, cols, out);
    }
    Ok(())
}

/// f64 log-softmax of each row: `x - max - ln Σ e^(x - max)`.
pub fn log_softmax_rows_f64(x: &[f64], cols: usize, out: &mut [f64]) -> Result<(), Error> {
    check_rows(x.len(), cols, out.len())?;
    if !x.is_empty() {
        log_softmax64_d(backend::active()?, x, cols, out);
    }
    Ok(())
}

#[inline(always)]
fn affine64(row: &[f64], c: f64, k: f64, w: Option<&[f64]>, b: Option<&[f64]>, out: &mut [f64]) {
    match (w, b) {
        (Some(w), Some(b)) => {
            for (((o, &v), &wv), &bv) in out.iter_mut().zip(row).zip(w).zip(b) {
                *o = ((v - c) * k).mul_add(wv, bv);
            }
        }
        (Some(w), None) => {
            for ((o, &v), &wv) in out.iter_mut().zip(row).zip(w) {
                *o = (v - c) * k * wv;
            }
        }
        (None, Some(b)) => {
            for ((o, &v), &bv) in out.iter_mut().zip(row).zip(b) {
                *o = (v - c) * k + bv;
            }
        }
        (None, None) => {
            for (o, &v) in out.iter_mut().zip(row) {
                *o = (v - c) * k;
            }
        }
    }
}

#[inline(always)]
fn layer_norm64_k<S: Simd>(
    _s: S,
    x: &[f64],
    cols: usize,
    w: Option<&[f64]>,
    b: Option<&[f64]>,
    eps: f64,
    out: &mut [f64],
) {
    let n = cols as f64;
    for (row, orow) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let mean = sum64(row, |v| v) / n;
        // Two passes over the cached row; d1 corrects the mean's rounding.
        let d1 = sum64(row, |v| v - mean);
        let d2 = sum64(row, |v| (v - mean) * (v - mean));
        let var = ((d2 - d1 * d1 / n) / n).max(0.0);
        affine64(row, mean + d1 / n, 1.0 / (var + eps).sqrt(), w, b, orow);
    }
}
multiversion! {
    fn layer_norm64_d(
        x: &[f64],
        cols: usize,
        w: Option<&[f64]>,
        b: Option<&[f64]>,
        eps: f64,
        out: &mut [f64],
    ) -> () = layer_norm64_k;
}

/// f64 layer normalisation of each row (biased variance, as PyTorch).
pub fn layer_norm_rows_f64(
    x: &[f64],
    cols: usize,
    weight: Option<&[f64]>,
    bias: Option<&[f64]>,
    eps: f64,
    out: &mut [f64],
) -> Result<(), Error> {
    check_rows(x.len(), cols, out.len())?;
    check_param("weight", weight, cols)?;
    check_param("bias", bias, cols)?;
    if !x.is_empty() {
        layer_norm64_d(backend::active()?, x, cols, weight, bias, eps, out);
    }
    Ok(())
}

#[inline(always)]
fn rms_norm64_k<S: Simd>(
    _s: S,
    x: &[f64],
    cols: usize,
    w: Option<&[f64]>,
    eps: f64,
    out: &mut [f64],
) {
    for (row, orow) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let k = 1.0 / (sum64(row, |v| v * v) / cols as f64 + eps).sqrt();
        affine64(row, 0.0, k, w, None, orow);
    }
}
multiversion! {
    fn rms_norm64_d(x: &[f64], cols: usize, w: Option<&[f64]>, eps: f64, out: &mut [f64]) -> () = rms_norm64_k;
}

/// f64 RMS normalisation of each row: `x / sqrt(mean(x²) + eps) * w`.
pub fn rms_norm_rows_f64(
    x: &[f64],
    cols: usize,
    weight: Option<&[f64]>,
    eps: f64,
    out: &mut [f64],
) -> Result<(), Error> {
    check_rows(x.len(), cols, out.len())?;
    check_param("weight", weight, cols)?;
    if !x.is_empty() {
        rms_norm64_d(backend::active()?, x, cols, weight, eps, out);
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

    /// One large logit and many equal small ones: every small term is a
    /// fraction of an ulp of the running sum, so long f32 runs drift. Both the
    /// in-cache path and the single-read path of huge rows, on every backend.
    #[test]
    fn many_small_terms_keep_the_sum_accurate() {
        for n in [1000, THREE_PASS_MAX + 1000] {
            let mut row = vec![0.0f32; n];
            row[0] = 12.0;
            let want = softmax_ref(&row);
            for be in test_backends() {
                let mut out = vec![0.0; n];
                softmax_d(be, &row, n, &mut out);
                for (i, (&g, &w)) in out.iter().zip(&want).enumerate().step_by(997) {
                    let rel = (f64::from(g) - w).abs() / w;
                    assert!(rel < 2e-6, "{be} n={n} [{i}]: {g} vs {w} (rel {rel:e})");
                }
            }
        }
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
    fn long_rows_take_the_two_pass_path_and_agree() {
        let n = THREE_PASS_MAX + 17;
        // A masked prefix (-inf) and a maximum far from the start exercise
        // the online rescaling.
        let mut x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 * 0.01).collect();
        x[..100].fill(f32::NEG_INFINITY);
        x[n / 2] = 30.0;
        let want = softmax_ref(&x);
        for be in test_backends() {
            let mut out = vec![0.0; n];
            softmax_d(be, &x, n, &mut out);
            let mut lout = vec![0.0; n];
            log_softmax_d(be, &x, n, &mut lout);
            for i in (0..n).step_by(997).chain([0, 99, 100, n / 2, n - 1]) {
                let w = want[i];
                assert!(
                    (f64::from(out[i]) - w).abs() <= 1e-5 * w + 1e-30,
                    "{be} {i}: {} vs {w}",
                    out[i]
                );
                if w > 0.0 {
                    assert!((f64::from(lout[i]) - w.ln()).abs() <= 1e-5 * w.ln().abs().max(1.0));
                } else {
                    assert_eq!(lout[i], f32::NEG_INFINITY);
                }
            }
        }
    }

    #[inline(always)]
    fn exp_variants_k<S: Simd>(s: S, x: &[f32], out: &mut [f32], scaled: bool, k: f32) {
        let l = S::LANES;
        for (xc, oc) in x.chunks(l).zip(out.chunks_mut(l)) {
            let v = if xc.len() == l {
                s.load(xc)
            } else {
                s.load_tail(xc, 0.0)
            };
            let e = if scaled {
                math::exp_nonpos_times(s, v, s.splat(k))
            } else {
                math::exp_nonpos_for_sum(s, v)
            };
            if oc.len() == l {
                s.store(oc, e);
            } else {
                s.store_tail(oc, e);
            }
        }
    }
    multiversion! {
        fn exp_variants_d(x: &[f32], out: &mut [f32], scaled: bool, k: f32) -> () = exp_variants_k;
    }

    #[test]
    fn softmax_exp_variants_are_accurate() {
        // Every 37th f32 bit pattern in [-104, 0]: the sum-only exp within
        // 4e-7 relative (normal results), the scaled exp within 2.5 ulp of
        // k * e^x (a few subnormal spacings for subnormal results).
        let k = 0.371_f32;
        let xs: Vec<f32> = (0..(104.0f32.to_bits() / 37))
            .map(|i| -f32::from_bits(i * 37))
            .chain([0.0, -0.0, -1e-30, -87.3, -103.9, -104.5, -200.0])
            .collect();
        for be in test_backends() {
            let (mut a, mut b) = (vec![0.0; xs.len()], vec![0.0; xs.len()]);
            exp_variants_d(be, &xs, &mut a, false, k);
            exp_variants_d(be, &xs, &mut b, true, k);
            for ((&x, &ga), &gb) in xs.iter().zip(&a).zip(&b) {
                let w = f64::from(x).exp();
                if w > f64::from(f32::MIN_POSITIVE) {
                    assert!(
                        (f64::from(ga) - w).abs() <= 4e-7 * w,
                        "{be} sum {x}: {ga} vs {w}"
                    );
                } else {
                    assert!(
                        (f64::from(ga) - w).abs() <= 1e-44,
                        "{be} sum {x}: {ga} vs {w}"
                    );
                }
                let wk = w * f64::from(k);
                let tol = (2.5 * f64::from(f32::EPSILON) / 2.0 * wk).max(3e-45);
                assert!(
                    (f64::from(gb) - wk).abs() <= tol,
                    "{be} times {x}: {gb} vs {wk}"
                );
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

#[cfg(test)]
mod tests_f64 {
    use super::*;
    use crate::elementwise::test_backends;
    use proptest::prelude::*;

    fn matrix64() -> impl Strategy<Value = (Vec<f64>, usize)> {
        (1usize..70, 1usize..5).prop_flat_map(|(cols, rows)| {
            (
                proptest::collection::vec(-300.0f64..300.0, cols * rows),
                Just(cols),
            )
        })
    }

    proptest! {
        #[test]
        fn softmax_and_norms_match_libm_references((x, cols) in matrix64()) {
            let n = cols as f64;
            let w: Vec<f64> = (0..cols).map(|i| 0.5 + i as f64 / 7.0).collect();
            let b: Vec<f64> = (0..cols).map(|i| i as f64 - 3.0).collect();
            for be in test_backends() {
                let mut sm = vec![0.0; x.len()];
                softmax64_d(be, &x, cols, &mut sm);
                let mut ls = vec![0.0; x.len()];
                log_softmax64_d(be, &x, cols, &mut ls);
                let mut ln = vec![0.0; x.len()];
                layer_norm64_d(be, &x, cols, Some(&w), Some(&b), 1e-5, &mut ln);
                let mut rms = vec![0.0; x.len()];
                rms_norm64_d(be, &x, cols, Some(&w), 1e-6, &mut rms);
                for (i, r) in x.chunks(cols).enumerate() {
                    let m = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = r.iter().map(|v| (v - m).exp()).collect();
                    let s: f64 = e.iter().sum();
                    let mean = r.iter().sum::<f64>() / n;
                    let var = r.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                    let ms = r.iter().map(|v| v * v).sum::<f64>() / n;
                    for j in 0..cols {
                        let k = i * cols + j;
                        let want = e[j] / s;
                        prop_assert!((sm[k] - want).abs() <= 1e-14 * want + 1e-300, "{} softmax", be);
                        let lwant = (r[j] - m) - s.ln();
                        prop_assert!((ls[k] - lwant).abs() <= 1e-13 * (1.0 + lwant.abs()), "{} log_softmax", be);
                        let lnw = (r[j] - mean) / (var + 1e-5).sqrt() * w[j] + b[j];
                        prop_assert!((ln[k] - lnw).abs() <= 1e-11 * (1.0 + lnw.abs()), "{} layer_norm {} vs {}", be, ln[k], lnw);
                        let rw = r[j] / (ms + 1e-6).sqrt() * w[j];
                        prop_assert!((rms[k] - rw).abs() <= 1e-13 * (1.0 + rw.abs()), "{} rms_norm", be);
                    }
                }
            }
        }
    }

    #[test]
    fn nan_and_infinite_rows_follow_numpy() {
        let x = [
            1.0,
            f64::NAN,
            2.0,
            0.0,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        let mut out = [0.0; 6];
        softmax_rows_f64(&x, 3, &mut out).unwrap();
        assert!(
            out[..3].iter().all(|v| v.is_nan()),
            "a NaN makes its row NaN"
        );
        // The second row [0, -inf, -inf] is [1, 0, 0].
        assert_eq!(&out[3..], &[1.0, 0.0, 0.0]);
        let all_neg_inf = [f64::NEG_INFINITY; 4];
        let mut o = [0.0; 4];
        softmax_rows_f64(&all_neg_inf, 4, &mut o).unwrap();
        assert!(
            o.iter().all(|v| v.is_nan()),
            "exp(-inf - -inf) is NaN, as in NumPy"
        );
        assert!(softmax_rows_f64(&[1.0; 5], 2, &mut [0.0; 5]).is_err());
        assert!(softmax_rows_f64(&[], 0, &mut []).is_ok());
        assert!(
            layer_norm_rows_f64(&[1.0; 4], 2, Some(&[1.0; 3]), None, 1e-5, &mut [0.0; 4]).is_err()
        );
    }
}
