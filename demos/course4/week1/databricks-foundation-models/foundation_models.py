# Databricks notebook source
# MAGIC %md
# MAGIC # Foundation Model APIs: chat, completions, embeddings, streaming, cost, `ai_query`
# MAGIC
# MAGIC Course 4, week 1. A **foundation model endpoint** is an HTTP service that speaks
# MAGIC OpenAI's API. One client, the official `openai` package, reaches it with two values:
# MAGIC a base URL and a token. Everything below is one code path; only those two values and
# MAGIC the endpoint names differ between the platforms:
# MAGIC
# MAGIC - **on Databricks**, the base URL is `https://<workspace>/serving-endpoints` and the
# MAGIC   token is the notebook's own (both from the notebook context); the endpoints are the
# MAGIC   workspace's pay-per-token models (names such as `databricks-meta-llama-3-3-70b-instruct`
# MAGIC   and `databricks-gte-large-en`; Free Edition offers a subset with rate limits: check
# MAGIC   **Serving** in your workspace and set the widgets to the names listed there);
# MAGIC - **locally**, the runtime starts `realizar serve`, the project's Rust server, with
# MAGIC   SmolLM2-135M-Instruct (a 135M-parameter chat model, 4-bit weights) and
# MAGIC   all-MiniLM-L6-v2 (a sentence encoder), on a loopback port, and prints what it started.
# MAGIC
# MAGIC The local model is small: the answers are often wrong. This lesson is about the API,
# MAGIC not the model; the prompt-engineering lesson measures what the model can do.

# COMMAND ----------

import math
import os
import time
from typing import Any

import numpy as np
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ

if IS_DATABRICKS:
    dbutils.widgets.text("chat_endpoint", "databricks-meta-llama-3-3-70b-instruct")
    dbutils.widgets.text("embedding_endpoint", "databricks-gte-large-en")
    # Databricks' pay-per-token chat endpoints have no /completions; name a completions
    # endpoint here (an external model or provisioned throughput) to run that cell.
    dbutils.widgets.text("completion_endpoint", "")
    from databricks.sdk import WorkspaceClient

    # The notebook's own credentials, as the SDK finds them on Databricks compute.
    config = WorkspaceClient().config
    base_url = f"{config.host}/serving-endpoints"
    token = config.authenticate()["Authorization"].removeprefix("Bearer ")
else:
    from coursekit import foundation_models

    local = foundation_models.serve()
    foundation_models.register_ai_query(spark, local)
    dbutils.widgets.text("chat_endpoint", local.chat)
    dbutils.widgets.text("embedding_endpoint", local.embeddings)
    # realizar serves the same model on /v1/completions too.
    dbutils.widgets.text("completion_endpoint", local.chat)
    base_url, token = local.base_url, local.token
dbutils.widgets.text("max_tokens", "16")

CHAT = dbutils.widgets.get("chat_endpoint")
EMBED = dbutils.widgets.get("embedding_endpoint")
COMPLETION = dbutils.widgets.get("completion_endpoint")
MAX_TOKENS = int(dbutils.widgets.get("max_tokens"))

client = OpenAI(base_url=base_url, api_key=token)
print(f"base URL {base_url}; chat {CHAT!r}, embeddings {EMBED!r}, completions {COMPLETION!r}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Chat completions
# MAGIC
# MAGIC A request is a list of messages (`system`, `user`, `assistant`); the answer is one more
# MAGIC `assistant` message plus **usage**: how many tokens the prompt and the completion took.
# MAGIC `finish_reason` says why it stopped: `stop` (the model ended its turn) or `length`
# MAGIC (it hit `max_tokens`). Pay-per-token billing counts exactly these usage numbers.

# COMMAND ----------

calls: list[tuple[str, Any]] = []  # (endpoint, usage) of every call, for the cost table

messages: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are a helpful assistant for a home robot company."},
    {"role": "user", "content": "In one sentence, what does a robot vacuum do?"},
]
answer = client.chat.completions.create(
    model=CHAT, messages=messages, max_tokens=MAX_TOKENS, temperature=0.0
)
choice = answer.choices[0]
usage = answer.usage
assert usage is not None
calls.append((CHAT, usage))
print(f"[{choice.finish_reason}] {choice.message.content}")
print(f"usage: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens")

assert choice.message.role == "assistant"
assert isinstance(choice.message.content, str)
assert choice.message.content
assert choice.finish_reason in {"stop", "length"}
assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
assert usage.completion_tokens <= MAX_TOKENS
if choice.finish_reason == "length":
    assert usage.completion_tokens == MAX_TOKENS

# COMMAND ----------

# MAGIC %md
# MAGIC ## Text completions
# MAGIC
# MAGIC The older API: a raw prompt, continued. No chat template is applied, so the model sees
# MAGIC exactly the text given; usage counts just its tokens.

# COMMAND ----------

if COMPLETION:
    completion = client.completions.create(
        model=COMPLETION,
        prompt="The three primary colours are",
        max_tokens=MAX_TOKENS,
        temperature=0.0,
    )
    assert completion.usage is not None
    calls.append((COMPLETION, completion.usage))
    print(f"[{completion.choices[0].finish_reason}] ...{completion.choices[0].text}")
    assert completion.usage.completion_tokens <= MAX_TOKENS
    # A bare prompt has far fewer tokens than the chat request above (no template, no system).
    assert completion.usage.prompt_tokens < usage.prompt_tokens
else:
    print("no completions endpoint named: set the completion_endpoint widget to run this")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Streaming
# MAGIC
# MAGIC With `stream=True` the server sends each piece of text as it is generated (server-sent
# MAGIC events); a chat UI shows the first words while the rest is still being computed. The
# MAGIC time to the first token is what a user feels; the total time is the same either way.
# MAGIC `stream_options={"include_usage": True}` adds a last chunk with the usage.

# COMMAND ----------

start = time.perf_counter()
first = None
pieces = []
stream_usage = None
for chunk in client.chat.completions.create(
    model=CHAT,
    messages=messages,
    max_tokens=MAX_TOKENS,
    temperature=0.0,
    stream=True,
    stream_options={"include_usage": True},
):
    if chunk.choices and chunk.choices[0].delta.content:
        if first is None:
            first = time.perf_counter() - start
        pieces.append(chunk.choices[0].delta.content)
    if chunk.usage is not None:
        stream_usage = chunk.usage
total = time.perf_counter() - start
streamed = "".join(pieces)
print(f"{len(pieces)} chunks, first after {first:.3f} s, all after {total:.3f} s")
print(streamed)
assert pieces
assert first is not None
assert first <= total
assert stream_usage is not None
calls.append((CHAT, stream_usage))
if not IS_DATABRICKS:
    # Greedy decoding (temperature 0) on one local model: streamed or not, the same text.
    assert streamed == choice.message.content
    assert stream_usage.completion_tokens == usage.completion_tokens

# COMMAND ----------

# MAGIC %md
# MAGIC ## Embeddings
# MAGIC
# MAGIC An embeddings endpoint turns text into a vector; texts that mean the same thing get
# MAGIC vectors pointing the same way (cosine similarity near 1). Below, a question and its
# MAGIC paraphrase against an unrelated sentence.

# COMMAND ----------

texts = [
    "How do I return my robot vacuum?",
    "What is the refund process for a vacuum cleaner robot?",
    "The thermostat supports up to six heating zones.",
]
emb = client.embeddings.create(model=EMBED, input=texts)
vectors = np.array([d.embedding for d in emb.data])
unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
cosine = unit @ unit.T
print(f"dimension {vectors.shape[1]}; usage {emb.usage.prompt_tokens} tokens")
print(f"question vs paraphrase {cosine[0, 1]:.3f}, question vs unrelated {cosine[0, 2]:.3f}")
assert vectors.shape[0] == len(texts)
assert all(math.isfinite(x) for x in vectors.ravel())
assert cosine[0, 1] > cosine[0, 2]
calls.append((EMBED, emb.usage))

# COMMAND ----------

# MAGIC %md
# MAGIC ## What it cost
# MAGIC
# MAGIC Pay-per-token pricing has a rate per million input tokens and one per million output
# MAGIC tokens (outputs cost more: each is a full forward pass, inputs are processed together).
# MAGIC The rates below are **examples** for the arithmetic, not a price list: Databricks bills
# MAGIC in DBUs per million tokens, by model and region; look up your workspace's rates. The
# MAGIC usage numbers are the response's own, so the sum is what the bill would count.

# COMMAND ----------

PRICE_PER_MILLION = {  # (input, output), example USD rates
    CHAT: (0.50, 1.50),
    COMPLETION: (0.50, 1.50),
    EMBED: (0.10, 0.0),
}
rows = []
for endpoint, u in calls:
    price_in, price_out = PRICE_PER_MILLION[endpoint]
    out_tokens = getattr(u, "completion_tokens", 0) or 0
    cost = (u.prompt_tokens * price_in + out_tokens * price_out) / 1e6
    rows.append((endpoint, u.prompt_tokens, out_tokens, cost))
for r in rows:
    print(f"{r[0]:<40} {r[1]:>6} in {r[2]:>6} out  ${r[3]:.8f}")
total_in = sum(r[1] for r in rows)
total_out = sum(r[2] for r in rows)
total_cost = sum(r[3] for r in rows)
print(f"{'total':<40} {total_in:>6} in {total_out:>6} out  ${total_cost:.8f}")
assert total_in > 0
assert total_cost > 0
# 1,000 requests like these, at these rates:
print(f"1,000 such sessions: ${1000 * total_cost:.4f}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## `ai_query`: a model over a table, in SQL
# MAGIC
# MAGIC `ai_query(endpoint, request [, modelParameters => named_struct(...)])` calls the
# MAGIC endpoint once per row and returns the answer as a column. On Databricks it is built in
# MAGIC (and batches rows for throughput); locally the runtime registered a SQL function of the
# MAGIC same shape that sends each Arrow batch of rows to the local server. The same query text
# MAGIC runs in both places.

# COMMAND ----------

prompts = [
    (1, "Translate to French: good morning"),
    (2, "What is the capital of Italy?"),
    (3, "Give one word that rhymes with cat."),
]
spark.createDataFrame(prompts, "id INT, prompt STRING").write.mode("overwrite").saveAsTable(
    "course4_prompts"
)
# Batch inference writes its answers once: a query over ai_query calls the model each
# time it is evaluated, so displaying and then collecting it would pay twice.
spark.sql(
    f"""
    CREATE OR REPLACE TABLE course4_answers AS
    SELECT id, prompt,
           ai_query('{CHAT}', prompt,
                    modelParameters => named_struct('max_tokens', {MAX_TOKENS},
                                                    'temperature', 0.0)) AS answer
    FROM course4_prompts
    """
)
answers = spark.table("course4_answers").orderBy("id")
display(answers)
got = answers.collect()
assert [r["id"] for r in got] == [p[0] for p in prompts]
assert all(isinstance(r["answer"], str) and r["answer"] for r in got)
if not IS_DATABRICKS:
    # Row by row, ai_query sent what the client sends: the same greedy answers.
    for r in got:
        direct = client.chat.completions.create(
            model=CHAT,
            messages=[{"role": "user", "content": r["prompt"]}],
            max_tokens=MAX_TOKENS,
            temperature=0.0,
        )
        assert r["answer"] == direct.choices[0].message.content

# COMMAND ----------

# MAGIC %md
# MAGIC ## What the output shows
# MAGIC
# MAGIC - the chat, completions, streaming and embeddings calls are the same code on both
# MAGIC   platforms; only the base URL, token and endpoint names differ;
# MAGIC - usage is in every response, and cost is usage times the rates;
# MAGIC - streaming returns the same text as a plain call, the first piece much sooner;
# MAGIC - `ai_query` turns a table of prompts into a table of answers in one SQL statement.
