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
    Ok(())
}
