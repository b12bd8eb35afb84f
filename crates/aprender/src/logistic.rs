//! L2-regularised logistic regression, binary and multinomial, fitted by L-BFGS.
//!
//! The objective is scikit-learn's `LogisticRegression(C, solver="lbfgs")` divided by
//! `C n` (the same minimiser, better scaled for the solver):
//!
//! `f(W, b) = mean_i loss_i + ||W||^2 / (2 C n)`
//!
//! with `loss_i = log(1 + e^{s_i}) - y_i s_i` on one score per row for two classes, and
//! `loss_i = logsumexp(s_i) - s_{i, y_i}` on one score per class for more (the
//! symmetric multinomial parametrisation: `K` coefficient rows, made unique by the
//! penalty). The intercept is not penalised. Scores `S = X W^T + b` and the gradient
//! `X^T (P - Y)` are two trueno GEMMs per evaluation (GEMVs for two classes, whose
//! `exp` and `log` are trueno's vectorised maps too); everything else is `O(n K)`.
//!
//! L-BFGS keeps the last `m = 10` steps and gradient changes and turns the gradient into
//! a quasi-Newton direction with the two-loop recursion; a backtracking (Armijo) line
//! search suffices because the objective is strictly convex, so every step keeps
//! `s . y > 0`. Starting from zero, every direction is a combination of gradients, whose
//! intercept parts sum to zero in the multinomial case: like scikit-learn, the fitted
//! intercepts sum to zero. It stops when the largest gradient entry is at most `tol`
//! (scipy's `pgtol`, the criterion scikit-learn passes its `tol` to) or when the line
//! search can no longer decrease `f` in floating point.

use crate::{Error, Labels, Matrix, Result, argmax, check_features};

/// Hyper-parameters, named and defaulted as in scikit-learn.
#[derive(Debug, Clone)]
pub struct LogisticRegression {
    /// Inverse regularisation strength (larger = weaker penalty).
    pub c: f64,
    pub fit_intercept: bool,
    pub max_iter: usize,
    pub tol: f64,
}

impl Default for LogisticRegression {
    fn default() -> Self {
        LogisticRegression {
            c: 1.0,
            fit_intercept: true,
            max_iter: 100,
            tol: 1e-4,
        }
    }
}

/// A fitted model: `coef` is `n_scores x n_features` (one row for two classes).
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticModel {
    pub classes: Vec<i64>,
    pub coef: Vec<f64>,
    pub intercept: Vec<f64>,
    pub n_features: usize,
    pub n_iter: usize,
    pub converged: bool,
}

/// What the solver minimises: data, labels and the penalty weight.
struct Problem<'a> {
    x: &'a [f64],
    xt: Vec<f64>,
    codes: &'a [usize],
    n: usize,
    p: usize,
    /// Scores per row: 1 (binary) or the number of classes.
    k: usize,
    penalty: f64,
    fit_intercept: bool,
    /// The two-class evaluation's three `n`-vectors, reused across evaluations.
    scratch: std::cell::RefCell<[Vec<f64>; 3]>,
}

impl Problem<'_> {
    fn dim(&self) -> usize {
        self.k * self.p + self.k
    }

    /// Objective and gradient at `theta = [W (k x p), b (k)]`.
    fn eval(&self, theta: &[f64], grad: &mut [f64]) -> Result<f64> {
        if self.k == 1 {
            return self.eval_binary(theta, grad);
        }
        let (n, p, k) = (self.n, self.p, self.k);
        let (w, b) = theta.split_at(k * p);
        let wt = crate::transpose(w, k, p);
        let mut s = vec![0.0; n * k];
        trueno::matmul_f64(self.x, &wt, &mut s, n, p, k, 1)?;
        let mut loss = 0.0;
        // s becomes the residual P - Y in place.
        for (row, &y) in s.chunks_exact_mut(k).zip(self.codes) {
            row.iter_mut().zip(b).for_each(|(v, bk)| *v += bk);
            {
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0.0;
                for v in row.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v;
                }
                loss += max + sum.ln() - (max + row[y].ln());
                row.iter_mut().for_each(|v| *v /= sum);
                row[y] -= 1.0;
            }
        }
        let mut gwt = vec![0.0; p * k];
        trueno::matmul_f64(&self.xt, &s, &mut gwt, p, n, k, 1)?;
        let inv_n = 1.0 / n as f64;
        let (gw, gb) = grad.split_at_mut(k * p);
        for c in 0..k {
            for j in 0..p {
                gw[c * p + j] = gwt[j * k + c] * inv_n + self.penalty * w[c * p + j];
            }
        }
        gb.fill(0.0);
        if self.fit_intercept {
            for row in s.chunks_exact(k) {
                gb.iter_mut().zip(row).for_each(|(g, r)| *g += r);
            }
            gb.iter_mut().for_each(|g| *g *= inv_n);
        }
        Ok(loss * inv_n + 0.5 * self.penalty * trueno::dot_f64(w, w)?)
    }

    /// The two-class objective with its transcendentals as trueno's vectorised maps:
    /// with `e = exp(-|z|)`, `log(1 + e^z) = max(z, 0) + log(1 + e)` and
    /// `sigmoid(z) = 1 / (1 + e)` (z >= 0) or `e / (1 + e)`, so one `exp` and one `log`
    /// over the scores replace three libm calls per row (scikit-learn's loss is
    /// vectorised NumPy too).
    fn eval_binary(&self, theta: &[f64], grad: &mut [f64]) -> Result<f64> {
        let (n, p) = (self.n, self.p);
        let (w, b) = theta.split_at(p);
        let mut bufs = self.scratch.borrow_mut();
        let [z, a, e] = &mut *bufs;
        for v in [&mut *z, &mut *a, &mut *e] {
            v.resize(n, 0.0);
        }
        trueno::gemv_f64(self.x, w, z, n, p)?;
        let mut linear = 0.0;
        for ((zi, ai), &y) in z.iter_mut().zip(a.iter_mut()).zip(self.codes) {
            *zi += b[0];
            *ai = -zi.abs();
            linear += zi.max(0.0) - if y == 1 { *zi } else { 0.0 };
        }
        trueno::exp_f64(a, e)?;
        // z becomes the residual sigmoid(z) - y; a becomes 1 + e, then log(1 + e).
        for (((zi, ai), &ei), &y) in z.iter_mut().zip(a.iter_mut()).zip(e.iter()).zip(self.codes) {
            let t = if y == 1 { 1.0 } else { 0.0 };
            *ai = 1.0 + ei;
            *zi = if *zi >= 0.0 { 1.0 / *ai } else { ei / *ai } - t;
        }
        trueno::log_f64(a, e)?;
        let loss = linear + trueno::sum_f64(e)?;
        let inv_n = 1.0 / n as f64;
        let (gw, gb) = grad.split_at_mut(p);
        trueno::gemv_f64(&self.xt, z, gw, p, n)?;
        gw.iter_mut()
            .zip(w)
            .for_each(|(g, wj)| *g = *g * inv_n + self.penalty * wj);
        gb[0] = if self.fit_intercept {
            trueno::sum_f64(z)? * inv_n
        } else {
            0.0
        };
        Ok(loss * inv_n + 0.5 * self.penalty * trueno::dot_f64(w, w)?)
    }
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Minimise `problem` from zero with L-BFGS: returns `(theta, iterations, converged)`.
fn lbfgs(problem: &Problem<'_>, max_iter: usize, tol: f64) -> Result<(Vec<f64>, usize, bool)> {
    const MEMORY: usize = 10;
    let d = problem.dim();
    let mut x = vec![0.0; d];
    let mut g = vec![0.0; d];
    let mut f = problem.eval(&x, &mut g)?;
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> =
        std::collections::VecDeque::new();
    let (mut x_new, mut g_new) = (vec![0.0; d], vec![0.0; d]);
    for iter in 0..max_iter {
        if max_abs(&g) <= tol {
            return Ok((x, iter, true));
        }
        // Two-loop recursion: dir = -H g.
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let a = rho * trueno::dot_f64(s, &q)?;
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
            alphas.push(a);
        }
        let gamma = match history.back() {
            Some((s, y, _)) => trueno::dot_f64(s, y)? / trueno::dot_f64(y, y)?,
            // First step: a unit-length move along -g.
            None => 1.0 / trueno::norm_f64(&g)?.max(1.0),
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
            let beta = rho * trueno::dot_f64(y, &q)?;
            q.iter_mut()
                .zip(s)
                .for_each(|(qi, si)| *qi += (a - beta) * si);
        }
        let dir: Vec<f64> = q.iter().map(|v| -v).collect();
        let slope = trueno::dot_f64(&g, &dir)?;
        if slope >= 0.0 {
            // Not a descent direction (rounding): restart from steepest descent.
            history.clear();
            continue;
        }
        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..60 {
            x_new
                .iter_mut()
                .zip(&x)
                .zip(&dir)
                .for_each(|((n, xi), di)| *n = xi + step * di);
            let f_new = problem.eval(&x_new, &mut g_new)?;
            if f_new <= f + 1e-4 * step * slope {
                accepted = Some(f_new);
                break;
            }
            step *= 0.5;
        }
        let Some(f_new) = accepted else {
            // No representable decrease left: the minimum to working precision.
            return Ok((x, iter, true));
        };
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = trueno::dot_f64(&s, &y)?;
        if sy > 1e-300 {
            if history.len() == MEMORY {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
        let decrease = f - f_new;
        f = f_new;
        if decrease <= f64::EPSILON * f.abs().max(1.0) && max_abs(&g) <= tol.max(1e-12) * 1e3 {
            return Ok((x, iter + 1, true));
        }
    }
    let done = max_abs(&g) <= tol;
    Ok((x, max_iter, done))
}

impl LogisticRegression {
    pub fn fit(&self, x: &Matrix<'_>, y: &[i64]) -> Result<LogisticModel> {
        if !(self.c > 0.0 && self.c.is_finite()) {
            return Err(Error::Parameter(format!(
                "C must be a finite number > 0, got {}",
                self.c
            )));
        }
        if self.tol.is_nan() || self.tol < 0.0 || self.max_iter == 0 {
            return Err(Error::Parameter(format!(
                "tol must be >= 0 and max_iter >= 1, got tol={} max_iter={}",
                self.tol, self.max_iter
            )));
        }
        let labels = Labels::encode(y, x.rows())?;
        let n_classes = labels.classes.len();
        let k = if n_classes == 2 { 1 } else { n_classes };
        let (n, p) = (x.rows(), x.cols());
        let problem = Problem {
            x: x.data(),
            xt: x.transposed(),
            codes: &labels.codes,
            n,
            p,
            k,
            penalty: 1.0 / (self.c * n as f64),
            fit_intercept: self.fit_intercept,
            scratch: Default::default(),
        };
        let (theta, n_iter, converged) = lbfgs(&problem, self.max_iter, self.tol)?;
        let (coef, intercept) = theta.split_at(k * p);
        Ok(LogisticModel {
            classes: labels.classes,
            coef: coef.to_vec(),
            intercept: intercept.to_vec(),
            n_features: p,
            n_iter,
            converged,
        })
    }
}

impl LogisticModel {
    fn n_scores(&self) -> usize {
        self.intercept.len()
    }

    /// Raw scores `X coef^T + intercept`, `rows x n_scores`.
    pub fn decision_function(&self, x: &Matrix<'_>) -> Result<Vec<f64>> {
        check_features(x, self.n_features, "LogisticRegression")?;
        let k = self.n_scores();
        let wt = crate::transpose(&self.coef, k, self.n_features);
        let mut s = vec![0.0; x.rows() * k];
        trueno::matmul_f64(x.data(), &wt, &mut s, x.rows(), x.cols(), k, 1)?;
        for row in s.chunks_exact_mut(k) {
            row.iter_mut()
                .zip(&self.intercept)
                .for_each(|(v, b)| *v += b);
        }
        Ok(s)
    }

    /// Class probabilities, `rows x n_classes`, columns in `classes` order.
    pub fn predict_proba(&self, x: &Matrix<'_>) -> Result<Vec<f64>> {
        let s = self.decision_function(x)?;
        let c = self.classes.len();
        if self.n_scores() == 1 {
            return Ok(s
                .iter()
                .flat_map(|&z| {
                    let p = sigmoid(z);
                    [1.0 - p, p]
                })
                .collect());
        }
        let mut out = s;
        for row in out.chunks_exact_mut(c) {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0.0;
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                sum += *v;
            }
            row.iter_mut().for_each(|v| *v /= sum);
        }
        Ok(out)
    }

    /// Predicted labels.
    pub fn predict(&self, x: &Matrix<'_>) -> Result<Vec<i64>> {
        let proba = self.predict_proba(x)?;
        Ok(proba
            .chunks_exact(self.classes.len())
            .map(|row| self.classes[argmax(row)])
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use proptest::prelude::{prop_assert, prop_assume, proptest};

    fn blobs(n: usize, k: usize, seed: u64) -> (Vec<f64>, Vec<i64>) {
        let mut rng = Rng::new(seed);
        let mut x = vec![];
        let mut y = vec![];
        for i in 0..n {
            let c = i % k;
            x.push(c as f64 + rng.uniform() * 1.5);
            x.push((c as f64 * 1.7).sin() + rng.uniform() * 1.5);
            y.push(c as i64 * 10);
        }
        (x, y)
    }

    proptest! {
        /// At the optimum the gradient of the objective vanishes (checked by finite
        /// differences, independent of the analytic gradient).
        #[test]
        fn optimum_is_stationary(seed: u64, k in 2usize..5, c in 0.05f64..20.0) {
            let (x, y) = blobs(60, k, seed);
            let m = Matrix::new(&x, 60, 2).unwrap();
            let fit = LogisticRegression { c, max_iter: 500, tol: 1e-10, ..Default::default() }.fit(&m, &y).unwrap();
            prop_assume!(fit.converged);
            let labels = Labels::encode(&y, 60).unwrap();
            let kk = if k == 2 { 1 } else { k };
            let problem = Problem { x: &x, xt: m.transposed(), codes: &labels.codes, n: 60, p: 2, k: kk, penalty: 1.0 / (c * 60.0), fit_intercept: true, scratch: Default::default() };
            let theta: Vec<f64> = fit.coef.iter().chain(&fit.intercept).copied().collect();
            let mut g = vec![0.0; theta.len()];
            for i in 0..theta.len() {
                let h = 1e-5;
                let (mut a, mut b) = (theta.clone(), theta.clone());
                a[i] += h;
                b[i] -= h;
                let fd = (problem.eval(&a, &mut g).unwrap() - problem.eval(&b, &mut g).unwrap()) / (2.0 * h);
                prop_assert!(fd.abs() < 1e-7, "d f / d theta[{}] = {}", i, fd);
            }
            let proba = fit.predict_proba(&m).unwrap();
            for row in proba.chunks(k) {
                prop_assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
            if k > 2 {
                prop_assert!(fit.intercept.iter().sum::<f64>().abs() < 1e-8);
            }
        }
    }

    proptest! {
        /// The vectorised two-class objective equals the scalar libm formulas
        /// (`log1p`, `exp`, one sigmoid per row) it replaced, loss and gradient.
        #[test]
        fn binary_objective_matches_scalar_reference(
            seed: u64, n in 1usize..300, w0 in -30.0f64..30.0, w1 in -30.0f64..30.0,
            b0 in -5.0f64..5.0, intercept: bool,
        ) {
            let (x, y) = blobs(n, 2, seed);
            let m = Matrix::new(&x, n, 2).unwrap();
            let codes: Vec<usize> = y.iter().map(|&v| usize::from(v != 0)).collect();
            let penalty = 0.01;
            let problem = Problem { x: &x, xt: m.transposed(), codes: &codes, n, p: 2, k: 1, penalty, fit_intercept: intercept, scratch: Default::default() };
            let theta = [w0, w1, b0];
            let mut g = [0.0; 3];
            let f = problem.eval(&theta, &mut g).unwrap();
            let (mut rf, mut rg) = (0.0, [0.0; 3]);
            for i in 0..n {
                let z = x[2 * i] * w0 + x[2 * i + 1] * w1 + b0;
                let t = codes[i] as f64;
                rf += z.max(0.0) + (-z.abs()).exp().ln_1p() - t * z;
                let r = sigmoid(z) - t;
                rg[0] += r * x[2 * i];
                rg[1] += r * x[2 * i + 1];
                rg[2] += r;
            }
            let inv = 1.0 / n as f64;
            rf = rf * inv + 0.5 * penalty * (w0 * w0 + w1 * w1);
            let want_g = [rg[0] * inv + penalty * w0, rg[1] * inv + penalty * w1, if intercept { rg[2] * inv } else { 0.0 }];
            prop_assert!((f - rf).abs() <= 1e-12 * rf.abs().max(1.0), "{} vs {}", f, rf);
            for j in 0..3 {
                prop_assert!((g[j] - want_g[j]).abs() <= 1e-12 * want_g[j].abs().max(1.0), "{:?} vs {:?}", g, want_g);
            }
        }
    }

    #[test]
    fn errors_are_values() {
        let (x, _) = blobs(10, 2, 0);
        let m = Matrix::new(&x, 10, 2).unwrap();
        let fit = |y: &[i64]| LogisticRegression::default().fit(&m, y);
        assert!(matches!(fit(&[3; 10]), Err(Error::OneClass { label: 3 })));
        assert!(matches!(fit(&[0, 1]), Err(Error::Shape(_))));
        let bad_c = LogisticRegression {
            c: 0.0,
            ..Default::default()
        }
        .fit(&m, &[0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
        assert!(matches!(bad_c, Err(Error::Parameter(_))));
        let ok = fit(&[0, 1, 0, 1, 0, 1, 0, 1, 0, 1]).unwrap();
        let wrong = Matrix::new(&x[..9], 3, 3).unwrap();
        assert!(matches!(ok.predict(&wrong), Err(Error::Shape(_))));
    }
}
