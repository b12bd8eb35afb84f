//! The stack's one seeded pseudo-random generator: every random choice in the
//! crates above (aprender's bootstrap rows, feature subsets and k-means++ seeds,
//! alimentar's shuffles and splits, trueno-rag's HNSW levels, realizar's sampling)
//! draws from it, so a seed reproduces a result bit for bit on every platform.
//!
//! xoshiro256** (Blackman and Vigna) seeded through SplitMix64: small, fast and
//! statistically sound for simulation. Not cryptographic, and not NumPy's stream: the
//! same seed does not draw the same numbers as scikit-learn's `random_state`.

/// xoshiro256** state.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole stream is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut next = || {
            // SplitMix64 spreads any seed (even 0) over the whole state.
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (Lemire's multiply-shift with rejection: no modulo bias).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0): no integer lies in 0..0");
        let n = n as u64;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            let low = m as u64;
            if low >= n.wrapping_neg() % n {
                return (m >> 64) as usize;
            }
        }
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }

    /// A seed for a child generator (one per tree, per k-means run), so results do not
    /// depend on how work is split across threads.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};

    proptest! {
        #[test]
        fn below_is_in_range_and_seeded(seed: u64, n in 1usize..1000) {
            let (mut a, mut b) = (Rng::new(seed), Rng::new(seed));
            for _ in 0..64 {
                let v = a.below(n);
                prop_assert!(v < n);
                prop_assert_eq!(v, b.below(n));
            }
        }

        #[test]
        fn shuffle_is_a_permutation(seed: u64, n in 0usize..200) {
            let mut v: Vec<usize> = (0..n).collect();
            Rng::new(seed).shuffle(&mut v);
            v.sort_unstable();
            prop_assert_eq!(v, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn uniform_mean_is_one_half() {
        let mut r = Rng::new(7);
        let m: f64 = (0..100_000).map(|_| r.uniform()).sum::<f64>() / 100_000.0;
        assert!((m - 0.5).abs() < 0.01, "{m}");
    }
}
