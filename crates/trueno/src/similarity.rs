//! Similarity search: cosine, dot and squared-L2 for a pair, one query
//! against N rows, M×N, and a fused top-k.
//!
//! Matrices are row-major with `dim` values per row. The one-vs-N kernel
//! streams the matrix once, as two sequential streams half the matrix
//! apart (more DRAM misses in flight than one stream); for cosine it
//! accumulates `q·r` and `r·r` in the same pass (the matrix is read once, no
//! norms materialised). M×N and top-k
//! with several queries walk the matrix in L2-sized blocks, reusing each block
//! for every query, with row norms computed once.
//!
//! [`top_k`] never materialises the M×N score matrix: per block it scores
//! into a small buffer and keeps, per query, a k-element heap whose worst
//! entry is the admission threshold, so almost every score costs one compare.
//!
//! Conventions: cosine of a zero vector is NaN (0/0, like the NumPy
//! expression `a @ b / (norm(a) * norm(b))`). In top-k, NaN scores rank below
//! every number; ties go to the lower row index; `k > n` returns all `n` rows.
//! For [`Metric::SqEuclidean`] "best" means smallest distance.

use crate::Error;
use crate::backend;
use crate::reduce::sumsq64_d;
use crate::simd::{Simd, multiversion};

/// How a query is scored against a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// `q·r / (|q| |r|)`; higher is better.
    Cosine,
    /// `q·r`; higher is better.
    Dot,
    /// `Σ (q - r)²`; lower is better.
    SqEuclidean,
}

impl Metric {
    /// Name accepted by [`str::parse`].
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
            Metric::SqEuclidean => "sqeuclidean",
        }
    }
}

impl std::str::FromStr for Metric {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "cosine" => Ok(Metric::Cosine),
            "dot" | "inner_product" => Ok(Metric::Dot),
            "sqeuclidean" | "l2sq" => Ok(Metric::SqEuclidean),
            _ => Err(Error::Shape(format!(
                "unknown metric {s:?}: expected \"cosine\", \"dot\" or \"sqeuclidean\""
            ))),
        }
    }
}

pub(crate) const DOT: u8 = 0;
pub(crate) const COS: u8 = 1;
pub(crate) const SQ: u8 = 2;

/// One vector step for R rows: `acc` gets `q·r` (DOT, COS) or `Σ(q-r)²`
/// (SQ), `nrm` gets `r·r` (COS only).
#[inline(always)]
fn step<S: Simd, const M: u8, const R: usize>(
    s: S,
    qv: S::V,
    rv: &[S::V; R],
    acc: &mut [S::V; R],
    nrm: &mut [S::V; R],
) {
    for r in 0..R {
        match M {
            SQ => {
                let d = s.sub(qv, rv[r]);
                acc[r] = s.fma(d, d, acc[r]);
            }
            COS => {
                acc[r] = s.fma(qv, rv[r], acc[r]);
                nrm[r] = s.fma(rv[r], rv[r], nrm[r]);
            }
            _ => acc[r] = s.fma(qv, rv[r], acc[r]),
        }
    }
}

#[inline(always)]
pub(crate) fn finish<const M: u8>(acc: f32, nrm: f32, qn: f32) -> f32 {
    match M {
        COS => acc / (qn * nrm.sqrt()),
        _ => acc,
    }
}

/// `(acc, nrm)` of one row (see [`step`]), four vectors per step with
/// independent accumulators.
#[inline(always)]
pub(crate) fn row_stats<S: Simd, const M: u8>(s: S, q: &[f32], row: &[f32]) -> (f32, f32) {
    rows_stats::<S, M, 1>(s, q, [row])[0]
}

/// [`row_stats`] of `R` rows in lock step: each query vector is loaded once
/// for all of them, and the loads of `R` rows are in flight together (on
/// rows scattered through memory, the misses overlap). Every row gets
/// exactly [`row_stats`]'s operations in its order, so the results are
/// bit-identical to scoring the rows one at a time.
#[inline(always)]
pub(crate) fn rows_stats<S: Simd, const M: u8, const R: usize>(
    s: S,
    q: &[f32],
    rows: [&[f32]; R],
) -> [(f32, f32); R] {
    let l = S::LANES;
    let dim = q.len();
    // Plain loops, not closures (`array::map`, `from_fn`): a closure does not
    // inherit the caller's target features, so its SIMD calls stop inlining
    // (see `Op1` in simd.rs); here that halved the speed.
    let mut rows = rows;
    for r in &mut rows {
        *r = &r[..dim];
    }
    let mut acc = [[s.splat(0.0); R]; 4];
    let mut nrm = [[s.splat(0.0); R]; 4];
    let mut i = 0;
    while i + 4 * l <= dim {
        for (u, (a, n)) in acc.iter_mut().zip(nrm.iter_mut()).enumerate() {
            let k = i + u * l;
            let qv = s.load(&q[k..]);
            let mut rv = [qv; R];
            for (v, r) in rv.iter_mut().zip(rows) {
                *v = s.load(&r[k..]);
            }
            step::<S, M, R>(s, qv, &rv, a, n);
        }
        i += 4 * l;
    }
    while i + l <= dim {
        let qv = s.load(&q[i..]);
        let mut rv = [qv; R];
        for (v, r) in rv.iter_mut().zip(rows) {
            *v = s.load(&r[i..]);
        }
        step::<S, M, R>(s, qv, &rv, &mut acc[0], &mut nrm[0]);
        i += l;
    }
    if i < dim {
        let qv = s.load_tail(&q[i..], 0.0);
        let mut rv = [qv; R];
        for (v, r) in rv.iter_mut().zip(rows) {
            *v = s.load_tail(&r[i..], 0.0);
        }
        step::<S, M, R>(s, qv, &rv, &mut acc[1], &mut nrm[1]);
    }
    let mut out = [(0.0, 0.0); R];
    for (r, o) in out.iter_mut().enumerate() {
        let a = s.add(s.add(acc[0][r], acc[1][r]), s.add(acc[2][r], acc[3][r]));
        let n = s.add(s.add(nrm[0][r], nrm[1][r]), s.add(nrm[2][r], nrm[3][r]));
        *o = (
            s.reduce_add(a),
            if M == COS { s.reduce_add(n) } else { 0.0 },
        );
    }
    out
}

/// Score `q` against every row of `matrix` into `out`; `qn` = |q| for COS.
///
/// The rows are split into [`STREAMS`] contiguous parts that are walked in
/// lock step: one row from each part in turn, each row read front to back.
/// One core's DRAM bandwidth is bound by how many misses it keeps in flight,
/// and a second sequential stream half the matrix away gives the hardware
/// prefetchers a second stream to run ahead on. Measured interleaved on a
/// NumPy (huge-page) 100k x 384 matrix: two streams 2-5% faster than one;
/// four were faster still on 4 KiB-paged buffers but slower on huge pages
/// and within top-k's chunks; software prefetch on one stream was slower.
/// Interleaving *neighbouring* rows is not the same thing: no new stream.
#[inline(always)]
fn one_to_many_k<S: Simd, const M: u8>(s: S, q: &[f32], matrix: &[f32], qn: f32, out: &mut [f32]) {
    let dim = q.len();
    let n = out.len().min(matrix.len() / dim);
    let part = n / STREAMS;
    // Plain loops, not a closure: see `Op1` in simd.rs.
    for i in 0..part {
        for t in 0..STREAMS {
            let r = t * part + i;
            let (acc, nrm) = row_stats::<S, M>(s, q, &matrix[r * dim..(r + 1) * dim]);
            out[r] = finish::<M>(acc, nrm, qn);
        }
    }
    for r in STREAMS * part..n {
        let (acc, nrm) = row_stats::<S, M>(s, q, &matrix[r * dim..(r + 1) * dim]);
        out[r] = finish::<M>(acc, nrm, qn);
    }
}

/// Independent sequential read streams of the one-vs-N scan.
const STREAMS: usize = 2;

/// Rows per scoring chunk of the one-query top-k (a 64 KiB score buffer):
/// long enough that each chunk's [`STREAMS`] streams run for megabytes.
const TOPK_CHUNK: usize = 16384;

#[inline(always)]
fn cos_k<S: Simd>(s: S, q: &[f32], m: &[f32], qn: f32, out: &mut [f32]) {
    one_to_many_k::<S, COS>(s, q, m, qn, out)
}
#[inline(always)]
fn dotm_k<S: Simd>(s: S, q: &[f32], m: &[f32], qn: f32, out: &mut [f32]) {
    one_to_many_k::<S, DOT>(s, q, m, qn, out)
}
#[inline(always)]
fn sq_k<S: Simd>(s: S, q: &[f32], m: &[f32], qn: f32, out: &mut [f32]) {
    one_to_many_k::<S, SQ>(s, q, m, qn, out)
}
multiversion! {
    pub(crate) fn cos_d(q: &[f32], m: &[f32], qn: f32, out: &mut [f32]) -> () = cos_k;
}
multiversion! {
    pub(crate) fn dotm_d(q: &[f32], m: &[f32], qn: f32, out: &mut [f32]) -> () = dotm_k;
}
multiversion! {
    pub(crate) fn sq_d(q: &[f32], m: &[f32], qn: f32, out: &mut [f32]) -> () = sq_k;
}

/// Row squared norms of a matrix block.
#[inline(always)]
fn row_sumsq_k<S: Simd>(s: S, matrix: &[f32], dim: usize, out: &mut [f32]) {
    let zero = vec![0.0f32; dim];
    // Σ(0 - r)² = r·r: reuse the SQ kernel with a zero query.
    one_to_many_k::<S, SQ>(s, &zero, matrix, 0.0, out)
}
multiversion! {
    fn row_sumsq_d(matrix: &[f32], dim: usize, out: &mut [f32]) -> () = row_sumsq_k;
}

pub(crate) fn rows_of(name: &str, len: usize, dim: usize) -> Result<usize, Error> {
    if dim == 0 {
        return Err(Error::Shape("dim must be positive".into()));
    }
    if !len.is_multiple_of(dim) {
        return Err(Error::Shape(format!(
            "{name} has {len} values, not a whole number of rows of {dim}"
        )));
    }
    Ok(len / dim)
}

fn pair_check(a: &[f32], b: &[f32]) -> Result<(), Error> {
    if a.len() == b.len() {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            left: a.len(),
            right: b.len(),
        })
    }
}

/// Cosine similarity of one pair (NaN if either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> Result<f32, Error> {
    pair_check(a, b)?;
    let (ab, aa, bb) = cos_pair_d(backend::active()?, a, b);
    Ok((ab / (aa * bb).sqrt()) as f32)
}

/// `(a·b, a·a, b·b)` in one pass, two accumulator sets.
#[inline(always)]
fn cos_pair_k<S: Simd>(s: S, a: &[f32], b: &[f32]) -> (f64, f64, f64) {
    let l = S::LANES;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let z = s.splat(0.0);
    let (mut ab, mut aa, mut bb) = ([z; 2], [z; 2], [z; 2]);
    let mut i = 0;
    while i + 2 * l <= n {
        for u in 0..2 {
            let (x, y) = (s.load(&a[i + u * l..]), s.load(&b[i + u * l..]));
            ab[u] = s.fma(x, y, ab[u]);
            aa[u] = s.fma(x, x, aa[u]);
            bb[u] = s.fma(y, y, bb[u]);
        }
        i += 2 * l;
    }
    if i < n {
        let (x, y) = if i + l <= n {
            (s.load(&a[i..]), s.load(&b[i..]))
        } else {
            (s.load_tail(&a[i..], 0.0), s.load_tail(&b[i..], 0.0))
        };
        ab[0] = s.fma(x, y, ab[0]);
        aa[0] = s.fma(x, x, aa[0]);
        bb[0] = s.fma(y, y, bb[0]);
        i += l;
    }
    if i < n {
        let (x, y) = (s.load_tail(&a[i..], 0.0), s.load_tail(&b[i..], 0.0));
        ab[1] = s.fma(x, y, ab[1]);
        aa[1] = s.fma(x, x, aa[1]);
        bb[1] = s.fma(y, y, bb[1]);
    }
    (
        f64::from(s.reduce_add(s.add(ab[0], ab[1]))),
        f64::from(s.reduce_add(s.add(aa[0], aa[1]))),
        f64::from(s.reduce_add(s.add(bb[0], bb[1]))),
    )
}
multiversion! {
    fn cos_pair_d(a: &[f32], b: &[f32]) -> (f64, f64, f64) = cos_pair_k;
}

/// Squared Euclidean distance of one pair.
pub fn sqeuclidean(a: &[f32], b: &[f32]) -> Result<f32, Error> {
    pair_check(a, b)?;
    if a.is_empty() {
        return Ok(0.0);
    }
    let mut out = [0.0f32];
    sq_d(backend::active()?, a, b, 0.0, &mut out);
    Ok(out[0])
}

pub(crate) fn norm_of(q: &[f32]) -> Result<f32, Error> {
    Ok(sumsq64_d(backend::active()?, q).sqrt() as f32)
}

/// Score one query against every row: `out[i] = metric(query, row i)`.
pub fn scores_one_to_many(
    query: &[f32],
    matrix: &[f32],
    dim: usize,
    metric: Metric,
    out: &mut [f32],
) -> Result<(), Error> {
    if query.len() != dim {
        return Err(Error::Shape(format!(
            "query has {} values, dim is {dim}",
            query.len()
        )));
    }
    let n = rows_of("matrix", matrix.len(), dim)?;
    if out.len() != n {
        return Err(Error::LengthMismatch {
            left: n,
            right: out.len(),
        });
    }
    let be = backend::active()?;
    match metric {
        Metric::Cosine => cos_d(be, query, matrix, norm_of(query)?, out),
        Metric::Dot => dotm_d(be, query, matrix, 0.0, out),
        Metric::SqEuclidean => sq_d(be, query, matrix, 0.0, out),
    }
    Ok(())
}

/// Cosine similarity of `query` with each row of `matrix` (`dim` per row).
pub fn cosine_one_to_many(
    query: &[f32],
    matrix: &[f32],
    dim: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    scores_one_to_many(query, matrix, dim, Metric::Cosine, out)
}

/// Rows of the matrix per block: about 256 KiB, so a block stays in L2 while
/// every query visits it.
fn block_rows(dim: usize) -> usize {
    (256 * 1024 / (4 * dim)).clamp(4, 4096)
}

/// Visit the matrix block by block; `f(first_row, block, block_norms)` with
/// `block_norms` the row norms (cosine only, else empty).
fn for_blocks(
    matrix: &[f32],
    dim: usize,
    metric: Metric,
    mut f: impl FnMut(usize, &[f32], &[f32]),
) -> Result<(), Error> {
    let be = backend::active()?;
    let br = block_rows(dim);
    let mut norms = Vec::new();
    for (b, block) in matrix.chunks(br * dim).enumerate() {
        if metric == Metric::Cosine {
            norms.resize(block.len() / dim, 0.0);
            row_sumsq_d(be, block, dim, &mut norms);
            for v in &mut norms {
                *v = v.sqrt();
            }
        }
        f(b * br, block, &norms);
    }
    Ok(())
}

/// All pairwise scores: `out[i * n + j] = metric(queries row i, matrix row j)`.
pub fn scores_many_to_many(
    queries: &[f32],
    matrix: &[f32],
    dim: usize,
    metric: Metric,
    out: &mut [f32],
) -> Result<(), Error> {
    let m = rows_of("queries", queries.len(), dim)?;
    let n = rows_of("matrix", matrix.len(), dim)?;
    if out.len() != m * n {
        return Err(Error::LengthMismatch {
            left: m * n,
            right: out.len(),
        });
    }
    let be = backend::active()?;
    let qnorms: Vec<f32> = queries
        .chunks_exact(dim)
        .map(|q| sumsq64_d(be, q).sqrt() as f32)
        .collect();
    for_blocks(matrix, dim, metric, |first, block, norms| {
        let rows = block.len() / dim;
        for (i, q) in queries.chunks_exact(dim).enumerate() {
            let o = &mut out[i * n + first..i * n + first + rows];
            match metric {
                Metric::SqEuclidean => sq_d(be, q, block, 0.0, o),
                _ => dotm_d(be, q, block, 0.0, o),
            }
            if metric == Metric::Cosine {
                for (v, rn) in o.iter_mut().zip(norms) {
                    *v /= qnorms[i] * rn;
                }
            }
        }
    })
}

/// The k best `(key, index)` seen so far; the root is the worst kept entry.
/// Keys are "higher is better" (distances are negated), NaN ranks lowest,
/// ties prefer the lower index.
#[derive(Debug)]
struct TopK {
    k: usize,
    heap: Vec<(f32, usize)>,
}

/// Whether `a` ranks strictly better than `b`.
fn better(a: (f32, usize), b: (f32, usize)) -> bool {
    match (a.0.is_nan(), b.0.is_nan()) {
        (true, true) => a.1 < b.1,
        (true, false) => false,
        (false, true) => true,
        (false, false) => a.0 > b.0 || (a.0 == b.0 && a.1 < b.1),
    }
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            heap: Vec::with_capacity(k),
        }
    }

    /// Scores of rows `first..first + keys.len()` (indices only increase
    /// across calls, so an equal key never displaces a kept entry).
    fn offer(&mut self, first: usize, keys: &[f32]) {
        let mut i = 0;
        while i < keys.len() && self.heap.len() < self.k {
            self.push((keys[i], first + i));
            i += 1;
        }
        if self.k == 0 {
            return;
        }
        let mut thresh = self.heap[0].0;
        for (j, &key) in keys.iter().enumerate().skip(i) {
            // NaN root: any number is better; NaN key: never admitted.
            if key > thresh || (thresh.is_nan() && !key.is_nan()) {
                self.heap[0] = (key, first + j);
                self.sift_down(0);
                thresh = self.heap[0].0;
            }
        }
    }

    fn push(&mut self, e: (f32, usize)) {
        self.heap.push(e);
        let mut c = self.heap.len() - 1;
        while c > 0 {
            let p = (c - 1) / 2;
            if better(self.heap[p], self.heap[c]) {
                self.heap.swap(p, c);
                c = p;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut p: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * p + 1, 2 * p + 2);
            let mut worst = p;
            if l < n && better(self.heap[worst], self.heap[l]) {
                worst = l;
            }
            if r < n && better(self.heap[worst], self.heap[r]) {
                worst = r;
            }
            if worst == p {
                return;
            }
            self.heap.swap(p, worst);
            p = worst;
        }
    }

    fn into_sorted(mut self) -> Vec<(f32, usize)> {
        self.heap.sort_by(|a, b| {
            if better(*a, *b) {
                std::cmp::Ordering::Less
            } else if better(*b, *a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
        self.heap
    }
}

/// For each query row, the `k` best matrix rows, best first:
/// `(indices, scores)`, each of length `m * min(k, n)` (query-major).
/// Scores are the metric values (distances for [`Metric::SqEuclidean`]).
pub fn top_k(
    queries: &[f32],
    matrix: &[f32],
    dim: usize,
    k: usize,
    metric: Metric,
) -> Result<(Vec<i64>, Vec<f32>), Error> {
    let m = rows_of("queries", queries.len(), dim)?;
    let n = rows_of("matrix", matrix.len(), dim)?;
    let k = k.min(n);
    let be = backend::active()?;
    let mut heaps: Vec<TopK> = (0..m).map(|_| TopK::new(k)).collect();
    let negate = metric == Metric::SqEuclidean;
    let mut buf = Vec::new();
    if m == 1 {
        // One query: a single fused pass (cosine norms on the fly), scored
        // in chunks so the scores never exist for the whole matrix.
        let q = queries;
        let qn = norm_of(q)?;
        let chunk = TOPK_CHUNK;
        buf.resize(chunk, 0.0);
        for (c, rows) in matrix.chunks(chunk * dim).enumerate() {
            let o = &mut buf[..rows.len() / dim];
            match metric {
                Metric::Cosine => cos_d(be, q, rows, qn, o),
                Metric::Dot => dotm_d(be, q, rows, 0.0, o),
                Metric::SqEuclidean => sq_d(be, q, rows, 0.0, o),
            }
            if negate {
                o.iter_mut().for_each(|v| *v = -*v);
            }
            heaps[0].offer(c * chunk, o);
        }
    } else {
        let qnorms: Vec<f32> = queries
            .chunks_exact(dim)
            .map(|q| sumsq64_d(be, q).sqrt() as f32)
            .collect();
        for_blocks(matrix, dim, metric, |first, block, norms| {
            let rows = block.len() / dim;
            buf.resize(rows, 0.0);
            for (i, q) in queries.chunks_exact(dim).enumerate() {
                match metric {
                    Metric::SqEuclidean => sq_d(be, q, block, 0.0, &mut buf),
                    _ => dotm_d(be, q, block, 0.0, &mut buf),
                }
                match metric {
                    Metric::Cosine => {
                        for (v, rn) in buf.iter_mut().zip(norms) {
                            *v /= qnorms[i] * rn;
                        }
                    }
                    Metric::SqEuclidean => buf.iter_mut().for_each(|v| *v = -*v),
                    Metric::Dot => {}
                }
                heaps[i].offer(first, &buf);
            }
        })?;
    }
    let mut idx = Vec::with_capacity(m * k);
    let mut scores = Vec::with_capacity(m * k);
    for h in heaps {
        for (key, i) in h.into_sorted() {
            idx.push(i as i64);
            scores.push(if negate { -key } else { key });
        }
    }
    Ok((idx, scores))
}

/// [`top_k`] with the row counts given (`queries` is `m x dim`, `matrix` `n x dim`), so
/// that zero-length vectors have an answer, decided here rather than in each binding:
/// with `dim == 0` every score is the empty sum (0 for dot and squared L2; cosine is
/// 0 / 0, NaN, as NumPy's `(m @ q) / (norm(m) * norm(q))` gives) and the best rows are
/// the first `min(k, n)`, in order (all tie). Lengths that do not match the counts are
/// [`Error::Shape`].
pub fn top_k_rows(
    queries: &[f32],
    m: usize,
    matrix: &[f32],
    n: usize,
    dim: usize,
    k: usize,
    metric: Metric,
) -> Result<(Vec<i64>, Vec<f32>), Error> {
    for (name, len, rows) in [("queries", queries.len(), m), ("matrix", matrix.len(), n)] {
        if Some(len) != rows.checked_mul(dim) {
            return Err(Error::Shape(format!(
                "{name} has {len} values, not {rows} rows of {dim}"
            )));
        }
    }
    if dim > 0 {
        return top_k(queries, matrix, dim, k, metric);
    }
    let kk = k.min(n);
    let fill = if metric == Metric::Cosine {
        f32::NAN
    } else {
        0.0
    };
    let idx = (0..m)
        .flat_map(|_| (0..kk).map(|i| i64::try_from(i).unwrap_or(i64::MAX)))
        .collect();
    Ok((idx, vec![fill; m * kk]))
}

/// Dot product of every query row with every matrix row is
/// [`scores_many_to_many`] with [`Metric::Dot`]; a single pair is
/// [`crate::dot`]. Kept for symmetry with the other metrics.
pub fn dot_one_to_many(
    query: &[f32],
    matrix: &[f32],
    dim: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    scores_one_to_many(query, matrix, dim, Metric::Dot, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elementwise::test_backends;
    use proptest::prelude::*;

    fn reference(metric: Metric, q: &[f32], r: &[f32]) -> f64 {
        let d: f64 = q
            .iter()
            .zip(r)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum();
        match metric {
            Metric::Dot => d,
            Metric::SqEuclidean => q
                .iter()
                .zip(r)
                .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                .sum(),
            Metric::Cosine => {
                let nq: f64 = q.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>().sqrt();
                let nr: f64 = r.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>().sqrt();
                d / (nq * nr)
            }
        }
    }

    fn tol(metric: Metric, q: &[f32], r: &[f32]) -> f64 {
        let mag: f64 = match metric {
            Metric::Dot => q
                .iter()
                .zip(r)
                .map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs())
                .sum(),
            Metric::SqEuclidean => q
                .iter()
                .zip(r)
                .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                .sum(),
            Metric::Cosine => 1.0,
        };
        1e-5 * mag + 1e-6
    }

    const METRICS: [Metric; 3] = [Metric::Cosine, Metric::Dot, Metric::SqEuclidean];

    fn data() -> impl Strategy<Value = (Vec<f32>, Vec<f32>, usize)> {
        (1usize..=70, 0usize..=40, 1usize..=3).prop_flat_map(|(dim, n, m)| {
            (
                prop::collection::vec(-10.0f32..10.0, m * dim),
                prop::collection::vec(-10.0f32..10.0, n * dim),
                Just(dim),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn one_to_many_and_many_to_many_match_reference((qs, mat, dim) in data()) {
            let n = mat.len() / dim;
            for be in test_backends() {
                for metric in METRICS {
                    let q = &qs[..dim];
                    let mut out = vec![0.0; n];
                    match metric {
                        Metric::Cosine => cos_d(be, q, &mat, norm_of(q).unwrap(), &mut out),
                        Metric::Dot => dotm_d(be, q, &mat, 0.0, &mut out),
                        Metric::SqEuclidean => sq_d(be, q, &mat, 0.0, &mut out),
                    }
                    for (j, r) in mat.chunks(dim).enumerate() {
                        let want = reference(metric, q, r);
                        prop_assert!((f64::from(out[j]) - want).abs() <= tol(metric, q, r), "{be} {metric:?}: {} vs {want}", out[j]);
                    }
                }
            }
            for metric in METRICS {
                let m = qs.len() / dim;
                let mut out = vec![0.0; m * n];
                scores_many_to_many(&qs, &mat, dim, metric, &mut out).unwrap();
                for (i, q) in qs.chunks(dim).enumerate() {
                    for (j, r) in mat.chunks(dim).enumerate() {
                        let want = reference(metric, q, r);
                        prop_assert!((f64::from(out[i * n + j]) - want).abs() <= tol(metric, q, r));
                    }
                }
            }
        }

        #[test]
        fn top_k_matches_full_sort((qs, mat, dim) in data(), k in 0usize..12) {
            let n = mat.len() / dim;
            let m = qs.len() / dim;
            for metric in METRICS {
                let (idx, sc) = top_k(&qs, &mat, dim, k, metric).unwrap();
                let kk = k.min(n);
                prop_assert_eq!(idx.len(), m * kk);
                prop_assert_eq!(sc.len(), m * kk);
                let mut full = vec![0.0; m * n];
                scores_many_to_many(&qs, &mat, dim, metric, &mut full).unwrap();
                for i in 0..m {
                    let row = &full[i * n..(i + 1) * n];
                    let got = &idx[i * kk..(i + 1) * kk];
                    let gs = &sc[i * kk..(i + 1) * kk];
                    // Best first, and nothing outside beats the k-th kept.
                    for w in gs.windows(2) {
                        let ordered = if metric == Metric::SqEuclidean { w[0] <= w[1] } else { w[0] >= w[1] };
                        prop_assert!(ordered, "{:?} not best first", w);
                    }
                    let mut seen = vec![false; n];
                    for (&j, &s) in got.iter().zip(gs) {
                        prop_assert!(!seen[j as usize]);
                        seen[j as usize] = true;
                        let want = row[j as usize];
                        prop_assert!((s - want).abs() <= 1e-4 * want.abs().max(1.0), "{s} vs {want}");
                    }
                    if let Some(&last) = gs.last() {
                        for (j, &v) in row.iter().enumerate() {
                            if !seen[j] {
                                let worse = if metric == Metric::SqEuclidean { v >= last - 1e-3 * last.abs().max(1.0) } else { v <= last + 1e-4 * last.abs().max(1.0) };
                                prop_assert!(worse, "{metric:?}: row {j} ({v}) beats kept {last}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn top_k_across_blocks_matches_full_sort() {
        // Enough rows for several L2 blocks and top-k chunks.
        let dim = 33;
        let n = TOPK_CHUNK + 700;
        let mat: Vec<f32> = (0..n * dim)
            .map(|i| ((i * 7919) % 1013) as f32 / 1013.0 - 0.5)
            .collect();
        for m in [1usize, 3] {
            let qs: Vec<f32> = (0..m * dim).map(|i| ((i * 31) % 17) as f32 - 8.0).collect();
            for metric in METRICS {
                let (idx, _) = top_k(&qs, &mat, dim, 7, metric).unwrap();
                let mut full = vec![0.0; m * n];
                scores_many_to_many(&qs, &mat, dim, metric, &mut full).unwrap();
                for i in 0..m {
                    let row = &full[i * n..(i + 1) * n];
                    let mut order: Vec<usize> = (0..n).collect();
                    let sign = if metric == Metric::SqEuclidean {
                        1.0
                    } else {
                        -1.0
                    };
                    order.sort_by(|&a, &b| {
                        (sign * row[a]).total_cmp(&(sign * row[b])).then(a.cmp(&b))
                    });
                    let want: Vec<i64> = order[..7].iter().map(|&j| j as i64).collect();
                    assert_eq!(&idx[i * 7..(i + 1) * 7], &want[..], "{metric:?} m={m}");
                }
            }
        }
    }

    #[test]
    fn top_k_nan_ranks_last_and_ties_prefer_lower_index() {
        let mat = [1.0, 0.0, f32::NAN, 0.0, 1.0, 0.0, 0.5, 0.0];
        let (idx, sc) = top_k(&[1.0, 0.0], &mat, 2, 4, Metric::Dot).unwrap();
        assert_eq!(idx, vec![0, 2, 3, 1]);
        assert_eq!(&sc[..3], &[1.0, 1.0, 0.5]);
        assert!(sc[3].is_nan());
        let (idx, _) = top_k(&[1.0, 0.0], &mat, 2, 10, Metric::SqEuclidean).unwrap();
        assert_eq!(idx, vec![0, 2, 3, 1]);
    }

    #[test]
    fn pairs_and_errors() {
        assert!(
            (cosine(&[1.0, 0.0], &[1.0, 1.0]).unwrap() - std::f32::consts::FRAC_1_SQRT_2).abs()
                < 1e-7
        );
        assert!(cosine(&[0.0, 0.0], &[1.0, 1.0]).unwrap().is_nan());
        assert_eq!(sqeuclidean(&[1.0, 2.0], &[3.0, 5.0]), Ok(13.0));
        assert_eq!(sqeuclidean(&[], &[]), Ok(0.0));
        assert!(cosine(&[], &[]).unwrap().is_nan());
        for n in [1usize, 15, 16, 17, 31, 33, 47, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.3 + 0.1).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).cos()).collect();
            let want = reference(Metric::Cosine, &a, &b);
            for be in test_backends() {
                let (ab, aa, bb) = cos_pair_d(be, &a, &b);
                let got = ab / (aa * bb).sqrt();
                assert!((got - want).abs() < 1e-5, "{be} n={n}: {got} vs {want}");
            }
        }
        assert_eq!(
            cosine(&[1.0], &[]),
            Err(Error::LengthMismatch { left: 1, right: 0 })
        );
        let mut out = [0.0; 2];
        assert!(matches!(
            cosine_one_to_many(&[1.0, 2.0], &[1.0; 5], 2, &mut out),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            top_k(&[1.0], &[1.0], 0, 1, Metric::Dot),
            Err(Error::Shape(_))
        ));
        assert_eq!("cosine".parse::<Metric>(), Ok(Metric::Cosine));
        assert!("hamming".parse::<Metric>().is_err());
    }

    #[test]
    fn top_k_rows_decides_zero_length_vectors() {
        for (metric, fill) in [
            (Metric::Cosine, f32::NAN),
            (Metric::Dot, 0.0),
            (Metric::SqEuclidean, 0.0),
        ] {
            let (idx, sc) = top_k_rows(&[], 2, &[], 5, 0, 3, metric).unwrap();
            assert_eq!(idx, vec![0, 1, 2, 0, 1, 2]);
            assert_eq!(sc.len(), 6);
            assert!(
                sc.iter()
                    .all(|&v| v.to_bits() == fill.to_bits() || (fill.is_nan() && v.is_nan()))
            );
            let (idx, sc) = top_k_rows(&[], 1, &[], 2, 0, 10, metric).unwrap();
            assert_eq!((idx.len(), sc.len()), (2, 2));
            let (idx, _) = top_k_rows(&[], 1, &[], 0, 0, 4, metric).unwrap();
            assert!(idx.is_empty());
        }
        // With dim > 0 it is top_k.
        let q = [1.0, 0.0];
        let mat = [0.0, 1.0, 1.0, 0.0, 0.5, 0.5];
        assert_eq!(
            top_k_rows(&q, 1, &mat, 3, 2, 2, Metric::Dot).unwrap(),
            top_k(&q, &mat, 2, 2, Metric::Dot).unwrap()
        );
        // Counts that do not match the buffers are refused, naming the numbers.
        let err = top_k_rows(&q, 1, &mat, 4, 2, 2, Metric::Dot).unwrap_err();
        assert_eq!(
            err,
            Error::Shape("matrix has 6 values, not 4 rows of 2".into())
        );
        assert!(top_k_rows(&[1.0], 1, &[], usize::MAX, 2, 1, Metric::Dot).is_err());
    }
}
