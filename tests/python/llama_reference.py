"""An independent Llama forward pass in NumPy, on weights the `gguf` package dequantises.

This is the reference realizar's LLM is checked against: it shares no code with realizar
(the `gguf` package reads the file and decodes Q8_0/Q4_1 blocks; every layer is written here
in float64 from the architecture's definition). It runs exact activations, where realizar
quantises them to 8 bits per block as llama.cpp does, so the two differ by that rounding.

RoPE rotates adjacent pairs (x[2i], x[2i+1]) by pos * base^(-2i/d): GGUF files of the llama
architecture store Wq and Wk permuted for exactly that convention (llama.cpp's "normal" mode).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


class LlamaReference:
    def __init__(self, path: str | Path) -> None:
        r = GGUFReader(str(path))

        def meta(key: str):
            return r.fields[key].contents()

        self.n_layers = int(meta("llama.block_count"))
        self.dim = int(meta("llama.embedding_length"))
        self.n_heads = int(meta("llama.attention.head_count"))
        self.n_kv = int(meta("llama.attention.head_count_kv"))
        self.head_dim = self.dim // self.n_heads
        self.base = float(meta("llama.rope.freq_base"))
        self.eps = float(meta("llama.attention.layer_norm_rms_epsilon"))
        self.w: dict[str, np.ndarray] = {}
        for t in r.tensors:
            a = dequantize(t.data, t.tensor_type)
            # numpy shape is the reverse of GGML's dims: (rows, cols).
            self.w[t.name] = np.asarray(a, dtype=np.float64).reshape(
                [int(d) for d in reversed(t.shape)]
            )
        self.out_w = self.w.get("output.weight", self.w["token_embd.weight"])

    def _rms(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def _rope(self, x: np.ndarray, heads: int) -> np.ndarray:
        n = x.shape[0]
        hd = self.head_dim
        x = x.reshape(n, heads, hd // 2, 2)
        inv = self.base ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
        ang = np.arange(n, dtype=np.float64)[:, None] * inv[None, :]
        c = np.cos(ang)[:, None, :]
        s = np.sin(ang)[:, None, :]
        a, b = x[..., 0], x[..., 1]
        out = np.stack([a * c - b * s, a * s + b * c], axis=-1)
        return out.reshape(n, heads * hd)

    def logits(self, ids: list[int]) -> np.ndarray:
        """Logits of every position, shape (len(ids), vocab), float64."""
        n = len(ids)
        hd = self.head_dim
        x = self.w["token_embd.weight"][np.asarray(ids)]
        mask = np.triu(np.full((n, n), -np.inf), k=1)
        group = self.n_heads // self.n_kv
        for layer in range(self.n_layers):
            w = lambda s: self.w[f"blk.{layer}.{s}.weight"]  # noqa: E731, B023
            h = self._rms(x, w("attn_norm"))
            q = self._rope(h @ w("attn_q").T, self.n_heads).reshape(n, self.n_heads, hd)
            k = self._rope(h @ w("attn_k").T, self.n_kv).reshape(n, self.n_kv, hd)
            v = (h @ w("attn_v").T).reshape(n, self.n_kv, hd)
            k = np.repeat(k, group, axis=1)
            v = np.repeat(v, group, axis=1)
            s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd) + mask
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            p = s / s.sum(axis=-1, keepdims=True)
            a = np.einsum("hqk,khd->qhd", p, v).reshape(n, self.dim)
            x = x + a @ w("attn_output").T
            h = self._rms(x, w("ffn_norm"))
            g = h @ w("ffn_gate").T
            u = h @ w("ffn_up").T
            x = x + ((g / (1.0 + np.exp(-g))) * u) @ w("ffn_down").T
        return self._rms(x, self.w["output_norm.weight"]) @ self.out_w.T
