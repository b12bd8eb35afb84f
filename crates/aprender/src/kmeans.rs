//! k-means: k-means++ seeding, then Lloyd's iterations (assign every point to its
//! nearest centre, move every centre to the mean of its points), best of `n_init` runs.
//!
//! As scikit-learn's `KMeans(algorithm="lloyd")`:
//! * k-means++ is the greedy variant: each new centre is the best (lowest potential) of
//!   `2 + ln k` candidates drawn with probability proportional to the squared distance
//!   to the nearest chosen centre;
//! * `tol` is relative to the data: iterations stop when the squared centre shift
//!   summed over centres is at most `tol * mean(var(X, axis=0))`, or when the labels no
//!   longer change, or after `max_iter`; a final assignment matches labels to centres;
//! * an empty cluster is re-seeded at the point farthest from its centre.
//!
//! Squared distances are `|x|^2 - 2 x.c + |c|^2` with the cross term one trueno GEMM
//! `X C^T` per iteration (the whole cost of an iteration), clamped at zero against
//! cancellation. The stream is aprender's seeded generator, not NumPy's, so the runs
//! differ from scikit-learn's; the test compares the best inertia.

use crate::rng::Rng;
use crate::{Error, Matrix, Result, check_features};

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
    pub n_iter: usize,
    pub n_features: usize,
}

/// Squared distances of every row of `x` (with squared norms `xn`) to every centre:
/// `n x k`.
fn distances(x: &Matrix<'_>, xn: &[f64], centers: &[f64], k: usize) -> Result<Vec<f64>> {
    let (n, p) = (x.rows(), x.cols());
    let ct = crate::transpose(centers, k, p);
    let mut d = vec![0.0; n * k];
    trueno::matmul_f64(x.data(), &ct, &mut d, n, p, k, 1)?;
    let cn: Vec<f64> = centers
        .chunks_exact(p)
        .map(|c| trueno::dot_f64(c, c))
        .collect::<std::result::Result<_, _>>()?;
    for (row, &xi) in d.chunks_exact_mut(k).zip(xn) {
        row.iter_mut()
            .zip(&cn)
            .for_each(|(v, &c)| *v = (xi - 2.0 * *v + c).max(0.0));
    }
    Ok(d)
}

/// Nearest centre and its squared distance for every row.
fn assign(d: &[f64], k: usize) -> (Vec<usize>, Vec<f64>) {
    d.chunks_exact(k)
        .map(|row| {
            let j = row
                .iter()
                .enumerate()
                .fold(0, |b, (j, v)| if *v < row[b] { j } else { b });
            (j, row[j])
        })
        .unzip()
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
        let xn: Vec<f64> = (0..n)
            .map(|i| trueno::dot_f64(x.row(i), x.row(i)))
            .collect::<std::result::Result<_, _>>()?;
        let xt = x.transposed();
        let mut mean_var = 0.0;
        for col in xt.chunks_exact(n) {
            mean_var += trueno::var_f64(col, 0)?;
        }
        let tol = self.tol * mean_var / p as f64;
        let mut rng = Rng::new(self.seed);
        let mut best: Option<KMeansModel> = None;
        for _ in 0..self.n_init {
            let init = plusplus(x, &xn, k, &mut rng)?;
            let run = lloyd(x, &xn, init, k, self.max_iter, tol)?;
            if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
                best = Some(run);
            }
        }
        best.ok_or_else(|| Error::Parameter("n_init must be >= 1".into()))
    }
}

fn plusplus(x: &Matrix<'_>, xn: &[f64], k: usize, rng: &mut Rng) -> Result<Vec<f64>> {
    let (n, p) = (x.rows(), x.cols());
    let trials = 2 + (k as f64).ln() as usize;
    let mut centers = Vec::with_capacity(k * p);
    centers.extend_from_slice(x.row(rng.below(n)));
    let mut closest = distances(x, xn, &centers, 1)?;
    let mut potential: f64 = closest.iter().sum();
    for _ in 1..k {
        // Draw candidates by inverse CDF of the squared distances.
        let mut cumsum = Vec::with_capacity(n);
        let mut acc = 0.0;
        for &d in &closest {
            acc += d;
            cumsum.push(acc);
        }
        let mut cand = Vec::with_capacity(trials * p);
        for _ in 0..trials {
            let r = rng.uniform() * potential;
            let i = cumsum.partition_point(|&c| c <= r).min(n - 1);
            cand.extend_from_slice(x.row(i));
        }
        let d = distances(x, xn, &cand, trials)?;
        let (mut best_t, mut best_pot, mut best_col) = (0, f64::INFINITY, vec![]);
        for t in 0..trials {
            let col: Vec<f64> = (0..n).map(|i| closest[i].min(d[i * trials + t])).collect();
            let pot: f64 = col.iter().sum();
            if pot < best_pot {
                (best_t, best_pot, best_col) = (t, pot, col);
            }
        }
        centers.extend_from_slice(&cand[best_t * p..(best_t + 1) * p]);
        closest = best_col;
        potential = best_pot;
    }
    Ok(centers)
}

fn lloyd(
    x: &Matrix<'_>,
    xn: &[f64],
    mut centers: Vec<f64>,
    k: usize,
    max_iter: usize,
    tol: f64,
) -> Result<KMeansModel> {
    let (n, p) = (x.rows(), x.cols());
    let mut labels = vec![usize::MAX; n];
    let mut n_iter = 0;
    for it in 0..max_iter {
        n_iter = it + 1;
        let d = distances(x, xn, &centers, k)?;
        let (new_labels, dist) = assign(&d, k);
        let mut sums = vec![0.0; k * p];
        let mut counts = vec![0usize; k];
        for (i, &c) in new_labels.iter().enumerate() {
            counts[c] += 1;
            sums[c * p..(c + 1) * p]
                .iter_mut()
                .zip(x.row(i))
                .for_each(|(s, v)| *s += v);
        }
        let mut new_labels = new_labels;
        // Empty clusters take the points farthest from their centres.
        let mut far: Vec<usize> = (0..n).collect();
        far.sort_by(|&a, &b| dist[b].total_cmp(&dist[a]));
        let mut next_far = far.into_iter();
        for c in 0..k {
            if counts[c] == 0
                && let Some(i) = next_far.find(|&i| counts[new_labels[i]] > 1)
            {
                {
                    let old = new_labels[i];
                    counts[old] -= 1;
                    sums[old * p..(old + 1) * p]
                        .iter_mut()
                        .zip(x.row(i))
                        .for_each(|(s, v)| *s -= v);
                    counts[c] = 1;
                    sums[c * p..(c + 1) * p].copy_from_slice(x.row(i));
                    new_labels[i] = c;
                }
            }
        }
        let mut shift = 0.0;
        for c in 0..k {
            if counts[c] == 0 {
                continue;
            }
            for j in 0..p {
                let v = sums[c * p + j] / counts[c] as f64;
                shift += (v - centers[c * p + j]).powi(2);
                centers[c * p + j] = v;
            }
        }
        let unchanged = new_labels == labels;
        labels = new_labels;
        if unchanged || shift <= tol {
            break;
        }
    }
    // Labels and inertia that match the final centres.
    let d = distances(x, xn, &centers, k)?;
    let (labels, dist) = assign(&d, k);
    Ok(KMeansModel {
        centers,
        labels,
        inertia: dist.iter().sum(),
        n_iter,
        n_features: p,
    })
}

impl KMeansModel {
    pub fn n_clusters(&self) -> usize {
        self.centers.len() / self.n_features
    }

    /// Index of the nearest centre of every row.
    pub fn predict(&self, x: &Matrix<'_>) -> Result<Vec<usize>> {
        check_features(x, self.n_features, "KMeans")?;
        let xn: Vec<f64> = (0..x.rows())
            .map(|i| trueno::dot_f64(x.row(i), x.row(i)))
            .collect::<std::result::Result<_, _>>()?;
        let d = distances(x, &xn, &self.centers, self.n_clusters())?;
        Ok(assign(&d, self.n_clusters()).0)
    }

    /// Sum of squared distances of the rows of `x` to their nearest centre.
    pub fn inertia_of(&self, x: &Matrix<'_>) -> Result<f64> {
        check_features(x, self.n_features, "KMeans")?;
        let xn: Vec<f64> = (0..x.rows())
            .map(|i| trueno::dot_f64(x.row(i), x.row(i)))
            .collect::<std::result::Result<_, _>>()?;
        let d = distances(x, &xn, &self.centers, self.n_clusters())?;
        Ok(assign(&d, self.n_clusters()).1.iter().sum())
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
