"""realizar's byte-level BPE (SmolLM2's tokenizer, from the GGUF file) against references.

The ids come from a running ``realizar serve`` through ``POST /tokenize`` (the route
llama.cpp's server has), so what is tested is what the server feeds the model. The
reference is Hugging Face ``tokenizers`` rebuilt from the same file's vocabulary and merges
with SmolLM2's pre-tokenizer (see smollm2_reference.py): on the committed corpus
(fixtures/tokenizer_corpus.json: unicode, CJK, emoji with ZWJ sequences, code, long digit
runs, whitespace runs, special-token text, the empty string) and on Hypothesis-drawn
text. Decoding inverts encoding on any text whose bytes all have a token.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from smollm2_reference import gguf_path, hf_encode, hf_tokenizer, metadata
from test_realizar_server import Server, start_server

CORPUS = json.loads(
    (Path(__file__).parent / "fixtures" / "tokenizer_corpus.json").read_text(encoding="utf-8")
)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = start_server(gguf_path())
    yield srv
    assert srv.stop() == 0


def tokenize(server: Server, text: str, *, parse_special: bool = True) -> list[int]:
    r = requests.post(
        f"{server.url}/tokenize",
        json={"content": text, "add_special": False, "parse_special": parse_special},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()["tokens"]


def detokenize(server: Server, ids: list[int]) -> str:
    r = requests.post(f"{server.url}/detokenize", json={"tokens": ids}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["content"]


@functools.cache
def hf_plain() -> Tokenizer:
    """The HF tokenizer without the control tokens (llama.cpp's parse_special=False):
    the same model and pre-tokenizer, no added tokens."""
    spec = json.loads(hf_tokenizer().to_str())
    spec["added_tokens"] = []
    return Tokenizer.from_str(json.dumps(spec))


def test_corpus_equals_hugging_face(server: Server) -> None:
    plain = hf_plain()
    mismatches = []
    for text in CORPUS:
        if tokenize(server, text) != hf_encode(text):
            mismatches.append(("special", text))
        if tokenize(server, text, parse_special=False) != plain.encode(text).ids:
            mismatches.append(("plain", text))
    assert mismatches == [], f"{len(mismatches)} of {2 * len(CORPUS)} differ: {mismatches}"


def test_special_tokens_and_numbers(server: Server) -> None:
    tokens = metadata()["tokenizer.ggml.tokens"]
    im_start = tokens.index("<|im_start|>")
    assert tokenize(server, "<|im_start|>") == [im_start]
    assert im_start not in tokenize(server, "<|im_start|>", parse_special=False)
    # SmolLM2 splits every digit: 2024 is four tokens.
    assert len(tokenize(server, "2024")) == 4
    assert tokenize(server, "") == []


def test_corpus_round_trips(server: Server) -> None:
    for text in CORPUS:
        assert detokenize(server, tokenize(server, text, parse_special=False)) == text
        assert detokenize(server, tokenize(server, text)) == text


# Bytes SmolLM2's vocabulary has no token for (llama.cpp and HF drop them alike).
MISSING_BYTES = {0x04, 0x06, 0x13, 0x14, 0x16, 0x1D}


def representable(text: str) -> bool:
    return not any(b in MISSING_BYTES or b >= 0xF1 for b in text.encode())


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=0, max_size=40))
def test_any_text_equals_hugging_face_and_round_trips(server: Server, text: str) -> None:
    ids = tokenize(server, text, parse_special=False)
    assert ids == hf_plain().encode(text).ids
    if representable(text):
        assert detokenize(server, ids) == text


def test_bad_requests(server: Server) -> None:
    r = requests.post(f"{server.url}/tokenize", json={"content": 5}, timeout=10)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "content"
    r = requests.post(f"{server.url}/detokenize", json={"tokens": [10**9]}, timeout=10)
    assert r.status_code == 400
    assert "vocabulary" in r.json()["error"]["message"]


def test_prompts_equal_llama_cpp(server: Server) -> None:
    """llama.cpp 0.3.36's own ids (``llm.tokenize(..., add_bos=False, special=True)``,
    recorded in fixtures/llamacpp_greedy.json by llamacpp_reference_gen.py)."""
    fixture = Path(__file__).parent / "fixtures" / "llamacpp_greedy.json"
    cases = json.loads(fixture.read_text(encoding="utf-8"))["cases"]
    assert len(cases) >= 10
    for case in cases:
        assert tokenize(server, case["prompt"]) == case["prompt_ids"], case["prompt"]
