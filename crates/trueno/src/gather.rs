//! Gathered scoring: one query against a scattered list of a matrix's rows.
//!
//! A graph index (HNSW) scores a query against the neighbours of the node it
//! is expanding: a few dozen rows anywhere in the matrix, not a contiguous
//! block. [`scores_gather`] scores that list in one call (one backend
//! dispatch, one bounds check per id) with the same per-row arithmetic as the
//! one-vs-N scan (bit-identical scores). On random rows the cost is the cache
//! misses, so it scores four rows in lock step, faiss's `distances_batch_4`
//! idea: their misses overlap, and each query vector is loaded once for all
//! four. It also touches the first line of each row of the next four. On an
//! AVX2 Zen 3 with a 150 MB matrix, four rows in lock step cost 0.5-0.8x the
//! time per row of one row at a time with every line of the rows two ahead
//! prefetched (the previous kernel).

use crate::Error;
use crate::backend;
use crate::simd::{Simd, multiversion};
use crate::similarity::{COS, DOT, Metric, SQ, finish, norm_of, row_stats, rows_of, rows_stats};

/// Ask the CPU to start loading every cache line of `data` into L1 (a hint:
/// no effect on results, a no-op off x86-64). For a caller that knows which
/// scattered data it reads next, e.g. a graph search's next link list.
#[inline(always)]
pub fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = data.as_ptr().cast::<u8>();
        let bytes = core::mem::size_of_val(data);
        for off in (0..bytes).step_by(64) {
            // SAFETY: prefetch is a hint; it never faults, and `off` is
            // inside the live slice anyway. SSE is x86-64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off).cast()) };
        }
        if bytes > 0 {
            // The last line, when the slice does not start on a line boundary.
            // SAFETY: as above, the last byte of the slice.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(bytes - 1).cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// Rows scored in lock step (see [`rows_stats`]).
const GROUP: usize = 4;

#[inline(always)]
fn gather_k<S: Simd, const M: u8>(
    s: S,
    q: &[f32],
    matrix: &[f32],
    rows: &[u32],
    qn: f32,
    out: &mut [f32],
) {
    let dim = q.len();
    let row = |i: usize| {
        let r = rows[i] as usize;
        &matrix[r * dim..(r + 1) * dim]
    };
    let n = rows.len().min(out.len());
    let mut i = 0;
    while i + GROUP <= n {
        // Touch the next group's first lines: the hardware prefetcher follows
        // each row from there, while this group's misses are in flight.
        for j in i + GROUP..n.min(i + 2 * GROUP) {
            prefetch(&row(j)[..dim.min(16)]);
        }
        let stats = rows_stats::<S, M, GROUP>(s, q, std::array::from_fn(|g| row(i + g)));
        for (o, (acc, nrm)) in out[i..i + GROUP].iter_mut().zip(stats) {
            *o = finish::<M>(acc, nrm, qn);
        }
        i += GROUP;
    }
    for (j, o) in out.iter_mut().enumerate().take(n).skip(i) {
        let (acc, nrm) = row_stats::<S, M>(s, q, row(j));
        *o = finish::<M>(acc, nrm, qn);
    }
}

#[inline(always)]
fn gather_dot_k<S: Simd>(s: S, q: &[f32], m: &[f32], rows: &[u32], qn: f32, out: &mut [f32]) {
    gather_k::<S, DOT>(s, q, m, rows, qn, out)
}
#[inline(always)]
fn gather_cos_k<S: Simd>(s: S, q: &[f32], m: &[f32], rows: &[u32], qn: f32, out: &mut [f32]) {
    gather_k::<S, COS>(s, q, m, rows, qn, out)
}
#[inline(always)]
fn gather_sq_k<S: Simd>(s: S, q: &[f32], m: &[f32], rows: &[u32], qn: f32, out: &mut [f32]) {
    gather_k::<S, SQ>(s, q, m, rows, qn, out)
}
multiversion! {
    fn gather_dot_d(q: &[f32], m: &[f32], rows: &[u32], qn: f32, out: &mut [f32]) -> () = gather_dot_k;
}
multiversion! {
    fn gather_cos_d(q: &[f32], m: &[f32], rows: &[u32], qn: f32, out: &mut [f32]) -> () = gather_cos_k;
}
multiversion! {
    fn gather_sq_d(q: &[f32], m: &[f32], rows: &[u32], qn: f32, out: &mut [f32]) -> () = gather_sq_k;
}

/// `out[i] = metric(query, matrix row rows[i])` for every listed row (rows may
/// repeat and come in any order). Errors if `query` is not `dim` long, the
/// matrix is not whole rows, `out` is not `rows.len()` long or a row index is
/// out of range.
pub fn scores_gather(
    query: &[f32],
    matrix: &[f32],
    dim: usize,
    rows: &[u32],
    metric: Metric,
    out: &mut [f32],
) -> Result<(), Error> {
    let n = rows_of("matrix", matrix.len(), dim)?;
    if query.len() != dim {
        return Err(Error::Shape(format!(
            "query has {} values, dim is {dim}",
            query.len()
        )));
    }
    if out.len() != rows.len() {
        return Err(Error::LengthMismatch {
            left: rows.len(),
            right: out.len(),
        });
    }
    if let Some(&bad) = rows.iter().find(|&&r| r as usize >= n) {
        return Err(Error::Shape(format!(
            "row index {bad} out of range for a matrix of {n} rows"
        )));
    }
    let be = backend::active()?;
    match metric {
        Metric::Dot => gather_dot_d(be, query, matrix, rows, 0.0, out),
        Metric::Cosine => gather_cos_d(be, query, matrix, rows, norm_of(query)?, out),
        Metric::SqEuclidean => gather_sq_d(be, query, matrix, rows, 0.0, out),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elementwise::test_backends;
    use crate::similarity::scores_one_to_many;

    #[test]
    fn prefetch_takes_any_slice() {
        // A hint: empty, one byte, unaligned and odd-sized slices are all fine.
        let bytes: Vec<u8> = (0..=200).collect();
        prefetch::<u8>(&[]);
        prefetch(&bytes[..1]);
        prefetch(&bytes[3..]);
        prefetch(&[0u64; 17]);
        assert_eq!(bytes[200], 200);
    }

    #[test]
    fn equals_the_one_to_many_scan_on_every_backend() {
        let (n, dim) = (37, 19);
        let matrix: Vec<f32> = (0..n * dim)
            .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let q: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let rows: Vec<u32> = vec![5, 0, 36, 5, 17, 2];
        for metric in [Metric::Dot, Metric::Cosine, Metric::SqEuclidean] {
            let mut all = vec![0.0; n];
            scores_one_to_many(&q, &matrix, dim, metric, &mut all).unwrap();
            let mut got = vec![0.0; rows.len()];
            scores_gather(&q, &matrix, dim, &rows, metric, &mut got).unwrap();
            for (g, &r) in got.iter().zip(&rows) {
                assert_eq!(*g, all[r as usize], "{metric:?} row {r}");
            }
        }
        // Every backend against an f64 reference.
        let qn = norm_of(&q).unwrap();
        for be in test_backends() {
            let mut d = vec![0.0; rows.len()];
            let mut c = vec![0.0; rows.len()];
            let mut e = vec![0.0; rows.len()];
            gather_dot_d(be, &q, &matrix, &rows, 0.0, &mut d);
            gather_cos_d(be, &q, &matrix, &rows, qn, &mut c);
            gather_sq_d(be, &q, &matrix, &rows, 0.0, &mut e);
            for (i, &r) in rows.iter().enumerate() {
                let row = &matrix[r as usize * dim..(r as usize + 1) * dim];
                let dot: f64 = q
                    .iter()
                    .zip(row)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                let rr: f64 = row.iter().map(|&b| f64::from(b).powi(2)).sum();
                let sq: f64 = q
                    .iter()
                    .zip(row)
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                    .sum();
                assert!((f64::from(d[i]) - dot).abs() < 1e-4, "{be} dot");
                assert!(
                    (f64::from(c[i]) - dot / (f64::from(qn) * rr.sqrt())).abs() < 1e-5,
                    "{be} cos"
                );
                assert!((f64::from(e[i]) - sq).abs() < 1e-4, "{be} sq");
            }
        }
    }

    #[test]
    fn every_list_length_matches_the_scan_bit_for_bit_on_every_backend() {
        // Lists shorter than, equal to and beyond one group of four, with an
        // odd dim (vector body, one-vector loop and tail all taken).
        let (n, dim) = (41, 4 * 16 + 8 + 3);
        let matrix: Vec<f32> = (0..n * dim)
            .map(|i| ((i * 104_729) % 211) as f32 / 97.0 - 1.1)
            .collect();
        let q: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.61).cos()).collect();
        let qn = norm_of(&q).unwrap();
        let ids: Vec<u32> = (0..13).map(|i| (i * 17 + 3) % n as u32).collect();
        for be in test_backends() {
            let mut all = [vec![0.0; n], vec![0.0; n], vec![0.0; n]];
            crate::similarity::dotm_d(be, &q, &matrix, 0.0, &mut all[0]);
            crate::similarity::cos_d(be, &q, &matrix, qn, &mut all[1]);
            crate::similarity::sq_d(be, &q, &matrix, 0.0, &mut all[2]);
            for len in 0..=ids.len() {
                let rows = &ids[..len];
                let mut got = [vec![0.0; len], vec![0.0; len], vec![0.0; len]];
                gather_dot_d(be, &q, &matrix, rows, 0.0, &mut got[0]);
                gather_cos_d(be, &q, &matrix, rows, qn, &mut got[1]);
                gather_sq_d(be, &q, &matrix, rows, 0.0, &mut got[2]);
                for (m, (g, a)) in got.iter().zip(&all).enumerate() {
                    for (x, &r) in g.iter().zip(rows) {
                        assert_eq!(
                            x.to_bits(),
                            a[r as usize].to_bits(),
                            "{be} metric {m} list of {len}, row {r}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let m = vec![0.0f32; 12];
        let mut out = vec![0.0; 1];
        assert!(scores_gather(&[0.0; 4], &m, 4, &[3], Metric::Dot, &mut out).is_err());
        assert!(scores_gather(&[0.0; 3], &m, 4, &[0], Metric::Dot, &mut out).is_err());
        assert!(scores_gather(&[0.0; 4], &m, 4, &[0, 1], Metric::Dot, &mut out).is_err());
        assert!(scores_gather(&[0.0; 4], &m, 5, &[0], Metric::Dot, &mut out).is_err());
        let mut none: Vec<f32> = vec![];
        scores_gather(&[0.0; 4], &m, 4, &[], Metric::Dot, &mut none).unwrap();
    }
}
