use super::*;
use proptest::prelude::*;

fn all_kinds() -> [QuantKind; 3] {
    [QuantKind::Q4_0, QuantKind::Q4_1, QuantKind::Q8_0]
}

#[test]
fn f16_round_trips_every_finite_half() {
    for h in 0..=u16::MAX {
        let f = f16_to_f32(h);
        if f.is_nan() {
            assert!(f16_to_f32(f32_to_f16(f)).is_nan());
        } else {
            assert_eq!(f32_to_f16(f), h, "{h:#x} -> {f}");
        }
    }
    assert_eq!(f32_to_f16(65520.0), 0x7c00); // rounds up to inf
    assert_eq!(f32_to_f16(1.0 + 1.0 / 2048.0), 0x3c00); // tie to even
    assert_eq!(f32_to_f16(1e-10), 0);
    assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
}

#[test]
fn block_layouts_are_ggmls() {
    // One Q4_1 block by hand: d = 0.5, m = -1, nibbles 0..15 then 15..0.
    let mut blk = Vec::new();
    blk.extend(f32_to_f16(0.5).to_le_bytes());
    blk.extend(f32_to_f16(-1.0).to_le_bytes());
    for j in 0..16u8 {
        blk.push(j | ((15 - j) << 4));
    }
    let mut out = [0f32; 32];
    dequantize(QuantKind::Q4_1, &blk, &mut out).unwrap();
    assert_eq!(out[0], -1.0);
    assert_eq!(out[15], 0.5 * 15.0 - 1.0);
    assert_eq!(out[16], 0.5 * 15.0 - 1.0);
    assert_eq!(out[31], -1.0);
    // Q4_0: value (n - 8) * d.
    let mut blk = f32_to_f16(2.0).to_le_bytes().to_vec();
    blk.extend([0x80u8; 16]);
    dequantize(QuantKind::Q4_0, &blk, &mut out).unwrap();
    assert_eq!((out[0], out[16]), (-16.0, 0.0));
    // Q8_0: i8 * d.
    let mut blk = f32_to_f16(0.25).to_le_bytes().to_vec();
    blk.extend((0..32).map(|i| (i as i8 - 16) as u8));
    dequantize(QuantKind::Q8_0, &blk, &mut out).unwrap();
    assert_eq!((out[0], out[31]), (-4.0, 15.0 * 0.25));
}

#[test]
fn shapes_are_checked() {
    let mut out = [0f32; 31];
    assert!(dequantize(QuantKind::Q8_0, &[0; 34], &mut out).is_err());
    let mut out = [0f32; 32];
    assert!(dequantize(QuantKind::Q8_0, &[0; 33], &mut out).is_err());
    assert!(quantize(QuantKind::Q4_1, &[0.0; 33]).is_err());
    assert!(QuantMatrix::new(QuantKind::Q4_1, &[0; 40], 2, 32).is_ok());
    assert!(QuantMatrix::new(QuantKind::Q4_1, &[0; 40], 3, 32).is_err());
    assert!(QuantMatrix::new(QuantKind::Q4_1, &[0; 40], usize::MAX, 32).is_err());
    let m = QuantMatrix::new(QuantKind::Q4_1, &[0; 40], 2, 32).unwrap();
    let mut a = Q8Activations::new();
    assert!(a.quantize(&[0.0; 40], 32).is_err());
    a.quantize(&[0.0; 64], 32).unwrap();
    assert!(matmul_rows(&m, &a, 0..3, &mut [0.0; 6]).is_err());
    assert!(matmul_rows(&m, &a, 0..2, &mut [0.0; 3]).is_err());
    assert!(m.dequantize_row(2, &mut [0.0; 32]).is_err());
}

/// Quantisation error of the weight formats themselves: within half a step.
#[test]
fn quantize_then_dequantize_is_within_half_a_step() {
    let x: Vec<f32> = (0..256)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
        .collect();
    for kind in all_kinds() {
        let q = quantize(kind, &x).unwrap();
        let mut y = vec![0f32; x.len()];
        dequantize(kind, &q, &mut y).unwrap();
        for (xb, yb) in x.chunks(32).zip(y.chunks(32)) {
            let lo = xb.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = xb.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let amax = lo.abs().max(hi.abs());
            let step = match kind {
                QuantKind::Q8_0 => amax / 127.0,
                QuantKind::Q4_0 => amax / 8.0,
                QuantKind::Q4_1 => (hi - lo) / 15.0,
            };
            for (&a, &b) in xb.iter().zip(yb) {
                // Half a step (a whole one for Q4_0, see below), plus the f16 rounding of the scale (and of m)
                // times the largest code.
                // Q4_0 maps the extreme to -8, so the other sign clips at +7:
                // up to a whole step there.
                let half = if kind == QuantKind::Q4_0 { 1.0 } else { 0.5 };
                let tol = step * half + amax * 2f32.powi(-10) + 1e-6;
                assert!((a - b).abs() <= tol, "{kind:?}: {a} vs {b} (tol {tol})");
            }
        }
    }
}

fn reference_dot(kind: QuantKind, w: &[u8], x: &[f32]) -> (f64, f64) {
    // The f32 product of the dequantised weights and the exact activations,
    // and the bound the activation rounding can move it by.
    let mut wf = vec![0f32; x.len()];
    dequantize(kind, w, &mut wf).unwrap();
    let mut a = Q8Activations::new();
    a.quantize(x, x.len()).unwrap();
    let dot: f64 = wf
        .iter()
        .zip(x)
        .map(|(&w, &x)| f64::from(w) * f64::from(x))
        .sum();
    let mut bound = 0f64;
    for (b, (wb, xb)) in wf.chunks(32).zip(x.chunks(32)).enumerate() {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let sw: f64 = wb.iter().map(|&w| f64::from(w.abs())).sum();
        // Rounding of each q (half a step of the exact scale), the f16 scale
        // (relative 2^-11 of every |q d|), and for Q4_1 the f16 of s.
        let step = f64::from(amax) / 127.0;
        bound += sw * step * (0.5 + 127.0 * 2f64.powi(-11));
        if kind == QuantKind::Q4_1 {
            let m = f64::from(f16_to_f32(u16::from_le_bytes([
                w[b * 20 + 2],
                w[b * 20 + 3],
            ])));
            bound += m.abs() * f64::from(a.s[b].abs()) * 2f64.powi(-10);
        }
    }
    (dot, bound + 1e-5 * (1.0 + dot.abs()))
}

fn vec_strategy() -> impl Strategy<Value = (Vec<f32>, Vec<f32>, usize)> {
    (1usize..6, 1usize..5).prop_flat_map(|(blocks, rows)| {
        let n = blocks * 32;
        (
            proptest::collection::vec(-4.0f32..4.0, n * rows),
            proptest::collection::vec(-3.0f32..3.0, n * 3),
            Just(rows),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every kernel against dequantise-then-f32, within the stated bound of
    /// the activation rounding, and the SIMD kernels against the scalar one.
    #[test]
    fn products_match_dequantised_f32((w, x, rows) in vec_strategy()) {
        let cols = w.len() / rows;
        let n = x.len() / cols;
        let x = &x[..n * cols];
        for kind in all_kinds() {
            let wq = quantize(kind, &w).unwrap();
            let m = QuantMatrix::new(kind, &wq, rows, cols).unwrap();
            let mut a = Q8Activations::new();
            a.quantize(x, cols).unwrap();
            let mut scalar = vec![0f32; n * rows];
            matmul_rows_with(DotIsa::Scalar, &m, &a, 0..rows, &mut scalar).unwrap();
            for t in 0..n {
                for r in 0..rows {
                    let (want, bound) = reference_dot(kind, m.row(r), &x[t * cols..(t + 1) * cols]);
                    let got = f64::from(scalar[t * rows + r]);
                    prop_assert!((got - want).abs() <= bound,
                        "{kind:?} t{t} r{r}: {got} vs {want} (bound {bound})");
                }
            }
            for isa in DotIsa::supported() {
                let mut out = vec![0f32; n * rows];
                matmul_rows_with(isa, &m, &a, 0..rows, &mut out).unwrap();
                for (o, s) in out.iter().zip(&scalar) {
                    prop_assert!((o - s).abs() <= 1e-4 * (1.0 + s.abs()), "{isa:?} {kind:?}: {o} vs {s}");
                }
                // A band of rows equals the same rows of the whole product.
                if rows > 1 {
                    let mut band = vec![0f32; n * (rows - 1)];
                    matmul_rows_with(isa, &m, &a, 1..rows, &mut band).unwrap();
                    for t in 0..n {
                        prop_assert_eq!(&band[t * (rows - 1)..(t + 1) * (rows - 1)], &out[t * rows + 1..(t + 1) * rows]);
                    }
                }
            }
        }
    }

    #[test]
    fn activation_quantisation_is_within_half_a_step(x in proptest::collection::vec(-1e3f32..1e3, 32..=32)) {
        let mut a = Q8Activations::new();
        a.quantize(&x, 32).unwrap();
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (&v, &y) in x.iter().zip(&a.dequantized()) {
            prop_assert!((v - y).abs() <= amax / 127.0 * 0.5 + amax * 2f32.powi(-11) + 1e-6);
        }
    }
}

#[test]
fn zeros_nan_and_huge_values() {
    let m_bytes = quantize(QuantKind::Q4_1, &[1.0; 32]).unwrap();
    let m = QuantMatrix::new(QuantKind::Q4_1, &m_bytes, 1, 32).unwrap();
    let mut a = Q8Activations::new();
    for isa in DotIsa::supported() {
        a.quantize(&[0.0; 32], 32).unwrap();
        let mut y = [7.0f32];
        matmul_rows_with(isa, &m, &a, 0..1, &mut y).unwrap();
        assert_eq!(y[0], 0.0);
        let mut x = [1.0f32; 32];
        x[5] = f32::NAN;
        a.quantize(&x, 32).unwrap();
        matmul_rows_with(isa, &m, &a, 0..1, &mut y).unwrap();
        assert!(y[0].is_nan(), "{isa:?}");
        a.quantize(&[1e30; 32], 32).unwrap();
        matmul_rows_with(isa, &m, &a, 0..1, &mut y).unwrap();
        // d = 1e30/127 overflows f16: the product is not finite (ggml
        // behaves the same), never a silently wrong finite number.
        assert!(!y[0].is_finite());
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every quantiser against bytes from an independent reference: the `gguf`
/// package's port of ggml's `quantize_row_*_ref` for weights, NumPy written
/// from ggml's C for Q8_1 and the CPU backend's activation quantisers
/// (tests/python/ggml_quants_gen.py; ties, zeros, constant, f16-overflowing
/// and subnormal rows included).
#[test]
fn quantisers_equal_ggml_fixture() {
    let text = include_str!("../../../../tests/python/fixtures/ggml_quants.txt");
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    for line in text.lines() {
        let mut it = line.split(' ');
        let (kind, inp, want) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        let x: Vec<f32> = unhex(inp)
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let got = match kind {
            "q8_0" => quantize_q8_0(&x),
            "q4_0" => quantize_q4_0(&x),
            "q4_1" => quantize_q4_1(&x),
            "q8_1" => quantize_q8_1(&x),
            "row_q8_0" => quantize_row_q8_0(&x),
            "row_q8_1" => quantize_row_q8_1(&x),
            other => panic!("unknown kind {other}"),
        }
        .unwrap();
        assert_eq!(got, unhex(want), "{kind} of {x:?}");
        *seen.entry(kind).or_default() += 1;
    }
    assert_eq!(seen.len(), 6);
    assert!(seen.values().all(|&n| n >= 10), "{seen:?}");
}

/// The activation quantiser the products read is the byte format's
/// `quantize_row_q8_1`, decoded: same values, same f16 scales.
#[test]
fn activations_are_quantize_row_q8_1() {
    let x: Vec<f32> = (0..128)
        .map(|i| ((i * 53 % 97) as f32 - 48.0) * 0.071)
        .collect();
    let bytes = quantize_row_q8_1(&x).unwrap();
    let mut a = Q8Activations::new();
    a.quantize(&x, 64).unwrap();
    let back = a.dequantized();
    for (b, blk) in bytes.chunks_exact(Q8_1_BLOCK_BYTES).enumerate() {
        let d = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
        assert_eq!(a.d[b], d);
        assert_eq!(a.s[b], f16_to_f32(u16::from_le_bytes([blk[2], blk[3]])));
        for j in 0..BLOCK {
            assert_eq!(back[b * BLOCK + j], d * f32::from(blk[4 + j] as i8));
        }
    }
}

#[test]
fn quantisers_reject_partial_blocks_and_keep_nan_visible() {
    for f in [quantize_q8_1, quantize_row_q8_0, quantize_row_q8_1] {
        assert!(matches!(f(&[0.0; 33]), Err(Error::Shape(_))));
        assert_eq!(f(&[]).unwrap(), Vec::<u8>::new());
    }
    let mut x = vec![1.0f32; 32];
    x[3] = f32::NAN;
    let q = quantize_row_q8_1(&x).unwrap();
    assert!(f16_to_f32(u16::from_le_bytes([q[0], q[1]])).is_nan());
    // Weights: NaN is skipped by min/max as in ggml's C; the rest quantise normally.
    let w = quantize_q4_1(&x).unwrap();
    let mut y = [0f32; 32];
    dequantize(QuantKind::Q4_1, &w, &mut y).unwrap();
    assert_eq!(y[0], 1.0);
}

/// Rows computed four at a time equal the same rows computed alone, bit for
/// bit, on every kernel (each row keeps its own accumulator).
#[test]
fn row_grouping_does_not_change_sums() {
    let cols = 96;
    let x: Vec<f32> = (0..cols)
        .map(|i| ((i * 29 % 41) as f32 - 20.0) * 0.037)
        .collect();
    let mut a = Q8Activations::new();
    a.quantize(&x, cols).unwrap();
    for kind in all_kinds() {
        let w: Vec<f32> = (0..7 * cols)
            .map(|i| ((i * 17 % 53) as f32 - 26.0) * 0.011)
            .collect();
        let q = quantize(kind, &w).unwrap();
        let m = QuantMatrix::new(kind, &q, 7, cols).unwrap();
        for isa in DotIsa::supported() {
            let mut all = vec![0f32; 7];
            matmul_rows_with(isa, &m, &a, 0..7, &mut all).unwrap();
            for (r, sum) in all.iter().enumerate() {
                let mut one = [0f32];
                matmul_rows_with(isa, &m, &a, r..r + 1, &mut one).unwrap();
                assert_eq!(sum.to_bits(), one[0].to_bits(), "{kind:?} {isa:?} row {r}");
            }
        }
    }
}

fn same_bits(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Any bytes as whole blocks of `kind`: random f16 scales (NaN, infinity and
/// subnormals included), random nibbles, Q8_0 values including -128.
fn raw_blocks(kind: QuantKind, rows: usize, blocks: usize, seed: u64) -> Vec<u8> {
    let mut rng = crate::rng::Rng::new(seed);
    let bb = kind.block_bytes();
    let mut v: Vec<u8> = (0..rows * blocks * bb)
        .map(|_| (rng.uniform() * 256.0) as u8)
        .collect();
    // Mostly ordinary scales (a random f16 is often huge): exponent 0x2c-0x3b
    // (about 0.06-2), one block in eight left as random bits.
    for (i, blk) in v.chunks_exact_mut(bb).enumerate() {
        if i % 8 != 7 {
            let halves = if kind == QuantKind::Q4_1 { 2 } else { 1 };
            for h in 0..halves {
                blk[2 * h + 1] = (blk[2 * h + 1] & 0x83) | 0x2c;
            }
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The multi-row kernels (several rows per pass, activations shared) equal
    /// the one-row kernel bit for bit on every kernel, for any row count (groups
    /// and the rows left over), any number of blocks and tokens (groups of
    /// tokens and the ones left over), and any bytes.
    #[test]
    fn multi_row_kernels_equal_the_one_row_kernel(
        rows in 1usize..20,
        blocks in 1usize..10,
        tokens in 1usize..10,
        seed in 0u64..1_000_000,
    ) {
        let cols = blocks * BLOCK;
        let mut rng = crate::rng::Rng::new(seed ^ 0x5eed);
        let x: Vec<f32> = (0..tokens * cols).map(|_| (rng.uniform() as f32 - 0.5) * 6.0).collect();
        let mut a = Q8Activations::new();
        a.quantize(&x, cols).unwrap();
        for kind in all_kinds() {
            let bytes = raw_blocks(kind, rows, blocks, seed);
            let m = QuantMatrix::new(kind, &bytes, rows, cols).unwrap();
            for isa in DotIsa::supported() {
                let mut out = vec![0f32; tokens * rows];
                matmul_rows_with(isa, &m, &a, 0..rows, &mut out).unwrap();
                for t in 0..tokens {
                    for r in 0..rows {
                        let one = kernels::dot_one(isa, kind, m.row(r), a.block_view(t));
                        let got = out[t * rows + r];
                        prop_assert!(same_bits(got, one), "{kind:?} {isa:?} t{t} r{r}: {got} vs {one}");
                    }
                }
            }
        }
    }
}
