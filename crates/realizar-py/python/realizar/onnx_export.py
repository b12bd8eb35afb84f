"""An ONNX export of a BERT sentence encoder (all-MiniLM-L6-v2) built without PyTorch.

The graph is written node by node with the ``onnx`` package's helper API from the
weights in ``model.safetensors`` (read with the ``safetensors`` package), the way
``torch.onnx.export`` of a Hugging Face ``BertModel`` plus sentence-transformers' pooling
lays it out, so onnxruntime's graph optimisations see the patterns they are written for:

- embeddings: ``Gather`` of the word, position (``Range`` over the sequence) and token-type
  tables, summed, ``LayerNormalization`` (opset 17);
- each layer: separate query/key/value ``MatMul`` + ``Add`` (weights stored ``in x out``),
  heads split with ``Reshape``/``Transpose``, scores ``q kᵀ / sqrt(d)`` plus the additive
  padding mask (``(1 - mask) * float32.min``, the mask Hugging Face builds), ``Softmax``,
  ``ctx = p v``, output projection, residual, ``LayerNormalization``; the feed-forward
  block with the exact erf GELU (``0.5 x (1 + erf(x / sqrt 2))``), residual,
  ``LayerNormalization``;
- mean pooling over the attention mask (the token count clamped at 1e-9) and L2
  normalisation (the norm clamped at 1e-12), as sentence-transformers does.

Inputs ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64, batch x sequence,
right-padded); output ``sentence_embedding`` (float32, batch x hidden). This module is
used by the benchmark (``python -m realizar.bench --only embeddings``) and its test; it
imports ``onnx`` and is never imported by ``realizar`` itself (``onnx`` and
``onnxruntime`` are bench and test dependencies, not the wheel's).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

OPSET = 17  # the first opset with LayerNormalization
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "sentence_embedding"


class _Graph:
    """Nodes and initializers under construction, with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def const(self, name: str, value: npt.ArrayLike, dtype: Any = np.float32) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], name: str = "", **attrs: Any) -> str:
        self._n += 1
        out = name or f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


def _config(model_dir: Path) -> dict[str, Any]:
    config = json.loads((model_dir / "config.json").read_text())
    if config.get("model_type", "bert") != "bert":
        msg = f"{model_dir}/config.json: model_type {config['model_type']!r} is not 'bert'"
        raise ValueError(msg)
    if config.get("hidden_act", "gelu") != "gelu":
        msg = f"{model_dir}/config.json: hidden_act {config['hidden_act']!r} is not 'gelu' (erf)"
        raise ValueError(msg)
    if config["hidden_size"] % config["num_attention_heads"]:
        msg = (
            f"{model_dir}/config.json: hidden_size {config['hidden_size']} is not a multiple "
            f"of num_attention_heads {config['num_attention_heads']}"
        )
        raise ValueError(msg)
    return config


class _BertGraph(_Graph):
    """The encoder's nodes, built from one checkpoint's weights and config."""

    def __init__(self, model_dir: Path, config: dict[str, Any]) -> None:
        super().__init__()
        self.path = model_dir / "model.safetensors"
        self.w = load_file(str(self.path))
        self.hidden, self.heads = config["hidden_size"], config["num_attention_heads"]
        self.eps = float(config["layer_norm_eps"])
        d = self.hidden // self.heads
        i64 = np.int64
        self.split_shape = self.const("split_shape", [0, 0, self.heads, d], i64)
        self.merge_shape = self.const("merge_shape", [0, 0, self.hidden], i64)
        self.sqrt_d = self.const("sqrt_d", math.sqrt(d))
        self.sqrt2, self.half = self.const("sqrt2", math.sqrt(2.0)), self.const("half", 0.5)
        self.one_f = self.const("one_f", 1.0)
        self.one_i, self.zero_i = self.const("one_i", 1, i64), self.const("zero_i", 0, i64)

    def weight(self, name: str, *, transpose: bool = False) -> str:
        """An initializer holding checkpoint tensor ``name`` (``in x out`` if ``transpose``)."""
        if name not in self.w:
            msg = f"{self.path} has no tensor {name!r}"
            raise KeyError(msg)
        t = self.w[name].astype(np.float32)
        return self.const(name, t.T if transpose else t)

    def layer_norm(self, x: str, prefix: str) -> str:
        scale, bias = self.weight(f"{prefix}.weight"), self.weight(f"{prefix}.bias")
        return self.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=self.eps)

    def linear(self, x: str, prefix: str) -> str:
        # PyTorch's Linear stores out x in and computes x Wᵀ: the initializer is Wᵀ.
        wt = self.weight(f"{prefix}.weight", transpose=True)
        return self.op("Add", [self.op("MatMul", [x, wt]), self.weight(f"{prefix}.bias")])

    def embeddings(self, ids: str, types: str) -> str:
        """LayerNorm(word[ids] + position[0..seq) + token_type[types])."""
        seq = self.op("Gather", [self.op("Shape", [ids]), self.one_i], axis=0)
        positions = self.op("Range", [self.zero_i, seq, self.one_i])
        word = self.op("Gather", [self.weight("embeddings.word_embeddings.weight"), ids])
        pos = self.op("Gather", [self.weight("embeddings.position_embeddings.weight"), positions])
        kind = self.op("Gather", [self.weight("embeddings.token_type_embeddings.weight"), types])
        x = self.op("Add", [self.op("Add", [word, pos]), kind])
        return self.layer_norm(x, "embeddings.LayerNorm")

    def mask_bias(self, mask: str) -> str:
        """The additive mask, batch x 1 x 1 x seq: 0 for tokens, float32.min for padding."""
        axes = self.const("axes12", [1, 2], np.int64)
        m = self.op("Cast", [self.op("Unsqueeze", [mask, axes])], to=TensorProto.FLOAT)
        neg = self.const("neg", np.finfo(np.float32).min)
        return self.op("Mul", [self.op("Sub", [self.one_f, m]), neg])

    def layer(self, x: str, layer: int, mask_bias: str) -> str:
        """One encoder layer: self-attention and the feed-forward block, post-LayerNorm."""
        p = f"encoder.layer.{layer}."

        def heads(t: str, perm: list[int]) -> str:
            return self.op("Transpose", [self.op("Reshape", [t, self.split_shape])], perm=perm)

        q = heads(self.linear(x, p + "attention.self.query"), [0, 2, 1, 3])
        k = heads(self.linear(x, p + "attention.self.key"), [0, 2, 3, 1])  # kᵀ
        v = heads(self.linear(x, p + "attention.self.value"), [0, 2, 1, 3])
        scores = self.op("Div", [self.op("MatMul", [q, k]), self.sqrt_d])
        probs = self.op("Softmax", [self.op("Add", [scores, mask_bias])], axis=-1)
        ctx = self.op("Transpose", [self.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = self.op("Reshape", [ctx, self.merge_shape])
        attn = self.linear(ctx, p + "attention.output.dense")
        x = self.layer_norm(self.op("Add", [attn, x]), p + "attention.output.LayerNorm")
        up = self.linear(x, p + "intermediate.dense")
        erf = self.op("Erf", [self.op("Div", [up, self.sqrt2])])  # exact GELU
        act = self.op("Mul", [self.op("Mul", [up, self.op("Add", [erf, self.one_f])]), self.half])
        down = self.linear(act, p + "output.dense")
        return self.layer_norm(self.op("Add", [down, x]), p + "output.LayerNorm")

    def pool(self, x: str, mask: str) -> str:
        """Mean over the tokens the mask keeps, then L2 normalisation (the output)."""
        axis2, axis1 = self.const("axis2", [2], np.int64), self.const("axis1", [1], np.int64)
        m = self.op("Cast", [self.op("Unsqueeze", [mask, axis2])], to=TensorProto.FLOAT)
        summed = self.op("ReduceSum", [self.op("Mul", [x, m]), axis1], keepdims=0)
        count = self.op("ReduceSum", [m, axis1], keepdims=0)
        pooled = self.op("Div", [summed, self.op("Max", [count, self.const("min_count", 1e-9)])])
        norm = self.op("ReduceL2", [pooled], axes=[1], keepdims=1)
        norm = self.op("Max", [norm, self.const("min_norm", 1e-12)])
        return self.op("Div", [pooled, norm], name=OUTPUT)


def export_minilm(model_dir: str | Path | None = None) -> onnx.ModelProto:
    """The ONNX model of the BERT sentence encoder in ``model_dir`` (default: the packaged
    all-MiniLM-L6-v2), checked with ``onnx.checker``."""
    if model_dir is None:
        from realizar.models import default_model_dir  # noqa: PLC0415

        model_dir = default_model_dir()
    model_dir = Path(model_dir)
    config = _config(model_dir)
    if not (model_dir / "model.safetensors").is_file():
        msg = f"{model_dir / 'model.safetensors'} is missing"
        raise FileNotFoundError(msg)
    g = _BertGraph(model_dir, config)
    ids, mask, types = INPUTS
    x = g.embeddings(ids, types)
    bias = g.mask_bias(mask)
    for layer in range(config["num_hidden_layers"]):
        x = g.layer(x, layer, bias)
    g.pool(x, mask)
    graph = helper.make_graph(
        g.nodes,
        "minilm_sentence_encoder",
        [
            helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
            for n in INPUTS
        ],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", g.hidden])],
        g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="realizar.onnx_export",
    )
    model.ir_version = 8  # opset 17's IR version, which every onnxruntime since 1.13 reads
    onnx.checker.check_model(model)
    return model


def padded_batches(
    ids: Sequence[Sequence[int]], batch_size: int
) -> list[tuple[npt.NDArray[np.intp], dict[str, npt.NDArray[np.int64]]]]:
    """``ids`` (unpadded ``[CLS] ... [SEP]`` lists) as the graph's inputs, longest first.

    Batches of ``batch_size`` texts of similar length (sorted by token count, as realizar's
    ``Encoder`` and sentence-transformers do), each right-padded with 0 to its longest;
    each entry pairs the input positions of its rows with the feed dict.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        msg = f"batch_size must be an int, got {type(batch_size).__name__}"
        raise TypeError(msg)
    if batch_size < 1:
        msg = f"batch_size must be at least 1, got {batch_size}"
        raise ValueError(msg)
    order = np.argsort([-len(r) for r in ids], kind="stable")
    out = []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = max(1, *(len(ids[i]) for i in idx))
        tokens = np.zeros((len(idx), width), dtype=np.int64)
        mask = np.zeros_like(tokens)
        for row, i in enumerate(idx):
            tokens[row, : len(ids[i])] = ids[i]
            mask[row, : len(ids[i])] = 1
        feed = {
            "input_ids": tokens,
            "attention_mask": mask,
            "token_type_ids": np.zeros_like(tokens),
        }
        out.append((idx, feed))
    return out


class OnnxEncoder:
    """The exported model in an onnxruntime session, with realizar's batching."""

    def __init__(self, model: onnx.ModelProto, *, threads: int = 1) -> None:
        import onnxruntime as ort  # noqa: PLC0415

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # The default, stated: every graph optimisation (fusions, constant folding, layout).
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.options = options
        self.session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self.dim = int(model.graph.output[0].type.tensor_type.shape.dim[1].dim_value)

    def run(
        self, batches: Sequence[tuple[npt.NDArray[np.intp], dict[str, npt.NDArray[np.int64]]]]
    ) -> npt.NDArray[np.float32]:
        """Embeddings of the texts in ``batches`` (from :func:`padded_batches`), input order."""
        n = sum(len(idx) for idx, _ in batches)
        out = np.zeros((n, self.dim), dtype=np.float32)
        for idx, feed in batches:
            out[idx] = self.session.run([OUTPUT], feed)[0]
        return out

    def encode_ids(
        self, ids: Sequence[Sequence[int]], batch_size: int = 32
    ) -> npt.NDArray[np.float32]:
        """Embeddings of already tokenised texts, (len(ids), dim), like ``Encoder.encode_ids``."""
        return self.run(padded_batches(ids, batch_size))
