//! GPT-2 style byte-level BPE, the tokenizer of Llama-family GGUF models (SmolLM2 here).
//!
//! The pipeline is llama.cpp's (`llm_tokenizer_bpe`), step for step, so the ids equal
//! llama.cpp's on the same file (the tests compare against it and against Hugging Face
//! `tokenizers` built from the same vocabulary and merges):
//!
//! 1. **Special tokens.** Control tokens (`<|im_start|>`, ...) written in the text become
//!    their own id when the caller asks for it (`parse_special`); user-defined tokens
//!    always do. Longer tokens are cut out first, as llama.cpp does.
//! 2. **Pre-tokenisation.** The text between special tokens is split into words by the
//!    model's regexes, named by the GGUF key `tokenizer.ggml.pre`. SmolLM2's `smollm`
//!    applies two in sequence: `\p{N}` (every number code point becomes a word of its
//!    own, so `2024` is four tokens) and then GPT-2's
//!    `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
//!    inside each piece. The splitter below is hand-written (the look-ahead is not a
//!    regular expression) and follows llama.cpp's `unicode_regex_split_custom_gpt2`.
//! 3. **Byte level.** Every byte of a word is one initial symbol. The vocabulary writes
//!    bytes as printable characters (GPT-2's `bytes_to_unicode`: a space is `Ġ`), so any
//!    byte string, valid UTF-8 or not, has an encoding and nothing is ever unknown.
//! 4. **Merges.** The adjacent pair with the lowest merge rank is joined, the leftmost
//!    first on a tie, until no pair has a rank. Words are cached.
//! 5. **Decoding** maps token characters back to bytes; `token_bytes` gives the raw bytes
//!    of one token for streaming, where a character can be split across two tokens, and
//!    [`Utf8Stream`] turns such a byte stream into text without losing those characters.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{LazyLock, Mutex};

use crate::error::{Error, Result};

pub mod train;
pub use train::{TrainOptions, train};

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const TOKEN_TYPE_NORMAL: i32 = 1;
const TOKEN_TYPE_UNKNOWN: i32 = 2;
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Words longer than this (in bytes) are not cached: a pathological input (a megabyte
/// without a space) must not pin memory.
const CACHE_MAX_WORD: usize = 256;
/// Entries before the cache is emptied and refilled.
const CACHE_MAX_ENTRIES: usize = 65_536;
/// Stands for a byte without a token: it takes part in no merge and is dropped from the
/// output, as llama.cpp and Hugging Face `tokenizers` (without an unknown token) drop it.
const NO_TOKEN: u32 = u32::MAX;

/// What a tokenizer is built from: the GGUF `tokenizer.ggml.*` metadata.
#[derive(Debug, Clone, Default)]
pub struct BpeConfig {
    /// Token texts by id, in the byte-to-unicode alphabet.
    pub tokens: Vec<String>,
    /// Merges in rank order, each `"left right"`.
    pub merges: Vec<String>,
    /// One llama.cpp token type per token (empty: all normal).
    pub token_types: Vec<i32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub pad: Option<u32>,
    pub unk: Option<u32>,
    /// Prepend BOS when the caller asks for special tokens (`tokenizer.ggml.add_bos_token`).
    pub add_bos: bool,
    /// The pre-tokeniser's name (`tokenizer.ggml.pre`).
    pub pre: String,
}

/// How text is split into words before the merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizer {
    /// GPT-2's regex alone (llama.cpp `gpt-2`, `mpt`, `olmo`, `jais`, `trillion`).
    Gpt2,
    /// Every number code point on its own, then GPT-2's regex (llama.cpp `smollm`,
    /// `starcoder`, `refact`, `command-r`, `codeshell`, `exaone`, `minerva`).
    DigitsThenGpt2,
}

impl PreTokenizer {
    /// The splitter llama.cpp uses for a `tokenizer.ggml.pre` name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "gpt-2" | "mpt" | "olmo" | "jais" | "trillion" => Ok(PreTokenizer::Gpt2),
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone"
            | "minerva" => Ok(PreTokenizer::DigitsThenGpt2),
            other => Err(Error::InvalidInput(format!(
                "tokenizer.ggml.pre {other:?} is not supported (supported: smollm, starcoder, \
                 refact, command-r, codeshell, exaone, minerva, gpt-2, mpt, olmo, jais, trillion)"
            ))),
        }
    }
}

/// A byte-level BPE tokenizer. `Send + Sync`: encode from many threads at once.
#[derive(Debug)]
pub struct BpeTokenizer {
    tokens: Vec<String>,
    /// Bytes each token decodes to.
    bytes: Vec<Vec<u8>>,
    types: Vec<i32>,
    token_to_id: HashMap<String, u32>,
    /// The id of the one-byte token of each byte; [`NO_TOKEN`] for a byte the vocabulary
    /// lacks (SmolLM2 has no token for 0x04, 0x06, 0x13, 0x14, 0x16, 0x1D nor for the
    /// bytes UTF-8 never uses).
    byte_token: [u32; 256],
    /// `(left, right)` -> `(rank, merged)`.
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Tokens cut out of the text before pre-tokenisation, longest first; the flag says
    /// whether it is matched only when the caller parses special tokens.
    specials: Vec<(u32, bool)>,
    pre: PreTokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    pad: Option<u32>,
    unk: Option<u32>,
    add_bos: bool,
    cache: Mutex<HashMap<Vec<u8>, Vec<u32>>>,
}

/// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes stand for themselves, the other
/// 68 bytes are shifted to U+0100.. in byte order, so every byte is a visible character.
fn byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut shifted = 0u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable = (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
        let cp = if printable {
            b as u32
        } else {
            shifted += 1;
            255 + shifted
        };
        *slot = char::from_u32(cp).unwrap_or('\0');
    }
    table
}

static BYTE_TO_CHAR: LazyLock<[char; 256]> = LazyLock::new(byte_to_char);

/// The character a byte is written as in a byte-level vocabulary (a space is `Ġ`).
pub fn byte_char(b: u8) -> char {
    BYTE_TO_CHAR[b as usize]
}
static CHAR_TO_BYTE: LazyLock<HashMap<char, u8>> = LazyLock::new(|| {
    BYTE_TO_CHAR
        .iter()
        .enumerate()
        .map(|(b, &c)| (c, b as u8))
        .collect()
});

/// The byte string a token's text stands for: each character through the byte map, a
/// character outside it (never in a byte-level vocabulary, but the file is not trusted)
/// kept as its own UTF-8, as llama.cpp's `llama_decode_text` does.
fn token_text_to_bytes(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match CHAR_TO_BYTE.get(&c) {
            Some(&b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

impl BpeTokenizer {
    /// Build and validate: unique token texts, printable ASCII present as byte tokens,
    /// merges naming known tokens whose concatenation is a token, ids in range.
    pub fn new(cfg: BpeConfig) -> Result<Self> {
        let bad = |m: String| Error::InvalidInput(format!("BPE tokenizer: {m}"));
        let n = cfg.tokens.len();
        if n == 0 {
            return Err(bad("the vocabulary is empty".into()));
        }
        if n > u32::MAX as usize {
            return Err(bad(format!("{n} tokens do not fit u32 ids")));
        }
        let types = if cfg.token_types.is_empty() {
            vec![TOKEN_TYPE_NORMAL; n]
        } else if cfg.token_types.len() == n {
            cfg.token_types.clone()
        } else {
            return Err(bad(format!(
                "{} token types for {n} tokens",
                cfg.token_types.len()
            )));
        };
        let pre = PreTokenizer::from_name(&cfg.pre)?;
        let mut token_to_id = HashMap::with_capacity(n);
        for (id, t) in cfg.tokens.iter().enumerate() {
            if t.is_empty() {
                return Err(bad(format!("token {id} is the empty string")));
            }
            if let Some(first) = token_to_id.insert(t.clone(), id as u32) {
                return Err(bad(format!(
                    "token {t:?} appears twice (ids {first} and {id})"
                )));
            }
        }
        for (name, id) in [
            ("bos", cfg.bos),
            ("eos", cfg.eos),
            ("pad", cfg.pad),
            ("unk", cfg.unk),
        ] {
            if let Some(id) = id
                && id as usize >= n
            {
                return Err(bad(format!(
                    "{name} id {id} is outside the vocabulary of {n}"
                )));
            }
        }
        if cfg.add_bos && cfg.bos.is_none() {
            return Err(bad("add_bos is set but there is no bos id".into()));
        }
        let mut byte_token = [NO_TOKEN; 256];
        for (b, slot) in byte_token.iter_mut().enumerate() {
            if let Some(&id) = token_to_id.get(&BYTE_TO_CHAR[b].to_string()) {
                *slot = id;
            }
        }
        // Printable ASCII must be there, or this is not a byte-level vocabulary at all.
        if let Some(b) = (0x21..0x7F).find(|&b| byte_token[b] == NO_TOKEN) {
            return Err(bad(format!(
                "byte 0x{b:02X} ({:?}) has no token: not a byte-level BPE vocabulary",
                b as u8 as char
            )));
        }
        let mut merges = HashMap::with_capacity(cfg.merges.len());
        for (rank, m) in cfg.merges.iter().enumerate() {
            // llama.cpp looks for the separator from the second byte on, so a left part
            // may itself start with a space.
            let split = m
                .bytes()
                .enumerate()
                .skip(1)
                .find(|&(_, b)| b == b' ')
                .map(|(i, _)| i)
                .ok_or_else(|| bad(format!("merge {rank} {m:?} is not \"left right\"")))?;
            let (left, right) = (&m[..split], &m[split + 1..]);
            let id_of = |part: &str| {
                token_to_id.get(part).copied().ok_or_else(|| {
                    bad(format!(
                        "merge {rank} {m:?} names {part:?}, which is not a token"
                    ))
                })
            };
            let (l, r) = (id_of(left)?, id_of(right)?);
            let merged = format!("{left}{right}");
            let id = *token_to_id.get(&merged).ok_or_else(|| {
                bad(format!(
                    "merge {rank} {m:?} makes {merged:?}, which is not a token"
                ))
            })?;
            // A repeated pair keeps its first (best) rank.
            merges.entry((l, r)).or_insert((rank as u32, id));
        }
        let mut specials: Vec<(u32, bool)> = types
            .iter()
            .enumerate()
            .filter_map(|(id, &t)| match t {
                TOKEN_TYPE_CONTROL | TOKEN_TYPE_UNKNOWN => Some((id as u32, true)),
                TOKEN_TYPE_USER_DEFINED => Some((id as u32, false)),
                _ => None,
            })
            .collect();
        // Longest first, so a token that contains a shorter one wins; ties by id.
        specials.sort_by_key(|&(id, _)| (Reverse(cfg.tokens[id as usize].len()), id));
        let bytes = cfg
            .tokens
            .iter()
            .zip(&types)
            .map(|(t, &ty)| match ty {
                // Control and user-defined tokens are literal text, not byte-mapped.
                TOKEN_TYPE_CONTROL | TOKEN_TYPE_USER_DEFINED | TOKEN_TYPE_UNKNOWN => {
                    t.as_bytes().to_vec()
                }
                _ => token_text_to_bytes(t),
            })
            .collect();
        Ok(BpeTokenizer {
            tokens: cfg.tokens,
            bytes,
            types,
            token_to_id,
            byte_token,
            merges,
            specials,
            pre,
            bos: cfg.bos,
            eos: cfg.eos,
            pad: cfg.pad,
            unk: cfg.unk,
            add_bos: cfg.add_bos,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Token ids of `text`. `add_special`: prepend BOS if the model asks for it;
    /// `parse_special`: control tokens written in the text become their ids (otherwise
    /// `<|im_start|>` is tokenised as the characters it is made of).
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special
            && self.add_bos
            && let Some(bos) = self.bos
        {
            out.push(bos);
        }
        for fragment in self.partition_special(text, parse_special) {
            match fragment {
                Fragment::Token(id) => out.push(id),
                Fragment::Text(t) => self.encode_text(t, &mut out),
            }
        }
        out
    }

    /// Splits the text on special tokens, longest token first, as llama.cpp's
    /// `tokenizer_st_partition` does.
    fn partition_special<'a>(&self, text: &'a str, parse_special: bool) -> Vec<Fragment<'a>> {
        let mut fragments = vec![Fragment::Text(text)];
        for &(id, control) in &self.specials {
            if control && !parse_special {
                continue;
            }
            let needle = self.tokens[id as usize].as_str();
            if !fragments
                .iter()
                .any(|f| matches!(f, Fragment::Text(t) if t.contains(needle)))
            {
                continue;
            }
            let mut next = Vec::with_capacity(fragments.len() + 2);
            for f in fragments {
                match f {
                    Fragment::Text(mut t) => {
                        while let Some(at) = t.find(needle) {
                            if at > 0 {
                                next.push(Fragment::Text(&t[..at]));
                            }
                            next.push(Fragment::Token(id));
                            t = &t[at + needle.len()..];
                        }
                        if !t.is_empty() {
                            next.push(Fragment::Text(t));
                        }
                    }
                    token => next.push(token),
                }
            }
            fragments = next;
        }
        fragments
    }

    fn encode_text(&self, text: &str, out: &mut Vec<u32>) {
        let mut push_word = |word: &str| self.encode_word(word.as_bytes(), out);
        match self.pre {
            PreTokenizer::Gpt2 => split_gpt2(text, &mut push_word),
            PreTokenizer::DigitsThenGpt2 => {
                split_numbers(text, &mut |piece| split_gpt2(piece, &mut push_word))
            }
        }
    }

    fn encode_word(&self, word: &[u8], out: &mut Vec<u32>) {
        if word.len() <= CACHE_MAX_WORD
            && let Ok(cache) = self.cache.lock()
            && let Some(ids) = cache.get(word)
        {
            out.extend_from_slice(ids);
            return;
        }
        let start = out.len();
        self.merge_word(word, out);
        if word.len() <= CACHE_MAX_WORD
            && let Ok(mut cache) = self.cache.lock()
        {
            if cache.len() >= CACHE_MAX_ENTRIES {
                cache.clear();
            }
            cache.insert(word.to_vec(), out[start..].to_vec());
        }
    }

    /// BPE on one word: start from its bytes, repeatedly join the lowest-ranked adjacent
    /// pair (leftmost on a tie). A heap of candidate pairs makes it O(n log n); a popped
    /// candidate whose symbols changed since it was pushed is stale and skipped.
    fn merge_word(&self, word: &[u8], out: &mut Vec<u32>) {
        if word.len() == 1 {
            let id = self.byte_token[word[0] as usize];
            if id != NO_TOKEN {
                out.push(id);
            }
            return;
        }
        struct Sym {
            id: u32,
            prev: usize,
            next: usize,
            alive: bool,
        }
        const NONE: usize = usize::MAX;
        let mut syms: Vec<Sym> = word
            .iter()
            .enumerate()
            .map(|(i, &b)| Sym {
                id: self.byte_token[b as usize],
                prev: if i == 0 { NONE } else { i - 1 },
                next: if i + 1 == word.len() { NONE } else { i + 1 },
                alive: true,
            })
            .collect();
        // (rank, left position, left id, right id)
        let mut heap: BinaryHeap<Reverse<(u32, usize, u32, u32)>> = BinaryHeap::new();
        let push = |heap: &mut BinaryHeap<_>, syms: &[Sym], left: usize| {
            if left == NONE {
                return;
            }
            let right = syms[left].next;
            if right == NONE {
                return;
            }
            let pair = (syms[left].id, syms[right].id);
            if let Some(&(rank, _)) = self.merges.get(&pair) {
                heap.push(Reverse((rank, left, pair.0, pair.1)));
            }
        };
        for i in 0..syms.len() - 1 {
            push(&mut heap, &syms, i);
        }
        while let Some(Reverse((_, left, lid, rid))) = heap.pop() {
            let right = syms[left].next;
            if !syms[left].alive || right == NONE || syms[left].id != lid || syms[right].id != rid {
                continue;
            }
            let Some(&(_, merged)) = self.merges.get(&(lid, rid)) else {
                continue;
            };
            syms[left].id = merged;
            syms[right].alive = false;
            let after = syms[right].next;
            syms[left].next = after;
            if after != NONE {
                syms[after].prev = left;
            }
            push(&mut heap, &syms, syms[left].prev);
            push(&mut heap, &syms, left);
        }
        let mut i = 0;
        while i != NONE {
            if syms[i].id != NO_TOKEN {
                out.push(syms[i].id);
            }
            i = syms[i].next;
        }
    }

    /// The text of `ids`: their bytes joined, then read as UTF-8 (a byte sequence that is
    /// not UTF-8, which only a truncated or hand-made id list produces, becomes U+FFFD).
    /// Control tokens are written as their text; unknown ids are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            if let Some(b) = self.token_bytes(id) {
                bytes.extend_from_slice(b);
            }
        }
        match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// The raw bytes of one token (a part of a UTF-8 character, possibly); None for an id
    /// outside the vocabulary.
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.bytes.get(id as usize).map(Vec::as_slice)
    }

    /// The token's text as stored in the vocabulary (byte-mapped: a space is `Ġ`).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// Whether the id is a control token (`<|im_end|>`, BOS, EOS, ...), which a chat
    /// reply does not show.
    pub fn is_control(&self, id: u32) -> bool {
        matches!(
            self.types.get(id as usize),
            Some(&TOKEN_TYPE_CONTROL) | Some(&TOKEN_TYPE_UNKNOWN)
        )
    }

    /// The merges in rank order, as `(left, right)` token texts (a pair the file lists
    /// twice appears once, at its first rank, which is the one encoding uses).
    pub fn merges(&self) -> Vec<(&str, &str)> {
        let mut ranked: Vec<(u32, u32, u32)> = self
            .merges
            .iter()
            .map(|(&(l, r), &(rank, _))| (rank, l, r))
            .collect();
        ranked.sort_unstable();
        ranked
            .into_iter()
            .map(|(_, l, r)| {
                (
                    self.tokens[l as usize].as_str(),
                    self.tokens[r as usize].as_str(),
                )
            })
            .collect()
    }

    /// Every token text by id, in the byte-to-unicode alphabet (a space is `Ġ`).
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// Ids of the tokens cut out of text whole (control, unknown and user-defined), by id.
    pub fn special_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.specials.iter().map(|&(id, _)| id).collect();
        ids.sort_unstable();
        ids
    }

    pub fn token_to_id(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    pub fn pad_id(&self) -> Option<u32> {
        self.pad
    }

    pub fn unk_id(&self) -> Option<u32> {
        self.unk
    }

    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    pub fn pre_tokenizer(&self) -> PreTokenizer {
        self.pre
    }
}

enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

/// Character classes of the pre-tokeniser, from the Unicode general categories (`\p{L}`,
/// `\p{N}`) and the White_Space property (`\s`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Number,
    Space,
    Other,
}

/// Sorted, disjoint code point ranges of `\p{L}` and `\p{N}`, from regex-syntax's
/// Unicode tables.
struct Categories {
    letters: Vec<(u32, u32)>,
    numbers: Vec<(u32, u32)>,
}

fn unicode_ranges(class: &str) -> Vec<(u32, u32)> {
    use regex_syntax::hir::{Class as HirClass, HirKind};
    match regex_syntax::Parser::new().parse(class) {
        Ok(hir) => match hir.kind() {
            HirKind::Class(HirClass::Unicode(c)) => c
                .ranges()
                .iter()
                .map(|r| (r.start() as u32, r.end() as u32))
                .collect(),
            _ => Vec::new(),
        },
        Err(_) => Vec::new(),
    }
}

static CATEGORIES: LazyLock<Categories> = LazyLock::new(|| Categories {
    letters: unicode_ranges(r"\p{L}"),
    numbers: unicode_ranges(r"\p{N}"),
});

fn in_ranges(ranges: &[(u32, u32)], cp: u32) -> bool {
    ranges
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

fn class_of(c: char) -> Class {
    if c.is_ascii() {
        return if c.is_ascii_alphabetic() {
            Class::Letter
        } else if c.is_ascii_digit() {
            Class::Number
        } else if c.is_ascii_whitespace() || c == '\x0B' {
            Class::Space
        } else {
            Class::Other
        };
    }
    let cp = c as u32;
    let cats = &*CATEGORIES;
    if in_ranges(&cats.letters, cp) {
        Class::Letter
    } else if in_ranges(&cats.numbers, cp) {
        Class::Number
    } else if c.is_whitespace() {
        Class::Space
    } else {
        Class::Other
    }
}

/// llama.cpp's first `smollm` regex, `\p{N}`: each number code point is a piece of its
/// own, and so is each run of text between them.
fn split_numbers<'a>(text: &'a str, emit: &mut dyn FnMut(&'a str)) {
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if class_of(c) == Class::Number {
            if i > start {
                emit(&text[start..i]);
            }
            emit(&text[i..i + c.len_utf8()]);
            start = i + c.len_utf8();
        }
    }
    if start < text.len() {
        emit(&text[start..]);
    }
}

/// GPT-2's pre-tokenisation regex, hand-written like llama.cpp's
/// `unicode_regex_split_custom_gpt2`:
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
fn split_gpt2<'a>(text: &'a str, emit: &mut dyn FnMut(&'a str)) {
    let chars: Vec<(usize, char, Class)> = text
        .char_indices()
        .map(|(i, c)| (i, c, class_of(c)))
        .collect();
    let n = chars.len();
    let byte_at = |pos: usize| if pos < n { chars[pos].0 } else { text.len() };
    // Class at a position; None past the end (llama.cpp's OUT_OF_RANGE, no flags).
    let class_at = |pos: usize| chars.get(pos).map(|&(_, _, k)| k);
    let char_at = |pos: usize| chars.get(pos).map(|&(_, c, _)| c);
    let mut pos = 0;
    let mut prev_end = 0;
    let mut add = |end: usize, prev_end: &mut usize| {
        if end > *prev_end {
            emit(&text[byte_at(*prev_end)..byte_at(end)]);
        }
        *prev_end = end;
    };
    while pos < n {
        let c = chars[pos].1;
        // 's 't 're 've 'm 'll 'd (lower case only, as in GPT-2)
        if c == '\'' && pos + 1 < n {
            let next = chars[pos + 1].1;
            if matches!(next, 's' | 't' | 'm' | 'd') {
                pos += 2;
                add(pos, &mut prev_end);
                continue;
            }
            if pos + 2 < n {
                let next2 = chars[pos + 2].1;
                if matches!((next, next2), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
                    pos += 3;
                    add(pos, &mut prev_end);
                    continue;
                }
            }
        }
        let lead = if c == ' ' {
            class_at(pos + 1)
        } else {
            class_at(pos)
        };
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
        if let Some(k @ (Class::Letter | Class::Number | Class::Other)) = lead {
            if c == ' ' {
                pos += 1;
            }
            while class_at(pos) == Some(k) {
                pos += 1;
            }
            add(pos, &mut prev_end);
            continue;
        }
        let mut spaces = 0;
        while class_at(pos + spaces) == Some(Class::Space) {
            spaces += 1;
        }
        // `\s+(?!\S)`: a run followed by more text leaves its last space to the next word.
        if spaces > 1 && char_at(pos + spaces).is_some() {
            pos += spaces - 1;
            add(pos, &mut prev_end);
            continue;
        }
        if spaces > 0 {
            pos += spaces;
            add(pos, &mut prev_end);
            continue;
        }
        pos += 1;
        add(pos, &mut prev_end);
    }
}

/// Bytes in, text out, for a stream of tokens: a UTF-8 character split across tokens is
/// held back until its last byte arrives; bytes that can never be UTF-8 become U+FFFD.
#[derive(Debug, Default, Clone)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes; returns the text that is now complete (possibly empty).
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // An incomplete character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// The end of the stream: an incomplete character left over becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

#[cfg(test)]
mod tests;
