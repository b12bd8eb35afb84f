//! Vectorised transcendental functions, written once over [`Simd`].
//!
//! They are the classic range-reduction + polynomial constructions (Cephes
//! coefficients, Cody–Waite splitting of ln 2), evaluated with FMA where the
//! backend has it. Maximum errors against an f64 reference, enforced by the
//! tests in `elementwise.rs` over every f32 exponent range:
//!
//! | function | max error |
//! |---|---|
//! | `exp` | 2 ulp (subnormal results: 1 ulp of the subnormal spacing) |
//! | `log` | 2 ulp |
//! | `tanh`, `sigmoid` | 4 ulp or 1e-7 absolute, whichever is larger |
//! | `gelu` (tanh form / erf form) | 1e-6 relative or 1e-7 absolute |

use crate::simd::Simd;

const LOG2E: f32 = std::f32::consts::LOG2_E;
// ln 2 split so that n * LN2_HI is exact for |n| < 2^9.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Above this, `exp` overflows to +inf.
const EXP_HI: f32 = 88.722_84;
/// Below this, `exp` underflows to +0.
const EXP_LO: f32 = -103.972_08;

/// `e^x` per lane. NaN in, NaN out; `+inf -> +inf`, `-inf -> 0`.
#[inline(always)]
pub(crate) fn exp<S: Simd>(s: S, x: S::V) -> S::V {
    // Clamp so n stays in -151..=129. The bounds lie beyond the overflow and
    // underflow thresholds, so ±inf (and everything past them) comes out of
    // the scaling as inf / 0 without a special case. Operand order makes the
    // clamps propagate NaN (x86 min/max return the second operand on NaN).
    let xc = s.min(s.splat(EXP_HI + 1.0), s.max(s.splat(EXP_LO - 1.0), x));
    exp_clamped(s, xc)
}

/// `e^x` for lanes known to be `<= 0` or NaN (softmax's `x - max`): the
/// upper clamp of [`exp`] is dropped, everything else is identical.
#[inline(always)]
pub(crate) fn exp_nonpos<S: Simd>(s: S, x: S::V) -> S::V {
    exp_clamped(s, s.max(s.splat(EXP_LO - 1.0), x))
}

/// `k * e^x` for lanes `<= 0` (or NaN) and a positive normal `k`: softmax's
/// output `e^(x - M) / S`. The factor rides on the last polynomial step
/// (`k + k * (r + r^2 P)`, one rounding) instead of a separate multiply, so
/// the error is that of [`exp_nonpos`] (or less) plus `k`'s own rounding.
#[inline(always)]
pub(crate) fn exp_nonpos_times<S: Simd>(s: S, x: S::V, k: S::V) -> S::V {
    let xc = s.max(s.splat(EXP_LO - 1.0), x);
    let n = s.round(s.mul(xc, s.splat(LOG2E)));
    let r = s.fma(n, s.splat(-LN2_HI), xc);
    let r = s.fma(n, s.splat(-LN2_LO), r);
    let p = exp_poly(s, r);
    let r2 = s.mul(r, r);
    s.ldexp(s.fma(s.fma(p, r2, r), k, k), n)
}

/// `e^x` for lanes `<= 0` (or NaN) whose values are only ever *summed*
/// (softmax's normaliser), never returned: a degree-6 Taylor polynomial in
/// Horner form, 13 vector operations instead of 15. Relative
/// error below 4e-7 per term (tested), hence for a sum of positive terms;
/// that is below the f32 accumulation error the sum already carries.
#[inline(always)]
pub(crate) fn exp_nonpos_for_sum<S: Simd>(s: S, x: S::V) -> S::V {
    let xc = s.max(s.splat(EXP_LO - 1.0), x);
    let n = s.round(s.mul(xc, s.splat(LOG2E)));
    let r = s.fma(n, s.splat(-LN2_HI), xc);
    let r = s.fma(n, s.splat(-LN2_LO), r);
    let mut p = s.splat(1.0 / 720.0);
    p = s.fma(p, r, s.splat(1.0 / 120.0));
    p = s.fma(p, r, s.splat(1.0 / 24.0));
    p = s.fma(p, r, s.splat(1.0 / 6.0));
    p = s.fma(p, r, s.splat(0.5));
    p = s.fma(p, r, s.splat(1.0));
    p = s.fma(p, r, s.splat(1.0));
    s.ldexp(p, n)
}

/// Cephes `P(r)` of `e^r = 1 + r + r^2 P(r)` on `|r| <= ln2/2`.
#[inline(always)]
fn exp_poly<S: Simd>(s: S, r: S::V) -> S::V {
    let mut p = s.splat(1.987_569_1e-4);
    p = s.fma(p, r, s.splat(1.398_199_9e-3));
    p = s.fma(p, r, s.splat(8.333_452e-3));
    p = s.fma(p, r, s.splat(4.166_579_6e-2));
    p = s.fma(p, r, s.splat(1.666_666_5e-1));
    s.fma(p, r, s.splat(0.5))
}

/// The body of [`exp`] once `xc` is in `[EXP_LO - 1, EXP_HI + 1]` (or NaN).
#[inline(always)]
fn exp_clamped<S: Simd>(s: S, xc: S::V) -> S::V {
    let n = s.round(s.mul(xc, s.splat(LOG2E)));
    let r = s.fma(n, s.splat(-LN2_HI), xc);
    let r = s.fma(n, s.splat(-LN2_LO), r);
    // e^r on |r| <= ln2/2: 1 + r + r^2 * P(r)  (Cephes expf).
    let p = exp_poly(s, r);
    let r2 = s.mul(r, r);
    let y = s.add(s.fma(p, r2, r), s.splat(1.0));
    s.ldexp(y, n)
}

/// Natural log per lane. `log(0) = -inf`, `log(<0) = NaN`, `log(inf) = inf`,
/// NaN in, NaN out; subnormal inputs are exact-scaled first.
#[inline(always)]
pub(crate) fn log<S: Simd>(s: S, x: S::V) -> S::V {
    let tiny = s.lt(x, s.splat(f32::MIN_POSITIVE));
    // Bring subnormals into the normal range (x * 2^23), remember the shift.
    let xs = s.select(tiny, s.mul(x, s.splat(8_388_608.0)), x);
    let (e, m) = s.frexp(xs);
    let e = s.select(tiny, s.sub(e, s.splat(23.0)), e);
    // m in [1, 2); fold to [sqrt(1/2), sqrt(2)) so f = m - 1 is small.
    let big = s.lt(s.splat(std::f32::consts::SQRT_2), m);
    let m = s.select(big, s.mul(m, s.splat(0.5)), m);
    let e = s.select(big, s.add(e, s.splat(1.0)), e);
    let f = s.sub(m, s.splat(1.0));
    let z = s.mul(f, f);
    let mut p = s.splat(7.037_683_6e-2);
    p = s.fma(p, f, s.splat(-1.151_461e-1));
    p = s.fma(p, f, s.splat(1.167_699_9e-1));
    p = s.fma(p, f, s.splat(-1.242_014_1e-1));
    p = s.fma(p, f, s.splat(1.424_932_3e-1));
    p = s.fma(p, f, s.splat(-1.666_805_8e-1));
    p = s.fma(p, f, s.splat(2.000_071_4e-1));
    p = s.fma(p, f, s.splat(-2.499_999_4e-1));
    p = s.fma(p, f, s.splat(3.333_333e-1));
    let y = s.mul(s.mul(p, f), z);
    let y = s.fma(e, s.splat(LN2_LO), y);
    let y = s.fma(z, s.splat(-0.5), y);
    let y = s.add(f, y);
    let y = s.fma(e, s.splat(LN2_HI), y);
    // Specials: 0 -> -inf, negative -> NaN, +inf -> +inf, NaN -> NaN.
    let y = s.select(s.eq(x, s.splat(0.0)), s.splat(f32::NEG_INFINITY), y);
    let y = s.select(s.lt(x, s.splat(0.0)), s.splat(f32::NAN), y);
    let y = s.select(s.eq(x, s.splat(f32::INFINITY)), x, y);
    s.select(s.is_nan(x), x, y)
}

/// Logistic sigmoid `1 / (1 + e^-x)`, accurate for large |x| on both sides:
/// with `e = e^-|x|`, `σ(x) = 1/(1+e)` for `x >= 0` and `e/(1+e)` otherwise.
#[inline(always)]
pub(crate) fn sigmoid<S: Simd>(s: S, x: S::V) -> S::V {
    let e = exp(s, s.neg(s.abs(x)));
    let q = s.div(s.splat(1.0), s.add(s.splat(1.0), e));
    let y = s.select(s.lt(x, s.splat(0.0)), s.mul(e, q), q);
    s.select(s.is_nan(x), x, y)
}

/// Hyperbolic tangent: odd polynomial for |x| < 0.625 (no cancellation),
/// `1 - 2/(e^{2|x|} + 1)` with the sign restored elsewhere.
#[inline(always)]
pub(crate) fn tanh<S: Simd>(s: S, x: S::V) -> S::V {
    let ax = s.abs(x);
    let z = s.mul(x, x);
    let mut p = s.splat(-5.704_988_7e-3);
    p = s.fma(p, z, s.splat(2.063_909e-2));
    p = s.fma(p, z, s.splat(-5.373_971_6e-2));
    p = s.fma(p, z, s.splat(1.333_144_2e-1));
    p = s.fma(p, z, s.splat(-3.333_328e-1));
    let small = s.fma(s.mul(p, z), x, x);
    // min() keeps e^{2|x|} finite; tanh is 1.0f32 long before 2|x| = 88.
    let e = exp(s, s.min(s.add(ax, ax), s.splat(88.0)));
    let large = s.sub(s.splat(1.0), s.div(s.splat(2.0), s.add(e, s.splat(1.0))));
    let large = s.select(s.lt(x, s.splat(0.0)), s.neg(large), large);
    let y = s.select(s.lt(ax, s.splat(0.625)), small, large);
    s.select(s.is_nan(x), x, y)
}

/// GELU, tanh approximation: `0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³)))`,
/// evaluated as `x σ(2u)` (the same function, without the cancellation of
/// `1 + tanh` for negative x).
#[inline(always)]
pub(crate) fn gelu_tanh<S: Simd>(s: S, x: S::V) -> S::V {
    const K: f32 = 0.797_884_6; // sqrt(2/pi)
    let x3 = s.mul(s.mul(x, x), x);
    let u = s.mul(s.fma(x3, s.splat(0.044_715), x), s.splat(2.0 * K));
    let y = s.mul(x, sigmoid(s, u));
    // Large |x|: σ saturates; keep x (and -0 for very negative x) exact.
    s.select(s.is_nan(x), x, y)
}

/// GELU, exact form `x Φ(x) = 0.5 x erfc(-x/√2)`, with erfc from the
/// Chebyshev fit of Numerical Recipes (`erfcc`, fractional error < 1.2e-7 for
/// every argument), so negative x keep full relative accuracy.
#[inline(always)]
pub(crate) fn gelu_erf<S: Simd>(s: S, x: S::V) -> S::V {
    let zs = s.mul(x, s.splat(-std::f32::consts::FRAC_1_SQRT_2));
    let z = s.abs(zs);
    let t = s.div(s.splat(1.0), s.fma(z, s.splat(0.5), s.splat(1.0)));
    let mut p = s.splat(0.170_872_77);
    p = s.fma(p, t, s.splat(-0.822_152_23));
    p = s.fma(p, t, s.splat(1.488_515_9));
    p = s.fma(p, t, s.splat(-1.135_204));
    p = s.fma(p, t, s.splat(0.278_868_07));
    p = s.fma(p, t, s.splat(-0.186_288_06));
    p = s.fma(p, t, s.splat(0.096_784_18));
    p = s.fma(p, t, s.splat(0.374_091_96));
    p = s.fma(p, t, s.splat(1.000_023_7));
    p = s.fma(p, t, s.splat(-1.265_512_2));
    let arg = s.sub(p, s.mul(z, z));
    let ans = s.mul(t, exp(s, arg));
    // erfc(zs) for zs >= 0 is ans, else 2 - ans.
    let erfc = s.select(s.lt(zs, s.splat(0.0)), s.sub(s.splat(2.0), ans), ans);
    let y = s.mul(s.mul(x, s.splat(0.5)), erfc);
    s.select(s.is_nan(x), x, y)
}
