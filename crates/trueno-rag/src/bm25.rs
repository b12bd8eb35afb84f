//! BM25 (Okapi): lexical retrieval by term frequency, saturated by `k1` and
//! normalised by document length with `b`, over an inverted index.
//!
//! The score of document `d` for query tokens `q_1..q_n` (a repeated query
//! token counts each time it appears, as in `rank_bm25`):
//!
//! ```text
//! score(d) = Σ_i idf(q_i) · f(q_i, d) · (k1 + 1) / (f(q_i, d) + k1 · (1 - b + b · |d| / avgdl))
//! idf(t)   = ln(N - n(t) + 0.5) - ln(n(t) + 0.5)
//! ```
//!
//! with `N` documents, `n(t)` of them containing `t`, `|d|` the token count of
//! `d` and `avgdl` the mean token count. This is `rank_bm25.BM25Okapi`
//! (rank-bm25 0.2.2) exactly, including its floor for common terms: a term in
//! more than half of the documents has a negative idf, which is replaced by
//! `epsilon · mean idf` (mean over every distinct corpus term, negative ones
//! included, before flooring). Unknown query terms score 0. Scores are
//! computed in f64 and equal `rank_bm25`'s to within 1e-6 for the same tokens
//! and parameters (tests/python/test_rag.py), with one deliberate
//! difference: an empty document scores 0, where `rank_bm25` with `b = 1`
//! divides 0 by 0 and returns NaN for it.
//!
//! The analyser that turns text into tokens is [`Analyzer`]: it is not part
//! of BM25 and the comparison with `rank_bm25` feeds both the same tokens.

use std::collections::HashMap;

use crate::error::{Result, invalid};

/// English function words dropped when stop words are enabled (the
/// scikit-learn / NLTK core list, shortened to the frequent ones).
pub const ENGLISH_STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "me",
    "more",
    "most",
    "my",
    "myself",
    "nor",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// Text to tokens: split into maximal runs of alphanumeric characters
/// (Unicode `Alphabetic` or `Numeric`, so `naïve`, `日本語` and `42` are
/// words and punctuation, spaces and symbols separate them), lowercase each
/// run with Unicode's full case mapping, then drop stop words if enabled.
/// Apostrophes and hyphens split words (`don't` → `don`, `t`;
/// `e-mail` → `e`, `mail`). No stemming: `refund` and `refunds` differ.
#[derive(Debug, Clone, Default)]
pub struct Analyzer {
    stop_words: Option<std::collections::HashSet<String>>,
}

impl Analyzer {
    /// Split and lowercase, no stop words.
    pub fn new() -> Self {
        Analyzer { stop_words: None }
    }

    /// Also drop [`ENGLISH_STOP_WORDS`].
    pub fn english() -> Self {
        Self::with_stop_words(ENGLISH_STOP_WORDS.iter().copied())
    }

    /// Also drop the given words (compared after lowercasing).
    pub fn with_stop_words<'a>(words: impl IntoIterator<Item = &'a str>) -> Self {
        Analyzer {
            stop_words: Some(words.into_iter().map(str::to_lowercase).collect()),
        }
    }

    /// The tokens of `text`, in order.
    pub fn tokens(&self, text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .filter(|w| self.stop_words.as_ref().is_none_or(|s| !s.contains(w)))
            .collect()
    }
}

/// BM25 parameters; the defaults are `rank_bm25.BM25Okapi`'s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm25Params {
    /// Term-frequency saturation (`k1 >= 0`).
    pub k1: f64,
    /// Length normalisation, 0 (none) to 1 (full).
    pub b: f64,
    /// Negative idf floor as a fraction of the mean idf.
    pub epsilon: f64,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params {
            k1: 1.5,
            b: 0.75,
            epsilon: 0.25,
        }
    }
}

/// An inverted index scored with BM25.
#[derive(Debug, Clone)]
pub struct Bm25 {
    params: Bm25Params,
    vocab: HashMap<String, u32>,
    /// Per term: `(doc, term frequency)`, docs ascending.
    postings: Vec<Vec<(u32, u32)>>,
    idf: Vec<f64>,
    /// Per doc: `k1 · (1 - b + b · |d| / avgdl)`, the length part of the denominator.
    norm: Vec<f64>,
    doc_len: Vec<u32>,
}

impl Bm25 {
    /// Index tokenised documents.
    pub fn new<S: AsRef<str>>(docs: &[Vec<S>], params: Bm25Params) -> Result<Self> {
        let Bm25Params { k1, b, epsilon } = params;
        if !(k1.is_finite() && k1 >= 0.0) {
            return Err(invalid(format!("k1 must be finite and >= 0, got {k1}")));
        }
        if !(0.0..=1.0).contains(&b) {
            return Err(invalid(format!("b must be in [0, 1], got {b}")));
        }
        if !epsilon.is_finite() {
            return Err(invalid(format!("epsilon must be finite, got {epsilon}")));
        }
        if u32::try_from(docs.len()).is_err() {
            return Err(invalid("more than 2^32 documents"));
        }
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut postings: Vec<Vec<(u32, u32)>> = Vec::new();
        let mut doc_len = Vec::with_capacity(docs.len());
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for (d, doc) in docs.iter().enumerate() {
            counts.clear();
            for t in doc {
                let next = vocab.len() as u32;
                let id = *vocab.entry(t.as_ref().to_string()).or_insert(next);
                if id as usize == postings.len() {
                    postings.push(Vec::new());
                }
                *counts.entry(id).or_insert(0) += 1;
            }
            for (&id, &tf) in &counts {
                postings[id as usize].push((d as u32, tf));
            }
            doc_len.push(doc.len() as u32);
        }
        let n = docs.len() as f64;
        let total: f64 = doc_len.iter().map(|&l| f64::from(l)).sum();
        let avgdl = if docs.is_empty() { 0.0 } else { total / n };
        let mut idf: Vec<f64> = postings
            .iter()
            .map(|p| (n - p.len() as f64 + 0.5).ln() - (p.len() as f64 + 0.5).ln())
            .collect();
        let mean = if idf.is_empty() {
            0.0
        } else {
            idf.iter().sum::<f64>() / idf.len() as f64
        };
        for v in &mut idf {
            if *v < 0.0 {
                *v = epsilon * mean;
            }
        }
        let norm = doc_len
            .iter()
            .map(|&l| {
                // avgdl is 0 only when every document is empty: no term
                // ever matches, so the value is never used.
                let rel = if avgdl > 0.0 {
                    f64::from(l) / avgdl
                } else {
                    0.0
                };
                k1 * (1.0 - b + b * rel)
            })
            .collect();
        for p in &mut postings {
            p.sort_unstable();
        }
        Ok(Bm25 {
            params,
            vocab,
            postings,
            idf,
            norm,
            doc_len,
        })
    }

    /// Analyse and index raw texts.
    pub fn from_texts<S: AsRef<str>>(
        texts: &[S],
        analyzer: &Analyzer,
        params: Bm25Params,
    ) -> Result<Self> {
        let docs: Vec<Vec<String>> = texts.iter().map(|t| analyzer.tokens(t.as_ref())).collect();
        Self::new(&docs, params)
    }

    pub fn params(&self) -> Bm25Params {
        self.params
    }

    pub fn len(&self) -> usize {
        self.doc_len.len()
    }

    pub fn is_empty(&self) -> bool {
        self.doc_len.is_empty()
    }

    /// The idf of a term (0 for a term not in the corpus).
    pub fn idf(&self, term: &str) -> f64 {
        self.vocab.get(term).map_or(0.0, |&i| self.idf[i as usize])
    }

    /// The score of every document, in document order.
    pub fn scores<S: AsRef<str>>(&self, query: &[S]) -> Vec<f64> {
        let mut out = vec![0.0; self.len()];
        let k1p1 = self.params.k1 + 1.0;
        for q in query {
            let Some(&t) = self.vocab.get(q.as_ref()) else {
                continue;
            };
            let idf = self.idf[t as usize];
            for &(d, tf) in &self.postings[t as usize] {
                let f = f64::from(tf);
                out[d as usize] += idf * (f * k1p1 / (f + self.norm[d as usize]));
            }
        }
        out
    }

    /// The `k` best documents `(doc, score)`, best first; ties go to the
    /// lower document index. Documents that share no term with the query
    /// score 0 and are returned only if fewer than `k` documents match.
    pub fn top_k<S: AsRef<str>>(&self, query: &[S], k: usize) -> Vec<(usize, f64)> {
        let scores = self.scores(query);
        let mut idx: Vec<usize> = (0..scores.len()).collect();
        let k = k.min(idx.len());
        let cmp = |&a: &usize, &b: &usize| scores[b].total_cmp(&scores[a]).then(a.cmp(&b));
        if k < idx.len() && k > 0 {
            idx.select_nth_unstable_by(k - 1, cmp);
        }
        idx.truncate(k);
        idx.sort_by(cmp);
        idx.into_iter().map(|i| (i, scores[i])).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn analyzer_rules() {
        let a = Analyzer::new();
        assert_eq!(
            a.tokens("Don't e-mail ÉCOLE, naïve 日本語 42x!"),
            ["don", "t", "e", "mail", "école", "naïve", "日本語", "42x"]
        );
        assert_eq!(
            Analyzer::english().tokens("The cat and THE hat"),
            ["cat", "hat"]
        );
        assert!(a.tokens("").is_empty());
        assert!(a.tokens("  ,.; ").is_empty());
    }

    #[test]
    fn scores_by_hand() {
        // Three docs; "cat" in 1 of 3 -> idf = ln(2.5) - ln(1.5).
        let docs = vec![toks("cat sat"), toks("dog sat down"), toks("dog ran")];
        let p = Bm25Params::default();
        let bm = Bm25::new(&docs, p).unwrap();
        let avgdl = 7.0 / 3.0;
        let idf = 2.5f64.ln() - 1.5f64.ln();
        let want = idf * (2.5 / (1.0 + 1.5 * (0.25 + 0.75 * 2.0 / avgdl)));
        let s = bm.scores(&["cat"]);
        assert!((s[0] - want).abs() < 1e-12);
        assert_eq!(&s[1..], [0.0, 0.0]);
        // "sat" and "dog" are in 2 of 3 docs: idf = ln(1.5) - ln(2.5) < 0,
        // floored to 0.25 * mean idf over {cat, sat, dog, down, ran}.
        let neg = 1.5f64.ln() - 2.5f64.ln();
        let mean = (3.0 * idf + 2.0 * neg) / 5.0;
        assert!((bm.idf("sat") - 0.25 * mean).abs() < 1e-12);
        assert_eq!(bm.idf("unknown"), 0.0);
        // Repeated query terms count twice, like rank_bm25.
        let twice = bm.scores(&["cat", "cat"]);
        assert!((twice[0] - 2.0 * want).abs() < 1e-12);
        let top = bm.top_k(&["dog", "cat"], 2);
        assert_eq!(top[0].0, 0);
    }

    #[test]
    fn edge_cases() {
        let empty: Vec<Vec<String>> = vec![];
        let bm = Bm25::new(&empty, Bm25Params::default()).unwrap();
        assert!(bm.scores(&["a"]).is_empty());
        assert!(bm.top_k(&["a"], 3).is_empty());
        let blank = vec![Vec::<String>::new(), Vec::new()];
        let bm = Bm25::new(&blank, Bm25Params::default()).unwrap();
        assert_eq!(bm.scores(&["a"]), [0.0, 0.0]);
        for (k1, b) in [(-1.0, 0.5), (1.0, 1.5), (f64::NAN, 0.5)] {
            let p = Bm25Params {
                k1,
                b,
                epsilon: 0.25,
            };
            assert!(Bm25::new(&blank, p).is_err());
        }
    }
}
