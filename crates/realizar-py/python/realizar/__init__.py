"""realizar: load real models from files and run them with trueno's kernels."""

from __future__ import annotations

import os
from typing import Any

from realizar._realizar import (
    BpeTokenizer,
    Encoder,
    Encoding,
    TabularModel,
    Tokenizer,
    __source_hash__,
    quantize_gguf,
)
from realizar.llm import LLM


def export_sklearn(estimator: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted scikit-learn estimator to ``path`` (see `realizar.export`)."""
    # scikit-learn and safetensors are needed only to export, not to load or serve.
    from realizar.export import export_sklearn as export  # noqa: PLC0415

    export(estimator, path)


__all__ = [
    "LLM",
    "BpeTokenizer",
    "Encoder",
    "Encoding",
    "TabularModel",
    "Tokenizer",
    "__source_hash__",
    "export_sklearn",
    "quantize_gguf",
]
