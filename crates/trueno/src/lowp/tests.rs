//! The reduced-precision products against independent references: the nearest bf16
//! found by search, an f64 triple loop over the converted inputs, and the integer
//! product of the quantised values.

use super::*;

use crate::matmul::tests::fill;

const U32: f64 = 1.0 / (1u64 << 24) as f64;
const U16: f64 = 1.0 / 256.0;

const SHAPES: [(usize, usize, usize); 16] = [
    (1, 1, 1),
    (1, 7, 1),
    (1, 300, 600),
    (600, 5, 1),
    (2, 5, 3),
    (12, 64, 32),
    (13, 63, 33),
    (11, 255, 31),
    (17, 31, 7),
    (25, 600, 65),
    (100, 3, 129),
    (241, 20, 530),
    (5, 2, 2100),
    (24, 1100, 40),
    (12, 1, 17),
    (37, 4, 16),
];

fn rounded(x: &[f32]) -> Vec<f64> {
    x.iter()
        .map(|&v| f64::from(bf16_to_f32(bf16_from_f32(v))))
        .collect()
}

/// `(exact product, sum |a||b|)` of f64 operands, row-major.
fn exact(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut c, mut s) = (vec![0.0; m * n], vec![0.0; m * n]);
    for i in 0..m {
        for p in 0..k {
            let x = a[i * k + p];
            for j in 0..n {
                c[i * n + j] += x * b[p * n + j];
                s[i * n + j] += (x * b[p * n + j]).abs();
            }
        }
    }
    (c, s)
}

fn run(
    path: Path,
    precision: Precision,
    a: &[f32],
    b: &[f32],
    m: usize,
    threads: usize,
) -> Vec<f32> {
    let k = a.len().checked_div(m).unwrap_or(0);
    let n = b.len().checked_div(k).unwrap_or(0);
    let packed = pack_b(precision, b, k, n).unwrap();
    // Poisoned: the product must overwrite every element.
    let mut c = vec![f32::NAN; m * n];
    matmul_packed_on(path, Lhs::F32(a), &packed, &mut c, m, threads).unwrap();
    c
}

#[test]
fn bf16_conversion_is_the_nearest_even() {
    let mut s = 0x1234_5678u32;
    let mut values: Vec<f32> = (0..200_000)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            f32::from_bits(s)
        })
        .filter(|v| v.is_finite() && v.is_normal())
        .collect();
    // Ties both ways, the largest finite values, the smallest normal.
    values.extend([
        1.0 + 1.0 / 256.0,
        1.0 + 3.0 / 256.0,
        -(1.0 + 1.0 / 256.0),
        f32::MIN_POSITIVE,
        f32::from_bits(0x7f7f_7fff),
        f32::from_bits(0x7f7f_8000),
    ]);
    for &x in &values {
        let h = bf16_from_f32(x);
        let lo = x.to_bits() >> 16;
        // The two bf16 neighbours of x (truncation and one ulp further from 0).
        // Past the largest finite value, "one ulp further" is 2^128 (IEEE rounds to
        // the unbounded exponent range, then overflows to infinity).
        let down = f64::from(f32::from_bits(lo << 16));
        let up = match f64::from(f32::from_bits((lo + 1) << 16)) {
            u if u.is_infinite() => u.signum() * 2f64.powi(128),
            u => u,
        };
        let xv = f64::from(x);
        let want = if (xv - down).abs() < (up - xv).abs() {
            lo
        } else if (xv - down).abs() > (up - xv).abs() {
            lo + 1
        } else if lo % 2 == 0 {
            lo
        } else {
            lo + 1
        };
        assert_eq!(u32::from(h), want, "x = {x:e} ({:#010x})", x.to_bits());
    }
    assert_eq!(
        bf16_from_f32(f32::MAX),
        0x7f80,
        "overflow rounds to infinity"
    );
    assert_eq!(bf16_from_f32(f32::INFINITY), 0x7f80);
    assert_eq!(bf16_from_f32(f32::NEG_INFINITY), 0xff80);
    assert!(bf16_to_f32(bf16_from_f32(f32::NAN)).is_nan());
    // A NaN whose payload lives only in the low half must stay NaN, not become inf.
    assert!(bf16_to_f32(bf16_from_f32(f32::from_bits(0x7f80_0001))).is_nan());
    assert_eq!(bf16_from_f32(1e-40), 0x0000, "subnormals flush to zero");
    assert_eq!(bf16_from_f32(-1e-40), 0x8000, "keeping the sign");
    assert_eq!(bf16_from_f32(-0.0), 0x8000);
    for h in [0x3f80u16, 0xc2f7, 0x0080, 0x7f7f] {
        assert_eq!(bf16_from_f32(bf16_to_f32(h)), h, "bf16 values round-trip");
    }
}

#[test]
fn bf16_every_path_is_f32_summation_of_the_rounded_inputs() {
    let paths = Path::available(Precision::Bf16);
    assert!(paths.contains(&Path::Reference));
    for &(m, k, n) in &SHAPES {
        let a = fill(m * k, (m * 31 + k) as u64);
        let b = fill(k * n, (n * 17 + k + 5) as u64);
        let (want, s) = exact(&rounded(&a), &rounded(&b), m, k, n);
        for &path in &paths {
            for threads in [1, 3] {
                let c = run(path, Precision::Bf16, &a, &b, m, threads);
                for i in 0..m * n {
                    let bound = k as f64 * U32 * s[i] + 1e-30;
                    let err = (f64::from(c[i]) - want[i]).abs();
                    assert!(
                        err <= bound,
                        "{path:?} {m}x{k}x{n} t={threads} c[{i}] = {}, want {} (err {err:e} > {bound:e})",
                        c[i],
                        want[i]
                    );
                }
            }
        }
    }
}

#[test]
fn bf16_error_against_raw_f32_is_within_the_stated_bound() {
    let (m, k, n) = (33, 257, 70);
    let a: Vec<f32> = fill(m * k, 3).iter().map(|v| v * 100.0).collect();
    let b = fill(k * n, 4);
    let raw = |x: &[f32]| x.iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
    let (want, s) = exact(&raw(&a), &raw(&b), m, k, n);
    let mut worst = 0.0f64;
    for &path in &Path::available(Precision::Bf16) {
        let c = run(path, Precision::Bf16, &a, &b, m, 1);
        for i in 0..m * n {
            let bound = (2.0 * U16 + U16 * U16 + k as f64 * U32) * s[i];
            let err = (f64::from(c[i]) - want[i]).abs();
            assert!(err <= bound, "{path:?} c[{i}]: err {err:e} > {bound:e}");
            worst = worst.max(err / s[i]);
        }
    }
    // And the bound is not vacuous: bf16 really is coarser than f32 here.
    assert!(worst > 1e-5, "worst relative error {worst:e}");
}

#[test]
fn bf16_special_values_propagate_like_f32() {
    let (m, k, n) = (14, 9, 35);
    let mut a = fill(m * k, 7);
    let b = fill(k * n, 8);
    a[2 * k + 3] = f32::NAN;
    a[5 * k] = f32::INFINITY;
    a[13 * k + 8] = f32::NEG_INFINITY;
    let ra = rounded(&a);
    let (want, _) = exact(&ra, &rounded(&b), m, k, n);
    for &path in &Path::available(Precision::Bf16) {
        let c = run(path, Precision::Bf16, &a, &b, m, 1);
        for i in 0..m * n {
            let (got, w) = (c[i], want[i]);
            assert_eq!(
                got.is_nan(),
                w.is_nan(),
                "{path:?} c[{i}] = {got}, want {w}"
            );
            if w.is_infinite() {
                assert_eq!(f64::from(got), w, "{path:?} c[{i}]");
            }
        }
        assert!(c[2 * n..3 * n].iter().all(|v| v.is_nan()));
        assert!(c[5 * n..6 * n].iter().all(|v| v.is_infinite()));
    }
}

#[test]
fn bf16_bits_operands_equal_converted_f32() {
    let (m, k, n) = (19, 45, 40);
    let a = fill(m * k, 11);
    let b = fill(k * n, 12);
    let abits: Vec<u16> = a.iter().map(|&v| bf16_from_f32(v)).collect();
    let bbits: Vec<u16> = b.iter().map(|&v| bf16_from_f32(v)).collect();
    let from_bits = pack_b_bf16_bits(&bbits, k, n).unwrap();
    for &path in &Path::available(Precision::Bf16) {
        let want = run(path, Precision::Bf16, &a, &b, m, 1);
        let mut got = vec![0.0f32; m * n];
        matmul_packed_on(path, Lhs::Bf16Bits(&abits), &from_bits, &mut got, m, 2).unwrap();
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "{path:?}"
        );
    }
}

/// The quantised integers and scales of `x` (`rows x cols`) along rows or columns,
/// written out from the definition (independent of the packing).
fn quantised(x: &[f32], rows: usize, cols: usize, per_row: bool) -> (Vec<i64>, Vec<f32>) {
    let lines = if per_row { rows } else { cols };
    let at = |l: usize, t: usize| if per_row { l * cols + t } else { t * cols + l };
    let len = if per_row { cols } else { rows };
    let mut q = vec![0i64; rows * cols];
    let mut scales = vec![0.0f32; lines];
    for l in 0..lines {
        let amax = (0..len).map(|t| x[at(l, t)].abs()).fold(0.0f32, f32::max);
        let s = amax / 127.0;
        scales[l] = s;
        for t in 0..len {
            q[at(l, t)] = if s == 0.0 {
                0
            } else {
                i64::from(((x[at(l, t)] / s).round_ties_even()).clamp(-127.0, 127.0) as i8)
            };
        }
    }
    (q, scales)
}

#[test]
fn int8_is_exact_integer_arithmetic_on_the_quantised_values() {
    let paths = Path::available(Precision::Int8);
    for &(m, k, n) in &SHAPES {
        let mut a = fill(m * k, (m * 7 + k) as u64);
        let b: Vec<f32> = fill(k * n, (n * 5 + k) as u64)
            .iter()
            .map(|v| v * 1e3)
            .collect();
        // A zero row quantises to scale 0 and gives zeros.
        if m > 3 {
            a[3 * k..4 * k].fill(0.0);
        }
        let (qa, sa) = quantised(&a, m, k, true);
        let (qb, sb) = quantised(&b, k, n, false);
        for &path in &paths {
            for threads in [1, 2] {
                let c = run(path, Precision::Int8, &a, &b, m, threads);
                for i in 0..m {
                    for j in 0..n {
                        let acc: i64 = (0..k).map(|p| qa[i * k + p] * qb[p * n + j]).sum();
                        let want = acc as f32 * sa[i] * sb[j];
                        assert_eq!(
                            c[i * n + j].to_bits(),
                            want.to_bits(),
                            "{path:?} {m}x{k}x{n} t={threads} c[{i}, {j}] = {}, want {want}",
                            c[i * n + j]
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn int8_saturated_values_are_exact_at_depth() {
    // Every product at +-127 * 127: the shifted sum wraps i32 past k = 66_311 while the
    // true sum still fits; the result must stay exact up to INT8_MAX_K.
    let k = 70_000;
    let a: Vec<f32> = (0..k)
        .map(|p| if p % 3 == 0 { -1.0 } else { 1.0 })
        .collect();
    let b = vec![-2.0f32; k * 2];
    let want = {
        let acc: i64 = (0..k)
            .map(|p| if p % 3 == 0 { 127 * 127 } else { -127 * 127 })
            .sum();
        acc as f32 * (1.0f32 / 127.0) * (2.0f32 / 127.0)
    };
    for &path in &Path::available(Precision::Int8) {
        let c = run(path, Precision::Int8, &a, &b, 1, 1);
        assert_eq!(c, vec![want; 2], "{path:?}");
    }
}

#[test]
fn int8_error_against_raw_f32_is_within_the_stated_bound() {
    let (m, k, n) = (29, 300, 45);
    let a = fill(m * k, 21);
    let b: Vec<f32> = fill(k * n, 22).iter().map(|v| v * 0.01).collect();
    let raw = |x: &[f32]| x.iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
    let (want, _) = exact(&raw(&a), &raw(&b), m, k, n);
    let (_, sa) = quantised(&a, m, k, true);
    let (_, sb) = quantised(&b, k, n, false);
    for &path in &Path::available(Precision::Int8) {
        let c = run(path, Precision::Int8, &a, &b, m, 1);
        for i in 0..m {
            let abs_a: f64 = (0..k).map(|p| f64::from(a[i * k + p].abs())).sum();
            for j in 0..n {
                let abs_b: f64 = (0..k).map(|p| f64::from(b[p * n + j].abs())).sum();
                let (ea, eb) = (f64::from(sa[i]) / 2.0, f64::from(sb[j]) / 2.0);
                let got = f64::from(c[i * n + j]);
                let bound = ea * abs_b + eb * abs_a + k as f64 * ea * eb + 3.0 * U32 * got.abs();
                let err = (got - want[i * n + j]).abs();
                assert!(
                    err <= bound,
                    "{path:?} c[{i}, {j}]: err {err:e} > {bound:e}"
                );
            }
        }
    }
}

#[test]
fn bad_input_is_an_error_value() {
    let a = vec![1.0f32; 6];
    let mut out = vec![0.0f32; 4];
    // Lengths.
    assert!(matches!(
        matmul_lowp(Precision::Bf16, &a, &a[..5], &mut out, 2, 3, 2, 1),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        matmul_lowp(Precision::Int8, &a, &a, &mut out[..3], 2, 3, 2, 1),
        Err(Error::LengthMismatch { .. })
    ));
    // int8 cannot quantise NaN or infinity: the message names the position.
    let mut bad = a.clone();
    bad[4] = f32::NAN;
    let e = matmul_lowp(Precision::Int8, &bad, &a, &mut out, 2, 3, 2, 1).unwrap_err();
    assert!(e.to_string().contains("a[1, 1] = NaN"), "{e}");
    bad[4] = f32::INFINITY;
    let e = matmul_lowp(Precision::Int8, &a, &bad, &mut out, 2, 3, 2, 1).unwrap_err();
    assert!(e.to_string().contains("b[2, 0] = inf"), "{e}");
    // Too deep for an exact i32 accumulator.
    let deep = vec![1.0f32; INT8_MAX_K + 1];
    let e = pack_b(Precision::Int8, &deep, INT8_MAX_K + 1, 1).unwrap_err();
    assert!(e.to_string().contains("133143"), "{e}");
    assert!(pack_b(Precision::Int8, &deep[..INT8_MAX_K], INT8_MAX_K, 1).is_ok());
    // f32 is not a reduced precision; names parse exactly.
    assert!(pack_b(Precision::F32, &a, 3, 2).is_err());
    assert!(matmul_lowp(Precision::F32, &a, &a, &mut out, 2, 3, 2, 1).is_err());
    assert_eq!("bf16".parse::<Precision>(), Ok(Precision::Bf16));
    assert_eq!("int8".parse::<Precision>(), Ok(Precision::Int8));
    let e = "BF16".parse::<Precision>().unwrap_err();
    assert!(e.to_string().contains("\"BF16\""), "{e}");
    // An int8 product of bf16 bits is meaningless; a path for the other precision too.
    let p8 = pack_b(Precision::Int8, &a, 3, 2).unwrap();
    let bits = vec![0u16; 6];
    assert!(matmul_packed_on(Path::Reference, Lhs::Bf16Bits(&bits), &p8, &mut out, 2, 1).is_err());
    let p16 = pack_b(Precision::Bf16, &a, 3, 2).unwrap();
    assert!(matmul_packed_on(Path::Avx512Vnni, Lhs::F32(&a), &p16, &mut out, 2, 1).is_err());
}

#[test]
fn empty_and_zero_depth_follow_numpy() {
    for precision in [Precision::Bf16, Precision::Int8] {
        let mut none: Vec<f32> = Vec::new();
        matmul_lowp(precision, &[], &[0.0; 12], &mut none, 0, 4, 3, 1).unwrap();
        matmul_lowp(precision, &[0.0; 8], &[], &mut none, 2, 4, 0, 1).unwrap();
        let mut out = vec![f32::NAN; 6];
        matmul_lowp(precision, &[], &[], &mut out, 2, 0, 3, 1).unwrap();
        assert_eq!(out, vec![0.0; 6], "{precision:?}: k = 0 gives zeros");
    }
}

#[test]
fn the_active_path_is_the_simd_kernel_when_the_cpu_has_it() {
    // The only test that flips the AMX switch (path_for reads it; the other tests
    // name their paths or do not depend on the choice).
    let allowed = amx_allowed().unwrap();
    for precision in [Precision::Bf16, Precision::Int8] {
        let available = Path::available(precision);
        let widest = *available.last().unwrap();
        let avx512 = *available.iter().rfind(|p| !p.is_amx()).unwrap();
        assert_eq!(path_for(Backend::Scalar, precision), Ok(Path::Reference));
        assert_eq!(
            path_for(Backend::Avx2, precision).ok(),
            Backend::Avx2.is_supported().then_some(Path::Reference)
        );
        if Backend::Avx512.is_supported() {
            let want = if allowed { widest } else { avx512 };
            assert_eq!(path_for(Backend::Avx512, precision), Ok(want));
            set_amx(false);
            let off = path_for(Backend::Avx512, precision);
            set_amx(true);
            let on = path_for(Backend::Avx512, precision);
            set_amx(allowed);
            assert_eq!(off, Ok(avx512), "TRUENO_AMX off: the AVX-512 kernel");
            assert_eq!(on, Ok(widest), "AMX allowed: the widest kernel");
            if cpuinfo_has_amx(precision) {
                assert_eq!(widest, amx_path(precision));
            }
        }
    }
    assert!(path_for(Backend::Scalar, Precision::F32).is_err());
}

#[test]
fn vectorised_conversions_equal_the_scalar_definitions() {
    // Bit patterns across every class: random words, NaN payloads, subnormals, +-0,
    // infinities, ties, and lengths that leave every tail.
    let mut s = 0x9e37_79b9u32;
    let mut values: Vec<f32> = (0..40_000)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            f32::from_bits(s)
        })
        .collect();
    values.extend([
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7f80_0001),
        f32::from_bits(0xffc0_1234),
        1e-40,
        -1e-40,
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        1.0 + 1.0 / 256.0,
    ]);
    let before = backend::active().unwrap();
    for len in [0, 1, 15, 16, 17, 33, values.len()] {
        let src = &values[..len];
        let mut simd = vec![0u16; len];
        convert_bf16(src, &mut simd);
        let scalar: Vec<u16> = src.iter().map(|&v| bf16_from_f32(v)).collect();
        assert_eq!(simd, scalar, "bf16, len {len}");

        let finite: Vec<f32> = src.iter().copied().filter(|v| v.is_finite()).collect();
        let amax = finite.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert_eq!(
            abs_max(&finite).to_bits(),
            amax.to_bits(),
            "abs max, len {len}"
        );
        for scale in [int8_scale(amax), 1e-3, 3.0e38, 1e-44] {
            let mut simd = vec![0u8; finite.len()];
            quantize_row(&finite, scale, 128, &mut simd);
            let scalar: Vec<u8> = finite
                .iter()
                .map(|&v| (i16::from(int8_quantize(v, scale)) + 128) as u8)
                .collect();
            assert_eq!(simd, scalar, "int8 at scale {scale:e}, len {len}");
        }
        // Per-column scales, some zero (a column that quantises to zeros).
        let scales: Vec<f32> = (0..finite.len())
            .map(|i| [0.0, 1e-3, amax / 127.0, 1e-44][i % 4])
            .collect();
        let mut simd = vec![0u8; finite.len()];
        quantize_cols(&finite, &scales, &mut simd);
        let scalar: Vec<u8> = finite
            .iter()
            .zip(&scales)
            .map(|(&v, &sc)| int8_quantize(v, sc) as u8)
            .collect();
        assert_eq!(simd, scalar, "int8 per column, len {len}");
    }
    // int8_quantize is rint-then-clamp, whatever the implementation.
    for (x, s, q) in [
        (2.5f32, 1.0f32, 2i8),
        (3.5, 1.0, 4),
        (-2.5, 1.0, -2),
        (1e9, 1.0, 127),
    ] {
        assert_eq!(int8_quantize(x, s), q, "{x} / {s}");
    }
    assert_eq!(backend::active().unwrap(), before);
}

// ---------------------------------------------------------------------------
// AMX: the tile kernels against the reference and the exact product.
// ---------------------------------------------------------------------------

/// Whether Linux lists the AMX features `precision` needs (read from /proc/cpuinfo,
/// independently of the cpuid code under test). On such a CPU the AMX tests must run:
/// an unavailable AMX path there is a failure, not a skip.
fn cpuinfo_has_amx(precision: Precision) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return false;
    };
    let Some(flags) = info.lines().find(|l| l.starts_with("flags")) else {
        return false;
    };
    let want = if precision == Precision::Bf16 {
        "amx_bf16"
    } else {
        "amx_int8"
    };
    let words: Vec<&str> = flags.split_whitespace().collect();
    words.contains(&"amx_tile") && words.contains(&want)
}

fn amx_path(precision: Precision) -> Path {
    if precision == Precision::Bf16 {
        Path::AmxBf16
    } else {
        Path::AmxInt8
    }
}

/// The AMX path for `precision` when this CPU has it; `None` (with the reason printed)
/// when it does not. Panics when /proc/cpuinfo lists AMX but the path is unavailable.
fn amx_or_skip(precision: Precision, test: &str) -> Option<Path> {
    let path = amx_path(precision);
    let missing = path.missing_features();
    if cpuinfo_has_amx(precision) {
        assert!(
            missing.is_empty(),
            "{test}: the CPU lists AMX but {} is unavailable: missing {missing:?}",
            path.name()
        );
        Some(path)
    } else {
        assert!(
            !missing.is_empty(),
            "{test}: {} available without AMX",
            path.name()
        );
        println!("{test}: skipped, this CPU has no AMX (missing {missing:?})");
        None
    }
}

const AMX_DIMS: [usize; 9] = [1, 15, 16, 17, 31, 33, 64, 100, 1031];

/// Shapes over every edge of the 32 x 32 blocks and the 16-group tile steps: each m
/// with each k and a rotating n, plus the large corners.
fn amx_shapes() -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    for (i, &m) in AMX_DIMS.iter().enumerate() {
        for (j, &k) in AMX_DIMS.iter().enumerate() {
            let n = AMX_DIMS[(i + 2 * j) % AMX_DIMS.len()];
            if m * k * n <= 3_000_000 {
                out.push((m, k, n));
            }
        }
    }
    out.extend([
        (1031, 33, 17),
        (65, 1031, 31),
        (3, 2050, 40),
        (100, 129, 1031),
    ]);
    out
}

#[test]
fn amx_int8_is_bit_identical_to_the_reference() {
    let Some(amx) = amx_or_skip(
        Precision::Int8,
        "amx_int8_is_bit_identical_to_the_reference",
    ) else {
        return;
    };
    for (m, k, n) in amx_shapes() {
        let mut a = fill(m * k, (m * 13 + k) as u64);
        let b: Vec<f32> = fill(k * n, (n * 3 + k) as u64)
            .iter()
            .map(|v| v * 50.0)
            .collect();
        if m > 2 {
            a[k..2 * k].fill(0.0); // a zero row: scale 0
        }
        let want = run(Path::Reference, Precision::Int8, &a, &b, m, 1);
        for threads in [1, 2, 3] {
            let got = run(amx, Precision::Int8, &a, &b, m, threads);
            for i in 0..m * n {
                assert_eq!(
                    got[i].to_bits(),
                    want[i].to_bits(),
                    "{m}x{k}x{n} t={threads} c[{}, {}] = {}, reference {}",
                    i / n,
                    i % n,
                    got[i],
                    want[i]
                );
            }
        }
    }
}

#[test]
fn amx_bf16_is_f32_summation_of_the_rounded_inputs() {
    let Some(amx) = amx_or_skip(
        Precision::Bf16,
        "amx_bf16_is_f32_summation_of_the_rounded_inputs",
    ) else {
        return;
    };
    for (m, k, n) in amx_shapes() {
        let a = fill(m * k, (m * 29 + k) as u64);
        let b = fill(k * n, (n * 7 + k + 1) as u64);
        let (want, s) = exact(&rounded(&a), &rounded(&b), m, k, n);
        for threads in [1, 2, 3] {
            let c = run(amx, Precision::Bf16, &a, &b, m, threads);
            for i in 0..m * n {
                let bound = k as f64 * U32 * s[i] + 1e-30;
                let err = (f64::from(c[i]) - want[i]).abs();
                assert!(
                    err <= bound,
                    "{m}x{k}x{n} t={threads} c[{i}] = {}, want {} (err {err:e} > {bound:e})",
                    c[i],
                    want[i]
                );
            }
        }
    }
}

#[test]
fn amx_bf16_special_values_and_zeros() {
    let Some(amx) = amx_or_skip(Precision::Bf16, "amx_bf16_special_values_and_zeros") else {
        return;
    };
    // NaN and infinities in both operands, in the last partial tile step and in
    // the last row and column block; zeros everywhere else they matter.
    let (m, k, n) = (35, 47, 37);
    let mut a = fill(m * k, 31);
    let mut b = fill(k * n, 32);
    a[k + 40] = f32::NAN; // row 1, k in the partial step
    a[20 * k + 3] = f32::INFINITY;
    a[34 * k + 46] = f32::NEG_INFINITY; // last row, last k
    b[45 * n + 36] = f32::NAN; // last column
    b[2 * n + 20] = f32::INFINITY;
    a[10 * k..11 * k].fill(0.0);
    let (want, _) = exact(&rounded(&a), &rounded(&b), m, k, n);
    let got = run(amx, Precision::Bf16, &a, &b, m, 2);
    let reference = run(Path::Reference, Precision::Bf16, &a, &b, m, 1);
    for i in 0..m * n {
        assert_eq!(
            got[i].is_nan(),
            want[i].is_nan(),
            "c[{i}] = {}, want {}",
            got[i],
            want[i]
        );
        assert_eq!(
            got[i].is_nan(),
            reference[i].is_nan(),
            "c[{i}] vs reference"
        );
        if want[i].is_infinite() {
            assert_eq!(f64::from(got[i]), want[i], "c[{i}]");
        }
    }
    assert!(got[n..2 * n].iter().all(|v| v.is_nan()), "row 1 has a NaN");
    assert!(
        got.iter().skip(36).step_by(n).all(|v| v.is_nan()),
        "column 36 has a NaN"
    );
    // All-zero operands give exact zeros.
    let zeros = vec![0.0f32; 33 * 70];
    for precision in [Precision::Bf16, Precision::Int8] {
        let path = amx_path(precision);
        if !path.missing_features().is_empty() {
            continue;
        }
        let c = run(path, precision, &zeros, &zeros[..70 * 33], 33, 3);
        assert!(c.iter().all(|&v| v == 0.0), "{precision:?}: zeros");
    }
}

#[test]
fn amx_paths_refuse_clearly() {
    let a = fill(6, 1);
    let mut out = vec![0.0f32; 4];
    let p16 = pack_b(Precision::Bf16, &a, 3, 2).unwrap();
    let p8 = pack_b(Precision::Int8, &a, 3, 2).unwrap();
    for (path, wrong, right) in [(Path::AmxBf16, &p8, &p16), (Path::AmxInt8, &p16, &p8)] {
        let missing = path.missing_features();
        let r = matmul_packed_on(path, Lhs::F32(&a), right, &mut out, 2, 1);
        if missing.is_empty() {
            r.unwrap();
            // The wrong precision is a shape error naming both.
            let e = matmul_packed_on(path, Lhs::F32(&a), wrong, &mut out, 2, 1).unwrap_err();
            assert!(
                e.to_string().contains(path.name()) && e.to_string().contains("products"),
                "{e}"
            );
        } else {
            // Unavailable: the error names the path and what is missing.
            let e = r.unwrap_err();
            assert!(matches!(e, Error::UnsupportedBackend { .. }), "{e}");
            assert!(e.to_string().contains(path.name()), "{e}");
            assert!(e.to_string().contains(missing[0]), "{e}");
            println!("{}: unavailable, refused with: {e}", path.name());
        }
    }
}

/// The marker the fresh-process child prints when its checks passed.
const FRESH_OK: &str = "amx fresh-process child: ok";
const FRESH_ENV: &str = "TRUENO_TEST_AMX_FRESH_CHILD";

/// Run in a fresh process by `amx_permission_is_requested_before_the_first_tile`
/// (and a no-op otherwise): the process has never asked for the tile data, so a tile
/// instruction without the request would raise SIGILL.
#[test]
fn amx_fresh_process_child() {
    if std::env::var_os(FRESH_ENV).is_none() {
        return;
    }
    assert!(
        !amx::permitted(),
        "a fresh process already holds the tile permission"
    );
    let (m, k, n) = (70, 77, 45);
    let a = fill(m * k, 41);
    let b = fill(k * n, 42);
    for precision in [Precision::Bf16, Precision::Int8] {
        // The dispatcher's choice, as a user gets it, on three threads.
        let packed = pack_b(precision, &b, k, n).unwrap();
        let mut got = vec![f32::NAN; m * n];
        matmul_packed(Lhs::F32(&a), &packed, &mut got, m, 3).unwrap();
        assert_eq!(path(precision).unwrap(), amx_path(precision));
        let want = run(Path::Reference, precision, &a, &b, m, 1);
        if precision == Precision::Int8 {
            assert_eq!(got, want);
        } else {
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
            }
        }
    }
    assert!(amx::permitted(), "the tile permission was not requested");
    println!("{FRESH_OK}");
}

#[test]
fn amx_permission_is_requested_before_the_first_tile() {
    let test = "amx_permission_is_requested_before_the_first_tile";
    if amx_or_skip(Precision::Bf16, test).is_none() || amx_or_skip(Precision::Int8, test).is_none()
    {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "lowp::tests::amx_fresh_process_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FRESH_ENV, "1")
        .env_remove(AMX_ENV_VAR)
        .env_remove(backend::ENV_VAR)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(FRESH_OK),
        "child {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
