//! Dense matrix multiply (GEMM) and matrix-vector product (GEMV), row-major.
//!
//! This file teaches the Goto/BLIS recipe that every fast BLAS follows:
//!
//! 1. **Blocking.** `C[m x n] += A[m x k] * B[k x n]` is cut into blocks sized by
//!    cache level: a `KC x NC` block of B is packed once and reused by every row of
//!    A, an `MR x KC` sliver of A is reused across the whole B block, and each step
//!    of the micro-kernel touches only one `KC x NR` sliver of B. The textbook puts
//!    the A sliver in L1 and the B block in L2; on Zen 4 larger blocks measured
//!    faster (see the kernel tables below), because its L2 can feed the FMA units
//!    directly and fewer blocks mean fewer passes over C.
//! 2. **Packing.** Both operands are copied into contiguous, 64-byte-aligned panels
//!    in exactly the order the micro-kernel reads them, zero-padded to whole tiles, so
//!    the inner loop does unit-stride loads and never branches on edges.
//! 3. **Register tiling.** The micro-kernel keeps an `MR x NR` tile of C in vector
//!    registers (AVX-512: 12 x 32 floats = 24 zmm accumulators out of 32) and per
//!    step of k does `MR * NR / LANES` FMAs for `NR / LANES` loads of B and `MR`
//!    broadcasts of A: enough independent FMA chains (24) to cover the 4-cycle FMA
//!    latency at one zmm FMA per cycle (Zen 4 double-pumps zmm, so peak is 32
//!    FLOP/cycle either way; zmm just halves the instruction count).
//!
//! Packing pays for itself only when a packed sliver is reused: skinny products
//! (few columns, or a handful of rows) read that operand in place instead, and the
//! `m % MR` edge rows run on 4-, 2- and 1-row kernels rather than a zero-padded
//! 12-row tile. Column edges (`n % NR`) compute into a scratch tile and copy out the
//! valid part. The scalar reference [`matmul_reference`] is the naive triple loop
//! every kernel is tested against.
//!
//! Threading is explicit: `threads > 1` splits the rows of C into bands of whole
//! `MR` tiles, one part of a [`crate::team`] job per band (the calling thread runs the
//! first); the bands pack the B block they all read together, meeting at a spin
//! barrier per block.

use crate::Error;
use crate::backend::{self, Backend};
use std::cell::RefCell;

/// The backend a GEMM kernel table exists for: NEON has none yet, so it runs the
/// portable (scalar-tile) kernel.
fn gemm_backend(b: Backend) -> Backend {
    match b {
        Backend::Neon => Backend::Scalar,
        other => other,
    }
}

/// Refuse a backend the CPU lacks: that check is what makes calling the
/// `#[target_feature]` kernels sound.
fn require(b: Backend) -> Result<Backend, Error> {
    let missing = b.missing_features();
    if missing.is_empty() {
        Ok(gemm_backend(b))
    } else {
        Err(Error::UnsupportedBackend {
            backend: b.name(),
            missing: missing.join(", "),
        })
    }
}

/// The element types GEMM is implemented for (sealed: f32 and f64).
pub trait Element:
    Copy + Default + Send + Sync + PartialEq + std::fmt::Debug + 'static + private::Sealed
{
    #[doc(hidden)]
    fn kernel(isa: Backend) -> Kernel<Self>;
    #[doc(hidden)]
    fn gemv_rows(isa: Backend, a: &[Self], x: &[Self], y: &mut [Self], n: usize);
    #[doc(hidden)]
    fn fma(self, b: Self, c: Self) -> Self;
    #[doc(hidden)]
    fn add(self, b: Self) -> Self;
}

mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// Where a micro-kernel finds its operands: element `(i, p)` of the `MR x kc` A sliver
/// is `a[i * a_rs + p * a_cs]` and row `p` of the `kc x NR` B sliver starts at
/// `b[p * b_rs]`. Packed slivers have `a_rs = 1, a_cs = MR, b_rs = NR`; an unpacked
/// operand is read in place with its matrix's row stride.
#[derive(Clone, Copy)]
struct Panels<T> {
    a: *const T,
    a_rs: usize,
    a_cs: usize,
    b: *const T,
    b_rs: usize,
}

/// `micro(kc, panels, c, ldc, accumulate)`: one `MR x NR` tile of C (row stride `ldc`),
/// overwritten, or added to when `accumulate`.
type MicroKernel<T> = unsafe fn(usize, Panels<T>, *mut T, usize, bool);

/// A micro-kernel with its register tile and the cache blocking sized for it.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct Kernel<T> {
    mr: usize,
    nr: usize,
    kc: usize,
    mc: usize,
    nc: usize,
    /// The kernel for a packed A sliver (`a_rs = 1, a_cs = MR` known at compile time).
    micro: MicroKernel<T>,
    /// The same kernel reading A in place (`a_cs = 1`, row stride `a_rs`).
    micro_strided: MicroKernel<T>,
    /// Kernels for 4, 2 and 1 rows reading A in place: the `m % MR` edge rows run on
    /// these instead of a zero-padded MR tile (for m = 1 that tile would waste 11/12
    /// of its FMAs). `None`: pad (the portable kernel).
    small: Option<[(usize, MicroKernel<T>); 3]>,
}

impl<T> std::fmt::Debug for Kernel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("mr", &self.mr)
            .field("nr", &self.nr)
            .field("kc", &self.kc)
            .field("mc", &self.mc)
            .field("nc", &self.nc)
            .finish()
    }
}

/// The largest register tile any kernel uses (for the edge scratch tile).
const MAX_TILE: usize = 12 * 32;

// ---------------------------------------------------------------------------
// Scalar micro-kernel: the same blocked algorithm without intrinsics, so the
// driver (packing, edges, threading) is tested on every machine.
// ---------------------------------------------------------------------------

const SCALAR_MR: usize = 4;
const SCALAR_NR: usize = 8;

/// # Safety
/// `p` addresses `kc` steps of a 4-row A sliver and an 8-column B sliver (see
/// [`Panels`]), and `c` addresses a 4 x 8 tile with row stride `ldc`.
unsafe fn micro_scalar<T: Element>(
    kc: usize,
    p: Panels<T>,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) {
    let mut acc = [[T::default(); SCALAR_NR]; SCALAR_MR];
    for step in 0..kc {
        for (i, row) in acc.iter_mut().enumerate() {
            // SAFETY: (i, step) is inside the A sliver the caller vouched for.
            let av = unsafe { *p.a.add(i * p.a_rs + step * p.a_cs) };
            for (j, cell) in row.iter_mut().enumerate() {
                // SAFETY: (step, j) is inside the B sliver.
                let bv = unsafe { *p.b.add(step * p.b_rs + j) };
                *cell = av.fma(bv, *cell);
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            // SAFETY: (i, j) lies inside the 4 x 8 tile the caller vouched for.
            unsafe {
                let dst = c.add(i * ldc + j);
                *dst = if accumulate { (*dst).add(v) } else { v };
            }
        }
    }
}

// ---------------------------------------------------------------------------
// x86-64 SIMD micro-kernels, generated for f32/f64 x AVX2/AVX-512 by one macro
// so the four variants cannot drift apart.
// ---------------------------------------------------------------------------

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Panels;
    use std::arch::x86_64::*;

    /// How many k steps ahead the AVX-512 12-row kernels prefetch their B sliver. The
    /// sliver streams from L2 (or further) once per A sliver; the hardware prefetcher
    /// alone left the 12 x 32 f32 kernel waiting on it. On the 2026-12-04 Xeon (Sapphire
    /// Rapids class), one thread, alternated runs against no prefetch: MiniLM's 24 packed
    /// weight products 1.1-1.15x faster at 71 rows and 1.25x at 12 rows; unpacked 256^3
    /// and 1024^3 (f32 and f64) unchanged to 1.05x. Distances 16, 48 and 64 were no
    /// better than 32.
    const B_AHEAD_AVX512: usize = 32;

    /// Generates `$name(kc, ap, bp, c, ldc, accumulate)` for an `$mr x ($nv * $lanes)` tile.
    macro_rules! micro_kernel {
        ($name:ident, $packed:expr, $t:ty, $feat:literal, $lanes:expr, $mr:expr, $nv:expr,
         $zero:ident, $load:ident, $set1:ident, $fma:ident, $add:ident, $store:ident) => {
            micro_kernel!(
                $name, $packed, $t, $feat, $lanes, $mr, $nv, $zero, $load, $set1, $fma, $add,
                $store, 1, false, 0
            );
        };
        // `$unroll` k steps per loop iteration; `$prefetch_c`: prefetch the C tile's rows
        // before the k loop, so its read-modify-write at the end does not wait on them;
        // `$prefetch_b` (0: none): each k step prefetches the B lines it will read that
        // many steps later (past the sliver's end: the next sliver, which follows it in a
        // packed block).
        ($name:ident, $packed:expr, $t:ty, $feat:literal, $lanes:expr, $mr:expr, $nv:expr,
         $zero:ident, $load:ident, $set1:ident, $fma:ident, $add:ident, $store:ident,
         $unroll:expr, $prefetch_c:expr, $prefetch_b:expr) => {
            /// # Safety
            /// The CPU supports the enabled features; `p` addresses `kc` steps of an
            /// MR-row A sliver and an NR-column B sliver (see `Panels`), and `c` addresses
            /// an `MR x NR` tile with row stride `ldc`.
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $name(
                kc: usize,
                p: Panels<$t>,
                c: *mut $t,
                ldc: usize,
                accumulate: bool,
            ) {
                // Packed: constant strides, so every broadcast is `[ap + imm]`.
                let (a_rs, a_cs) = if $packed { (1, $mr) } else { (p.a_rs, p.a_cs) };
                // At least 8 independent FMA chains cover the 4-cycle FMA latency at two
                // FMAs per cycle. A 12 x 32 tile has 24; the 1- and 2-row edge kernels split
                // k over SETS accumulator sets and add them up at the end.
                const SETS: usize = 8usize.div_ceil($mr * $nv);
                let mut sets = [[[$zero(); $nv]; $mr]; SETS];
                if $prefetch_c {
                    for i in 0..$mr {
                        // A prefetch is a hint: it never faults, whatever the address.
                        _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(i * ldc).cast());
                        _mm_prefetch::<_MM_HINT_T0>(
                            c.wrapping_add(i * ldc + $nv * $lanes - 1).cast(),
                        );
                    }
                }
                let (mut ap, mut bp) = (p.a, p.b);
                let mut step = |acc: &mut [[_; $nv]; $mr]| {
                    let mut bv = [$zero(); $nv];
                    if $prefetch_b > 0 {
                        for v in 0..$nv {
                            // A prefetch is a hint: it never faults, whatever the address.
                            _mm_prefetch::<_MM_HINT_T0>(
                                bp.wrapping_add($prefetch_b * p.b_rs + v * $lanes).cast(),
                            );
                        }
                    }
                    for (v, slot) in bv.iter_mut().enumerate() {
                        // SAFETY: each step of the B sliver holds NR readable elements.
                        *slot = unsafe { $load(bp.add(v * $lanes)) };
                    }
                    for (i, row) in acc.iter_mut().enumerate() {
                        // SAFETY: element (i, step) of the A sliver is readable.
                        let a = $set1(unsafe { *ap.add(i * a_rs) });
                        for (cell, &b) in row.iter_mut().zip(&bv) {
                            *cell = $fma(a, b, *cell);
                        }
                    }
                    // SAFETY: one k step further stays within (or one past) the slivers.
                    unsafe {
                        ap = ap.add(a_cs);
                        bp = bp.add(p.b_rs);
                    }
                };
                // Steps go to the sets round-robin in groups of SETS, the remainder to set 0
                // (so every unrolling sums in the same order: bit-identical results).
                let mut remaining = kc;
                while remaining >= SETS * $unroll {
                    for _ in 0..$unroll {
                        for acc in sets.iter_mut() {
                            step(acc);
                        }
                    }
                    remaining -= SETS * $unroll;
                }
                while remaining >= SETS {
                    for acc in sets.iter_mut() {
                        step(acc);
                    }
                    remaining -= SETS;
                }
                for _ in 0..remaining {
                    step(&mut sets[0]);
                }
                let mut acc = sets[0];
                for set in &sets[1..] {
                    for (row, srow) in acc.iter_mut().zip(set) {
                        for (cell, &v) in row.iter_mut().zip(srow) {
                            *cell = $add(*cell, v);
                        }
                    }
                }
                for (i, row) in acc.iter().enumerate() {
                    for (v, &val) in row.iter().enumerate() {
                        // SAFETY: row i, vector v lies inside the MR x NR tile at `c`.
                        unsafe {
                            let dst = c.add(i * ldc + v * $lanes);
                            let out = if accumulate {
                                $add($load(dst), val)
                            } else {
                                val
                            };
                            $store(dst, out);
                        }
                    }
                }
            }
        };
    }

    micro_kernel!(
        micro_f32_avx512,
        true,
        f32,
        "avx512f",
        16,
        12,
        2,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_storeu_ps,
        1,
        false,
        B_AHEAD_AVX512
    );
    micro_kernel!(
        micro_f32_avx512_strided,
        false,
        f32,
        "avx512f",
        16,
        12,
        2,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_storeu_ps,
        1,
        false,
        B_AHEAD_AVX512
    );
    micro_kernel!(
        micro_f32_avx512_r4,
        false,
        f32,
        "avx512f",
        16,
        4,
        2,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_storeu_ps
    );
    micro_kernel!(
        micro_f32_avx512_r2,
        false,
        f32,
        "avx512f",
        16,
        2,
        2,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_storeu_ps
    );
    micro_kernel!(
        micro_f32_avx512_r1,
        false,
        f32,
        "avx512f",
        16,
        1,
        2,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_storeu_ps
    );
    micro_kernel!(
        micro_f64_avx512,
        true,
        f64,
        "avx512f",
        8,
        12,
        2,
        _mm512_setzero_pd,
        _mm512_loadu_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        _mm512_storeu_pd,
        1,
        false,
        B_AHEAD_AVX512
    );
    micro_kernel!(
        micro_f64_avx512_strided,
        false,
        f64,
        "avx512f",
        8,
        12,
        2,
        _mm512_setzero_pd,
        _mm512_loadu_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        _mm512_storeu_pd,
        1,
        false,
        B_AHEAD_AVX512
    );
    micro_kernel!(
        micro_f64_avx512_r4,
        false,
        f64,
        "avx512f",
        8,
        4,
        2,
        _mm512_setzero_pd,
        _mm512_loadu_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        _mm512_storeu_pd
    );
    micro_kernel!(
        micro_f64_avx512_r2,
        false,
        f64,
        "avx512f",
        8,
        2,
        2,
        _mm512_setzero_pd,
        _mm512_loadu_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        _mm512_storeu_pd
    );
    micro_kernel!(
        micro_f64_avx512_r1,
        false,
        f64,
        "avx512f",
        8,
        1,
        2,
        _mm512_setzero_pd,
        _mm512_loadu_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        _mm512_storeu_pd
    );
    micro_kernel!(
        micro_f32_avx2,
        true,
        f32,
        "avx2,fma",
        8,
        6,
        2,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        _mm256_storeu_ps,
        4,
        true,
        0
    );
    micro_kernel!(
        micro_f32_avx2_strided,
        false,
        f32,
        "avx2,fma",
        8,
        6,
        2,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        _mm256_storeu_ps
    );
    micro_kernel!(
        micro_f32_avx2_r4,
        false,
        f32,
        "avx2,fma",
        8,
        4,
        2,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        _mm256_storeu_ps
    );
    micro_kernel!(
        micro_f32_avx2_r2,
        false,
        f32,
        "avx2,fma",
        8,
        2,
        2,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        _mm256_storeu_ps
    );
    micro_kernel!(
        micro_f32_avx2_r1,
        false,
        f32,
        "avx2,fma",
        8,
        1,
        2,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        _mm256_storeu_ps
    );
    micro_kernel!(
        micro_f64_avx2,
        true,
        f64,
        "avx2,fma",
        4,
        6,
        2,
        _mm256_setzero_pd,
        _mm256_loadu_pd,
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd,
        _mm256_storeu_pd
    );
    micro_kernel!(
        micro_f64_avx2_strided,
        false,
        f64,
        "avx2,fma",
        4,
        6,
        2,
        _mm256_setzero_pd,
        _mm256_loadu_pd,
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd,
        _mm256_storeu_pd
    );
    micro_kernel!(
        micro_f64_avx2_r4,
        false,
        f64,
        "avx2,fma",
        4,
        4,
        2,
        _mm256_setzero_pd,
        _mm256_loadu_pd,
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd,
        _mm256_storeu_pd
    );
    micro_kernel!(
        micro_f64_avx2_r2,
        false,
        f64,
        "avx2,fma",
        4,
        2,
        2,
        _mm256_setzero_pd,
        _mm256_loadu_pd,
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd,
        _mm256_storeu_pd
    );
    micro_kernel!(
        micro_f64_avx2_r1,
        false,
        f64,
        "avx2,fma",
        4,
        1,
        2,
        _mm256_setzero_pd,
        _mm256_loadu_pd,
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd,
        _mm256_storeu_pd
    );

    /// Generates an AVX-512 GEMV over `$t` with `$lanes` lanes per zmm.
    macro_rules! gemv_avx512 {
        ($name:ident, $t:ty, $lanes:expr, $mask:ty, $zero:ident, $load:ident, $mload:ident,
         $fma:ident, $add:ident, $reduce:ident) => {
            /// `y[r] = A[r, :] . x` for every row of `a` (row stride `n`): one row at a
            /// time, so A is read as one sequential stream (interleaving four rows, so
            /// that each load of `x` fed four FMAs, measured 2.5x slower for f32 at
            /// 100k x 384: the prefetcher does not follow four interleaved streams), with
            /// four accumulators to hide FMA latency and masked loads for the
            /// `n % LANES` tail. `x` stays in L1.
            ///
            /// # Safety
            /// The CPU supports AVX-512F; `a.len() == y.len() * n` and `x.len() == n`.
            #[target_feature(enable = "avx512f")]
            pub(super) unsafe fn $name(a: &[$t], x: &[$t], y: &mut [$t], n: usize) {
                let full = n / $lanes * $lanes;
                let quad = n / (4 * $lanes) * (4 * $lanes);
                let tail = ((1u32 << (n - full)) - 1) as $mask;
                let xp = x.as_ptr();
                for (r, out) in y.iter_mut().enumerate() {
                    let p = a[r * n..].as_ptr();
                    let mut acc = [$zero(); 4];
                    let mut j = 0;
                    while j < quad {
                        for (v, s) in acc.iter_mut().enumerate() {
                            // SAFETY: j + 4 LANES <= n: vector v at j exists in the
                            // row and in x.
                            unsafe {
                                let o = j + $lanes * v;
                                *s = $fma($load(p.add(o)), $load(xp.add(o)), *s);
                            }
                        }
                        j += 4 * $lanes;
                    }
                    while j < full {
                        // SAFETY: j + LANES <= n.
                        unsafe {
                            acc[0] = $fma($load(p.add(j)), $load(xp.add(j)), acc[0]);
                        }
                        j += $lanes;
                    }
                    if full < n {
                        // SAFETY: the mask enables only lanes full..n, all in bounds; masked-off
                        // lanes are not read.
                        unsafe {
                            acc[1] = $fma(
                                $mload(tail, p.add(full)),
                                $mload(tail, xp.add(full)),
                                acc[1],
                            );
                        }
                    }
                    let s = $add($add(acc[0], acc[1]), $add(acc[2], acc[3]));
                    *out = $reduce(s);
                }
            }
        };
    }

    gemv_avx512!(
        gemv_f32_avx512,
        f32,
        16,
        __mmask16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_maskz_loadu_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_reduce_add_ps
    );
    gemv_avx512!(
        gemv_f64_avx512,
        f64,
        8,
        __mmask8,
        _mm512_setzero_pd,
        _mm512_loadu_pd,
        _mm512_maskz_loadu_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        _mm512_reduce_add_pd
    );

    /// AVX2 version of `gemv_f32_avx512`: one row at a time, scalar tail.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA; `a.len() == y.len() * n` and `x.len() == n`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gemv_f32_avx2(a: &[f32], x: &[f32], y: &mut [f32], n: usize) {
        let full = n / 8 * 8;
        let xp = x.as_ptr();
        for (r, out) in y.iter_mut().enumerate() {
            let row = &a[r * n..(r + 1) * n];
            let p = row.as_ptr();
            let mut s = [_mm256_setzero_ps(); 2];
            let mut j = 0;
            while j + 16 <= full {
                // SAFETY: j + 16 <= n.
                unsafe {
                    s[0] = _mm256_fmadd_ps(
                        _mm256_loadu_ps(p.add(j)),
                        _mm256_loadu_ps(xp.add(j)),
                        s[0],
                    );
                    s[1] = _mm256_fmadd_ps(
                        _mm256_loadu_ps(p.add(j + 8)),
                        _mm256_loadu_ps(xp.add(j + 8)),
                        s[1],
                    );
                }
                j += 16;
            }
            if j < full {
                // SAFETY: j + 8 <= full <= n.
                unsafe {
                    s[0] =
                        _mm256_fmadd_ps(_mm256_loadu_ps(p.add(j)), _mm256_loadu_ps(xp.add(j)), s[0])
                };
            }
            let v = _mm256_add_ps(s[0], s[1]);
            let mut lanes = [0.0f32; 8];
            // SAFETY: `lanes` is 8 f32s.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
            let mut total: f32 = lanes.iter().sum();
            for (av, xv) in row[full..].iter().zip(&x[full..]) {
                total = av.mul_add(*xv, total);
            }
            *out = total;
        }
    }
}

// ---------------------------------------------------------------------------
// Kernel tables: the tile shape per instruction set; the blocking follows from the
// caches of the machine the code runs on (`Blocking::for_caches`).
//
// The textbook sizes (A sliver in L1, B block in L2: KC=256, NC=512) were measured
// against larger blocks on Zen 4 (1 MiB L2, 32 MiB L3), interleaved, by thread CPU
// time: KC=1024, NC=2048 was 13 % faster at n=1024 and 23 % at n=2048, and equal at
// n<=512. Zen 4's L2 streams a 128 KiB B sliver plus a 48 KiB A sliver at one zmm FMA
// per cycle with bandwidth to spare, so the L1 need not hold them; what the big blocks
// buy is fewer passes over C (k / KC read-modify-writes of the whole output) and fewer
// re-packs of A (one per NC columns). The rule below reproduces exactly those sizes
// from that machine's caches and scales them to others.
// ---------------------------------------------------------------------------

/// Cache blocking of the Goto loops: `KC` (depth of a packed sliver), `MC` (rows of
/// a packed A block), `NC` (columns of a packed B block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocking {
    pub kc: usize,
    pub mc: usize,
    pub nc: usize,
}

impl Blocking {
    /// Blocking for an `mr x nr` register tile of `elem`-byte values on caches `c`:
    ///
    /// - `KC`: the B sliver (`KC x NR`) takes at most 1/8 of L2 and the A sliver
    ///   (`MR x KC`) at most 1/16, in steps of 256, clamped to 128..=1024 (longer
    ///   slivers were never measured; shorter ones are what a small L2 needs).
    /// - `MC`: the A block (`MC x KC`) fills 15/16 of L2, in whole `MR` tiles.
    /// - `NC`: the packed B block (`KC x NC`) takes half of this core's share of L3
    ///   (L3 / the CPUs sharing it; half of L2 without an L3), in whole `NR` slivers,
    ///   clamped to 4 slivers..=4096 columns (it bounds the pack buffer).
    ///
    /// On Zen 4 (1 MiB L2, 32 MiB L3 for 2 CPUs) this gives the measured 1024 / 240 /
    /// 2048 for the f32 AVX-512 tile and 512 / 240 / 2048 for f64.
    pub fn for_caches(mr: usize, nr: usize, elem: usize, c: &crate::machine::Caches) -> Blocking {
        let l2 = usize::try_from(c.l2_bytes)
            .unwrap_or(usize::MAX)
            .max(64 << 10);
        let kc_b = l2 / 8 / (nr * elem);
        let kc_a = l2 / 16 / (mr * elem);
        let kc = (kc_b.min(kc_a) / 256 * 256).clamp(128, 1024);
        let mc = ((l2 / 16 * 15) / (kc * elem) / mr * mr).max(mr);
        let share = if c.l3_bytes > 0 {
            c.l3_bytes / u64::from(c.l3_shared_by.max(1))
        } else {
            c.l2_bytes
        };
        let share = usize::try_from(share).unwrap_or(usize::MAX);
        let nc = (share / 2 / (kc * elem) / nr * nr).clamp(4 * nr, 4096 / nr * nr);
        Blocking { kc, mc, nc }
    }

    /// Blocking that keeps the packed B block in L2, for a core whose L3 cannot stream
    /// it fast enough ([`crate::machine::GemmFeed::l3_feeds`]):
    ///
    /// - `KC`: the A sliver (`MR x KC`), which every B sliver of the block meets, takes
    ///   at most a quarter of L1, in steps of 64, clamped to 128..=1024;
    /// - `NC`: the B block (`KC x NC`) takes half of L2, in whole `NR` slivers (at least
    ///   4);
    /// - `MC`: the A block being packed takes a quarter of L2, so packing it does not
    ///   evict the B block.
    ///
    /// The driver's inner loop runs every B sliver of the block past one A sliver, so
    /// the B block is re-read `MC / MR` times per A block: from L3 under
    /// [`Blocking::for_caches`], from L2 here. On the 2026-12-03 Xeon (48 KiB L1, 2 MiB
    /// L2, one core reading its L3 at about 30 GB/s against the 80 GB/s the f32 tile
    /// needs at its 242 GFLOP/s peak) this gives 256 / 504 / 1024 for f32, which ran a
    /// 1024^3 product 1.28-1.30x faster than the L3-resident 1024 / 480 / 4096 (and two
    /// threads 1.46-1.52x), interleaved; unchanged at 256^3 and 512^3.
    pub fn l2_resident(mr: usize, nr: usize, elem: usize, c: &crate::machine::Caches) -> Blocking {
        let l1 = usize::try_from(c.l1d_bytes)
            .unwrap_or(usize::MAX)
            .max(16 << 10);
        let l2 = usize::try_from(c.l2_bytes)
            .unwrap_or(usize::MAX)
            .max(64 << 10);
        let kc = (l1 / 4 / (mr * elem) / 64 * 64).clamp(128, 1024);
        let nc = (l2 / 2 / (kc * elem) / nr * nr).max(4 * nr);
        let mc = (l2 / 4 / (kc * elem) / mr * mr).max(mr);
        Blocking { kc, mc, nc }
    }
}

/// The register tile and blocking [`matmul`] uses for `T` on backend `isa` on this
/// machine, as `(MR, NR, blocking)` (what the benchmark reports).
pub fn tile_and_blocking<T: Element>(isa: Backend) -> Result<(usize, usize, Blocking), Error> {
    let k = T::kernel(require(isa)?);
    Ok((
        k.mr,
        k.nr,
        Blocking {
            kc: k.kc,
            mc: k.mc,
            nc: k.nc,
        },
    ))
}

impl<T: Element> Kernel<T> {
    /// This kernel blocked for a `k x n` right operand: as built ([`Blocking::for_caches`])
    /// when its B block fits in half of L2 or this core's L3 can stream it
    /// ([`crate::machine::gemm_feed`], measured once per machine), else
    /// [`Blocking::l2_resident`].
    fn sized(self, k: usize, n: usize) -> Kernel<T> {
        let caches = crate::machine::caches();
        self.sized_with(k, n, caches, || {
            crate::machine::gemm_feed().l3_feeds(self.mr)
        })
    }

    fn sized_with(
        self,
        k: usize,
        n: usize,
        caches: &crate::machine::Caches,
        l3_feeds: impl FnOnce() -> bool,
    ) -> Kernel<T> {
        let elem = size_of::<T>();
        let block = self.kc.min(k) * self.nc.min(n).div_ceil(self.nr) * self.nr * elem;
        let half_l2 = usize::try_from(caches.l2_bytes / 2).unwrap_or(usize::MAX);
        if block <= half_l2 || l3_feeds() {
            return self;
        }
        let b = Blocking::l2_resident(self.mr, self.nr, elem, caches);
        Kernel {
            kc: b.kc,
            mc: b.mc,
            nc: b.nc,
            ..self
        }
    }

    /// A kernel table entry, blocked for this machine's caches.
    fn tile(
        mr: usize,
        nr: usize,
        micro: MicroKernel<T>,
        micro_strided: MicroKernel<T>,
        small: Option<[(usize, MicroKernel<T>); 3]>,
    ) -> Kernel<T> {
        let b = Blocking::for_caches(mr, nr, size_of::<T>(), crate::machine::caches());
        Kernel {
            mr,
            nr,
            kc: b.kc,
            mc: b.mc,
            nc: b.nc,
            micro,
            micro_strided,
            small,
        }
    }
}

impl Element for f32 {
    fn kernel(isa: Backend) -> Kernel<f32> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => Kernel::tile(
                12,
                32,
                x86::micro_f32_avx512,
                x86::micro_f32_avx512_strided,
                Some([
                    (4, x86::micro_f32_avx512_r4),
                    (2, x86::micro_f32_avx512_r2),
                    (1, x86::micro_f32_avx512_r1),
                ]),
            ),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => Kernel::tile(
                6,
                16,
                x86::micro_f32_avx2,
                x86::micro_f32_avx2_strided,
                Some([
                    (4, x86::micro_f32_avx2_r4),
                    (2, x86::micro_f32_avx2_r2),
                    (1, x86::micro_f32_avx2_r1),
                ]),
            ),
            _ => Kernel::tile(
                SCALAR_MR,
                SCALAR_NR,
                micro_scalar::<f32>,
                micro_scalar::<f32>,
                None,
            ),
        }
    }

    fn gemv_rows(isa: Backend, a: &[f32], x: &[f32], y: &mut [f32], n: usize) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa` is only Avx512 when the CPU reported AVX-512F; the caller
            // checked `a.len() == y.len() * n` and `x.len() == n`.
            Backend::Avx512 => unsafe { x86::gemv_f32_avx512(a, x, y, n) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, for AVX2 + FMA.
            Backend::Avx2 => unsafe { x86::gemv_f32_avx2(a, x, y, n) },
            _ => gemv_scalar(a, x, y, n),
        }
    }

    fn fma(self, b: f32, c: f32) -> f32 {
        fused_or_not(self, b, c, f32::mul_add)
    }

    fn add(self, b: f32) -> f32 {
        self + b
    }
}

impl Element for f64 {
    fn kernel(isa: Backend) -> Kernel<f64> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => Kernel::tile(
                12,
                16,
                x86::micro_f64_avx512,
                x86::micro_f64_avx512_strided,
                Some([
                    (4, x86::micro_f64_avx512_r4),
                    (2, x86::micro_f64_avx512_r2),
                    (1, x86::micro_f64_avx512_r1),
                ]),
            ),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => Kernel::tile(
                6,
                8,
                x86::micro_f64_avx2,
                x86::micro_f64_avx2_strided,
                Some([
                    (4, x86::micro_f64_avx2_r4),
                    (2, x86::micro_f64_avx2_r2),
                    (1, x86::micro_f64_avx2_r1),
                ]),
            ),
            _ => Kernel::tile(
                SCALAR_MR,
                SCALAR_NR,
                micro_scalar::<f64>,
                micro_scalar::<f64>,
                None,
            ),
        }
    }

    fn gemv_rows(isa: Backend, a: &[f64], x: &[f64], y: &mut [f64], n: usize) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa` is only Avx512 when the CPU reported AVX-512F; the caller
            // checked `a.len() == y.len() * n` and `x.len() == n`.
            Backend::Avx512 => unsafe { x86::gemv_f64_avx512(a, x, y, n) },
            _ => gemv_scalar(a, x, y, n),
        }
    }

    fn fma(self, b: f64, c: f64) -> f64 {
        fused_or_not(self, b, c, f64::mul_add)
    }

    fn add(self, b: f64) -> f64 {
        self + b
    }
}

/// `a * b + c` for the portable kernels: one fused instruction where the build target
/// has FMA (aarch64; x86-64 built with `+fma`), otherwise a multiply and an add. On a
/// baseline x86-64 build `mul_add` is a libm call, ~20x slower than the two instructions.
#[inline(always)]
fn fused_or_not<T: std::ops::Mul<Output = T> + std::ops::Add<Output = T>>(
    a: T,
    b: T,
    c: T,
    fused: fn(T, T, T) -> T,
) -> T {
    if cfg!(any(target_arch = "aarch64", target_feature = "fma")) {
        fused(a, b, c)
    } else {
        a * b + c
    }
}

/// Portable GEMV: eight independent partial sums per row so the additions are not
/// one serial dependency chain.
fn gemv_scalar<T: Element>(a: &[T], x: &[T], y: &mut [T], n: usize) {
    if n == 0 {
        y.fill(T::default());
        return;
    }
    for (row, out) in a.chunks_exact(n).zip(y.iter_mut()) {
        let mut acc = [T::default(); 8];
        let rc = row.chunks_exact(8);
        let xc = x.chunks_exact(8);
        let (rt, xt) = (rc.remainder(), xc.remainder());
        for (r8, x8) in rc.zip(xc) {
            for i in 0..8 {
                acc[i] = r8[i].fma(x8[i], acc[i]);
            }
        }
        let mut total = T::default();
        for v in acc {
            total = total.add(v);
        }
        for (r, xv) in rt.iter().zip(xt) {
            total = r.fma(*xv, total);
        }
        *out = total;
    }
}

// ---------------------------------------------------------------------------
// Packing and the blocked driver.
// ---------------------------------------------------------------------------

/// One cache line; the pack buffers are vectors of these so panels are 64-byte aligned.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

thread_local! {
    /// Per-thread pack buffers, reused across calls: a fresh multi-MiB allocation per
    /// call would be an mmap plus page faults, which costs more than packing at n=256.
    static PACK: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
    /// The calling thread's buffer for the B block its threads share (`SharedPack`),
    /// reused across calls for the same reason: zeroing a fresh 4 MiB buffer per call is
    /// of the order of 4 % of a two-thread 1024^3 product and 10 % at 256^3 (estimated
    /// from the buffer size and the probed bandwidth, not measured: the machine was busy).
    static SHARED: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` with at least `lines` cache lines of the calling thread's shared-pack
/// buffer (contents unspecified: every sliver is packed before it is read).
fn with_shared_buffer<R>(lines: usize, f: impl FnOnce(&mut [Line]) -> R) -> R {
    SHARED.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < lines {
                buf.resize(lines, Line([0; 64]));
            }
            f(&mut buf[..lines])
        }
        // Re-entered on this thread (cannot happen today): use a private buffer.
        Err(_) => f(&mut vec![Line([0; 64]); lines]),
    })
}

/// Run `f` with two zero-initialised-at-first-use, 64-byte-aligned scratch slices
/// of `a_len` and `b_len` elements.
fn with_pack_buffers<T: Element, R>(
    a_len: usize,
    b_len: usize,
    f: impl FnOnce(&mut [T], &mut [T]) -> R,
) -> R {
    let elems_per_line = 64 / size_of::<T>();
    let a_lines = a_len.div_ceil(elems_per_line);
    let lines = a_lines + b_len.div_ceil(elems_per_line);
    let run = |buf: &mut Vec<Line>| {
        if buf.len() < lines {
            buf.resize(lines, Line([0; 64]));
        }
        let (a_part, b_part) = buf[..lines].split_at_mut(a_lines);
        // SAFETY: `Line` is 64 plain bytes aligned to 64, so any `T` (f32/f64: any
        // bit pattern is valid, alignment <= 64) can be viewed in it; the two regions
        // are disjoint and each holds at least the requested element count.
        let (ap, bp) = unsafe {
            (
                std::slice::from_raw_parts_mut(a_part.as_mut_ptr().cast::<T>(), a_len),
                std::slice::from_raw_parts_mut(b_part.as_mut_ptr().cast::<T>(), b_len),
            )
        };
        f(ap, bp)
    };
    PACK.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => run(&mut buf),
        // Re-entered on this thread (cannot happen today): use a private buffer.
        Err(_) => run(&mut Vec::new()),
    })
}

/// Pack rows `0..mc` x columns `pc..pc+kc` of A (row stride `lda`) into `MR`-row slivers,
/// each stored k-major (`MR` values per k step), zero-padding the last sliver.
fn pack_a<T: Element>(
    a: &[T],
    lda: usize,
    mc: usize,
    pc: usize,
    kc: usize,
    mr: usize,
    dst: &mut [T],
) {
    // The tile heights the kernel tables use get a copy with MR known at compile time.
    match mr {
        6 => pack_a_mr::<T, 6>(a, lda, mc, pc, kc, dst),
        12 => pack_a_mr::<T, 12>(a, lda, mc, pc, kc, dst),
        _ => pack_a_any(a, lda, mc, pc, kc, mr, dst),
    }
}

/// [`pack_a`] for a whole-sliver height `MR` known at compile time: per k step the `MR`
/// values are gathered from `MR` row streams and written as one contiguous run (the
/// generic loop below writes with stride `MR` and bounds-checks every element).
fn pack_a_mr<T: Element, const MR: usize>(
    a: &[T],
    lda: usize,
    mc: usize,
    pc: usize,
    kc: usize,
    dst: &mut [T],
) {
    let full = mc / MR;
    for (s, sliver) in dst[..full * MR * kc].chunks_exact_mut(MR * kc).enumerate() {
        let rows: [&[T]; MR] = std::array::from_fn(|i| &a[(s * MR + i) * lda + pc..][..kc]);
        for (p, step) in sliver.chunks_exact_mut(MR).enumerate() {
            for (d, row) in step.iter_mut().zip(&rows) {
                *d = row[p];
            }
        }
    }
    if full * MR < mc {
        pack_a_any(
            &a[full * MR * lda..],
            lda,
            mc - full * MR,
            pc,
            kc,
            MR,
            &mut dst[full * MR * kc..],
        );
    }
}

/// [`pack_a`] for any tile height, and the zero-padded partial last sliver.
fn pack_a_any<T: Element>(
    a: &[T],
    lda: usize,
    mc: usize,
    pc: usize,
    kc: usize,
    mr: usize,
    dst: &mut [T],
) {
    for (s, sliver) in dst[..mc.div_ceil(mr) * mr * kc]
        .chunks_exact_mut(mr * kc)
        .enumerate()
    {
        let r0 = s * mr;
        let rows = mr.min(mc - r0);
        for i in 0..rows {
            let src = &a[(r0 + i) * lda + pc..][..kc];
            for (p, &v) in src.iter().enumerate() {
                sliver[p * mr + i] = v;
            }
        }
        if rows < mr {
            for p in 0..kc {
                sliver[p * mr + rows..(p + 1) * mr].fill(T::default());
            }
        }
    }
}

/// Pack rows `pc..pc+kc` x columns `jc..jc+nc` of B (row stride `ldb`) into `NR`-column
/// slivers, each stored k-major (`NR` contiguous values per k step), zero-padded.
#[allow(clippy::too_many_arguments)] // the blocking coordinates are the clearest signature
fn pack_b<T: Element>(
    b: &[T],
    ldb: usize,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    nr: usize,
    dst: &mut [T],
) {
    for (s, sliver) in dst[..nc.div_ceil(nr) * nr * kc]
        .chunks_exact_mut(nr * kc)
        .enumerate()
    {
        let j0 = jc + s * nr;
        let cols = nr.min(jc + nc - j0);
        let rows = &b[pc * ldb + j0..];
        if cols == nr {
            // A whole sliver: one fixed-size copy per k step (a slice copy of runtime
            // length is a `memmove` call per 64-128 bytes).
            match nr {
                8 => pack_b_rows::<T, 8>(rows, ldb, sliver),
                16 => pack_b_rows::<T, 16>(rows, ldb, sliver),
                32 => pack_b_rows::<T, 32>(rows, ldb, sliver),
                _ => pack_b_rows_any(rows, ldb, nr, sliver),
            }
            continue;
        }
        for (p, step) in sliver.chunks_exact_mut(nr).enumerate() {
            step[..cols].copy_from_slice(&rows[p * ldb..][..cols]);
            step[cols..].fill(T::default());
        }
    }
}

/// Copy `NR` values from each row of `rows` (stride `ldb`) into consecutive `NR`-runs of
/// `sliver`.
fn pack_b_rows<T: Element, const NR: usize>(rows: &[T], ldb: usize, sliver: &mut [T]) {
    for (p, step) in sliver.chunks_exact_mut(NR).enumerate() {
        let step: &mut [T; NR] = step.try_into().expect("NR-long chunk");
        let src: &[T; NR] = rows[p * ldb..][..NR].try_into().expect("NR-long row");
        *step = *src;
    }
}

fn pack_b_rows_any<T: Element>(rows: &[T], ldb: usize, nr: usize, sliver: &mut [T]) {
    for (p, step) in sliver.chunks_exact_mut(nr).enumerate() {
        step.copy_from_slice(&rows[p * ldb..][..nr]);
    }
}

/// Pack A when the B block has at least this many NR-wide panels: each A sliver then
/// meets enough B slivers to repay the copy (and packing avoids the L1 set conflicts of
/// reading 12 rows with a power-of-two stride). Narrower products read A in place.
const PACK_A_MIN_PANELS: usize = 4;
/// Pack B when the band has more than this many MR-row slivers; for fewer rows (a
/// single token, a handful of queries) every B sliver is used once or twice, so the
/// copy would cost as much as the product and B is read in place.
const PACK_B_MIN_SLIVERS: usize = 2;

/// The packed B block the threads of one product share. Packing B once instead of
/// once per thread halves both the packing work and the L3 the B blocks occupy (two
/// private 8 MiB blocks would fill half of a 32 MiB L3): each thread packs its share of
/// the slivers, a barrier, then every thread reads all of them.
struct SharedPack<T> {
    ptr: *mut T,
    len: usize,
    parties: usize,
    barrier: crate::team::SpinBarrier,
}

// SAFETY: the buffer is only written between the two barriers of `pack`, each party
// to a disjoint range, and only read after the second; `T` is plain data (f32/f64).
unsafe impl<T: Element> Sync for SharedPack<T> {}

impl<T: Element> SharedPack<T> {
    /// Pack block `(pc, kc, jc, nc)` of B cooperatively as party `me` and return it.
    /// Every party calls this for every block in the same order; a caller must not use
    /// the returned slice after its next call (the buffer is rewritten then).
    #[allow(clippy::too_many_arguments)] // the blocking coordinates, as in `pack_b`
    fn pack(
        &self,
        me: usize,
        b: &[T],
        ldb: usize,
        pc: usize,
        kc: usize,
        jc: usize,
        nc: usize,
        nr: usize,
    ) -> &[T] {
        // Everyone has finished reading the previous block.
        self.barrier.wait();
        let slivers = nc.div_ceil(nr);
        let per = slivers.div_ceil(self.parties);
        let (s0, s1) = ((me * per).min(slivers), ((me + 1) * per).min(slivers));
        let total = slivers * nr * kc;
        debug_assert!(total <= self.len);
        if s0 < s1 {
            let cols = (s1 * nr).min(nc) - s0 * nr;
            // SAFETY: [s0 NR KC, s1 NR KC) lies inside the buffer (`total <= len`) and no
            // other party writes or reads it until the barrier below.
            let dst = unsafe {
                std::slice::from_raw_parts_mut(self.ptr.add(s0 * nr * kc), (s1 - s0) * nr * kc)
            };
            pack_b(b, ldb, pc, kc, jc + s0 * nr, cols, nr, dst);
        }
        self.barrier.wait();
        // SAFETY: every sliver of the block is written; nobody writes again before every
        // party's next call, by which time this view is no longer used.
        unsafe { std::slice::from_raw_parts(self.ptr.cast_const(), total) }
    }
}

/// Where a band reads B from. Whichever it is, the micro-kernels see the same values in
/// the same order, so the three give bit-identical products.
#[derive(Clone, Copy)]
enum BSource<'a, T: Element> {
    /// The caller's `k x n` matrix: packed block by block when the band is tall enough
    /// to reuse it, otherwise read in place.
    Matrix(&'a [T]),
    /// The caller's matrix, packed together with the other bands' threads (see
    /// [`SharedPack`]) as party `.2`; every band then packs B, whatever its height.
    Shared(&'a [T], &'a SharedPack<T>, usize),
    /// Packed once beforehand ([`pack_rhs`]): no packing inside the product.
    Prepacked(&'a PackedRhs<T>),
}

/// Single-threaded blocked GEMM over a band of rows: `c[m x n] = a[m x k] * b[k x n]`.
#[allow(clippy::too_many_arguments)] // operands and sizes, as in `matmul_with`
fn gemm_band<T: Element>(
    kern: &Kernel<T>,
    a: &[T],
    src: BSource<'_, T>,
    c: &mut [T],
    m: usize,
    k: usize,
    n: usize,
) {
    let Kernel {
        mr,
        nr,
        kc: kc_max,
        mc: mc_max,
        nc: nc_max,
        micro,
        micro_strided,
        small,
    } = *kern;
    let pack_a_all = n >= PACK_A_MIN_PANELS * nr;
    let b = match src {
        BSource::Matrix(b) | BSource::Shared(b, ..) => b,
        BSource::Prepacked(_) => &[],
    };
    let own = matches!(src, BSource::Matrix(_));
    let pack_b_all = !own || m > PACK_B_MIN_SLIVERS * mr;
    // Unpacked operands still pack their one partial (edge) sliver, zero-padded, so the
    // kernel never reads past the matrix.
    let a_slivers = if pack_a_all {
        mc_max.min(m).div_ceil(mr)
    } else {
        1
    };
    let b_slivers = if !own {
        0
    } else if pack_b_all {
        nc_max.min(n).div_ceil(nr)
    } else {
        1
    };
    let a_len = a_slivers * mr * kc_max.min(k);
    let b_len = b_slivers * nr * kc_max.min(k);
    with_pack_buffers::<T, ()>(a_len, b_len, |apack, bpack| {
        let mut scratch = [T::default(); MAX_TILE];
        for jc in (0..n).step_by(nc_max) {
            let nc = nc_max.min(n - jc);
            for pc in (0..k).step_by(kc_max) {
                let kc = kc_max.min(k - pc);
                let accumulate = pc > 0;
                let bview: &[T] = match src {
                    BSource::Shared(_, sh, me) => sh.pack(me, b, n, pc, kc, jc, nc, nr),
                    BSource::Prepacked(p) => p.block(jc, pc),
                    BSource::Matrix(_) => {
                        if pack_b_all {
                            pack_b(b, n, pc, kc, jc, nc, nr, bpack);
                        } else if nc % nr != 0 {
                            let full = nc / nr * nr;
                            pack_b(b, n, pc, kc, jc + full, nc - full, nr, bpack);
                        }
                        bpack
                    }
                };
                for ic in (0..m).step_by(mc_max) {
                    let mc = mc_max.min(m - ic);
                    if pack_a_all {
                        pack_a(&a[ic * k..], k, mc, pc, kc, mr, apack);
                    }
                    for ir in (0..mc).step_by(mr) {
                        let rows = mr.min(mc - ir);
                        let row0 = ic + ir;
                        // (first row, rows, A pointer, a_rs, a_cs, kernel) per A sliver.
                        let mut slivers = [(0, 0, a.as_ptr(), 0, 0, micro); 4];
                        let count = match small {
                            Some(kernels) if rows < mr => {
                                let mut count = 0;
                                let mut r = 0;
                                for (h, kernel) in kernels {
                                    while rows - r >= h {
                                        let ptr = a[(row0 + r) * k + pc..].as_ptr();
                                        slivers[count] = (r, h, ptr, k, 1, kernel);
                                        count += 1;
                                        r += h;
                                    }
                                }
                                count
                            }
                            _ => {
                                slivers[0] = if pack_a_all {
                                    (0, mr, apack[ir * kc..].as_ptr(), 1, mr, micro)
                                } else if rows == mr {
                                    (0, mr, a[row0 * k + pc..].as_ptr(), k, 1, micro_strided)
                                } else {
                                    pack_a(&a[row0 * k..], k, rows, pc, kc, mr, apack);
                                    (0, mr, apack.as_ptr(), 1, mr, micro)
                                };
                                1
                            }
                        };
                        for jr in (0..nc).step_by(nr) {
                            let cols = nr.min(nc - jr);
                            let (b_ptr, b_rs) = if pack_b_all {
                                (bview[jr * kc..].as_ptr(), nr)
                            } else if cols == nr {
                                (b[pc * n + jc + jr..].as_ptr(), n)
                            } else {
                                (bview.as_ptr(), nr)
                            };
                            for &(r, h, a_ptr, a_rs, a_cs, kernel) in &slivers[..count] {
                                let panels = Panels {
                                    a: a_ptr,
                                    a_rs,
                                    a_cs,
                                    b: b_ptr,
                                    b_rs,
                                };
                                // Rows of C this kernel call owns (a padded MR tile owns
                                // only the `rows` that exist).
                                let live = h.min(rows - r);
                                let c0 = (row0 + r) * n + jc + jr;
                                if live == h && cols == nr {
                                    // SAFETY: `panels` addresses kc steps of an h-row A sliver
                                    // and an NR-column B sliver: packed (zero-padded to whole
                                    // slivers) or in place, where rows row0+r..+h and columns
                                    // jc+jr..+NR lie inside A and B because the sliver is
                                    // whole; the h x NR tile at (row0+r, jc+jr) lies inside C
                                    // (row stride n); the kernel table was built for a
                                    // backend this CPU supports.
                                    unsafe {
                                        kernel(kc, panels, c[c0..].as_mut_ptr(), n, accumulate)
                                    };
                                } else {
                                    // SAFETY: as above, but the tile goes to `scratch`, which
                                    // holds h x NR <= MAX_TILE elements with row stride NR.
                                    unsafe { kernel(kc, panels, scratch.as_mut_ptr(), nr, false) };
                                    for i in 0..live {
                                        let dst = &mut c[c0 + i * n..][..cols];
                                        let src = &scratch[i * nr..][..cols];
                                        for (d, &s) in dst.iter_mut().zip(src) {
                                            *d = if accumulate { d.add(s) } else { s };
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    });
}

fn check_lengths(
    a: usize,
    b: usize,
    out: usize,
    m: usize,
    k: usize,
    n: usize,
) -> Result<(), Error> {
    let need = |x: usize, y: usize| x.saturating_mul(y);
    for (got, want) in [(a, need(m, k)), (b, need(k, n)), (out, need(m, n))] {
        if got != want {
            return Err(Error::LengthMismatch {
                left: got,
                right: want,
            });
        }
    }
    Ok(())
}

/// GEMM on an explicit backend (the tests compare them all against the reference).
///
/// A backend the CPU lacks is [`Error::UnsupportedBackend`]; NEON runs the portable tile.
#[allow(clippy::too_many_arguments)] // BLAS-shaped: operands, sizes, then knobs
pub fn matmul_with<T: Element>(
    isa: Backend,
    a: &[T],
    b: &[T],
    out: &mut [T],
    m: usize,
    k: usize,
    n: usize,
    threads: usize,
) -> Result<(), Error> {
    check_lengths(a.len(), b.len(), out.len(), m, k, n)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        out.fill(T::default());
        return Ok(());
    }
    let isa = require(isa)?;
    if n == 1 {
        // A single output column is a matrix-vector product: a GEMM tile would spend
        // NR - 1 of every NR lanes on padding (16x the work for f64).
        T::gemv_rows(isa, a, b, out, k);
        return Ok(());
    }
    let kern = T::kernel(isa).sized(k, n);
    let Some(band_rows) = band_rows(kern.mr, m, threads) else {
        gemm_band(&kern, a, BSource::Matrix(b), out, m, k, n);
        return Ok(());
    };
    let bands = m.div_ceil(band_rows);
    // Share one packed B when the bands are tall enough that one would pack it anyway
    // and the block is too big to keep a private copy per core in L2. A block that
    // fits in half of L2 is packed by each band itself: the copy is cheap, and reading
    // slivers another core just wrote costs more (2026-12-03 Xeon, two threads: 256^3
    // in 97 us private against 146 us shared; equal at 512^3 to 2048^3).
    let block = kern.kc.min(k) * kern.nc.min(n).div_ceil(kern.nr) * kern.nr * size_of::<T>();
    let half_l2 = usize::try_from(crate::machine::caches().l2_bytes / 2).unwrap_or(usize::MAX);
    let share = band_rows > PACK_B_MIN_SLIVERS * kern.mr && block > half_l2;
    let len = if share {
        kern.nc.min(n).div_ceil(kern.nr) * kern.nr * kern.kc.min(k)
    } else {
        0
    };
    with_shared_buffer(len.div_ceil(64 / size_of::<T>()), |buf| {
        let shared = share.then(|| SharedPack {
            ptr: buf.as_mut_ptr().cast::<T>(),
            len,
            parties: bands,
            barrier: crate::team::SpinBarrier::new(bands),
        });
        let shared = shared.as_ref();
        split_bands(a, out, band_rows, k, n, |i, a_band, c_band, rows| {
            let src = match shared {
                Some(sh) => BSource::Shared(b, sh, i),
                None => BSource::Matrix(b),
            };
            gemm_band(&kern, a_band, src, c_band, rows, k, n);
        });
    });
    Ok(())
}

/// Rows per band for `threads` threads over `m` rows in whole `mr` tiles, or `None`
/// when one band (the calling thread) does it all.
fn band_rows(mr: usize, m: usize, threads: usize) -> Option<usize> {
    // Never more threads than tiles.
    let tiles = m.div_ceil(mr);
    let threads = threads.clamp(1, tiles);
    (threads > 1).then(|| tiles.div_ceil(threads) * mr)
}

/// Run `f(band, a_band, c_band, rows)` on consecutive bands of `band_rows` rows of A
/// (`k` columns) and C (`n` columns), one [`crate::team::run`] part per band; the
/// calling thread computes the first band itself.
fn split_bands<T: Element>(
    a: &[T],
    out: &mut [T],
    band_rows: usize,
    k: usize,
    n: usize,
    f: impl Fn(usize, &[T], &mut [T], usize) + Sync,
) {
    // Each part takes its own band out of its slot: the bands are disjoint `&mut`s, and
    // a slot's lock is only ever taken once, by its part.
    type Band<'s, T> = std::sync::Mutex<Option<(&'s [T], &'s mut [T])>>;
    let bands: Vec<Band<'_, T>> = a
        .chunks(band_rows * k)
        .zip(out.chunks_mut(band_rows * n))
        .map(|band| std::sync::Mutex::new(Some(band)))
        .collect();
    crate::team::run(bands.len(), &|i| {
        let band = bands[i].lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((a_band, c_band)) = band {
            f(i, a_band, c_band, c_band.len() / n);
        }
    });
}

/// The right operand of a product (weights, typically) packed once into the panels the
/// micro-kernel reads: every `KC x NC` block of B, in `NR`-column slivers, zero-padded,
/// 64-byte aligned. [`matmul_packed_rhs`] with it skips the per-call packing of
/// [`matmul`] and gives bit-identical results: the kernels see the same values in the
/// same order. It is tied to the backend it was packed for (its tile and blocking).
#[derive(Clone)]
pub struct PackedRhs<T: Element> {
    kern: Kernel<T>,
    isa: Backend,
    k: usize,
    n: usize,
    /// The blocks, `(jc, pc)` in the driver's loop order, each starting on a line.
    data: Vec<Line>,
    /// Start (in elements of `T`) of each block in `data`.
    offsets: Vec<usize>,
    /// `n == 1`: the column itself (the product is a GEMV, which reads it in place).
    column: Vec<T>,
}

impl<T: Element> std::fmt::Debug for PackedRhs<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedRhs")
            .field("backend", &self.isa)
            .field("k", &self.k)
            .field("n", &self.n)
            .field(
                "bytes",
                &(self.data.len() * 64 + self.column.len() * size_of::<T>()),
            )
            .finish()
    }
}

impl<T: Element> PackedRhs<T> {
    /// Rows of B (the product's depth).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of B (and of the product).
    pub fn n(&self) -> usize {
        self.n
    }

    /// The backend whose kernels it was packed for (and that computes with it).
    pub fn backend(&self) -> Backend {
        self.isa
    }

    fn elements(&self) -> &[T] {
        // SAFETY: `Line` is 64 plain bytes aligned to 64 and every bit pattern is a valid
        // f32/f64 (alignment <= 64), so the lines can be viewed as `T`s; the length is
        // the buffer's size in elements.
        unsafe {
            std::slice::from_raw_parts(
                self.data.as_ptr().cast::<T>(),
                self.data.len() * (64 / size_of::<T>()),
            )
        }
    }

    /// The packed block whose columns start at `jc` and rows at `pc`.
    fn block(&self, jc: usize, pc: usize) -> &[T] {
        let k_blocks = self.k.div_ceil(self.kern.kc);
        let i = jc / self.kern.nc * k_blocks + pc / self.kern.kc;
        &self.elements()[self.offsets[i]..]
    }

    /// The `k x n` row-major matrix back, exactly as it was packed.
    pub fn to_matrix(&self) -> Vec<T> {
        if self.n == 1 {
            return self.column.clone();
        }
        let (nr, n) = (self.kern.nr, self.n);
        let mut b = vec![T::default(); self.k * n];
        for jc in (0..n).step_by(self.kern.nc) {
            let nc = self.kern.nc.min(n - jc);
            for pc in (0..self.k).step_by(self.kern.kc) {
                let kc = self.kern.kc.min(self.k - pc);
                let block = self.block(jc, pc);
                for (s, sliver) in block[..nc.div_ceil(nr) * nr * kc]
                    .chunks_exact(nr * kc)
                    .enumerate()
                {
                    let j0 = jc + s * nr;
                    let cols = nr.min(jc + nc - j0);
                    for (p, step) in sliver.chunks_exact(nr).enumerate() {
                        b[(pc + p) * n + j0..][..cols].copy_from_slice(&step[..cols]);
                    }
                }
            }
        }
        b
    }
}

/// Pack `b` (`k x n`, row-major) for [`matmul_packed_rhs`] on backend `isa`.
///
/// A backend the CPU lacks is [`Error::UnsupportedBackend`]; `b.len() != k * n` is
/// [`Error::LengthMismatch`].
pub fn pack_rhs_with<T: Element>(
    isa: Backend,
    b: &[T],
    k: usize,
    n: usize,
) -> Result<PackedRhs<T>, Error> {
    let want = k
        .checked_mul(n)
        .ok_or_else(|| Error::Shape(format!("a {k} x {n} matrix overflows usize")))?;
    if b.len() != want {
        return Err(Error::LengthMismatch {
            left: b.len(),
            right: want,
        });
    }
    let isa = require(isa)?;
    let kern = T::kernel(isa).sized(k, n);
    let mut packed = PackedRhs {
        kern,
        isa,
        k,
        n,
        data: Vec::new(),
        offsets: Vec::new(),
        column: Vec::new(),
    };
    if n == 1 {
        packed.column = b.to_vec();
        return Ok(packed);
    }
    let per_line = 64 / size_of::<T>();
    let (kc_max, nc_max, nr) = (kern.kc, kern.nc, kern.nr);
    // Block sizes first (the same loops as the driver), then one allocation.
    let mut sizes = Vec::new();
    for jc in (0..n).step_by(nc_max) {
        let nc = nc_max.min(n - jc);
        for pc in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - pc);
            sizes.push(nc.div_ceil(nr) * nr * kc);
        }
    }
    let mut at = 0;
    for &len in &sizes {
        packed.offsets.push(at);
        at += len.div_ceil(per_line) * per_line;
    }
    packed.data = vec![Line([0; 64]); at / per_line];
    // SAFETY: as in `PackedRhs::elements`, mutably: the buffer is exclusively ours.
    let dst = unsafe { std::slice::from_raw_parts_mut(packed.data.as_mut_ptr().cast::<T>(), at) };
    let mut i = 0;
    for jc in (0..n).step_by(nc_max) {
        let nc = nc_max.min(n - jc);
        for pc in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - pc);
            let off = packed.offsets[i];
            pack_b(b, n, pc, kc, jc, nc, nr, &mut dst[off..off + sizes[i]]);
            i += 1;
        }
    }
    Ok(packed)
}

/// Pack f32 `b` (`k x n`, row-major) once for [`matmul_packed_rhs`] on the active
/// backend: the form to keep a model's weights in.
pub fn pack_rhs(b: &[f32], k: usize, n: usize) -> Result<PackedRhs<f32>, Error> {
    pack_rhs_with(backend::active()?, b, k, n)
}

/// `out[m x n] = a[m x k] * b`, with `b` packed by [`pack_rhs`]: bit-identical to
/// [`matmul_with`] on `b`'s backend with the unpacked matrix and the same `threads`,
/// without packing B again. Lengths must be `m * k` and `m * n`.
pub fn matmul_packed_rhs<T: Element>(
    a: &[T],
    b: &PackedRhs<T>,
    out: &mut [T],
    m: usize,
    threads: usize,
) -> Result<(), Error> {
    let (k, n) = (b.k, b.n);
    check_lengths(a.len(), k * n, out.len(), m, k, n)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        out.fill(T::default());
        return Ok(());
    }
    if n == 1 {
        T::gemv_rows(b.isa, a, &b.column, out, k);
        return Ok(());
    }
    match band_rows(b.kern.mr, m, threads) {
        None => gemm_band(&b.kern, a, BSource::Prepacked(b), out, m, k, n),
        Some(rows) => split_bands(a, out, rows, k, n, |_, a_band, c_band, rows| {
            gemm_band(&b.kern, a_band, BSource::Prepacked(b), c_band, rows, k, n);
        }),
    }
    Ok(())
}

/// `out[m x n] = a[m x k] * b[k x n]`, all row-major f32, on the active backend
/// ([`backend::active`]), using `threads` OS threads (`0` and `1` both mean the
/// calling thread only).
///
/// `out` is overwritten, never read. Lengths must equal `m*k`, `k*n`, `m*n`
/// ([`Error::LengthMismatch`] otherwise). `k == 0` gives zeros, like NumPy.
pub fn matmul(
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    threads: usize,
) -> Result<(), Error> {
    matmul_with(backend::active()?, a, b, out, m, k, n, threads)
}

/// [`matmul`] for f64.
pub fn matmul_f64(
    a: &[f64],
    b: &[f64],
    out: &mut [f64],
    m: usize,
    k: usize,
    n: usize,
    threads: usize,
) -> Result<(), Error> {
    matmul_with(backend::active()?, a, b, out, m, k, n, threads)
}

/// GEMV on an explicit backend (see [`matmul_with`]).
pub fn gemv_with<T: Element>(
    isa: Backend,
    a: &[T],
    x: &[T],
    y: &mut [T],
    m: usize,
    n: usize,
) -> Result<(), Error> {
    check_lengths(a.len(), x.len(), y.len(), m, n, 1)?;
    T::gemv_rows(require(isa)?, a, x, y, n);
    Ok(())
}

/// `y[m] = a[m x n] * x[n]`, row-major f32. Memory-bound: it reads A once.
pub fn gemv(a: &[f32], x: &[f32], y: &mut [f32], m: usize, n: usize) -> Result<(), Error> {
    gemv_with(backend::active()?, a, x, y, m, n)
}

/// [`gemv`] for f64.
pub fn gemv_f64(a: &[f64], x: &[f64], y: &mut [f64], m: usize, n: usize) -> Result<(), Error> {
    gemv_with(backend::active()?, a, x, y, m, n)
}

/// The naive triple loop, accumulating in f64: the reference every kernel is tested
/// against. Returns the `m x n` product as f64.
pub fn matmul_reference<T: Element + Into<f64>>(
    a: &[T],
    b: &[T],
    m: usize,
    k: usize,
    n: usize,
) -> Vec<f64> {
    let mut c = vec![0.0f64; m * n];
    for i in 0..m {
        for p in 0..k {
            let av: f64 = a[i * k + p].into();
            for j in 0..n {
                c[i * n + j] += av * b[p * n + j].into();
            }
        }
    }
    c
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Deterministic test values in [-1, 1) (shared with the other GEMM tests).
    pub(crate) fn fill(len: usize, seed: u64) -> Vec<f32> {
        // xorshift: deterministic values in [-1, 1) without a rand dependency.
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Error bound for a length-k f32 dot product of values in [-1, 1].
    fn tol_f32(k: usize) -> f64 {
        1e-6 * (k as f64 + 1.0) * 4.0
    }

    fn check_f32(isa: Backend, m: usize, k: usize, n: usize, threads: usize) {
        let a = fill(m * k, (m * 31 + k) as u64);
        let b = fill(k * n, (n * 17 + k + 5) as u64);
        // Poison the output: matmul must overwrite, never read, it.
        let mut c = vec![f32::NAN; m * n];
        matmul_with(isa, &a, &b, &mut c, m, k, n, threads).unwrap();
        let want = matmul_reference(&a, &b, m, k, n);
        for (idx, (&got, &w)) in c.iter().zip(&want).enumerate() {
            assert!(
                (f64::from(got) - w).abs() <= tol_f32(k),
                "{isa:?} {m}x{k}x{n} t={threads}: c[{idx}] = {got}, want {w}"
            );
        }
    }

    #[test]
    fn odd_shapes_every_isa() {
        let shapes = [
            (1, 1, 1),
            (1, 7, 1),
            (17, 31, 7),
            (7, 17, 31),
            (12, 256, 32),
            (13, 257, 33),
            (11, 255, 31),
            (25, 600, 65),
            (100, 3, 129),
            (241, 20, 530),
            (1, 300, 600),
            (600, 300, 1),
            // Past every blocking boundary: k > KC (C accumulates across k blocks),
            // n > NC (several B blocks), m > MC (several A blocks).
            (13, 1100, 37),
            (5, 9, 2100),
            (3, 1030, 2050),
            (250, 40, 20),
            // Skinny products that read an operand in place (no packing): whole tiles,
            // partial tiles, and in-place reads across the KC and NC boundaries.
            (12, 64, 32),
            (24, 1100, 40),
            (4, 1030, 2100),
            (2, 5, 3),
            (25, 70, 127),
        ];
        for isa in backend::supported() {
            for &(m, k, n) in &shapes {
                check_f32(isa, m, k, n, 1);
            }
        }
    }

    #[test]
    fn threads_split_rows_exactly() {
        for isa in backend::supported() {
            for threads in [2, 3, 7, 64] {
                check_f32(isa, 37, 41, 43, threads);
                check_f32(isa, 5, 3, 2, threads);
            }
        }
        check_f32(backend::detect(), 250, 300, 70, 0);
    }

    /// Threads that share one packed B (bands taller than two tiles), across KC and
    /// NC block boundaries and with a short last band.
    #[test]
    fn threads_share_the_packed_b_exactly() {
        for isa in backend::supported() {
            for threads in [2, 3, 5] {
                check_f32(isa, 61, 1100, 70, threads);
                check_f32(isa, 80, 40, 2100, threads);
                check_f32(isa, 150, 33, 97, threads);
            }
        }
        let (m, k, n) = (97, 300, 45);
        let a: Vec<f64> = fill(m * k, 8).into_iter().map(f64::from).collect();
        let b: Vec<f64> = fill(k * n, 9).into_iter().map(f64::from).collect();
        let want = matmul_reference(&a, &b, m, k, n);
        let mut c = vec![f64::NAN; m * n];
        matmul_with(backend::detect(), &a, &b, &mut c, m, k, n, 2).unwrap();
        for (got, w) in c.iter().zip(&want) {
            assert!((got - w).abs() <= 1e-12 * k as f64);
        }
    }

    fn caches(l1: u64, l2: u64, l3: u64, shared: u32) -> crate::machine::Caches {
        crate::machine::Caches {
            l1d_bytes: l1,
            l2_bytes: l2,
            l3_bytes: l3,
            l3_shared_by: shared,
            line_bytes: 64,
            source: "test".into(),
            levels: Vec::new(),
        }
    }

    #[test]
    fn l2_resident_blocking_keeps_b_in_l2() {
        // The Xeon: the sizes measured best there (256 x 1024 B block, 1 MiB).
        let xeon = caches(48 << 10, 2 << 20, 480 << 20, 2);
        let b = Blocking::l2_resident(12, 32, 4, &xeon);
        assert_eq!(
            b,
            Blocking {
                kc: 256,
                mc: 504,
                nc: 1024
            }
        );
        for c in [
            xeon,
            caches(32 << 10, 1 << 20, 32 << 20, 2),
            caches(32 << 10, 256 << 10, 0, 1),
            caches(1, 1, 1, 0),
            caches(1 << 40, 1 << 40, 1 << 50, 1),
        ] {
            for (mr, nr, e) in [(12, 32, 4), (6, 16, 4), (12, 16, 8), (4, 8, 8)] {
                let b = Blocking::l2_resident(mr, nr, e, &c);
                assert!(b.mc.is_multiple_of(mr) && b.mc >= mr, "{b:?}");
                assert!(b.nc.is_multiple_of(nr) && b.nc >= 4 * nr, "{b:?}");
                assert!((128..=1024).contains(&b.kc), "{b:?}");
                if c.l2_bytes >= 1 << 20 && c.l2_bytes < 1 << 30 {
                    assert!(b.kc * b.nc * e <= c.l2_bytes as usize / 2, "{b:?}");
                }
            }
        }
    }

    /// Which blocking a product gets: the L3 rule unless its B block overflows half of
    /// L2 on a core whose L3 cannot feed the kernel, and the feed is only asked then.
    #[test]
    fn sized_kernels_ask_for_the_feed_only_when_it_matters() {
        let xeon = caches(48 << 10, 2 << 20, 480 << 20, 2);
        let kern = Kernel::<f32> {
            kc: 1024,
            mc: 480,
            nc: 4096,
            ..f32::kernel(Backend::Scalar)
        };
        let kern = Kernel {
            mr: 12,
            nr: 32,
            ..kern
        };
        let asked = std::cell::Cell::new(0);
        let feeds = |v: bool| {
            let asked = &asked;
            move || {
                asked.set(asked.get() + 1);
                v
            }
        };
        // 256 x 256: a 256 KiB B block fits in half of L2; the feed is not measured.
        let k = kern.sized_with(256, 256, &xeon, feeds(false));
        assert_eq!((k.kc, k.nc, asked.get()), (1024, 4096, 0));
        // 1024 x 1024 (4 MiB): L2-resident unless L3 feeds the kernel.
        let k = kern.sized_with(1024, 1024, &xeon, feeds(false));
        assert_eq!((k.kc, k.mc, k.nc, asked.get()), (256, 504, 1024, 1));
        let k = kern.sized_with(1024, 1024, &xeon, feeds(true));
        assert_eq!((k.kc, k.mc, k.nc, asked.get()), (1024, 480, 4096, 2));
    }

    /// Both blockings compute the product on every backend, whichever this machine's
    /// feed picks: the L2-resident one forced through `sized_with`, over shapes whose B
    /// block overflows half of L2 and edges in every blocked dimension.
    #[test]
    fn l2_resident_blocking_is_correct_on_every_isa() {
        let c = caches(48 << 10, 2 << 20, 480 << 20, 2);
        for isa in backend::supported() {
            for &(m, k, n) in &[(37, 700, 1100), (13, 257, 2049), (1, 300, 1500)] {
                let a = fill(m * k, 5);
                let b = fill(k * n, 6);
                let want = matmul_reference(&a, &b, m, k, n);
                for forced in [false, true] {
                    let kern = f32::kernel(isa).sized_with(k, n, &c, || forced);
                    if !forced {
                        assert!(kern.kc * kern.nc * 4 <= 1 << 20, "{isa:?}");
                    }
                    let mut got = vec![0.0f32; m * n];
                    gemm_band(&kern, &a, BSource::Matrix(&b), &mut got, m, k, n);
                    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (f64::from(g) - w).abs() <= tol_f32(k),
                            "{isa:?} {m}x{k}x{n} l3={forced}: c[{i}] = {g}, want {w}"
                        );
                    }
                }
            }
        }
    }

    /// The feed rule: the B stream an `mr`-row tile needs at the f32 peak.
    #[test]
    fn l3_feeds_at_the_need() {
        use crate::machine::GemmFeed;
        let feed = |l3_read| GemmFeed {
            l3_read,
            peak_f32: 240e9,
        };
        // need = 2 * 240e9 / 12 = 40 GB/s (the Xeon's 30 GB/s L3 does not feed it).
        assert!(!feed(30e9).l3_feeds(12));
        assert!(!feed(39.9e9).l3_feeds(12));
        assert!(feed(40e9).l3_feeds(12));
        // Zen 3: 92 GFLOP/s AVX2 peak, 6-row tile: need 30.7 GB/s, L3 reads 60-66.
        let zen3 = GemmFeed {
            l3_read: 60e9,
            peak_f32: 92e9,
        };
        assert!(zen3.l3_feeds(6));
        assert!(!feed(0.0).l3_feeds(12));
        assert!(!feed(f64::NAN).l3_feeds(12));
    }

    #[test]
    fn blocking_follows_the_caches() {
        // Zen 4 (1 MiB L2, 32 MiB L3 for 2 CPUs): the sizes measured best there.
        let zen4 = caches(32 << 10, 1 << 20, 32 << 20, 2);
        let b = Blocking::for_caches(12, 32, 4, &zen4);
        assert_eq!(
            b,
            Blocking {
                kc: 1024,
                mc: 240,
                nc: 2048
            }
        );
        let b = Blocking::for_caches(12, 16, 8, &zen4);
        assert_eq!(
            b,
            Blocking {
                kc: 512,
                mc: 240,
                nc: 2048
            }
        );
        // A laptop core with 256 KiB L2 and no L3: short slivers, B block in L2.
        let small = caches(32 << 10, 256 << 10, 0, 1);
        let b = Blocking::for_caches(12, 32, 4, &small);
        assert_eq!(b.kc, 256);
        assert!(b.kc * 32 * 4 <= (256 << 10) / 8);
        assert!(b.mc * b.kc * 4 <= 256 << 10);
        assert!(b.nc * b.kc * 4 <= 128 << 10);
        // The Xeon (2 MiB L2, 480 MiB L3): the long-sliver cap and the NC cap apply.
        let xeon = caches(48 << 10, 2 << 20, 480 << 20, 2);
        let b = Blocking::for_caches(12, 32, 4, &xeon);
        assert_eq!((b.kc, b.nc), (1024, 4096));
        assert_eq!(b.mc, 480);
        // Every result is whole tiles, whatever the caches (even absurd ones).
        for c in [
            zen4,
            small,
            xeon,
            caches(1, 1, 1, 0),
            caches(1 << 40, 1 << 40, 1 << 50, 1),
        ] {
            for (mr, nr, e) in [(12, 32, 4), (6, 16, 4), (12, 16, 8), (4, 8, 8)] {
                let b = Blocking::for_caches(mr, nr, e, &c);
                assert!(b.mc.is_multiple_of(mr) && b.mc >= mr, "{b:?}");
                assert!(b.nc.is_multiple_of(nr) && b.nc >= 4 * nr, "{b:?}");
                assert!((128..=1024).contains(&b.kc), "{b:?}");
            }
        }
    }

    #[test]
    fn empty_and_zero_k() {
        for isa in backend::supported() {
            let mut c: Vec<f32> = vec![];
            matmul_with(isa, &[], &[1.0; 6], &mut c, 0, 2, 3, 1).unwrap();
            let mut c = vec![f32::NAN; 6];
            matmul_with::<f32>(isa, &[], &[], &mut c, 2, 0, 3, 1).unwrap();
            assert_eq!(c, vec![0.0; 6]);
            let mut c: Vec<f32> = vec![];
            matmul_with(isa, &[1.0; 4], &[], &mut c, 2, 2, 0, 1).unwrap();
        }
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let mut c = vec![0.0f32; 4];
        assert_eq!(
            matmul(&[1.0; 5], &[1.0; 4], &mut c, 2, 2, 2, 1),
            Err(Error::LengthMismatch { left: 5, right: 4 })
        );
        assert_eq!(
            matmul(&[1.0; 4], &[1.0; 4], &mut c[..3], 2, 2, 2, 1),
            Err(Error::LengthMismatch { left: 3, right: 4 })
        );
        assert!(matmul(&[], &[], &mut [], usize::MAX, 2, 0, 1).is_err());
        let mut y = vec![0.0f32; 2];
        assert_eq!(
            gemv(&[1.0; 6], &[1.0; 2], &mut y, 2, 3),
            Err(Error::LengthMismatch { left: 2, right: 3 })
        );
    }

    #[test]
    fn f64_matches_reference_tightly() {
        for isa in backend::supported() {
            let shapes = [
                (1, 1, 1),
                (17, 31, 7),
                (13, 300, 37),
                (30, 5, 70),
                (13, 600, 37),
                (3, 520, 1030),
            ];
            for &(m, k, n) in &shapes {
                let a: Vec<f64> = fill(m * k, 3).into_iter().map(f64::from).collect();
                let b: Vec<f64> = fill(k * n, 4).into_iter().map(f64::from).collect();
                let mut c = vec![f64::NAN; m * n];
                matmul_with(isa, &a, &b, &mut c, m, k, n, 2).unwrap();
                let want = matmul_reference(&a, &b, m, k, n);
                for (got, w) in c.iter().zip(&want) {
                    assert!((got - w).abs() <= 1e-12 * k as f64, "{isa:?} {m}x{k}x{n}");
                }
            }
        }
    }

    #[test]
    fn gemv_matches_reference_every_tail() {
        for isa in backend::supported() {
            for m in [0, 1, 3, 4, 5, 9] {
                for n in [0, 1, 7, 15, 16, 17, 33, 100] {
                    let a = fill(m * n, (m * 7 + n) as u64);
                    let x = fill(n, 99);
                    let mut y = vec![f32::NAN; m];
                    gemv_with(isa, &a, &x, &mut y, m, n).unwrap();
                    let want = matmul_reference(&a, &x, m, n, 1);
                    for (got, w) in y.iter().zip(&want) {
                        assert!(
                            (f64::from(*got) - w).abs() <= tol_f32(n),
                            "{isa:?} m={m} n={n}"
                        );
                    }
                    let a64: Vec<f64> = a.iter().map(|&v| f64::from(v)).collect();
                    let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
                    let mut y64 = vec![f64::NAN; m];
                    gemv_with(isa, &a64, &x64, &mut y64, m, n).unwrap();
                    for (got, w) in y64.iter().zip(&want) {
                        assert!((got - w).abs() <= 1e-12 * (n as f64 + 1.0));
                    }
                }
            }
        }
    }

    #[test]
    fn special_values_propagate() {
        // A NaN or infinity in A must reach exactly the row it belongs to.
        let (m, k, n) = (13, 9, 35);
        let mut a = fill(m * k, 1);
        let b = fill(k * n, 2);
        a[5 * k + 3] = f32::NAN;
        a[12 * k] = f32::INFINITY;
        for isa in backend::supported() {
            let mut c = vec![0.0f32; m * n];
            matmul_with(isa, &a, &b, &mut c, m, k, n, 1).unwrap();
            assert!(c[5 * n..6 * n].iter().all(|v| v.is_nan()), "{isa:?}");
            assert!(c[12 * n..].iter().all(|v| !v.is_finite()), "{isa:?}");
            assert!(c[..5 * n].iter().all(|v| v.is_finite()), "{isa:?}");
        }
    }

    /// `matmul_packed_rhs` with `pack_rhs_with(isa, b)` against `matmul_with(isa, b)`,
    /// bit for bit (NaN payloads included), plus the pack's round trip.
    trait Bits: Element {
        fn bits(self) -> u64;
    }
    impl Bits for f32 {
        fn bits(self) -> u64 {
            u64::from(self.to_bits())
        }
    }
    impl Bits for f64 {
        fn bits(self) -> u64 {
            self.to_bits()
        }
    }

    fn check_packed<T: Bits>(
        isa: Backend,
        a: &[T],
        b: &[T],
        m: usize,
        k: usize,
        n: usize,
        threads: usize,
    ) {
        let p = pack_rhs_with(isa, b, k, n).unwrap();
        assert_eq!((p.k(), p.n()), (k, n));
        assert!(
            bits_eq(&p.to_matrix(), b),
            "{isa:?} {k}x{n}: unpacked matrix differs"
        );
        let mut want = vec![T::default(); m * n];
        matmul_with(isa, a, b, &mut want, m, k, n, threads).unwrap();
        // Poisoned: the product must overwrite, never read, the output.
        let mut got = vec![a.first().copied().unwrap_or_default(); m * n];
        matmul_packed_rhs(a, &p, &mut got, m, threads).unwrap();
        let bits = |v: &[T]| v.iter().map(|x| x.bits()).collect::<Vec<u64>>();
        assert!(
            bits(&got) == bits(&want),
            "{isa:?} {m}x{k}x{n} t={threads}: packed product differs"
        );
    }

    fn bits_eq<T: Bits>(x: &[T], y: &[T]) -> bool {
        x.len() == y.len() && x.iter().zip(y).all(|(a, b)| a.bits() == b.bits())
    }

    fn f32_bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn packed_rhs_edges_and_errors() {
        for isa in backend::supported() {
            for (m, k, n) in [
                (0, 0, 0),
                (0, 5, 7),
                (3, 0, 7),
                (3, 5, 0),
                (1, 1, 1),
                (5, 9, 1),
                (1, 9, 33),
            ] {
                let a = fill(m * k, 3);
                let b = fill(k * n, 4);
                let p = pack_rhs_with(isa, &b, k, n).unwrap();
                let mut want = vec![7.0f32; m * n];
                matmul_with(isa, &a, &b, &mut want, m, k, n, 1).unwrap();
                let mut got = vec![f32::NAN; m * n];
                matmul_packed_rhs(&a, &p, &mut got, m, 2).unwrap();
                assert_eq!(f32_bits(&got), f32_bits(&want), "{isa:?} {m}x{k}x{n}");
                assert_eq!(p.to_matrix(), b);
            }
        }
        let p = pack_rhs(&fill(12, 1), 3, 4).unwrap();
        let mut out = vec![0.0; 8];
        // A of the wrong length for m = 2, k = 3; an output of the wrong length.
        assert!(matches!(
            matmul_packed_rhs(&fill(5, 1), &p, &mut out, 2, 1),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            matmul_packed_rhs(&fill(6, 1), &p, &mut out[..7], 2, 1),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            pack_rhs(&fill(11, 1), 3, 4),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(pack_rhs(&[], usize::MAX, 2), Err(Error::Shape(_))));
        for isa in Backend::ALL {
            if !isa.missing_features().is_empty() {
                assert!(matches!(
                    pack_rhs_with(isa, &fill(12, 1), 3, 4),
                    Err(Error::UnsupportedBackend { .. })
                ));
            }
        }
    }

    #[test]
    fn packed_rhs_is_bit_identical_across_blocks_and_non_finite_values() {
        for isa in backend::supported() {
            let (_, _, blk) = tile_and_blocking::<f32>(isa).unwrap();
            // Cross a KC and an NC block boundary, with ragged last blocks.
            let (m, k, n) = (27, blk.kc + 3, blk.nc + 37);
            let mut a = fill(m * k, 11);
            let mut b = fill(k * n, 12);
            a[5 * k + 7] = f32::NAN;
            a[20 * k] = f32::INFINITY;
            b[3 * n + 1] = -f32::INFINITY;
            b[(k - 1) * n + n - 1] = 3.0e38;
            for threads in [1, 2] {
                check_packed(isa, &a, &b, m, k, n, threads);
            }
            let a64: Vec<f64> = fill(9 * 70, 13).into_iter().map(f64::from).collect();
            let b64: Vec<f64> = fill(70 * 45, 14).into_iter().map(f64::from).collect();
            check_packed(isa, &a64, &b64, 9, 70, 45, 1);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Every shape, odd sizes included, on every backend and 1-3 threads: the packed
        /// product equals the unpacked one bit for bit (both sides of the "pack B when
        /// the band has more than 2 MR slivers" rule: m up to 60).
        #[test]
        fn prop_packed_rhs_bit_identical(m in 0usize..60, k in 0usize..200, n in 0usize..90, threads in 1usize..4, seed in 0u64..1000) {
            let a = fill(m * k, seed);
            let b = fill(k * n, seed + 1);
            for isa in backend::supported() {
                check_packed(isa, &a, &b, m, k, n, threads);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn prop_matches_reference(m in 0usize..40, k in 0usize..300, n in 0usize..70, threads in 1usize..4, seed in 0u64..1000) {
            let a = fill(m * k, seed);
            let b = fill(k * n, seed + 1);
            let want = matmul_reference(&a, &b, m, k, n);
            for isa in backend::supported() {
                let mut c = vec![f32::NAN; m * n];
                matmul_with(isa, &a, &b, &mut c, m, k, n, threads).unwrap();
                for (got, w) in c.iter().zip(&want) {
                    prop_assert!((f64::from(*got) - w).abs() <= tol_f32(k));
                }
            }
        }
    }
}
