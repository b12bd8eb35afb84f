# Databricks notebook source
# MAGIC %md
# MAGIC # Checks: lab_tokenizer
# MAGIC
# MAGIC Run by the lab's last cell. The reference is Hugging Face `tokenizers`' `BpeTrainer`
# MAGIC with the lab's settings (SmolLM2's pre-tokenizer, the 256 byte characters as the initial
# MAGIC alphabet, no minimum frequency), and also `realizar.BpeTokenizer.train`, the course's Rust
# MAGIC trainer, when the `realizar` wheel is installed. Each check calls your functions itself.

# COMMAND ----------

import collections as _collections
import time as _time

from tokenizers import Tokenizer as _Tokenizer
from tokenizers import decoders as _decoders
from tokenizers import models as _models
from tokenizers import trainers as _trainers

try:
    import realizar as _realizar
except ImportError:  # on Databricks without the course's wheel: the HF reference alone
    _realizar = None

lab = Lab("course4/week1/lab_tokenizer")
# Task 6's budget: the solution's incremental trainer took 1.5 s on an idle 2-core CI
# machine and 5 s on a very loaded one; recounting every pair after every merge takes about
# ten times that.
_SECONDS = 20.0
_UNICODE = [
    "Ünïcödé ça va? Grüße aus Köln",
    "東京タワー 🗼 and 👩‍💻 (a ZWJ sequence)",
    "Ελληνικά, русский, हिन्दी, العربية",
    "tabs\tand\nnewlines\r\n  and   spaces ",
    "",
]


def _need(*values):
    for value in values:
        if is_blank(value):
            raise BlankNotFilledError("a FILL_IN is still there")


def _reference(texts, vocab_size):
    tok = _Tokenizer(_models.BPE())
    tok.pre_tokenizer = _pre
    tok.decoder = _decoders.ByteLevel()
    trainer = _trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    ids = tok.get_vocab()
    vocab = sorted(ids, key=lambda t: ids[t])
    return tok, vocab


def _reference_merges(tok):
    import json as _json  # noqa: PLC0415

    return [tuple(m) for m in _json.loads(tok.to_str())["model"]["merges"]]


def _trained(texts, vocab_size):
    got = train_bpe(texts, vocab_size)
    _need(got)
    got_vocab, got_merges = got
    _need(got_vocab, got_merges)
    return list(got_vocab), [tuple(m) for m in got_merges]


def _compare(texts, vocab_size, what):
    got_vocab, got_merges = _trained(texts, vocab_size)
    ref, ref_vocab = _reference(texts, vocab_size)
    ref_merges = _reference_merges(ref)
    assert got_vocab[:256] == ALPHABET, f"{what}: the first 256 tokens should be ALPHABET in order"
    assert len(got_merges) == len(ref_merges), (
        f"{what}: {len(got_merges)} merges, the reference learns {len(ref_merges)}"
    )
    for i, (g, r) in enumerate(zip(got_merges, ref_merges, strict=True)):
        assert g == r, f"{what}: merge {i} is {g}, the reference's is {r}"
    assert got_vocab == ref_vocab, f"{what}: the merges agree but the vocabulary ids do not"
    if _realizar is not None:
        crate = _realizar.BpeTokenizer.train(list(texts), vocab_size=vocab_size)
        assert crate.merges == got_merges, f"{what}: realizar's trainer learns other merges"
    return got_vocab, got_merges, ref


@lab.check(
    "Task 1: count_words counts each word as a tuple of characters",
    "loop over pre_tokenize(text) for every text; the key is tuple(word)",
)
def _():
    got = count_words(CORPUS[:8])
    _need(got)
    expected = _collections.Counter(tuple(w) for t in CORPUS[:8] for w in pre_tokenize(t))
    assert isinstance(got, dict), f"count_words should return a dict, got {type(got).__name__}"
    assert dict(got) == dict(expected), (
        f"{len(got)} distinct words, {sum(got.values())} in all; "
        f"expected {len(expected)} and {sum(expected.values())}"
    )
    assert count_words([]) == {}, "no text, no words"


@lab.check(
    "Task 2: count_pairs weights each adjacent pair by its word's count",
    "zip(word, word[1:]) gives the adjacent pairs; add the word's count, not 1",
)
def _():
    got = count_pairs({("a", "b", "c"): 2, ("b", "c"): 1, ("x",): 5})
    _need(got)
    assert dict(got) == {("a", "b"): 2, ("b", "c"): 3}, f"on the worked example: {got}"
    words = count_words(CORPUS[:8])
    _need(words)
    pairs = count_pairs(words)
    total = sum(n * (len(w) - 1) for w, n in words.items())
    assert sum(pairs.values()) == total, f"{sum(pairs.values())} pairs counted, expected {total}"


@lab.check(
    "Task 3: merge_word joins a pair left to right without overlap",
    "walk the symbols with an index; on a match append the joined symbol and skip two",
)
def _():
    cases = [
        ((("a", "a", "a"), ("a", "a")), ("aa", "a")),
        ((("a", "a", "a", "a"), ("a", "a")), ("aa", "aa")),
        ((("a", "b", "a", "b"), ("a", "b")), ("ab", "ab")),
        ((("Ġ", "t", "h", "e"), ("t", "h")), ("Ġ", "th", "e")),
        ((("x", "y"), ("a", "b")), ("x", "y")),
        ((("a",), ("a", "a")), ("a",)),
        (((), ("a", "b")), ()),
    ]
    for (symbols, pair), expected in cases:
        got = merge_word(symbols, pair)
        _need(got)
        assert tuple(got) == expected, f"merge_word({symbols}, {pair}) gave {got}"


@lab.check(
    "Task 4: train_bpe learns BpeTrainer's merges and ids",
    "most frequent pair first; ties to the smaller (id left, id right); the new token gets "
    "the next id; update the pair counts of the words that changed",
)
def _():
    _compare(["xy ab", "ab xy"], 300, "a tie")
    _compare(["aaaa aaa aa a"], 300, "overlapping pairs")
    _compare(_UNICODE * 2, 400, "unicode text")
    _compare(CORPUS, 600, "CORPUS")


@lab.check(
    "Task 5: encode gives the reference's ids, decode restores any text",
    "per word: merge the adjacent pair with the lowest merge rank until none is a merge; "
    "decode maps characters to bytes (CHAR_TO_BYTE), then bytes.decode('utf-8')",
)
def _():
    got_vocab, got_merges, ref = _compare(CORPUS, 600, "CORPUS")
    for text in [*DOCS[200:203], *_UNICODE]:
        ids = encode(text, got_vocab, got_merges)
        _need(ids)
        expected = ref.encode(text).ids
        assert list(ids) == expected, (
            f"{len(ids)} ids for a text of {len(text)} characters, the reference has "
            f"{len(expected)}; first difference at token "
            f"{next((i for i, (a, b) in enumerate(zip(ids, expected, strict=False)) if a != b), 0)}"
        )
        back = decode(ids, got_vocab)
        _need(back)
        assert back == text, f"decode(encode(text)) changed {text[:40]!r} into {back[:40]!r}"


@lab.check(
    f"Task 6: train_bpe on the larger corpus BIG, right and under {_SECONDS:.0f} s",
    "recounting every pair after every merge is what is slow: keep the counts, and for each "
    "merge update only the words that contain the pair (an index pair -> words helps)",
)
def _():
    start = _time.perf_counter()
    got_vocab, got_merges = _trained(BIG, 1500)
    seconds = _time.perf_counter() - start
    print(f"      train_bpe(BIG, 1500): {len(got_merges)} merges in {seconds:.2f} s")
    ref, ref_vocab = _reference(BIG, 1500)
    assert got_merges == _reference_merges(ref), "the merges differ from the reference's"
    assert got_vocab == ref_vocab, "the vocabulary differs from the reference's"
    assert seconds < _SECONDS, f"{seconds:.1f} s is over the budget of {_SECONDS:.0f} s"


# COMMAND ----------

lab.summary()
