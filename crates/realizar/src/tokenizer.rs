//! BERT's WordPiece tokenizer: text in, vocabulary ids out.
//!
//! The pipeline is the one BERT was trained with, step for step as the Hugging Face
//! `tokenizers` package runs it (the tests compare ids and masks against that package):
//!
//! 1. **Special tokens** written literally in the text (`[SEP]`, `[MASK]`, ...) are cut
//!    out first and kept whole, before any normalisation touches them.
//! 2. **Normalisation**: drop NUL, U+FFFD and control characters, turn every whitespace
//!    character into a space, surround CJK ideographs with spaces (Chinese has no spaces
//!    between words, so each ideograph becomes a word), strip accents (NFD, then drop the
//!    non-spacing marks), lower-case.
//! 3. **Pre-tokenisation**: split on whitespace, then split every punctuation character
//!    into a word of its own.
//! 4. **WordPiece**: each word becomes the longest vocabulary prefix, then the longest
//!    `##`-prefixed continuation, and so on; a word that cannot be covered, or is longer
//!    than `max_input_chars_per_word`, becomes a single `[UNK]`.
//! 5. **Post-processing**: truncate to `max_length - 2`, wrap in `[CLS] ... [SEP]`, and
//!    (for batches) pad with `[PAD]` to the longest sequence, mask 0 on the padding.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};

/// The ids of one text, ready for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    /// Vocabulary ids, `[CLS]` first and `[SEP]` last (then `[PAD]` if padded).
    pub ids: Vec<u32>,
    /// Segment ids: all 0 for a single sentence.
    pub type_ids: Vec<u32>,
    /// 1 for a real token, 0 for padding.
    pub attention_mask: Vec<u32>,
}

impl Encoding {
    /// Number of real (unpadded) tokens, `[CLS]` and `[SEP]` included.
    pub fn len_unpadded(&self) -> usize {
        self.attention_mask.iter().filter(|&&m| m != 0).count()
    }
}

/// How the text is normalised before WordPiece (BERT's `BasicTokenizer` switches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Normalization {
    /// Drop control characters, map whitespace to spaces.
    pub clean_text: bool,
    /// Put spaces around CJK ideographs.
    pub handle_chinese_chars: bool,
    /// NFD, then drop non-spacing marks.
    pub strip_accents: bool,
    /// Unicode lower-casing.
    pub lowercase: bool,
}

impl Default for Normalization {
    /// The uncased BERT defaults (accents are stripped when lower-casing, as in BERT).
    fn default() -> Self {
        Self {
            clean_text: true,
            handle_chinese_chars: true,
            strip_accents: true,
            lowercase: true,
        }
    }
}

/// A WordPiece tokenizer with BERT's basic tokenisation in front of it.
#[derive(Debug, Clone)]
pub struct WordPiece {
    vocab: HashMap<String, u32>,
    id_to_token: Vec<String>,
    unk_id: u32,
    cls_id: u32,
    sep_id: u32,
    pad_id: u32,
    continuing_prefix: String,
    max_input_chars_per_word: usize,
    max_length: usize,
    normalization: Normalization,
    /// Special tokens matched literally in raw text, longest first.
    special: Vec<(String, u32)>,
}

/// Longest sequence when nothing in the model directory says otherwise (BERT's
/// position table has 512 rows).
const DEFAULT_MAX_LENGTH: usize = 512;
/// A vocabulary file larger than this is not a vocabulary.
const MAX_VOCAB_FILE_BYTES: u64 = 256 << 20;

fn format_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Read a whole text file that must exist, refusing absurd sizes before reading.
pub(crate) fn read_text(path: &Path, limit: u64) -> Result<String> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > limit {
        return Err(format_err(
            path,
            format!(
                "file is {} bytes, more than the {limit} allowed",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    String::from_utf8(bytes).map_err(|e| format_err(path, format!("not UTF-8: {e}")))
}

fn read_json_if_exists(path: &Path) -> Result<Option<Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = read_text(path, MAX_VOCAB_FILE_BYTES)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format_err(path, format!("invalid JSON: {e}")))
}

impl WordPiece {
    /// Build a tokenizer from a vocabulary (`id -> token`, as in `vocab.txt`).
    ///
    /// `[UNK]`, `[CLS]`, `[SEP]` and `[PAD]` must be in it.
    pub fn from_tokens(
        tokens: Vec<String>,
        normalization: Normalization,
        max_length: usize,
    ) -> Result<Self> {
        Self::build(
            Path::new("<vocabulary>"),
            tokens,
            normalization,
            max_length,
            "##".to_owned(),
            100,
        )
    }

    fn build(
        origin: &Path,
        id_to_token: Vec<String>,
        normalization: Normalization,
        max_length: usize,
        continuing_prefix: String,
        max_input_chars_per_word: usize,
    ) -> Result<Self> {
        if id_to_token.len() > u32::MAX as usize {
            return Err(format_err(origin, "vocabulary has more than 2^32 entries"));
        }
        let mut vocab = HashMap::with_capacity(id_to_token.len());
        for (id, token) in id_to_token.iter().enumerate() {
            // A token listed twice maps to its last id, as when the reference reads vocab.txt.
            vocab.insert(token.clone(), id as u32);
        }
        let need = |name: &str| {
            vocab.get(name).copied().ok_or_else(|| {
                format_err(
                    origin,
                    format!("the vocabulary has no {name} token, which BERT needs"),
                )
            })
        };
        let (unk_id, cls_id, sep_id, pad_id) = (
            need("[UNK]")?,
            need("[CLS]")?,
            need("[SEP]")?,
            need("[PAD]")?,
        );
        if max_length < 2 {
            return Err(format_err(
                origin,
                format!("max_length {max_length} leaves no room for [CLS] and [SEP]"),
            ));
        }
        let mut special: Vec<(String, u32)> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .iter()
            .filter_map(|t| vocab.get(*t).map(|&id| ((*t).to_owned(), id)))
            .collect();
        special.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        Ok(Self {
            vocab,
            id_to_token,
            unk_id,
            cls_id,
            sep_id,
            pad_id,
            continuing_prefix,
            max_input_chars_per_word,
            max_length,
            normalization,
            special,
        })
    }

    /// Load from a model directory: `tokenizer.json` if present, else `vocab.txt` with
    /// `tokenizer_config.json`. The maximum length is the sentence-transformers
    /// `max_seq_length` (`sentence_bert_config.json`) when there is one, since that is
    /// what the embedding model was trained and is served with, else the tokenizer's.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not a directory (expected a model directory with vocab.txt or tokenizer.json)",
                ),
            });
        }
        let tokenizer_json = dir.join("tokenizer.json");
        let vocab_txt = dir.join("vocab.txt");
        let mut tok = if tokenizer_json.is_file() {
            Self::from_tokenizer_json(&tokenizer_json)?
        } else if vocab_txt.is_file() {
            let config = read_json_if_exists(&dir.join("tokenizer_config.json"))?;
            Self::from_vocab_txt(&vocab_txt, config.as_ref())?
        } else {
            return Err(format_err(
                dir,
                "missing vocabulary: neither tokenizer.json nor vocab.txt is in this directory",
            ));
        };
        let st_config = dir.join("sentence_bert_config.json");
        if let Some(cfg) = read_json_if_exists(&st_config)?
            && let Some(n) = cfg.get("max_seq_length").and_then(Value::as_u64)
        {
            tok = tok.with_max_length(usize::try_from(n).unwrap_or(usize::MAX))?;
        }
        Ok(tok)
    }

    /// Read `vocab.txt` (one token per line, the line number is the id).
    pub fn from_vocab_txt(path: &Path, tokenizer_config: Option<&Value>) -> Result<Self> {
        let text = read_text(path, MAX_VOCAB_FILE_BYTES)?;
        let tokens: Vec<String> = text
            .lines()
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned())
            .collect();
        if tokens.is_empty() {
            return Err(format_err(path, "vocabulary is empty"));
        }
        let flag = |key: &str| {
            tokenizer_config
                .and_then(|c| c.get(key))
                .and_then(Value::as_bool)
        };
        let lowercase = flag("do_lower_case").unwrap_or(true);
        let normalization = Normalization {
            clean_text: true,
            handle_chinese_chars: flag("tokenize_chinese_chars").unwrap_or(true),
            strip_accents: flag("strip_accents").unwrap_or(lowercase),
            lowercase,
        };
        let max_length = tokenizer_config
            .and_then(|c| c.get("model_max_length"))
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_MAX_LENGTH)
            .min(DEFAULT_MAX_LENGTH);
        Self::build(
            path,
            tokens,
            normalization,
            max_length,
            "##".to_owned(),
            100,
        )
    }

    /// Read a Hugging Face `tokenizer.json` whose model is WordPiece.
    pub fn from_tokenizer_json(path: &Path) -> Result<Self> {
        let text = read_text(path, MAX_VOCAB_FILE_BYTES)?;
        let root: Value = serde_json::from_str(&text)
            .map_err(|e| format_err(path, format!("invalid JSON: {e}")))?;
        let model = root
            .get("model")
            .ok_or_else(|| format_err(path, "no \"model\" section"))?;
        let kind = model.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "WordPiece" {
            return Err(format_err(
                path,
                format!("model type is {kind:?}; only WordPiece is supported"),
            ));
        }
        let vocab = model
            .get("vocab")
            .and_then(Value::as_object)
            .ok_or_else(|| format_err(path, "missing vocabulary: no model.vocab object"))?;
        let mut tokens = vec![None; vocab.len()];
        for (token, id) in vocab {
            let id = id
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .filter(|&i| i < tokens.len())
                .ok_or_else(|| {
                    format_err(
                        path,
                        format!("token {token:?} has id {id}, outside 0..{}", tokens.len()),
                    )
                })?;
            if tokens[id].replace(token.clone()).is_some() {
                return Err(format_err(path, format!("id {id} is used twice")));
            }
        }
        // Ids are unique and in range, and there are as many as slots: all are filled.
        let tokens: Vec<String> = tokens.into_iter().flatten().collect();
        let prefix = model
            .get("continuing_subword_prefix")
            .and_then(Value::as_str)
            .unwrap_or("##")
            .to_owned();
        let max_chars = model
            .get("max_input_chars_per_word")
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(100);
        let mut normalization = Normalization::default();
        if let Some(norm) = root.get("normalizer").filter(|n| !n.is_null()) {
            let ty = norm.get("type").and_then(Value::as_str).unwrap_or("");
            if ty != "BertNormalizer" {
                return Err(format_err(
                    path,
                    format!("normalizer {ty:?} is not supported (expected BertNormalizer)"),
                ));
            }
            let flag = |k: &str, d: bool| norm.get(k).and_then(Value::as_bool).unwrap_or(d);
            normalization.clean_text = flag("clean_text", true);
            normalization.handle_chinese_chars = flag("handle_chinese_chars", true);
            normalization.lowercase = flag("lowercase", true);
            // `null` means "follow lowercase", as in BERT.
            normalization.strip_accents = norm
                .get("strip_accents")
                .and_then(Value::as_bool)
                .unwrap_or(normalization.lowercase);
        }
        let max_length = root
            .get("truncation")
            .and_then(|t| t.get("max_length"))
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_MAX_LENGTH);
        Self::build(path, tokens, normalization, max_length, prefix, max_chars)
    }

    /// The same tokenizer truncating to `max_length` tokens (`[CLS]` and `[SEP]` included).
    pub fn with_max_length(mut self, max_length: usize) -> Result<Self> {
        if max_length < 2 {
            return Err(Error::InvalidInput(format!(
                "max_length {max_length} leaves no room for [CLS] and [SEP]"
            )));
        }
        self.max_length = max_length;
        Ok(self)
    }

    /// Longest encoding produced, `[CLS]` and `[SEP]` included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Number of entries in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.id_to_token.len()
    }

    /// The id of `token`, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.vocab.get(token).copied()
    }

    /// The token of `id`, if it is in the vocabulary.
    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        self.id_to_token.get(id as usize).map(String::as_str)
    }

    /// The padding id (`[PAD]`).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Word-piece ids of `text`, without `[CLS]`/`[SEP]` and without truncation.
    pub fn tokenize_ids(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut rest = text;
        // Literal special tokens split the text; the pieces between them are normalised.
        while !rest.is_empty() {
            match self.find_special(rest) {
                Some((start, len, id)) => {
                    self.tokenize_plain(&rest[..start], &mut ids);
                    ids.push(id);
                    rest = &rest[start + len..];
                }
                None => {
                    self.tokenize_plain(rest, &mut ids);
                    break;
                }
            }
        }
        ids
    }

    /// Word-piece strings of `text` (for teaching and debugging).
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        self.tokenize_ids(text)
            .into_iter()
            .map(|id| self.id_to_token[id as usize].clone())
            .collect()
    }

    /// Leftmost special token in `text`: (byte start, byte length, id).
    fn find_special(&self, text: &str) -> Option<(usize, usize, u32)> {
        let bytes = text.as_bytes();
        for (start, &b) in bytes.iter().enumerate() {
            if b != b'[' {
                continue;
            }
            for (tok, id) in &self.special {
                if bytes[start..].starts_with(tok.as_bytes()) {
                    return Some((start, tok.len(), *id));
                }
            }
        }
        None
    }

    fn tokenize_plain(&self, text: &str, ids: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let normalized = self.normalize(text);
        let mut word = String::new();
        let flush = |word: &mut String, ids: &mut Vec<u32>| {
            if !word.is_empty() {
                self.wordpiece(word, ids);
                word.clear();
            }
        };
        for c in normalized.chars() {
            if c.is_whitespace() {
                flush(&mut word, ids);
            } else if is_bert_punctuation(c) {
                flush(&mut word, ids);
                word.push(c);
                flush(&mut word, ids);
            } else {
                word.push(c);
            }
        }
        flush(&mut word, ids);
    }

    /// BERT's normaliser (see the module docs for the steps and their order).
    pub fn normalize(&self, text: &str) -> String {
        let n = self.normalization;
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if n.clean_text {
                if c == '\0' || c == '\u{fffd}' || is_control(c) {
                    continue;
                }
                if is_whitespace(c) {
                    out.push(' ');
                    continue;
                }
            }
            if n.handle_chinese_chars && is_chinese_char(c) {
                out.push(' ');
                out.push(c);
                out.push(' ');
            } else {
                out.push(c);
            }
        }
        if n.strip_accents {
            out = out.nfd().filter(|c| !c.is_mark_nonspacing()).collect();
        }
        if n.lowercase {
            out = out.chars().flat_map(char::to_lowercase).collect();
        }
        out
    }

    /// Greedy longest-match-first WordPiece of one pre-tokenised word.
    fn wordpiece(&self, word: &str, ids: &mut Vec<u32>) {
        if word.chars().count() > self.max_input_chars_per_word {
            ids.push(self.unk_id);
            return;
        }
        let first = ids.len();
        let mut piece = String::with_capacity(word.len() + self.continuing_prefix.len());
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while end > start {
                piece.clear();
                if start > 0 {
                    piece.push_str(&self.continuing_prefix);
                }
                piece.push_str(&word[start..end]);
                if let Some(&id) = self.vocab.get(&piece) {
                    found = Some(id);
                    break;
                }
                // Step back one whole character.
                end = word[..end]
                    .char_indices()
                    .next_back()
                    .map_or(start, |(i, _)| i);
            }
            match found {
                Some(id) => {
                    ids.push(id);
                    start = end;
                }
                None => {
                    ids.truncate(first);
                    ids.push(self.unk_id);
                    return;
                }
            }
        }
    }

    /// `[CLS] ids [SEP]`, the content truncated to `max_length - 2`.
    pub fn encode(&self, text: &str) -> Encoding {
        let mut content = self.tokenize_ids(text);
        content.truncate(self.max_length - 2);
        let mut ids = Vec::with_capacity(content.len() + 2);
        ids.push(self.cls_id);
        ids.extend_from_slice(&content);
        ids.push(self.sep_id);
        let n = ids.len();
        Encoding {
            ids,
            type_ids: vec![0; n],
            attention_mask: vec![1; n],
        }
    }

    /// Number of tokens `encode` gives for `text` (`[CLS]`/`[SEP]` included, truncated).
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenize_ids(text).len().min(self.max_length - 2) + 2
    }

    /// Encode every text and pad them all to the longest (`[PAD]`, mask 0).
    pub fn encode_batch(&self, texts: &[&str]) -> Vec<Encoding> {
        let mut encodings: Vec<Encoding> = texts.iter().map(|t| self.encode(t)).collect();
        let longest = encodings.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        for e in &mut encodings {
            let pad = longest - e.ids.len();
            e.ids.extend(std::iter::repeat_n(self.pad_id, pad));
            e.type_ids.extend(std::iter::repeat_n(0, pad));
            e.attention_mask.extend(std::iter::repeat_n(0, pad));
        }
        encodings
    }

    /// Where a model directory keeps its vocabulary, for error messages.
    pub fn vocabulary_path(dir: &Path) -> PathBuf {
        let json = dir.join("tokenizer.json");
        if json.is_file() {
            json
        } else {
            dir.join("vocab.txt")
        }
    }
}

/// Whitespace as BERT sees it: tab, newline and carriage return count as spaces.
fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// Control, format and private-use characters (Cc, Cf, Co), except tab/newline/CR.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

/// ASCII punctuation (which includes `$`, `+`, `^`, ... that Unicode calls symbols) or
/// any Unicode punctuation category.
fn is_bert_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

/// The CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana, which are
/// written with spaces or are alphabetic).
fn is_chinese_char(c: char) -> bool {
    matches!(
        c as u32,
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> WordPiece {
        let vocab = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "hello", "!",
            "world", "cafe", "中", "##s", "a",
        ];
        WordPiece::from_tokens(
            vocab.iter().map(|s| (*s).to_owned()).collect(),
            Normalization::default(),
            8,
        )
        .unwrap()
    }

    #[test]
    fn greedy_longest_match_with_continuations() {
        assert_eq!(toy().tokenize("unaffable"), ["un", "##aff", "##able"]);
    }

    #[test]
    fn uncoverable_word_is_one_unk() {
        assert_eq!(toy().tokenize("unaffxable"), ["[UNK]"]);
    }

    #[test]
    fn lowercase_accents_punctuation_and_cjk() {
        assert_eq!(
            toy().tokenize("Héllo,WORLD! Café中s"),
            ["hello", "[UNK]", "world", "!", "cafe", "中", "[UNK]"]
        );
    }

    #[test]
    fn control_characters_vanish_and_whitespace_splits() {
        assert_eq!(
            toy().tokenize("hello\u{200b}\u{0}\tworld\u{fffd}"),
            ["hello", "world"]
        );
    }

    #[test]
    fn literal_special_tokens_are_kept() {
        assert_eq!(
            toy().tokenize("hello[SEP]world"),
            ["hello", "[SEP]", "world"]
        );
    }

    #[test]
    fn empty_text_is_cls_sep() {
        let e = toy().encode("");
        assert_eq!(e.ids, [2, 3]);
        assert_eq!(e.attention_mask, [1, 1]);
    }

    #[test]
    fn truncation_keeps_cls_and_sep() {
        let t = toy();
        let e = t.encode(&"a ".repeat(50));
        assert_eq!(e.ids.len(), 8);
        assert_eq!((e.ids[0], e.ids[7]), (2, 3));
        assert_eq!(t.count_tokens(&"a ".repeat(50)), 8);
        assert_eq!(t.count_tokens("a"), 3);
    }

    #[test]
    fn batch_pads_to_longest() {
        let b = toy().encode_batch(&["hello world", ""]);
        assert_eq!(b[0].ids.len(), 4);
        assert_eq!(b[1].ids, [2, 3, 0, 0]);
        assert_eq!(b[1].attention_mask, [1, 1, 0, 0]);
        assert_eq!(b[1].len_unpadded(), 2);
    }

    #[test]
    fn too_long_word_is_unk() {
        let s = "a".repeat(101);
        assert_eq!(toy().tokenize(&s), ["[UNK]"]);
    }

    #[test]
    fn vocabulary_without_unk_is_an_error() {
        let err = WordPiece::from_tokens(vec!["[CLS]".into()], Normalization::default(), 8);
        assert!(err.unwrap_err().to_string().contains("[UNK]"));
    }

    #[test]
    fn directory_without_vocabulary_is_an_error() {
        let dir = std::env::temp_dir().join(format!("realizar-novocab-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = WordPiece::load(&dir).unwrap_err().to_string();
        assert!(err.contains("missing vocabulary"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
