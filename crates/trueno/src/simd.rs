//! One vocabulary of vector operations, implemented per instruction set.
//!
//! Kernels are written once, generic over [`Simd`], and instantiated for each
//! backend inside a `#[target_feature]` function (see [`multiversion!`]), so
//! the intrinsics inline into code compiled for the right CPU. A backend type
//! is a zero-sized *token*: an [`Avx512`] or [`Avx2`] value can only be made
//! inside a function compiled with those features, i.e. after
//! [`crate::backend`] checked the CPU. That is what makes the `unsafe`
//! intrinsic calls below sound.
//!
//! [`Portable<N>`] implements the same operations on plain `[f32; N]` arrays:
//! `Portable<1>` is the scalar reference backend, `Portable<4>` the NEON one
//! (AArch64 code generation vectorises the 4-lane arrays; being portable it is
//! also tested on x86).

/// Vector operations on `LANES` f32 values. Every method is `#[inline(always)]`
/// in the implementations so that it compiles inside the calling kernel.
pub(crate) trait Simd: Copy {
    /// Number of f32 lanes.
    const LANES: usize;
    /// A vector of `LANES` f32.
    type V: Copy;
    /// A per-lane boolean.
    type M: Copy;

    fn splat(self, x: f32) -> Self::V;
    /// Load the first `LANES` values of `s` (panics if it is shorter).
    fn load(self, s: &[f32]) -> Self::V;
    /// Store into the first `LANES` values of `s` (panics if it is shorter).
    fn store(self, s: &mut [f32], v: Self::V);
    /// Load `s.len() < LANES` values; the other lanes are `fill`.
    fn load_tail(self, s: &[f32], fill: f32) -> Self::V;
    /// Store the first `s.len() < LANES` lanes of `v`.
    fn store_tail(self, s: &mut [f32], v: Self::V);
    /// Non-temporal store of a full vector (bypasses the caches, saving the
    /// read-for-ownership of big outputs). `s` must start 64-byte aligned
    /// (asserted). Follow a run of them with [`Simd::stream_fence`].
    #[inline(always)]
    fn store_stream(self, s: &mut [f32], v: Self::V) {
        self.store(s, v)
    }
    /// Order the preceding streaming stores before later stores.
    #[inline(always)]
    fn stream_fence(self) {}
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c` (fused where the backend has FMA).
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Lane-wise minimum; if either lane is NaN the result is `b`'s lane.
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise maximum; if either lane is NaN the result is `b`'s lane.
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// Round to nearest, ties to even.
    fn round(self, a: Self::V) -> Self::V;
    fn lt(self, a: Self::V, b: Self::V) -> Self::M;
    fn eq(self, a: Self::V, b: Self::V) -> Self::M;
    fn is_nan(self, a: Self::V) -> Self::M;
    fn mask_or(self, a: Self::M, b: Self::M) -> Self::M;
    fn mask_any(self, m: Self::M) -> bool;
    /// `m ? a : b` per lane.
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V;
    /// Flip the sign bit.
    fn neg(self, a: Self::V) -> Self::V;
    /// Clear the sign bit.
    fn abs(self, a: Self::V) -> Self::V;
    /// `2^n` for lanes holding integers in `-126..=127`.
    fn pow2i(self, n: Self::V) -> Self::V;
    /// `y * 2^n` for integer-valued `n` in `-151..=129`, rounded once (so
    /// subnormal results are right and large `n` overflows to inf).
    #[inline(always)]
    fn ldexp(self, y: Self::V, n: Self::V) -> Self::V {
        ldexp_two_steps(self, y, n)
    }
    /// For positive normal `a`: `(e, m)` with `a = m * 2^e`, `m` in `[1, 2)`.
    fn frexp(self, a: Self::V) -> (Self::V, Self::V);
    fn reduce_add(self, v: Self::V) -> f32;
    /// Horizontal max of non-NaN lanes.
    fn reduce_max(self, v: Self::V) -> f32;
    /// Horizontal min of non-NaN lanes.
    fn reduce_min(self, v: Self::V) -> f32;
}

/// [`Simd::ldexp`] for every `n` in `-151..=129`: two steps keep both factors normal
/// (`|n1|, |n2| <= 76`), so the result is rounded once.
#[inline(always)]
fn ldexp_two_steps<S: Simd>(s: S, y: S::V, n: S::V) -> S::V {
    let n1 = s.round(s.mul(n, s.splat(0.5)));
    let n2 = s.sub(n, n1);
    s.mul(s.mul(y, s.pow2i(n1)), s.pow2i(n2))
}

/// A lane-wise map `v -> f(v)` that the drivers (`map1`, ...) call.
///
/// Why a trait and not a closure: a kernel is compiled for a CPU by inlining
/// it into a `#[target_feature]` function. Trait methods marked
/// `#[inline(always)]` are always inlined there; closures (and std iterator
/// adapters such as `fold`) are separate functions that LLVM may keep out of
/// line, compiled *without* the features, so every intrinsic in them becomes
/// a function call. Kernels therefore use plain loops and these traits.
pub(crate) trait Op1<S: Simd> {
    fn apply(&self, s: S, v: S::V) -> S::V;
}

/// A lane-wise binary operation `(a, b) -> f(a, b)`.
pub(crate) trait Op2<S: Simd> {
    fn apply(&self, s: S, a: S::V, b: S::V) -> S::V;
}

/// An [`Op1`] without captured state: `op1!(|s, v| expr)`.
macro_rules! op1 {
    (|$s:ident, $v:ident| $body:expr) => {{
        struct Op;
        impl<S: $crate::simd::Simd> $crate::simd::Op1<S> for Op {
            #[inline(always)]
            fn apply(&self, $s: S, $v: S::V) -> S::V {
                $body
            }
        }
        Op
    }};
}
pub(crate) use op1;

/// An [`Op2`] without captured state: `op2!(|s, a, b| expr)`.
macro_rules! op2 {
    (|$s:ident, $a:ident, $b:ident| $body:expr) => {{
        struct Op;
        impl<S: $crate::simd::Simd> $crate::simd::Op2<S> for Op {
            #[inline(always)]
            fn apply(&self, $s: S, $a: S::V, $b: S::V) -> S::V {
                $body
            }
        }
        Op
    }};
}
pub(crate) use op2;

/// Portable lanes: scalar reference (`N = 1`) and the NEON backend (`N = 4`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Portable<const N: usize>;

#[inline(always)]
fn lanewise<const N: usize>(a: [f32; N], f: impl Fn(f32) -> f32) -> [f32; N] {
    let mut r = a;
    for x in &mut r {
        *x = f(*x);
    }
    r
}

#[inline(always)]
fn zip<const N: usize>(a: [f32; N], b: [f32; N], f: impl Fn(f32, f32) -> f32) -> [f32; N] {
    let mut r = a;
    for (x, y) in r.iter_mut().zip(b) {
        *x = f(*x, y);
    }
    r
}

#[inline(always)]
fn cmp<const N: usize>(a: [f32; N], b: [f32; N], f: impl Fn(f32, f32) -> bool) -> [bool; N] {
    let mut r = [false; N];
    for i in 0..N {
        r[i] = f(a[i], b[i]);
    }
    r
}

impl<const N: usize> Simd for Portable<N> {
    const LANES: usize = N;
    type V = [f32; N];
    type M = [bool; N];

    #[inline(always)]
    fn splat(self, x: f32) -> Self::V {
        [x; N]
    }
    #[inline(always)]
    fn load(self, s: &[f32]) -> Self::V {
        let mut r = [0.0; N];
        r.copy_from_slice(&s[..N]);
        r
    }
    #[inline(always)]
    fn store(self, s: &mut [f32], v: Self::V) {
        s[..N].copy_from_slice(&v);
    }
    #[inline(always)]
    fn load_tail(self, s: &[f32], fill: f32) -> Self::V {
        let mut r = [fill; N];
        r[..s.len()].copy_from_slice(s);
        r
    }
    #[inline(always)]
    fn store_tail(self, s: &mut [f32], v: Self::V) {
        let n = s.len();
        s.copy_from_slice(&v[..n]);
    }
    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        zip(a, b, |x, y| x + y)
    }
    #[inline(always)]
    fn sub(self, a: Self::V, b: Self::V) -> Self::V {
        zip(a, b, |x, y| x - y)
    }
    #[inline(always)]
    fn mul(self, a: Self::V, b: Self::V) -> Self::V {
        zip(a, b, |x, y| x * y)
    }
    #[inline(always)]
    fn div(self, a: Self::V, b: Self::V) -> Self::V {
        zip(a, b, |x, y| x / y)
    }
    #[inline(always)]
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        // Unfused: without FMA hardware `mul_add` is a slow libm call.
        zip(zip(a, b, |x, y| x * y), c, |p, z| p + z)
    }
    #[inline(always)]
    fn min(self, a: Self::V, b: Self::V) -> Self::V {
        zip(a, b, |x, y| if x < y { x } else { y })
    }
    #[inline(always)]
    fn max(self, a: Self::V, b: Self::V) -> Self::V {
        zip(a, b, |x, y| if x > y { x } else { y })
    }
    #[inline(always)]
    fn round(self, a: Self::V) -> Self::V {
        // Not `f32::round_ties_even`: without SSE4.1 (x86-64 baseline) that
        // is a libm call per element. Adding 2^23 to |x| < 2^23 leaves a
        // spacing of 1, so the FPU's ties-to-even rounding does the work;
        // larger values (and NaN, which fails the test) are already integral.
        lanewise(a, |x| {
            const TWO23: f32 = 8_388_608.0;
            if x.abs() < TWO23 {
                ((x.abs() + TWO23) - TWO23).copysign(x)
            } else {
                x
            }
        })
    }
    #[inline(always)]
    fn lt(self, a: Self::V, b: Self::V) -> Self::M {
        cmp(a, b, |x, y| x < y)
    }
    #[inline(always)]
    fn eq(self, a: Self::V, b: Self::V) -> Self::M {
        cmp(a, b, |x, y| x == y)
    }
    #[inline(always)]
    fn is_nan(self, a: Self::V) -> Self::M {
        cmp(a, a, |x, _| x.is_nan())
    }
    #[inline(always)]
    fn mask_or(self, a: Self::M, b: Self::M) -> Self::M {
        let mut r = a;
        for (x, y) in r.iter_mut().zip(b) {
            *x |= y;
        }
        r
    }
    #[inline(always)]
    fn mask_any(self, m: Self::M) -> bool {
        m.iter().any(|&b| b)
    }
    #[inline(always)]
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V {
        let mut r = b;
        for i in 0..N {
            if m[i] {
                r[i] = a[i];
            }
        }
        r
    }
    #[inline(always)]
    fn neg(self, a: Self::V) -> Self::V {
        lanewise(a, |x| -x)
    }
    #[inline(always)]
    fn abs(self, a: Self::V) -> Self::V {
        lanewise(a, f32::abs)
    }
    #[inline(always)]
    fn pow2i(self, n: Self::V) -> Self::V {
        lanewise(n, |x| f32::from_bits(((x as i32 + 127) as u32) << 23))
    }
    #[inline(always)]
    fn frexp(self, a: Self::V) -> (Self::V, Self::V) {
        let e = lanewise(a, |x| ((x.to_bits() >> 23) & 0xff) as f32 - 127.0);
        let m = lanewise(a, |x| {
            f32::from_bits((x.to_bits() & 0x007f_ffff) | 0x3f80_0000)
        });
        (e, m)
    }
    #[inline(always)]
    fn reduce_add(self, v: Self::V) -> f32 {
        // Pairwise, like the SIMD horizontal adds.
        let mut v = v;
        let mut w = N;
        while w > 1 {
            w /= 2;
            for i in 0..w {
                v[i] += v[i + w];
            }
        }
        v[0]
    }
    #[inline(always)]
    fn reduce_max(self, v: Self::V) -> f32 {
        v.iter()
            .copied()
            .fold(f32::NEG_INFINITY, |m, x| if x > m { x } else { m })
    }
    #[inline(always)]
    fn reduce_min(self, v: Self::V) -> f32 {
        v.iter()
            .copied()
            .fold(f32::INFINITY, |m, x| if x < m { x } else { m })
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Simd;
    use std::arch::x86_64::*;

    /// Token for AVX2 + FMA. Only constructible where those features are on.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Avx2(());

    impl Avx2 {
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        pub(crate) fn new() -> Self {
            Avx2(())
        }
    }

    /// Token for AVX-512 F/BW/VL/DQ (+ AVX2, FMA).
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Avx512(());

    impl Avx512 {
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
        #[inline]
        pub(crate) fn new() -> Self {
            Avx512(())
        }
    }

    // Each method body below is one `unsafe` block calling intrinsics.
    // SAFETY (shared argument): `self` is a token that only exists inside a
    // function compiled with the token's target features, and such functions
    // are only entered after `crate::backend` verified the CPU has them.
    // Pointer reads/writes are bounds-checked (or masked) against the slice.
    macro_rules! tok {
        ($e:expr) => {{
            // SAFETY: see the shared argument above: the token proves the
            // CPU features; memory accesses stay inside the given slice.
            unsafe { $e }
        }};
    }

    impl Simd for Avx512 {
        const LANES: usize = 16;
        type V = __m512;
        type M = __mmask16;

        #[inline(always)]
        fn splat(self, x: f32) -> __m512 {
            tok!(_mm512_set1_ps(x))
        }
        #[inline(always)]
        fn load(self, s: &[f32]) -> __m512 {
            assert!(s.len() >= 16);
            tok!(_mm512_loadu_ps(s.as_ptr()))
        }
        #[inline(always)]
        fn store(self, s: &mut [f32], v: __m512) {
            assert!(s.len() >= 16);
            tok!(_mm512_storeu_ps(s.as_mut_ptr(), v))
        }
        #[inline(always)]
        fn store_stream(self, s: &mut [f32], v: __m512) {
            assert!(s.len() >= 16 && (s.as_ptr() as usize).is_multiple_of(64));
            tok!(_mm512_stream_ps(s.as_mut_ptr(), v))
        }
        #[inline(always)]
        fn stream_fence(self) {
            tok!(_mm_sfence())
        }
        #[inline(always)]
        fn load_tail(self, s: &[f32], fill: f32) -> __m512 {
            let n = s.len().min(16);
            let m: __mmask16 = ((1u32 << n) - 1) as u16;
            // Masked-off lanes are not accessed, so no read past the slice.
            tok!(_mm512_mask_loadu_ps(_mm512_set1_ps(fill), m, s.as_ptr()))
        }
        #[inline(always)]
        fn store_tail(self, s: &mut [f32], v: __m512) {
            let n = s.len().min(16);
            let m: __mmask16 = ((1u32 << n) - 1) as u16;
            tok!(_mm512_mask_storeu_ps(s.as_mut_ptr(), m, v))
        }
        #[inline(always)]
        fn add(self, a: __m512, b: __m512) -> __m512 {
            tok!(_mm512_add_ps(a, b))
        }
        #[inline(always)]
        fn sub(self, a: __m512, b: __m512) -> __m512 {
            tok!(_mm512_sub_ps(a, b))
        }
        #[inline(always)]
        fn mul(self, a: __m512, b: __m512) -> __m512 {
            tok!(_mm512_mul_ps(a, b))
        }
        #[inline(always)]
        fn div(self, a: __m512, b: __m512) -> __m512 {
            tok!(_mm512_div_ps(a, b))
        }
        #[inline(always)]
        fn fma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
            tok!(_mm512_fmadd_ps(a, b, c))
        }
        #[inline(always)]
        fn min(self, a: __m512, b: __m512) -> __m512 {
            tok!(_mm512_min_ps(a, b))
        }
        #[inline(always)]
        fn max(self, a: __m512, b: __m512) -> __m512 {
            tok!(_mm512_max_ps(a, b))
        }
        #[inline(always)]
        fn round(self, a: __m512) -> __m512 {
            tok!(_mm512_roundscale_ps::<
                { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
            >(a))
        }
        #[inline(always)]
        fn lt(self, a: __m512, b: __m512) -> __mmask16 {
            tok!(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b))
        }
        #[inline(always)]
        fn eq(self, a: __m512, b: __m512) -> __mmask16 {
            tok!(_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b))
        }
        #[inline(always)]
        fn is_nan(self, a: __m512) -> __mmask16 {
            tok!(_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, a))
        }
        #[inline(always)]
        fn mask_or(self, a: __mmask16, b: __mmask16) -> __mmask16 {
            a | b
        }
        #[inline(always)]
        fn mask_any(self, m: __mmask16) -> bool {
            m != 0
        }
        #[inline(always)]
        fn select(self, m: __mmask16, a: __m512, b: __m512) -> __m512 {
            tok!(_mm512_mask_blend_ps(m, b, a))
        }
        #[inline(always)]
        fn neg(self, a: __m512) -> __m512 {
            tok!(_mm512_castsi512_ps(_mm512_xor_si512(
                _mm512_castps_si512(a),
                _mm512_set1_epi32(i32::MIN)
            )))
        }
        #[inline(always)]
        fn abs(self, a: __m512) -> __m512 {
            tok!(_mm512_abs_ps(a))
        }
        #[inline(always)]
        fn pow2i(self, n: __m512) -> __m512 {
            tok!(_mm512_castsi512_ps(_mm512_slli_epi32::<23>(
                _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127))
            )))
        }
        #[inline(always)]
        fn ldexp(self, y: __m512, n: __m512) -> __m512 {
            // One instruction, IEEE-correct for overflow and subnormals.
            tok!(_mm512_scalef_ps(y, n))
        }
        #[inline(always)]
        fn frexp(self, a: __m512) -> (__m512, __m512) {
            tok!((
                _mm512_getexp_ps(a),
                _mm512_getmant_ps::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_SRC>(a)
            ))
        }
        #[inline(always)]
        fn reduce_add(self, v: __m512) -> f32 {
            tok!(_mm512_reduce_add_ps(v))
        }
        #[inline(always)]
        fn reduce_max(self, v: __m512) -> f32 {
            // max_ps(x, nan) = nan would leak in: neutralise NaN lanes first.
            tok!(_mm512_reduce_max_ps(_mm512_mask_blend_ps(
                _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v),
                v,
                _mm512_set1_ps(f32::NEG_INFINITY)
            )))
        }
        #[inline(always)]
        fn reduce_min(self, v: __m512) -> f32 {
            tok!(_mm512_reduce_min_ps(_mm512_mask_blend_ps(
                _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v),
                v,
                _mm512_set1_ps(f32::INFINITY)
            )))
        }
    }

    impl Simd for Avx2 {
        const LANES: usize = 8;
        type V = __m256;
        type M = __m256;

        #[inline(always)]
        fn splat(self, x: f32) -> __m256 {
            tok!(_mm256_set1_ps(x))
        }
        #[inline(always)]
        fn load(self, s: &[f32]) -> __m256 {
            assert!(s.len() >= 8);
            tok!(_mm256_loadu_ps(s.as_ptr()))
        }
        #[inline(always)]
        fn store(self, s: &mut [f32], v: __m256) {
            assert!(s.len() >= 8);
            tok!(_mm256_storeu_ps(s.as_mut_ptr(), v))
        }
        #[inline(always)]
        fn store_stream(self, s: &mut [f32], v: __m256) {
            assert!(s.len() >= 8 && (s.as_ptr() as usize).is_multiple_of(32));
            tok!(_mm256_stream_ps(s.as_mut_ptr(), v))
        }
        #[inline(always)]
        fn stream_fence(self) {
            tok!(_mm_sfence())
        }
        #[inline(always)]
        fn load_tail(self, s: &[f32], fill: f32) -> __m256 {
            let mut buf = [fill; 8];
            let n = s.len().min(8);
            buf[..n].copy_from_slice(&s[..n]);
            tok!(_mm256_loadu_ps(buf.as_ptr()))
        }
        #[inline(always)]
        fn store_tail(self, s: &mut [f32], v: __m256) {
            let mut buf = [0.0f32; 8];
            tok!(_mm256_storeu_ps(buf.as_mut_ptr(), v));
            let n = s.len().min(8);
            s[..n].copy_from_slice(&buf[..n]);
        }
        #[inline(always)]
        fn add(self, a: __m256, b: __m256) -> __m256 {
            tok!(_mm256_add_ps(a, b))
        }
        #[inline(always)]
        fn sub(self, a: __m256, b: __m256) -> __m256 {
            tok!(_mm256_sub_ps(a, b))
        }
        #[inline(always)]
        fn mul(self, a: __m256, b: __m256) -> __m256 {
            tok!(_mm256_mul_ps(a, b))
        }
        #[inline(always)]
        fn div(self, a: __m256, b: __m256) -> __m256 {
            tok!(_mm256_div_ps(a, b))
        }
        #[inline(always)]
        fn fma(self, a: __m256, b: __m256, c: __m256) -> __m256 {
            tok!(_mm256_fmadd_ps(a, b, c))
        }
        #[inline(always)]
        fn min(self, a: __m256, b: __m256) -> __m256 {
            tok!(_mm256_min_ps(a, b))
        }
        #[inline(always)]
        fn max(self, a: __m256, b: __m256) -> __m256 {
            tok!(_mm256_max_ps(a, b))
        }
        #[inline(always)]
        fn round(self, a: __m256) -> __m256 {
            tok!(_mm256_round_ps::<
                { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
            >(a))
        }
        #[inline(always)]
        fn lt(self, a: __m256, b: __m256) -> __m256 {
            tok!(_mm256_cmp_ps::<_CMP_LT_OQ>(a, b))
        }
        #[inline(always)]
        fn eq(self, a: __m256, b: __m256) -> __m256 {
            tok!(_mm256_cmp_ps::<_CMP_EQ_OQ>(a, b))
        }
        #[inline(always)]
        fn is_nan(self, a: __m256) -> __m256 {
            tok!(_mm256_cmp_ps::<_CMP_UNORD_Q>(a, a))
        }
        #[inline(always)]
        fn mask_or(self, a: __m256, b: __m256) -> __m256 {
            tok!(_mm256_or_ps(a, b))
        }
        #[inline(always)]
        fn mask_any(self, m: __m256) -> bool {
            tok!(_mm256_movemask_ps(m)) != 0
        }
        #[inline(always)]
        fn select(self, m: __m256, a: __m256, b: __m256) -> __m256 {
            tok!(_mm256_blendv_ps(b, a, m))
        }
        #[inline(always)]
        fn neg(self, a: __m256) -> __m256 {
            tok!(_mm256_xor_ps(a, _mm256_set1_ps(-0.0)))
        }
        #[inline(always)]
        fn abs(self, a: __m256) -> __m256 {
            tok!(_mm256_andnot_ps(_mm256_set1_ps(-0.0), a))
        }
        #[inline(always)]
        fn pow2i(self, n: __m256) -> __m256 {
            tok!(_mm256_castsi256_ps(_mm256_slli_epi32::<23>(
                _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127))
            )))
        }
        /// Where every lane's `2^n` is a normal f32 (`-126 <= n <= 127`, all of
        /// softmax's and exp's lanes above `e^-87`), one multiply by it is the same
        /// single rounding as the two steps, in 4 instructions instead of 11 (no
        /// `scalef` before AVX-512: this is a third of AVX2's `exp`). A vector with
        /// a lane outside (subnormal results, exp's overflow edge, NaN `n` is
        /// neither) takes the two steps.
        #[inline(always)]
        fn ldexp(self, y: __m256, n: __m256) -> __m256 {
            let outside = tok!(_mm256_or_ps(
                _mm256_cmp_ps::<_CMP_LT_OQ>(n, _mm256_set1_ps(-126.0)),
                _mm256_cmp_ps::<_CMP_GT_OQ>(n, _mm256_set1_ps(127.0)),
            ));
            if self.mask_any(outside) {
                super::ldexp_two_steps(self, y, n)
            } else {
                self.mul(y, self.pow2i(n))
            }
        }
        #[inline(always)]
        fn frexp(self, a: __m256) -> (__m256, __m256) {
            tok!({
                let bits = _mm256_castps_si256(a);
                let e = _mm256_sub_epi32(
                    _mm256_and_si256(_mm256_srli_epi32::<23>(bits), _mm256_set1_epi32(0xff)),
                    _mm256_set1_epi32(127),
                );
                let m = _mm256_or_si256(
                    _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
                    _mm256_set1_epi32(0x3f80_0000),
                );
                (_mm256_cvtepi32_ps(e), _mm256_castsi256_ps(m))
            })
        }
        #[inline(always)]
        fn reduce_add(self, v: __m256) -> f32 {
            tok!({
                let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
                let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
                let s = _mm_add_ss(s, _mm_movehdup_ps(s));
                _mm_cvtss_f32(s)
            })
        }
        #[inline(always)]
        fn reduce_max(self, v: __m256) -> f32 {
            let mut buf = [0.0f32; 8];
            tok!(_mm256_storeu_ps(buf.as_mut_ptr(), v));
            buf.iter()
                .copied()
                .fold(f32::NEG_INFINITY, |m, x| if x > m { x } else { m })
        }
        #[inline(always)]
        fn reduce_min(self, v: __m256) -> f32 {
            let mut buf = [0.0f32; 8];
            tok!(_mm256_storeu_ps(buf.as_mut_ptr(), v));
            buf.iter()
                .copied()
                .fold(f32::INFINITY, |m, x| if x < m { x } else { m })
        }
    }
}

/// Define `fn $name(backend, args..) -> ret` that runs the generic kernel
/// `$kernel::<S>(token, args..)` compiled for the selected backend.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty = $kernel:ident;) => {
        $(#[$meta])*
        $vis fn $name(backend: $crate::backend::Backend, $($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
            fn avx512($($arg: $ty),*) -> $ret {
                $kernel($crate::simd::Avx512::new(), $($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) -> $ret {
                $kernel($crate::simd::Avx2::new(), $($arg),*)
            }
            match backend {
                #[cfg(target_arch = "x86_64")]
                $crate::backend::Backend::Avx512 => {
                    // SAFETY: a Backend is only ever active after
                    // `backend::check` confirmed the CPU has these features.
                    unsafe { avx512($($arg),*) }
                }
                #[cfg(target_arch = "x86_64")]
                $crate::backend::Backend::Avx2 => {
                    // SAFETY: as above, AVX2 and FMA were detected.
                    unsafe { avx2($($arg),*) }
                }
                // NEON is part of the AArch64 baseline: the 4-lane portable
                // code vectorises to it without a target-feature wrapper.
                #[cfg(target_arch = "aarch64")]
                $crate::backend::Backend::Neon => $kernel($crate::simd::Portable::<4>, $($arg),*),
                _ => $kernel($crate::simd::Portable::<1>, $($arg),*),
            }
        }
    };
}
pub(crate) use multiversion;

thread_local! {
    /// Set inside [`cached_stores`]: this thread's kernels do not stream.
    static CACHED_STORES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` with the element-wise and softmax outputs written on this thread by
/// ordinary (cached) stores, even past the streaming threshold; the previous
/// setting is restored on return or unwind.
///
/// For an output that was just faulted in (a never-written buffer: the kernel's
/// page zeroing leaves its lines in cache, and non-temporal stores to lines
/// in cache are slow on Intel). Into memory that is not in cache (a reused
/// large buffer) streaming stays faster: measured in docs/benchmarks.md.
pub fn cached_stores<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            CACHED_STORES.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CACHED_STORES.with(|c| c.replace(true)));
    f()
}

/// If `out` is big enough to stream, how many leading elements to write
/// normally so that the rest starts 64-byte aligned.
#[inline(always)]
pub(crate) fn stream_split(out: &[f32]) -> Option<usize> {
    let addr = out.as_ptr() as usize;
    // Outputs of at least half the last-level cache (machine.rs reads its size) are
    // written with non-temporal stores: they would not stay cached anyway.
    if out.len() < crate::machine::stream_min_elements()
        || !addr.is_multiple_of(4)
        || CACHED_STORES.with(std::cell::Cell::get)
    {
        return None;
    }
    Some(((64 - addr % 64) % 64) / 4)
}

#[cfg(test)]
mod tests {
    use super::Simd;

    /// `y * 2^n` rounded once: exact in f64 (24-bit `y`, `n >= -151`), then one rounding.
    fn reference(y: f32, n: i32) -> f32 {
        (f64::from(y) * 2f64.powi(n)) as f32
    }

    fn check<S: Simd>(s: S) {
        let ys = [
            0.5f32,
            std::f32::consts::FRAC_1_SQRT_2,
            0.999_999_94,
            1.0,
            1.000_000_1,
            std::f32::consts::SQRT_2,
            1.999_999_9,
        ];
        let l = S::LANES;
        // Every n alone (whole vectors on one path), then vectors mixing n from both
        // sides of the one-multiply range (-126..=127) lane by lane.
        let mut rows: Vec<Vec<i32>> = (-151..=129).map(|n| vec![n; l]).collect();
        for start in -151..=129 {
            rows.push(
                (0..l as i32)
                    .map(|j| (start + 37 * j).rem_euclid(281) - 151)
                    .collect(),
            );
        }
        for &y in &ys {
            for ns in &rows {
                let nv: Vec<f32> = ns.iter().map(|&n| n as f32).collect();
                let mut got = vec![0.0; l];
                s.store(&mut got, s.ldexp(s.load(&vec![y; l]), s.load(&nv)));
                for (&g, &n) in got.iter().zip(ns) {
                    let want = reference(y, n);
                    assert_eq!(
                        g.to_bits(),
                        want.to_bits(),
                        "ldexp({y:e}, {n}) = {g:e}, want {want:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn ldexp_rounds_once_for_every_exponent_on_every_backend() {
        check(super::Portable::<8>);
        #[cfg(target_arch = "x86_64")]
        if crate::Backend::Avx2.is_supported() {
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            check(unsafe { super::Avx2::new() });
        }
        #[cfg(target_arch = "x86_64")]
        if crate::Backend::Avx512.is_supported() {
            // SAFETY: the CPU has the AVX-512 subsets the token needs (checked above).
            check(unsafe { super::Avx512::new() });
        }
    }
}
