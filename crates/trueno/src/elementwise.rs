//! Element-wise kernels: arithmetic, activations and the transcendental maps.
//!
//! Each takes its inputs and an `out` slice of the same length (checked) and
//! writes every element of `out`. Full vectors are processed in the main loop;
//! the remainder (< one vector) goes through a masked load/store on AVX-512
//! and a small stack buffer elsewhere, so no length is special.
//! Approximation errors of the transcendental kernels: see `math.rs` (tested
//! below against f64 references).

use crate::Error;
use crate::backend;
#[cfg(test)]
use crate::backend::Backend;
use crate::math;
use crate::math64;
use crate::simd::{Op1, Op2, Simd, multiversion, op1, op2, stream_split};

/// `v * k` with `k` captured (see [`Op1`] for why not a closure).
pub(crate) struct MulBy<S: Simd>(pub(crate) S::V);

impl<S: Simd> Op1<S> for MulBy<S> {
    #[inline(always)]
    fn apply(&self, s: S, v: S::V) -> S::V {
        s.mul(v, self.0)
    }
}

fn same_len(a: usize, b: usize) -> Result<(), Error> {
    if a == b {
        Ok(())
    } else {
        Err(Error::LengthMismatch { left: a, right: b })
    }
}

#[inline(always)]
pub(crate) fn map1<S: Simd>(s: S, x: &[f32], out: &mut [f32], f: &impl Op1<S>) {
    match stream_split(out) {
        Some(head) => {
            let (xh, xr) = x.split_at(head);
            let (oh, or) = out.split_at_mut(head);
            map1_with(s, xh, oh, f, false);
            map1_with(s, xr, or, f, true);
            s.stream_fence();
        }
        None => map1_with(s, x, out, f, false),
    }
}

#[inline(always)]
fn map1_with<S: Simd>(s: S, x: &[f32], out: &mut [f32], f: &impl Op1<S>, stream: bool) {
    let l = S::LANES;
    let main = x.len() - x.len() % l;
    let (xm, xt) = x.split_at(main);
    let (om, ot) = out.split_at_mut(main);
    if stream {
        for (xc, oc) in xm.chunks_exact(l).zip(om.chunks_exact_mut(l)) {
            s.store_stream(oc, f.apply(s, s.load(xc)));
        }
    } else {
        for (xc, oc) in xm.chunks_exact(l).zip(om.chunks_exact_mut(l)) {
            s.store(oc, f.apply(s, s.load(xc)));
        }
    }
    if !xt.is_empty() {
        s.store_tail(ot, f.apply(s, s.load_tail(xt, 0.0)));
    }
}

#[inline(always)]
fn map2<S: Simd>(s: S, a: &[f32], b: &[f32], out: &mut [f32], f: &impl Op2<S>) {
    match stream_split(out) {
        Some(head) => {
            let (ah, ar) = a.split_at(head);
            let (bh, br) = b.split_at(head);
            let (oh, or) = out.split_at_mut(head);
            map2_with(s, ah, bh, oh, f, false);
            map2_with(s, ar, br, or, f, true);
            s.stream_fence();
        }
        None => map2_with(s, a, b, out, f, false),
    }
}

#[inline(always)]
fn map2_with<S: Simd>(s: S, a: &[f32], b: &[f32], out: &mut [f32], f: &impl Op2<S>, stream: bool) {
    let l = S::LANES;
    let main = a.len() - a.len() % l;
    let (am, at) = a.split_at(main);
    let (bm, bt) = b.split_at(main);
    let (om, ot) = out.split_at_mut(main);
    let chunks = am
        .chunks_exact(l)
        .zip(bm.chunks_exact(l))
        .zip(om.chunks_exact_mut(l));
    if stream {
        for ((ac, bc), oc) in chunks {
            s.store_stream(oc, f.apply(s, s.load(ac), s.load(bc)));
        }
    } else {
        for ((ac, bc), oc) in chunks {
            s.store(oc, f.apply(s, s.load(ac), s.load(bc)));
        }
    }
    if !at.is_empty() {
        // Fill 1.0 keeps masked-off lanes of a division finite (never stored).
        s.store_tail(ot, f.apply(s, s.load_tail(at, 1.0), s.load_tail(bt, 1.0)));
    }
}

macro_rules! binary_f32 {
    ($(#[$doc:meta])* $name:ident, $kernel:ident, $disp:ident, |$s:ident, $x:ident, $y:ident| $body:expr) => {
        #[inline(always)]
        fn $kernel<S: Simd>($s: S, a: &[f32], b: &[f32], out: &mut [f32]) {
            map2($s, a, b, out, &op2!(|$s, $x, $y| $body))
        }
        multiversion! {
            fn $disp(a: &[f32], b: &[f32], out: &mut [f32]) -> () = $kernel;
        }
        $(#[$doc])*
        pub fn $name(a: &[f32], b: &[f32], out: &mut [f32]) -> Result<(), Error> {
            same_len(a.len(), b.len())?;
            same_len(a.len(), out.len())?;
            $disp(backend::active()?, a, b, out);
            Ok(())
        }
    };
}

binary_f32!(
    /// `out[i] = a[i] + b[i]`.
    add, add_k, add_d, |s, x, y| s.add(x, y)
);
binary_f32!(
    /// `out[i] = a[i] - b[i]`.
    sub, sub_k, sub_d, |s, x, y| s.sub(x, y)
);
binary_f32!(
    /// `out[i] = a[i] * b[i]`.
    mul, mul_k, mul_d, |s, x, y| s.mul(x, y)
);
binary_f32!(
    /// `out[i] = a[i] / b[i]` (IEEE: `x/0 = ±inf`, `0/0 = NaN`).
    div, div_k, div_d, |s, x, y| s.div(x, y)
);

macro_rules! unary_f32 {
    ($(#[$doc:meta])* $name:ident, $kernel:ident, $disp:ident, |$s:ident, $x:ident| $body:expr) => {
        #[inline(always)]
        fn $kernel<S: Simd>($s: S, x: &[f32], out: &mut [f32]) {
            map1($s, x, out, &op1!(|$s, $x| $body))
        }
        multiversion! {
            fn $disp(x: &[f32], out: &mut [f32]) -> () = $kernel;
        }
        $(#[$doc])*
        pub fn $name(x: &[f32], out: &mut [f32]) -> Result<(), Error> {
            same_len(x.len(), out.len())?;
            $disp(backend::active()?, x, out);
            Ok(())
        }
    };
}

unary_f32!(
    /// `max(x, 0)`; NaN propagates (like `np.maximum(x, 0)`), `-0.0 -> 0.0`.
    relu, relu_k, relu_d, |s, x| {
        let y = s.max(x, s.splat(0.0));
        s.select(s.is_nan(x), x, y)
    }
);
unary_f32!(
    /// Logistic sigmoid `1 / (1 + e^-x)`.
    sigmoid, sigmoid_k, sigmoid_d, |s, x| math::sigmoid(s, x)
);
unary_f32!(
    /// Hyperbolic tangent.
    tanh, tanh_k, tanh_d, |s, x| math::tanh(s, x)
);
unary_f32!(
    /// GELU with the tanh approximation (PyTorch `approximate="tanh"`).
    gelu_tanh, gelu_tanh_k, gelu_tanh_d, |s, x| math::gelu_tanh(s, x)
);
unary_f32!(
    /// GELU, exact erf form `x Φ(x)` (PyTorch `approximate="none"`).
    gelu_erf, gelu_erf_k, gelu_erf_d, |s, x| math::gelu_erf(s, x)
);
unary_f32!(
    /// `e^x`, within 2 ulp of the exact value.
    exp, exp_k, exp_d, |s, x| math::exp(s, x)
);
unary_f32!(
    /// Natural logarithm, within 2 ulp; `log(0) = -inf`, `log(x<0) = NaN`.
    log, log_k, log_d, |s, x| math::log(s, x)
);

#[inline(always)]
fn scale_k<S: Simd>(s: S, x: &[f32], alpha: f32, out: &mut [f32]) {
    map1(s, x, out, &MulBy::<S>(s.splat(alpha)))
}
multiversion! {
    fn scale_d(x: &[f32], alpha: f32, out: &mut [f32]) -> () = scale_k;
}

/// `out[i] = alpha * x[i]`.
pub fn scale(x: &[f32], alpha: f32, out: &mut [f32]) -> Result<(), Error> {
    same_len(x.len(), out.len())?;
    scale_d(backend::active()?, x, alpha, out);
    Ok(())
}

#[inline(always)]
fn axpy_k<S: Simd>(s: S, alpha: f32, x: &[f32], y: &mut [f32]) {
    let a = s.splat(alpha);
    let l = S::LANES;
    let main = x.len() - x.len() % l;
    let (xm, xt) = x.split_at(main);
    let (ym, yt) = y.split_at_mut(main);
    for (xc, yc) in xm.chunks_exact(l).zip(ym.chunks_exact_mut(l)) {
        let r = s.fma(a, s.load(xc), s.load(yc));
        s.store(yc, r);
    }
    if !xt.is_empty() {
        let r = s.fma(a, s.load_tail(xt, 0.0), s.load_tail(yt, 0.0));
        s.store_tail(yt, r);
    }
}
multiversion! {
    fn axpy_d(alpha: f32, x: &[f32], y: &mut [f32]) -> () = axpy_k;
}

/// BLAS axpy, in place: `y[i] = alpha * x[i] + y[i]` (fused multiply-add
/// on FMA backends).
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) -> Result<(), Error> {
    same_len(x.len(), y.len())?;
    axpy_d(backend::active()?, alpha, x, y);
    Ok(())
}

#[inline(always)]
fn fma_k<S: Simd>(s: S, a: &[f32], b: &[f32], c: &[f32], out: &mut [f32]) {
    let l = S::LANES;
    let main = a.len() - a.len() % l;
    for i in (0..main).step_by(l) {
        let r = s.fma(s.load(&a[i..]), s.load(&b[i..]), s.load(&c[i..]));
        s.store(&mut out[i..], r);
    }
    if main < a.len() {
        let r = s.fma(
            s.load_tail(&a[main..], 0.0),
            s.load_tail(&b[main..], 0.0),
            s.load_tail(&c[main..], 0.0),
        );
        s.store_tail(&mut out[main..], r);
    }
}
multiversion! {
    fn fma_d(a: &[f32], b: &[f32], c: &[f32], out: &mut [f32]) -> () = fma_k;
}

/// `out[i] = a[i] * b[i] + c[i]` (single rounding on FMA backends, two on
/// the scalar one).
pub fn fma(a: &[f32], b: &[f32], c: &[f32], out: &mut [f32]) -> Result<(), Error> {
    same_len(a.len(), b.len())?;
    same_len(a.len(), c.len())?;
    same_len(a.len(), out.len())?;
    fma_d(backend::active()?, a, b, c, out);
    Ok(())
}

// f64: plain loops instantiated per backend; the autovectoriser emits
// zmm/ymm code inside the target-feature functions.
macro_rules! binary_f64 {
    ($(#[$doc:meta])* $name:ident, $kernel:ident, $disp:ident, |$x:ident, $y:ident| $body:expr) => {
        #[inline(always)]
        fn $kernel<S: Simd>(_s: S, a: &[f64], b: &[f64], out: &mut [f64]) {
            for ((o, &$x), &$y) in out.iter_mut().zip(a).zip(b) {
                *o = $body;
            }
        }
        multiversion! {
            fn $disp(a: &[f64], b: &[f64], out: &mut [f64]) -> () = $kernel;
        }
        $(#[$doc])*
        pub fn $name(a: &[f64], b: &[f64], out: &mut [f64]) -> Result<(), Error> {
            same_len(a.len(), b.len())?;
            same_len(a.len(), out.len())?;
            $disp(backend::active()?, a, b, out);
            Ok(())
        }
    };
}

binary_f64!(
    /// f64 `out[i] = a[i] + b[i]`.
    add_f64, add64_k, add64_d, |x, y| x + y
);
binary_f64!(
    /// f64 `out[i] = a[i] - b[i]`.
    sub_f64, sub64_k, sub64_d, |x, y| x - y
);
binary_f64!(
    /// f64 `out[i] = a[i] * b[i]`.
    mul_f64, mul64_k, mul64_d, |x, y| x * y
);
binary_f64!(
    /// f64 `out[i] = a[i] / b[i]`.
    div_f64, div64_k, div64_d, |x, y| x / y
);

macro_rules! unary_f64 {
    ($(#[$doc:meta])* $name:ident, $kernel:ident, $disp:ident, $f:path) => {
        #[inline(always)]
        fn $kernel<S: Simd>(_s: S, x: &[f64], out: &mut [f64]) {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = $f(v);
            }
        }
        multiversion! {
            fn $disp(x: &[f64], out: &mut [f64]) -> () = $kernel;
        }
        $(#[$doc])*
        pub fn $name(x: &[f64], out: &mut [f64]) -> Result<(), Error> {
            same_len(x.len(), out.len())?;
            $disp(backend::active()?, x, out);
            Ok(())
        }
    };
}

#[inline(always)]
fn relu64(x: f64) -> f64 {
    // NaN propagates and -0.0 becomes 0.0, as the f32 kernel (np.maximum(x, 0)).
    if x > 0.0 || x.is_nan() { x } else { 0.0 }
}

unary_f64!(
    /// f64 `max(x, 0)`; NaN propagates, `-0.0 -> 0.0`.
    relu_f64, relu64_k, relu64_d, relu64
);
unary_f64!(
    /// f64 logistic sigmoid, within 5 ulp of `1 / (1 + e^-x)` (see `math64`).
    sigmoid_f64, sigmoid64_k, sigmoid64_d, math64::sigmoid
);
unary_f64!(
    /// f64 hyperbolic tangent, within 3 ulp.
    tanh_f64, tanh64_k, tanh64_d, math64::tanh
);
unary_f64!(
    /// f64 GELU, tanh approximation, within 1e-14 relative.
    gelu_tanh_f64, gelu_tanh64_k, gelu_tanh64_d, math64::gelu_tanh
);
unary_f64!(
    /// f64 GELU, exact erf form, within 1e-14 relative.
    gelu_erf_f64, gelu_erf64_k, gelu_erf64_d, math64::gelu_erf
);
unary_f64!(
    /// f64 `e^x`, within 2 ulp.
    exp_f64, exp64_k, exp64_d, math64::exp
);
unary_f64!(
    /// f64 natural logarithm, within 2 ulp; `log(0) = -inf`, `log(x<0) = NaN`.
    log_f64, log64_k, log64_d, math64::log
);

#[inline(always)]
fn scale64_k<S: Simd>(_s: S, x: &[f64], alpha: f64, out: &mut [f64]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = alpha * v;
    }
}
multiversion! {
    fn scale64_d(x: &[f64], alpha: f64, out: &mut [f64]) -> () = scale64_k;
}

/// f64 `out[i] = alpha * x[i]`.
pub fn scale_f64(x: &[f64], alpha: f64, out: &mut [f64]) -> Result<(), Error> {
    same_len(x.len(), out.len())?;
    scale64_d(backend::active()?, x, alpha, out);
    Ok(())
}

#[inline(always)]
fn axpy64_k<S: Simd>(_s: S, alpha: f64, x: &[f64], y: &mut [f64]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = alpha.mul_add(v, *o);
    }
}
multiversion! {
    fn axpy64_d(alpha: f64, x: &[f64], y: &mut [f64]) -> () = axpy64_k;
}

/// f64 BLAS axpy in place, `y[i] = alpha * x[i] + y[i]`, one rounding (fused).
pub fn axpy_f64(alpha: f64, x: &[f64], y: &mut [f64]) -> Result<(), Error> {
    same_len(x.len(), y.len())?;
    axpy64_d(backend::active()?, alpha, x, y);
    Ok(())
}

#[inline(always)]
fn fma64_k<S: Simd>(_s: S, a: &[f64], b: &[f64], c: &[f64], out: &mut [f64]) {
    for (((o, &x), &y), &z) in out.iter_mut().zip(a).zip(b).zip(c) {
        *o = x.mul_add(y, z);
    }
}
multiversion! {
    fn fma64_d(a: &[f64], b: &[f64], c: &[f64], out: &mut [f64]) -> () = fma64_k;
}

/// f64 `out[i] = a[i] * b[i] + c[i]` with one rounding on every backend.
pub fn fma_f64(a: &[f64], b: &[f64], c: &[f64], out: &mut [f64]) -> Result<(), Error> {
    same_len(a.len(), b.len())?;
    same_len(a.len(), c.len())?;
    same_len(a.len(), out.len())?;
    fma64_d(backend::active()?, a, b, c, out);
    Ok(())
}

/// Which backends the tests compare: every one this CPU runs, plus the
/// portable 4-lane (NEON) code path even on x86.
#[cfg(test)]
pub(crate) fn test_backends() -> Vec<Backend> {
    backend::supported()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ulp_diff(a: f32, b: f64) -> f64 {
        // Distance in units of the f32 spacing at the reference value.
        let r = b as f32;
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
        let spacing = {
            let m = r.abs().max(f32::from_bits(1)); // >= smallest subnormal
            let next = f32::from_bits(m.to_bits() + 1);
            f64::from(next) - f64::from(m)
        };
        (f64::from(a) - b).abs() / spacing
    }

    type Unary = fn(Backend, &[f32], &mut [f32]);
    type Binary = fn(Backend, &[f32], &[f32], &mut [f32]);
    /// A kernel and the exact scalar operation it must reproduce.
    type Checked = (Binary, fn(f32, f32) -> f32);

    fn run1(be: Backend, f: Unary, x: &[f32]) -> Vec<f32> {
        let mut out = vec![f32::NAN; x.len()];
        f(be, x, &mut out);
        out
    }

    /// Inputs spread over every binade of interest plus the specials.
    fn sweep(lo: f32, hi: f32, n: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..n)
            .map(|i| lo + (hi - lo) * (i as f32 / (n - 1) as f32))
            .collect();
        v.extend([
            0.0,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-40,
            -1e-40,
            1.0,
            -1.0,
        ]);
        v
    }

    #[test]
    fn exp_within_2_ulp_on_every_backend() {
        let mut x = sweep(-104.5, 89.0, 200_003);
        x.extend((0..2000).map(|i| -87.0 - i as f32 * 0.0085)); // subnormal results
        for be in test_backends() {
            let y = run1(be, exp_d, &x);
            for (&xi, &yi) in x.iter().zip(&y) {
                let r = f64::from(xi).exp();
                let d = ulp_diff(yi, r);
                assert!(d <= 2.0, "{be}: exp({xi:e}) = {yi:e}, want {r:e} ({d} ulp)");
            }
        }
    }

    #[test]
    fn log_within_2_ulp_on_every_backend() {
        let mut x: Vec<f32> = (0..200_000)
            .map(|i| f32::from_bits(1 + i * 10_651))
            .collect();
        x.extend(sweep(0.5, 2.0, 20_001));
        x.extend([
            -1.0,
            -0.0,
            0.0,
            f32::MAX,
            f32::MIN_POSITIVE,
            f32::from_bits(1),
        ]);
        for be in test_backends() {
            let y = run1(be, log_d, &x);
            for (&xi, &yi) in x.iter().zip(&y) {
                let r = f64::from(xi).ln();
                let d = ulp_diff(yi, r);
                assert!(d <= 2.0, "{be}: log({xi:e}) = {yi:e}, want {r:e} ({d} ulp)");
            }
        }
    }

    fn check_close(
        name: &str,
        f: Unary,
        reference: impl Fn(f64) -> f64,
        ulps: f64,
        abs: f64,
        rel: f64,
    ) {
        let x = sweep(-20.0, 20.0, 100_001);
        for be in test_backends() {
            let y = run1(be, f, &x);
            for (&xi, &yi) in x.iter().zip(&y) {
                let r = reference(f64::from(xi));
                if r.is_nan() {
                    assert!(yi.is_nan(), "{be}: {name}({xi}) = {yi}, want NaN");
                    continue;
                }
                let err = (f64::from(yi) - r).abs();
                let ok = ulp_diff(yi, r) <= ulps || err <= abs || err <= rel * r.abs();
                assert!(ok, "{be}: {name}({xi:e}) = {yi:e}, want {r:e}");
            }
        }
    }

    fn erf(x: f64) -> f64 {
        // Abramowitz–Stegun 7.1.28 is not enough; use the series/continued
        // fraction in f64 for a reference good to ~1e-15.
        if x.abs() < 3.0 {
            let mut sum = x;
            let mut term = x;
            let x2 = x * x;
            for k in 1..200 {
                term *= -x2 / k as f64;
                let add = term / (2 * k + 1) as f64;
                sum += add;
                if add.abs() < 1e-17 * sum.abs() {
                    break;
                }
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            x.signum() * (1.0 - erfc_cf(x.abs()))
        }
    }

    fn erfc_cf(x: f64) -> f64 {
        // Continued fraction (Lentz) for x >= 3.
        let mut f = 0.0;
        for k in (1..120).rev() {
            f = (k as f64 / 2.0) / (x + f);
        }
        (-x * x).exp() / std::f64::consts::PI.sqrt() / (x + f)
    }

    fn gelu_erf_ref(x: f64) -> f64 {
        let z = -x / std::f64::consts::SQRT_2;
        let erfc = if z >= 3.0 { erfc_cf(z) } else { 1.0 - erf(z) };
        0.5 * x * erfc
    }

    #[test]
    fn activations_match_f64_reference() {
        check_close("tanh", tanh_d, f64::tanh, 4.0, 1e-7, 0.0);
        check_close(
            "sigmoid",
            sigmoid_d,
            |x| 1.0 / (1.0 + (-x).exp()),
            4.0,
            1e-7,
            0.0,
        );
        let k = (2.0 / std::f64::consts::PI).sqrt();
        check_close(
            "gelu_tanh",
            gelu_tanh_d,
            |x| 0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh()),
            4.0,
            1e-7,
            1e-6,
        );
        check_close("gelu_erf", gelu_erf_d, gelu_erf_ref, 4.0, 1e-7, 1e-6);
        check_close(
            "relu",
            relu_d,
            |x| if x.is_nan() { x } else { x.max(0.0) },
            0.0,
            0.0,
            0.0,
        );
    }

    fn lengths() -> impl Strategy<Value = (Vec<f32>, Vec<f32>, usize)> {
        (0usize..=4099, 0usize..3).prop_flat_map(|(n, off)| {
            (
                prop::collection::vec(special_f32(), n + off),
                prop::collection::vec(special_f32(), n + off),
                Just(off),
            )
        })
    }

    pub(crate) fn special_f32() -> impl Strategy<Value = f32> {
        prop_oneof![
            8 => -1.0e3f32..1.0e3,
            1 => Just(f32::NAN),
            1 => Just(f32::INFINITY),
            1 => Just(f32::NEG_INFINITY),
            1 => Just(0.0f32),
            1 => Just(-0.0f32),
            1 => Just(3.0e38f32),
            1 => Just(-3.0e38f32),
            1 => Just(1.0e-40f32),
        ]
    }

    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Arithmetic is exact IEEE on every backend: bit-identical to scalar,
        /// for every tail length and unaligned starts (offset sub-slices).
        #[test]
        fn arithmetic_matches_scalar((a, b, off) in lengths()) {
            let (a, b) = (&a[off..], &b[off..]);
            let n = a.len();
            let ops: [Checked; 4] = [
                (add_d, |x, y| x + y),
                (sub_d, |x, y| x - y),
                (mul_d, |x, y| x * y),
                (div_d, |x, y| x / y),
            ];
            for (op, reference) in ops {
                let want: Vec<f32> = a.iter().zip(b).map(|(x, y)| reference(*x, *y)).collect();
                for be in test_backends() {
                    let mut out = vec![7.0f32; n + 1];
                    op(be, a, b, &mut out[..n]);
                    prop_assert!(same_bits(&out[..n], &want), "{be}");
                    prop_assert_eq!(out[n], 7.0, "wrote past the end");
                }
            }
        }

        #[test]
        fn transcendental_backends_agree_with_scalar((a, _b, off) in lengths()) {
            let a = &a[off..];
            let fs: [Unary; 7] =
                [exp_d, log_d, tanh_d, sigmoid_d, gelu_tanh_d, gelu_erf_d, relu_d];
            for f in fs {
                let want = run1(Backend::Scalar, f, a);
                for be in test_backends() {
                    let got = run1(be, f, a);
                    for (g, w) in got.iter().zip(&want) {
                        let ok = g.to_bits() == w.to_bits()
                            || (g.is_nan() && w.is_nan())
                            // FMA vs two roundings: within the documented
                            // error of both against the f64 reference.
                            || (g - w).abs() <= 2e-6 * w.abs() + 1e-7;
                        prop_assert!(ok, "{be}: {g} vs scalar {w}");
                    }
                }
            }
        }

        #[test]
        fn scale_axpy_fma_match_reference((a, b, off) in lengths(), alpha in -4.0f32..4.0) {
            let (a, b) = (&a[off..], &b[off..]);
            let n = a.len();
            for be in test_backends() {
                let mut out = vec![0.0f32; n];
                scale_d(be, a, alpha, &mut out);
                let want: Vec<f32> = a.iter().map(|x| alpha * x).collect();
                prop_assert!(same_bits(&out, &want));

                let mut y = b.to_vec();
                axpy_d(be, alpha, a, &mut y);
                let mut out = vec![0.0f32; n];
                fma_d(be, &vec![alpha; n], a, b, &mut out);
                for i in 0..n {
                    let exact = f64::from(alpha) * f64::from(a[i]) + f64::from(b[i]);
                    for got in [y[i], out[i]] {
                        let ok = (got.is_nan() && exact.is_nan())
                            || f64::from(got) == exact
                            // Unfused scalar rounds twice; subnormals have
                            // absolute, not relative, spacing.
                            || (f64::from(got) - exact).abs()
                                <= 1e-6 * (f64::from(alpha * a[i]).abs() + f64::from(b[i]).abs())
                                    + 3e-45
                            || (got.is_infinite() && exact.abs() > 3.4e38)
                            // The unfused product itself overflows.
                            || (!got.is_finite()
                                && (f64::from(alpha) * f64::from(a[i])).abs() > 3.4e38);
                        prop_assert!(ok, "{be}: {got} vs {exact}");
                    }
                }
            }
        }
    }

    #[test]
    fn streaming_outputs_match_scalar_from_unaligned_starts() {
        let n = crate::machine::stream_min_elements() + 37;
        let a: Vec<f32> = (0..n + 3).map(|i| (i % 1000) as f32 * 0.01 - 5.0).collect();
        let b: Vec<f32> = (0..n + 3).map(|i| (i % 777) as f32 * 0.02 + 0.5).collect();
        for off in 0..3 {
            let (x, y) = (&a[off..off + n], &b[off..off + n]);
            let mut want = vec![0.0f32; n + 3];
            let mut got = vec![0.0f32; n + 3];
            for be in test_backends() {
                add_d(Backend::Scalar, x, y, &mut want[off..off + n]);
                add_d(be, x, y, &mut got[off..off + n]);
                assert!(same_bits(&got, &want), "{be} add off={off}");
                exp_d(Backend::Scalar, x, &mut want[off..off + n]);
                exp_d(be, x, &mut got[off..off + n]);
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(g, w)| (g - w).abs() <= 2e-6 * w.abs()),
                    "{be} exp"
                );
            }
        }
    }

    #[test]
    fn cached_stores_turn_streaming_off_on_this_thread_only_and_restore() {
        let n = crate::machine::stream_min_elements() + 5;
        let x: Vec<f32> = (0..n).map(|i| (i % 997) as f32 * 0.013 - 6.0).collect();
        let out = vec![0.0f32; n];
        assert!(stream_split(&out).is_some());
        crate::cached_stores(|| {
            assert!(stream_split(&out).is_none());
            crate::cached_stores(|| assert!(stream_split(&out).is_none()));
            assert!(
                stream_split(&out).is_none(),
                "nested guard restored too early"
            );
            std::thread::scope(|t| {
                t.spawn(|| assert!(stream_split(&out).is_some(), "leaked to another thread"));
            });
        });
        assert!(stream_split(&out).is_some());
        let unwound = std::panic::catch_unwind(|| crate::cached_stores(|| panic!("in f")));
        assert!(unwound.is_err());
        assert!(stream_split(&out).is_some(), "not restored on unwind");
        // Same results either way.
        for be in test_backends() {
            let (mut streamed, mut cached) = (vec![0.0f32; n], vec![0.0f32; n]);
            exp_d(be, &x, &mut streamed);
            crate::cached_stores(|| exp_d(be, &x, &mut cached));
            assert!(same_bits(&streamed, &cached), "{be} exp");
            crate::cached_stores(|| add_d(be, &x, &x, &mut cached));
            add_d(be, &x, &x, &mut streamed);
            assert!(same_bits(&streamed, &cached), "{be} add");
        }
    }

    /// The NEON backend's 4-lane portable kernels, exercised on any host.
    #[test]
    fn portable_4_lane_kernels_match_scalar() {
        use crate::simd::Portable;
        let x: Vec<f32> = (0..1027).map(|i| (i as f32 - 500.0) * 0.37).collect();
        let y: Vec<f32> = (0..1027).map(|i| (i as f32 * 0.11).cos() + 2.0).collect();
        let (mut w, mut g) = (vec![0.0; 1027], vec![0.0; 1027]);
        exp_k(Portable::<1>, &x, &mut w);
        exp_k(Portable::<4>, &x, &mut g);
        assert!(same_bits(&g, &w));
        div_k(Portable::<1>, &x, &y, &mut w);
        div_k(Portable::<4>, &x, &y, &mut g);
        assert!(same_bits(&g, &w));
        gelu_erf_k(Portable::<1>, &x, &mut w);
        gelu_erf_k(Portable::<4>, &x, &mut g);
        assert!(same_bits(&g, &w));
        let s1 = crate::reduce::sum_k(Portable::<1>, &x);
        let s4 = crate::reduce::sum_k(Portable::<4>, &x);
        // Rounding differs with lane count (and with the array's alignment,
        // which moves the block boundaries): bound it by Σ|x|.
        let abs: f64 = x.iter().map(|v| f64::from(v.abs())).sum();
        assert!((s1 - s4).abs() <= 1e-6 * abs, "{s1} vs {s4}");
    }

    #[test]
    fn length_mismatch_is_an_error_not_a_panic() {
        let mut out = [0.0f32; 3];
        assert_eq!(
            add(&[1.0; 3], &[1.0; 2], &mut out),
            Err(Error::LengthMismatch { left: 3, right: 2 })
        );
        assert_eq!(
            exp(&[1.0; 2], &mut out),
            Err(Error::LengthMismatch { left: 2, right: 3 })
        );
        assert_eq!(
            axpy(1.0, &[1.0; 2], &mut out),
            Err(Error::LengthMismatch { left: 2, right: 3 })
        );
        let mut o64 = [0.0f64; 2];
        assert_eq!(add_f64(&[1.0; 2], &[2.0; 2], &mut o64), Ok(()));
        assert_eq!(o64, [3.0; 2]);
    }
}

#[cfg(test)]
mod tests_f64 {
    use super::*;
    use proptest::prelude::*;

    type Map64 = fn(Backend, &[f64], &mut [f64]);
    /// A kernel under test: its name, its dispatcher and the scalar function it maps.
    type Case = (&'static str, Map64, fn(f64) -> f64);

    proptest! {
        /// Every backend computes exactly the scalar `math64` value (the loops only
        /// vectorise it; `mul_add` rounds once everywhere), for every length.
        #[test]
        fn f64_maps_are_bitwise_equal_across_backends(x in proptest::collection::vec(-800.0f64..800.0, 0..67)) {
            let maps: [Case; 7] = [
                ("exp", exp64_d, math64::exp),
                ("log", log64_d, math64::log),
                ("tanh", tanh64_d, math64::tanh),
                ("sigmoid", sigmoid64_d, math64::sigmoid),
                ("gelu_tanh", gelu_tanh64_d, math64::gelu_tanh),
                ("gelu_erf", gelu_erf64_d, math64::gelu_erf),
                ("relu", relu64_d, relu64),
            ];
            for (name, map, f) in maps {
                for be in test_backends() {
                    let mut out = vec![0.0; x.len()];
                    map(be, &x, &mut out);
                    for (&v, &o) in x.iter().zip(&out) {
                        let want = f(v);
                        prop_assert!(o.to_bits() == want.to_bits() || (o.is_nan() && want.is_nan()),
                            "{} {}({}) = {} vs {}", be, name, v, o, want);
                    }
                }
            }
        }
    }

    #[test]
    fn f64_linear_kernels_and_errors() {
        let x = [1.0, -2.0, 3.5, f64::NAN, -0.0];
        let mut out = [0.0; 5];
        relu_f64(&x, &mut out).unwrap();
        assert_eq!(&out[..3], &[1.0, 0.0, 3.5]);
        assert!(out[3].is_nan());
        assert_eq!(out[4].to_bits(), 0.0f64.to_bits());
        scale_f64(&x[..3], -2.0, &mut out[..3]).unwrap();
        assert_eq!(&out[..3], &[-2.0, 4.0, -7.0]);
        let mut y = [1.0, 1.0, 1.0];
        axpy_f64(0.5, &x[..3], &mut y).unwrap();
        assert_eq!(y, [1.5, 0.0, 2.75]);
        // One rounding: 0.1 * 10 - 1 is not 0 when fused.
        let mut f = [0.0];
        fma_f64(&[0.1], &[10.0], &[-1.0], &mut f).unwrap();
        assert_eq!(f[0], 0.1f64.mul_add(10.0, -1.0));
        assert_ne!(f[0], 0.0);
        assert!(exp_f64(&[1.0, 2.0], &mut [0.0]).is_err());
        assert!(fma_f64(&[1.0], &[1.0, 2.0], &[1.0], &mut [0.0]).is_err());
        assert!(axpy_f64(1.0, &[1.0, 2.0], &mut [0.0]).is_err());
    }
}
