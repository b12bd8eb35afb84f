from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

# The submodules `rag` (crates/realizar-py/src/rag.rs) and `aprender`
# (crates/realizar-py/src/aprender.rs); their stubs live in _rag.pyi and _aprender.pyi.
from realizar import _aprender, _rag

rag = _rag
aprender = _aprender

# The trueno::lowp kernel a reduced-precision product runs on (trueno.machine()["lowp"]).
LowpPath = Literal["amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "reference"]

__source_hash__: str

class TabularModel:
    """A scikit-learn model exported by `realizar.export_sklearn`, run in Rust."""

    @staticmethod
    def load(path: str | PathLike[str]) -> TabularModel: ...
    def predict(self, x: npt.NDArray[np.float64] | npt.NDArray[np.float32]) -> npt.NDArray[Any]: ...
    def predict_proba(
        self, x: npt.NDArray[np.float64] | npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float64]: ...
    @property
    def n_features(self) -> int: ...
    @property
    def estimator(self) -> str: ...
    @property
    def classes(self) -> npt.NDArray[Any] | None: ...
    @property
    def is_classifier(self) -> bool: ...

def cli_main(argv: list[str]) -> int:
    """Run the ``realizar`` command line (``serve ...``) in Rust; returns the exit status.

    Blocks until the server shuts down on SIGINT/SIGTERM, with the GIL released.
    """

class Encoder:
    """A sentence encoder (BERT + mean pooling + L2), e.g. all-MiniLM-L6-v2, run in Rust."""

    @staticmethod
    def load(
        dir: str | PathLike[str] | None = None,
        *,
        threads: int = 1,
        model_name: str | None = None,
        precision: Literal["f32", "bf16", "int8"] = "f32",
    ) -> Encoder:
        """Load a model directory; ``None`` is the packaged all-MiniLM-L6-v2.

        ``precision="bf16"`` or ``"int8"`` runs the weight matmuls through trueno's
        reduced-precision kernels (weights converted once, at load; attention stays f32).
        Where the CPU lacks the instruction set, the same arithmetic runs on the portable
        reference path and a ``RuntimeWarning`` says so (see ``lowp_path``).
        """
    def encode(
        self, texts: Sequence[str], batch_size: int = 32, normalize: bool = True
    ) -> npt.NDArray[np.float32]:
        """Embeddings of shape (len(texts), dim), float32; the GIL is released meanwhile."""
    def encode_ids(
        self, ids: Sequence[Sequence[int]], batch_size: int = 32, normalize: bool = True
    ) -> npt.NDArray[np.float32]:
        """Embeddings of already tokenised texts (``tokenizer.encode(text).ids`` each,
        unpadded): the forward pass without the tokenizer. ``TypeError`` for a value that
        is not a list of lists of int, ``ValueError`` for an id outside the vocabulary or
        a row longer than the model's positions."""
    def count_tokens(self, text: str) -> int: ...
    @property
    def dim(self) -> int: ...
    @property
    def model_name(self) -> str: ...
    @property
    def max_seq_length(self) -> int: ...
    @property
    def threads(self) -> int: ...
    @property
    def precision(self) -> Literal["f32", "bf16", "int8"]:
        """The arithmetic of the weight matmuls."""
    @property
    def lowp_path(self) -> LowpPath | None:
        """The trueno kernel the weight matmuls run on; ``None`` with precision ``"f32"``."""
    @property
    def tokenizer(self) -> Tokenizer: ...

class Encoding:
    """The ids of one text."""

    @property
    def ids(self) -> list[int]: ...
    @property
    def attention_mask(self) -> list[int]: ...
    @property
    def type_ids(self) -> list[int]: ...
    def __len__(self) -> int: ...

class Tokenizer:
    """BERT's WordPiece tokenizer (same ids as the Hugging Face `tokenizers` package)."""

    @staticmethod
    def load(
        dir: str | PathLike[str] | None = None, *, max_length: int | None = None
    ) -> Tokenizer: ...
    def encode(self, text: str) -> Encoding:
        """``[CLS] ... [SEP]`` ids, truncated to ``max_length``, unpadded."""
    def encode_batch(self, texts: Sequence[str]) -> list[Encoding]:
        """Encodings padded with ``[PAD]`` (mask 0) to the longest."""
    def tokenize(self, text: str) -> list[str]: ...
    def id_to_token(self, id: int) -> str | None: ...
    def token_to_id(self, token: str) -> int | None: ...
    @property
    def max_length(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...

class Generation:
    """The outcome of one generation."""

    @property
    def text(self) -> str: ...
    @property
    def tokens(self) -> list[int]: ...
    @property
    def finish_reason(self) -> str: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...

class LLM:
    """A GGUF language model (Llama architecture); compute releases the GIL."""

    @staticmethod
    def load(
        path: str | PathLike[str],
        *,
        threads: int = 1,
        prefill_precision: Literal["f32", "bf16", "int8"] = "f32",
    ) -> LLM: ...
    @property
    def prefill_precision(self) -> Literal["f32", "bf16", "int8"]: ...
    @property
    def prefill_lowp_path(self) -> LowpPath | None: ...
    @property
    def name(self) -> str: ...
    @property
    def context_length(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def eos_token_id(self) -> int | None: ...
    @property
    def chat_template(self) -> str | None: ...
    @property
    def tokenizer(self) -> BpeTokenizer: ...
    def tokenize(
        self, text: str, *, add_special: bool = True, parse_special: bool = True
    ) -> list[int]: ...
    def detokenize(self, ids: Sequence[int]) -> str: ...
    def token_bytes(self, id: int) -> bytes: ...
    def logits(self, ids: Sequence[int]) -> npt.NDArray[np.float32]: ...
    def apply_chat_template(
        self, messages: Sequence[Mapping[str, str]], *, add_generation_prompt: bool = True
    ) -> str: ...
    def generate_ids(
        self,
        ids: Sequence[int],
        *,
        max_tokens: int = 128,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        stop_token_ids: Sequence[int] | None = None,
        on_token: Callable[[int], bool | None] | None = None,
    ) -> Generation: ...

class BpeTokenizer:
    """A byte-level BPE tokenizer: a model's own (``LLM.tokenizer``) or one trained from text."""

    @staticmethod
    def train(
        texts: Sequence[str],
        *,
        vocab_size: int,
        min_frequency: int = 0,
        special_tokens: Sequence[str] | None = None,
        pre_tokenizer: str = "smollm",
    ) -> BpeTokenizer:
        """Hugging Face ``BpeTrainer``'s algorithm: the same merges and ids on the same corpus."""
    def encode(
        self, text: str, *, add_special: bool = True, parse_special: bool = True
    ) -> list[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...
    def token_bytes(self, id: int) -> bytes: ...
    def id_to_token(self, id: int) -> str | None: ...
    def token_to_id(self, token: str) -> int | None: ...
    def is_special(self, id: int) -> bool: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def tokens(self) -> list[str]: ...
    @property
    def merges(self) -> list[tuple[str, str]]: ...
    @property
    def special_tokens(self) -> list[str]: ...
    def __len__(self) -> int: ...

def quantize_gguf(
    src: str | PathLike[str],
    dst: str | PathLike[str],
    type: str,
    tensor_types: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """``src`` written with every matrix in ``type`` (F32, F16, Q8_0, Q4_0, Q4_1) and each
    tensor named in ``tensor_types`` in its own; the errors per tensor."""
