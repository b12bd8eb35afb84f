"""``realizar.BpeTokenizer.train`` (the crate's ``bpe::train``) against Hugging Face's trainer.

The reference is ``tokenizers``' ``BpeTrainer`` with the settings the crate has: the byte
alphabet as ``initial_alphabet``, SmolLM2's pre-tokenizer (each digit on its own, then
GPT-2's byte-level regex) or GPT-2's alone, the same ``vocab_size``, ``min_frequency`` and
special tokens. On the project's knowledge base, on the unicode fixture corpus and on
Hypothesis-drawn corpora the vocabulary (token -> id), the merges in order and the ids of
encoded text are equal. ``LLM.tokenizer`` is checked against the GGUF file read by ``gguf``.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

import realizar
from smollm2_reference import gguf_path, hf_encode, metadata

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "data"))
import knowledge_base

CORPUS: list[str] = json.loads(
    (Path(__file__).parent / "fixtures" / "tokenizer_corpus.json").read_text(encoding="utf-8")
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@functools.cache
def kb_texts() -> tuple[str, ...]:
    return tuple(d.text for d in knowledge_base.generate().documents)


def hf_train(
    texts: list[str] | tuple[str, ...],
    vocab_size: int,
    *,
    min_frequency: int = 0,
    special_tokens: list[str] | None = None,
    pre_tokenizer: str = "smollm",
) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre_tokenizer == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level]
        )
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special_tokens or [],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    return tok


def hf_merges(tok: Tokenizer) -> list[tuple[str, str]]:
    merges: list[Any] = json.loads(tok.to_str())["model"]["merges"]
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in merges]


def assert_same(ours: realizar.BpeTokenizer, ref: Tokenizer, texts: list[str]) -> None:
    assert {t: i for i, t in enumerate(ours.tokens)} == ref.get_vocab()
    assert ours.merges == hf_merges(ref)
    for text in texts:
        ids = ours.encode(text)
        assert ids == ref.encode(text).ids, text
        assert ours.decode(ids) == text


@pytest.mark.parametrize("vocab_size", [256 + 3, 300, 1000, 3000])
def test_knowledge_base_merges_and_ids_equal_bpetrainer(vocab_size: int) -> None:
    texts = kb_texts()
    ours = realizar.BpeTokenizer.train(texts, vocab_size=vocab_size, special_tokens=SPECIALS)
    ref = hf_train(texts, vocab_size, special_tokens=SPECIALS)
    assert_same(ours, ref, [*texts[:20], *CORPUS])
    assert ours.special_tokens == SPECIALS
    assert ours.encode("a<|im_end|>b")[1] == SPECIALS.index("<|im_end|>")


@pytest.mark.parametrize("pre_tokenizer", ["smollm", "gpt-2"])
@pytest.mark.parametrize("min_frequency", [0, 4, 10])
def test_unicode_corpus_with_settings(pre_tokenizer: str, min_frequency: int) -> None:
    texts = CORPUS * 3
    ours = realizar.BpeTokenizer.train(
        texts, vocab_size=800, min_frequency=min_frequency, pre_tokenizer=pre_tokenizer
    )
    ref = hf_train(texts, 800, min_frequency=min_frequency, pre_tokenizer=pre_tokenizer)
    assert_same(ours, ref, CORPUS)
    if min_frequency > 3:  # every pair of CORPUS * 3 occurs at least 3 times
        assert len(ours.merges) < len(hf_merges(hf_train(texts, 800, pre_tokenizer=pre_tokenizer)))


def test_digits_are_never_merged_by_smollm_pre_tokenizer() -> None:
    texts = ["2024 2025 12345 9999"] * 50
    ours = realizar.BpeTokenizer.train(texts, vocab_size=400)
    assert not [m for m in ours.merges if any(c.isdigit() for c in m[0] + m[1])]
    gpt2 = realizar.BpeTokenizer.train(texts, vocab_size=400, pre_tokenizer="gpt-2")
    assert len(gpt2.encode("2024")) == 1


text_st = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("aabbcdeé 東京🙂\n\t'0123sStTrRe!?")),
        st.characters(codec="utf-8", exclude_categories=["Cs"]),
    ),
    max_size=40,
)


@given(corpus=st.lists(text_st, max_size=12), extra=st.integers(0, 120), probe=text_st)
@settings(max_examples=150, deadline=None)
def test_any_corpus_equals_bpetrainer(corpus: list[str], extra: int, probe: str) -> None:
    ours = realizar.BpeTokenizer.train(corpus, vocab_size=256 + extra)
    ref = hf_train(corpus, 256 + extra)
    assert_same(ours, ref, [*corpus, probe])


def test_empty_inputs() -> None:
    for corpus in ([], [""], ["", ""]):
        tok = realizar.BpeTokenizer.train(corpus, vocab_size=1000)
        assert tok.vocab_size == 256
        assert tok.merges == []
        assert tok.encode("") == []
        text = "round trip: ÿ\x00 東京 🙂"
        assert tok.decode(tok.encode(text)) == text
        assert len(tok.encode(text)) == len(text.encode())


def test_bad_arguments_are_errors_naming_the_value() -> None:
    train = realizar.BpeTokenizer.train
    with pytest.raises(TypeError, match="single str"):
        train("not a list", vocab_size=300)
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        train(["ok", 3], vocab_size=300)  # ty: ignore[invalid-argument-type]
    with pytest.raises(ValueError, match="vocab_size 100"):
        train(["x"], vocab_size=100)
    with pytest.raises(ValueError, match="vocab_size must be >= 0"):
        train(["x"], vocab_size=-1)
    with pytest.raises(ValueError, match="min_frequency"):
        train(["x"], vocab_size=300, min_frequency=-2)
    with pytest.raises(ValueError, match="twice"):
        train(["x"], vocab_size=300, special_tokens=["<s>", "<s>"])
    with pytest.raises(ValueError, match="empty"):
        train(["x"], vocab_size=300, special_tokens=[""])
    with pytest.raises(ValueError, match="byte token"):
        train(["x"], vocab_size=300, special_tokens=["a"])
    with pytest.raises(ValueError, match="not supported"):
        train(["x"], vocab_size=300, pre_tokenizer="whitespace")
    with pytest.raises(ValueError, match="limit"):
        train(["x"], vocab_size=1 << 30)
    tok = train(["abc"], vocab_size=300)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([tok.vocab_size])
    with pytest.raises(ValueError, match="not a token id"):
        tok.decode([-1])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.token_bytes(10**6)
    with pytest.raises(TypeError, match="text must be str"):
        tok.encode(b"bytes")  # ty: ignore[invalid-argument-type]
    assert tok.id_to_token(-1) is None
    assert tok.id_to_token(10**9) is None


def test_model_tokenizer_is_the_gguf_files() -> None:
    meta = metadata()
    tok = realizar.LLM.load(gguf_path()).tokenizer
    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    assert tok.tokens == tokens
    assert tok.merges == [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    control = [t for t, k in zip(tokens, meta["tokenizer.ggml.token_type"], strict=True) if k == 3]
    assert tok.special_tokens == control
    for text in CORPUS:
        assert tok.encode(text, add_special=False) == hf_encode(text)
    assert tok.is_special(tokens.index("<|im_end|>"))
    assert not tok.is_special(tokens.index("Ġthe"))
    assert tok.token_bytes(tokens.index("Ġthe")) == b" the"
