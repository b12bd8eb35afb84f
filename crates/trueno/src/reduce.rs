//! Reductions: a dot product that accumulates in several independent lanes
//! so the compiler can keep more than one FMA in flight.

use crate::Error;

/// Dot product of two equal-length slices.
///
/// Returns `0.0` for empty input, like `np.dot`.
pub fn dot(a: &[f32], b: &[f32]) -> Result<f32, Error> {
    if a.len() != b.len() {
        return Err(Error::LengthMismatch {
            left: a.len(),
            right: b.len(),
        });
    }
    let mut acc = [0.0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let (tail_a, tail_b) = (chunks_a.remainder(), chunks_b.remainder());
    for (x, y) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            acc[i] = x[i].mul_add(y[i], acc[i]);
        }
    }
    let mut total: f32 = acc.iter().sum();
    for (x, y) in tail_a.iter().zip(tail_b) {
        total = x.mul_add(*y, total);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    #[test]
    fn empty_is_zero() {
        assert_eq!(dot(&[], &[]), Ok(0.0));
    }

    #[test]
    fn mismatch_is_an_error() {
        assert_eq!(
            dot(&[1.0], &[]),
            Err(Error::LengthMismatch { left: 1, right: 0 })
        );
    }

    #[test]
    fn every_tail_length_matches_f64_reference() {
        for n in 0..=67 {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let got = f64::from(dot(&a, &b).unwrap());
            assert!((got - reference(&a, &b)).abs() < 1e-4, "n={n}");
        }
    }
}
