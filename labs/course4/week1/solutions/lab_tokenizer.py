# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: a byte-level BPE tokenizer, trained and used (solution)
# MAGIC
# MAGIC Course 4, week 1. You will write the two halves of a byte-level BPE tokenizer, the
# MAGIC kind SmolLM2 and GPT-2 use: **training** (learn merges from a corpus, the most frequent
# MAGIC adjacent pair first) and **encoding** (cut new text into tokens with those merges). The
# MAGIC checks compare your merges and ids with Hugging Face `tokenizers`' `BpeTrainer` trained
# MAGIC on the same corpus with the same settings (and with `realizar.BpeTokenizer.train`, the
# MAGIC course's Rust trainer, where the wheel is installed), round-trip unicode text, and time
# MAGIC your trainer on the whole knowledge base.
# MAGIC
# MAGIC The rules, which are `BpeTrainer`'s:
# MAGIC
# MAGIC - text is split into **words** by `pre_tokenize` (given below: SmolLM2's pre-tokenizer,
# MAGIC   which already writes each byte as one character, a space as `Ġ`); merges never cross
# MAGIC   a word boundary; a word that occurs `n` times counts `n` times;
# MAGIC - the vocabulary starts as the 256 byte characters `ALPHABET` (sorted by code point), ids
# MAGIC   0-255 in that order; each new token gets the next id;
# MAGIC - each step merges the adjacent pair with the **highest count**; on a tie, the pair whose
# MAGIC   `(id of left, id of right)` is smallest; occurrences are merged left to right without
# MAGIC   overlap (`a a a` becomes `aa a`); stop at `vocab_size` tokens or when no pair is left.
# MAGIC
# MAGIC Replace every `FILL_IN`, run top to bottom and read the checks at the end. Locally:
# MAGIC `nox -s grade -- labs/course4/week1/lab_tokenizer.py`.

# COMMAND ----------

# MAGIC %run ../../../_labkit

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup (run as is)

# COMMAND ----------

import heapq
import itertools
import sys
from collections import defaultdict
from pathlib import Path

from tokenizers import pre_tokenizers

_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "knowledge_base.py").is_file())
sys.path.insert(0, str(_root / "data"))
import knowledge_base  # noqa: E402 (found through sys.path above)
import text_samples  # noqa: E402

DOCS = [d.text for d in knowledge_base.generate().documents]
CORPUS = DOCS[:60]  # the corpus of tasks 1-5
# Task 6's corpus: seeded pseudo-words, about ten times as many distinct words as DOCS.
BIG = text_samples.synthetic_corpus()

_pre = pre_tokenizers.Sequence(
    [
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ]
)


def pre_tokenize(text):
    """The words of ``text``, each byte already written as one character (a space is Ġ)."""
    return [word for word, _ in _pre.pre_tokenize_str(text)]


ALPHABET = sorted(pre_tokenizers.ByteLevel.alphabet())
# GPT-2's byte -> character table: printable Latin-1 bytes stand for themselves, the other 68
# bytes are U+0100 onwards in byte order. CHAR_TO_BYTE turns token text back into bytes.
_printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
_shifted = [b for b in range(256) if b not in _printable]
BYTE_TO_CHAR = {b: chr(b) for b in _printable} | {b: chr(256 + i) for i, b in enumerate(_shifted)}
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}
assert sorted(BYTE_TO_CHAR.values()) == ALPHABET
print(f"{len(CORPUS)} documents for tasks 1-5; task 6: {sum(map(len, BIG)):,} characters")
print(pre_tokenize("Hello world, 2024!"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 1: count the words
# MAGIC
# MAGIC `count_words(texts)` returns a dict from each word, as a **tuple of its characters**, to
# MAGIC the number of times it occurs in all of `texts` (`"Ġthe"` -> `("Ġ", "t", "h", "e")`).

# COMMAND ----------


def count_words(texts):
    counts = defaultdict(int)
    for text in texts:
        for word in pre_tokenize(text):
            counts[tuple(word)] += 1
    return dict(counts)


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: count the pairs
# MAGIC
# MAGIC `count_pairs(word_counts)` returns a dict from each adjacent pair of symbols
# MAGIC `(left, right)` to how often it occurs, each word weighted by its count.

# COMMAND ----------


def count_pairs(word_counts):
    pairs = defaultdict(int)
    for word, n in word_counts.items():
        for pair in itertools.pairwise(word):
            pairs[pair] += n
    return dict(pairs)


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 3: merge one pair in a word
# MAGIC
# MAGIC `merge_word(symbols, pair)` returns the tuple of symbols with every occurrence of `pair`
# MAGIC joined into one symbol, scanning left to right without overlap:
# MAGIC `merge_word(("a", "a", "a"), ("a", "a")) == ("aa", "a")`.

# COMMAND ----------


def merge_word(symbols, pair):
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: train
# MAGIC
# MAGIC `train_bpe(texts, vocab_size)` returns `(vocab, merges)`: `vocab` the list of token
# MAGIC texts by id (the 256 of `ALPHABET` first), `merges` the list of `(left, right)` pairs in
# MAGIC the order they were learnt. Follow the rules at the top. Task 6 times this function on
# MAGIC a larger corpus: recounting every pair after every merge is too slow there; only the
# MAGIC words that contain the merged pair change.

# COMMAND ----------


def train_bpe(texts, vocab_size):
    vocab = list(ALPHABET)
    ids = {t: i for i, t in enumerate(vocab)}
    word_counts = count_words(texts)
    words = list(word_counts)
    weights = list(word_counts.values())
    pairs = defaultdict(int)
    where = defaultdict(set)  # pair -> indexes of the words that (may) contain it
    for i, word in enumerate(words):
        for pair in itertools.pairwise(word):
            pairs[pair] += weights[i]
            where[pair].add(i)
    # A max-heap by count, then the smaller ids; an entry whose count is stale is re-pushed.
    heap = [(-n, ids[a], ids[b], a, b) for (a, b), n in pairs.items()]
    heapq.heapify(heap)
    merges = []
    while len(vocab) < vocab_size and heap:
        neg, ia, ib, a, b = heapq.heappop(heap)
        n = pairs.get((a, b), 0)
        if n != -neg:
            if n > 0:
                heapq.heappush(heap, (-n, ia, ib, a, b))
            continue
        joined = a + b
        if joined not in ids:
            ids[joined] = len(vocab)
            vocab.append(joined)
        merges.append((a, b))
        changed = set()
        for i in where.pop((a, b), ()):
            old = words[i]
            new = merge_word(old, (a, b))
            if new == old:
                continue
            for pair in itertools.pairwise(old):
                pairs[pair] -= weights[i]
                changed.add(pair)
            for pair in itertools.pairwise(new):
                pairs[pair] += weights[i]
                where[pair].add(i)
                changed.add(pair)
            words[i] = new
        for pair in changed:
            if pairs[pair] > 0 and pair != (a, b):
                heapq.heappush(heap, (-pairs[pair], ids[pair[0]], ids[pair[1]], *pair))
    return vocab, merges


vocab, merges = train_bpe(CORPUS, 600)
print(len(vocab), "tokens; first merges:", merges[:8])

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 5: encode and decode
# MAGIC
# MAGIC `encode(text, vocab, merges)` returns the token ids of `text`: for each word of
# MAGIC `pre_tokenize(text)`, start from its characters and repeatedly merge the adjacent pair
# MAGIC that was learnt **earliest** (lowest position in `merges`) until no adjacent pair is a
# MAGIC merge; then look the symbols up in `vocab`. `decode(ids, vocab)` turns ids back into the
# MAGIC original string (token characters -> bytes with `CHAR_TO_BYTE` -> UTF-8).

# COMMAND ----------


def encode(text, vocab, merges):
    rank = {pair: r for r, pair in enumerate(merges)}
    ids = {t: i for i, t in enumerate(vocab)}
    out = []
    for word in pre_tokenize(text):
        symbols = tuple(word)
        while len(symbols) > 1:
            best = min(itertools.pairwise(symbols), key=lambda p: rank.get(p, len(rank)))
            if best not in rank:
                break
            symbols = merge_word(symbols, best)
        out.extend(ids[s] for s in symbols)
    return out


def decode(ids, vocab):
    data = bytes(CHAR_TO_BYTE[c] for i in ids for c in vocab[i])
    return data.decode("utf-8", errors="replace")


sample = "Kestrel's E04 code: the battery is too hot. Café ☕ 東京"
ids = encode(sample, vocab, merges)
print(len(ids), "tokens:", [vocab[i] for i in ids])
print(decode(ids, vocab))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 6: train on a larger corpus
# MAGIC
# MAGIC Train on `BIG` (100 generated documents, thousands of distinct words) with
# MAGIC `vocab_size = 1500`. The check times it again and compares with the reference.

# COMMAND ----------

big_vocab, big_merges = train_bpe(BIG, 1500)
print(len(big_vocab), "tokens,", len(big_merges), "merges")

# COMMAND ----------

# MAGIC %run ../checks/lab_tokenizer
