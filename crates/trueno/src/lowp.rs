//! Reduced-precision GEMM: bf16 and int8 products with wide accumulation.
//!
//! This file teaches what a CPU's dot-product instructions buy and what they cost in
//! accuracy. Both formats trade input precision for throughput; the accumulator stays
//! wide (f32 for bf16, i32 for int8), so the error comes from rounding the inputs, not
//! from summing. Nothing here runs unless asked for: [`crate::matmul`] stays f32.
//!
//! ## bf16 (`Precision::Bf16`)
//!
//! bfloat16 is the top half of an f32: same 8-bit exponent, 7 stored mantissa bits
//! (unit roundoff `u = 2^-8`). Inputs are converted once by [`bf16_from_f32`]:
//! round-to-nearest-even, NaN kept (quieted), and subnormals flushed to signed zero,
//! as `VCVTNEPS2BF16` and `VDPBF16PS` do (they ignore MXCSR: DAZ/FTZ always). The
//! product of two bf16 values is exact in f32 (8 x 8 significant bits), so the only
//! rounding after conversion is the f32 accumulation. Stated bounds, with
//! `S = sum_p |a_ip| |b_pj|` over the converted inputs (tests enforce both):
//!
//! - against the exact product of the **bf16-rounded** inputs: `|c - exact| <= k u32 S`
//!   (`u32 = 2^-24`): ordinary f32 summation, nothing more;
//! - against the exact product of the **raw f32** inputs: `|c - exact| <=
//!   (2u + u^2 + k u32) S_raw`, about `2^-7` relative to `S_raw`.
//!
//! The AVX-512 BF16 kernel keeps a `12 x 32` f32 tile in 24 zmm accumulators; each
//! `VDPBF16PS` multiplies 16 column pairs `(B[2g, j], B[2g+1, j])` by the broadcast
//! pair `(A[i, 2g], A[i, 2g+1])`, so B is packed pair-interleaved and A, row-major
//! with k padded to even, is read in place after conversion.
//!
//! ## int8 (`Precision::Int8`)
//!
//! Symmetric quantisation: each row of A and each column of B gets the scale
//! `s = max|x| / 127` and the integers `q = rint(x / s)` in `[-127, 127]` (ties to
//! even, as `np.rint`; an all-zero row or column, or one whose `s` underflows to 0,
//! has `s = 0` and `q = 0`). NaN and infinity cannot be quantised: they are an error.
//! `VPDPBUSD` multiplies **unsigned** bytes by signed bytes, so A is stored shifted,
//! `q_a + 128` in `[1, 255]`, and the shift is removed exactly with B's column sums:
//! `sum (q_a + 128) q_b - 128 sum q_b = sum q_a q_b`. The i32 arithmetic wraps; the
//! true integer sum fits in i32 when `k <= 133_143` (`k 127^2 < 2^31`), so the
//! wrapped result is exact, and longer depths are refused ([`INT8_MAX_K`]). The
//! output is `f32(acc) * s_a[i] * s_b[j]` (two f32 roundings, in that order), so it is
//! reproducible bit for bit from the quantised integers. Against the raw f32 product,
//! with `e_a = s_a / 2` and `e_b = s_b / 2` the quantisation steps' half-widths:
//! `|c - exact| <= e_a sum_p |b_pj| + e_b sum_p |a_ip| + k e_a e_b + 3 u32 |c|`.
//!
//! ## Paths and dispatch
//!
//! Each precision has a portable reference path, an AVX-512 path and an AMX path
//! ([`Path`]). The active backend ([`crate::backend`]) picks: on `avx512`, the AMX
//! tile kernel (`amx_bf16`, `amx_int8`; see the `amx` module) when the CPU, the OS
//! and, on Linux, the process's tile-data permission allow it, else the zmm kernel
//! with the needed extension (`avx512bf16`, `avx512vnni`), otherwise the reference.
//! All compute the same numbers (bit for bit for int8; within the same bound for
//! bf16), at very different speeds. `TRUENO_AMX=off` or [`set_amx`]`(false)` keeps
//! the choice on the AVX-512 kernels (to compare them); `scalar` and `avx2` never
//! use AMX. [`path`] says which one runs, so no benchmark mistakes one for the other;
//! nothing is ever silently lowered to a precision not asked for.

use crate::Error;
use crate::backend::{self, Backend};

/// The arithmetic a product is computed in. `F32` is [`crate::matmul`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Precision {
    F32,
    Bf16,
    Int8,
}

impl Precision {
    /// Lower-case name, as accepted by [`str::parse`].
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        }
    }

    /// Input values per 32-bit group the dot-product instruction consumes.
    fn group(self) -> usize {
        match self {
            Precision::F32 => 1,
            Precision::Bf16 => 2,
            Precision::Int8 => 4,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            "int8" => Ok(Precision::Int8),
            other => Err(Error::Shape(format!(
                "unknown precision {other:?}: expected \"f32\", \"bf16\" or \"int8\""
            ))),
        }
    }
}

/// The implementation that computes a reduced-precision product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Path {
    /// Portable Rust over the same packed operands; the reference the SIMD paths are
    /// tested against.
    Reference,
    /// `VDPBF16PS` on zmm (AVX-512 F/BW/VL + AVX512_BF16).
    Avx512Bf16,
    /// `VPDPBUSD` on zmm (AVX-512 F/BW/VL + AVX512_VNNI).
    Avx512Vnni,
    /// `TDPBF16PS` on AMX tiles (AMX-TILE + AMX-BF16, the OS's tile state, and on
    /// Linux the process's tile-data permission; AVX-512 F/BW/VL for the edges).
    AmxBf16,
    /// `TDPBUSD` on AMX tiles (AMX-TILE + AMX-INT8; otherwise as [`Path::AmxBf16`]).
    AmxInt8,
}

impl Path {
    pub fn name(self) -> &'static str {
        match self {
            Path::Reference => "reference",
            Path::Avx512Bf16 => "avx512_bf16",
            Path::Avx512Vnni => "avx512_vnni",
            Path::AmxBf16 => "amx_bf16",
            Path::AmxInt8 => "amx_int8",
        }
    }

    /// Whether this path computes `precision`.
    pub fn computes(self, precision: Precision) -> bool {
        matches!(
            (self, precision),
            (Path::Reference, Precision::Bf16 | Precision::Int8)
                | (Path::Avx512Bf16 | Path::AmxBf16, Precision::Bf16)
                | (Path::Avx512Vnni | Path::AmxInt8, Precision::Int8)
        )
    }

    /// The CPU features this path needs that the running CPU lacks (for the AMX
    /// paths also the OS's and the process's permission; the first check of an AMX
    /// path requests the Linux tile-data permission, once per process).
    pub fn missing_features(self) -> Vec<&'static str> {
        let mut missing = match self {
            Path::Reference => return Vec::new(),
            _ => Backend::Avx512.missing_features(),
        };
        match self {
            Path::Avx512Bf16 | Path::Avx512Vnni => {
                let extension = if self == Path::Avx512Bf16 {
                    "avx512bf16"
                } else {
                    "avx512vnni"
                };
                if !has_extension(extension) {
                    missing.push(extension);
                }
            }
            Path::AmxBf16 => missing.extend(amx_missing(Precision::Bf16)),
            _ => missing.extend(amx_missing(Precision::Int8)),
        }
        missing
    }

    fn is_amx(self) -> bool {
        matches!(self, Path::AmxBf16 | Path::AmxInt8)
    }

    /// Every path that computes `precision` on this CPU, reference first, the one
    /// [`path_for`] prefers on `avx512` last.
    pub fn available(precision: Precision) -> Vec<Path> {
        [
            Path::Reference,
            Path::Avx512Bf16,
            Path::Avx512Vnni,
            Path::AmxBf16,
            Path::AmxInt8,
        ]
        .into_iter()
        .filter(|p| p.computes(precision) && p.missing_features().is_empty())
        .collect()
    }
}

#[cfg(target_arch = "x86_64")]
fn has_extension(name: &str) -> bool {
    match name {
        "avx512bf16" => std::arch::is_x86_feature_detected!("avx512bf16"),
        "avx512vnni" => std::arch::is_x86_feature_detected!("avx512vnni"),
        _ => false,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn has_extension(_name: &str) -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn amx_missing(precision: Precision) -> Vec<&'static str> {
    amx::missing(precision)
}

#[cfg(not(target_arch = "x86_64"))]
fn amx_missing(_precision: Precision) -> Vec<&'static str> {
    vec!["x86-64 target"]
}

/// Name of the environment variable that keeps [`path_for`] off the AMX paths:
/// `TRUENO_AMX=off` (or `0`) picks the AVX-512 kernels even on a CPU with AMX, to
/// compare them; unset, empty, `on` or `1` allows AMX. Read at first use;
/// [`set_amx`] overrides it at any time.
pub const AMX_ENV_VAR: &str = "TRUENO_AMX";

/// The AMX switch: 0 unread, 1 on, 2 off, 3 an unusable `TRUENO_AMX` value.
static AMX_SWITCH: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Allow (`true`, the default) or forbid [`path_for`] to pick an AMX path. Explicit
/// paths ([`matmul_packed_on`]) are unaffected.
pub fn set_amx(allowed: bool) {
    AMX_SWITCH.store(
        if allowed { 1 } else { 2 },
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// Whether [`path_for`] may pick an AMX path ([`set_amx`], else `TRUENO_AMX`); an
/// unusable `TRUENO_AMX` value is an error naming it.
pub fn amx_allowed() -> Result<bool, Error> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut v = AMX_SWITCH.load(Relaxed);
    if v == 0 {
        v = match std::env::var(AMX_ENV_VAR).as_deref().map(str::trim) {
            Err(std::env::VarError::NotPresent) | Ok("" | "on" | "1") => 1,
            Ok("off" | "0") => 2,
            _ => 3,
        };
        // A concurrent `set_amx` wins over the environment.
        v = match AMX_SWITCH.compare_exchange(0, v, Relaxed, Relaxed) {
            Ok(_) => v,
            Err(current) => current,
        };
    }
    match v {
        1 => Ok(true),
        2 => Ok(false),
        _ => Err(Error::Shape(format!(
            "{AMX_ENV_VAR}={:?}: expected \"on\", \"off\", \"1\" or \"0\"",
            std::env::var_os(AMX_ENV_VAR).unwrap_or_default()
        ))),
    }
}

/// The path `precision` runs on under backend `isa`. On `avx512`: the AMX kernel when
/// the CPU, OS and process allow it and [`set_amx`] / `TRUENO_AMX` do not forbid it
/// (AMX is an extension of the `avx512` backend, as VNNI and BF16 are: every AMX CPU
/// has AVX-512), else the AVX-512 kernel when the CPU has its extension, else
/// [`Path::Reference`]. `scalar` and `avx2` always get the reference.
pub fn path_for(isa: Backend, precision: Precision) -> Result<Path, Error> {
    let missing = isa.missing_features();
    if !missing.is_empty() {
        return Err(Error::UnsupportedBackend {
            backend: isa.name(),
            missing: missing.join(", "),
        });
    }
    let (amx, simd) = match precision {
        Precision::F32 => {
            return Err(Error::Shape(
                "precision \"f32\" is trueno::matmul's, not a reduced-precision path".into(),
            ));
        }
        Precision::Bf16 => (Path::AmxBf16, Path::Avx512Bf16),
        Precision::Int8 => (Path::AmxInt8, Path::Avx512Vnni),
    };
    // An unusable TRUENO_AMX is an error on every backend, not only where AMX could run
    // (on an AVX2 CPU it was silently ignored).
    let amx_ok = amx_allowed()?;
    if isa != Backend::Avx512 {
        return Ok(Path::Reference);
    }
    Ok(if amx_ok && amx.missing_features().is_empty() {
        amx
    } else if simd.missing_features().is_empty() {
        simd
    } else {
        Path::Reference
    })
}

/// The peak rate of the AMX tile product for `precision` on one core, in operations
/// per second (a multiply-add counts two), measured now by a short probe (about 50 ms)
/// of independent `TDPBF16PS` / `TDPBUSD` chains; `None` when this CPU or process
/// cannot run the AMX path. The roofline of the `amx_*` paths (the AVX-512 ones are
/// bounded by the FMA-chain peak of [`crate::machine`] instead).
pub fn probe_amx_peak(precision: Precision) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if precision != Precision::F32 {
        return amx::probe_peak(precision);
    }
    let _ = precision;
    None
}

/// The path `precision` runs on under the active backend.
pub fn path(precision: Precision) -> Result<Path, Error> {
    path_for(backend::active()?, precision)
}

// ---------------------------------------------------------------------------
// Conversion and quantisation: the one definition of each format.
// ---------------------------------------------------------------------------

/// `x` as bf16 bits: round-to-nearest-even, subnormals flushed to signed zero, NaN
/// quieted (sign and top payload bits kept), overflow rounds to infinity.
#[inline]
pub fn bf16_from_f32(x: f32) -> u16 {
    // Branch-free (selects, not jumps) so the conversion loops vectorise.
    let bits = x.to_bits();
    let abs = bits & 0x7fff_ffff;
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16;
    let quiet_nan = (bits >> 16) | 0x0040;
    let signed_zero = (bits >> 16) & 0x8000;
    let h = if abs > 0x7f80_0000 {
        quiet_nan
    } else if abs < 0x0080_0000 {
        signed_zero
    } else {
        rounded
    };
    h as u16
}

/// The f32 a bf16 value denotes (exact).
#[inline]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// The deepest int8 product whose i32 accumulator cannot overflow: `k 127^2 < 2^31`.
pub const INT8_MAX_K: usize = 133_143;

/// The symmetric int8 scale of values whose largest magnitude is `amax`
/// (0 when `amax / 127` is 0: such a row or column quantises to zeros).
#[inline]
pub fn int8_scale(amax: f32) -> f32 {
    amax / 127.0
}

/// `x` quantised with scale `s`: `rint(x / s)` clamped to `[-127, 127]`; 0 when `s` is 0.
#[inline]
pub fn int8_quantize(x: f32, s: f32) -> i8 {
    if s == 0.0 { 0 } else { quantize_nonzero(x, s) }
}

/// [`int8_quantize`] for `s != 0`, in operations that vectorise on baseline x86-64
/// (`round_ties_even` is a libm call there). Clamping before rounding gives the same
/// integer as after (127.5 rounds to 128, clamped to 127, either way), and on
/// `[-127, 127]` adding and subtracting `1.5 * 2^23` rounds to the nearest integer,
/// ties to even, in the default rounding mode.
#[inline]
fn quantize_nonzero(x: f32, s: f32) -> i8 {
    const MAGIC: f32 = 12_582_912.0;
    let y = (x / s).clamp(-127.0, 127.0);
    ((y + MAGIC) - MAGIC) as i8
}

/// Which conversion loops run vectorised: AVX-512 when it is the active backend
/// (bf16 also needs AVX512_BF16's `VCVTNEPS2BF16`). The results are bit-identical to
/// the scalar definitions above (tested); the scalar backend keeps the portable loops.
fn simd_conversion(bf16: bool) -> bool {
    backend::active() == Ok(Backend::Avx512) && (!bf16 || has_extension("avx512bf16"))
}

/// `src` as bf16 bits into `dst[..src.len()]` ([`bf16_from_f32`] on each value).
fn convert_bf16(src: &[f32], dst: &mut [u16]) {
    let dst = &mut dst[..src.len()];
    #[cfg(target_arch = "x86_64")]
    if simd_conversion(true) {
        // SAFETY: the CPU has AVX-512 F/BW/VL and AVX512_BF16 (checked just above).
        return unsafe { x86::convert_bf16(src, dst) };
    }
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = bf16_from_f32(v);
    }
}

/// The largest `|x|` of finite `src` (0 when empty).
fn abs_max(src: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd_conversion(false) {
        // SAFETY: the CPU has AVX-512 F/BW/VL (the active backend's check).
        return unsafe { x86::abs_max(src) };
    }
    src.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// Quantise one row of B, each value with its column's scale, into `dst` (as i8 bits).
fn quantize_cols(src: &[f32], scales: &[f32], dst: &mut [u8]) {
    let dst = &mut dst[..src.len()];
    #[cfg(target_arch = "x86_64")]
    if simd_conversion(false) {
        // SAFETY: the CPU has AVX-512 F/BW/VL (the active backend's check).
        return unsafe { x86::quantize_cols(src, &scales[..src.len()], dst) };
    }
    for ((d, &v), &sc) in dst.iter_mut().zip(src).zip(scales) {
        *d = int8_quantize(v, sc) as u8;
    }
}

/// Quantise `src` with scale `s` into `dst` as `q + shift` (shift 128: A's unsigned form).
fn quantize_row(src: &[f32], s: f32, shift: i16, dst: &mut [u8]) {
    let dst = &mut dst[..src.len()];
    if s == 0.0 {
        dst.fill(shift as u8);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if simd_conversion(false) {
        // SAFETY: the CPU has AVX-512 F/BW/VL (the active backend's check).
        return unsafe { x86::quantize_row(src, s, i32::from(shift), dst) };
    }
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = (i16::from(quantize_nonzero(v, s)) + shift) as u8;
    }
}

fn non_finite(name: &str, x: &[f32], cols: usize) -> Result<(), Error> {
    // A branch-free OR over each chunk (it vectorises); the position only on failure.
    let exponent_all_ones = |v: &f32| v.to_bits() & 0x7f80_0000 == 0x7f80_0000;
    if !x
        .chunks(256)
        .any(|c| c.iter().fold(false, |bad, v| bad | exponent_all_ones(v)))
    {
        return Ok(());
    }
    match x.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::Shape(format!(
            "int8 matmul: {name}[{}, {}] = {} cannot be quantised (NaN and infinity have no int8 value)",
            i / cols.max(1),
            i % cols.max(1),
            x[i]
        ))),
    }
}

// ---------------------------------------------------------------------------
// Packed B: the weights, converted and laid out once, reusable across calls.
// ---------------------------------------------------------------------------

/// Register tile: rows of C per kernel call.
const MR: usize = 12;
/// Register tile: columns of C per kernel call (two zmm of 16 lanes).
const NR: usize = 32;
/// Bytes of one packed group step of a panel: NR columns x 4 bytes (a bf16 pair or
/// four int8 values per column).
const STEP: usize = NR * 4;

/// A 64-byte-aligned cache line: the packed buffers' unit, so every zmm load is aligned.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

fn lines(bytes: usize) -> Vec<Line> {
    vec![Line([0; 64]); bytes.div_ceil(64)]
}

fn as_bytes(v: &[Line]) -> &[u8] {
    // SAFETY: `Line` is 64 plain bytes; the view covers exactly the vector's memory.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), v.len() * 64) }
}

fn as_words_mut(v: &mut [Line]) -> &mut [u32] {
    // SAFETY: `Line` is 64 plain bytes aligned to 64, i.e. 16 aligned u32.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u32>(), v.len() * 16) }
}

fn as_halves_mut(v: &mut [Line]) -> &mut [u16] {
    // SAFETY: as `as_words_mut`: 32 aligned u16 per line.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u16>(), v.len() * 32) }
}

fn as_bytes_mut(v: &mut [Line]) -> &mut [u8] {
    // SAFETY: as `as_bytes`, with the unique borrow of `v`.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), v.len() * 64) }
}

/// B (`k x n`, row-major) converted to `precision` and packed into panels of 32
/// columns, k grouped as the dot-product instruction reads it (pairs for bf16, quads
/// for int8), zero-padded to whole panels and groups. Pack weights once, multiply
/// many times ([`matmul_packed`]).
#[derive(Clone)]
pub struct PackedB {
    precision: Precision,
    k: usize,
    n: usize,
    data: Vec<Line>,
    /// int8: each column's scale, zero-padded to whole panels.
    scales: Vec<f32>,
    /// int8: 128 x each column's sum of quantised values (the shift compensation).
    comp: Vec<i32>,
}

impl std::fmt::Debug for PackedB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedB")
            .field("precision", &self.precision)
            .field("k", &self.k)
            .field("n", &self.n)
            .field("bytes", &(self.data.len() * 64))
            .finish()
    }
}

impl PackedB {
    pub fn precision(&self) -> Precision {
        self.precision
    }
    pub fn k(&self) -> usize {
        self.k
    }
    pub fn n(&self) -> usize {
        self.n
    }
    /// int8: each column's quantisation scale (empty for bf16).
    pub fn scales(&self) -> &[f32] {
        if self.precision == Precision::Int8 {
            &self.scales[..self.n]
        } else {
            &[]
        }
    }

    fn groups(&self) -> usize {
        self.k.div_ceil(self.precision.group())
    }

    fn panel_bytes(&self) -> usize {
        self.groups() * STEP
    }

    fn empty(precision: Precision, k: usize, n: usize) -> Result<PackedB, Error> {
        if precision == Precision::F32 {
            return Err(Error::Shape(
                "precision \"f32\" has no packed form: use trueno::matmul".into(),
            ));
        }
        if precision == Precision::Int8 && k > INT8_MAX_K {
            return Err(Error::Shape(format!(
                "int8 matmul: k = {k} exceeds {INT8_MAX_K}, the depth at which the i32 accumulator can overflow"
            )));
        }
        let panels = n.div_ceil(NR);
        let groups = k.div_ceil(precision.group());
        let bytes = panels
            .checked_mul(groups)
            .and_then(|x| x.checked_mul(STEP))
            .ok_or_else(|| Error::Shape(format!("packed B of {k} x {n} overflows usize")))?;
        Ok(PackedB {
            precision,
            k,
            n,
            data: lines(bytes),
            scales: Vec::new(),
            comp: Vec::new(),
        })
    }
}

/// Pack f32 `b` (`k x n`, row-major) for a `precision` product (bf16 or int8).
///
/// Errors: wrong length ([`Error::LengthMismatch`]), `"f32"`, int8 with a non-finite
/// value or `k > INT8_MAX_K` ([`Error::Shape`], naming the value).
pub fn pack_b(precision: Precision, b: &[f32], k: usize, n: usize) -> Result<PackedB, Error> {
    check_len(b.len(), k.saturating_mul(n))?;
    let mut p = PackedB::empty(precision, k, n)?;
    match precision {
        Precision::Bf16 => {
            let mut h = vec![0u16; b.len()];
            convert_bf16(b, &mut h);
            interleave::<u16, 2>(as_words_mut(&mut p.data), &h, k, n);
        }
        Precision::Int8 => {
            non_finite("b", b, n)?;
            let padded = n.div_ceil(NR) * NR;
            let mut amax = vec![0.0f32; padded];
            for row in b.chunks_exact(n.max(1)).take(k) {
                for (m, &v) in amax.iter_mut().zip(row) {
                    *m = m.max(v.abs());
                }
            }
            p.scales = amax.iter().map(|&m| int8_scale(m)).collect();
            // Quantise row by row (contiguous, vectorised), then interleave.
            let mut q = vec![0u8; b.len()];
            let mut sums = vec![0i32; padded];
            for (src, dst) in b.chunks_exact(n.max(1)).zip(q.chunks_exact_mut(n.max(1))) {
                quantize_cols(src, &p.scales[..n], dst);
                for (sum, &d) in sums.iter_mut().zip(dst.iter()) {
                    *sum += i32::from(d as i8);
                }
            }
            interleave::<u8, 4>(as_words_mut(&mut p.data), &q, k, n);
            p.comp = sums.iter().map(|&s| s.wrapping_mul(128)).collect();
        }
        Precision::F32 => unreachable!("refused by PackedB::empty"),
    }
    Ok(p)
}

/// Pack `b` given as bf16 bits (`k x n`, row-major: weights stored in bf16).
pub fn pack_b_bf16_bits(b: &[u16], k: usize, n: usize) -> Result<PackedB, Error> {
    check_len(b.len(), k.saturating_mul(n))?;
    let mut p = PackedB::empty(Precision::Bf16, k, n)?;
    interleave::<u16, 2>(as_words_mut(&mut p.data), b, k, n);
    Ok(p)
}

/// Lay out `src` (`k x n`, row-major) in 32-column panels of 32-bit words: word
/// `(panel, g, col)` holds rows `G g .. G g + G` of the column, first row in the low
/// bits (`32 / G` bits each); rows and columns past the matrix are zero.
fn interleave<T: Copy + Into<u32>, const G: usize>(dst: &mut [u32], src: &[T], k: usize, n: usize) {
    let groups = k.div_ceil(G);
    if groups == 0 || n == 0 {
        return;
    }
    let width = 32 / G;
    for (p, panel) in dst
        .chunks_exact_mut(groups * NR)
        .take(n.div_ceil(NR))
        .enumerate()
    {
        let c0 = p * NR;
        let cols = NR.min(n - c0);
        for (g, step) in panel.chunks_exact_mut(NR).enumerate() {
            let step = &mut step[..cols];
            step.fill(0);
            for t in 0..G.min(k - g * G) {
                let row = &src[(g * G + t) * n + c0..][..cols];
                for (w, &v) in step.iter_mut().zip(row) {
                    *w |= v.into() << (width * t);
                }
            }
        }
    }
}

fn check_len(got: usize, want: usize) -> Result<(), Error> {
    if got == want {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            left: got,
            right: want,
        })
    }
}

// ---------------------------------------------------------------------------
// The product.
// ---------------------------------------------------------------------------

/// The left operand: f32 (converted or quantised per row on the fly) or bf16 bits.
#[derive(Debug, Clone, Copy)]
pub enum Lhs<'a> {
    F32(&'a [f32]),
    Bf16Bits(&'a [u16]),
}

impl Lhs<'_> {
    fn len(&self) -> usize {
        match self {
            Lhs::F32(a) => a.len(),
            Lhs::Bf16Bits(a) => a.len(),
        }
    }
}

/// `out[m x n] = a[m x k] * b` in `b`'s precision on the active backend's path,
/// `threads` OS threads (0 and 1: the calling thread only). `out` is overwritten.
pub fn matmul_packed(
    a: Lhs<'_>,
    b: &PackedB,
    out: &mut [f32],
    m: usize,
    threads: usize,
) -> Result<(), Error> {
    matmul_packed_on(path(b.precision)?, a, b, out, m, threads)
}

/// `out[m x n] = a[m x k] * b[k x n]` (all f32, row-major) computed in `precision`
/// (bf16 or int8): [`pack_b`] then [`matmul_packed`].
#[allow(clippy::too_many_arguments)] // BLAS-shaped, as trueno::matmul
pub fn matmul_lowp(
    precision: Precision,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    threads: usize,
) -> Result<(), Error> {
    let path = path(precision)?;
    check_len(a.len(), m.saturating_mul(k))?;
    check_len(out.len(), m.saturating_mul(n))?;
    let packed = pack_b(precision, b, k, n)?;
    matmul_packed_on(path, Lhs::F32(a), &packed, out, m, threads)
}

/// [`matmul_packed`] on an explicit path (the tests compare them all). A path the CPU
/// lacks is [`Error::UnsupportedBackend`]; one that does not compute `b`'s precision
/// is [`Error::Shape`].
pub fn matmul_packed_on(
    path: Path,
    a: Lhs<'_>,
    b: &PackedB,
    out: &mut [f32],
    m: usize,
    threads: usize,
) -> Result<(), Error> {
    let missing = path.missing_features();
    if !missing.is_empty() {
        return Err(Error::UnsupportedBackend {
            backend: path.name(),
            missing: missing.join(", "),
        });
    }
    if !path.computes(b.precision) {
        return Err(Error::Shape(format!(
            "path {} does not compute {} products",
            path.name(),
            b.precision.name()
        )));
    }
    let (k, n) = (b.k, b.n);
    check_len(a.len(), m.saturating_mul(k))?;
    check_len(out.len(), m.saturating_mul(n))?;
    match (a, b.precision) {
        (Lhs::Bf16Bits(_), Precision::Int8) => {
            return Err(Error::Shape(
                "int8 matmul takes an f32 left operand (it is quantised per row)".into(),
            ));
        }
        (Lhs::F32(x), Precision::Int8) => non_finite("a", x, k)?,
        _ => {}
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        out.fill(0.0);
        return Ok(());
    }
    // Bands of whole row tiles, one per thread; B is shared read-only.
    let unit = row_unit(path);
    let tiles = m.div_ceil(unit);
    let threads = threads.clamp(1, tiles);
    let band = tiles.div_ceil(threads) * unit;
    if threads == 1 {
        run_band(path, a, b, 0, m, out);
        return Ok(());
    }
    std::thread::scope(|s| {
        let mut parts = out.chunks_mut(band * n).enumerate();
        let first = parts.next();
        for (i, c) in parts {
            let rows = c.len() / n;
            s.spawn(move || run_band(path, a, b, i * band, rows, c));
        }
        if let Some((_, c)) = first {
            let rows = c.len() / n;
            run_band(path, a, b, 0, rows, c);
        }
    });
    Ok(())
}

/// Rows of C one kernel call computes on `path`.
fn row_unit(path: Path) -> usize {
    #[cfg(target_arch = "x86_64")]
    if path.is_amx() {
        return amx::MT;
    }
    let _ = path;
    MR
}

/// Rows of A converted per block: the block (`mc x k` at 1-2 bytes) takes half of L2,
/// so it stays there while every panel of B passes over it.
fn block_rows(row_bytes: usize) -> usize {
    let l2 = usize::try_from(crate::machine::caches().l2_bytes)
        .unwrap_or(usize::MAX)
        .max(256 << 10);
    (l2 / 2 / row_bytes.max(1) / MR * MR).clamp(MR, 1200)
}

/// Rows `row0..row0+rows` of C (`out`, `rows x n`): convert each block of A rows, then
/// run every (panel, sliver) tile over it.
fn run_band(path: Path, a: Lhs<'_>, b: &PackedB, row0: usize, rows: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if path.is_amx() {
        // SAFETY: `matmul_packed_on` checked the path's features (AMX, the tile
        // permission, AVX-512) and the operands' lengths.
        return unsafe { amx::run_band(a, b, row0, rows, out) };
    }
    let n = b.n;
    let groups = b.groups();
    // Bytes of one converted A row (k padded to whole groups): 4 per group either way.
    let row_bytes = groups * 4;
    let mc = block_rows(row_bytes).min(rows.div_ceil(MR) * MR);
    let mut abuf = lines(mc * row_bytes);
    let mut sa = vec![0.0f32; mc];
    let panels = n.div_ceil(NR);
    let bdata = as_bytes(&b.data);
    for ic in (0..rows).step_by(mc) {
        let h = mc.min(rows - ic);
        convert_rows(a, b, row0 + ic, h, row_bytes, &mut abuf, &mut sa);
        let dst = as_bytes(&abuf);
        for p in 0..panels {
            let cols = NR.min(n - p * NR);
            let panel = &bdata[p * b.panel_bytes()..(p + 1) * b.panel_bytes()];
            for ir in (0..h).step_by(MR) {
                let r = MR.min(h - ir);
                let tile = Tile {
                    precision: b.precision,
                    a: &dst[ir * row_bytes..(ir + r) * row_bytes],
                    row_bytes,
                    b: panel,
                    groups,
                    rows: r,
                    cols,
                    sa: &sa[ir..ir + r],
                    sb: b.scales.get(p * NR..(p + 1) * NR).unwrap_or(&[]),
                    comp: b.comp.get(p * NR..(p + 1) * NR).unwrap_or(&[]),
                };
                let c = &mut out[(ic + ir) * n + p * NR..];
                run_tile(path, &tile, c, n);
            }
        }
    }
}

/// Convert A rows `first..first + rows` into rows `0..rows` of `abuf` (`row_bytes`
/// each, at least k values' worth): bf16 bits, or for int8 the unsigned form `q + 128`
/// with each row's scale into `sa`. Past k each row is padding that adds nothing
/// against B's zero padding: zero bf16, or int8 `q = 0`.
fn convert_rows(
    a: Lhs<'_>,
    b: &PackedB,
    first: usize,
    rows: usize,
    row_bytes: usize,
    abuf: &mut [Line],
    sa: &mut [f32],
) {
    let k = b.k;
    for (i, scale) in sa[..rows].iter_mut().enumerate() {
        let r = first + i;
        let span = i * row_bytes..(i + 1) * row_bytes;
        match (a, b.precision) {
            (Lhs::F32(x), Precision::Bf16) => {
                let drow = &mut as_halves_mut(abuf)[span.start / 2..span.end / 2];
                convert_bf16(&x[r * k..(r + 1) * k], drow);
                drow[k..].fill(0);
            }
            (Lhs::Bf16Bits(x), _) => {
                let drow = &mut as_halves_mut(abuf)[span.start / 2..span.end / 2];
                drow[..k].copy_from_slice(&x[r * k..(r + 1) * k]);
                drow[k..].fill(0);
            }
            (Lhs::F32(x), _) => {
                let src = &x[r * k..(r + 1) * k];
                let s = int8_scale(abs_max(src));
                *scale = s;
                let drow = &mut as_bytes_mut(abuf)[span];
                quantize_row(src, s, 128, drow);
                drow[k..].fill(128);
            }
        }
    }
}

/// One kernel call's operands: `rows` converted A rows, one B panel, and (int8) the
/// rows' and columns' scales and the columns' shift compensation.
struct Tile<'a> {
    precision: Precision,
    a: &'a [u8],
    row_bytes: usize,
    b: &'a [u8],
    groups: usize,
    rows: usize,
    cols: usize,
    sa: &'a [f32],
    sb: &'a [f32],
    comp: &'a [i32],
}

/// Compute one `rows x cols` tile into `c` (row stride `ldc`; `c` starts at the tile).
fn run_tile(path: Path, t: &Tile<'_>, c: &mut [f32], ldc: usize) {
    debug_assert!(c.len() >= (t.rows - 1) * ldc + t.cols);
    match path {
        Path::Reference if t.precision == Precision::Bf16 => tile_bf16_reference(t, c, ldc),
        Path::Reference => tile_int8_reference(t, c, ldc),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `matmul_packed_on` checked that the CPU has this path's features;
        // the tile's slices hold `rows` A rows of `groups` groups, a whole panel, and
        // `c` holds `rows` rows of `cols` columns at stride `ldc` (asserted above).
        Path::Avx512Bf16 => unsafe { x86::bf16_tile(t, c.as_mut_ptr(), ldc) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Path::Avx512Vnni => unsafe { x86::int8_tile(t, c.as_mut_ptr(), ldc) },
        Path::AmxBf16 | Path::AmxInt8 => {
            unreachable!("the AMX paths run whole blocks (run_band calls amx::run_block)")
        }
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("SIMD paths are refused off x86-64 (missing_features)"),
    }
}

fn tile_bf16_reference(t: &Tile<'_>, c: &mut [f32], ldc: usize) {
    for i in 0..t.rows {
        let arow = &t.a[i * t.row_bytes..];
        for j in 0..t.cols {
            let mut acc = 0.0f32;
            for g in 0..t.groups {
                for h in 0..2 {
                    let ai = 4 * g + 2 * h;
                    let bi = g * STEP + j * 4 + 2 * h;
                    let x = bf16_to_f32(u16::from_le_bytes([arow[ai], arow[ai + 1]]));
                    let y = bf16_to_f32(u16::from_le_bytes([t.b[bi], t.b[bi + 1]]));
                    // Exact: a product of two bf16 values fits in f32's significand.
                    acc += x * y;
                }
            }
            c[i * ldc + j] = acc;
        }
    }
}

fn tile_int8_reference(t: &Tile<'_>, c: &mut [f32], ldc: usize) {
    for i in 0..t.rows {
        let arow = &t.a[i * t.row_bytes..];
        for j in 0..t.cols {
            let mut acc = 0i32;
            for g in 0..t.groups {
                for h in 0..4 {
                    let x = i32::from(arow[4 * g + h]);
                    let y = i32::from(t.b[g * STEP + j * 4 + h] as i8);
                    acc = acc.wrapping_add(x * y);
                }
            }
            let v = acc.wrapping_sub(t.comp[j]);
            c[i * ldc + j] = v as f32 * t.sa[i] * t.sb[j];
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{MR, NR, STEP, Tile};
    use std::arch::x86_64::*;

    /// The two 16-lane store masks of a tile `cols` wide.
    fn masks(cols: usize) -> (u16, u16) {
        let full = if cols >= NR {
            u32::MAX
        } else {
            (1u32 << cols) - 1
        };
        (full as u16, (full >> 16) as u16)
    }

    /// Expand `$body!(R)` for the tile's row count (1..=MR), so each height is its
    /// own fully unrolled kernel with its accumulators in registers.
    macro_rules! by_rows {
        ($rows:expr, $f:ident, $($arg:expr),*) => {
            match $rows {
                1 => $f::<1>($($arg),*),
                2 => $f::<2>($($arg),*),
                3 => $f::<3>($($arg),*),
                4 => $f::<4>($($arg),*),
                5 => $f::<5>($($arg),*),
                6 => $f::<6>($($arg),*),
                7 => $f::<7>($($arg),*),
                8 => $f::<8>($($arg),*),
                9 => $f::<9>($($arg),*),
                10 => $f::<10>($($arg),*),
                11 => $f::<11>($($arg),*),
                _ => $f::<MR>($($arg),*),
            }
        };
    }

    /// [`super::convert_bf16`] with `VCVTNEPS2BF16` (RNE, DAZ/FTZ, NaN quieted: the
    /// scalar definition).
    ///
    /// # Safety
    /// The CPU has AVX-512 F/BW/VL and AVX512_BF16; `dst.len() == src.len()`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
    pub(super) unsafe fn convert_bf16(src: &[f32], dst: &mut [u16]) {
        debug_assert_eq!(src.len(), dst.len());
        let n = src.len();
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        let mut i = 0;
        while i < n {
            let left = n - i;
            let m: __mmask16 = if left >= 16 { 0xffff } else { (1 << left) - 1 };
            // SAFETY: lanes of `m` address elements i..i + min(16, left) of both slices;
            // masked-off lanes touch no memory.
            unsafe {
                let v = _mm512_maskz_loadu_ps(m, s.add(i));
                let h = std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(v));
                _mm256_mask_storeu_epi16(d.add(i).cast(), m, h);
            }
            i += 16;
        }
    }

    /// [`super::abs_max`] on zmm (exact: max is).
    ///
    /// # Safety
    /// The CPU has AVX-512 F/BW/VL.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn abs_max(src: &[f32]) -> f32 {
        let (n, s) = (src.len(), src.as_ptr());
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        while i < n {
            let left = n - i;
            let m: __mmask16 = if left >= 16 { 0xffff } else { (1 << left) - 1 };
            // SAFETY: as in `convert_bf16`.
            let v = unsafe { _mm512_maskz_loadu_ps(m, s.add(i)) };
            acc = _mm512_max_ps(acc, _mm512_abs_ps(v));
            i += 16;
        }
        _mm512_reduce_max_ps(acc)
    }

    /// [`super::quantize_row`] for `s != 0` on zmm: the same division, clamp and
    /// magic-number rounding as `quantize_nonzero`, so the same bytes.
    ///
    /// # Safety
    /// The CPU has AVX-512 F/BW/VL; `dst.len() == src.len()`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn quantize_row(src: &[f32], s: f32, shift: i32, dst: &mut [u8]) {
        debug_assert_eq!(src.len(), dst.len());
        let (n, sp, dp) = (src.len(), src.as_ptr(), dst.as_mut_ptr());
        let (vs, lo, hi) = (
            _mm512_set1_ps(s),
            _mm512_set1_ps(-127.0),
            _mm512_set1_ps(127.0),
        );
        let (magic, sh) = (_mm512_set1_ps(12_582_912.0), _mm512_set1_epi32(shift));
        let mut i = 0;
        while i < n {
            let left = n - i;
            let m: __mmask16 = if left >= 16 { 0xffff } else { (1 << left) - 1 };
            // SAFETY: as in `convert_bf16`.
            unsafe {
                let y = _mm512_div_ps(_mm512_maskz_loadu_ps(m, sp.add(i)), vs);
                let y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
                let r = _mm512_sub_ps(_mm512_add_ps(y, magic), magic);
                let q = _mm512_add_epi32(_mm512_cvttps_epi32(r), sh);
                _mm_mask_storeu_epi8(dp.add(i).cast(), m, _mm512_cvtepi32_epi8(q));
            }
            i += 16;
        }
    }

    /// [`super::quantize_cols`] on zmm: `quantize_row` with a scale per lane, 0 where
    /// the scale is 0.
    ///
    /// # Safety
    /// The CPU has AVX-512 F/BW/VL; the three slices have one length.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn quantize_cols(src: &[f32], scales: &[f32], dst: &mut [u8]) {
        debug_assert!(src.len() == dst.len() && src.len() == scales.len());
        let (n, sp, cp, dp) = (src.len(), src.as_ptr(), scales.as_ptr(), dst.as_mut_ptr());
        let (lo, hi, magic) = (
            _mm512_set1_ps(-127.0),
            _mm512_set1_ps(127.0),
            _mm512_set1_ps(12_582_912.0),
        );
        let mut i = 0;
        while i < n {
            let left = n - i;
            let m: __mmask16 = if left >= 16 { 0xffff } else { (1 << left) - 1 };
            // SAFETY: as in `convert_bf16`.
            unsafe {
                let sc = _mm512_maskz_loadu_ps(m, cp.add(i));
                let nonzero = _mm512_cmpneq_ps_mask(sc, _mm512_setzero_ps());
                let y = _mm512_div_ps(_mm512_maskz_loadu_ps(m, sp.add(i)), sc);
                let y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
                let r = _mm512_sub_ps(_mm512_add_ps(y, magic), magic);
                let q = _mm512_maskz_mov_epi32(nonzero, _mm512_cvttps_epi32(r));
                _mm_mask_storeu_epi8(dp.add(i).cast(), m, _mm512_cvtepi32_epi8(q));
            }
            i += 16;
        }
    }

    /// # Safety
    /// The CPU has AVX-512 F/BW/VL and AVX512_BF16; `t` is a consistent tile and `c`
    /// addresses `t.rows` rows of `t.cols` f32 at stride `ldc`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
    pub(super) unsafe fn bf16_tile(t: &Tile<'_>, c: *mut f32, ldc: usize) {
        // SAFETY: forwarded from this function's contract.
        unsafe { by_rows!(t.rows, bf16_kernel, t, c, ldc) }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
    unsafe fn bf16_kernel<const R: usize>(t: &Tile<'_>, c: *mut f32, ldc: usize) {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        let (a, b) = (t.a.as_ptr(), t.b.as_ptr());
        for g in 0..t.groups {
            // SAFETY: the panel holds `groups` steps of STEP (128) bytes, 64-aligned.
            let (b0, b1) = unsafe {
                let p = b.add(g * STEP);
                (
                    _mm512_load_si512(p.cast()),
                    _mm512_load_si512(p.add(64).cast()),
                )
            };
            let (b0, b1): (__m512bh, __m512bh) = (
                // SAFETY: same size, plain bits (the bf16 vector is 32 x u16).
                unsafe { std::mem::transmute::<__m512i, __m512bh>(b0) },
                // SAFETY: as above.
                unsafe { std::mem::transmute::<__m512i, __m512bh>(b1) },
            );
            for (r, row) in acc.iter_mut().enumerate() {
                // SAFETY: row r of A has `groups` 4-byte groups at stride `row_bytes`.
                let pair = unsafe {
                    a.add(r * t.row_bytes + 4 * g)
                        .cast::<i32>()
                        .read_unaligned()
                };
                // SAFETY: plain bits, as above.
                let av =
                    unsafe { std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(pair)) };
                row[0] = _mm512_dpbf16_ps(row[0], av, b0);
                row[1] = _mm512_dpbf16_ps(row[1], av, b1);
            }
        }
        let (m0, m1) = masks(t.cols);
        for (r, row) in acc.iter().enumerate() {
            // SAFETY: the caller's contract: row r has `cols` valid f32 at c + r ldc;
            // masked-off lanes are neither read nor written.
            unsafe {
                let p = c.add(r * ldc);
                _mm512_mask_storeu_ps(p, m0, row[0]);
                // wrapping_add: with m1 == 0 this address may lie past the slice; a
                // store with an all-zero mask touches no memory.
                _mm512_mask_storeu_ps(p.wrapping_add(16), m1, row[1]);
            }
        }
    }

    /// # Safety
    /// The CPU has AVX-512 F/BW/VL and AVX512_VNNI; `t` is a consistent int8 tile
    /// (scales and compensation for a whole panel) and `c` as for [`bf16_tile`].
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(super) unsafe fn int8_tile(t: &Tile<'_>, c: *mut f32, ldc: usize) {
        // SAFETY: forwarded from this function's contract.
        unsafe { by_rows!(t.rows, int8_kernel, t, c, ldc) }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn int8_kernel<const R: usize>(t: &Tile<'_>, c: *mut f32, ldc: usize) {
        let mut acc = [[_mm512_setzero_si512(); 2]; R];
        let (a, b) = (t.a.as_ptr(), t.b.as_ptr());
        for g in 0..t.groups {
            // SAFETY: as in `bf16_kernel`.
            let (b0, b1) = unsafe {
                let p = b.add(g * STEP);
                (
                    _mm512_load_si512(p.cast()),
                    _mm512_load_si512(p.add(64).cast()),
                )
            };
            for (r, row) in acc.iter_mut().enumerate() {
                // SAFETY: as in `bf16_kernel`.
                let quad = unsafe {
                    a.add(r * t.row_bytes + 4 * g)
                        .cast::<i32>()
                        .read_unaligned()
                };
                let av = _mm512_set1_epi32(quad);
                row[0] = _mm512_dpbusd_epi32(row[0], av, b0);
                row[1] = _mm512_dpbusd_epi32(row[1], av, b1);
            }
        }
        // SAFETY: the int8 tile carries NR scales and compensations (zero-padded).
        let (sb0, sb1, k0, k1) = unsafe {
            (
                _mm512_loadu_ps(t.sb.as_ptr()),
                _mm512_loadu_ps(t.sb.as_ptr().add(16)),
                _mm512_loadu_si512(t.comp.as_ptr().cast()),
                _mm512_loadu_si512(t.comp.as_ptr().add(16).cast()),
            )
        };
        let (m0, m1) = masks(t.cols);
        for (r, row) in acc.iter().enumerate() {
            let s = _mm512_set1_ps(t.sa[r]);
            // Same operations, same order as the reference: f32(acc - comp) * sa * sb.
            let v0 = _mm512_mul_ps(
                _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(row[0], k0)), s),
                sb0,
            );
            let v1 = _mm512_mul_ps(
                _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(row[1], k1)), s),
                sb1,
            );
            // SAFETY: as in `bf16_kernel`.
            unsafe {
                let p = c.add(r * ldc);
                _mm512_mask_storeu_ps(p, m0, v0);
                _mm512_mask_storeu_ps(p.wrapping_add(16), m1, v1);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod amx;

#[cfg(test)]
mod tests;
