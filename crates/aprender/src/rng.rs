//! The seeded generator behind every random choice in aprender (bootstrap rows,
//! feature subsets, k-means++ seeds, shuffles): the stack's one generator,
//! `trueno::rng::Rng` (xoshiro256**), so a seed reproduces a model bit for bit on every
//! platform. Not NumPy's stream: the same seed does not draw scikit-learn's numbers.

pub use trueno::rng::Rng;
