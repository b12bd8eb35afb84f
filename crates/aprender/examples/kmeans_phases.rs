//! Where a k-means iteration's time goes: the profile behind `kmeans.rs`'s design.
//!
//! At the benchmark's size (n = 20000 rows, p = 20 features, k = 8 centres) it times,
//! each averaged over repetitions, the pieces of one Lloyd iteration as the first
//! implementation did them (a full `n x k` distance matrix from one GEMM with 8
//! columns, a separate assignment pass collecting labels and distances, a sort of all
//! rows by distance for empty-cluster relocation, the sums) and as `kmeans.rs` does
//! them now (256-row chunks, centre columns padded to whole GEMM tiles), then a whole
//! fit per iteration. Timings are wall clock on whatever else the machine runs: compare
//! the rows of one run, not runs.
//!
//!     cargo run --release -p aprender --example kmeans_phases [n]

use std::hint::black_box;
use std::time::Instant;

use aprender::Matrix;
use aprender::kmeans::{CHUNK, KMeans};

fn ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    t.elapsed().as_secs_f64() * 1e3 / reps as f64
}

/// `p x cols` transpose of the first `k` centres, zero-padded to `cols` columns.
fn centres_t(c: &[f64], k: usize, p: usize, cols: usize) -> Vec<f64> {
    let mut t = vec![0.0; p * cols];
    for j in 0..k {
        for f in 0..p {
            t[f * cols + j] = c[j * p + f];
        }
    }
    t
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(20000), |s| s.parse())?;
    let (p, k, reps) = (20, 8, 50);
    let mut rng = trueno::rng::Rng::new(1);
    let x: Vec<f64> = (0..n * p).map(|_| rng.uniform() * 2.0 - 1.0).collect();
    let c = &x[..k * p];
    let isa = trueno::backend::active()?;
    let (_, nr, _) = trueno::matmul::tile_and_blocking::<f64>(isa)?;
    let kp = k.div_ceil(nr) * nr;
    println!(
        "n={n} p={p} k={k}, backend {}, GEMM tile width {nr}",
        isa.name()
    );

    let mut d = vec![0.0; n * k];
    let full = ms(reps, || {
        let ct = centres_t(c, k, p, k);
        let mut out = vec![0.0; n * k];
        trueno::matmul_f64(&x, &ct, &mut out, n, p, k, 1).expect("shapes agree");
        d = black_box(out);
    });
    let chunked = |cols: usize| {
        let ct = centres_t(c, k, p, cols);
        let mut buf = vec![0.0; CHUNK * cols];
        ms(reps, || {
            for xc in x.chunks(CHUNK * p) {
                let m = xc.len() / p;
                trueno::matmul_f64(xc, &ct, &mut buf[..m * cols], m, p, cols, 1)
                    .expect("shapes agree");
            }
            black_box(&buf);
        })
    };
    let (chunk_k, chunk_kp) = (chunked(k), chunked(kp));
    let assign = ms(reps, || {
        let (labels, dist): (Vec<usize>, Vec<f64>) = d
            .chunks_exact(k)
            .map(|row| {
                let j = (0..k).fold(0, |b, j| if row[j] < row[b] { j } else { b });
                (j, row[j])
            })
            .unzip();
        black_box((labels, dist));
    });
    let dist: Vec<f64> = d.iter().step_by(k).copied().collect();
    let sort = ms(reps, || {
        let mut far: Vec<usize> = (0..n).collect();
        far.sort_by(|&a, &b| dist[b].total_cmp(&dist[a]));
        black_box(far);
    });
    let labels: Vec<usize> = (0..n).map(|i| i % k).collect();
    let sums = ms(reps, || {
        let mut s = vec![0.0; k * p];
        for (row, &l) in x.chunks_exact(p).zip(&labels) {
            s[l * p..(l + 1) * p]
                .iter_mut()
                .zip(row)
                .for_each(|(a, v)| *a += v);
        }
        black_box(s);
    });
    println!("first version, per iteration:");
    println!("  full n x k GEMM (+ transpose, allocation)  {full:7.3} ms");
    println!("  assignment pass (labels, distances)        {assign:7.3} ms");
    println!("  sort of all rows by distance               {sort:7.3} ms");
    println!("  centre sums                                {sums:7.3} ms");
    println!("chunked GEMM, {CHUNK} rows:");
    println!("  {k:2} columns (partial tiles via scratch)    {chunk_k:7.3} ms");
    println!("  {kp:2} columns (padded, whole tiles)          {chunk_kp:7.3} ms");

    let m = Matrix::new(&x, n, p)?;
    for iters in [1, 21] {
        let km = KMeans {
            max_iter: iters,
            tol: 0.0,
            ..KMeans::new(k)
        };
        let mut n_iter = 0;
        let t = ms(5, || n_iter = km.fit(&m).expect("valid input").n_iter);
        println!("fit, n_init=1, max_iter={iters:2}: {t:8.3} ms ({n_iter} iterations)");
    }
    Ok(())
}
