//! Ordinary least squares and ridge regression, solved in closed form.
//!
//! Both minimise `||y - X w - b||^2 + alpha ||w||^2` (`alpha = 0` is least squares;
//! scikit-learn's `Ridge(alpha)` uses the same unscaled objective). With an intercept the
//! columns of X and y are centred first, so `b = mean(y) - mean(X) . w` and the
//! intercept is not penalised.
//!
//! Method: **Cholesky of the Gram matrix**, `(Xc^T Xc + alpha I) w = Xc^T y`. The Gram
//! matrix is one trueno GEMM (`O(n p^2)`, the only work that grows with the data) and the
//! `p x p` solve is tiny. The price is conditioning: the normal equations square the
//! condition number of X, so accuracy is about `cond(X)^2 * eps` (1e-12 on the bundled
//! datasets). A QR or SVD (what scikit-learn's `LinearRegression` calls through
//! `scipy.linalg.lstsq`) would keep `cond(X) * eps` and return a minimum-norm answer
//! for collinear columns; here collinear columns are reported as [`Error::Singular`],
//! with ridge (`alpha > 0`, always positive definite) as the remedy.

use crate::{Error, Matrix, Result, check_features, check_target};

/// Least squares: `LinearRegression` in scikit-learn.
#[derive(Debug, Clone)]
pub struct LinearRegression {
    pub fit_intercept: bool,
}

impl Default for LinearRegression {
    fn default() -> Self {
        LinearRegression {
            fit_intercept: true,
        }
    }
}

/// L2-penalised least squares: `Ridge(alpha)` in scikit-learn.
#[derive(Debug, Clone)]
pub struct Ridge {
    pub alpha: f64,
    pub fit_intercept: bool,
}

impl Default for Ridge {
    fn default() -> Self {
        Ridge {
            alpha: 1.0,
            fit_intercept: true,
        }
    }
}

/// A fitted linear model: `y = X . coef + intercept`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    pub coef: Vec<f64>,
    pub intercept: f64,
    /// `LinearRegression` or `Ridge`: the name the saved file records.
    pub estimator: &'static str,
}

impl LinearRegression {
    pub fn fit(&self, x: &Matrix<'_>, y: &[f64]) -> Result<LinearModel> {
        solve(x, y, 0.0, self.fit_intercept, "LinearRegression")
    }
}

impl Ridge {
    pub fn fit(&self, x: &Matrix<'_>, y: &[f64]) -> Result<LinearModel> {
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            return Err(Error::Parameter(format!(
                "alpha must be a finite number >= 0, got {}",
                self.alpha
            )));
        }
        solve(x, y, self.alpha, self.fit_intercept, "Ridge")
    }
}

/// Column means of X (zeros without an intercept).
pub(crate) fn column_means(x: &Matrix<'_>) -> Vec<f64> {
    let mut mean = vec![0.0; x.cols()];
    for r in 0..x.rows() {
        mean.iter_mut().zip(x.row(r)).for_each(|(m, v)| *m += v);
    }
    let n = x.rows() as f64;
    mean.iter_mut().for_each(|m| *m /= n);
    mean
}

fn solve(
    x: &Matrix<'_>,
    y: &[f64],
    alpha: f64,
    fit_intercept: bool,
    estimator: &'static str,
) -> Result<LinearModel> {
    check_target(x, y)?;
    let (n, p) = (x.rows(), x.cols());
    let (x_mean, y_mean) = if fit_intercept {
        (column_means(x), trueno::mean_f64(y)?)
    } else {
        (vec![0.0; p], 0.0)
    };
    // Centred X, stored transposed (p x n): both X^T X and X^T y are then row-major
    // products with X^T on the left.
    let mut xt = x.transposed();
    for (row, m) in xt.chunks_exact_mut(n).zip(&x_mean) {
        row.iter_mut().for_each(|v| *v -= m);
    }
    let yc: Vec<f64> = y.iter().map(|v| v - y_mean).collect();
    let xc = crate::transpose(&xt, p, n);
    let mut gram = vec![0.0; p * p];
    trueno::matmul_f64(&xt, &xc, &mut gram, p, n, p, 1)?;
    let mut w = vec![0.0; p];
    trueno::gemv_f64(&xt, &yc, &mut w, p, n)?;
    for j in 0..p {
        gram[j * p + j] += alpha;
    }
    let diag: Vec<f64> = (0..p).map(|j| gram[j * p + j]).collect();
    // A pivot that lost all but rounding noise of its column's norm marks a column that
    // is (numerically) a combination of the previous ones.
    let pivot_lost =
        |l: &[f64]| (0..p).find(|&j| l[j * p + j].powi(2) <= 1e3 * f64::EPSILON * diag[j]);
    match trueno::cholesky_f64(&mut gram, p).map(|()| pivot_lost(&gram)) {
        Ok(None) => {}
        Ok(Some(pivot)) | Err(trueno::Error::NotPositiveDefinite { pivot }) => {
            return Err(Error::Singular(format!(
                "X^T X is singular at column {pivot} (a constant or collinear feature, or fewer samples than features): use Ridge with alpha > 0"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    trueno::cholesky_solve_f64(&gram, p, &mut w)?;
    let intercept = if fit_intercept {
        y_mean - trueno::dot_f64(&x_mean, &w)?
    } else {
        0.0
    };
    Ok(LinearModel {
        coef: w,
        intercept,
        estimator,
    })
}

impl LinearModel {
    pub fn n_features(&self) -> usize {
        self.coef.len()
    }

    pub fn predict(&self, x: &Matrix<'_>) -> Result<Vec<f64>> {
        check_features(x, self.coef.len(), self.estimator)?;
        let mut out = vec![0.0; x.rows()];
        trueno::gemv_f64(x.data(), &self.coef, &mut out, x.rows(), x.cols())?;
        out.iter_mut().for_each(|v| *v += self.intercept);
        Ok(out)
    }

    /// Coefficient of determination of the predictions on `(x, y)`.
    pub fn score(&self, x: &Matrix<'_>, y: &[f64]) -> Result<f64> {
        crate::metrics::r2_score(y, &self.predict(x)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Noise-free data generated by a known plane is recovered exactly.
        #[test]
        fn recovers_a_plane(
            n in 5usize..60,
            w in proptest::collection::vec(-5.0f64..5.0, 1..5),
            b in -10.0f64..10.0,
            seed: u64,
        ) {
            let p = w.len();
            prop_assume!(n > p + 1);
            let mut rng = crate::rng::Rng::new(seed);
            let x: Vec<f64> = (0..n * p).map(|_| rng.uniform() * 4.0 - 2.0).collect();
            let y: Vec<f64> = x.chunks(p).map(|r| r.iter().zip(&w).map(|(a, c)| a * c).sum::<f64>() + b).collect();
            let m = Matrix::new(&x, n, p).unwrap();
            let fit = LinearRegression::default().fit(&m, &y).unwrap();
            for (got, want) in fit.coef.iter().zip(&w) {
                prop_assert!((got - want).abs() < 1e-6, "{got} vs {want}");
            }
            prop_assert!((fit.intercept - b).abs() < 1e-6);
        }

        /// Ridge shrinks: the coefficient norm never grows with alpha.
        #[test]
        fn ridge_shrinks(seed: u64, a1 in 0.0f64..10.0, a2 in 0.0f64..10.0) {
            let mut rng = crate::rng::Rng::new(seed);
            let (n, p) = (30, 3);
            let x: Vec<f64> = (0..n * p).map(|_| rng.uniform()).collect();
            let y: Vec<f64> = (0..n).map(|_| rng.uniform()).collect();
            let m = Matrix::new(&x, n, p).unwrap();
            let norm = |alpha| {
                let f = Ridge { alpha, fit_intercept: true }.fit(&m, &y).unwrap();
                f.coef.iter().map(|c| c * c).sum::<f64>()
            };
            let (lo, hi) = if a1 < a2 { (a1, a2) } else { (a2, a1) };
            prop_assert!(norm(hi) <= norm(lo) * (1.0 + 1e-9) + 1e-15);
        }
    }

    #[test]
    fn errors_are_values() {
        let x = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0];
        let m = Matrix::new(&x, 3, 2).unwrap();
        let err = LinearRegression::default().fit(&m, &[1.0, 2.0, 3.0]);
        assert!(matches!(err, Err(Error::Singular(_))), "{err:?}");
        assert!(Ridge::default().fit(&m, &[1.0, 2.0, 3.0]).is_ok());
        assert!(matches!(
            LinearRegression::default().fit(&m, &[1.0, 2.0]),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            LinearRegression::default().fit(&m, &[1.0, f64::NAN, 2.0]),
            Err(Error::NonFinite { what: "y", .. })
        ));
        assert!(matches!(
            Ridge {
                alpha: -1.0,
                fit_intercept: true
            }
            .fit(&m, &[1.0, 2.0, 3.0]),
            Err(Error::Parameter(_))
        ));
        assert!(matches!(Matrix::new(&[], 0, 2), Err(Error::Empty(_))));
        assert!(matches!(
            Matrix::new(&[1.0, f64::INFINITY], 1, 2),
            Err(Error::NonFinite {
                what: "X",
                row: 0,
                col: 1,
                ..
            })
        ));
    }
}
