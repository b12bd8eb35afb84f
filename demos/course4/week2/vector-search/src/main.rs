//! Course 4, week 2: vector search from scratch.
//!
//! Exact search scores the query against every vector (trueno's one-vs-N scan and top-k);
//! HNSW walks a layered graph and scores a few hundred. This demo builds both over the
//! same clustered unit vectors and shows the trade-off the lesson plots: as `ef` (the
//! search beam) grows, recall@10 against the exact answer rises towards 1 and queries per
//! second fall. Then it filters on metadata during the search, deletes, and saves and
//! reloads the index, refusing a damaged file.

use std::collections::HashSet;
use std::time::Instant;

use serde_json::{Map, Value, json};
use trueno_rag::filter::Filter;
use trueno_rag::hnsw::{Hnsw, HnswParams};

const N: usize = 10_000;
const DIM: usize = 128;
const QUERIES: usize = 200;
const K: usize = 10;

/// A seeded generator (splitmix64) with Box-Muller normals.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// Unit vectors around `centres` Gaussian centres, sigma 0.3 (the clustered set).
fn clustered(rng: &mut Rng, centres: &[f32], n: usize) -> Vec<f32> {
    let c = centres.len() / DIM;
    let mut out = Vec::with_capacity(n * DIM);
    for _ in 0..n {
        let base = (rng.next() as usize % c) * DIM;
        let v: Vec<f32> = (0..DIM)
            .map(|j| centres[base + j] + 0.3 * rng.normal())
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        out.extend(v.iter().map(|x| x / norm));
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Rng(7);
    let centres: Vec<f32> = (0..100 * DIM).map(|_| rng.normal()).collect();
    let data = clustered(&mut rng, &centres, N);
    let queries = clustered(&mut rng, &centres, QUERIES);

    let t = Instant::now();
    let mut index = Hnsw::new(DIM, HnswParams::default())?;
    for (i, v) in data.chunks_exact(DIM).enumerate() {
        let mut meta = Map::new();
        meta.insert("shard".into(), Value::from(i % 4));
        index.insert(i as u64, v, meta)?;
    }
    println!(
        "built HNSW over {N} x {DIM} (M=16, ef_construction=200) in {:.2} s, {:.1} MB",
        t.elapsed().as_secs_f64(),
        index.memory_bytes() as f64 / 1e6
    );

    let t = Instant::now();
    let exact: Vec<HashSet<u64>> = queries
        .chunks_exact(DIM)
        .map(|q| {
            let hits = index.search_exact(q, K, &Filter::All)?;
            Ok(hits.into_iter().map(|(l, _)| l).collect())
        })
        .collect::<Result<_, trueno_rag::Error>>()?;
    let exact_qps = QUERIES as f64 / t.elapsed().as_secs_f64();
    println!("exact search: {exact_qps:.0} queries/s (recall 1 by definition)\n");

    println!("| ef | recall@10 | queries/s |\n|---|---|---|");
    let mut best = 0.0;
    for ef in [10, 20, 40, 80, 160, 320] {
        let t = Instant::now();
        let mut hit = 0;
        for (q, truth) in queries.chunks_exact(DIM).zip(&exact) {
            let found = index.search(q, K, Some(ef), &Filter::All)?;
            hit += found.iter().filter(|(l, _)| truth.contains(l)).count();
        }
        let qps = QUERIES as f64 / t.elapsed().as_secs_f64();
        let recall = hit as f64 / (QUERIES * K) as f64;
        best = f64::max(best, recall);
        println!("| {ef} | {recall:.3} | {qps:.0} |");
    }
    assert!(best >= 0.95, "recall@10 never reached 0.95 (best {best})");

    // A filter applied during the walk: only shard 2 comes back, and still k of it.
    let shard2 = Filter::from_json(&json!({"shard": 2}))?;
    let q = &queries[..DIM];
    let hits = index.search(q, K, Some(80), &shard2)?;
    assert_eq!(hits.len(), K);
    assert!(hits.iter().all(|(l, _)| l % 4 == 2));
    println!(
        "\nfiltered {{\"shard\": 2}}: {:?}",
        hits.iter().map(|h| h.0).collect::<Vec<_>>()
    );

    // Deletes are tombstones: gone from results, still routing the graph.
    for (l, _) in &hits[..3] {
        index.delete(*l)?;
    }
    let after = index.search(q, K, Some(80), &shard2)?;
    assert!(
        after
            .iter()
            .all(|(l, _)| !hits[..3].iter().any(|h| h.0 == *l))
    );
    println!(
        "after deleting the top 3: {:?}",
        after.iter().map(|h| h.0).collect::<Vec<_>>()
    );

    // Save, reload, and refuse a damaged copy.
    let dir = std::env::temp_dir().join(format!("vector-search-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("index.hnsw");
    index.save(&path)?;
    let back = Hnsw::load(&path)?;
    assert_eq!(back.search(q, K, Some(80), &shard2)?, after);
    let mut bytes = std::fs::read(&path)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&path, &bytes)?;
    let refused = Hnsw::load(&path).expect_err("a damaged file must be refused");
    println!("reloaded the saved index; a one-bit-damaged copy is refused: {refused}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
