//! Hybrid retrieval by weighted reciprocal rank fusion (Cormack et al., 2009).
//!
//! Each ranked list votes for its documents by rank, not by score, so
//! BM25's unbounded scores and cosine similarities need no calibration:
//!
//! ```text
//! rrf(d) = Σ_lists  w_list / (k + rank_list(d))      (rank starts at 1)
//! ```
//!
//! A document absent from a list gets nothing from it. `k` (60 in the
//! paper) damps the head: with a small `k` the first ranks dominate.
//! Ties are broken by the document's best rank in any list, then by id.

use std::collections::HashMap;

use crate::error::{Result, invalid};

/// Fuse ranked lists of document ids (best first) into one, best first, as
/// `(id, fused score)`. `weights` has one weight per list (finite, >= 0).
/// A list that repeats an id counts only the id's first (best) rank.
pub fn rrf(lists: &[Vec<u64>], weights: &[f64], k: f64) -> Result<Vec<(u64, f64)>> {
    if lists.len() != weights.len() {
        return Err(invalid(format!(
            "{} ranked lists but {} weights",
            lists.len(),
            weights.len()
        )));
    }
    if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
        return Err(invalid(format!("weights must be finite and >= 0, got {w}")));
    }
    if !(k.is_finite() && k >= 0.0) {
        return Err(invalid(format!("k must be finite and >= 0, got {k}")));
    }
    let mut acc: HashMap<u64, (f64, usize)> = HashMap::new();
    for (list, &w) in lists.iter().zip(weights) {
        let mut seen = std::collections::HashSet::new();
        for (r, &id) in list.iter().enumerate() {
            if !seen.insert(id) {
                continue;
            }
            let e = acc.entry(id).or_insert((0.0, usize::MAX));
            e.0 += w / (k + (r + 1) as f64);
            e.1 = e.1.min(r);
        }
    }
    let mut out: Vec<(u64, f64, usize)> = acc.into_iter().map(|(id, (s, r))| (id, s, r)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)).then(a.0.cmp(&b.0)));
    Ok(out.into_iter().map(|(id, s, _)| (id, s)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        let bm25 = vec![1, 2, 3];
        let vec = vec![3, 1, 4];
        let f = rrf(&[bm25, vec], &[1.0, 1.0], 60.0).unwrap();
        // 1: 1/61 + 1/62; 3: 1/63 + 1/61; 2: 1/62; 4: 1/63.
        let ids: Vec<u64> = f.iter().map(|x| x.0).collect();
        assert_eq!(ids, [1, 3, 2, 4]);
        assert!((f[0].1 - (1.0 / 61.0 + 1.0 / 62.0)).abs() < 1e-15);
        // Weight 0 removes a list's influence.
        let f = rrf(&[vec![1, 2], vec![2, 1]], &[0.0, 1.0], 60.0).unwrap();
        assert_eq!(f[0].0, 2);
        assert!(rrf(&[vec![1]], &[1.0, 2.0], 60.0).is_err());
        assert!(rrf(&[vec![1]], &[-1.0], 60.0).is_err());
        assert!(rrf(&[], &[], 60.0).unwrap().is_empty());
        let f = rrf(&[vec![5, 5, 6]], &[1.0], 0.0).unwrap();
        assert_eq!(f, [(5, 1.0), (6, 1.0 / 3.0)]);
    }
}
