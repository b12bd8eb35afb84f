//! Reductions: sum, dot, norm, min/max and their arg-variants, mean, var/std.
//!
//! **Accuracy of sums.** A naive loop accumulates n rounding errors into one
//! running total (error bound ~ n·ε·Σ|x|). Here the input is cut into blocks of
//! [`BLOCK`] elements; inside a block eight independent vector accumulators
//! (8·LANES partial sums, which also hides the add/FMA latency) each see only
//! `BLOCK / (8·LANES)` elements, are combined pairwise, and every block total
//! is added into an **f64** running sum. The f32 error is therefore bounded by
//! about `(BLOCK/(8·LANES) + 7 + log2 LANES)·ε` relative to Σ|x| of one block,
//! independent of n, and the final rounding to f32 is the last step. Blocks
//! start at the first 64-byte boundary of the input (aligned vector loads),
//! so the last bits of a result can depend on the array's address. `dot`
//! and `var` use the same scheme. `norm` squares and accumulates in f64
//! lanes, so it neither overflows nor underflows for any finite f32 input.
//!
//! **Special values (as NumPy).** NaN propagates through sum/dot/norm/mean/var
//! and through min/max; argmin/argmax return the index of the first NaN if
//! there is one, else the first index of the extreme. Empty input: sum, dot
//! and norm are 0, mean and var are NaN (NumPy returns NaN with a warning),
//! and min/max/argmin/argmax are [`Error::Empty`] (NumPy raises).

use crate::Error;
use crate::backend;
use crate::simd::{Op2, Simd, multiversion, op2};

/// Elements per f32 partial sum before it is folded into the f64 total.
pub const BLOCK: usize = 4096;

#[inline(always)]
fn tree<S: Simd>(s: S, a: [S::V; 8]) -> S::V {
    s.add(
        s.add(s.add(a[0], a[1]), s.add(a[2], a[3])),
        s.add(s.add(a[4], a[5]), s.add(a[6], a[7])),
    )
}

/// One block: 8 accumulators per lane, `acc = f(acc, x)`.
#[inline(always)]
pub(crate) fn block_sum1<S: Simd>(s: S, x: &[f32], fill: f32, f: &impl Op2<S>) -> f32 {
    let l = S::LANES;
    let mut acc = [s.splat(0.0); 8];
    let mut chunks = x.chunks_exact(8 * l);
    for c in &mut chunks {
        for (j, a) in acc.iter_mut().enumerate() {
            *a = f.apply(s, *a, s.load(&c[j * l..]));
        }
    }
    let mut rest = chunks.remainder().chunks_exact(l);
    for c in &mut rest {
        acc[0] = f.apply(s, acc[0], s.load(c));
    }
    let t = rest.remainder();
    if !t.is_empty() {
        acc[1] = f.apply(s, acc[1], s.load_tail(t, fill));
    }
    s.reduce_add(tree(s, acc))
}

/// One block of a dot product: 8 FMA accumulators per lane.
#[inline(always)]
fn block_dot<S: Simd>(s: S, x: &[f32], y: &[f32]) -> f32 {
    let l = S::LANES;
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let mut acc = [s.splat(0.0); 8];
    let mut i = 0;
    while i + 8 * l <= n {
        for (j, a) in acc.iter_mut().enumerate() {
            let k = i + j * l;
            *a = s.fma(s.load(&x[k..]), s.load(&y[k..]), *a);
        }
        i += 8 * l;
    }
    while i + l <= n {
        acc[0] = s.fma(s.load(&x[i..]), s.load(&y[i..]), acc[0]);
        i += l;
    }
    if i < n {
        acc[1] = s.fma(s.load_tail(&x[i..], 0.0), s.load_tail(&y[i..], 0.0), acc[1]);
    }
    s.reduce_add(tree(s, acc))
}

/// Two blocks of [`BLOCK`] elements at once, `a` and `b` (equal lengths, whole
/// chunks), each with its own 8 accumulators exactly as [`block_sum1`] keeps them:
/// the same two partial sums, read as two interleaved streams.
#[inline(always)]
fn block_sum1_pair<S: Simd>(s: S, a: &[f32], b: &[f32], f: &impl Op2<S>) -> (f32, f32) {
    let l = S::LANES;
    let mut acc_a = [s.splat(0.0); 8];
    let mut acc_b = [s.splat(0.0); 8];
    for (ca, cb) in a.chunks_exact(8 * l).zip(b.chunks_exact(8 * l)) {
        prefetch_ahead(ca);
        prefetch_ahead(cb);
        for (j, acc) in acc_a.iter_mut().enumerate() {
            *acc = f.apply(s, *acc, s.load(&ca[j * l..]));
        }
        for (j, acc) in acc_b.iter_mut().enumerate() {
            *acc = f.apply(s, *acc, s.load(&cb[j * l..]));
        }
    }
    (s.reduce_add(tree(s, acc_a)), s.reduce_add(tree(s, acc_b)))
}

/// Prefetch, [`PREFETCH_BYTES`] ahead, every cache line of `chunk`'s span.
#[inline(always)]
pub(crate) fn prefetch_ahead(chunk: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = chunk.as_ptr().cast::<u8>();
        let mut off = PREFETCH_BYTES;
        while off < PREFETCH_BYTES + std::mem::size_of_val(chunk) {
            // SAFETY: prefetch is a hint: it never faults, whatever the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off).cast()) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = chunk;
}

/// How far ahead of each stream [`block_sum1_pair`] prefetches. 2026-12-03 Xeon, 128M
/// f32 on huge pages, against NumPy (sum / norm, CPU-time ratio, interleaved): no
/// prefetch 1.04x / 0.97x, 1 KiB 1.11x / 1.03x, 2 KiB 1.10x / 0.99x, 4 KiB 0.94x / 0.93x.
const PREFETCH_BYTES: usize = 1024;

/// Arrays at least this long (elements) are read as two streams half the array apart
/// instead of one: past L2, where one core's reads come from L3 or DRAM and the
/// hardware prefetchers keep more lines in flight for two sequential streams than for
/// one (2026-12-03 Xeon, 512 MiB on huge pages: 16.4 GB/s one stream, 18.5 two, 18.0
/// four; `machine.rs`'s probe measures the same, `read_by_streams`). The blocks, and so
/// the accuracy bound, are the same either way; only the order they are added in
/// changes.
fn two_streams_min() -> usize {
    usize::try_from(crate::machine::caches().l2_bytes / 4)
        .unwrap_or(usize::MAX)
        .max(1 << 16)
}

/// `sum over blocks of f(block)` into f64, for `x` already aligned: one stream of
/// [`BLOCK`]-element blocks, or past [`two_streams_min`] two streams half apart.
#[inline(always)]
fn fold_blocks<S: Simd>(s: S, x: &[f32], f: &impl Op2<S>) -> f64 {
    let mut total = 0.0f64;
    let pairs = if x.len() >= two_streams_min() {
        x.len() / (2 * BLOCK)
    } else {
        0
    };
    let (front, back) = x.split_at(pairs * BLOCK);
    let (back, rest) = back.split_at(pairs * BLOCK);
    for (a, b) in front.chunks_exact(BLOCK).zip(back.chunks_exact(BLOCK)) {
        let (ta, tb) = block_sum1_pair(s, a, b, f);
        total += f64::from(ta);
        total += f64::from(tb);
    }
    for b in rest.chunks(BLOCK) {
        total += f64::from(block_sum1(s, b, 0.0, f));
    }
    total
}

#[inline(always)]
pub(crate) fn sum_k<S: Simd>(s: S, x: &[f32]) -> f64 {
    let add = op2!(|s, a, v| s.add(a, v));
    let (h, x) = x.split_at(align_head(x));
    f64::from(block_sum1(s, h, 0.0, &add)) + fold_blocks(s, x, &add)
}
multiversion! {
    pub(crate) fn sum_d(x: &[f32]) -> f64 = sum_k;
}

/// Leading elements to process apart so that the rest of `x` starts on a
/// 64-byte boundary: a 64-byte vector load that straddles two cache lines
/// costs two (NumPy's heap arrays are usually only 16-byte aligned).
#[inline(always)]
pub(crate) fn align_head(x: &[f32]) -> usize {
    let addr = x.as_ptr() as usize;
    if x.len() < 256 || !addr.is_multiple_of(4) {
        return 0;
    }
    ((64 - addr % 64) % 64) / 4
}

#[inline(always)]
fn dot_k<S: Simd>(s: S, x: &[f32], y: &[f32]) -> f64 {
    let head = align_head(x).min(y.len());
    let mut total = 0.0;
    if head > 0 {
        total += f64::from(block_dot(s, &x[..head], &y[..head]));
    }
    let mut i = head;
    while i < x.len() {
        let e = (i + BLOCK).min(x.len());
        total += f64::from(block_dot(s, &x[i..e], &y[i..e]));
        i = e;
    }
    total
}
multiversion! {
    pub(crate) fn dot_d(x: &[f32], y: &[f32]) -> f64 = dot_k;
}

#[inline(always)]
fn sumsq_k<S: Simd>(s: S, x: &[f32]) -> f64 {
    let sq = op2!(|s, a, v| s.fma(v, v, a));
    let (h, x) = x.split_at(align_head(x));
    f64::from(block_sum1(s, h, 0.0, &sq)) + fold_blocks(s, x, &sq)
}
multiversion! {
    fn sumsq_d(x: &[f32]) -> f64 = sumsq_k;
}

/// `acc + (v - c)`.
pub(crate) struct CenteredAdd<S: Simd>(pub(crate) S::V);

impl<S: Simd> Op2<S> for CenteredAdd<S> {
    #[inline(always)]
    fn apply(&self, s: S, acc: S::V, v: S::V) -> S::V {
        s.add(acc, s.sub(v, self.0))
    }
}

/// `acc + (v - c)²`.
pub(crate) struct CenteredSq<S: Simd>(pub(crate) S::V);

impl<S: Simd> Op2<S> for CenteredSq<S> {
    #[inline(always)]
    fn apply(&self, s: S, acc: S::V, v: S::V) -> S::V {
        let d = s.sub(v, self.0);
        s.fma(d, d, acc)
    }
}

#[inline(always)]
fn sumsq64_k<S: Simd>(_s: S, x: &[f32]) -> f64 {
    let mut acc = [0.0f64; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            let v = f64::from(v);
            *a += v * v;
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        let v = f64::from(v);
        *a += v * v;
    }
    pairwise64(acc)
}
multiversion! {
    pub(crate) fn sumsq64_d(x: &[f32]) -> f64 = sumsq64_k;
}

#[inline(always)]
fn pairwise64<const N: usize>(mut v: [f64; N]) -> f64 {
    let mut w = N;
    while w > 1 {
        w /= 2;
        for i in 0..w {
            v[i] += v[i + w];
        }
    }
    v[0]
}

/// `(min, max, saw_nan)` over non-NaN values; `x` must be non-empty.
#[inline(always)]
fn minmax_k<S: Simd>(s: S, x: &[f32]) -> (f32, f32, bool) {
    let l = S::LANES;
    let first = x[0];
    let (mut lo, mut hi) = (s.splat(first), s.splat(first));
    let (mut lo2, mut hi2) = (lo, hi);
    let mut nan = s.is_nan(lo);
    let mut chunks = x.chunks_exact(2 * l);
    for c in &mut chunks {
        let (a, b) = (s.load(c), s.load(&c[l..]));
        // max(v, acc): a NaN v yields acc, so NaN never sticks; it is
        // tracked separately in the mask.
        lo = s.min(a, lo);
        hi = s.max(a, hi);
        lo2 = s.min(b, lo2);
        hi2 = s.max(b, hi2);
        nan = s.mask_or(nan, s.mask_or(s.is_nan(a), s.is_nan(b)));
    }
    let mut rest = chunks.remainder().chunks_exact(l);
    for c in &mut rest {
        let a = s.load(c);
        lo = s.min(a, lo);
        hi = s.max(a, hi);
        nan = s.mask_or(nan, s.is_nan(a));
    }
    let t = rest.remainder();
    if !t.is_empty() {
        let a = s.load_tail(t, first);
        lo = s.min(a, lo);
        hi = s.max(a, hi);
        nan = s.mask_or(nan, s.is_nan(a));
    }
    let lo = s.reduce_min(s.min(lo2, lo));
    let hi = s.reduce_max(s.max(hi2, hi));
    (lo, hi, s.mask_any(nan))
}
multiversion! {
    fn minmax_d(x: &[f32]) -> (f32, f32, bool) = minmax_k;
}

/// Sum of `(x - c)` and of `(x - c)^2` (for the corrected two-pass variance).
#[inline(always)]
fn centered_k<S: Simd>(s: S, x: &[f32], c: f32) -> (f64, f64) {
    let (add, sq) = (CenteredAdd::<S>(s.splat(c)), CenteredSq::<S>(s.splat(c)));
    let mut d1 = 0.0f64;
    let mut d2 = 0.0f64;
    for b in x.chunks(BLOCK) {
        // Tail lanes are filled with c, so they contribute d = 0.
        d1 += f64::from(block_sum1(s, b, c, &add));
        d2 += f64::from(block_sum1(s, b, c, &sq));
    }
    (d1, d2)
}
multiversion! {
    fn centered_d(x: &[f32], c: f32) -> (f64, f64) = centered_k;
}

/// First index in `x` where `pred` holds, scanning in vectorisable chunks.
fn position(x: &[f32], pred: impl Fn(f32) -> bool) -> Option<usize> {
    const CHUNK: usize = 256;
    for (ci, c) in x.chunks(CHUNK).enumerate() {
        if c.iter().fold(false, |acc, &v| acc | pred(v)) {
            return c.iter().position(|&v| pred(v)).map(|i| ci * CHUNK + i);
        }
    }
    None
}

fn check_len(a: usize, b: usize) -> Result<(), Error> {
    if a == b {
        Ok(())
    } else {
        Err(Error::LengthMismatch { left: a, right: b })
    }
}

/// Sum of `x` (0 for empty), accurate as described in the module docs.
pub fn sum(x: &[f32]) -> Result<f32, Error> {
    Ok(sum_d(backend::active()?, x) as f32)
}

/// Dot product of two equal-length slices (0 for empty, like `np.dot`).
pub fn dot(a: &[f32], b: &[f32]) -> Result<f32, Error> {
    check_len(a.len(), b.len())?;
    Ok(dot_d(backend::active()?, a, b) as f32)
}

/// Euclidean norm `sqrt(Σ x²)` (0 for empty), overflow- and underflow-safe.
///
/// Fast path: f32 FMA blocks into f64, like [`sum`]. If a square overflowed
/// (inf) or the total is so small that squares may have lost bits to
/// underflow, it is recomputed with squares taken in f64, where neither can
/// happen for any f32 input.
pub fn norm(x: &[f32]) -> Result<f32, Error> {
    let be = backend::active()?;
    // One load per FMA, one stream in L2 and two past it (`fold_blocks`). (It used to
    // read x twice through the dot kernel past 2^18 elements, measured faster on Zen 4
    // than the one-stream sum of squares; on the 2026-12-03 Xeon that was 0.81x NumPy at
    // 128M elements.)
    let ss = sumsq_d(be, x);
    if ss.is_nan() || (ss.is_finite() && (ss == 0.0 || ss > 1e-30)) {
        // 0 only if every square is exactly 0 *and* nothing underflowed:
        // a nonzero input with a zero total is caught by the check below.
        if ss != 0.0 || x.iter().all(|&v| v == 0.0) {
            return Ok(ss.sqrt() as f32);
        }
    }
    Ok(sumsq64_d(be, x).sqrt() as f32)
}

/// Smallest element; NaN if any element is NaN (like `np.min`).
pub fn min(x: &[f32]) -> Result<f32, Error> {
    if x.is_empty() {
        return Err(Error::Empty { op: "minimum" });
    }
    let (lo, _, nan) = minmax_d(backend::active()?, x);
    Ok(if nan { f32::NAN } else { lo })
}

/// Largest element; NaN if any element is NaN (like `np.max`).
pub fn max(x: &[f32]) -> Result<f32, Error> {
    if x.is_empty() {
        return Err(Error::Empty { op: "maximum" });
    }
    let (_, hi, nan) = minmax_d(backend::active()?, x);
    Ok(if nan { f32::NAN } else { hi })
}

/// Index of the first minimum, or of the first NaN (like `np.argmin`).
pub fn argmin(x: &[f32]) -> Result<usize, Error> {
    if x.is_empty() {
        return Err(Error::Empty { op: "argmin" });
    }
    let (lo, _, nan) = minmax_d(backend::active()?, x);
    let found = if nan {
        position(x, f32::is_nan)
    } else {
        position(x, |v| v == lo)
    };
    Ok(found.unwrap_or(0))
}

/// Index of the first maximum, or of the first NaN (like `np.argmax`).
pub fn argmax(x: &[f32]) -> Result<usize, Error> {
    if x.is_empty() {
        return Err(Error::Empty { op: "argmax" });
    }
    let (_, hi, nan) = minmax_d(backend::active()?, x);
    let found = if nan {
        position(x, f32::is_nan)
    } else {
        position(x, |v| v == hi)
    };
    Ok(found.unwrap_or(0))
}

/// Arithmetic mean (NaN for empty input, like `np.mean`).
pub fn mean(x: &[f32]) -> Result<f32, Error> {
    Ok((sum_d(backend::active()?, x) / x.len() as f64) as f32)
}

/// Variance `Σ(x - mean)² / (n - ddof)`, by the corrected two-pass algorithm
/// (Chan, Golub & LeVeque): the deviations from the mean are summed as well and
/// their square subtracted, cancelling the rounding of the mean. As NumPy: the
/// divisor is `max(n - ddof, 0)`, so `ddof >= n` gives inf or NaN.
pub fn var(x: &[f32], ddof: usize) -> Result<f32, Error> {
    let be = backend::active()?;
    let n = x.len() as f64;
    let m = sum_d(be, x) / n;
    if !m.is_finite() {
        // NaN/inf anywhere (or empty): the variance is NaN, as in NumPy.
        return Ok(f32::NAN);
    }
    let (d1, d2) = centered_d(be, x, m as f32);
    let ss = (d2 - d1 * d1 / n).max(0.0);
    let denom = (x.len().saturating_sub(ddof)) as f64;
    Ok((ss / denom) as f32)
}

/// Standard deviation, `sqrt(var(x, ddof))`.
pub fn std(x: &[f32], ddof: usize) -> Result<f32, Error> {
    Ok(var(x, ddof)?.sqrt())
}

// f64 reductions: lane arrays, autovectorised inside the backend functions.

#[inline(always)]
fn sum64_k<S: Simd>(_s: S, x: &[f64]) -> f64 {
    let mut total = 0.0;
    let mut comp = 0.0;
    for b in x.chunks(BLOCK) {
        let mut acc = [0.0f64; 16];
        let mut chunks = b.chunks_exact(16);
        for c in &mut chunks {
            for (a, &v) in acc.iter_mut().zip(c) {
                *a += v;
            }
        }
        for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
            *a += v;
        }
        // Neumaier-compensated combination of the block totals.
        let part = pairwise64(acc);
        let t = total + part;
        comp += if f64::abs(total) >= f64::abs(part) {
            (total - t) + part
        } else {
            (part - t) + total
        };
        total = t;
    }
    if comp.is_finite() {
        total + comp
    } else {
        total
    }
}
multiversion! {
    fn sum64_d(x: &[f64]) -> f64 = sum64_k;
}

#[inline(always)]
fn dot64_k<S: Simd>(_s: S, x: &[f64], y: &[f64]) -> f64 {
    let mut total = 0.0;
    for (bx, by) in x.chunks(BLOCK).zip(y.chunks(BLOCK)) {
        let mut acc = [0.0f64; 16];
        let mut cx = bx.chunks_exact(16);
        let mut cy = by.chunks_exact(16);
        for (a16, b16) in (&mut cx).zip(&mut cy) {
            for ((a, &u), &v) in acc.iter_mut().zip(a16).zip(b16) {
                *a += u * v;
            }
        }
        for ((a, &u), &v) in acc.iter_mut().zip(cx.remainder()).zip(cy.remainder()) {
            *a += u * v;
        }
        total += pairwise64(acc);
    }
    total
}
multiversion! {
    fn dot64_d(x: &[f64], y: &[f64]) -> f64 = dot64_k;
}

#[inline(always)]
fn minmax64_k<S: Simd>(_s: S, x: &[f64]) -> (f64, f64, bool) {
    let mut lo = [x[0]; 8];
    let mut hi = [x[0]; 8];
    let mut nan = [false; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            lo[i] = if c[i] < lo[i] { c[i] } else { lo[i] };
            hi[i] = if c[i] > hi[i] { c[i] } else { hi[i] };
            nan[i] |= c[i].is_nan();
        }
    }
    for &v in chunks.remainder() {
        lo[0] = if v < lo[0] { v } else { lo[0] };
        hi[0] = if v > hi[0] { v } else { hi[0] };
        nan[0] |= v.is_nan();
    }
    let l = lo
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .fold(f64::INFINITY, f64::min);
    let h = hi
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .fold(f64::NEG_INFINITY, f64::max);
    (l, h, nan.iter().any(|&b| b))
}
multiversion! {
    fn minmax64_d(x: &[f64]) -> (f64, f64, bool) = minmax64_k;
}

/// f64 sum: blockwise lane sums with a compensated (Neumaier) total.
pub fn sum_f64(x: &[f64]) -> Result<f64, Error> {
    Ok(sum64_d(backend::active()?, x))
}

/// f64 dot product.
pub fn dot_f64(a: &[f64], b: &[f64]) -> Result<f64, Error> {
    check_len(a.len(), b.len())?;
    Ok(dot64_d(backend::active()?, a, b))
}

/// f64 Euclidean norm, scaled by the largest magnitude so that it neither
/// overflows nor underflows.
pub fn norm_f64(x: &[f64]) -> Result<f64, Error> {
    let be = backend::active()?;
    if x.is_empty() {
        return Ok(0.0);
    }
    let (lo, hi, nan) = minmax64_d(be, x);
    if nan {
        return Ok(f64::NAN);
    }
    let scale = lo.abs().max(hi.abs());
    if scale == 0.0 || scale.is_infinite() {
        return Ok(scale);
    }
    if (1e-150..1e150).contains(&scale) {
        return Ok(dot64_d(be, x, x).sqrt());
    }
    // Divide rather than multiply by 1/scale: for a subnormal scale the
    // reciprocal overflows to inf. |v / scale| <= 1, so nothing overflows.
    let scaled: f64 = x.iter().map(|v| (v / scale) * (v / scale)).sum();
    Ok(scale * scaled.sqrt())
}

/// f64 minimum (NaN if any NaN).
pub fn min_f64(x: &[f64]) -> Result<f64, Error> {
    if x.is_empty() {
        return Err(Error::Empty { op: "minimum" });
    }
    let (lo, _, nan) = minmax64_d(backend::active()?, x);
    Ok(if nan { f64::NAN } else { lo })
}

/// f64 maximum (NaN if any NaN).
pub fn max_f64(x: &[f64]) -> Result<f64, Error> {
    if x.is_empty() {
        return Err(Error::Empty { op: "maximum" });
    }
    let (_, hi, nan) = minmax64_d(backend::active()?, x);
    Ok(if nan { f64::NAN } else { hi })
}

/// f64 index of the first minimum or first NaN.
pub fn argmin_f64(x: &[f64]) -> Result<usize, Error> {
    let m = min_f64(x)?;
    Ok(x.iter()
        .position(|&v| if m.is_nan() { v.is_nan() } else { v == m })
        .unwrap_or(0))
}

/// f64 index of the first maximum or first NaN.
pub fn argmax_f64(x: &[f64]) -> Result<usize, Error> {
    let m = max_f64(x)?;
    Ok(x.iter()
        .position(|&v| if m.is_nan() { v.is_nan() } else { v == m })
        .unwrap_or(0))
}

/// f64 mean (NaN for empty).
pub fn mean_f64(x: &[f64]) -> Result<f64, Error> {
    Ok(sum_f64(x)? / x.len() as f64)
}

/// f64 variance (corrected two-pass, divisor `max(n - ddof, 0)`).
pub fn var_f64(x: &[f64], ddof: usize) -> Result<f64, Error> {
    let n = x.len() as f64;
    let m = sum_f64(x)? / n;
    if !m.is_finite() {
        return Ok(f64::NAN);
    }
    let (mut d1, mut d2) = (0.0, 0.0);
    for &v in x {
        let d = v - m;
        d1 += d;
        d2 += d * d;
    }
    let ss = (d2 - d1 * d1 / n).max(0.0);
    Ok(ss / (x.len().saturating_sub(ddof)) as f64)
}

/// f64 standard deviation.
pub fn std_f64(x: &[f64], ddof: usize) -> Result<f64, Error> {
    Ok(var_f64(x, ddof)?.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::elementwise::test_backends;
    use proptest::prelude::*;

    fn sum_ref(x: &[f32]) -> f64 {
        x.iter().map(|&v| f64::from(v)).sum()
    }

    #[test]
    fn empty_inputs_follow_numpy() {
        assert_eq!(sum(&[]), Ok(0.0));
        assert_eq!(dot(&[], &[]), Ok(0.0));
        assert_eq!(norm(&[]), Ok(0.0));
        assert!(mean(&[]).unwrap().is_nan());
        assert!(var(&[], 0).unwrap().is_nan());
        assert_eq!(min(&[]), Err(Error::Empty { op: "minimum" }));
        assert_eq!(max(&[]), Err(Error::Empty { op: "maximum" }));
        assert_eq!(argmin(&[]), Err(Error::Empty { op: "argmin" }));
        assert_eq!(argmax(&[]), Err(Error::Empty { op: "argmax" }));
        assert_eq!(min_f64(&[]), Err(Error::Empty { op: "minimum" }));
        assert_eq!(sum_f64(&[]), Ok(0.0));
    }

    #[test]
    fn mismatch_is_an_error() {
        assert_eq!(
            dot(&[1.0], &[]),
            Err(Error::LengthMismatch { left: 1, right: 0 })
        );
        assert_eq!(
            dot_f64(&[1.0], &[]),
            Err(Error::LengthMismatch { left: 1, right: 0 })
        );
    }

    #[test]
    fn nan_semantics_follow_numpy() {
        let x = [1.0, f32::NAN, -3.0, f32::NAN, 7.0];
        assert!(min(&x).unwrap().is_nan());
        assert!(max(&x).unwrap().is_nan());
        assert_eq!(argmax(&x), Ok(1));
        assert_eq!(argmin(&x), Ok(1));
        assert!(sum(&x).unwrap().is_nan());
        let y = [2.0, 5.0, -1.0, 5.0, -1.0];
        assert_eq!(argmax(&y), Ok(1));
        assert_eq!(argmin(&y), Ok(2));
        assert_eq!(var(&[1.0], 1).map(f32::is_nan), Ok(true));
        assert_eq!(var(&[1.0, 2.0], 2), Ok(f32::INFINITY));
        assert!(min_f64(&[1.0, f64::NAN]).unwrap().is_nan());
        assert_eq!(argmax_f64(&[1.0, f64::NAN, f64::NAN]), Ok(1));
    }

    #[test]
    fn sum_is_more_accurate_than_a_naive_loop() {
        // 1e7 copies of 0.1: a naive f32 loop stalls at 2^21 = 2097152.
        let x = vec![0.1f32; 10_000_000];
        let want = sum_ref(&x);
        let naive: f32 = x.iter().sum();
        for be in test_backends() {
            let lanes = match be {
                Backend::Scalar => 1,
                Backend::Neon => 4,
                Backend::Avx2 => 8,
                Backend::Avx512 => 16,
            };
            // The documented bound: (BLOCK / (8 lanes) + 7 + log2 lanes) eps.
            let bound = (BLOCK / (8 * lanes) + 11) as f64 * f64::from(f32::EPSILON);
            let got = sum_d(be, &x);
            assert!((got - want).abs() / want < bound, "{be}: {got} vs {want}");
        }
        assert!((f64::from(naive) - want).abs() / want > 1e-2);
    }

    /// The two-stream order (past L2) adds the same blocks as one stream: every length
    /// around the switch, odd tails and the pairing's leftovers agree with f64 within the
    /// documented bound (per block `(BLOCK / (8 lanes) + 11) eps` of its absolute sum;
    /// the test allows the scalar backend's 1/64), and NaN and inf anywhere propagate as
    /// in NumPy.
    #[test]
    fn two_streams_add_the_same_blocks() {
        let m = two_streams_min();
        for be in test_backends() {
            for n in [m - 1, m, m + 1, m + BLOCK + 37, 2 * m + 3 * BLOCK - 5] {
                let x: Vec<f32> = (0..n)
                    .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 0.5)
                    .collect();
                let want = sum_ref(&x);
                let abs: f64 = x.iter().map(|&v| f64::from(v).abs()).sum();
                let got = sum_d(be, &x);
                assert!(
                    (got - want).abs() <= 1e-4 * abs / 64.0 + 1e-9,
                    "{be} n={n}: {got} vs {want}"
                );
                let ss: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
                let nrm = f64::from(norm(&x).unwrap());
                assert!(
                    (nrm - ss.sqrt()).abs() <= 1e-6 * ss.sqrt(),
                    "{be} n={n}: norm {nrm}"
                );
                for (at, v) in [(0, f32::NAN), (n / 2 + 3, f32::NAN), (n - 1, f32::INFINITY)] {
                    let mut y = x.clone();
                    y[at] = v;
                    let got = sum_d(be, &y);
                    assert!(
                        if v.is_nan() {
                            got.is_nan()
                        } else {
                            got == f64::INFINITY
                        },
                        "{be} n={n} at {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn norm_does_not_overflow_or_underflow() {
        assert_eq!(norm(&[3e30, 4e30]), Ok(5e30));
        assert_eq!(norm(&[3e-30, 4e-30]), Ok(5e-30));
        assert_eq!(norm(&[0.0, -0.0]), Ok(0.0));
        assert_eq!(norm(&[1e-40, 0.0]), Ok(1e-40));
        assert_eq!(norm(&[f32::INFINITY, 1.0]), Ok(f32::INFINITY));
        assert!(norm(&[f32::NAN, f32::INFINITY]).unwrap().is_nan());
        let big = vec![1e20f32; 4099];
        let want = (4099f64.sqrt() * 1e20) as f32;
        assert!((norm(&big).unwrap() - want).abs() <= want * 1e-6);
        assert_eq!(norm_f64(&[3e300, 4e300]), Ok(5e300));
        assert_eq!(norm_f64(&[3e-300, 4e-300]), Ok(5e-300));
        // Subnormal largest magnitude: 1/scale would overflow to inf.
        assert_eq!(norm_f64(&[2.225_073_86e-309]), Ok(2.225_073_86e-309));
        assert_eq!(norm_f64(&[f64::from_bits(1), 0.0]), Ok(f64::from_bits(1)));
    }

    #[test]
    fn var_is_stable_for_a_large_offset() {
        // Values 1e4 + {0, 1, 2, 3}: textbook E[x²]-E[x]² loses everything.
        let x: Vec<f32> = (0..4000).map(|i| 1e4 + (i % 4) as f32).collect();
        let v = var(&x, 0).unwrap();
        assert!((v - 1.25).abs() < 1e-5, "{v}");
        assert!((std(&x, 1).unwrap() - (1.25f32 * 4000.0 / 3999.0).sqrt()).abs() < 1e-5);
    }

    fn values() -> impl Strategy<Value = (Vec<f32>, Vec<f32>, usize)> {
        (0usize..=4099, 0usize..3).prop_flat_map(|(n, off)| {
            (
                prop::collection::vec(-1e3f32..1e3, n + off),
                prop::collection::vec(-1e3f32..1e3, n + off),
                Just(off),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn reductions_match_f64_reference((a, b, off) in values()) {
            let (a, b) = (&a[off..], &b[off..]);
            let abs: f64 = a.iter().map(|&v| f64::from(v).abs()).sum();
            let dabs: f64 = a.iter().zip(b).map(|(&u, &v)| f64::from(u * v).abs()).sum();
            let want_dot: f64 = a.iter().zip(b).map(|(&u, &v)| f64::from(u) * f64::from(v)).sum();
            let want_sq: f64 = a.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
            for be in test_backends() {
                let s = sum_d(be, a);
                prop_assert!((s - sum_ref(a)).abs() <= 1e-5 * abs + 1e-6, "{be}: sum {s}");
                let d = dot_d(be, a, b);
                prop_assert!((d - want_dot).abs() <= 1e-5 * dabs + 1e-6, "{be}: dot {d}");
                let q = sumsq64_d(be, a);
                prop_assert!((q - want_sq).abs() <= 1e-12 * want_sq + 1e-12, "{be}: sumsq");
                if !a.is_empty() {
                    let (lo, hi, nan) = minmax_d(be, a);
                    let rlo = a.iter().copied().fold(f32::INFINITY, f32::min);
                    let rhi = a.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    prop_assert_eq!((lo, hi, nan), (rlo, rhi, false), "{}", be);
                }
            }
        }

        #[test]
        fn nan_anywhere_is_found_on_every_backend(n in 1usize..=300, pos in any::<prop::sample::Index>(), off in 0usize..3) {
            let mut x: Vec<f32> = (0..n + off).map(|i| (i as f32 * 0.7).sin()).collect();
            let p = off + pos.index(n);
            x[p] = f32::NAN;
            for be in test_backends() {
                let (_, _, nan) = minmax_d(be, &x[off..]);
                prop_assert!(nan, "{be}: NaN at {p} missed");
                prop_assert!(sum_d(be, &x[off..]).is_nan());
            }
            prop_assert_eq!(argmax(&x[off..]), Ok(p - off));
        }

        #[test]
        fn var_matches_reference(v in prop::collection::vec(-1e3f32..1e3, 2..600), shift in -1e4f32..1e4) {
            let x: Vec<f32> = v.iter().map(|a| a + shift).collect();
            let n = x.len() as f64;
            let m = sum_ref(&x) / n;
            let want = x.iter().map(|&a| (f64::from(a) - m).powi(2)).sum::<f64>() / n;
            for be in test_backends() {
                let mm = sum_d(be, &x) / n;
                let (d1, d2) = centered_d(be, &x, mm as f32);
                let got = (d2 - d1 * d1 / n) / n;
                prop_assert!((got - want).abs() <= 1e-5 * want + 1e-3, "{be}: {got} vs {want}");
            }
        }

        #[test]
        fn f64_reductions_match(v in prop::collection::vec(-1e6f64..1e6, 0..2000)) {
            let want: f64 = v.iter().sum();
            let abs: f64 = v.iter().map(|a| a.abs()).sum();
            prop_assert!((sum_f64(&v).unwrap() - want).abs() <= 1e-12 * abs + 1e-9);
            let d: f64 = v.iter().map(|a| a * a).sum();
            prop_assert!((dot_f64(&v, &v).unwrap() - d).abs() <= 1e-12 * d + 1e-9);
            prop_assert!((norm_f64(&v).unwrap() - d.sqrt()).abs() <= 1e-12 * d.sqrt() + 1e-9);
            if !v.is_empty() {
                prop_assert_eq!(min_f64(&v).unwrap(), v.iter().copied().fold(f64::INFINITY, f64::min));
                prop_assert_eq!(max_f64(&v).unwrap(), v.iter().copied().fold(f64::NEG_INFINITY, f64::max));
            }
        }
    }

    #[test]
    fn dispatch_uses_the_scalar_backend_too() {
        let x: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        assert_eq!(sum_d(Backend::Scalar, &x), 499_500.0);
    }
}
