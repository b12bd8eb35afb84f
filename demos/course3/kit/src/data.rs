//! A seeded card-transaction set with the inputs of `data/fraud_data.py`'s `FEATURES`.
//!
//! The label is drawn first (about 2 % fraud) and each feature from a class-conditional
//! distribution that overlaps the other class, so no single column separates them: raw
//! `amount` alone is a weak signal (the course's baseline), the combination of burst
//! counts, amount ratio, night and risky category a strong one. Every draw goes through
//! aprender's seeded generator, so a seed names one data set on every machine.

use aprender::rng::Rng;
use sha2::{Digest, Sha256};

/// The model inputs, in column order (the names of `fraud_data.FEATURES`).
pub const FEATURES: [&str; 7] = [
    "amount",
    "n_prev_1h",
    "n_prev_24h",
    "log_amount_ratio",
    "category_share",
    "night",
    "risky",
];

/// A row-major `rows x FEATURES.len()` matrix and its 0/1 labels.
#[derive(Debug, Clone, PartialEq)]
pub struct FraudSet {
    pub x: Vec<f64>,
    pub y: Vec<i64>,
    pub rows: usize,
}

impl FraudSet {
    pub const COLS: usize = FEATURES.len();

    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * Self::COLS..(i + 1) * Self::COLS]
    }

    /// The rows `idx` (a split's part), in that order.
    pub fn take(&self, idx: &[usize]) -> FraudSet {
        let mut x = Vec::with_capacity(idx.len() * Self::COLS);
        for &i in idx {
            x.extend_from_slice(self.row(i));
        }
        FraudSet {
            x,
            y: idx.iter().map(|&i| self.y[i]).collect(),
            rows: idx.len(),
        }
    }

    /// One column, copied out.
    pub fn column(&self, j: usize) -> Vec<f64> {
        self.x.chunks_exact(Self::COLS).map(|r| r[j]).collect()
    }

    /// The set as CSV (header, then one line per row; `is_fraud` last): the bytes the
    /// model card's data hash covers.
    pub fn to_csv(&self) -> String {
        let mut s = FEATURES.join(",") + ",is_fraud\n";
        for i in 0..self.rows {
            for v in self.row(i) {
                s.push_str(&format!("{v},"));
            }
            s.push_str(&format!("{}\n", self.y[i]));
        }
        s
    }

    /// `sha256:<hex>` of [`FraudSet::to_csv`].
    pub fn content_hash(&self) -> String {
        let digest = Sha256::digest(self.to_csv().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    pub fn fraud_rate(&self) -> f64 {
        self.y.iter().filter(|&&v| v == 1).count() as f64 / self.rows.max(1) as f64
    }
}

/// Standard normal by Box-Muller (two uniforms per draw; simple beats fast here).
fn normal(rng: &mut Rng) -> f64 {
    let u1 = rng.uniform().max(f64::MIN_POSITIVE);
    let u2 = rng.uniform();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Poisson(lambda) by Knuth's product of uniforms (lambda stays small here).
fn poisson(rng: &mut Rng, lambda: f64) -> f64 {
    let limit = (-lambda).exp();
    let mut k = 0.0;
    let mut p = rng.uniform();
    while p > limit {
        k += 1.0;
        p *= rng.uniform();
    }
    k
}

fn bernoulli(rng: &mut Rng, p: f64) -> f64 {
    if rng.uniform() < p { 1.0 } else { 0.0 }
}

/// `rows` transactions from `seed`; `drift` > 0 shifts genuine amounts up (a later,
/// drifted period for monitoring).
pub fn generate(rows: usize, seed: u64, drift: f64) -> FraudSet {
    let mut rng = Rng::new(seed);
    let mut x = Vec::with_capacity(rows * FraudSet::COLS);
    let mut y = Vec::with_capacity(rows);
    for _ in 0..rows {
        let fraud = rng.uniform() < 0.02;
        let (mu, sd) = if fraud {
            (4.3, 1.1)
        } else {
            (3.6 + drift, 1.0)
        };
        let amount = ((mu + sd * normal(&mut rng)).exp() * 100.0).round() / 100.0;
        let n1 = poisson(&mut rng, if fraud { 2.5 } else { 0.3 });
        let n24 = n1 + poisson(&mut rng, if fraud { 5.0 } else { 2.0 });
        let ratio = if fraud {
            1.0 + 0.8 * normal(&mut rng)
        } else {
            0.5 * normal(&mut rng)
        };
        let share = if fraud {
            rng.uniform() * 0.5
        } else {
            rng.uniform()
        };
        let night = bernoulli(&mut rng, if fraud { 0.45 } else { 0.2 });
        let risky = bernoulli(&mut rng, if fraud { 0.5 } else { 0.15 });
        x.extend_from_slice(&[amount, n1, n24, ratio, share, night, risky]);
        y.push(i64::from(fraud));
    }
    FraudSet { x, y, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_names_one_data_set() {
        let a = generate(500, 3, 0.0);
        assert_eq!(a, generate(500, 3, 0.0));
        assert_ne!(a.content_hash(), generate(500, 4, 0.0).content_hash());
        assert!(a.x.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn take_keeps_rows_and_labels_together() {
        let a = generate(50, 1, 0.0);
        let t = a.take(&[7, 2]);
        assert_eq!(t.row(0), a.row(7));
        assert_eq!(t.y, vec![a.y[7], a.y[2]]);
        assert_eq!(generate(0, 1, 0.0).to_csv().lines().count(), 1);
    }
}
