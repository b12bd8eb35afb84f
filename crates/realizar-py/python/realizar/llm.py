"""``realizar.LLM``: a generative language model from a GGUF file, computed in Rust.

Text in, text out: ``generate`` tokenizes the prompt with the model's own byte-level BPE,
``chat`` renders a conversation with the model's own chat template first. Both return a
:class:`Generation` (``text``, ``tokens``, ``finish_reason``, ``prompt_tokens``,
``completion_tokens``); ``chat(..., stream=True)`` returns an iterator of text deltas instead,
produced while the model runs in a background thread (UTF-8 is reassembled across tokens, so a
delta never holds half a character).
"""

from __future__ import annotations

import codecs
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from realizar import _realizar
from realizar._realizar import BpeTokenizer, Generation

if TYPE_CHECKING:
    from realizar._realizar import LowpPath

_DONE = object()


class LLM:
    """A loaded GGUF model. ``LLM.load()`` with no path is the packaged SmolLM2-135M-Instruct."""

    def __init__(self, inner: _realizar.LLM) -> None:
        self._inner = inner

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        threads: int = 1,
        prefill_precision: Literal["f32", "bf16", "int8"] = "f32",
    ) -> LLM:
        """Load a GGUF file; ``threads`` threads compute each matrix product.

        ``prefill_precision="bf16"`` or ``"int8"`` runs the prompt's pass (every product
        over two or more tokens) through trueno's reduced-precision kernels, the weights
        converted once here; decode is unchanged. Where the CPU lacks the instruction set
        the same arithmetic runs on the portable reference path and a ``RuntimeWarning``
        says so (see ``prefill_lowp_path``).
        """
        if path is None:
            from realizar.models import default_llm_path  # noqa: PLC0415

            path = default_llm_path()
        if not isinstance(path, (str, Path)):
            msg = f"path must be a str or Path, got {type(path).__name__}"
            raise TypeError(msg)
        if not isinstance(threads, int) or isinstance(threads, bool):
            msg = f"threads must be an int, got {type(threads).__name__}"
            raise TypeError(msg)
        if not isinstance(prefill_precision, str):
            msg = (
                'prefill_precision must be a str ("f32", "bf16" or "int8"), '
                f"got {type(prefill_precision).__name__}"
            )
            raise TypeError(msg)
        return cls(
            _realizar.LLM.load(Path(path), threads=threads, prefill_precision=prefill_precision)
        )

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def context_length(self) -> int:
        return self._inner.context_length

    @property
    def prefill_precision(self) -> Literal["f32", "bf16", "int8"]:
        """The arithmetic of prefill's weight products."""
        return self._inner.prefill_precision

    @property
    def prefill_lowp_path(self) -> LowpPath | None:
        """The trueno kernel prefill's weight products run on; ``None`` for ``"f32"``."""
        return self._inner.prefill_lowp_path

    @property
    def vocab_size(self) -> int:
        return self._inner.vocab_size

    @property
    def eos_token_id(self) -> int | None:
        return self._inner.eos_token_id

    @property
    def tokenizer(self) -> BpeTokenizer:
        """The model's own byte-level BPE (vocabulary, merges, special tokens)."""
        return self._inner.tokenizer

    @property
    def chat_template(self) -> str | None:
        return self._inner.chat_template

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True):
        """Token ids of ``text`` (special tokens such as ``<|im_start|>`` parsed by default)."""
        return self._inner.tokenize(text, add_special=add_special, parse_special=parse_special)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self._inner.detokenize(ids)

    def logits(self, ids: Sequence[int]):
        """Logits of every position: a float32 array of shape (len(ids), vocab_size)."""
        return self._inner.logits(ids)

    def apply_chat_template(
        self, messages: Sequence[Mapping[str, str]], *, add_generation_prompt: bool = True
    ) -> str:
        return self._inner.apply_chat_template(
            messages, add_generation_prompt=add_generation_prompt
        )

    def generate(
        self,
        prompt: str | Sequence[int],
        *,
        max_tokens: int = 128,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        stop_token_ids: Sequence[int] | None = None,
    ) -> Generation:
        """Continue ``prompt`` (text, or token ids). Temperature 0 is greedy."""
        ids = self._ids(prompt)
        return self._inner.generate_ids(
            ids,
            max_tokens=max_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            repetition_penalty=repetition_penalty,
            seed=seed,
            stop=stop,
            stop_token_ids=list(stop_token_ids) if stop_token_ids is not None else None,
        )

    def chat(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        stream: bool = False,
        **options: object,
    ) -> Generation | Iterator[str]:
        """Answer a conversation (system / user / assistant turns) with the model's template.

        ``stream=True`` returns an iterator of text deltas; the options are ``generate``'s.
        """
        prompt = self.apply_chat_template(messages, add_generation_prompt=True)
        ids = self.tokenize(prompt, add_special=True, parse_special=True)
        if not stream:
            return self.generate(ids, **options)  # ty: ignore[invalid-argument-type]
        return self._stream(ids, options)

    def _ids(self, prompt: str | Sequence[int]) -> list[int]:
        if isinstance(prompt, str):
            return self.tokenize(prompt)
        if isinstance(prompt, Sequence) and all(
            isinstance(t, int) and not isinstance(t, bool) for t in prompt
        ):
            return list(prompt)
        msg = f"prompt must be a str or a sequence of int token ids, got {type(prompt).__name__}"
        raise TypeError(msg)

    def _stream(self, ids: list[int], options: Mapping[str, object]) -> Iterator[str]:
        q: queue.Queue[object] = queue.Queue()
        cancelled = threading.Event()

        def on_token(t: int) -> bool:
            q.put(t)
            return not cancelled.is_set()

        def run() -> None:
            try:
                self._inner.generate_ids(ids, on_token=on_token, **options)  # ty: ignore[invalid-argument-type]
            except BaseException as e:
                q.put(e)
            q.put(_DONE)

        # Check the options before starting the thread, so bad ones raise at the call.
        checked = {k: v for k, v in options.items() if k != "max_tokens"}
        self._inner.generate_ids(ids, max_tokens=0, **checked)  # ty: ignore[invalid-argument-type]
        worker = threading.Thread(target=run, daemon=True)
        worker.start()

        def deltas() -> Iterator[str]:
            dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
            try:
                while True:
                    item = q.get()
                    if item is _DONE:
                        tail = dec.decode(b"", final=True)
                        if tail:
                            yield tail
                        return
                    if isinstance(item, BaseException):
                        raise item
                    assert isinstance(item, int)
                    text = dec.decode(self._inner.token_bytes(item))
                    if text:
                        yield text
            finally:
                cancelled.set()
                worker.join()

        return deltas()
