//! Preparing data: standard scaling and train/test splits.
//!
//! [`StandardScaler`] centres each column and divides by its population standard
//! deviation (`ddof = 0`), leaving constant columns unscaled (scale 1), as scikit-learn
//! does. [`train_test_split`] shuffles row indices with a seed; the stratified form keeps
//! each class's share in both parts (per-class test counts by largest remainder, the
//! rule of scikit-learn's `StratifiedShuffleSplit`).

use crate::rng::Rng;
use crate::{Error, Matrix, Result, check_features};

/// Per-column mean and scale learned from training data.
#[derive(Debug, Clone, PartialEq)]
pub struct StandardScaler {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub var: Vec<f64>,
}

impl StandardScaler {
    pub fn fit(x: &Matrix<'_>) -> Result<Self> {
        let xt = x.transposed();
        let n = x.rows();
        let (mut mean, mut var, mut scale) = (vec![], vec![], vec![]);
        for col in xt.chunks_exact(n) {
            let v = trueno::var_f64(col, 0)?;
            mean.push(trueno::mean_f64(col)?);
            var.push(v);
            // scikit-learn's `_is_constant_feature`: a variance within rounding of zero
            // marks a constant column, which is left unscaled instead of blown up.
            let m = mean[mean.len() - 1];
            let eps = f64::EPSILON;
            let bound = n as f64 * eps * v + (n as f64 * m * eps).powi(2);
            scale.push(if v > bound { v.sqrt() } else { 1.0 });
        }
        Ok(StandardScaler { mean, scale, var })
    }

    pub fn transform(&self, x: &Matrix<'_>) -> Result<Vec<f64>> {
        check_features(x, self.mean.len(), "StandardScaler")?;
        let mut out = x.data().to_vec();
        for row in out.chunks_exact_mut(x.cols()) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = (*v - m) / s;
            }
        }
        Ok(out)
    }

    pub fn inverse_transform(&self, x: &Matrix<'_>) -> Result<Vec<f64>> {
        check_features(x, self.mean.len(), "StandardScaler")?;
        let mut out = x.data().to_vec();
        for row in out.chunks_exact_mut(x.cols()) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = *v * s + m;
            }
        }
        Ok(out)
    }
}

/// How many rows go to the test part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TestSize {
    /// A fraction in (0, 1), rounded up (scikit-learn's rule).
    Fraction(f64),
    /// An absolute number of rows.
    Count(usize),
}

/// Shuffled `(train, test)` row indices. With `stratify` (one label per row) each class
/// is split in proportion.
pub fn train_test_split(
    n: usize,
    test_size: TestSize,
    seed: u64,
    stratify: Option<&[i64]>,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if n == 0 {
        return Err(Error::Empty("cannot split 0 samples".into()));
    }
    let n_test = match test_size {
        TestSize::Fraction(f) if f > 0.0 && f < 1.0 => (f * n as f64).ceil() as usize,
        TestSize::Fraction(f) => {
            return Err(Error::Parameter(format!(
                "test_size={f} should be a fraction in (0, 1) or a count"
            )));
        }
        TestSize::Count(c) => c,
    };
    if n_test == 0 || n_test >= n {
        return Err(Error::Parameter(format!(
            "with n_samples={n} and test_size={test_size:?}, the test set would have {n_test} and the train set {} samples: both must be non-empty",
            n.saturating_sub(n_test)
        )));
    }
    let mut rng = Rng::new(seed);
    let Some(y) = stratify else {
        let mut idx: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut idx);
        let test = idx.split_off(n - n_test);
        return Ok((idx, test));
    };
    if y.len() != n {
        return Err(Error::Shape(format!(
            "stratify has {} labels for {n} samples",
            y.len()
        )));
    }
    let mut classes = y.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let members: Vec<Vec<usize>> = classes
        .iter()
        .map(|c| (0..n).filter(|&i| y[i] == *c).collect())
        .collect();
    if let Some((c, _)) = classes.iter().zip(&members).find(|(_, m)| m.len() < 2) {
        return Err(Error::Parameter(format!(
            "class {c} has only 1 member: stratification needs at least 2 per class"
        )));
    }
    if n_test < classes.len() || n - n_test < classes.len() {
        return Err(Error::Parameter(format!(
            "test and train sizes must both be at least the number of classes ({})",
            classes.len()
        )));
    }
    // Largest remainder: floor of each share, then the leftover rows to the classes with
    // the largest fractional parts (lowest class first on a tie).
    let shares: Vec<f64> = members
        .iter()
        .map(|m| n_test as f64 * m.len() as f64 / n as f64)
        .collect();
    let mut counts: Vec<usize> = shares.iter().map(|s| s.floor() as usize).collect();
    let mut order: Vec<usize> = (0..classes.len()).collect();
    order.sort_by(|&a, &b| {
        (shares[b] - shares[b].floor()).total_cmp(&(shares[a] - shares[a].floor()))
    });
    let mut left = n_test - counts.iter().sum::<usize>();
    for &c in order.iter().cycle() {
        if left == 0 {
            break;
        }
        if counts[c] < members[c].len() - 1 {
            counts[c] += 1;
            left -= 1;
        }
    }
    let (mut train, mut test) = (vec![], vec![]);
    for (mut m, count) in members.into_iter().zip(counts) {
        rng.shuffle(&mut m);
        test.extend_from_slice(&m[..count]);
        train.extend_from_slice(&m[count..]);
    }
    rng.shuffle(&mut train);
    rng.shuffle(&mut test);
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert, prop_assert_eq, prop_assume, proptest};

    proptest! {
        #[test]
        fn split_is_a_partition(n in 2usize..300, frac in 0.05f64..0.95, seed: u64) {
            let n_test = (frac * n as f64).ceil() as usize;
            prop_assume!(n_test < n);
            let (train, test) = train_test_split(n, TestSize::Fraction(frac), seed, None).unwrap();
            prop_assert_eq!(test.len(), n_test);
            let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..n).collect::<Vec<_>>());
        }

        #[test]
        fn stratified_keeps_proportions(counts in proptest::collection::vec(2usize..40, 2..5), seed: u64) {
            let y: Vec<i64> = counts.iter().enumerate().flat_map(|(c, &k)| std::iter::repeat_n(c as i64, k)).collect();
            let n = y.len();
            prop_assume!((0.25 * n as f64).ceil() as usize >= counts.len());
            let (train, test) = train_test_split(n, TestSize::Fraction(0.25), seed, Some(&y)).unwrap();
            prop_assert_eq!(train.len() + test.len(), n);
            for (c, &k) in counts.iter().enumerate() {
                let in_test = test.iter().filter(|&&i| y[i] == c as i64).count() as f64;
                let want = test.len() as f64 * k as f64 / n as f64;
                prop_assert!((in_test - want).abs() <= 1.0 + 1e-9, "class {c}: {in_test} vs {want}");
            }
        }

        #[test]
        fn scaler_gives_zero_mean_unit_variance(seed: u64, n in 2usize..50) {
            let mut rng = Rng::new(seed);
            let x: Vec<f64> = (0..n * 3).map(|i| rng.uniform() * 100.0 + if i % 3 == 2 { 7.0 } else { 0.0 }).collect();
            let m = Matrix::new(&x, n, 3).unwrap();
            let s = StandardScaler::fit(&m).unwrap();
            let z = s.transform(&m).unwrap();
            let back = s.inverse_transform(&Matrix::new(&z, n, 3).unwrap()).unwrap();
            for (a, b) in back.iter().zip(&x) { prop_assert!((a - b).abs() < 1e-9); }
            for j in 0..3 {
                let col: Vec<f64> = z.iter().skip(j).step_by(3).copied().collect();
                let mean = col.iter().sum::<f64>() / n as f64;
                prop_assert!(mean.abs() < 1e-9);
            }
        }
    }

    #[test]
    fn constant_column_keeps_scale_one() {
        let x = [1.0, 5.0, 2.0, 5.0, 3.0, 5.0];
        let s = StandardScaler::fit(&Matrix::new(&x, 3, 2).unwrap()).unwrap();
        assert_eq!(s.scale[1], 1.0);
        assert!(train_test_split(5, TestSize::Fraction(1.5), 0, None).is_err());
        assert!(train_test_split(3, TestSize::Count(0), 0, None).is_err());
        assert!(train_test_split(4, TestSize::Count(2), 0, Some(&[0, 0, 0, 1])).is_err());
    }
}
