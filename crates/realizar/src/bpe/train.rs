//! Training a byte-level BPE vocabulary from text: how the merges of a tokenizer such as
//! SmolLM2's are learnt in the first place.
//!
//! The algorithm is Hugging Face `tokenizers`' `BpeTrainer`, step for step, so the same
//! corpus and settings give the same merges and the same ids (tests/python/test_realizar_bpe_train.py
//! checks that against `tokenizers` itself):
//!
//! 1. **Words.** Each text is split into words by the same pre-tokeniser the tokenizer
//!    encodes with ([`PreTokenizer`]); identical words are counted once with their count.
//! 2. **Alphabet.** Special tokens take the first ids, in the order given; then the 256
//!    byte characters (GPT-2's byte-to-unicode map), sorted by code point. All 256 are
//!    always there, as with `initial_alphabet=ByteLevel.alphabet()`, so any text encodes.
//! 3. **Merges.** Count every adjacent pair of symbols over all words (weighted by the
//!    word's count); join the most frequent pair everywhere it occurs, left to right
//!    without overlap; the new symbol gets the next id. Ties go to the pair with the
//!    smaller ids. Only the pairs next to a merge change count, so the counts are
//!    updated, not recomputed, and a max-heap holds candidates whose count may be stale
//!    (a popped candidate whose count changed is pushed back with the current one).
//! 4. **Stop** when the vocabulary has `vocab_size` tokens, no pair is left, or the best
//!    pair occurs fewer than `min_frequency` times.
//!
//! Differences from `BpeTrainer`, by choice: a `vocab_size` too small to hold the specials
//! and the 256 bytes is an error here (`tokenizers` silently returns a larger vocabulary),
//! and the options `limit_alphabet`, `continuing_subword_prefix`, `end_of_word_suffix` and
//! `max_token_length` do not exist (their `BpeTrainer` defaults are what this computes).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};

use super::{
    BYTE_TO_CHAR, BpeConfig, PreTokenizer, TOKEN_TYPE_CONTROL, TOKEN_TYPE_NORMAL, split_gpt2,
    split_numbers,
};
use crate::error::{Error, Result};

/// What to train: the `BpeTrainer` settings this trainer has.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Tokens in the result, special tokens and the 256 bytes included.
    pub vocab_size: usize,
    /// A pair seen fewer times than this is never merged (0 and 1: no limit).
    pub min_frequency: u64,
    /// Tokens that get the first ids and are matched whole in text (`<|endoftext|>`).
    pub special_tokens: Vec<String>,
    /// The pre-tokeniser's llama.cpp name (`smollm`, `gpt-2`, ...; see [`PreTokenizer`]).
    pub pre: String,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            vocab_size: 1000,
            min_frequency: 0,
            special_tokens: Vec::new(),
            pre: "smollm".into(),
        }
    }
}

/// Ids are u32; beyond this a vocabulary is a mistake, not a request.
const MAX_VOCAB: usize = 1 << 24;

/// A candidate merge in the heap: the most frequent first, then the smaller pair.
struct Candidate {
    pair: (u32, u32),
    count: u64,
    /// Words that may hold the pair (a superset: a word can have lost it since).
    words: HashSet<usize>,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count && self.pair == other.pair
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.count
            .cmp(&other.count)
            .then_with(|| other.pair.cmp(&self.pair))
    }
}

/// Joins every non-overlapping `(a, b)`, left to right, into `new`; returns the pair count
/// changes this causes around each join (the joined pair itself is not counted down, as in
/// `tokenizers`, because it is never a candidate again).
fn merge_word(word: &mut Vec<u32>, a: u32, b: u32, new: u32) -> Vec<((u32, u32), i64)> {
    let mut changes = Vec::new();
    let mut out = Vec::with_capacity(word.len());
    let mut i = 0;
    while i < word.len() {
        if word[i] == a && i + 1 < word.len() && word[i + 1] == b {
            if let Some(&prev) = out.last() {
                changes.push(((prev, a), -1));
                changes.push(((prev, new), 1));
            }
            out.push(new);
            if let Some(&next) = word.get(i + 2) {
                changes.push(((b, next), -1));
                changes.push(((new, next), 1));
            }
            i += 2;
        } else {
            out.push(word[i]);
            i += 1;
        }
    }
    *word = out;
    changes
}

/// Learns a byte-level BPE vocabulary and its merges from `texts`; the result builds a
/// [`super::BpeTokenizer`] with [`super::BpeTokenizer::new`].
pub fn train<'a, I>(texts: I, opts: &TrainOptions) -> Result<BpeConfig>
where
    I: IntoIterator<Item = &'a str>,
{
    let bad = |m: String| Error::InvalidInput(format!("BPE training: {m}"));
    let pre = PreTokenizer::from_name(&opts.pre)?;
    let mut seen = HashSet::new();
    for s in &opts.special_tokens {
        if s.is_empty() {
            return Err(bad("a special token is the empty string".into()));
        }
        if !seen.insert(s.as_str()) {
            return Err(bad(format!("special token {s:?} is given twice")));
        }
    }
    // A special token of one byte character would take that byte's id away from the
    // alphabet, so the byte would have no token of its own: refuse it.
    if let Some(s) = opts.special_tokens.iter().find(|s| {
        BYTE_TO_CHAR
            .iter()
            .any(|&c| s.chars().eq(std::iter::once(c)))
    }) {
        return Err(bad(format!(
            "special token {s:?} is also a byte token; choose a longer name"
        )));
    }
    let floor = opts.special_tokens.len() + 256;
    if opts.vocab_size < floor {
        return Err(bad(format!(
            "vocab_size {} is smaller than the {} special tokens plus 256 byte tokens ({floor})",
            opts.vocab_size,
            opts.special_tokens.len()
        )));
    }
    if opts.vocab_size > MAX_VOCAB {
        return Err(bad(format!(
            "vocab_size {} is above the limit of {MAX_VOCAB}",
            opts.vocab_size
        )));
    }

    // 1. Words and their counts.
    let mut word_counts: HashMap<&'a [u8], u64> = HashMap::new();
    for text in texts {
        let mut count = |w: &'a str| *word_counts.entry(w.as_bytes()).or_insert(0) += 1;
        match pre {
            PreTokenizer::Gpt2 => split_gpt2(text, &mut count),
            PreTokenizer::DigitsThenGpt2 => {
                split_numbers(text, &mut |piece| split_gpt2(piece, &mut count))
            }
        }
    }

    // 2. Specials, then the byte alphabet in code point order.
    let mut tokens: Vec<String> = opts.special_tokens.clone();
    let mut token_to_id: HashMap<String, u32> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let mut by_char: Vec<(char, u8)> = (0..=255u8).map(|b| (BYTE_TO_CHAR[b as usize], b)).collect();
    by_char.sort_unstable();
    let mut byte_id = [0u32; 256];
    for (c, b) in by_char {
        let id = tokens.len() as u32;
        tokens.push(c.to_string());
        token_to_id.insert(c.to_string(), id);
        byte_id[b as usize] = id;
    }

    let mut words: Vec<Vec<u32>> = Vec::with_capacity(word_counts.len());
    let mut counts: Vec<u64> = Vec::with_capacity(word_counts.len());
    for (w, c) in word_counts {
        words.push(w.iter().map(|&b| byte_id[b as usize]).collect());
        counts.push(c);
    }

    // 3. Pair counts and where each pair occurs.
    let mut pair_counts: HashMap<(u32, u32), i64> = HashMap::new();
    let mut where_to_update: HashMap<(u32, u32), HashSet<usize>> = HashMap::new();
    for (i, w) in words.iter().enumerate() {
        for p in w.windows(2) {
            let pair = (p[0], p[1]);
            *pair_counts.entry(pair).or_insert(0) += counts[i] as i64;
            where_to_update.entry(pair).or_default().insert(i);
        }
    }
    let mut heap = BinaryHeap::with_capacity(pair_counts.len());
    let push_all = |heap: &mut BinaryHeap<Candidate>,
                    pending: &mut HashMap<(u32, u32), HashSet<usize>>,
                    pair_counts: &HashMap<(u32, u32), i64>| {
        for (pair, words) in pending.drain() {
            let count = pair_counts.get(&pair).copied().unwrap_or(0);
            if count > 0 {
                heap.push(Candidate {
                    pair,
                    count: count as u64,
                    words,
                });
            }
        }
    };
    push_all(&mut heap, &mut where_to_update, &pair_counts);

    let mut merges: Vec<String> = Vec::new();
    while tokens.len() < opts.vocab_size {
        let Some(mut top) = heap.pop() else { break };
        let current = pair_counts.get(&top.pair).copied().unwrap_or(0).max(0) as u64;
        if top.count != current {
            top.count = current;
            heap.push(top);
            continue;
        }
        if top.count < 1 || opts.min_frequency > top.count {
            break;
        }
        let (a, b) = top.pair;
        let joined = format!("{}{}", tokens[a as usize], tokens[b as usize]);
        let new = match token_to_id.get(&joined) {
            Some(&id) => id,
            None => {
                let id = tokens.len() as u32;
                tokens.push(joined.clone());
                token_to_id.insert(joined, id);
                id
            }
        };
        merges.push(format!("{} {}", tokens[a as usize], tokens[b as usize]));
        for &w in &top.words {
            for (pair, change) in merge_word(&mut words[w], a, b, new) {
                *pair_counts.entry(pair).or_insert(0) += change * counts[w] as i64;
                if change > 0 {
                    where_to_update.entry(pair).or_default().insert(w);
                }
            }
        }
        push_all(&mut heap, &mut where_to_update, &pair_counts);
    }

    let mut token_types = vec![TOKEN_TYPE_NORMAL; tokens.len()];
    for t in token_types.iter_mut().take(opts.special_tokens.len()) {
        *t = TOKEN_TYPE_CONTROL;
    }
    Ok(BpeConfig {
        tokens,
        merges,
        token_types,
        bos: None,
        eos: None,
        pad: None,
        unk: None,
        add_bos: false,
        pre: opts.pre.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::BpeTokenizer;
    use super::*;

    fn opts(vocab_size: usize) -> TrainOptions {
        TrainOptions {
            vocab_size,
            ..TrainOptions::default()
        }
    }

    #[test]
    fn the_most_frequent_pair_is_merged_first() {
        // "ab" occurs 3 times, "bc" twice: the first merge is a+b.
        let cfg = train(["ab ab ab bc bc"], &opts(257)).unwrap();
        assert_eq!(cfg.merges, ["a b"]);
        assert_eq!(cfg.tokens.len(), 257);
        assert_eq!(cfg.tokens[256], "ab");
    }

    #[test]
    fn ties_go_to_the_smaller_ids() {
        // "xy" and "ab" both occur once; a < x in code point order, so a+b wins.
        let cfg = train(["xy ab"], &opts(257)).unwrap();
        assert_eq!(cfg.merges, ["a b"]);
    }

    #[test]
    fn overlapping_pairs_merge_left_to_right() {
        let cfg = train(["aaa"], &opts(258)).unwrap();
        // aaa -> (aa)(a): the pair aa+a follows, once.
        assert_eq!(cfg.merges, ["a a", "aa a"]);
        let tok = BpeTokenizer::new(cfg).unwrap();
        assert_eq!(tok.encode("aaa", false, false).len(), 1);
        assert_eq!(tok.encode("aaaa", false, false).len(), 2);
    }

    #[test]
    fn stops_at_min_frequency_and_when_no_pair_is_left() {
        let mut o = opts(1000);
        o.min_frequency = 3;
        let cfg = train(["ab ab ab cd cd"], &o).unwrap();
        assert_eq!(cfg.merges, ["a b"]);
        let cfg = train(["ab"], &opts(1000)).unwrap();
        assert_eq!(cfg.merges, ["a b"]);
        assert_eq!(cfg.tokens.len(), 257);
    }

    #[test]
    fn empty_corpus_gives_the_byte_alphabet() {
        let cfg = train(std::iter::empty(), &opts(300)).unwrap();
        assert!(cfg.merges.is_empty());
        assert_eq!(cfg.tokens.len(), 256);
        let tok = BpeTokenizer::new(cfg).unwrap();
        let text = "héllo wörld 東京 🙂\u{0}";
        assert_eq!(tok.decode(&tok.encode(text, false, false)), text);
    }

    #[test]
    fn specials_take_the_first_ids_and_are_matched_whole() {
        let mut o = opts(300);
        o.special_tokens = vec!["<|endoftext|>".into(), "<pad>".into()];
        let cfg = train(["one two three <|endoftext|>"], &o).unwrap();
        assert_eq!(&cfg.tokens[..2], ["<|endoftext|>", "<pad>"]);
        let tok = BpeTokenizer::new(cfg).unwrap();
        let ids = tok.encode("one<|endoftext|>", false, true);
        assert_eq!(ids.last(), Some(&0));
        assert!(tok.is_control(0));
        assert_eq!(tok.decode(&ids), "one<|endoftext|>");
    }

    #[test]
    fn bad_options_are_errors() {
        assert!(train(["x"], &opts(255)).is_err());
        let mut o = opts(300);
        o.special_tokens = vec!["<s>".into(), "<s>".into()];
        assert!(train(["x"], &o).is_err());
        o.special_tokens = vec![String::new()];
        assert!(train(["x"], &o).is_err());
        o.special_tokens = vec!["a".into()];
        assert!(train(["x"], &o).is_err());
        let mut o = opts(300);
        o.pre = "nonsense".into();
        assert!(train(["x"], &o).is_err());
        assert!(train(["x"], &opts(MAX_VOCAB + 1)).is_err());
        let mut o = opts(258);
        o.special_tokens = vec!["<s>".into(), "</s>".into(), "<u>".into()];
        assert!(train(["x"], &o).is_err());
    }

    proptest::proptest! {
        #[test]
        fn trained_tokenizers_round_trip(corpus in proptest::collection::vec(".{0,40}", 0..8),
                                         text in ".{0,60}", extra in 0usize..200) {
            let cfg = train(corpus.iter().map(String::as_str), &opts(256 + extra)).unwrap();
            let tok = BpeTokenizer::new(cfg).unwrap();
            let ids = tok.encode(&text, false, false);
            proptest::prop_assert_eq!(tok.decode(&ids), text.clone());
            // No token is wasted: a trained tokenizer encodes its own corpus in no more
            // tokens than bytes.
            for t in &corpus {
                proptest::prop_assert!(tok.encode(t, false, false).len() <= t.len());
            }
        }
    }
}
