//! trueno: the Sovereign AI Stack's numeric kernels.
//!
//! Every kernel has a scalar reference implementation; SIMD backends are
//! selected once at run time ([`backend`]) and tested against that reference.
//!
//! | module | kernels |
//! |---|---|
//! | [`elementwise`] | add/sub/mul/div, scale, axpy, fma, relu, sigmoid, tanh, GELU (tanh and erf), exp, log (f32, f64) |
//! | [`reduce`] | sum, dot, norm, min/max, argmin/argmax, mean, var/std (f32, f64) |
//! | [`rows`] | softmax, log-softmax, layer norm, RMS norm over the rows of a 2-D buffer (f32, f64) |
//! | [`similarity`] | cosine / dot / squared L2 for a pair, 1xN, MxN; fused top-k |
//! | [`matmul`] | GEMM and GEMV |
//! | [`lowp`] | reduced-precision GEMM: bf16 (AVX-512 BF16) and int8 (AVX-512 VNNI), wide accumulation, explicit opt-in |
//! | [`quant`] | ggml block formats (Q8_0, Q4_0, Q4_1): quantise, dequantise, products on the blocks |
//! | [`f16`] | half-precision weights: widening to f32, GEMV reading the 2-byte weights, GEMM over widened bands |
//! | [`machine`] | the CPU measured: caches (sysfs/cpuid), features, peak FLOP/s and bandwidth per level, cached per machine |
//! | [`gather`] | one query scored against a scattered list of rows (graph-index neighbours) |
//! | [`rng`] | the seeded generator (xoshiro256**) every crate's random choices draw from |
//! | [`cholesky`] | Cholesky factorisation and solve of small SPD systems (f64) |
//!
//! Kernels are written once over a small vector vocabulary (`simd::Simd`)
//! and compiled per backend: AVX-512 (masked tails), AVX2+FMA, NEON and
//! scalar. Errors are values ([`Error`]), never panics; empty input and NaN
//! follow NumPy (see each module). Accuracy bounds are documented where a
//! kernel approximates (`math` for exp/log/tanh/sigmoid/GELU, [`reduce`] for
//! the summation scheme) and enforced by the tests.

pub mod backend;
pub mod buffers;
pub mod cholesky;
pub mod elementwise;
pub mod f16;
pub mod gather;
pub mod lowp;
pub mod machine;
mod math;
mod math64;
pub mod matmul;
pub mod quant;
pub mod reduce;
pub mod rng;
pub mod rows;
mod simd;
pub mod similarity;
pub mod team;

pub use backend::{Backend, set_backend};
pub use cholesky::{cholesky_f64, cholesky_solve_f64};
pub use elementwise::{
    add, add_f64, axpy, axpy_f64, div, div_f64, exp, exp_f64, fma, fma_f64, gelu_erf, gelu_erf_f64,
    gelu_tanh, gelu_tanh_f64, log, log_f64, mul, mul_f64, relu, relu_f64, scale, scale_f64,
    sigmoid, sigmoid_f64, sub, sub_f64, tanh, tanh_f64,
};
pub use gather::{prefetch, scores_gather};
pub use matmul::{
    PackedRhs, gemv, gemv_f64, matmul, matmul_f64, matmul_packed_rhs, pack_rhs, pack_rhs_with,
};
pub use reduce::{
    argmax, argmax_f64, argmin, argmin_f64, dot, dot_f64, max, max_f64, mean, mean_f64, min,
    min_f64, norm, norm_f64, std, std_f64, sum, sum_f64, var, var_f64,
};
pub use rows::{
    layer_norm_rows, layer_norm_rows_f64, log_softmax_rows, log_softmax_rows_f64, rms_norm_rows,
    rms_norm_rows_f64, softmax_rows, softmax_rows_f64,
};
pub use simd::cached_stores;
pub use similarity::{
    Metric, cosine, cosine_one_to_many, scores_many_to_many, scores_one_to_many, sqeuclidean, top_k,
};

/// Errors a kernel reports instead of panicking.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Two operands that must have the same length do not.
    LengthMismatch { left: usize, right: usize },
    /// A backend name that is not one of `scalar`, `avx2`, `avx512`, `neon`.
    UnknownBackend(String),
    /// The CPU (or build target) lacks features the backend needs.
    UnsupportedBackend {
        backend: &'static str,
        missing: String,
    },
    /// A reduction without identity (min, max, argmin, argmax) was given no
    /// elements.
    Empty { op: &'static str },
    /// A flat buffer does not hold a whole number of rows, or a parameter
    /// (row length, k, ...) is unusable; the message names the values.
    Shape(String),
    /// A matrix that must be symmetric positive definite has a non-positive pivot
    /// (it is singular or indefinite to working precision).
    NotPositiveDefinite { pivot: usize },
    /// A cached machine description ([`machine`]) is unreadable, foreign or invalid;
    /// the message names the file and what is wrong with it.
    InvalidMachineFile(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::LengthMismatch { left, right } => {
                write!(f, "length mismatch: {left} vs {right}")
            }
            Error::UnknownBackend(name) => write!(
                f,
                "unknown backend {name:?}: expected one of scalar, avx2, avx512, neon"
            ),
            Error::UnsupportedBackend { backend, missing } => {
                write!(
                    f,
                    "backend {backend} is not supported on this CPU: missing {missing}"
                )
            }
            Error::Empty { op } => {
                write!(
                    f,
                    "zero-size array to reduction operation {op} which has no identity"
                )
            }
            Error::Shape(msg) => f.write_str(msg),
            Error::NotPositiveDefinite { pivot } => write!(
                f,
                "matrix is not positive definite (pivot {pivot} is not positive)"
            ),
            Error::InvalidMachineFile(msg) => write!(f, "invalid machine file: {msg}"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod contract {
    //! The signatures other crates (realizar, trueno-rag, the bindings) are
    //! written against: changing one must fail here first.
    use super::*;

    type Unit = Result<(), Error>;
    type Dot = fn(&[f32], &[f32]) -> Result<f32, Error>;
    type Binary = fn(&[f32], &[f32], &mut [f32]) -> Unit;
    type Rows = fn(&[f32], usize, &mut [f32]) -> Unit;
    type LayerNorm = fn(&[f32], usize, Option<&[f32]>, Option<&[f32]>, f32, &mut [f32]) -> Unit;
    type Unary = fn(&[f32], &mut [f32]) -> Unit;
    type OneToMany = fn(&[f32], &[f32], usize, &mut [f32]) -> Unit;
    type TopK = fn(&[f32], &[f32], usize, usize, Metric) -> Result<(Vec<i64>, Vec<f32>), Error>;

    #[test]
    fn public_signatures_are_stable() {
        let _: Dot = dot;
        let _: Binary = add;
        let _: Rows = softmax_rows;
        let _: LayerNorm = layer_norm_rows;
        let _: Unary = gelu_erf;
        let _: OneToMany = cosine_one_to_many;
        let _: TopK = top_k;
    }
}
