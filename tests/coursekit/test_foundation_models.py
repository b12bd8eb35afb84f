"""The Foundation Model APIs stand-in (coursekit.foundation_models): a real server, real Spark.

``serve()`` starts ``realizar serve`` with SmolLM2-135M-Instruct and all-MiniLM-L6-v2 once per
process; the official ``openai`` client's answers are checked against the same models run
in-process (``realizar.LLM`` greedy decoding, ``realizar.Encoder``), and ``ai_query`` over a
Spark table against one direct request per row. Every bad input fails with a message naming
it: an unknown endpoint, an embeddings endpoint, a non-STRING returnType, a sampling value the
server refuses, an unsupported model parameter, a NULL request (NULL with failOnError =>
false).
"""

from __future__ import annotations

import numpy as np
import openai
import pytest

from coursekit import foundation_models as fm

# Starts Spark in the pytest process: one worker holds every such test (conftest.py).
pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark-session")]

MAX = 8


@pytest.fixture(scope="module")
def endpoints():
    eps = fm.serve()
    yield eps
    fm.stop()


@pytest.fixture(scope="module")
def client(endpoints):
    return openai.OpenAI(base_url=endpoints.base_url, api_key=endpoints.token, max_retries=0)


@pytest.fixture(scope="module")
def llm():
    import realizar  # noqa: PLC0415

    return realizar.LLM.load()


@pytest.fixture(scope="module")
def spark(tmp_path_factory, endpoints):
    from coursekit.runtime.session import build_session  # noqa: PLC0415

    root = tmp_path_factory.mktemp("fm")
    session = build_session(root / "warehouse", app_name="test_fm", jvm_log=root / "jvm.log")
    fm.register_ai_query(session, endpoints)
    return session


def test_serve_is_reused_and_has_the_databricks_shape(endpoints) -> None:
    again = fm.serve()
    assert again == endpoints
    assert endpoints.base_url == f"{endpoints.workspace_url}/v1"
    assert endpoints.workspace_url.startswith("http://127.0.0.1:")
    assert endpoints.token
    assert (endpoints.chat, endpoints.embeddings) == (fm.CHAT, fm.EMBEDDINGS)


def test_serve_refuses_bad_threads() -> None:
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="llm_threads"):
            fm.serve(llm_threads=bad)  # ty: ignore[invalid-argument-type]


def test_chat_equals_the_model_run_in_process(client, endpoints, llm) -> None:
    messages = [{"role": "user", "content": "Name a colour. 日本 🎉"}]
    out = client.chat.completions.create(
        model=endpoints.chat,
        messages=messages,
        max_tokens=MAX,
        temperature=0,
    )
    want = llm.chat(messages, max_tokens=MAX, temperature=0.0)
    assert out.choices[0].message.content == want.text
    assert out.usage is not None
    assert out.usage.prompt_tokens == want.prompt_tokens
    assert out.usage.completion_tokens == want.completion_tokens


def test_embeddings_equal_the_encoder_run_in_process(client, endpoints) -> None:
    import realizar  # noqa: PLC0415

    texts = ["a robot vacuum", "", "Rückgabe innerhalb von 30 Tagen"]
    out = client.embeddings.create(model=endpoints.embeddings, input=texts)
    got = np.array([d.embedding for d in out.data], dtype=np.float32)
    want = realizar.Encoder.load().encode(texts)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_unknown_model_is_the_clients_not_found(client) -> None:
    with pytest.raises(openai.NotFoundError, match="no-such-endpoint"):
        client.chat.completions.create(
            model="no-such-endpoint", messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )


def test_ai_query_over_a_table_equals_one_request_per_row(spark, endpoints) -> None:
    prompts = ["What is 2 + 2?", "Say hello in French.", "Name a planet.", "ünïcödé ✓"]
    spark.createDataFrame([(i, p) for i, p in enumerate(prompts)], "id INT, prompt STRING")\
        .createOrReplaceTempView("prompts")  # fmt: skip
    rows = spark.sql(
        f"""SELECT id, ai_query('{endpoints.chat}', prompt,
                modelParameters => named_struct('max_tokens', {MAX}, 'temperature', 0.0)) AS answer
            FROM prompts ORDER BY id"""
    ).collect()
    assert [r["id"] for r in rows] == list(range(len(prompts)))
    for row, prompt in zip(rows, prompts, strict=True):
        want = fm.query(
            endpoints.base_url,
            endpoints.token,
            endpoints.chat,
            prompt,
            {"max_tokens": MAX, "temperature": 0.0},
        )
        assert row["answer"] == want


def test_ai_query_empty_table(spark, endpoints) -> None:
    spark.createDataFrame([], "prompt STRING").createOrReplaceTempView("no_prompts")
    rows = spark.sql(f"SELECT ai_query('{endpoints.chat}', prompt) FROM no_prompts").collect()
    assert rows == []
    target = fm._Target("http://127.0.0.1:9", "t", frozenset(), frozenset())
    assert fm._ai_query_batch(target, [], []) == []


def sql_error(spark, statement: str) -> str:
    from pyspark.errors import PySparkException  # noqa: PLC0415

    with pytest.raises(PySparkException) as info:
        spark.sql(statement).collect()
    return str(info.value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("ai_query('no-such-endpoint', 'hi')", "unknown endpoint 'no-such-endpoint'"),
        (f"ai_query('{fm.EMBEDDINGS}', 'hi')", "embeddings endpoint"),
        (f"ai_query('{fm.CHAT}', 'hi', returnType => 'ARRAY<FLOAT>')", "returns STRING only"),
        (
            f"ai_query('{fm.CHAT}', 'hi', modelParameters => named_struct('temperature', 5.0))",
            "'temperature' must be between",
        ),
        (
            f"ai_query('{fm.CHAT}', 'hi', modelParameters => named_struct('top_k', 5))",
            r"\['top_k'\] not supported",
        ),
        (f"ai_query('{fm.CHAT}', CAST(NULL AS STRING))", "request must be a STRING"),
    ],
)
def test_ai_query_bad_input_fails_naming_it(spark, call: str, message: str) -> None:
    import re  # noqa: PLC0415

    text = sql_error(spark, f"SELECT {call}")
    assert re.search(message, text), text
    assert "ai_query row 0" in text


def test_ai_query_fail_on_error_false_gives_null_per_row(spark, endpoints) -> None:
    spark.createDataFrame([("Say yes.",), (None,)], "prompt STRING").createOrReplaceTempView(
        "mixed"
    )
    rows = spark.sql(
        f"""SELECT prompt, ai_query('{endpoints.chat}', prompt, failOnError => false,
                modelParameters => named_struct('max_tokens', 2)) AS answer FROM mixed"""
    ).collect()
    by_prompt = {r["prompt"]: r["answer"] for r in rows}
    assert isinstance(by_prompt["Say yes."], str)
    assert by_prompt[None] is None


def test_register_refuses_what_is_not_a_session(endpoints) -> None:
    with pytest.raises(TypeError, match="SparkSession"):
        fm.register_ai_query(object(), endpoints)
    with pytest.raises(TypeError, match="Endpoints"):
        fm.register_ai_query(object(), "http://x")  # ty: ignore[invalid-argument-type]


def test_stop_then_serve_starts_a_new_server(endpoints) -> None:
    fm.stop()
    fm.stop()
    fresh = fm.serve()
    assert fresh.pid != endpoints.pid
    # Later tests in this module use the module's endpoints: keep a server on that URL shape.
    assert fresh.base_url.endswith("/v1")
