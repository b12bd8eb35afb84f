//! llama.cpp's CPU arithmetic, operation by operation, rounding for rounding.
//!
//! Greedy decoding follows the larger of two logits; where they are nearly
//! tied, a one-ulp difference anywhere upstream picks the other token, and
//! 8-bit activation quantisation turns one-ulp differences into whole steps.
//! So matching llama.cpp's tokens means matching its arithmetic exactly, not
//! just mathematically: the same operations in the same order with the same
//! fused multiply-adds. Each function here is ggml-cpu's code path for an
//! x86 build with AVX-512 (the bench build: `GGML_AVX512=ON`, no AVX512-FP16),
//! compiled by GCC, whose `-ffp-contract=fast` fuses `a*b + c` in scalar C:
//!
//! | here | ggml-cpu |
//! |---|---|
//! | [`rms_norm`] | `ggml_compute_forward_rms_norm_f32` (+ the fused weight multiply): f64 sum of f32 squares |
//! | [`rope_cache`], [`rope_pairs`] | `ggml_rope_cache_init` (theta multiplied up in f32, `cosf`/`sinf`) and `rotate_pairs` (fused) |
//! | [`expf`] | `ggml_v_expf` (AVX-512): a degree-5 polynomial and `scalef`, not libm |
//! | [`silu_mul`] | `ggml_vec_swiglu_f32`: `x / (1 + v_expf(-x)) * g` |
//! | [`softmax`] | `ggml_compute_forward_soft_max_f32`: 16-lane sums added in f64, then one f32 reciprocal |
//! | [`dot_f16_gemm`] | llamafile's `tinyBLAS<16, __m512>` on f16 (prompt batches, 2+ tokens) |
//! | [`dot_f16_vec`] | `ggml_vec_dot_f16` (one token): four 16-lane accumulators |
//!
//! Inputs of the f16 dots are f32 values already rounded to f16 (the KV cache
//! and the converted query / probabilities). Every function was checked
//! element for element against tensors captured from llama.cpp 0.3.36 (its
//! `cb_eval` hook) on SmolLM2; the tests here pin the definitions.

/// Run `body` compiled with FMA when the CPU has it: `mul_add` is one
/// instruction instead of a libm call, with the same (exactly rounded) result.
macro_rules! with_fma {
    ($(#[$m:meta])* $name:ident, fn($($arg:ident: $ty:ty),*) -> $ret:ty, $body:ident) => {
        $(#[$m])*
        pub fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn fast($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("fma")
                    && std::arch::is_x86_feature_detected!("avx2")
                {
                    // SAFETY: the features `fast` is compiled for were detected.
                    return unsafe { fast($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

/// `_mm512_reduce_add_ps` as GCC expands it: halves, then quarters, then
/// `(t0 + t2) + (t1 + t3)`.
#[inline]
pub fn reduce16(v: &[f32; 16]) -> f32 {
    let mut t = [0f32; 8];
    for i in 0..8 {
        t[i] = v[i + 8] + v[i];
    }
    let u = [t[4] + t[0], t[5] + t[1], t[6] + t[2], t[7] + t[3]];
    (u[0] + u[2]) + (u[1] + u[3])
}

/// RMSNorm of one row, `y = x * (1 / sqrt(mean(x^2) + eps)) * w`.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, y: &mut [f32]) {
    let mut sum = 0f64;
    for &v in x {
        sum += f64::from(v * v);
    }
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for ((y, &x), &w) in y.iter_mut().zip(x).zip(w) {
        *y = x * scale * w;
    }
}

/// `(cos, sin)` for each rotated pair at position `pos`: theta starts at
/// `pos` and is multiplied by `theta_scale = base^(-2 / dims)` pair by pair.
pub fn rope_cache(pos: usize, theta_scale: f32, out: &mut [(f32, f32)]) {
    let mut theta = pos as f32;
    for o in out.iter_mut() {
        *o = (theta.cos(), theta.sin());
        theta *= theta_scale;
    }
}

#[inline(always)]
fn rope_body(x: &mut [f32], cache: &[(f32, f32)]) {
    for (p, &(c, s)) in x.chunks_exact_mut(2).zip(cache) {
        let (x0, x1) = (p[0], p[1]);
        p[0] = x0.mul_add(c, -(x1 * s));
        p[1] = x0.mul_add(s, x1 * c);
    }
}

with_fma!(
    /// Rotate adjacent pairs `(x[2i], x[2i+1])` by `cache[i]` (llama's "normal"
    /// RoPE), with ggml's fused multiply-adds.
    rope_pairs, fn(x: &mut [f32], cache: &[(f32, f32)]) -> (), rope_body);

#[inline(always)]
fn expf_body(x: f32) -> f32 {
    let r = f32::from_bits(0x4b40_0000); // 0x1.8p23
    let z = x.mul_add(f32::from_bits(0x3fb8_aa3b), r); // log2(e)
    let n = z - r;
    let b = (-n).mul_add(
        f32::from_bits(0x35bf_be8e),                  // ln2 low part
        (-n).mul_add(f32::from_bits(0x3f31_7200), x), // ln2 high part
    );
    if n.abs() > 192.0 {
        return if n <= 0.0 { 0.0 } else { f32::INFINITY };
    }
    if n.is_nan() {
        return f32::NAN;
    }
    let u = b * b;
    let p = f32::from_bits(0x3c07_2010)
        .mul_add(b, f32::from_bits(0x3d2b_9f17))
        .mul_add(
            u,
            f32::from_bits(0x3e2a_af33).mul_add(b, f32::from_bits(0x3eff_fedb)),
        );
    let j = p.mul_add(u, f32::from_bits(0x3f7f_fff6).mul_add(b, 1.0));
    // scalef: j * 2^n rounded once (n is integral and |n| <= 192).
    let pow2 = f64::from_bits(((n as i64 + 1023) as u64) << 52);
    (f64::from(j) * pow2) as f32
}

with_fma!(
    /// `ggml_v_expf`, one lane: ARM's optimised-routines `expf` (max error about
    /// 1.5 ulp); below about -104 it is 0, above about 88.4 infinity.
    expf, fn(x: f32) -> f32, expf_body);

#[inline(always)]
fn silu_body(x: &[f32], g: &[f32], y: &mut [f32]) {
    for ((y, &x), &g) in y.iter_mut().zip(x).zip(g) {
        *y = x / (1.0 + expf_body(0.0 - x)) * g;
    }
}

with_fma!(
    /// SwiGLU, `y = silu(x) * g` with `silu(x) = x / (1 + expf(-x))`.
    silu_mul, fn(x: &[f32], g: &[f32], y: &mut [f32]) -> (), silu_body);

#[inline(always)]
fn softmax_body(w: &mut [f32]) {
    let max = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f64;
    for c in w.chunks_mut(16) {
        let mut lanes = [0f32; 16];
        for (l, v) in lanes.iter_mut().zip(c.iter_mut()) {
            *v = expf_body(*v - max);
            *l = *v;
        }
        // A short last chunk: ggml pads the KV length to 256, the padding
        // is masked, and masked lanes contribute exact zeros.
        sum += f64::from(reduce16(&lanes));
    }
    let inv = (1.0 / sum) as f32;
    for v in w.iter_mut() {
        *v *= inv;
    }
}

with_fma!(
    /// Softmax of `w` (already scaled and masked) in place. The exponentials are
    /// summed 16 at a time in f32, those sums in f64; the reciprocal is rounded
    /// to f32 once and multiplies every value.
    softmax, fn(w: &mut [f32]) -> (), softmax_body);

/// llama.cpp's two summation orders for f16 products: llamafile's tinyBLAS
/// GEMM for a batch of 2+ rows (prompt prefill), `ggml_vec_dot_f16` for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum F16Order {
    /// One 16-lane accumulator stepping 16 elements (element `i` in lane `i % 16`).
    Gemm,
    /// Four 16-lane accumulators over steps of 64 (element `i` in accumulator
    /// `(i % 64) / 16`, lane `i % 16`), combined `(s0 + s2) + (s1 + s3)`.
    Vec,
}

impl F16Order {
    /// The order llama.cpp uses for a product with `rows` activation rows.
    pub fn for_rows(rows: usize) -> F16Order {
        if rows >= 2 {
            F16Order::Gemm
        } else {
            F16Order::Vec
        }
    }
}

#[inline(always)]
fn dot_body(order: F16Order, a: &[f32], b: &[f32]) -> f32 {
    match order {
        F16Order::Gemm => {
            let mut acc = [0f32; 16];
            for (ca, cb) in a.chunks(16).zip(b.chunks(16)) {
                for ((acc, &x), &y) in acc.iter_mut().zip(ca).zip(cb) {
                    *acc = x.mul_add(y, *acc);
                }
            }
            reduce16(&acc)
        }
        F16Order::Vec => {
            let mut acc = [[0f32; 16]; 4];
            for (c64a, c64b) in a.chunks(64).zip(b.chunks(64)) {
                for (slot, (ca, cb)) in acc.iter_mut().zip(c64a.chunks(16).zip(c64b.chunks(16))) {
                    for ((acc, &x), &y) in slot.iter_mut().zip(ca).zip(cb) {
                        *acc = x.mul_add(y, *acc);
                    }
                }
            }
            let mut s = [0f32; 16];
            for l in 0..16 {
                s[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
            }
            reduce16(&s)
        }
    }
}

with_fma!(
    /// `Σ a_i b_i` of two f16-valued rows in llama.cpp's `order`.
    dot_f16, fn(order: F16Order, a: &[f32], b: &[f32]) -> f32, dot_body);

/// `Σ a_i b_i` in tinyBLAS's order ([`F16Order::Gemm`]); elements past the
/// shorter slice are the zero padding.
pub fn dot_f16_gemm(a: &[f32], b: &[f32]) -> f32 {
    dot_f16(F16Order::Gemm, a, b)
}

/// `Σ a_i b_i` in `ggml_vec_dot_f16`'s order ([`F16Order::Vec`]).
pub fn dot_f16_vec(a: &[f32], b: &[f32]) -> f32 {
    dot_f16(F16Order::Vec, a, b)
}

#[inline(always)]
fn weighted_body(
    order: F16Order,
    p: &[f32],
    v: &[f32],
    stride: usize,
    out: &mut [f32],
    acc: &mut Vec<f32>,
) {
    let w = out.len();
    let slots = if order == F16Order::Vec { 4 } else { 1 };
    acc.clear();
    acc.resize(slots * 16 * w, 0.0);
    for (j, &pj) in p.iter().enumerate() {
        let slot = if order == F16Order::Vec {
            (j % 64) / 16
        } else {
            0
        };
        let k = (slot * 16 + j % 16) * w;
        let row = &v[j * stride..j * stride + w];
        for (a, &x) in acc[k..k + w].iter_mut().zip(row) {
            *a = pj.mul_add(x, *a);
        }
    }
    // Output i reduces its 16 (x 4) lanes as `reduce16` does, the same
    // additions in the same order; here each step runs for every output at
    // once (lane l of output i is `acc[l * w + i]`: contiguous in i), in place.
    if order == F16Order::Vec {
        for l in 0..16 {
            let (lo, hi) = acc.split_at_mut(16 * w);
            let (s1, rest) = hi.split_at(16 * w);
            let (s2, s3) = rest.split_at(16 * w);
            let s0 = &mut lo[l * w..(l + 1) * w];
            let r = l * w..(l + 1) * w;
            for (((a, &b), &c), &d) in s0
                .iter_mut()
                .zip(&s2[r.clone()])
                .zip(&s1[r.clone()])
                .zip(&s3[r])
            {
                *a = (*a + b) + (c + d);
            }
        }
    }
    // reduce16: halves, quarters, then (u0 + u2) + (u1 + u3).
    for (k, step) in [(8, 8), (4, 4)] {
        for l in 0..k {
            let (lo, hi) = acc.split_at_mut((l + step) * w);
            for (a, &b) in lo[l * w..(l + 1) * w].iter_mut().zip(&hi[..w]) {
                *a += b; // reduce16's `v[l + step] + v[l]` (addition commutes)
            }
        }
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = (acc[i] + acc[2 * w + i]) + (acc[w + i] + acc[3 * w + i]);
    }
}

with_fma!(
    /// [`weighted_rows_f16`] without its bounds check.
    weighted_rows_f16_impl,
    fn(order: F16Order, p: &[f32], v: &[f32], stride: usize, out: &mut [f32], acc: &mut Vec<f32>) -> (),
    weighted_body
);

/// `out[i] = Σ_j p[j] * v[j * stride + i]`: attention's probabilities times
/// the cached values, one dot over positions per output, in `order`'s
/// summation (position `j` is the dot's element `j`). `acc` is scratch.
pub fn weighted_rows_f16(
    order: F16Order,
    p: &[f32],
    v: &[f32],
    stride: usize,
    out: &mut [f32],
    acc: &mut Vec<f32>,
) {
    if let Some(last) = p.len().checked_sub(1) {
        assert!(
            v.len() >= last * stride + out.len(),
            "{} values cannot hold {} rows of stride {stride}",
            v.len(),
            p.len()
        );
    }
    weighted_rows_f16_impl(order, p, v, stride, out, acc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expf_is_close_to_libm_and_saturates() {
        let mut worst = 0f64;
        // Normal results only: below about -87.3 they are subnormal and carry
        // fewer bits, so relative error grows (checked absolutely below).
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = f64::from(expf(x));
            let want = f64::from(x).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        // ggml documents 1.45 ulp + 0.5: about 2e-7 relative.
        assert!(worst < 2.5e-7, "{worst}");
        for x in [-90.0f32, -95.5, -100.0, -103.5] {
            assert!(
                (f64::from(expf(x)) - f64::from(x).exp()).abs() < 2e-45,
                "{x}"
            );
        }
        assert_eq!(expf(0.0), 1.0);
        assert_eq!(expf(f32::NEG_INFINITY), 0.0);
        assert_eq!(expf(-200.0), 0.0);
        assert_eq!(expf(200.0), f32::INFINITY);
        assert!(expf(f32::NAN).is_nan());
    }

    #[test]
    fn softmax_sums_to_one_and_masks() {
        let mut w: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 4.0).collect();
        w[5] = f32::NEG_INFINITY;
        let want: Vec<f64> = {
            let m = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f64> = w.iter().map(|&v| f64::from(v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        };
        softmax(&mut w);
        assert_eq!(w[5], 0.0);
        for (g, e) in w.iter().zip(&want) {
            assert!((f64::from(*g) - e).abs() < 1e-6, "{g} {e}");
        }
    }

    #[test]
    fn f16_dots_are_dots_in_their_order() {
        let a: Vec<f32> = (0..256)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.25)
            .collect();
        let b: Vec<f32> = (0..256)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.5)
            .collect();
        // Small integers times quarters: every order is exact.
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot_f16_gemm(&a, &b), want);
        assert_eq!(dot_f16_vec(&a, &b), want);
        assert_eq!(
            dot_f16_vec(&a[..70], &b[..70]),
            a[..70].iter().zip(&b).map(|(x, y)| x * y).sum::<f32>()
        );
        assert_eq!(dot_f16_gemm(&[], &[]), 0.0);
        // Order is visible when it should be: 1 + 2^24 - 2^24 in lane order.
        let mut x = vec![0f32; 32];
        x[0] = 1.0;
        x[16] = 16_777_216.0;
        x[8] = -16_777_216.0;
        let ones = vec![1f32; 32];
        // gemm: lane 0 holds 1 + 2^24 (rounds to 2^24), lane 8 holds -2^24.
        assert_eq!(dot_f16_gemm(&x, &ones), 0.0);
    }

    #[test]
    fn weighted_rows_are_dots_over_positions_in_either_order() {
        let (len, stride, w) = (150, 7 * 64, 64);
        let p: Vec<f32> = (0..len)
            .map(|j| round_f16_test(((j * 31 % 17) as f32).sin()))
            .collect();
        let v: Vec<f32> = (0..len * stride)
            .map(|i| round_f16_test(((i * 13 % 29) as f32 * 0.1).cos()))
            .collect();
        let mut acc = Vec::new();
        for order in [F16Order::Gemm, F16Order::Vec] {
            let mut out = vec![0f32; w];
            weighted_rows_f16(order, &p, &v[64..], stride, &mut out, &mut acc);
            for (i, &o) in out.iter().enumerate() {
                let col: Vec<f32> = (0..len).map(|j| v[64 + j * stride + i]).collect();
                assert_eq!(
                    o.to_bits(),
                    dot_f16(order, &col, &p).to_bits(),
                    "{order:?} {i}"
                );
            }
        }
        assert_eq!(F16Order::for_rows(1), F16Order::Vec);
        assert_eq!(F16Order::for_rows(5), F16Order::Gemm);
    }

    fn round_f16_test(x: f32) -> f32 {
        crate::quant::round_f16(x)
    }

    #[test]
    fn rms_norm_and_rope_match_their_definitions() {
        let x = [3.0f32, -4.0, 0.0, 0.0];
        let mut y = [0f32; 4];
        rms_norm(&x, &[1.0, 2.0, 1.0, 1.0], 0.0, &mut y);
        // mean square 6.25, scale 0.4
        assert_eq!(y, [3.0 * 0.4, -4.0 * 0.4 * 2.0, 0.0, 0.0]);
        let mut cache = [(0f32, 0f32); 2];
        rope_cache(0, 0.5, &mut cache);
        assert_eq!(cache, [(1.0, 0.0), (1.0, 0.0)]);
        rope_cache(3, 0.5, &mut cache);
        assert_eq!(cache[1], (1.5f32.cos(), 1.5f32.sin()));
        let mut v = [1.0f32, 0.0, 0.0, 2.0];
        rope_pairs(&mut v, &[(0.0, 1.0), (1.0, 0.0)]);
        assert_eq!(v, [0.0, 1.0, 0.0, 2.0]);
    }
}
