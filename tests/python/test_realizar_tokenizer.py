"""realizar.Tokenizer against the Hugging Face `tokenizers` package on the same files."""

from __future__ import annotations

import shutil
from pathlib import Path

import hypothesis
import hypothesis.strategies as st
import pytest
import tokenizers

import realizar
from realizar import models

CORPUS = [
    "",
    " ",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "unaffable tokenization of UNSEEN words: xylophonist's",
    "Café crème brûlée à la Zoë — naïve résumé",
    "Ångström, Øresund, Straße, İstanbul, ǅemal",
    "北京是中国的首都。我爱自然语言处理\uff01",
    "日本語のテキストとカタカナ、한국어 문장도 있습니다.",
    "Emoji: 😀🎉👍🏽 and 🇫🇷 flags ❤️",
    "Tabs\tand\nnewlines\r\nand\u00a0non-breaking\u2003spaces",
    "control\u0000chars\u0007and\u200bzero\u200dwidth\ufeffbom\ufffd",
    "punctuation!!! ??? ... (brackets) [not special] {braces} <angle> @#$%^&*_+=~`|\\/",
    "special tokens inline: [CLS] a [SEP] b [MASK] c [PAD] [UNK] [cls]",
    "numbers 3.14159 1,000,000 2024-01-01 0x1F",
    "Ελληνικά και Русский текст, עברית, العربية",
    "a" * 150,
    "supercalifragilisticexpialidocious " * 3,
    "word " * 400,
    "Mixed: naïve café 北京 😀 [SEP] end",
]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return models.default_model_dir()


@pytest.fixture(scope="module")
def ours(model_dir: Path):
    return realizar.Tokenizer.load(model_dir)


@pytest.fixture(scope="module")
def reference(model_dir: Path, ours):
    tok = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(ours.max_length)
    tok.no_padding()
    return tok


def test_max_length_is_the_sentence_transformers_one(ours) -> None:
    # sentence_bert_config.json says 256; tokenizer.json's own truncation (128) is not
    # what the embedding model is served with.
    assert ours.max_length == 256
    assert ours.vocab_size == 30522


@pytest.mark.parametrize("text", CORPUS)
def test_single_text_matches_hugging_face(ours, reference, text: str) -> None:
    want = reference.encode(text)
    got = ours.encode(text)
    assert list(got.ids) == want.ids
    assert list(got.attention_mask) == want.attention_mask
    assert list(got.type_ids) == want.type_ids


def test_batch_padding_matches_hugging_face(ours, reference) -> None:
    reference.enable_padding(pad_id=0, pad_token="[PAD]")
    try:
        want = reference.encode_batch(CORPUS)
    finally:
        reference.no_padding()
    got = ours.encode_batch(CORPUS)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert list(g.ids) == w.ids
        assert list(g.attention_mask) == w.attention_mask


def test_long_text_is_truncated_with_cls_and_sep(ours) -> None:
    enc = ours.encode("word " * 1000)
    assert len(enc.ids) == 256
    assert enc.ids[0] == ours.token_to_id("[CLS]")
    assert enc.ids[-1] == ours.token_to_id("[SEP]")


def test_empty_text_and_empty_batch(ours) -> None:
    assert list(ours.encode("").ids) == [101, 102]
    assert ours.encode_batch([]) == []


def test_wordpiece_pieces(ours) -> None:
    assert ours.tokenize("unaffable") == ["una", "##ffa", "##ble"]
    assert ours.id_to_token(100) == "[UNK]"


def test_max_length_override(model_dir: Path) -> None:
    tok = realizar.Tokenizer.load(model_dir, max_length=8)
    assert len(tok.encode("one two three four five six seven eight nine").ids) == 8
    with pytest.raises(ValueError, match="max_length"):
        realizar.Tokenizer.load(model_dir, max_length=1)


def test_non_str_is_a_type_error(ours) -> None:
    with pytest.raises(TypeError, match="int"):
        ours.encode(42)
    with pytest.raises(TypeError, match=r"texts\[1\] must be str, got bytes"):
        ours.encode_batch(["ok", b"bytes"])
    with pytest.raises(TypeError, match="single str"):
        ours.encode_batch("not a list")


def test_vocab_txt_alone_matches(tmp_path: Path, model_dir: Path, ours) -> None:
    for name in ("vocab.txt", "tokenizer_config.json", "sentence_bert_config.json"):
        shutil.copy(model_dir / name, tmp_path / name)
    from_txt = realizar.Tokenizer.load(tmp_path)
    for text in CORPUS:
        assert list(from_txt.encode(text).ids) == list(ours.encode(text).ids)


def test_missing_vocabulary_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing vocabulary") as e:
        realizar.Tokenizer.load(tmp_path)
    assert str(tmp_path) in str(e.value)
    with pytest.raises(FileNotFoundError):
        realizar.Tokenizer.load(tmp_path / "nope")


def test_corrupt_tokenizer_json_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "WordPiece", "vocab": ')
    with pytest.raises(ValueError, match="invalid JSON") as e:
        realizar.Tokenizer.load(tmp_path)
    assert "tokenizer.json" in str(e.value)


@pytest.mark.parametrize("seed_alphabet", ["ascii", "unicode"])
def test_random_text_matches_hugging_face(ours, reference, seed_alphabet: str) -> None:
    alphabet = (
        st.characters(min_codepoint=0, max_codepoint=127)
        if seed_alphabet == "ascii"
        else st.characters(codec="utf-8")
    )

    @hypothesis.settings(max_examples=300, deadline=None, derandomize=True)
    @hypothesis.given(st.text(alphabet=alphabet, max_size=80))
    def check(text: str) -> None:
        assert list(ours.encode(text).ids) == reference.encode(text).ids, repr(text)

    check()
