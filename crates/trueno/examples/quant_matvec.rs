//! Quantised matrix-vector and matrix-matrix products on SmolLM2-135M's shapes, timed side by
//! side: the whole band in one call (the multi-row kernels) against one row per call (the
//! one-row kernel every multi-row kernel reproduces bit for bit), interleaved per round.
//! `cargo run --release -p trueno --example quant_matvec -- [rounds] [tokens]`

use std::time::Instant;

use trueno::quant::{self, Q8Activations, QuantKind, QuantMatrix};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).map_or(Ok(5), |a| a.parse())?;
    let tokens: usize = args.get(2).map_or(Ok(1), |a| a.parse())?;
    let isa = quant::active_isa()?;
    println!("kernel {isa:?}, {tokens} activation row(s), {rounds} rounds");
    // One layer's matrices and the output matrix, repeated past the L3 cache as decode
    // reads them (every weight from memory once per token).
    let shapes = [
        ("q4_1 576x576", QuantKind::Q4_1, 576, 576, 60),
        ("q4_1 1536x576", QuantKind::Q4_1, 1536, 576, 60),
        ("q4_1 576x1536", QuantKind::Q4_1, 576, 1536, 60),
        ("q8_0 49152x576", QuantKind::Q8_0, 49152, 576, 2),
    ];
    let mut rng = trueno::rng::Rng::new(7);
    for (name, kind, rows, cols, copies) in shapes {
        let x: Vec<f32> = (0..rows * cols)
            .map(|_| rng.uniform() as f32 - 0.5)
            .collect();
        let one = quant::quantize(kind, &x)?;
        let bytes: Vec<u8> = (0..copies).flat_map(|_| one.iter().copied()).collect();
        let w = QuantMatrix::new(kind, &bytes, rows * copies, cols)?;
        let v: Vec<f32> = (0..tokens * cols)
            .map(|_| rng.uniform() as f32 - 0.5)
            .collect();
        let mut a = Q8Activations::new();
        a.quantize(&v, cols)?;
        let n = w.rows();
        let mut band = vec![0f32; tokens * n];
        let mut single = vec![0f32; tokens * n];
        let mut tmp = vec![0f32; tokens];
        let mut ratios = Vec::new();
        let (mut tb, mut ts) = (f64::MAX, f64::MAX);
        for round in 0..rounds + 1 {
            let t0 = Instant::now();
            quant::matmul_rows_with(isa, &w, &a, 0..n, &mut band)?;
            let b = t0.elapsed().as_secs_f64();
            let t0 = Instant::now();
            for r in 0..n {
                quant::matmul_rows_with(isa, &w, &a, r..r + 1, &mut tmp)?;
                for (t, &y) in tmp.iter().enumerate() {
                    single[t * n + r] = y;
                }
            }
            let s = t0.elapsed().as_secs_f64();
            if round > 0 {
                // round 0 warms up
                ratios.push(s / b);
                tb = tb.min(b);
                ts = ts.min(s);
            }
        }
        let same = band
            .iter()
            .zip(&single)
            .all(|(x, y)| x.to_bits() == y.to_bits());
        ratios.sort_by(f64::total_cmp);
        let gb = bytes.len() as f64 / 1e9;
        println!(
            "{name:16} x{copies:<3} band {:7.2} ms ({:5.1} GB/s)  row by row {:7.2} ms ({:5.1} GB/s)  speed-up median {:.2}x ({:.2}-{:.2})  bit-identical {same}",
            tb * 1e3,
            gb / tb,
            ts * 1e3,
            gb / ts,
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
        );
    }
    attention(rounds)?;
    Ok(())
}

/// One decode step's attention for one layer of SmolLM2 (9 query heads of 64 over 3 kv
/// heads, `len` cached positions) with `quant::ggml`'s lane-exact f16 dots, timed per op.
fn attention(rounds: usize) -> Result<(), Box<dyn std::error::Error>> {
    use trueno::quant::ggml::{self, F16Order};
    let (heads, hd, kvd) = (9, 64, 192);
    let mut rng = trueno::rng::Rng::new(11);
    for len in [96, 512] {
        let k: Vec<f32> = (0..len * kvd)
            .map(|_| quant::round_f16(rng.uniform() as f32 - 0.5))
            .collect();
        let v = k.clone();
        let q: Vec<f32> = (0..heads * hd)
            .map(|_| quant::round_f16(rng.uniform() as f32 - 0.5))
            .collect();
        let (mut scores, mut out, mut acc) = (vec![0f32; len], vec![0f32; hd], Vec::new());
        let (mut t_dot, mut t_mix) = (f64::MAX, f64::MAX);
        for _ in 0..rounds + 1 {
            let (mut d, mut m) = (0f64, 0f64);
            for _ in 0..30 {
                for h in 0..heads {
                    let kvh = h / 3;
                    let qh = &q[h * hd..(h + 1) * hd];
                    let t0 = Instant::now();
                    for (j, s) in scores.iter_mut().enumerate() {
                        *s = ggml::dot_f16(F16Order::Vec, qh, &k[j * kvd + kvh * hd..][..hd]);
                    }
                    let t1 = Instant::now();
                    ggml::weighted_rows_f16(
                        F16Order::Vec,
                        &scores,
                        &v[kvh * hd..],
                        kvd,
                        &mut out,
                        &mut acc,
                    );
                    m += t1.elapsed().as_secs_f64();
                    d += (t1 - t0).as_secs_f64();
                }
            }
            t_dot = t_dot.min(d);
            t_mix = t_mix.min(m);
        }
        println!(
            "attention, 30 layers x {heads} heads, {len} positions: q.k {:.3} ms, p.V {:.3} ms per token",
            t_dot * 1e3,
            t_mix * 1e3
        );
    }
    Ok(())
}
