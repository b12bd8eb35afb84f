//! Groundedness: is each claim of a generated answer supported by a
//! retrieved passage?
//!
//! The method (deliberately simple, so its failures are easy to see):
//!
//! 1. Split the answer into sentences ([`crate::chunk::sentence_spans`]);
//!    a sentence with no content word (after English stop words) is not a
//!    claim and is skipped ("Here it is.").
//! 2. A sentence is *supported* by a passage when all three hold:
//!    * the embeddings' cosine similarity is at least `min_cosine`
//!      (trueno's one-vs-N cosine over the passage embeddings);
//!    * at least `min_overlap` of the sentence's content words occur in the
//!      passage (the [`Analyzer`] with stop words);
//!    * every number in the sentence occurs in the passage (`check_numbers`).
//! 3. Groundedness is the fraction of claim sentences supported by at least
//!    one passage; each sentence reports its best passage and the figures.
//!
//! Limits, each shown by a test: a negated or reversed claim ("is not
//! refundable" against "is refundable") keeps high cosine and overlap and
//! passes; a faithful paraphrase in other words can fail the overlap test; a
//! claim that combines two passages is judged against each alone; nothing
//! checks that the passage *entails* the sentence (that needs an NLI model
//! or an LLM judge). The number check catches the most common RAG error,
//! a changed figure.

use std::collections::HashSet;

use crate::bm25::Analyzer;
use crate::chunk::sentence_spans;
use crate::error::{Error, Result, invalid};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroundParams {
    pub min_cosine: f32,
    pub min_overlap: f64,
    pub check_numbers: bool,
}

impl Default for GroundParams {
    fn default() -> Self {
        GroundParams {
            min_cosine: 0.5,
            min_overlap: 0.5,
            check_numbers: true,
        }
    }
}

/// The verdict on one sentence of the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceSupport {
    pub start: usize,
    pub end: usize,
    pub sentence: String,
    /// The supporting passage with the highest cosine, else the passage
    /// with the highest cosine (None without passages).
    pub passage: Option<usize>,
    pub cosine: f32,
    pub overlap: f64,
    pub numbers_ok: bool,
    pub supported: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Groundedness {
    /// Supported claims / claims (1.0 for an answer with no claim).
    pub score: f64,
    pub sentences: Vec<SentenceSupport>,
}

fn content(text: &str) -> Vec<String> {
    Analyzer::english().tokens(text)
}

/// The claim sentences of `answer` as byte ranges: embed these, in order,
/// for [`groundedness`].
pub fn claim_spans(answer: &str) -> Vec<(usize, usize)> {
    sentence_spans(answer)
        .into_iter()
        .filter(|&(s, e)| !content(&answer[s..e]).is_empty())
        .collect()
}

/// Judge `answer` against `passages`. `sentence_embeddings` holds one row of
/// `dim` per span of [`claim_spans`]; `passage_embeddings` one per passage.
pub fn groundedness<S: AsRef<str>>(
    answer: &str,
    sentence_embeddings: &[f32],
    passages: &[S],
    passage_embeddings: &[f32],
    dim: usize,
    params: GroundParams,
) -> Result<Groundedness> {
    let spans = claim_spans(answer);
    if dim == 0 {
        return Err(invalid("dim must be at least 1"));
    }
    if sentence_embeddings.len() != spans.len() * dim {
        return Err(invalid(format!(
            "the answer has {} claim sentences, got {} sentence embedding values for dim {dim}",
            spans.len(),
            sentence_embeddings.len()
        )));
    }
    if passage_embeddings.len() != passages.len() * dim {
        return Err(Error::Dimension {
            expected: passages.len() * dim,
            got: passage_embeddings.len(),
        });
    }
    let ptoks: Vec<HashSet<String>> = passages
        .iter()
        .map(|p| Analyzer::new().tokens(p.as_ref()).into_iter().collect())
        .collect();
    let mut cos = vec![0.0f32; passages.len()];
    let mut out = Vec::with_capacity(spans.len());
    for (i, &(s, e)) in spans.iter().enumerate() {
        let sentence = &answer[s..e];
        let words = content(sentence);
        let numbers: Vec<&String> = words
            .iter()
            .filter(|w| w.chars().any(|c| c.is_numeric()))
            .collect();
        if !passages.is_empty() {
            trueno::cosine_one_to_many(
                &sentence_embeddings[i * dim..(i + 1) * dim],
                passage_embeddings,
                dim,
                &mut cos,
            )?;
        }
        let mut best: Option<(bool, f32, usize, f64, bool)> = None;
        for (j, toks) in ptoks.iter().enumerate() {
            let overlap =
                words.iter().filter(|w| toks.contains(*w)).count() as f64 / words.len() as f64;
            let numbers_ok = !params.check_numbers || numbers.iter().all(|n| toks.contains(*n));
            let c = if cos[j].is_nan() { -1.0 } else { cos[j] };
            let ok = c >= params.min_cosine && overlap >= params.min_overlap && numbers_ok;
            let key = (ok, c);
            if best.is_none_or(|b| (key.0 && !b.0) || (key.0 == b.0 && key.1 > b.1)) {
                best = Some((ok, c, j, overlap, numbers_ok));
            }
        }
        let (supported, cosine, passage, overlap, numbers_ok) = match best {
            Some((ok, c, j, o, n)) => (ok, c, Some(j), o, n),
            None => (false, f32::NAN, None, 0.0, false),
        };
        out.push(SentenceSupport {
            start: s,
            end: e,
            sentence: sentence.to_string(),
            passage,
            cosine,
            overlap,
            numbers_ok,
            supported,
        });
    }
    let score = if out.is_empty() {
        1.0
    } else {
        out.iter().filter(|s| s.supported).count() as f64 / out.len() as f64
    };
    Ok(Groundedness {
        score,
        sentences: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bag-of-words embeddings over a fixed vocabulary: a stand-in for a
    /// sentence encoder that makes cosine predictable in a unit test (the
    /// Python tests use MiniLM).
    fn bow(texts: &[&str], vocab: &[&str]) -> Vec<f32> {
        texts
            .iter()
            .flat_map(|t| {
                let toks = Analyzer::new().tokens(t);
                vocab
                    .iter()
                    .map(move |v| toks.iter().filter(|x| x == v).count() as f32 + 0.01)
            })
            .collect()
    }

    #[test]
    fn method_and_its_limits() {
        let vocab = [
            "refund",
            "days",
            "30",
            "60",
            "not",
            "refundable",
            "gift",
            "cards",
            "money",
            "back",
            "month",
        ];
        let passages = [
            "Refunds are issued within 30 days.",
            "Gift cards are refundable.",
        ];
        let pe = bow(&passages, &vocab);
        let check = |answer: &str| {
            let spans = claim_spans(answer);
            let sents: Vec<&str> = spans.iter().map(|&(s, e)| &answer[s..e]).collect();
            let se = bow(&sents, &vocab);
            groundedness(
                answer,
                &se,
                &passages,
                &pe,
                vocab.len(),
                GroundParams::default(),
            )
            .unwrap()
        };
        // Supported, with a non-claim sentence skipped.
        let g = check("Here it is. Refunds are issued within 30 days.");
        assert_eq!(g.sentences.len(), 1);
        assert_eq!(g.score, 1.0);
        assert_eq!(g.sentences[0].passage, Some(0));
        // A changed number is caught.
        let g = check("Refunds are issued within 60 days.");
        assert!(!g.sentences[0].numbers_ok && g.score == 0.0);
        // Limit: a negation passes.
        let g = check("Gift cards are not refundable.");
        assert_eq!(g.score, 1.0, "negation is a known false positive");
        // Limit: a faithful paraphrase in other words fails.
        let g = check("You get your money back inside a month.");
        assert_eq!(g.score, 0.0, "paraphrase is a known false negative");
        assert_eq!(check("").score, 1.0);
    }

    #[test]
    fn shapes_are_checked() {
        let e = groundedness(
            "A claim here.",
            &[1.0, 0.0],
            &["p"],
            &[1.0, 0.0, 3.0],
            2,
            GroundParams::default(),
        );
        assert!(e.is_err());
        let e = groundedness(
            "A claim here.",
            &[1.0],
            &["p"],
            &[1.0, 0.0],
            2,
            GroundParams::default(),
        );
        assert!(e.is_err());
    }
}
