//! AMX tile kernels: [`super::Path::AmxBf16`] (`TDPBF16PS`) and
//! [`super::Path::AmxInt8`] (`TDPBUSD`).
//!
//! Advanced Matrix Extensions add eight tile registers `tmm0..7` (palette 1: up to 16
//! rows of 64 bytes each) and one instruction that multiplies whole tiles:
//! `TDPBF16PS C, A, B` adds to the 16 x 16 f32 tile C the product of A (16 rows of 32
//! bf16) and B (16 rows of 16 bf16 *pairs*: row g holds `(B[2g, j], B[2g+1, j])`),
//! `TDPBUSD` the same with u8 A (16 x 64) and s8 B (16 rows of 16 quads) into i32.
//! B's rows are exactly the 32-bit groups [`super::pack_b`] already lays out for
//! `VDPBF16PS` / `VPDPBUSD`: one 128-byte step of a 32-column panel is two B-tile rows
//! (bytes 0..64 and 64..128), so a B tile is 16 steps loaded at stride 128. The
//! arithmetic is the AVX-512 kernels' (exact bf16 products summed in f32 with DAZ/FTZ;
//! wrapping i32 dot products of `q_a + 128` and `q_b`), so int8 stays bit-identical to
//! the reference and bf16 within the same bound.
//!
//! The micro-kernel keeps a 32 x 32 block of C in four accumulator tiles (tmm0..3: two
//! row tiles by two column tiles); each step of 16 groups (32 bf16 / 64 int8 of k)
//! loads two A tiles (tmm4, tmm5: rows 0..16 and 16..32 of the converted A block) and
//! two B tiles (tmm6, tmm7) and issues four tile products. Every tile is configured
//! full (16 x 64 bytes), so the operands are padded instead: the converted A rows to
//! whole steps (zeros; int8's unsigned form pads with 128 against zero B) and to whole
//! 32-row blocks, and the last, partial step of each B panel is copied once per panel
//! into a zeroed buffer. Edge rows and columns are masked when C is written out.
//! Past 8 tile steps (256 of k for bf16, 512 for int8) k is cut into slices of 8 steps:
//! one slice of a B panel (16 KiB) stays in L1 while every A chunk of the block passes
//! over it, and each chunk's four C tiles wait in a 4 KiB buffer between slices.
//!
//! Linux enables the tile-data state per process: until `arch_prctl(ARCH_REQ_XCOMP_PERM,
//! XFEATURE_XTILEDATA)` succeeds, the first tile instruction raises SIGILL. The request
//! is made once, when a path's features are first checked ([`missing`]), and a refusal
//! makes the AMX paths unavailable (named in `missing_features`), never reachable.
//! Tile configuration is per thread: each block loop loads it ([`Tiles::configure`])
//! and releases the tile state when it ends.

use super::{Lhs, NR, PackedB, Precision, STEP, as_bytes, lines};
use std::arch::asm;
use std::arch::x86_64::*;
use std::marker::PhantomData;
use std::sync::OnceLock;

/// Groups of k (32-bit: a bf16 pair or an int8 quad) per tile step: one 64-byte tile row.
pub(super) const KT: usize = 16;
/// Rows of C per micro-kernel call: two 16-row tiles.
pub(super) const MT: usize = 32;
/// Bytes of one B-tile step of a panel: KT groups of STEP bytes.
const PANEL_STEP: usize = KT * STEP;

/// The AMX features `precision`'s path needs that this CPU, OS or process lacks.
/// The first call asks Linux for the tile-data permission (once per process).
pub(super) fn missing(precision: Precision) -> Vec<&'static str> {
    let edx7 = if __cpuid_count(0, 0).eax >= 7 {
        __cpuid_count(7, 0).edx
    } else {
        0
    };
    let mut out = Vec::new();
    if edx7 & (1 << 24) == 0 {
        out.push("amx_tile");
    }
    match precision {
        Precision::Bf16 if edx7 & (1 << 22) == 0 => out.push("amx_bf16"),
        Precision::Int8 if edx7 & (1 << 25) == 0 => out.push("amx_int8"),
        _ => {}
    }
    if !out.is_empty() {
        return out;
    }
    // XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA): the OS saves the tile state.
    let osxsave = __cpuid_count(1, 0).ecx & (1 << 27) != 0;
    if !osxsave || xcr0() & (3 << 17) != 3 << 17 {
        out.push("OS support for the AMX state (XCR0 bits 17-18)");
    } else if !permission() {
        out.push(PERMISSION);
    }
    out
}

fn xcr0() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: XGETBV with ecx = 0 reads XCR0; the caller checked OSXSAVE (cpuid), which
    // is what makes the instruction legal. It touches no memory.
    unsafe {
        asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi,
             options(nomem, nostack, preserves_flags));
    }
    u64::from(hi) << 32 | u64::from(lo)
}

#[cfg(target_os = "linux")]
const PERMISSION: &str =
    "Linux permission for the AMX tile data (arch_prctl ARCH_REQ_XCOMP_PERM refused)";
#[cfg(not(target_os = "linux"))]
const PERMISSION: &str = "Linux (the AMX paths request the tile-data permission with arch_prctl)";

/// Whether this process may use the tile data: requested once, then checked.
fn permission() -> bool {
    static GRANTED: OnceLock<bool> = OnceLock::new();
    *GRANTED.get_or_init(request_permission)
}

#[cfg(target_os = "linux")]
const ARCH_GET_XCOMP_PERM: libc::c_long = 0x1022;
#[cfg(target_os = "linux")]
const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
#[cfg(target_os = "linux")]
const XFEATURE_XTILEDATA: libc::c_long = 18;

#[cfg(target_os = "linux")]
fn request_permission() -> bool {
    // SAFETY: arch_prctl with ARCH_REQ_XCOMP_PERM takes a feature number and no memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        )
    };
    r == 0 && permitted()
}

#[cfg(not(target_os = "linux"))]
fn request_permission() -> bool {
    false
}

/// Whether the kernel reports this process permitted to use the tile data (the
/// `ARCH_GET_XCOMP_PERM` bitmap; it does not request anything).
#[cfg(target_os = "linux")]
pub(super) fn permitted() -> bool {
    let mut bits: u64 = 0;
    // SAFETY: ARCH_GET_XCOMP_PERM writes one u64 bitmap to the pointer, which is ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_GET_XCOMP_PERM,
            &mut bits as *mut u64,
        )
    };
    r == 0 && bits & (1 << XFEATURE_XTILEDATA) != 0
}

#[cfg(not(target_os = "linux"))]
pub(super) fn permitted() -> bool {
    false
}

/// The 64-byte tile configuration: palette 1, every tile 16 rows x 64 bytes.
#[repr(C, align(64))]
struct Config([u8; 64]);

const CONFIG: Config = {
    let mut c = [0u8; 64];
    c[0] = 1; // palette 1; byte 1 (start_row) stays 0
    let mut t = 0;
    while t < 8 {
        c[16 + 2 * t] = 64; // colsb, u16 little-endian
        c[48 + t] = 16; // rows
        t += 1;
    }
    Config(c)
};

/// Tiles configured on this thread; dropping it releases the tile state. Not `Send`:
/// the configuration belongs to the thread that loaded it.
pub(super) struct Tiles(PhantomData<*const ()>);

impl Tiles {
    /// # Safety
    /// `missing(precision)` is empty for the precision the tiles will compute (the CPU
    /// has AMX and this process holds the tile-data permission).
    pub(super) unsafe fn configure() -> Tiles {
        // SAFETY: the caller's contract; LDTILECFG reads the 64 bytes of CONFIG.
        unsafe {
            asm!("ldtilecfg [{0}]", in(reg) CONFIG.0.as_ptr(), options(nostack, readonly));
        }
        Tiles(PhantomData)
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: a `Tiles` exists only after `configure` succeeded on this thread.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}

/// Four 16 x 16 accumulator tiles of 32-bit lanes, as stored: tile `2 (r / 16) + c / 16`
/// holds C rows `r`, columns `c` of a 32 x 32 block.
#[repr(C, align(64))]
struct Acc([[u32; 256]; 4]);

/// One step's loads and products: A tiles at `$a0`/`$a1` (stride `$sa`), B tiles at
/// `$b` and `$b + 64` (stride 128), into the accumulators tmm0..3.
macro_rules! step {
    ($op:literal, $a0:expr, $a1:expr, $b:expr, $sa:expr) => {
        asm!(
            "tileloadd tmm6, [{b} + {sb}*1]",
            "tileloadd tmm7, [{b} + {sb}*1 + 64]",
            "tileloadd tmm4, [{a0} + {sa}*1]",
            concat!($op, " tmm0, tmm4, tmm6"),
            concat!($op, " tmm1, tmm4, tmm7"),
            "tileloadd tmm5, [{a1} + {sa}*1]",
            concat!($op, " tmm2, tmm5, tmm6"),
            concat!($op, " tmm3, tmm5, tmm7"),
            a0 = in(reg) $a0,
            a1 = in(reg) $a1,
            b = in(reg) $b,
            sa = in(reg) $sa,
            sb = in(reg) STEP,
            options(nostack, readonly),
        )
    };
}

/// Bytes of one step of a tiled A chunk: two 16 x 64-byte tiles.
const A_STEP: usize = 2 * 1024;

/// Copy MT rows of `a` (stride `row_bytes`, `steps` tile rows of 64 bytes each) into
/// `dst` tile by tile: step `s` of rows `16 h .. 16 h + 16` is the 1 KiB at
/// `s A_STEP + 1024 h`, so each tile load reads 1 KiB contiguously (row-major A at a
/// power-of-two stride would map a tile's 16 rows to a few L1 sets).
fn tile_a(a: &[u8], row_bytes: usize, steps: usize, dst: &mut [u8]) {
    for r in 0..MT {
        let row = &a[r * row_bytes..r * row_bytes + steps * 64];
        let base = (r / 16) * 1024 + (r % 16) * 64;
        for (s, chunk) in row.chunks_exact(64).enumerate() {
            dst[s * A_STEP + base..][..64].copy_from_slice(chunk);
        }
    }
}

/// Tile steps per k slice: one slice of a B panel (KS x 2 KiB) stays in L1 while the
/// A chunks of a block pass over it (each also KS x 2 KiB, plus 4 KiB of C).
const KS: usize = 8;

/// Steps `s0..s1` of the 32 x 32 block of C from one tiled A chunk (`a`, [`tile_a`]'s
/// layout) and one B panel, step `s` read from `tail` when the panel has no whole step
/// `s` (`s >= full`). The accumulators start at zero when `s0 == 0`, else from `acc`,
/// and are stored back to `acc`.
///
/// # Safety
/// Tiles are configured on this thread for `precision`; `a` addresses `s1 * A_STEP`
/// bytes; `b` addresses `full` whole steps of PANEL_STEP bytes; `tail` addresses
/// PANEL_STEP bytes when `full < s1`.
#[allow(clippy::too_many_arguments)]
unsafe fn block(
    precision: Precision,
    a: *const u8,
    b: *const u8,
    tail: *const u8,
    full: usize,
    s0: usize,
    s1: usize,
    acc: &mut Acc,
) {
    let c = acc.0.as_mut_ptr();
    // SAFETY: the function's contract covers every load; TILEZERO, TILELOADD and
    // TILESTORED of C touch only the tiles and `acc` (4 x 1 KiB, 64-byte rows).
    unsafe {
        if s0 == 0 {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            );
        } else {
            asm!(
                "tileloadd tmm0, [{c0} + {s}*1]",
                "tileloadd tmm1, [{c1} + {s}*1]",
                "tileloadd tmm2, [{c2} + {s}*1]",
                "tileloadd tmm3, [{c3} + {s}*1]",
                c0 = in(reg) c,
                c1 = in(reg) c.add(1),
                c2 = in(reg) c.add(2),
                c3 = in(reg) c.add(3),
                s = in(reg) 64usize,
                options(nostack, readonly),
            );
        }
        for s in s0..s1 {
            let bs = if s < full {
                b.add(s * PANEL_STEP)
            } else {
                tail
            };
            let x0 = a.add(s * A_STEP);
            let x1 = x0.add(1024);
            if precision == Precision::Bf16 {
                step!("tdpbf16ps", x0, x1, bs, 64usize);
            } else {
                step!("tdpbusd", x0, x1, bs, 64usize);
            }
        }
        asm!(
            "tilestored [{c0} + {s}*1], tmm0",
            "tilestored [{c1} + {s}*1], tmm1",
            "tilestored [{c2} + {s}*1], tmm2",
            "tilestored [{c3} + {s}*1], tmm3",
            c0 = in(reg) c,
            c1 = in(reg) c.add(1),
            c2 = in(reg) c.add(2),
            c3 = in(reg) c.add(3),
            s = in(reg) 64usize,
            options(nostack),
        );
    }
}

/// Rows `row0..row0 + rows` of C (`out`, `rows x n`) on the AMX path: A is converted
/// 32 rows at a time into a row-major scratch and laid out as tiles ([`tile_a`]) in a
/// block of `mc` rows that takes half of L2; every panel of B then passes over the
/// block, 32 x 32 of C per micro-kernel call.
///
/// # Safety
/// `missing(b.precision)` is empty and the CPU has AVX-512 F (`Path::missing_features`
/// of the AMX paths checks both); `a` holds at least `row0 + rows` rows of `b.k` and
/// `out` `rows` rows of `b.n`.
pub(super) unsafe fn run_band(a: Lhs<'_>, b: &PackedB, row0: usize, rows: usize, out: &mut [f32]) {
    let n = b.n;
    let groups = b.groups();
    let (steps, full) = (groups.div_ceil(KT), groups / KT);
    let row_bytes = steps * 64;
    let chunk_bytes = steps * A_STEP;
    let l2 = usize::try_from(crate::machine::caches().l2_bytes)
        .unwrap_or(usize::MAX)
        .max(256 << 10);
    let chunks_per_block = (l2 / 2 / chunk_bytes).clamp(1, 64).min(rows.div_ceil(MT));
    let mc = chunks_per_block * MT;
    let mut rowbuf = lines(MT * row_bytes);
    let mut tiled = lines(chunks_per_block * chunk_bytes);
    let mut sa = vec![0.0f32; mc];
    let bdata = as_bytes(&b.data);
    let panel_bytes = b.panel_bytes();
    let mut tail_buf = lines(PANEL_STEP);
    let tail_len = (groups - full * KT) * STEP;
    // The C tiles of every chunk of a block for one panel, kept between k slices.
    let mut acc: Vec<Acc> = (0..chunks_per_block).map(|_| Acc([[0; 256]; 4])).collect();
    for ic in (0..rows).step_by(mc) {
        let h = mc.min(rows - ic);
        let chunks = h.div_ceil(MT);
        for c in 0..chunks {
            let r = MT.min(h - c * MT);
            // Rows past `r` in `rowbuf` are stale: they feed only C rows never written.
            super::convert_rows(
                a,
                b,
                row0 + ic + c * MT,
                r,
                row_bytes,
                &mut rowbuf,
                &mut sa[c * MT..],
            );
            tile_a(
                as_bytes(&rowbuf),
                row_bytes,
                steps,
                &mut super::as_bytes_mut(&mut tiled)[c * chunk_bytes..],
            );
        }
        let tiles_a = as_bytes(&tiled);
        // SAFETY: the caller's contract.
        let _tiles = unsafe { Tiles::configure() };
        for p in 0..n.div_ceil(NR) {
            let panel = &bdata[p * panel_bytes..(p + 1) * panel_bytes];
            let cols = NR.min(n - p * NR);
            if tail_len > 0 {
                // The partial last step, zero-padded to 16 groups (the zeros past
                // `tail_len` were never written).
                let start = full * PANEL_STEP;
                super::as_bytes_mut(&mut tail_buf)[..tail_len]
                    .copy_from_slice(&panel[start..start + tail_len]);
            }
            for s0 in (0..steps).step_by(KS) {
                let s1 = steps.min(s0 + KS);
                for c in 0..chunks {
                    // One k slice: a single accumulator buffer, hot in L1.
                    let acc_c = &mut acc[if steps <= KS { 0 } else { c }];
                    // SAFETY: chunk c of `tiles_a` holds `steps` steps; the panel holds
                    // `full` whole steps and `tail_buf` one step.
                    unsafe {
                        block(
                            b.precision,
                            tiles_a.as_ptr().add(c * chunk_bytes),
                            panel.as_ptr(),
                            as_bytes(&tail_buf).as_ptr(),
                            full,
                            s0,
                            s1,
                            acc_c,
                        );
                    }
                    if s1 < steps {
                        continue;
                    }
                    let i0 = c * MT;
                    let rows_c = MT.min(h - i0);
                    let out_c = &mut out[(ic + i0) * n + p * NR..];
                    assert!(out_c.len() >= (rows_c - 1) * n + cols);
                    // SAFETY: `out_c` holds `rows_c` rows of `cols` f32 at stride n
                    // (asserted); the CPU has AVX-512 F (the caller's contract).
                    unsafe {
                        if b.precision == Precision::Bf16 {
                            write_f32(acc_c, rows_c, cols, out_c.as_mut_ptr(), n);
                        } else {
                            let (sb, comp) = (&b.scales[p * NR..], &b.comp[p * NR..]);
                            let sa = &sa[i0..i0 + rows_c];
                            write_int8(acc_c, rows_c, cols, sa, sb, comp, out_c.as_mut_ptr(), n);
                        }
                    }
                }
            }
        }
    }
}

/// The two 16-lane store masks of a block `cols` wide.
fn masks(cols: usize) -> [u16; 2] {
    let full = if cols >= NR {
        u32::MAX
    } else {
        (1u32 << cols) - 1
    };
    [full as u16, (full >> 16) as u16]
}

/// bf16: the f32 accumulators, `rows x cols` of them, into `c` (stride `ldc`).
///
/// # Safety
/// The CPU has AVX-512 F; `c` addresses `rows` rows of `cols` f32 at stride `ldc`.
#[target_feature(enable = "avx512f")]
unsafe fn write_f32(acc: &Acc, rows: usize, cols: usize, c: *mut f32, ldc: usize) {
    let m = masks(cols);
    for r in 0..rows {
        for (h, &mask) in m.iter().enumerate() {
            let tile = &acc.0[2 * (r / 16) + h];
            // SAFETY: 16 lanes of one tile row; the store writes only `mask`'s lanes,
            // which lie in row r's `cols` columns (wrapping_add: with an all-zero mask
            // the address may lie past `c`, and no memory is touched).
            unsafe {
                let v = _mm512_load_si512(tile.as_ptr().add((r % 16) * 16).cast());
                _mm512_mask_storeu_ps(
                    c.wrapping_add(r * ldc + 16 * h),
                    mask,
                    _mm512_castsi512_ps(v),
                );
            }
        }
    }
}

/// int8: `f32(acc - comp[j]) * sa[i] * sb[j]`, the reference's operations in its order
/// (so the same bits), into `c` (stride `ldc`).
///
/// # Safety
/// As [`write_f32`]; `sb` and `comp` hold NR values (a whole, zero-padded panel).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
unsafe fn write_int8(
    acc: &Acc,
    rows: usize,
    cols: usize,
    sa: &[f32],
    sb: &[f32],
    comp: &[i32],
    c: *mut f32,
    ldc: usize,
) {
    let m = masks(cols);
    assert!(sb.len() >= NR && comp.len() >= NR);
    // SAFETY: NR values each (asserted).
    let (sbv, kv) = unsafe {
        (
            [
                _mm512_loadu_ps(sb.as_ptr()),
                _mm512_loadu_ps(sb.as_ptr().add(16)),
            ],
            [
                _mm512_loadu_si512(comp.as_ptr().cast()),
                _mm512_loadu_si512(comp.as_ptr().add(16).cast()),
            ],
        )
    };
    for (r, &s) in sa.iter().enumerate().take(rows) {
        let s = _mm512_set1_ps(s);
        for (h, &mask) in m.iter().enumerate() {
            let tile = &acc.0[2 * (r / 16) + h];
            // SAFETY: as in `write_f32`.
            unsafe {
                let v = _mm512_load_si512(tile.as_ptr().add((r % 16) * 16).cast());
                let f = _mm512_cvtepi32_ps(_mm512_sub_epi32(v, kv[h]));
                let y = _mm512_mul_ps(_mm512_mul_ps(f, s), sbv[h]);
                _mm512_mask_storeu_ps(c.wrapping_add(r * ldc + 16 * h), mask, y);
            }
        }
    }
}

/// Tile products per probe call (each of the four accumulators `ITERS` times).
const PROBE_ITERS: usize = 512;

/// The peak tile-product rate of one core for `precision`, in operations per second
/// (a multiply-add is two): chains of `TDPBF16PS` / `TDPBUSD` into four independent
/// accumulators from operand tiles loaded once, timed as `machine`'s FMA-chain probe
/// is (best rate of repeated samples on the thread's CPU clock). `None` when the AMX
/// path for `precision` is unavailable.
pub(super) fn probe_peak(precision: Precision) -> Option<f64> {
    if !missing(precision).is_empty() {
        return None;
    }
    // Ones (bf16 1.0 / int8 1), so the sums stay finite and exact.
    let mut ones = lines(16 * 64);
    let unit: &[u8] = if precision == Precision::Bf16 {
        &[0x80, 0x3f]
    } else {
        &[1]
    };
    for (i, b) in super::as_bytes_mut(&mut ones).iter_mut().enumerate() {
        *b = unit[i % unit.len()];
    }
    let depth = if precision == Precision::Bf16 { 32 } else { 64 };
    let ops = (PROBE_ITERS * 4 * 16 * 16 * depth * 2) as f64;
    let src = as_bytes(&ones).as_ptr();
    Some(crate::machine::best_rate(ops, 1e-3, 0.04, 8, || {
        // SAFETY: AMX is available for `precision` (checked above); `src` holds one
        // 16 x 64-byte tile.
        unsafe { chains(precision, src) }
    }))
}

/// # Safety
/// `missing(precision)` is empty; `src` addresses 16 rows of 64 bytes.
unsafe fn chains(precision: Precision, src: *const u8) {
    // SAFETY: the function's contract (the loads read `src` only).
    unsafe {
        let _tiles = Tiles::configure();
        asm!(
            "tileloadd tmm4, [{p} + {s}*1]",
            "tileloadd tmm5, [{p} + {s}*1]",
            "tileloadd tmm6, [{p} + {s}*1]",
            "tileloadd tmm7, [{p} + {s}*1]",
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            p = in(reg) src,
            s = in(reg) 64usize,
            options(nostack, readonly),
        );
        for _ in 0..PROBE_ITERS {
            if precision == Precision::Bf16 {
                asm!(
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    options(nostack, nomem),
                );
            } else {
                asm!(
                    "tdpbusd tmm0, tmm4, tmm6",
                    "tdpbusd tmm1, tmm4, tmm7",
                    "tdpbusd tmm2, tmm5, tmm6",
                    "tdpbusd tmm3, tmm5, tmm7",
                    options(nostack, nomem),
                );
            }
        }
    }
}
