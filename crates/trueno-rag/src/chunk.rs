//! Chunking: cutting a document into passages small enough to embed and to
//! cite, without losing or inventing a single byte.
//!
//! Every strategy returns [`Chunk`]s that carry their byte range in the
//! source text. The contract, checked by property tests for every strategy:
//!
//! * chunks are in order, the first starts at byte 0 and the last ends at the
//!   end of the text (coverage: nothing is dropped);
//! * each chunk starts at or before the end of the previous one (no gaps) and
//!   after the previous one's start (progress: no loops, no duplicates);
//! * concatenating the chunks after removing each one's overlap with its
//!   predecessor (`prev.end - start` bytes) reproduces the text exactly;
//! * each chunk respects the size limit, counted in Unicode scalar values
//!   (`char`s) or, for [`fixed_tokens`], in tokens;
//! * every boundary is a `char` boundary (slicing never panics on UTF-8).
//!
//! Only the fixed-size strategies overlap; the structural ones (recursive,
//! sentences, markdown) tile the text. Empty text gives no chunks.
//!
//! | strategy | boundaries fall on |
//! |---|---|
//! | [`fixed_chars`] | every `size - overlap` characters |
//! | [`fixed_tokens`] | token starts from a model tokenizer's offsets |
//! | [`recursive`] | the coarsest separator that makes pieces fit (paragraph, line, sentence, word, character) |
//! | [`sentences`] | sentence ends, sentences packed greedily |
//! | [`markdown`] | headings; a long section is split recursively and every piece keeps its heading path |

use crate::error::{Result, invalid};

/// One passage: `text == source[start..end]`, plus the markdown heading path
/// it sits under (empty for the other strategies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub headings: Vec<String>,
}

impl Chunk {
    fn new(source: &str, start: usize, end: usize) -> Self {
        Chunk {
            start,
            end,
            text: source[start..end].to_string(),
            headings: Vec::new(),
        }
    }

    /// The text to embed: the heading path (`A > B`) on its own line, then the
    /// chunk, so a piece cut from the middle of a section still says what
    /// it is about.
    pub fn contextual_text(&self) -> String {
        if self.headings.is_empty() {
            self.text.clone()
        } else {
            format!("{}\n{}", self.headings.join(" > "), self.text)
        }
    }
}

fn check_size(size: usize, overlap: usize) -> Result<()> {
    if size == 0 {
        return Err(invalid("chunk size must be at least 1"));
    }
    if overlap >= size {
        // A window that advances by size - overlap <= 0 would never end.
        return Err(invalid(format!(
            "overlap {overlap} must be smaller than the chunk size {size}"
        )));
    }
    Ok(())
}

/// Byte offsets of every char start, plus the text length.
fn char_starts(text: &str) -> Vec<usize> {
    text.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect()
}

/// Windows of `size` characters advancing by `size - overlap`.
pub fn fixed_chars(text: &str, size: usize, overlap: usize) -> Result<Vec<Chunk>> {
    check_size(size, overlap)?;
    let b = char_starts(text);
    let n = b.len() - 1;
    Ok(windows(n, size, overlap)
        .map(|(s, e)| Chunk::new(text, b[s], b[e]))
        .collect())
}

/// Unit windows `[s, e)` over `n` units: the last window ends at `n`.
fn windows(n: usize, size: usize, overlap: usize) -> impl Iterator<Item = (usize, usize)> {
    let step = size - overlap;
    let mut s = 0;
    let mut done = n == 0;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let e = (s + size).min(n);
        let w = (s, e);
        if e == n {
            done = true;
        }
        s += step;
        Some(w)
    })
}

/// Windows of `size` model tokens advancing by `size - overlap`.
///
/// `spans` are the tokens' byte ranges in `text` (a tokenizer's offsets), in
/// order and non-overlapping. A chunk runs from its first token's start to
/// the start of the token after its last one, so the whitespace between
/// tokens belongs to the token before it; the
/// first chunk starts at 0 and the last ends at `text.len()`, so text the
/// tokenizer skipped is kept too.
pub fn fixed_tokens(
    text: &str,
    spans: &[(usize, usize)],
    size: usize,
    overlap: usize,
) -> Result<Vec<Chunk>> {
    check_size(size, overlap)?;
    let mut prev_end = 0;
    for (i, &(s, e)) in spans.iter().enumerate() {
        if s > e || e > text.len() || s < prev_end {
            return Err(invalid(format!(
                "token span {i} ({s}, {e}) is out of order or outside the text of {} bytes",
                text.len()
            )));
        }
        if !text.is_char_boundary(s) || !text.is_char_boundary(e) {
            return Err(invalid(format!(
                "token span {i} ({s}, {e}) is not on UTF-8 character boundaries"
            )));
        }
        prev_end = e;
    }
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let n = spans.len();
    if n == 0 {
        return Ok(vec![Chunk::new(text, 0, text.len())]);
    }
    let bound = |t: usize| match t {
        0 => 0,
        t if t == n => text.len(),
        t => spans[t].0,
    };
    Ok(windows(n, size, overlap)
        .map(|(s, e)| Chunk::new(text, bound(s), bound(e)))
        .collect())
}

/// The separators [`recursive`] tries, coarsest first: paragraph, line,
/// sentence end, word. After them it cuts between characters.
pub const DEFAULT_SEPARATORS: &[&str] = &["\n\n", "\n", ". ", " "];

/// Split on the coarsest separator that makes the pieces fit in `size`
/// characters, recursing with finer separators into pieces still too long,
/// then pack neighbouring pieces greedily up to `size`. A separator stays
/// at the end of the piece before it.
pub fn recursive(text: &str, size: usize, separators: &[&str]) -> Result<Vec<Chunk>> {
    check_size(size, 0)?;
    if separators.iter().any(|s| s.is_empty()) {
        return Err(invalid("separators must not be empty strings"));
    }
    let mut pieces = Vec::new();
    atoms(text, 0, text.len(), size, separators, &mut pieces);
    Ok(pack(text, &pieces, size)
        .into_iter()
        .map(|(s, e)| Chunk::new(text, s, e))
        .collect())
}

fn nchars(s: &str) -> usize {
    s.chars().count()
}

/// Pieces `[start, end)` of `text[start..end]`, each at most `size` chars.
fn atoms(
    text: &str,
    start: usize,
    end: usize,
    size: usize,
    seps: &[&str],
    out: &mut Vec<(usize, usize)>,
) {
    if start == end {
        return;
    }
    let piece = &text[start..end];
    if nchars(piece) <= size {
        out.push((start, end));
        return;
    }
    let Some(pos) = seps.iter().position(|s| piece.contains(s)) else {
        // No separator left: cut between characters.
        let b = char_starts(piece);
        for (s, e) in windows(b.len() - 1, size, 0) {
            out.push((start + b[s], start + b[e]));
        }
        return;
    };
    let sep = seps[pos];
    let finer = &seps[pos + 1..];
    let mut s = start;
    for (i, _) in piece.match_indices(sep) {
        let e = start + i + sep.len();
        atoms(text, s, e, size, finer, out);
        s = e;
    }
    atoms(text, s, end, size, finer, out);
}

/// Greedily merge consecutive pieces while the merged text fits in `size`.
fn pack(text: &str, pieces: &[(usize, usize)], size: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut cur: Option<(usize, usize, usize)> = None; // start, end, chars
    for &(s, e) in pieces {
        let c = nchars(&text[s..e]);
        cur = match cur {
            Some((cs, _, cc)) if cc + c <= size => Some((cs, e, cc + c)),
            Some((cs, ce, _)) => {
                out.push((cs, ce));
                Some((s, e, c))
            }
            None => Some((s, e, c)),
        };
    }
    if let Some((cs, ce, _)) = cur {
        out.push((cs, ce));
    }
    out
}

/// Words that end in a period without ending a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "no", "inc",
    "ltd", "co", "corp", "approx", "fig", "dept", "est", "min", "max", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
];

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？')
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '’' | '”' | '»')
}

/// Sentence byte ranges tiling `text`; the whitespace after a sentence
/// belongs to it.
///
/// A sentence ends at `.`, `!`, `?` or `…` (optionally followed by closing
/// quotes or brackets) when whitespace follows and the next word does not
/// start in lower case, unless the word before the period is a known
/// abbreviation or a single letter (initials); at CJK full stops without
/// whitespace; and at a blank line. Decimal numbers (`2.5`) never split
/// because no whitespace follows the point. This is a rule-based splitter:
/// it does not know every abbreviation (see the tests for what it gets wrong).
pub fn sentence_spans(text: &str) -> Vec<(usize, usize)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let (_, c) = chars[i];
        let mut end_at = None; // index of the first char of the next sentence
        if c == '\n' && chars.get(i + 1).is_some_and(|&(_, d)| d == '\n') {
            let mut j = i;
            while j < chars.len() && chars[j].1.is_whitespace() {
                j += 1;
            }
            end_at = Some(j);
        } else if is_terminator(c) {
            let mut j = i + 1;
            while j < chars.len() && (is_terminator(chars[j].1) || is_closer(chars[j].1)) {
                j += 1;
            }
            let cjk = matches!(c, '。' | '！' | '？');
            let ws = j < chars.len() && chars[j].1.is_whitespace();
            if j == chars.len() || (cjk && !ws) {
                end_at = Some(j);
            } else if ws && !(c == '.' && is_abbreviation(text, start, chars[i].0)) {
                let mut k = j;
                while k < chars.len() && chars[k].1.is_whitespace() {
                    k += 1;
                }
                if k == chars.len() || !chars[k].1.is_lowercase() {
                    end_at = Some(k);
                }
            }
        }
        if let Some(j) = end_at {
            let e = chars.get(j).map_or(text.len(), |&(b, _)| b);
            if e > start {
                out.push((start, e));
                start = e;
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    if start < text.len() {
        out.push((start, text.len()));
    }
    out
}

/// Whether the word ending at the period at byte `dot` is an abbreviation.
fn is_abbreviation(text: &str, sentence_start: usize, dot: usize) -> bool {
    let before = &text[sentence_start..dot];
    let word = before
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("");
    let w = word.to_lowercase();
    let single = w.chars().count() == 1 && w.chars().all(char::is_alphabetic);
    single || ABBREVIATIONS.contains(&w.as_str())
}

/// Whole sentences packed greedily into chunks of at most `size` characters;
/// a sentence longer than `size` is split on words, then characters.
pub fn sentences(text: &str, size: usize) -> Result<Vec<Chunk>> {
    check_size(size, 0)?;
    let mut pieces = Vec::new();
    for (s, e) in sentence_spans(text) {
        atoms(text, s, e, size, &[" "], &mut pieces);
    }
    Ok(pack(text, &pieces, size)
        .into_iter()
        .map(|(s, e)| Chunk::new(text, s, e))
        .collect())
}

/// Markdown split at ATX headings (`#` to `######` at a line start, outside
/// fenced code blocks): one chunk per section when it fits in `size`
/// characters, else the section split with [`recursive`] (tables and
/// paragraphs stay whole when they fit). Every chunk carries the heading path
/// it sits under, so [`Chunk::contextual_text`] keeps the heading with the
/// text even for the second piece of a long section. Text before the first
/// heading is a section with an empty path.
pub fn markdown(text: &str, size: usize) -> Result<Vec<Chunk>> {
    check_size(size, 0)?;
    let mut sections: Vec<(usize, usize, Vec<String>)> = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new(); // (level, title)
    let mut sec_start = 0;
    let mut sec_path: Vec<String> = Vec::new();
    let mut fence: Option<&str> = None;
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if indent <= 3 && (trimmed.starts_with("```") || trimmed.starts_with("~~~")) {
            let f = &trimmed[..3];
            fence = match fence {
                Some(open) if open == f => None,
                None => Some(if f == "```" { "```" } else { "~~~" }),
                other => other,
            };
        } else if fence.is_none()
            && indent <= 3
            && let Some((level, title)) = heading(trimmed)
        {
            if line_start > sec_start {
                sections.push((sec_start, line_start, sec_path.clone()));
            }
            path.retain(|&(l, _)| l < level);
            path.push((level, title));
            sec_path = path.iter().map(|(_, t)| t.clone()).collect();
            sec_start = line_start;
        }
        line_start += line.len();
    }
    if text.len() > sec_start {
        sections.push((sec_start, text.len(), sec_path));
    }
    let mut out = Vec::new();
    for (s, e, headings) in sections {
        let mut pieces = Vec::new();
        atoms(text, s, e, size, DEFAULT_SEPARATORS, &mut pieces);
        for (cs, ce) in pack(text, &pieces, size) {
            let mut c = Chunk::new(text, cs, ce);
            c.headings.clone_from(&headings);
            out.push(c);
        }
    }
    Ok(out)
}

/// `(level, title)` of an ATX heading line.
fn heading(line: &str) -> Option<(usize, String)> {
    let level = line.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &line[level..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t', '\n', '\r'])) {
        return None;
    }
    let title = rest.trim().trim_end_matches('#').trim().to_string();
    Some((level, title))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The module's contract for one chunking of `text`.
    fn check_contract(text: &str, chunks: &[Chunk], limit: Option<usize>) {
        if text.is_empty() {
            assert!(chunks.is_empty());
            return;
        }
        assert_eq!(chunks[0].start, 0);
        assert_eq!(chunks.last().unwrap().end, text.len());
        let mut rebuilt = String::new();
        let mut prev: Option<&Chunk> = None;
        for c in chunks {
            assert!(text.is_char_boundary(c.start) && text.is_char_boundary(c.end));
            assert_eq!(c.text, &text[c.start..c.end]);
            assert!(c.end > c.start, "empty chunk {c:?}");
            if let Some(limit) = limit {
                assert!(c.text.chars().count() <= limit, "{c:?} over {limit}");
            }
            match prev {
                None => rebuilt.push_str(&c.text),
                Some(p) => {
                    assert!(c.start > p.start && c.start <= p.end, "{p:?} then {c:?}");
                    rebuilt.push_str(&text[p.end.max(c.start)..c.end]);
                }
            }
            prev = Some(c);
        }
        assert_eq!(rebuilt, text);
    }

    fn texts() -> impl Strategy<Value = String> {
        // ASCII prose, newlines, multi-byte letters, CJK, emoji, combining marks.
        proptest::collection::vec(
            prop_oneof![
                Just("The "),
                Just("policy. "),
                Just("Refunds take 14 days! "),
                Just("\n"),
                Just("\n\n"),
                Just("# Title\n"),
                Just("## Sub\n"),
                Just("| a | b |\n"),
                Just("```\n# not a heading\n```\n"),
                Just("é"),
                Just("日本語。"),
                Just("🦀"),
                Just("e\u{301}"),
                Just("word"),
                Just(" "),
            ],
            0..60,
        )
        .prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn fixed_chars_contract(text in texts(), size in 1usize..40, ov in 0usize..40) {
            let ov = ov % size;
            let chunks = fixed_chars(&text, size, ov).unwrap();
            check_contract(&text, &chunks, Some(size));
            // Every window but the last is exactly `size` chars.
            for c in &chunks[..chunks.len().saturating_sub(1)] {
                prop_assert_eq!(c.text.chars().count(), size);
            }
        }

        #[test]
        fn recursive_contract(text in texts(), size in 1usize..60) {
            check_contract(&text, &recursive(&text, size, DEFAULT_SEPARATORS).unwrap(), Some(size));
        }

        #[test]
        fn sentences_contract(text in texts(), size in 1usize..60) {
            check_contract(&text, &sentences(&text, size).unwrap(), Some(size));
        }

        #[test]
        fn markdown_contract(text in texts(), size in 1usize..80) {
            check_contract(&text, &markdown(&text, size).unwrap(), Some(size));
        }

        #[test]
        fn tokens_contract(text in texts(), size in 1usize..12, ov in 0usize..12) {
            let ov = ov % size;
            // Tokens: the maximal non-whitespace runs.
            let mut spans = Vec::new();
            let mut s = None;
            for (i, c) in text.char_indices() {
                match (c.is_whitespace(), s) {
                    (false, None) => s = Some(i),
                    (true, Some(b)) => { spans.push((b, i)); s = None; }
                    _ => {}
                }
            }
            if let Some(b) = s { spans.push((b, text.len())); }
            let chunks = fixed_tokens(&text, &spans, size, ov).unwrap();
            check_contract(&text, &chunks, None);
            for c in &chunks {
                let toks = spans.iter().filter(|&&(a, b)| a >= c.start && b <= c.end).count();
                prop_assert!(toks <= size);
            }
        }

        #[test]
        fn sentence_spans_tile(text in texts()) {
            let spans = sentence_spans(&text);
            let mut at = 0;
            for (s, e) in spans { prop_assert_eq!(s, at); prop_assert!(e > s); at = e; }
            prop_assert_eq!(at, text.len());
        }
    }

    #[test]
    fn overlap_at_or_above_size_is_an_error() {
        for (size, ov) in [(10, 10), (10, 11), (1, 1)] {
            let e = fixed_chars("some text", size, ov).unwrap_err().to_string();
            assert!(e.contains("overlap"), "{e}");
            assert!(fixed_tokens("a b", &[(0, 1), (2, 3)], size, ov).is_err());
        }
        assert!(fixed_chars("x", 0, 0).is_err());
        assert!(recursive("x", 0, DEFAULT_SEPARATORS).is_err());
        assert!(recursive("x", 3, &[""]).is_err());
    }

    #[test]
    fn fixed_chars_windows_by_hand() {
        let c = fixed_chars("abcdefghij", 4, 1).unwrap();
        let t: Vec<&str> = c.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(t, ["abcd", "defg", "ghij"]);
        // Multi-byte chars count as one each.
        let c = fixed_chars("héllo wörld", 5, 0).unwrap();
        assert_eq!(c[0].text, "héllo");
        assert_eq!(c[1].text, " wörl");
        assert!(fixed_chars("", 5, 2).unwrap().is_empty());
    }

    #[test]
    fn bad_token_spans_are_refused() {
        assert!(fixed_tokens("ab", &[(0, 3)], 2, 0).is_err());
        assert!(fixed_tokens("ab cd", &[(3, 5), (0, 2)], 2, 0).is_err());
        assert!(fixed_tokens("é", &[(0, 1)], 2, 0).is_err());
    }

    #[test]
    fn recursive_prefers_paragraphs() {
        let text = "First paragraph here.\n\nSecond one is here.\n\nThird.";
        let c = recursive(text, 25, DEFAULT_SEPARATORS).unwrap();
        let t: Vec<&str> = c.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            t,
            [
                "First paragraph here.\n\n",
                "Second one is here.\n\n",
                "Third."
            ]
        );
    }

    #[test]
    fn sentence_rules() {
        let text = "Dr. Smith paid $2.50 for it. Then he left! Did he? e.g. this stays. 日本。次";
        let s: Vec<&str> = sentence_spans(text)
            .into_iter()
            .map(|(a, b)| &text[a..b])
            .collect();
        assert_eq!(
            s,
            [
                "Dr. Smith paid $2.50 for it. ",
                "Then he left! ",
                "Did he? e.g. this stays. ",
                "日本。",
                "次"
            ]
        );
        // A limit of the rules: an unknown abbreviation before a capital splits.
        let t = "See Sect. Four for details.";
        assert_eq!(sentence_spans(t).len(), 2);
    }

    #[test]
    fn markdown_keeps_headings_with_text() {
        let text = "Intro line.\n# Returns\nYou may return items.\n## Window\n30 days.\n```\n# code\n```\n# Shipping\nFree over $50.\n";
        let c = markdown(text, 200).unwrap();
        let got: Vec<(&str, Vec<String>)> = c
            .iter()
            .map(|c| (c.text.as_str(), c.headings.clone()))
            .collect();
        assert_eq!(got[0], ("Intro line.\n", vec![]));
        assert_eq!(
            got[1],
            ("# Returns\nYou may return items.\n", vec!["Returns".into()])
        );
        assert_eq!(got[2].1, vec!["Returns".to_string(), "Window".to_string()]);
        assert!(got[2].0.contains("# code"), "fenced code is not a heading");
        assert_eq!(got[3].1, vec!["Shipping".to_string()]);
        // A long section: every piece carries the path.
        let long = format!("# Big\n{}", "word ".repeat(100));
        let c = markdown(&long, 60).unwrap();
        assert!(c.len() > 5);
        assert!(c.iter().all(|c| c.headings == ["Big"]));
        assert!(c[3].contextual_text().starts_with("Big\n"));
    }
}
