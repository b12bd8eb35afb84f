"""An independent NumPy forward pass of all-MiniLM-L6-v2 (BERT + mean pooling + L2).

This is the reference realizar's Rust encoder is checked against, written the way the
PyTorch model computes, not the way realizar does: weights straight from the
safetensors file (PyTorch ``out x in`` layout, ``x @ W.T``), a right-padded batch with an
additive attention mask, separate query/key/value projections, and the tokenizer from
the Hugging Face ``tokenizers`` package. Nothing is shared with the Rust code but the
weights.

``dtype=np.float64`` gives the accuracy reference (exact erf from ``math.erf``);
``np.float32`` is the speed baseline (what sentence-transformers computes in, with an
erf approximation of absolute error below 1.5e-7, see `_erf_fast`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Tokenizer

Array = npt.NDArray[Any]

_erf_exact = np.frompyfunc(math.erf, 1, 1)


def _erf_fast(x: Array) -> Array:
    """Abramowitz & Stegun 7.1.26: |error| < 1.5e-7, vectorised in the input dtype."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-a * a))


class MiniLMReference:
    """all-MiniLM-L6-v2 (any BERT sentence encoder with mean pooling) in NumPy."""

    def __init__(self, model_dir: str | Path, dtype: type[np.floating[Any]] = np.float64) -> None:
        model_dir = Path(model_dir)
        self.dtype = dtype
        self.config = json.loads((model_dir / "config.json").read_text())
        st_config = model_dir / "sentence_bert_config.json"
        self.max_seq_length = (
            json.loads(st_config.read_text())["max_seq_length"] if st_config.is_file() else 512
        )
        self.w = {
            k: v.astype(dtype) for k, v in load_file(str(model_dir / "model.safetensors")).items()
        }
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_seq_length)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest
        self.heads = self.config["num_attention_heads"]
        self.eps = self.config["layer_norm_eps"]

    def tokenize(self, texts: list[str]) -> tuple[Array, Array]:
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        return ids, mask

    def _ln(self, x: Array, name: str) -> Array:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * self.w[f"{name}.weight"] + self.w[
            f"{name}.bias"
        ]

    def _linear(self, x: Array, name: str) -> Array:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def _gelu(self, x: Array) -> Array:
        z = x / math.sqrt(2.0)
        erf = _erf_exact(z).astype(self.dtype) if self.dtype == np.float64 else _erf_fast(z)
        return 0.5 * x * (1.0 + erf)

    def hidden_states(self, ids: Array, mask: Array) -> Array:
        """Last hidden states, (batch, seq, hidden)."""
        w = self.w
        b, s = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(s)][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._ln(x, "embeddings.LayerNorm")
        hidden = x.shape[-1]
        d = hidden // self.heads
        # Additive mask: padded keys get a large negative score before the softmax.
        bias = ((1.0 - mask[:, None, None, :]) * np.finfo(self.dtype).min).astype(self.dtype)
        for layer in range(self.config["num_hidden_layers"]):
            p = f"encoder.layer.{layer}."

            def heads(t: Array) -> Array:
                return t.reshape(b, s, self.heads, d).transpose(0, 2, 1, 3)

            q = heads(self._linear(x, p + "attention.self.query"))
            k = heads(self._linear(x, p + "attention.self.key"))
            v = heads(self._linear(x, p + "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
            scores = scores - scores.max(-1, keepdims=True)
            e = np.exp(scores)
            probs = e / e.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, hidden)
            x = self._ln(
                x + self._linear(ctx, p + "attention.output.dense"),
                p + "attention.output.LayerNorm",
            )
            h = self._gelu(self._linear(x, p + "intermediate.dense"))
            x = self._ln(x + self._linear(h, p + "output.dense"), p + "output.LayerNorm")
        return x

    def encode(self, texts: list[str], batch_size: int = 32, normalize: bool = True) -> Array:
        """Sentence embeddings, (len(texts), hidden), in this reference's dtype.

        Like sentence-transformers, texts are sorted by length (longest first) before
        batching so a batch pads to a similar length; results come back in input order.
        """
        hidden = self.config["hidden_size"]
        out = np.zeros((len(texts), hidden), dtype=self.dtype)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = self.tokenize([texts[i] for i in idx])
            h = self.hidden_states(ids, mask)
            m = mask[..., None].astype(self.dtype)
            pooled = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            if normalize:
                pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[idx] = pooled
        return out
