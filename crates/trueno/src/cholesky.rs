//! Cholesky factorisation `A = L L^T` and the two triangular solves it enables, for the
//! small dense symmetric positive-definite systems of least squares (the `p x p` Gram
//! matrix `X^T X + alpha I` of ridge regression, a Newton step's Hessian).
//!
//! Row-major and in place. Each entry of `L` is one dot product of two contiguous row
//! prefixes (`L[i, ..j] . L[j, ..j]`), so the factorisation runs on trueno's `dot_f64`;
//! the `O(p^3 / 3)` work is negligible next to the `O(n p^2)` GEMM that forms the Gram
//! matrix, which is why a blocked factorisation is not worth its code here.

use crate::Error;
use crate::reduce::dot_f64;

/// Factor the symmetric positive-definite `n x n` matrix `a` (row-major; only the lower
/// triangle is read) in place: on success the lower triangle holds `L` with
/// `A = L L^T` and the strict upper triangle is zeroed.
///
/// A pivot that is not positive (or not finite) is [`Error::NotPositiveDefinite`]
/// naming its index: the matrix is singular or indefinite to working precision.
pub fn cholesky_f64(a: &mut [f64], n: usize) -> Result<(), Error> {
    if n.checked_mul(n) != Some(a.len()) {
        return Err(Error::Shape(format!(
            "cholesky: {} values do not form a {n} x {n} matrix",
            a.len()
        )));
    }
    for i in 0..n {
        for j in 0..=i {
            let (head, row_i) = a.split_at_mut(i * n);
            let row_j: &[f64] = if j == i {
                &row_i[..j]
            } else {
                &head[j * n..j * n + j]
            };
            let s = row_i[j] - dot_f64(&row_i[..j], row_j)?;
            if j == i {
                if !(s > 0.0 && s.is_finite()) {
                    return Err(Error::NotPositiveDefinite { pivot: i });
                }
                row_i[i] = s.sqrt();
            } else {
                row_i[j] = s / head[j * n + j];
            }
        }
        a[i * n + i + 1..(i + 1) * n].fill(0.0);
    }
    Ok(())
}

/// Solve `L L^T x = b` in place (`b` becomes `x`) with the factor from [`cholesky_f64`].
pub fn cholesky_solve_f64(l: &[f64], n: usize, b: &mut [f64]) -> Result<(), Error> {
    if n.checked_mul(n) != Some(l.len()) || b.len() != n {
        return Err(Error::Shape(format!(
            "cholesky_solve: factor has {} values and b {} for n = {n}",
            l.len(),
            b.len()
        )));
    }
    // Forward: L y = b, row by row (a dot over the row prefix).
    for i in 0..n {
        let s = b[i] - dot_f64(&l[i * n..i * n + i], &b[..i])?;
        b[i] = s / l[i * n + i];
    }
    // Backward: L^T x = y. Column i of L is strided, so subtract as we go instead.
    for i in (0..n).rev() {
        b[i] /= l[i * n + i];
        let xi = b[i];
        for (k, bk) in b[..i].iter_mut().enumerate() {
            *bk -= l[i * n + k] * xi;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spd(n: usize, seed: &[f64]) -> Vec<f64> {
        // A = M M^T + n I is symmetric positive definite for any M.
        let m: Vec<f64> = (0..n * n)
            .map(|i| seed[i % seed.len()] + i as f64 * 0.01)
            .collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| m[i * n + k] * m[j * n + k]).sum::<f64>();
            }
            a[i * n + i] += n as f64;
        }
        a
    }

    proptest! {
        #[test]
        fn solves_spd_systems(n in 1usize..24, seed in proptest::collection::vec(-3.0f64..3.0, 1..16)) {
            let a = spd(n, &seed);
            let x_true: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin()).collect();
            let b: Vec<f64> = (0..n).map(|i| (0..n).map(|j| a[i * n + j] * x_true[j]).sum()).collect();
            let mut l = a.clone();
            cholesky_f64(&mut l, n).unwrap();
            let mut x = b.clone();
            cholesky_solve_f64(&l, n, &mut x).unwrap();
            for (got, want) in x.iter().zip(&x_true) {
                prop_assert!((got - want).abs() < 1e-8 * (1.0 + want.abs()), "{got} vs {want}");
            }
        }
    }

    #[test]
    fn singular_and_indefinite_are_errors() {
        let mut a = vec![1.0, 1.0, 1.0, 1.0];
        assert_eq!(
            cholesky_f64(&mut a, 2),
            Err(Error::NotPositiveDefinite { pivot: 1 })
        );
        let mut a = vec![-1.0];
        assert_eq!(
            cholesky_f64(&mut a, 1),
            Err(Error::NotPositiveDefinite { pivot: 0 })
        );
        let mut a = vec![1.0; 3];
        assert!(matches!(cholesky_f64(&mut a, 2), Err(Error::Shape(_))));
    }
}
