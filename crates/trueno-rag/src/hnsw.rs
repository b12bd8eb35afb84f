//! HNSW (Malkov & Yashunin, 2016): approximate nearest neighbours on a
//! layered proximity graph.
//!
//! Each vector gets a random top layer (`P(level >= l) = M^-l`). Layer 0
//! holds every node with up to `2M` links, each higher layer a thinning
//! sample with up to `M`. A search descends greedily from the entry point
//! through the sparse upper layers, then runs a best-first beam search of
//! width `ef` on layer 0. Inserting a node is the same search with width
//! `ef_construction` at every layer it lives on, then linking it to up to
//! `2M` neighbours on layer 0 and `M` above (as faiss does), chosen by the
//! *diversity heuristic* of Malkov & Yashunin's algorithm 4 (a candidate is
//! kept only if it is closer to the new node than to every neighbour already
//! kept; pruned candidates are not used to fill up), and shrinking any
//! neighbour that overflows with the same heuristic. The level multiplier is
//! `1/ln(M)`, as in the paper, hnswlib and faiss.
//!
//! * Scores come from trueno: [`trueno::scores_gather`] scores a node's
//!   neighbour list in one call; exact search is [`trueno::top_k`] /
//!   [`trueno::scores_one_to_many`]. Cosine stores unit vectors and scores
//!   with the dot product; squared L2 ranks by the negated distance.
//! * Deletes are tombstones: a deleted node keeps routing searches (its
//!   links stay, so the graph stays connected) but never appears in results.
//!   Re-inserting a label tombstones the old node and adds a new one.
//! * Filters are evaluated during the search, not after it: the beam walks
//!   every node, but only accepted ones enter the result set, so a filtered
//!   query still returns `k` results when `k` rows pass (the walk just goes
//!   further for selective filters, up to the whole graph).
//! * Files: [`Hnsw::save`] writes a header (magic, format version,
//!   parameters), the vectors, graph, labels, tombstones and metadata, and a
//!   CRC-32 of all of it; [`Hnsw::load`] refuses a file whose magic, version,
//!   length, checksum or structure (link targets, levels, entry point) is
//!   wrong, before allocating anything the file's size does not back.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use serde_json::{Map, Value};
use trueno::Metric;

use crate::error::{Error, Result, invalid};
use crate::filter::Filter;

/// Build and search parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HnswParams {
    /// Links per node on the upper layers (2M on layer 0).
    pub m: usize,
    /// Beam width while inserting.
    pub ef_construction: usize,
    /// Default beam width while searching (at least k is used).
    pub ef_search: usize,
    /// Seed of the level generator: same seed and insert order, same graph.
    pub seed: u64,
    pub metric: Metric,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            seed: 42,
            metric: Metric::Cosine,
        }
    }
}

/// A score that orders totally (higher is better; NaN never occurs: inputs
/// are checked finite).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scored(f32, u32);
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

/// A reusable visited set: a node is visited when its tag equals the
/// current generation, so clearing is one increment.
#[derive(Debug, Default)]
struct Visited {
    tags: Vec<u32>,
    generation: u32,
}

impl Visited {
    fn reset(&mut self, n: usize) {
        if self.tags.len() < n {
            self.tags.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.tags.fill(0);
            self.generation = 1;
        }
    }
    /// Mark `i`; true if it was not visited yet.
    fn insert(&mut self, i: u32) -> bool {
        let t = &mut self.tags[i as usize];
        if *t == self.generation {
            false
        } else {
            *t = self.generation;
            true
        }
    }
}

/// The index. `Sync`: searches take `&self` and may run from many threads.
#[derive(Debug)]
pub struct Hnsw {
    params: HnswParams,
    dim: usize,
    /// Row-major, unit length for cosine.
    vectors: Vec<f32>,
    labels: Vec<u64>,
    by_label: HashMap<u64, u32>,
    levels: Vec<u8>,
    /// Layer 0: per node `[count, link × 2M]`.
    links0: Vec<u32>,
    /// Layers 1..=level: per node, per layer `[count, link × M]`.
    upper: Vec<Vec<u32>>,
    deleted: Vec<bool>,
    n_deleted: usize,
    entry: Option<u32>,
    max_level: usize,
    metadata: Vec<Map<String, Value>>,
    rng: u64,
    pool: Mutex<Vec<Visited>>,
}

const MAX_LEVEL: usize = 32;

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Hnsw {
    pub fn new(dim: usize, params: HnswParams) -> Result<Self> {
        if dim == 0 {
            return Err(invalid("dim must be at least 1"));
        }
        if !(2..=256).contains(&params.m) {
            return Err(invalid(format!("M must be in 2..=256, got {}", params.m)));
        }
        if params.ef_construction == 0 || params.ef_search == 0 {
            return Err(invalid("ef_construction and ef_search must be at least 1"));
        }
        Ok(Hnsw {
            params,
            dim,
            vectors: Vec::new(),
            labels: Vec::new(),
            by_label: HashMap::new(),
            levels: Vec::new(),
            links0: Vec::new(),
            upper: Vec::new(),
            deleted: Vec::new(),
            n_deleted: 0,
            entry: None,
            max_level: 0,
            metadata: Vec::new(),
            rng: params.seed,
            pool: Mutex::new(Vec::new()),
        })
    }

    pub fn params(&self) -> HnswParams {
        self.params
    }

    pub fn set_ef_search(&mut self, ef: usize) -> Result<()> {
        if ef == 0 {
            return Err(invalid("ef_search must be at least 1"));
        }
        self.params.ef_search = ef;
        Ok(())
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Live (not deleted) vectors.
    pub fn len(&self) -> usize {
        self.labels.len() - self.n_deleted
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Nodes including tombstones.
    pub fn node_count(&self) -> usize {
        self.labels.len()
    }

    pub fn contains(&self, label: u64) -> bool {
        self.by_label.contains_key(&label)
    }

    /// Bytes held by vectors, graph and labels (metadata not counted).
    pub fn memory_bytes(&self) -> usize {
        self.vectors.len() * 4
            + self.links0.len() * 4
            + self.upper.iter().map(|u| u.len() * 4).sum::<usize>()
            + self.labels.len() * (8 + 1 + 1)
            + self.by_label.len() * 16
    }

    fn m0(&self) -> usize {
        2 * self.params.m
    }

    fn row(&self, i: u32) -> &[f32] {
        let i = i as usize;
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }

    fn links(&self, i: u32, level: usize) -> &[u32] {
        let (block, _) = self.link_block(i, level);
        &block[1..1 + block[0] as usize]
    }

    fn link_block(&self, i: u32, level: usize) -> (&[u32], usize) {
        if level == 0 {
            let w = self.m0() + 1;
            let s = i as usize * w;
            (&self.links0[s..s + w], self.m0())
        } else {
            let w = self.params.m + 1;
            let u = &self.upper[i as usize];
            (&u[(level - 1) * w..level * w], self.params.m)
        }
    }

    fn set_links(&mut self, i: u32, level: usize, ids: &[u32]) {
        let block = if level == 0 {
            let w = self.m0() + 1;
            let s = i as usize * w;
            &mut self.links0[s..s + w]
        } else {
            let w = self.params.m + 1;
            &mut self.upper[i as usize][(level - 1) * w..level * w]
        };
        block[0] = ids.len() as u32;
        block[1..=ids.len()].copy_from_slice(ids);
    }

    /// Scores of `q` against rows `ids`, higher is better.
    fn score_into(&self, q: &[f32], ids: &[u32], out: &mut Vec<f32>) -> Result<()> {
        out.resize(ids.len(), 0.0);
        let kernel = match self.params.metric {
            Metric::SqEuclidean => Metric::SqEuclidean,
            // Cosine rows and queries are unit length.
            _ => Metric::Dot,
        };
        trueno::scores_gather(q, &self.vectors, self.dim, ids, kernel, out)?;
        if kernel == Metric::SqEuclidean {
            out.iter_mut().for_each(|v| *v = -*v);
        }
        Ok(())
    }

    /// The query as the index stores vectors (unit length for cosine).
    fn prepare(&self, v: &[f32]) -> Result<Vec<f32>> {
        if v.len() != self.dim {
            return Err(Error::Dimension {
                expected: self.dim,
                got: v.len(),
            });
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(invalid("vector contains NaN or infinity"));
        }
        let mut v = v.to_vec();
        if self.params.metric == Metric::Cosine {
            let n = trueno::norm(&v)?;
            if n == 0.0 {
                return Err(invalid("a zero vector has no cosine similarity"));
            }
            v.iter_mut().for_each(|x| *x /= n);
        }
        Ok(v)
    }

    fn user_score(&self, s: f32) -> f32 {
        if self.params.metric == Metric::SqEuclidean {
            -s
        } else {
            s
        }
    }

    fn random_level(&mut self) -> usize {
        let u = (splitmix(&mut self.rng) >> 11) as f64 / (1u64 << 53) as f64;
        let ml = 1.0 / (self.params.m as f64).ln();
        let l = (-(1.0 - u).ln() * ml).floor();
        (l as usize).min(MAX_LEVEL)
    }

    fn visited(&self) -> Visited {
        let mut v = self
            .pool
            .lock()
            .map(|mut p| p.pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        v.reset(self.labels.len());
        v
    }

    fn give_back(&self, v: Visited) {
        if let Ok(mut p) = self.pool.lock() {
            p.push(v);
        }
    }

    /// Greedy walk on one upper layer towards `q`.
    fn greedy(
        &self,
        q: &[f32],
        mut cur: Scored,
        level: usize,
        buf: &mut Vec<f32>,
    ) -> Result<Scored> {
        loop {
            let ids = self.links(cur.1, level);
            self.score_into(q, ids, buf)?;
            let mut best = cur;
            for (&s, &i) in buf.iter().zip(ids) {
                if s > best.0 {
                    best = Scored(s, i);
                }
            }
            if best.1 == cur.1 {
                return Ok(cur);
            }
            cur = best;
        }
    }

    /// Best-first beam search of width `ef` on one layer. Only nodes for
    /// which `accept` holds enter the result; every node routes.
    fn search_layer<F: Fn(u32) -> bool>(
        &self,
        q: &[f32],
        entries: &[Scored],
        ef: usize,
        level: usize,
        accept: &F,
        visited: &mut Visited,
    ) -> Result<Vec<Scored>> {
        let mut candidates: BinaryHeap<Scored> = BinaryHeap::new();
        let mut results: BinaryHeap<std::cmp::Reverse<Scored>> = BinaryHeap::new();
        for &e in entries {
            if visited.insert(e.1) {
                candidates.push(e);
                if accept(e.1) {
                    results.push(std::cmp::Reverse(e));
                }
            }
        }
        while results.len() > ef {
            results.pop();
        }
        let mut fresh = Vec::with_capacity(self.m0());
        let mut scores = Vec::with_capacity(self.m0());
        while let Some(c) = candidates.pop() {
            let bound = results.peek().map_or(f32::NEG_INFINITY, |r| r.0.0);
            if results.len() >= ef && c.0 < bound {
                break;
            }
            // The next candidate's link list is a cache miss anywhere in the
            // graph: start loading it while this one is scored.
            if let Some(next) = candidates.peek() {
                trueno::prefetch(self.link_block(next.1, level).0);
            }
            fresh.clear();
            fresh.extend(
                self.links(c.1, level)
                    .iter()
                    .copied()
                    .filter(|&n| visited.insert(n)),
            );
            self.score_into(q, &fresh, &mut scores)?;
            for (&s, &n) in scores.iter().zip(&fresh) {
                let bound = results.peek().map_or(f32::NEG_INFINITY, |r| r.0.0);
                if results.len() < ef || s > bound {
                    candidates.push(Scored(s, n));
                    if accept(n) {
                        results.push(std::cmp::Reverse(Scored(s, n)));
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
        }
        let mut out: Vec<Scored> = results.into_iter().map(|r| r.0).collect();
        out.sort_by(|a, b| b.cmp(a));
        Ok(out)
    }

    /// The diversity heuristic: from candidates sorted best first, keep one
    /// when it scores higher with the base than with every kept neighbour.
    /// A candidate is dropped at the first kept neighbour that beats the base
    /// (as hnswlib and faiss do), so the kept list is scored a few rows at a
    /// time rather than whole: most candidates fall to one of the first.
    fn select(&self, candidates: &[Scored], m: usize, buf: &mut Vec<f32>) -> Result<Vec<u32>> {
        const STEP: usize = 4;
        let mut kept: Vec<u32> = Vec::with_capacity(m);
        for c in candidates {
            if kept.len() >= m {
                break;
            }
            let mut diverse = true;
            for chunk in kept.chunks(STEP) {
                self.score_into(self.row(c.1), chunk, buf)?;
                if buf.iter().any(|&s| s >= c.0) {
                    diverse = false;
                    break;
                }
            }
            if diverse {
                kept.push(c.1);
            }
        }
        Ok(kept)
    }

    /// Add a vector under `label` with its metadata (replacing the label's
    /// previous vector if it has one).
    pub fn insert(
        &mut self,
        label: u64,
        vector: &[f32],
        metadata: Map<String, Value>,
    ) -> Result<()> {
        let v = self.prepare(vector)?;
        if self.labels.len() >= u32::MAX as usize - 1 {
            return Err(invalid("index is full (2^32 nodes)"));
        }
        if self.by_label.contains_key(&label) {
            self.delete(label)?;
        }
        let id = self.labels.len() as u32;
        let level = self.random_level();
        self.vectors.extend_from_slice(&v);
        self.labels.push(label);
        self.by_label.insert(label, id);
        self.levels.push(level as u8);
        self.links0.extend(std::iter::repeat_n(0, self.m0() + 1));
        self.upper.push(vec![0; level * (self.params.m + 1)]);
        self.deleted.push(false);
        self.metadata.push(metadata);
        let Some(entry) = self.entry else {
            self.entry = Some(id);
            self.max_level = level;
            return Ok(());
        };
        let mut buf = Vec::new();
        let mut scores = Vec::new();
        self.score_into(&v, &[entry], &mut scores)?;
        let mut cur = Scored(scores[0], entry);
        for l in (level + 1..=self.max_level).rev() {
            cur = self.greedy(&v, cur, l, &mut buf)?;
        }
        let mut eps = vec![cur];
        let mut visited = self.visited();
        for l in (0..=level.min(self.max_level)).rev() {
            visited.reset(self.labels.len());
            let found = self.search_layer(
                &v,
                &eps,
                self.params.ef_construction,
                l,
                &|n| n != id,
                &mut visited,
            )?;
            // Layer 0 links a new node to up to 2M neighbours (faiss's rule;
            // hnswlib links M and lets back links fill to 2M): the denser
            // bottom layer is what lifts recall at a given ef.
            let cap = if l == 0 { self.m0() } else { self.params.m };
            let neighbours = self.select(&found, cap, &mut buf)?;
            self.set_links(id, l, &neighbours);
            for &nb in &neighbours {
                self.link_back(nb, id, l, &mut buf)?;
            }
            eps = found;
        }
        self.give_back(visited);
        if level > self.max_level {
            self.max_level = level;
            self.entry = Some(id);
        }
        Ok(())
    }

    /// Add `id` to `nb`'s links on `level`, shrinking with the heuristic
    /// when full.
    fn link_back(&mut self, nb: u32, id: u32, level: usize, buf: &mut Vec<f32>) -> Result<()> {
        let (block, cap) = self.link_block(nb, level);
        let count = block[0] as usize;
        if count < cap {
            let mut ids = block[1..=count].to_vec();
            ids.push(id);
            self.set_links(nb, level, &ids);
            return Ok(());
        }
        let mut ids = block[1..=count].to_vec();
        ids.push(id);
        let base = self.row(nb).to_vec();
        let mut scores = Vec::new();
        self.score_into(&base, &ids, &mut scores)?;
        let mut cands: Vec<Scored> = scores
            .iter()
            .zip(&ids)
            .map(|(&s, &i)| Scored(s, i))
            .collect();
        cands.sort_by(|a, b| b.cmp(a));
        let kept = self.select(&cands, cap, buf)?;
        self.set_links(nb, level, &kept);
        Ok(())
    }

    /// Tombstone a label: it stays in the graph for routing, never in results.
    pub fn delete(&mut self, label: u64) -> Result<()> {
        let id = self
            .by_label
            .remove(&label)
            .ok_or(Error::UnknownLabel(label))?;
        self.deleted[id as usize] = true;
        self.n_deleted += 1;
        Ok(())
    }

    /// The metadata stored with a label.
    pub fn metadata(&self, label: u64) -> Option<&Map<String, Value>> {
        self.by_label
            .get(&label)
            .map(|&i| &self.metadata[i as usize])
    }

    fn acceptor<'a>(&'a self, filter: &'a Filter) -> impl Fn(u32) -> bool + 'a {
        move |n: u32| !self.deleted[n as usize] && filter.matches(&self.metadata[n as usize])
    }

    /// The `k` nearest live vectors passing `filter`, best first, as
    /// `(label, score)`: cosine similarity, dot product or squared L2
    /// distance by the metric. `ef` defaults to `ef_search` and is raised to `k`.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: Option<usize>,
        filter: &Filter,
    ) -> Result<Vec<(u64, f32)>> {
        let q = self.prepare(query)?;
        let Some(entry) = self.entry else {
            return Ok(Vec::new());
        };
        if k == 0 {
            return Ok(Vec::new());
        }
        let ef = ef.unwrap_or(self.params.ef_search).max(k);
        let mut buf = Vec::new();
        self.score_into(&q, &[entry], &mut buf)?;
        let mut cur = Scored(buf[0], entry);
        for l in (1..=self.max_level).rev() {
            cur = self.greedy(&q, cur, l, &mut buf)?;
        }
        let mut visited = self.visited();
        let found = if self.n_deleted == 0 && *filter == Filter::All {
            // Nothing to reject: skip the per-node tombstone and filter reads.
            self.search_layer(&q, &[cur], ef, 0, &|_| true, &mut visited)
        } else {
            let accept = self.acceptor(filter);
            self.search_layer(&q, &[cur], ef, 0, &accept, &mut visited)
        };
        self.give_back(visited);
        Ok(found?
            .into_iter()
            .take(k)
            .map(|s| (self.labels[s.1 as usize], self.user_score(s.0)))
            .collect())
    }

    /// Exact search over every live vector passing `filter` (trueno's
    /// one-vs-N scan and top-k): the baseline HNSW's recall is measured against.
    pub fn search_exact(
        &self,
        query: &[f32],
        k: usize,
        filter: &Filter,
    ) -> Result<Vec<(u64, f32)>> {
        let q = self.prepare(query)?;
        let n = self.labels.len();
        if n == 0 || k == 0 {
            return Ok(Vec::new());
        }
        let kernel = match self.params.metric {
            Metric::SqEuclidean => Metric::SqEuclidean,
            _ => Metric::Dot,
        };
        if self.n_deleted == 0 && *filter == Filter::All {
            let (idx, scores) = trueno::top_k(&q, &self.vectors, self.dim, k, kernel)?;
            return Ok(idx
                .into_iter()
                .zip(scores)
                .map(|(i, s)| (self.labels[i as usize], s))
                .collect());
        }
        let mut scores = vec![0.0; n];
        trueno::scores_one_to_many(&q, &self.vectors, self.dim, kernel, &mut scores)?;
        let accept = self.acceptor(filter);
        let sq = kernel == Metric::SqEuclidean;
        // Keys are higher-is-better: distances negated.
        let mut kept: Vec<Scored> = (0..n as u32)
            .filter(|&i| accept(i))
            .map(|i| {
                let s = scores[i as usize];
                Scored(if sq { -s } else { s }, i)
            })
            .collect();
        kept.sort_by(|a, b| b.cmp(a));
        Ok(kept
            .into_iter()
            .take(k)
            .map(|s| (self.labels[s.1 as usize], self.user_score(s.0)))
            .collect())
    }
}

// ---- persistence ----------------------------------------------------------

const MAGIC: &[u8; 8] = b"TRAGHNSW";
const VERSION: u32 = 1;

/// CRC-32 (IEEE 802.3, reflected, the zlib/PNG checksum).
fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[[u32; 256]; 8]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [[0u32; 256]; 8];
        for i in 0..256u32 {
            let mut c = i;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            t[0][i as usize] = c;
        }
        for i in 0..256 {
            for s in 1..8 {
                let p = t[s - 1][i];
                t[s][i] = (p >> 8) ^ t[0][(p & 0xff) as usize];
            }
        }
        t
    });
    // Slicing-by-8: eight table lookups per 8 bytes.
    let mut c = !0u32;
    let mut chunks = data.chunks_exact(8);
    for ch in &mut chunks {
        let lo = u32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]) ^ c;
        let hi = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]);
        c = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        c = t[0][((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

fn metric_code(m: Metric) -> u8 {
    match m {
        Metric::Cosine => 0,
        Metric::Dot => 1,
        Metric::SqEuclidean => 2,
    }
}

/// A bounds-checked little-endian reader over the file's bytes.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.buf.len() - self.at < n {
            return Err(Error::Corrupt(format!(
                "truncated: {what} needs {n} bytes, {} left",
                self.buf.len() - self.at
            )));
        }
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn usize(&mut self, what: &str) -> Result<usize> {
        usize::try_from(self.u64(what)?).map_err(|_| Error::Corrupt(format!("{what} too large")))
    }
    /// `count` items of `size` bytes, refusing counts the file cannot hold.
    fn array(&mut self, count: usize, size: usize, what: &str) -> Result<&'a [u8]> {
        let n = count
            .checked_mul(size)
            .ok_or_else(|| Error::Corrupt(format!("{what}: size overflows")))?;
        self.take(n, what)
    }
}

fn corrupt(msg: impl Into<String>) -> Error {
    Error::Corrupt(msg.into())
}

impl Hnsw {
    /// The index as bytes (see the module docs for the layout).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let n = self.labels.len();
        let mut out = Vec::with_capacity(64 + self.memory_bytes());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.dim as u64).to_le_bytes());
        out.push(metric_code(self.params.metric));
        for v in [
            self.params.m,
            self.params.ef_construction,
            self.params.ef_search,
        ] {
            out.extend_from_slice(&(v as u64).to_le_bytes());
        }
        out.extend_from_slice(&self.params.seed.to_le_bytes());
        out.extend_from_slice(&self.rng.to_le_bytes());
        out.extend_from_slice(&(n as u64).to_le_bytes());
        out.extend_from_slice(&(self.max_level as u64).to_le_bytes());
        out.extend_from_slice(&self.entry.map_or(u64::MAX, u64::from).to_le_bytes());
        for v in &self.vectors {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for l in &self.labels {
            out.extend_from_slice(&l.to_le_bytes());
        }
        out.extend_from_slice(&self.levels);
        out.extend(self.deleted.iter().map(|&d| u8::from(d)));
        for v in &self.links0 {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for u in &self.upper {
            for v in u {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        let meta = serde_json::to_vec(&self.metadata)
            .map_err(|e| invalid(format!("metadata is not serialisable: {e}")))?;
        out.extend_from_slice(&(meta.len() as u64).to_le_bytes());
        out.extend_from_slice(&meta);
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Write the index to `path` atomically (a temporary file renamed over it).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        let tmp = path.with_extension("tmp-trueno-rag");
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Self> {
        Self::from_bytes(&std::fs::read(path)?)
    }

    /// Parse and validate an index written by [`Hnsw::to_bytes`].
    pub fn from_bytes(buf: &[u8]) -> Result<Self> {
        if buf.len() < MAGIC.len() + 8 || &buf[..8] != MAGIC {
            return Err(corrupt("not a trueno-rag HNSW file (bad magic)"));
        }
        let (body, tail) = buf.split_at(buf.len() - 4);
        let want = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let mut r = Reader { buf: body, at: 8 };
        let version = r.u32("version")?;
        if version != VERSION {
            return Err(corrupt(format!(
                "format version {version}, this build reads version {VERSION}"
            )));
        }
        if crc32(body) != want {
            return Err(corrupt(
                "checksum mismatch (the file is damaged or truncated)",
            ));
        }
        let dim = r.usize("dim")?;
        let metric = match r.u8("metric")? {
            0 => Metric::Cosine,
            1 => Metric::Dot,
            2 => Metric::SqEuclidean,
            c => return Err(corrupt(format!("unknown metric code {c}"))),
        };
        let m = r.usize("M")?;
        let ef_construction = r.usize("ef_construction")?;
        let ef_search = r.usize("ef_search")?;
        let seed = r.u64("seed")?;
        let params = HnswParams {
            m,
            ef_construction,
            ef_search,
            seed,
            metric,
        };
        let mut h = Hnsw::new(dim, params).map_err(|e| corrupt(format!("header: {e}")))?;
        h.rng = r.u64("rng")?;
        let n = r.usize("node count")?;
        if n >= u32::MAX as usize {
            return Err(corrupt("node count too large"));
        }
        h.max_level = r.usize("max level")?;
        let entry = r.u64("entry")?;
        let vec_bytes = r.array(
            n.checked_mul(dim)
                .ok_or_else(|| corrupt("size overflows"))?,
            4,
            "vectors",
        )?;
        h.vectors = vec_bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        h.labels = r
            .array(n, 8, "labels")?
            .chunks_exact(8)
            .map(|b| {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                u64::from_le_bytes(a)
            })
            .collect();
        h.levels = r.array(n, 1, "levels")?.to_vec();
        let del = r.array(n, 1, "tombstones")?;
        if del.iter().any(|&d| d > 1) {
            return Err(corrupt("tombstone flags must be 0 or 1"));
        }
        h.deleted = del.iter().map(|&d| d == 1).collect();
        h.n_deleted = h.deleted.iter().filter(|&&d| d).count();
        let w0 = h.m0() + 1;
        h.links0 = u32s(r.array(
            n.checked_mul(w0).ok_or_else(|| corrupt("size overflows"))?,
            4,
            "layer 0",
        )?);
        let w = m + 1;
        for i in 0..n {
            let l = h.levels[i] as usize;
            if l > MAX_LEVEL || l > h.max_level {
                return Err(corrupt(format!("node {i} has level {l} above the maximum")));
            }
            h.upper.push(u32s(r.array(l * w, 4, "upper layers")?));
        }
        let meta_len = r.usize("metadata length")?;
        let meta = r.take(meta_len, "metadata")?;
        h.metadata = serde_json::from_slice(meta).map_err(|e| corrupt(format!("metadata: {e}")))?;
        if h.metadata.len() != n {
            return Err(corrupt("metadata count differs from node count"));
        }
        if r.at != body.len() {
            return Err(corrupt("trailing bytes after the index"));
        }
        // Structure: every link points at a node, counts fit their blocks.
        for i in 0..n as u32 {
            for level in 0..=h.levels[i as usize] as usize {
                let (block, cap) = h.link_block(i, level);
                let c = block[0] as usize;
                if c > cap || block[1..=c].iter().any(|&t| t as usize >= n) {
                    return Err(corrupt(format!("node {i} layer {level}: bad links")));
                }
            }
        }
        h.entry = match (entry, n) {
            (u64::MAX, 0) => None,
            (e, n) if (e as usize) < n && h.levels[e as usize] as usize == h.max_level => {
                Some(e as u32)
            }
            _ => return Err(corrupt("bad entry point")),
        };
        if h.vectors.iter().any(|v| !v.is_finite()) {
            return Err(corrupt("vectors contain NaN or infinity"));
        }
        for (i, (&l, &d)) in h.labels.iter().zip(&h.deleted).enumerate() {
            if !d && h.by_label.insert(l, i as u32).is_some() {
                return Err(corrupt(format!("label {l} is live twice")));
            }
        }
        Ok(h)
    }
}

fn u32s(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Clustered unit vectors: `centres` Gaussian centres, points at sigma.
    pub(crate) fn clustered(n: usize, dim: usize, centres: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        let mut gauss = || {
            let u1 = ((splitmix(&mut s) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            let u2 = (splitmix(&mut s) >> 11) as f64 / (1u64 << 53) as f64;
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        };
        let c: Vec<f32> = (0..centres * dim).map(|_| gauss()).collect();
        let mut out = Vec::with_capacity(n * dim);
        for i in 0..n {
            let base = (i % centres) * dim;
            let mut v: Vec<f32> = (0..dim).map(|j| c[base + j] + 0.3 * gauss()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            out.extend(v);
        }
        out
    }

    fn build(data: &[f32], dim: usize, params: HnswParams) -> Hnsw {
        let mut h = Hnsw::new(dim, params).unwrap();
        for (i, v) in data.chunks_exact(dim).enumerate() {
            let mut meta = Map::new();
            meta.insert("parity".into(), Value::from(i % 2));
            h.insert(i as u64, v, meta).unwrap();
        }
        h
    }

    fn recall(h: &Hnsw, queries: &[f32], k: usize, filter: &Filter) -> f64 {
        let mut hit = 0;
        let mut total = 0;
        for q in queries.chunks_exact(h.dim()) {
            let exact: HashSet<u64> = h
                .search_exact(q, k, filter)
                .unwrap()
                .iter()
                .map(|x| x.0)
                .collect();
            let approx = h.search(q, k, None, filter).unwrap();
            hit += approx.iter().filter(|x| exact.contains(&x.0)).count();
            total += exact.len();
        }
        hit as f64 / total as f64
    }

    #[test]
    fn recall_filters_deletes() {
        let dim = 24;
        let data = clustered(3000, dim, 30, 1);
        let queries = clustered(50, dim, 30, 99);
        let mut h = build(&data, dim, HnswParams::default());
        assert!(recall(&h, &queries, 10, &Filter::All) >= 0.95);
        // Exact search agrees with a scalar reference.
        let q = &queries[..dim];
        let ex = h.search_exact(q, 3, &Filter::All).unwrap();
        let mut all: Vec<(f32, u64)> = data
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, r)| (r.iter().zip(q).map(|(a, b)| a * b).sum::<f32>(), i as u64))
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        assert_eq!(ex.iter().map(|x| x.1).collect::<Vec<_>>().len(), 3);
        assert_eq!(ex[0].0, all[0].1);
        // Filters: only even labels come back, and still k of them.
        let even = Filter::from_json(&serde_json::json!({"parity": 0})).unwrap();
        for q in queries.chunks_exact(dim).take(10) {
            let r = h.search(q, 10, None, &even).unwrap();
            assert_eq!(r.len(), 10);
            assert!(r.iter().all(|x| x.0 % 2 == 0));
        }
        assert!(recall(&h, &queries, 10, &even) >= 0.9);
        // Deletes: the deleted labels never return.
        let top = h.search(q, 5, None, &Filter::All).unwrap();
        for (l, _) in &top {
            h.delete(*l).unwrap();
        }
        assert!(h.delete(top[0].0).is_err());
        let after = h.search(q, 10, None, &Filter::All).unwrap();
        assert!(after.iter().all(|x| !top.iter().any(|t| t.0 == x.0)));
        assert_eq!(h.len(), 2995);
        assert!(recall(&h, &queries, 10, &Filter::All) >= 0.95);
        // Re-insert replaces.
        h.insert(7, &data[..dim], Map::new()).unwrap();
        let r = h.search(&data[..dim], 2, None, &Filter::All).unwrap();
        assert!(r.iter().any(|x| x.0 == 7));
    }

    /// Top-k labels by a scalar f64 dot product: the reference, independent
    /// of trueno's kernels.
    fn brute_force(data: &[f32], dim: usize, q: &[f32], k: usize) -> HashSet<u64> {
        let mut all: Vec<(f64, u64)> = data
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, r)| {
                let s = r.iter().zip(q).map(|(&a, &b)| f64::from(a * b)).sum();
                (s, i as u64)
            })
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        all.iter().take(k).map(|x| x.1).collect()
    }

    #[test]
    fn graph_follows_the_standard_rules() {
        let dim = 32;
        let n = 2000;
        let data = clustered(n, dim, 20, 5);
        let p = HnswParams::default();
        let h = build(&data, dim, p);
        // Every node is linked; layer 0 holds up to 2M links, upper layers M.
        let deg0: Vec<usize> = (0..n as u32).map(|i| h.links(i, 0).len()).collect();
        assert!(deg0.iter().all(|&d| (1..=2 * p.m).contains(&d)));
        for i in 0..n as u32 {
            for l in 1..=h.levels[i as usize] as usize {
                assert!(h.links(i, l).len() <= p.m);
                // A link on layer l points at a node that lives there.
                assert!(
                    h.links(i, l)
                        .iter()
                        .all(|&t| h.levels[t as usize] as usize >= l)
                );
            }
        }
        // Levels: P(level >= 1) = 1/M with multiplier 1/ln(M); 2000 draws
        // put the count within 5 sigma of n/M = 125.
        let up = h.levels.iter().filter(|&&l| l >= 1).count() as f64;
        let (mean, sd) = (n as f64 / 16.0, (n as f64 / 16.0 * 15.0 / 16.0).sqrt());
        assert!((up - mean).abs() < 5.0 * sd, "{up} nodes above layer 0");
        // Recall@10 against a scalar brute force: 0.99 or more at ef 128.
        let queries = clustered(100, dim, 20, 77);
        let mut hit = 0;
        for q in queries.chunks_exact(dim) {
            let truth = brute_force(&data, dim, q, 10);
            let got = h.search(q, 10, Some(128), &Filter::All).unwrap();
            hit += got.iter().filter(|x| truth.contains(&x.0)).count();
        }
        let r = hit as f64 / 1000.0;
        assert!(r >= 0.99, "recall@10 {r}");
    }

    #[test]
    fn seeded_builds_are_identical_and_round_trip() {
        let dim = 8;
        let data = clustered(400, dim, 10, 3);
        let a = build(&data, dim, HnswParams::default());
        let b = build(&data, dim, HnswParams::default());
        let bytes = a.to_bytes().unwrap();
        assert_eq!(bytes, b.to_bytes().unwrap());
        let c = Hnsw::from_bytes(&bytes).unwrap();
        assert_eq!(c.to_bytes().unwrap(), bytes);
        let q = &data[5 * dim..6 * dim];
        assert_eq!(
            a.search(q, 5, None, &Filter::All).unwrap(),
            c.search(q, 5, None, &Filter::All).unwrap()
        );
        assert_eq!(c.metadata(3).unwrap()["parity"], 1);
    }

    #[test]
    fn corrupt_files_are_refused() {
        let dim = 4;
        let h = build(&clustered(50, dim, 5, 4), dim, HnswParams::default());
        let bytes = h.to_bytes().unwrap();
        for cut in [0, 7, 12, 100, bytes.len() - 1] {
            assert!(
                matches!(Hnsw::from_bytes(&bytes[..cut]), Err(Error::Corrupt(_))),
                "cut {cut}"
            );
        }
        for at in [3, 9, 20, 200, bytes.len() - 10, bytes.len() - 2] {
            let mut b = bytes.clone();
            b[at] ^= 0x40;
            assert!(
                matches!(Hnsw::from_bytes(&b), Err(Error::Corrupt(_))),
                "flip {at}"
            );
        }
        let mut v2 = bytes.clone();
        v2[8] = 2;
        let e = Hnsw::from_bytes(&v2).unwrap_err().to_string();
        assert!(e.contains("version 2"), "{e}");
    }

    #[test]
    fn bad_input() {
        let mut h = Hnsw::new(3, HnswParams::default()).unwrap();
        assert!(matches!(
            h.insert(1, &[1.0, 2.0], Map::new()),
            Err(Error::Dimension {
                expected: 3,
                got: 2
            })
        ));
        assert!(h.insert(1, &[0.0, 0.0, 0.0], Map::new()).is_err());
        assert!(h.insert(1, &[f32::NAN, 0.0, 0.0], Map::new()).is_err());
        assert!(
            h.search(&[1.0, 0.0, 0.0], 3, None, &Filter::All)
                .unwrap()
                .is_empty()
        );
        assert!(matches!(h.delete(9), Err(Error::UnknownLabel(9))));
        assert!(Hnsw::new(0, HnswParams::default()).is_err());
        let p = HnswParams {
            m: 1,
            ..HnswParams::default()
        };
        assert!(Hnsw::new(3, p).is_err());
        // L2: scores are distances, smallest first.
        let p = HnswParams {
            metric: Metric::SqEuclidean,
            ..HnswParams::default()
        };
        let mut h = Hnsw::new(1, p).unwrap();
        for i in 0..20 {
            h.insert(i, &[i as f32], Map::new()).unwrap();
        }
        let r = h.search(&[4.2], 3, None, &Filter::All).unwrap();
        assert_eq!(r.iter().map(|x| x.0).collect::<Vec<_>>(), [4, 5, 3]);
        assert!((r[0].1 - 0.04).abs() < 1e-5);
        let e = h.search_exact(&[4.2], 3, &Filter::All).unwrap();
        assert_eq!(e.iter().map(|x| x.0).collect::<Vec<_>>(), [4, 5, 3]);
    }

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414f_a339
        );
    }
}
