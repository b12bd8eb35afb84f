//! k-means: k-means++ seeding, then Lloyd's iterations (assign every point to its
//! nearest centre, move every centre to the mean of its points), best of `n_init` runs.
//!
//! The algorithm is scikit-learn's `KMeans(algorithm="lloyd")` in substance:
//! * the data are centred on their column means first (the centres are shifted back at
//!   the end), so the distance expansion below loses little to cancellation;
//! * k-means++ is the greedy variant: each new centre is the best (lowest potential) of
//!   `2 + ln k` candidates drawn with probability proportional to the squared distance
//!   to the nearest chosen centre;
//! * an iteration walks the rows in chunks of [`CHUNK`]: one trueno GEMM scores the chunk
//!   against every centre, each row takes its nearest centre, and the row is added to
//!   that centre's running sum while the chunk is still in cache; the new centres are the
//!   sums over the counts;
//! * `tol` is relative to the data, as scikit-learn's `_tolerance`: iterations stop when
//!   the squared centre shift summed over centres, `sum_c |c_new - c_old|^2`, is at most
//!   `tol * mean(var(X, axis=0))`, or when the labels no longer change ("strict
//!   convergence"), or after `max_iter`. Without strict convergence one more assignment
//!   makes the labels match the final centres;
//! * an empty cluster is re-seeded at the point farthest from its centre (taken from a
//!   cluster that keeps at least one point);
//! * the reported inertia is summed exactly, `sum_i |x_i - c_label(i)|^2`, not from the
//!   expansion.
//!
//! Squared distances are `|x|^2 - 2 x.c + |c|^2`: the cross term is a GEMM of the chunk
//! with `-2 C^T`, whose columns are padded with zeros to whole GEMM register tiles
//! (`trueno::matmul::tile_and_blocking`), so every tile runs trueno's in-place kernel
//! rather than computing a partial tile into scratch and copying it out (at k = 8 and
//! the AVX-512 tile of 16 columns: 0.41 against 0.84 ms per pass over 20000 rows on a
//! lightly loaded machine, within noise on a loaded one; example `kmeans_phases`). Every
//! buffer is allocated once per fit; an iteration allocates nothing. The random stream is
//! aprender's seeded generator, not NumPy's, so the runs differ from scikit-learn's; the
//! tests compare the best inertia.

use crate::rng::Rng;
use crate::{Error, Matrix, Result, check_features};

/// Rows scored per GEMM: scikit-learn's chunk. A chunk's rows (256 x 20 f64 = 40 KiB at
/// 20 features) and its scores stay in L2 while their centres' sums are updated.
pub const CHUNK: usize = 256;

/// Parameters, named and defaulted as in scikit-learn (`n_init="auto"` is 1 with
/// k-means++).
#[derive(Debug, Clone)]
pub struct KMeans {
    pub n_clusters: usize,
    pub n_init: usize,
    pub max_iter: usize,
    pub tol: f64,
    pub seed: u64,
}

impl KMeans {
    pub fn new(n_clusters: usize) -> Self {
        KMeans {
            n_clusters,
            n_init: 1,
            max_iter: 300,
            tol: 1e-4,
            seed: 0,
        }
    }
}

/// A fitted clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansModel {
    /// `k x p` row-major centres.
    pub centers: Vec<f64>,
    pub labels: Vec<usize>,
    /// Sum of squared distances of points to their centre.
    pub inertia: f64,
    /// Lloyd iterations of the best run.
    pub n_iter: usize,
    pub n_features: usize,
}

/// Scores chunks of rows against a set of centres: `score(i, j) = |c_j|^2 - 2 x_i.c_j`,
/// the squared distance less the row's own `|x_i|^2` (which does not change the argmin).
struct Scorer {
    p: usize,
    /// GEMM register tile width: centre columns are padded to a multiple of it.
    nr: usize,
    /// Live centres and padded columns of the current set.
    k: usize,
    kp: usize,
    /// `p x kp`: `-2 C^T`, zero in the padding columns.
    bt: Vec<f64>,
    /// `|c_j|^2`.
    cn: Vec<f64>,
    /// `CHUNK x kp` cross terms of the last chunk.
    buf: Vec<f64>,
}

impl Scorer {
    fn new(p: usize, max_centers: usize) -> Result<Scorer> {
        let isa = trueno::backend::active()?;
        let (_, nr, _) = trueno::matmul::tile_and_blocking::<f64>(isa)?;
        let nr = nr.max(1);
        let kp = max_centers.div_ceil(nr) * nr;
        Ok(Scorer {
            p,
            nr,
            k: 0,
            kp,
            bt: vec![0.0; p * kp],
            cn: vec![0.0; max_centers],
            buf: vec![0.0; CHUNK * kp],
        })
    }

    /// Load `centers` (`k x p`, k at most the `max_centers` of [`Scorer::new`]).
    fn set(&mut self, centers: &[f64]) -> Result<()> {
        let p = self.p;
        let k = centers.len() / p;
        self.k = k;
        self.kp = k.div_ceil(self.nr) * self.nr;
        let bt = &mut self.bt[..p * self.kp];
        bt.fill(0.0);
        for (j, c) in centers.chunks_exact(p).enumerate() {
            self.cn[j] = trueno::dot_f64(c, c)?;
            for (f, &v) in c.iter().enumerate() {
                bt[f * self.kp + j] = -2.0 * v;
            }
        }
        Ok(())
    }

    /// Cross terms of `rows` rows (`rows <= CHUNK`); row `r`'s scores are
    /// `buf[r * kp + j] + cn[j]` for `j < k`.
    fn chunk(&mut self, x: &[f64], rows: usize) -> Result<()> {
        let (p, kp) = (self.p, self.kp);
        trueno::matmul_f64(
            x,
            &self.bt[..p * kp],
            &mut self.buf[..rows * kp],
            rows,
            p,
            kp,
            1,
        )?;
        Ok(())
    }

    /// Nearest centre of chunk row `r` and its score (first index on ties, as NumPy's
    /// argmin).
    #[inline]
    fn nearest(&self, r: usize) -> (usize, f64) {
        let row = &self.buf[r * self.kp..r * self.kp + self.k];
        let mut best = (0, row[0] + self.cn[0]);
        for (j, (&g, &c)) in row.iter().zip(&self.cn[..self.k]).enumerate().skip(1) {
            let s = g + c;
            if s < best.1 {
                best = (j, s);
            }
        }
        best
    }
}

/// Squared norm of every row.
fn row_norms(x: &[f64], p: usize) -> Result<Vec<f64>> {
    x.chunks_exact(p)
        .map(|r| trueno::dot_f64(r, r).map_err(Error::from))
        .collect()
}

impl KMeans {
    pub fn fit(&self, x: &Matrix<'_>) -> Result<KMeansModel> {
        let (n, p, k) = (x.rows(), x.cols(), self.n_clusters);
        if k == 0 || k > n {
            return Err(Error::Parameter(format!(
                "n_clusters={k} must be in [1, n_samples={n}]"
            )));
        }
        if self.n_init == 0 || self.max_iter == 0 || self.tol.is_nan() || self.tol < 0.0 {
            return Err(Error::Parameter(format!(
                "n_init and max_iter must be >= 1 and tol >= 0, got {}, {}, {}",
                self.n_init, self.max_iter, self.tol
            )));
        }
        // Column means and variances, then the centred copy every run works on.
        let xt = x.transposed();
        let mut mean = Vec::with_capacity(p);
        let mut mean_var = 0.0;
        for col in xt.chunks_exact(n) {
            mean.push(trueno::mean_f64(col)?);
            mean_var += trueno::var_f64(col, 0)?;
        }
        drop(xt);
        let tol = self.tol * mean_var / p as f64;
        let mut xc = x.data().to_vec();
        for row in xc.chunks_exact_mut(p) {
            row.iter_mut().zip(&mean).for_each(|(v, m)| *v -= m);
        }
        let xn = row_norms(&xc, p)?;
        if let Some(i) = xn.iter().position(|v| !v.is_finite()) {
            return Err(Error::Parameter(format!(
                "row {i} of X is too large: its squared distance to the column means \
                 overflows f64 (rescale the data)"
            )));
        }
        let trials = 2 + (k as f64).ln() as usize;
        let mut ws = Work {
            x: &xc,
            xn: &xn,
            p,
            k,
            scorer: Scorer::new(p, k.max(trials))?,
            labels: vec![0; n],
            old_labels: vec![usize::MAX; n],
            dist: vec![0.0; n],
            sums: vec![0.0; k * p],
            counts: vec![0; k],
            order: Vec::new(),
        };
        let mut rng = Rng::new(self.seed);
        let mut best: Option<KMeansModel> = None;
        for _ in 0..self.n_init {
            let init = plusplus(&mut ws, trials, &mut rng)?;
            let run = ws.lloyd(init, self.max_iter, tol)?;
            if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
                best = Some(run);
            }
        }
        let mut best = best.ok_or_else(|| Error::Parameter("n_init must be >= 1".into()))?;
        for c in best.centers.chunks_exact_mut(p) {
            c.iter_mut().zip(&mean).for_each(|(v, m)| *v += m);
        }
        Ok(best)
    }
}

/// The buffers of one fit, shared by its `n_init` runs.
struct Work<'a> {
    /// The centred data and its squared row norms.
    x: &'a [f64],
    xn: &'a [f64],
    p: usize,
    k: usize,
    scorer: Scorer,
    labels: Vec<usize>,
    old_labels: Vec<usize>,
    /// Squared distance of each row to its centre (from the expansion, clamped at 0).
    dist: Vec<f64>,
    sums: Vec<f64>,
    counts: Vec<usize>,
    /// Row order by distance, filled only when a cluster is empty.
    order: Vec<usize>,
}

fn plusplus(ws: &mut Work<'_>, trials: usize, rng: &mut Rng) -> Result<Vec<f64>> {
    let (x, xn, p, k) = (ws.x, ws.xn, ws.p, ws.k);
    let n = xn.len();
    let mut centers = Vec::with_capacity(k * p);
    let first = rng.below(n);
    centers.extend_from_slice(&x[first * p..(first + 1) * p]);
    // Squared distance of every row to its nearest chosen centre.
    let closest = &mut ws.dist;
    ws.scorer.set(&centers)?;
    for (start, xch) in (0..n).step_by(CHUNK).zip(x.chunks(CHUNK * p)) {
        let rows = xch.len() / p;
        ws.scorer.chunk(xch, rows)?;
        for r in 0..rows {
            closest[start + r] = (xn[start + r] + ws.scorer.nearest(r).1).max(0.0);
        }
    }
    let mut potential = trueno::sum_f64(closest)?;
    let mut cumsum = vec![0.0; n];
    let mut cand = vec![0.0; trials * p];
    // Distance of every row to each candidate, and each candidate's potential.
    let mut cand_d = vec![0.0; n * trials];
    let mut pots = vec![0.0; trials];
    for _ in 1..k {
        // Draw candidates by inverse CDF of the squared distances (a zero-distance row
        // is never drawn: the first cumulative sum strictly above the draw).
        let mut acc = 0.0;
        for (c, &d) in cumsum.iter_mut().zip(closest.iter()) {
            acc += d;
            *c = acc;
        }
        for t in 0..trials {
            let r = rng.uniform() * potential;
            let i = cumsum.partition_point(|&c| c <= r).min(n - 1);
            cand[t * p..(t + 1) * p].copy_from_slice(&x[i * p..(i + 1) * p]);
        }
        ws.scorer.set(&cand)?;
        pots.fill(0.0);
        for (start, xch) in (0..n).step_by(CHUNK).zip(x.chunks(CHUNK * p)) {
            let rows = xch.len() / p;
            ws.scorer.chunk(xch, rows)?;
            let s = &ws.scorer;
            for r in 0..rows {
                let i = start + r;
                let g = &s.buf[r * s.kp..r * s.kp + trials];
                for (t, (&gt, &ct)) in g.iter().zip(&s.cn).enumerate() {
                    let d = (xn[i] + gt + ct).max(0.0).min(closest[i]);
                    cand_d[i * trials + t] = d;
                    pots[t] += d;
                }
            }
        }
        let best_t = (0..trials).fold(0, |b, t| if pots[t] < pots[b] { t } else { b });
        centers.extend_from_slice(&cand[best_t * p..(best_t + 1) * p]);
        for (c, d) in closest.iter_mut().zip(cand_d.chunks_exact(trials)) {
            *c = d[best_t];
        }
        potential = pots[best_t];
    }
    Ok(centers)
}

impl Work<'_> {
    /// One E-step (labels and distances from `centers`) and, with `update`, the sums
    /// and counts of the M-step, chunk by chunk.
    fn assign(&mut self, centers: &[f64], update: bool) -> Result<()> {
        let p = self.p;
        self.scorer.set(centers)?;
        self.sums.fill(0.0);
        self.counts.fill(0);
        for (start, xch) in (0..self.xn.len())
            .step_by(CHUNK)
            .zip(self.x.chunks(CHUNK * p))
        {
            let rows = xch.len() / p;
            self.scorer.chunk(xch, rows)?;
            for (r, row) in xch.chunks_exact(p).enumerate() {
                let i = start + r;
                let (j, s) = self.scorer.nearest(r);
                self.labels[i] = j;
                self.dist[i] = (self.xn[i] + s).max(0.0);
                if update {
                    self.counts[j] += 1;
                    // The row joins its centre's sum while the chunk is in cache.
                    self.sums[j * p..(j + 1) * p]
                        .iter_mut()
                        .zip(row)
                        .for_each(|(s, v)| *s += v);
                }
            }
        }
        Ok(())
    }

    /// Move the farthest rows into empty clusters, as scikit-learn's
    /// `_relocate_empty_clusters`: farthest first, each from a cluster that keeps a row.
    fn relocate_empty(&mut self) {
        let p = self.p;
        if !self.counts.contains(&0) {
            return;
        }
        let dist = &self.dist;
        self.order.clear();
        self.order.extend(0..dist.len());
        self.order
            .sort_unstable_by(|&a, &b| dist[b].total_cmp(&dist[a]).then(a.cmp(&b)));
        let mut far = 0;
        for c in 0..self.k {
            if self.counts[c] != 0 {
                continue;
            }
            while far < self.order.len() && self.counts[self.labels[self.order[far]]] <= 1 {
                far += 1;
            }
            let Some(&i) = self.order.get(far) else {
                return;
            };
            far += 1;
            let old = self.labels[i];
            let row = &self.x[i * p..(i + 1) * p];
            self.counts[old] -= 1;
            self.sums[old * p..(old + 1) * p]
                .iter_mut()
                .zip(row)
                .for_each(|(s, v)| *s -= v);
            self.counts[c] = 1;
            self.sums[c * p..(c + 1) * p].copy_from_slice(row);
            self.labels[i] = c;
        }
    }

    fn lloyd(&mut self, mut centers: Vec<f64>, max_iter: usize, tol: f64) -> Result<KMeansModel> {
        let (p, k) = (self.p, self.k);
        self.old_labels.fill(usize::MAX);
        let mut n_iter = 0;
        let mut strict = false;
        for it in 0..max_iter {
            n_iter = it + 1;
            self.assign(&centers, true)?;
            self.relocate_empty();
            let mut shift = 0.0;
            for c in 0..k {
                if self.counts[c] == 0 {
                    continue;
                }
                let inv = 1.0 / self.counts[c] as f64;
                for (v, &s) in centers[c * p..(c + 1) * p]
                    .iter_mut()
                    .zip(&self.sums[c * p..(c + 1) * p])
                {
                    let new = s * inv;
                    shift += (new - *v) * (new - *v);
                    *v = new;
                }
            }
            if self.labels == self.old_labels {
                strict = true;
                break;
            }
            if shift <= tol {
                break;
            }
            std::mem::swap(&mut self.labels, &mut self.old_labels);
        }
        if !strict {
            // Labels that match the final centres.
            self.assign(&centers, false)?;
        }
        Ok(KMeansModel {
            inertia: exact_inertia(self.x, &centers, &self.labels, p)?,
            labels: self.labels.clone(),
            centers,
            n_iter,
            n_features: p,
        })
    }
}

/// `sum_i |x_i - c_label(i)|^2` summed from the differences (no cancellation), by
/// chunks: gather the chunk's centres, subtract, one dot product of the residuals.
fn exact_inertia(x: &[f64], centers: &[f64], labels: &[usize], p: usize) -> Result<f64> {
    let mut gathered = vec![0.0; CHUNK.min(labels.len()) * p];
    let mut resid = gathered.clone();
    let mut total = 0.0;
    for (xch, lch) in x.chunks(CHUNK * p).zip(labels.chunks(CHUNK)) {
        let len = xch.len();
        for (g, &l) in gathered.chunks_exact_mut(p).zip(lch) {
            g.copy_from_slice(&centers[l * p..(l + 1) * p]);
        }
        trueno::sub_f64(xch, &gathered[..len], &mut resid[..len])?;
        total += trueno::dot_f64(&resid[..len], &resid[..len])?;
    }
    Ok(total)
}

impl KMeansModel {
    pub fn n_clusters(&self) -> usize {
        self.centers.len() / self.n_features
    }

    /// Nearest centre and its squared distance (from the expansion) for every row.
    fn nearest(&self, x: &Matrix<'_>) -> Result<(Vec<usize>, Vec<f64>)> {
        check_features(x, self.n_features, "KMeans")?;
        let p = self.n_features;
        let xn = row_norms(x.data(), p)?;
        let mut scorer = Scorer::new(p, self.n_clusters())?;
        scorer.set(&self.centers)?;
        let mut labels = Vec::with_capacity(x.rows());
        let mut dist = Vec::with_capacity(x.rows());
        for (start, xch) in (0..x.rows()).step_by(CHUNK).zip(x.data().chunks(CHUNK * p)) {
            let rows = xch.len() / p;
            scorer.chunk(xch, rows)?;
            for r in 0..rows {
                let (j, s) = scorer.nearest(r);
                labels.push(j);
                dist.push((xn[start + r] + s).max(0.0));
            }
        }
        Ok((labels, dist))
    }

    /// Index of the nearest centre of every row.
    pub fn predict(&self, x: &Matrix<'_>) -> Result<Vec<usize>> {
        Ok(self.nearest(x)?.0)
    }

    /// Sum of squared distances of the rows of `x` to their nearest centre.
    pub fn inertia_of(&self, x: &Matrix<'_>) -> Result<f64> {
        let labels = self.nearest(x)?.0;
        exact_inertia(x.data(), &self.centers, &labels, self.n_features)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};

    proptest! {
        /// Well separated blobs are found exactly, and no run ends worse than its own
        /// reassignment (Lloyd's fixed point: each centre is the mean of its points).
        #[test]
        fn finds_separated_blobs(seed: u64, k in 1usize..5, per in 3usize..20) {
            let mut rng = Rng::new(seed);
            let n = k * per;
            let x: Vec<f64> = (0..n).flat_map(|i| {
                let c = (i % k) as f64 * 100.0;
                [c + rng.uniform(), -c + rng.uniform()]
            }).collect();
            let m = Matrix::new(&x, n, 2).unwrap();
            let fit = KMeans { n_init: 3, seed, ..KMeans::new(k) }.fit(&m).unwrap();
            for i in 0..n { for j in 0..n {
                prop_assert_eq!(i % k == j % k, fit.labels[i] == fit.labels[j]);
            }}
            prop_assert!(fit.inertia < n as f64);
            prop_assert!((fit.inertia_of(&m).unwrap() - fit.inertia).abs() < 1e-6);
        }
    }

    /// Brute-force nearest centre: the scalar reference for the chunked GEMM scoring.
    fn brute(x: &[f64], c: &[f64], p: usize) -> Vec<(usize, f64)> {
        x.chunks_exact(p)
            .map(|r| {
                c.chunks_exact(p)
                    .map(|cj| {
                        r.iter()
                            .zip(cj)
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum::<f64>()
                    })
                    .enumerate()
                    .fold(
                        (0, f64::INFINITY),
                        |b, (j, d)| if d < b.1 { (j, d) } else { b },
                    )
            })
            .collect()
    }

    proptest! {
        /// Chunked, padded scoring (rows across chunk edges, centres across tile edges)
        /// finds the brute-force nearest centre and distance, and the exact inertia is
        /// the brute-force sum.
        #[test]
        fn nearest_matches_brute_force(
            seed: u64, n in 1usize..700, p in 1usize..7, k in 1usize..40,
        ) {
            let mut rng = Rng::new(seed);
            let x: Vec<f64> = (0..n * p).map(|_| rng.uniform() * 4.0 - 2.0).collect();
            let c: Vec<f64> = (0..k * p).map(|_| rng.uniform() * 4.0 - 2.0).collect();
            let model = KMeansModel {
                centers: c.clone(), labels: vec![], inertia: 0.0, n_iter: 0, n_features: p,
            };
            let m = Matrix::new(&x, n, p).unwrap();
            let (labels, dist) = model.nearest(&m).unwrap();
            let want = brute(&x, &c, p);
            for (i, &(j, d)) in want.iter().enumerate() {
                // A different index only on a near tie (rounding of the expansion).
                let dj: f64 = x[i * p..(i + 1) * p].iter().zip(&c[labels[i] * p..])
                    .map(|(a, b)| (a - b) * (a - b)).sum();
                prop_assert!(labels[i] == j || (dj - d).abs() < 1e-9, "row {}: {} vs {}", i, labels[i], j);
                prop_assert!((dist[i] - d).abs() < 1e-9);
            }
            let total: f64 = want.iter().map(|w| w.1).sum();
            prop_assert!((model.inertia_of(&m).unwrap() - total).abs() <= 1e-9 * total.max(1.0));
        }

        /// A fit ends at Lloyd's fixed point when run to strict convergence: labels are
        /// the nearest centres, centres the means of their points.
        #[test]
        fn fit_is_a_fixed_point(seed: u64, n in 2usize..400, k in 1usize..6) {
            let k = k.min(n);
            let mut rng = Rng::new(seed);
            let x: Vec<f64> = (0..n * 3).map(|_| rng.uniform()).collect();
            let m = Matrix::new(&x, n, 3).unwrap();
            let fit = KMeans { tol: 0.0, max_iter: 1000, seed, ..KMeans::new(k) }.fit(&m).unwrap();
            let near = brute(&x, &fit.centers, 3);
            let mut sums = vec![0.0; k * 3];
            let mut counts = vec![0usize; k];
            for (i, &l) in fit.labels.iter().enumerate() {
                prop_assert!(near[i].1 >= 0.0);
                let dl: f64 = (0..3).map(|f| (x[i * 3 + f] - fit.centers[l * 3 + f]).powi(2)).sum();
                prop_assert!(dl <= near[i].1 + 1e-9);
                counts[l] += 1;
                (0..3).for_each(|f| sums[l * 3 + f] += x[i * 3 + f]);
            }
            for j in 0..k {
                if counts[j] > 0 {
                    for f in 0..3 {
                        let mean = sums[j * 3 + f] / counts[j] as f64;
                        prop_assert!((mean - fit.centers[j * 3 + f]).abs() < 1e-9);
                    }
                }
            }
            let exact: f64 = near.iter().map(|w| w.1).sum();
            prop_assert!((fit.inertia - exact).abs() <= 1e-9 * exact.max(1.0));
        }
    }

    #[test]
    fn duplicates_and_huge_values() {
        // Two distinct points for three clusters: zero inertia, no panic, every label valid.
        let x = [1.0, 1.0, 1.0, 1.0, 9.0, 9.0];
        let m = Matrix::new(&x, 6, 1).unwrap();
        let fit = KMeans {
            n_init: 2,
            ..KMeans::new(3)
        }
        .fit(&m)
        .unwrap();
        assert_eq!(fit.inertia, 0.0);
        assert!(fit.labels.iter().all(|&l| l < 3));
        let big = [1e300, 0.0, -1e300, 0.0];
        let m = Matrix::new(&big, 2, 2).unwrap();
        assert!(matches!(KMeans::new(1).fit(&m), Err(Error::Parameter(_))));
    }

    #[test]
    fn errors_are_values() {
        let x = [0.0, 1.0, 2.0];
        let m = Matrix::new(&x, 3, 1).unwrap();
        assert!(matches!(KMeans::new(4).fit(&m), Err(Error::Parameter(_))));
        assert!(matches!(KMeans::new(0).fit(&m), Err(Error::Parameter(_))));
        let fit = KMeans::new(3).fit(&m).unwrap();
        assert!(fit.inertia.abs() < 1e-12);
        let wrong = Matrix::new(&[0.0, 1.0], 1, 2).unwrap();
        assert!(matches!(fit.predict(&wrong), Err(Error::Shape(_))));
    }
}
