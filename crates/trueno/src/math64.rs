//! Double-precision transcendental functions, written to vectorise.
//!
//! NumPy's default dtype is float64, so every element-wise and row kernel has an f64
//! twin. These are the Cephes double-precision constructions (range reduction by ln 2
//! split in two, then a rational approximation), written without data-dependent
//! branches: special cases are computed alongside and chosen with selects, so the
//! plain loops in `elementwise.rs` and `rows.rs` compile to zmm/ymm code inside each
//! backend's target-feature function. Maximum errors against the platform's libm
//! (glibc, itself within 1 ulp), enforced by the tests below over every exponent range:
//!
//! | function | max error |
//! |---|---|
//! | `exp` | 2 ulp (subnormal results: 1 ulp of the subnormal spacing) |
//! | `log` | 2 ulp |
//! | `tanh` | 3 ulp |
//! | `sigmoid` | 5 ulp against `1 / (1 + libm exp(-x))`, a reference itself rounded three times |
//! | `gelu_tanh` | 1e-14 relative, times the condition number `1 + 2|u|` on the negative tail |
//! | `gelu_erf` | that of libm's `erfc` (1 ulp) plus two roundings |
//!
//! `erfc` for the exact GELU comes from the `libm` crate (a port of musl's, within
//! 1 ulp); it does not vectorise, which makes `gelu_erf` the one slow f64 map.

// Cephes' published coefficients, digit for digit, so they can be checked against it.
#![allow(clippy::excessive_precision)]

const LOG2E: f64 = std::f64::consts::LOG2_E;
// Cephes: ln 2 = C1 + C2 with C1 exact in 20 bits, so n * C1 is exact for |n| < 2^32.
const C1: f64 = 6.931_457_519_531_25e-1;
const C2: f64 = 1.428_606_820_309_417_232_12e-6;
/// Above this `e^x` overflows; below `EXP_LO` it underflows to 0.
const EXP_HI: f64 = 709.782_712_893_384;
const EXP_LO: f64 = -745.133_219_101_941_2;

/// `2^n` for an integer-valued `n` in `-1022..=1023`, from the exponent bits.
#[inline(always)]
fn pow2i(n: f64) -> f64 {
    f64::from_bits(((n as i64 + 1023) as u64) << 52)
}

/// `y * 2^n` for integer-valued `n` in `-1076..=1025`: two normal factors, one
/// rounding at the end (so subnormal results round once and large `n` gives inf).
#[inline(always)]
fn ldexp(y: f64, n: f64) -> f64 {
    let n1 = (n * 0.5).round_ties_even();
    y * pow2i(n1) * pow2i(n - n1)
}

/// `e^x`. NaN in, NaN out; `+inf -> +inf`, `-inf -> 0`.
#[inline(always)]
pub(crate) fn exp(x: f64) -> f64 {
    // The clamps lie just past the overflow/underflow thresholds, so the scaling
    // produces inf / 0 there without a special case.
    let xc = x.clamp(EXP_LO - 1.0, EXP_HI + 1.0);
    let n = (xc * LOG2E).round_ties_even();
    let r = n.mul_add(-C2, n.mul_add(-C1, xc));
    let r2 = r * r;
    // Cephes: e^r = 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2)) on |r| <= ln2 / 2.
    let p = r * 1.261_771_930_748_105_908_78e-4_f64
        .mul_add(r2, 3.029_944_077_074_419_613e-2)
        .mul_add(r2, 9.999_999_999_999_999_999_1e-1);
    let q = 3.001_985_051_386_644_550_42e-6_f64
        .mul_add(r2, 2.524_483_403_496_841_041_92e-3)
        .mul_add(r2, 2.272_655_482_081_550_287_66e-1)
        .mul_add(r2, 2.0);
    let y = ldexp(2.0f64.mul_add(p / (q - p), 1.0), n);
    if x.is_nan() { x } else { y }
}

/// Natural logarithm. `log(0) = -inf`, `log(x < 0) = NaN`, `log(inf) = inf`.
#[inline(always)]
pub(crate) fn log(x: f64) -> f64 {
    // Subnormals: scale into the normal range first (2^54), correct the exponent.
    let tiny = x < f64::MIN_POSITIVE;
    let xs = if tiny {
        x * 18_014_398_509_481_984.0
    } else {
        x
    };
    let bits = xs.to_bits();
    // frexp: xs = m * 2^e with m in [0.5, 1).
    let mut e = ((bits >> 52) & 0x7ff) as f64 - 1022.0 - if tiny { 54.0 } else { 0.0 };
    let m = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    // Centre on 1: m in [sqrt(1/2), sqrt(2)).
    let low = m < std::f64::consts::FRAC_1_SQRT_2;
    e -= if low { 1.0 } else { 0.0 };
    let f = if low { m + m - 1.0 } else { m - 1.0 };
    let z = f * f;
    // Cephes log: log(1 + f) = f - f^2/2 + f^3 P(f) / Q(f).
    let p = 1.018_756_638_045_809_317_96e-4_f64
        .mul_add(f, 4.974_949_949_767_470_014_25e-1)
        .mul_add(f, 4.705_791_198_788_817_258_54)
        .mul_add(f, 1.449_892_253_416_109_308_46e1)
        .mul_add(f, 1.793_686_785_078_198_163_13e1)
        .mul_add(f, 7.708_387_337_558_853_916_66);
    let q = (f + 1.128_735_871_891_674_505_9e1)
        .mul_add(f, 4.522_791_458_375_322_211_05e1)
        .mul_add(f, 8.298_752_669_127_766_032_11e1)
        .mul_add(f, 7.115_447_506_185_638_944_66e1)
        .mul_add(f, 2.312_516_201_267_653_405_83e1);
    let mut y = f * (z * p / q);
    y = e.mul_add(-2.121_944_400_546_905_827_679e-4, y);
    y = z.mul_add(-0.5, y);
    let r = e.mul_add(0.693_359_375, f + y);
    if x > 0.0 && x < f64::INFINITY {
        r
    } else if x == 0.0 {
        f64::NEG_INFINITY
    } else if x == f64::INFINITY {
        x
    } else {
        f64::NAN
    }
}

/// Hyperbolic tangent.
#[inline(always)]
pub(crate) fn tanh(x: f64) -> f64 {
    let a = x.abs();
    // |x| >= 0.625: 1 - 2 / (e^2|x| + 1), exact to the last bit past |x| = 19.1.
    let big = 1.0 - 2.0 / (exp(a + a) + 1.0);
    // |x| < 0.625: Cephes x + x^3 P(x^2) / Q(x^2).
    let z = x * x;
    let p = (-9.643_991_794_250_522_386_28e-1_f64)
        .mul_add(z, -9.928_772_310_019_185_865_64e1)
        .mul_add(z, -1.614_687_684_417_084_479_52e3);
    let q = (z + 1.128_116_784_916_329_314_02e2)
        .mul_add(z, 2.235_488_390_601_004_485_83e3)
        .mul_add(z, 4.844_063_053_251_254_860_48e3);
    let small = (x * z).mul_add(p / q, x);
    if a < 0.625 {
        small
    } else if x.is_nan() {
        x
    } else {
        big.copysign(x)
    }
}

/// Logistic sigmoid `1 / (1 + e^-x)`: relative error stays small on both tails.
#[inline(always)]
pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + exp(-x))
}

/// GELU, tanh form: `0.5 x (1 + tanh(u)) = x * sigmoid(2u)`, which keeps its
/// relative accuracy on the negative tail where `1 + tanh(u)` cancels.
#[inline(always)]
pub(crate) fn gelu_tanh(x: f64) -> f64 {
    const K: f64 = 0.797_884_560_802_865_4; // sqrt(2 / pi)
    let u = K * (0.044_715 * x * x).mul_add(x, x);
    x * sigmoid(u + u)
}

/// GELU, exact form `x Φ(x) = 0.5 x erfc(-x / sqrt 2)`.
#[inline(always)]
pub(crate) fn gelu_erf(x: f64) -> f64 {
    0.5 * x * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Distance between `a` and the reference `r` in units of the f64 spacing at `r`.
    pub(crate) fn ulps(a: f64, r: f64) -> f64 {
        if a.is_nan() || r.is_nan() {
            return if a.is_nan() && r.is_nan() {
                0.0
            } else {
                f64::INFINITY
            };
        }
        if a == r {
            return 0.0;
        }
        if a.is_infinite() || r.is_infinite() {
            return f64::INFINITY;
        }
        let m = r.abs().max(f64::from_bits(1));
        let spacing = f64::from_bits(m.to_bits() + 1) - m;
        (a - r).abs() / spacing
    }

    fn specials() -> Vec<f64> {
        let mut v = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
            f64::from_bits(1),
            f64::MAX,
            f64::MIN,
            EXP_HI,
            EXP_LO,
            EXP_HI + 1e-9,
            EXP_LO - 1e-9,
            0.625,
            -0.625,
            19.1,
            708.0,
            -708.0,
            -740.0,
            1e-300,
            1e-10,
        ];
        // Every binade, both signs.
        for e in -1074..1024 {
            v.push(2f64.powi(e));
            v.push(-(2f64.powi(e)) * 1.37);
        }
        v
    }

    #[test]
    fn exp_log_tanh_sigmoid_within_their_bounds_on_specials_and_binades() {
        for x in specials() {
            let e = exp(x);
            let er = x.exp();
            let bound = if er != 0.0 && er < f64::MIN_POSITIVE {
                1.0
            } else {
                2.0
            };
            assert!(ulps(e, er) <= bound, "exp({x:e}) = {e:e}, libm {er:e}");
            assert!(
                ulps(log(x), x.ln()) <= 2.0,
                "log({x:e}) = {:e}, libm {:e}",
                log(x),
                x.ln()
            );
            assert!(
                ulps(tanh(x), x.tanh()) <= 3.0,
                "tanh({x:e}) = {:e}",
                tanh(x)
            );
            let sr = 1.0 / (1.0 + (-x).exp());
            assert!(
                ulps(sigmoid(x), sr) <= 5.0,
                "sigmoid({x:e}) = {:e} vs {sr:e}",
                sigmoid(x)
            );
        }
        assert_eq!(log(0.0), f64::NEG_INFINITY);
        assert!(log(-1.0).is_nan());
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn exp_within_2_ulp(x in -745.2f64..709.8) {
            let r = x.exp();
            let bound = if r < f64::MIN_POSITIVE { 1.0 } else { 2.0 };
            prop_assert!(ulps(exp(x), r) <= bound, "exp({}) = {} vs {}", x, exp(x), r);
        }

        #[test]
        fn log_within_2_ulp(bits in 0u64..0x7ff0_0000_0000_0000) {
            let x = f64::from_bits(bits);
            prop_assert!(ulps(log(x), x.ln()) <= 2.0, "log({:e})", x);
        }

        #[test]
        fn tanh_within_3_ulp_sigmoid_within_5(x in -40.0f64..40.0) {
            prop_assert!(ulps(tanh(x), x.tanh()) <= 3.0, "tanh({})", x);
            let sr = 1.0 / (1.0 + (-x).exp());
            prop_assert!(ulps(sigmoid(x), sr) <= 5.0, "sigmoid({}) {} ulp", x, ulps(sigmoid(x), sr));
        }

        #[test]
        fn gelu_forms_match_their_definitions(x in -40.0f64..40.0) {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            // 0.5 x (1 + tanh u) rewritten exactly as x / (1 + e^-2u): the textbook form
            // cancels on the negative tail, this one does not (libm's exp, not ours).
            let u = k * (x + 0.044715 * x * x * x);
            let t = x / (1.0 + (-2.0 * u).exp());
            let g = gelu_tanh(x);
            // On the negative tail the function's own condition number is about 2|u|.
            prop_assert!((g - t).abs() <= 1e-14 * (1.0 + 2.0 * u.abs()) * t.abs() || t.abs() < 1e-300,
                "gelu_tanh({}) = {} vs {}", x, g, t);
            // The erf form as defined, where 1 + erf loses at most ~3 digits to cancellation.
            if x > -3.0 {
                let e = 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
                let ge = gelu_erf(x);
                prop_assert!((ge - e).abs() <= 1e-12 * e.abs() || e == 0.0,
                    "gelu_erf({}) = {} vs {}", x, ge, e);
            }
        }
    }
}
