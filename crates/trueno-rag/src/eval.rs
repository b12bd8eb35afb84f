//! Retrieval metrics on a labelled question set: for each question the
//! ranked ids a retriever returned and the ids that answer it.
//!
//! | metric | per question | undefined when |
//! |---|---|---|
//! | recall@k | relevant ids in the top k / relevant ids | no relevant ids |
//! | precision@k | relevant ids in the top k / k | k = 0 |
//! | reciprocal rank | 1 / rank of the first relevant id (0 if none) | no relevant ids |
//! | nDCG@k | DCG of the ranking / DCG of the ideal ranking, gain = graded relevance, discount 1/log2(rank + 1) | no positive relevance |
//!
//! nDCG uses linear gains (the grade itself, as scikit-learn's
//! `ndcg_score`), not `2^grade - 1`. Retrieved lists are deduplicated
//! (a repeated id counts at its first rank). An undefined value is an error,
//! not a silent 0, so a bad label file cannot inflate or deflate a mean.

use std::collections::{HashMap, HashSet};

use crate::error::{Result, invalid};

fn dedup(retrieved: &[u64]) -> Vec<u64> {
    let mut seen = HashSet::new();
    retrieved
        .iter()
        .copied()
        .filter(|x| seen.insert(*x))
        .collect()
}

pub fn recall_at_k(retrieved: &[u64], relevant: &[u64], k: usize) -> Result<f64> {
    let rel: HashSet<u64> = relevant.iter().copied().collect();
    if rel.is_empty() {
        return Err(invalid(
            "recall is undefined for a question with no relevant ids",
        ));
    }
    let hits = dedup(retrieved)
        .iter()
        .take(k)
        .filter(|x| rel.contains(x))
        .count();
    Ok(hits as f64 / rel.len() as f64)
}

pub fn precision_at_k(retrieved: &[u64], relevant: &[u64], k: usize) -> Result<f64> {
    if k == 0 {
        return Err(invalid("precision@k needs k >= 1"));
    }
    let rel: HashSet<u64> = relevant.iter().copied().collect();
    let hits = dedup(retrieved)
        .iter()
        .take(k)
        .filter(|x| rel.contains(x))
        .count();
    Ok(hits as f64 / k as f64)
}

pub fn reciprocal_rank(retrieved: &[u64], relevant: &[u64]) -> Result<f64> {
    let rel: HashSet<u64> = relevant.iter().copied().collect();
    if rel.is_empty() {
        return Err(invalid("reciprocal rank is undefined with no relevant ids"));
    }
    Ok(dedup(retrieved)
        .iter()
        .position(|x| rel.contains(x))
        .map_or(0.0, |p| 1.0 / (p + 1) as f64))
}

/// nDCG@k with graded relevance (`grades`: id -> grade >= 0, missing = 0).
pub fn ndcg_at_k(retrieved: &[u64], grades: &HashMap<u64, f64>, k: usize) -> Result<f64> {
    if grades.values().any(|g| !(g.is_finite() && *g >= 0.0)) {
        return Err(invalid("relevance grades must be finite and >= 0"));
    }
    let disc = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let dcg: f64 = dedup(retrieved)
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, id)| grades.get(id).copied().unwrap_or(0.0) * disc(i))
        .sum();
    let mut ideal: Vec<f64> = grades.values().copied().collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| g * disc(i))
        .sum();
    if idcg <= 0.0 {
        return Err(invalid(
            "nDCG is undefined with no positive relevance grade",
        ));
    }
    Ok(dcg / idcg)
}

/// Mean of each metric over questions `(retrieved, relevant)`, binary relevance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub recall: f64,
    pub precision: f64,
    pub mrr: f64,
    pub ndcg: f64,
    pub questions: usize,
}

pub fn evaluate(runs: &[(Vec<u64>, Vec<u64>)], k: usize) -> Result<Summary> {
    if runs.is_empty() {
        return Err(invalid("no questions to evaluate"));
    }
    let mut s = Summary {
        recall: 0.0,
        precision: 0.0,
        mrr: 0.0,
        ndcg: 0.0,
        questions: runs.len(),
    };
    for (got, rel) in runs {
        s.recall += recall_at_k(got, rel, k)?;
        s.precision += precision_at_k(got, rel, k)?;
        s.mrr += reciprocal_rank(got, rel)?;
        let grades: HashMap<u64, f64> = rel.iter().map(|&r| (r, 1.0)).collect();
        s.ndcg += ndcg_at_k(got, &grades, k)?;
    }
    let n = runs.len() as f64;
    s.recall /= n;
    s.precision /= n;
    s.mrr /= n;
    s.ndcg /= n;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        let got = [7, 3, 9, 1, 3];
        let rel = [3, 1, 8];
        assert_eq!(recall_at_k(&got, &rel, 2).unwrap(), 1.0 / 3.0);
        assert_eq!(recall_at_k(&got, &rel, 10).unwrap(), 2.0 / 3.0);
        assert_eq!(precision_at_k(&got, &rel, 4).unwrap(), 0.5);
        assert_eq!(reciprocal_rank(&got, &rel).unwrap(), 0.5);
        assert_eq!(reciprocal_rank(&[5], &rel).unwrap(), 0.0);
        // Binary nDCG@4: hits at ranks 2 and 4 -> (1/log2 3 + 1/log2 5) / (1 + 1/log2 3 + 1/2).
        let g: HashMap<u64, f64> = rel.iter().map(|&r| (r, 1.0)).collect();
        let want = (1.0 / 3f64.log2() + 1.0 / 5f64.log2()) / (1.0 + 1.0 / 3f64.log2() + 0.5);
        assert!((ndcg_at_k(&got, &g, 4).unwrap() - want).abs() < 1e-12);
        assert!(recall_at_k(&got, &[], 3).is_err());
        assert!(precision_at_k(&got, &rel, 0).is_err());
        assert!(ndcg_at_k(&got, &HashMap::new(), 3).is_err());
        let s = evaluate(&[(got.to_vec(), rel.to_vec()), (vec![8], vec![8])], 4).unwrap();
        assert!((s.mrr - 0.75).abs() < 1e-12);
        assert!(evaluate(&[], 3).is_err());
    }
}
