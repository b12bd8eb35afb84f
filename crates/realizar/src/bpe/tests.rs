//! Unit tests on small hand-made vocabularies; the reference comparison on SmolLM2's
//! real vocabulary (llama.cpp and Hugging Face ids) is tests/python/test_realizar_bpe.py.

use super::*;
use proptest::prelude::*;

/// The 256 byte tokens, then `extra` tokens, with the given merges.
fn vocab(extra: &[&str], merges: &[&str], types: &[(usize, i32)]) -> BpeConfig {
    let mut tokens: Vec<String> = BYTE_TO_CHAR.iter().map(|c| c.to_string()).collect();
    tokens.extend(extra.iter().map(|s| s.to_string()));
    let mut token_types = vec![TOKEN_TYPE_NORMAL; tokens.len()];
    for &(id, t) in types {
        token_types[id] = t;
    }
    BpeConfig {
        tokens,
        merges: merges.iter().map(|s| s.to_string()).collect(),
        token_types,
        bos: None,
        eos: None,
        pad: None,
        unk: None,
        add_bos: false,
        pre: "smollm".into(),
    }
}

fn words(text: &str, pre: PreTokenizer) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |w: &str| out.push(w.to_string());
    match pre {
        PreTokenizer::Gpt2 => split_gpt2(text, &mut push),
        PreTokenizer::DigitsThenGpt2 => split_numbers(text, &mut |p| split_gpt2(p, &mut push)),
    }
    out
}

#[test]
fn byte_map_is_gpt2s() {
    assert_eq!(BYTE_TO_CHAR[b' ' as usize], 'Ġ');
    assert_eq!(BYTE_TO_CHAR[b'\n' as usize], 'Ċ');
    assert_eq!(BYTE_TO_CHAR[b'A' as usize], 'A');
    assert_eq!(BYTE_TO_CHAR[0], 'Ā');
    assert_eq!(BYTE_TO_CHAR[0xAD], 'Ń');
    let distinct: std::collections::HashSet<char> = BYTE_TO_CHAR.iter().copied().collect();
    assert_eq!(distinct.len(), 256);
}

#[test]
fn gpt2_split_matches_the_regex_by_hand() {
    let w = |t| words(t, PreTokenizer::Gpt2);
    assert_eq!(w("Hello world"), ["Hello", " world"]);
    assert_eq!(
        w("I'm he's we'll they've"),
        ["I", "'m", " he", "'s", " we", "'ll", " they", "'ve"]
    );
    // Upper-case contractions are not contractions in GPT-2's regex.
    assert_eq!(w("I'M"), ["I", "'", "M"]);
    // \s+(?!\S): a run before a word leaves one space to the word.
    assert_eq!(w("a   b"), ["a", "  ", " b"]);
    assert_eq!(w("a\n\nb"), ["a", "\n", "\n", "b"]);
    assert_eq!(w("a  "), ["a", "  "]);
    assert_eq!(w("x = 1;"), ["x", " =", " 1", ";"]);
    assert_eq!(w(" ?!.."), [" ?!.."]);
    assert_eq!(w("日本語です"), ["日本語です"]);
    assert_eq!(w(""), Vec::<String>::new());
    assert_eq!(w("\u{a0}x"), ["\u{a0}", "x"]);
}

#[test]
fn smollm_isolates_every_digit() {
    let w = |t| words(t, PreTokenizer::DigitsThenGpt2);
    assert_eq!(w("in 2024!"), ["in", " ", "2", "0", "2", "4", "!"]);
    // Non-ASCII numbers too (\p{N}: Nd, Nl, No).
    assert_eq!(w("٣½Ⅻ"), ["٣", "½", "Ⅻ"]);
    assert_eq!(w("a1b"), ["a", "1", "b"]);
}

#[test]
fn merges_apply_by_rank_leftmost_first() {
    // "ab" ranks before "bc": "abc" -> "ab" + "c", never "a" + "bc".
    let cfg = vocab(&["ab", "bc", "abc"], &["a b", "b c", "ab c"], &[]);
    let t = BpeTokenizer::new(cfg).unwrap();
    let id = |s: &str| t.token_to_id(s).unwrap();
    assert_eq!(t.encode("abc", false, false), [id("abc")]);
    assert_eq!(t.encode("bc", false, false), [id("bc")]);
    // Equal pairs: leftmost first, so "aaa" is "aa" + "a".
    let cfg = vocab(&["aa"], &["a a"], &[]);
    let t = BpeTokenizer::new(cfg).unwrap();
    let (aa, a) = (t.token_to_id("aa").unwrap(), t.token_to_id("a").unwrap());
    assert_eq!(t.encode("aaa", false, false), [aa, a]);
    assert_eq!(t.encode("aaaa", false, false), [aa, aa]);
    // A space is Ġ in the vocabulary.
    let cfg = vocab(&["Ġa"], &["Ġ a"], &[]);
    let t = BpeTokenizer::new(cfg).unwrap();
    assert_eq!(t.encode(" a", false, false), [t.token_to_id("Ġa").unwrap()]);
}

#[test]
fn special_tokens_only_when_asked() {
    let n = 256;
    let cfg = BpeConfig {
        bos: Some(n as u32),
        add_bos: true,
        ..vocab(
            &["<s>", "<|im_start|>", "<tool>"],
            &[],
            &[
                (n, TOKEN_TYPE_CONTROL),
                (n + 1, TOKEN_TYPE_CONTROL),
                (n + 2, TOKEN_TYPE_USER_DEFINED),
            ],
        )
    };
    let t = BpeTokenizer::new(cfg).unwrap();
    let ims = (n + 1) as u32;
    let ids = t.encode("<|im_start|>hi", false, true);
    assert_eq!(ids[0], ims);
    assert_eq!(t.decode(&ids), "<|im_start|>hi");
    let literal = t.encode("<|im_start|>hi", false, false);
    assert!(!literal.contains(&ims));
    assert_eq!(t.decode(&literal), "<|im_start|>hi");
    // User-defined tokens are always matched.
    assert_eq!(t.encode("<tool>", false, false), [(n + 2) as u32]);
    // BOS only with add_special.
    assert_eq!(t.encode("", true, false), [n as u32]);
    assert_eq!(t.encode("", false, false), Vec::<u32>::new());
    assert!(t.is_control(ims) && !t.is_control(65));
}

#[test]
fn bad_configs_are_errors() {
    let err = |cfg: BpeConfig| BpeTokenizer::new(cfg).unwrap_err().to_string();
    assert!(err(vocab(&["a"], &[], &[])).contains("appears twice"));
    assert!(err(vocab(&["ab"], &["a x!"], &[])).contains("not a token"));
    assert!(err(vocab(&["ab"], &["a c"], &[])).contains("makes \"ac\""));
    assert!(err(vocab(&[], &["ab"], &[])).contains("not \"left right\""));
    let mut c = vocab(&[], &[], &[]);
    let a = c.tokens.iter().position(|t| t == "a").unwrap();
    c.tokens.remove(a);
    c.token_types.remove(a);
    assert!(err(c).contains("byte 0x61"));
    assert!(
        err(BpeConfig {
            eos: Some(9999),
            ..vocab(&[], &[], &[])
        })
        .contains("eos id 9999")
    );
    assert!(
        err(BpeConfig {
            pre: "llama-bpe".into(),
            ..vocab(&[], &[], &[])
        })
        .contains("not supported")
    );
    let mut c = vocab(&[], &[], &[]);
    c.token_types.pop();
    assert!(err(c).contains("token types"));
    assert!(err(BpeConfig::default()).contains("empty"));
}

#[test]
fn a_byte_without_a_token_is_dropped_and_blocks_merges() {
    // Byte 0x04 missing (as in SmolLM2): "a\x04a" must not merge the two a's into "aa".
    let mut c = vocab(&["aa"], &["a a"], &[]);
    let gone = c.tokens.iter().position(|t| t == "Ą").unwrap();
    c.tokens[gone] = "<unused>".into();
    let t = BpeTokenizer::new(c).unwrap();
    let a = t.token_to_id("a").unwrap();
    assert_eq!(t.encode("a\u{4}a", false, false), [a, a]);
    assert_eq!(t.encode("\u{4}", false, false), Vec::<u32>::new());
    assert_eq!(t.encode("aa", false, false), [t.token_to_id("aa").unwrap()]);
}

#[test]
fn utf8_stream_holds_split_characters() {
    let mut s = Utf8Stream::new();
    let e = "é😀".as_bytes();
    assert_eq!(s.push(&e[..1]), "");
    assert_eq!(s.push(&e[1..3]), "é");
    assert_eq!(s.push(&e[3..5]), "");
    assert_eq!(s.push(&e[5..]), "😀");
    assert_eq!(s.push(b"\xFFok"), "\u{FFFD}ok");
    assert_eq!(s.push(&e[..1]), "");
    assert_eq!(s.finish(), "\u{FFFD}");
}

/// Byte tokens plus a few merges covering common pairs, so merging is exercised.
fn rich() -> BpeTokenizer {
    let cfg = vocab(
        &["Ġt", "he", "Ġthe", "in", "Ġa", "ðŁ", "ĠĠ", "ĊĊ", "<|x|>"],
        &["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "ð Ł", "Ġ Ġ", "Ċ Ċ"],
        &[(256 + 8, TOKEN_TYPE_CONTROL)],
    );
    BpeTokenizer::new(cfg).unwrap()
}

#[test]
fn splits_of_one_character_decode_losslessly() {
    let t = rich();
    let ids = t.encode("😀", false, false);
    assert!(ids.len() > 1);
    let mut stream = Utf8Stream::new();
    let text: String = ids
        .iter()
        .map(|&id| stream.push(t.token_bytes(id).unwrap()))
        .collect();
    assert_eq!(text, "😀");
    assert_eq!(t.token_bytes(10_000), None);
}

proptest! {
    #[test]
    fn decode_inverts_encode(s in "\\PC*|[ \\t\\n]{0,8}\\p{L}{0,4}[0-9]{0,6}") {
        let t = rich();
        prop_assert_eq!(t.decode(&t.encode(&s, false, false)), s.clone());
        prop_assert_eq!(t.decode(&t.encode(&s, true, true)), s.clone());
    }

    #[test]
    fn any_string_round_trips(s in any::<String>()) {
        let t = rich();
        prop_assert_eq!(t.decode(&t.encode(&s, false, false)), s);
    }

    #[test]
    fn words_cover_the_text(s in any::<String>()) {
        for pre in [PreTokenizer::Gpt2, PreTokenizer::DigitsThenGpt2] {
            let w = words(&s, pre);
            prop_assert!(w.iter().all(|x| !x.is_empty()));
            prop_assert_eq!(w.concat(), s.clone());
        }
    }
}
