# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: a prompt that extracts JSON at a stated success rate
# MAGIC
# MAGIC Course 4, week 1. Support receives fault reports ("My Kestrel Watch W4 Pro shows E34")
# MAGIC and wants two fields out of each, as JSON a program can trust:
# MAGIC `{"product_line": "Watch", "error_code": "E34"}`. Your job: build the prompt (a system
# MAGIC message and worked examples), parse and validate the reply against the schema, and
# MAGIC measure the success rate on the labelled set. The bar: **at least 75 % of the labelled
# MAGIC messages fully right** (both fields), with the model's greedy answers.
# MAGIC
# MAGIC Locally the model is SmolLM2-135M-Instruct behind `realizar serve` (the runtime starts
# MAGIC it); on Databricks, set the `chat_endpoint` widget to one of your workspace's chat
# MAGIC endpoints. A plain few-shot prompt gets the JSON shape right but often copies the
# MAGIC model name ("W4 Pro") where the product line belongs: that is what your prompt must fix.
# MAGIC
# MAGIC Replace every `FILL_IN`, run top to bottom and read the checks at the end. Locally:
# MAGIC `nox -s grade -- labs/course4/week1/lab_prompts.py`.

# COMMAND ----------

# MAGIC %run ../../_labkit

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup (run as is)

# COMMAND ----------

import json
import os
import sys
from pathlib import Path

import jsonschema
from openai import OpenAI

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "support_tickets.py").is_file())
sys.path.insert(0, str(_root / "data"))
import support_tickets  # noqa: E402 (found through sys.path above)

if IS_DATABRICKS:
    dbutils.widgets.text("chat_endpoint", "databricks-meta-llama-3-3-70b-instruct")
    from databricks.sdk import WorkspaceClient

    # The notebook's own credentials, as the SDK finds them on Databricks compute.
    config = WorkspaceClient().config
    base_url = f"{config.host}/serving-endpoints"
    token = config.authenticate()["Authorization"].removeprefix("Bearer ")
else:
    from coursekit import foundation_models

    local = foundation_models.serve()
    dbutils.widgets.text("chat_endpoint", local.chat)
    base_url, token = local.base_url, local.token
CHAT = dbutils.widgets.get("chat_endpoint")
client = OpenAI(base_url=base_url, api_key=token)

SCHEMA = support_tickets.ERROR_REPORT_SCHEMA
TARGET = 0.75
# The labelled set the checks measure you on, and a separate pool to take examples from.
labelled = support_tickets.error_reports(seed=2, n=6)
example_pool = support_tickets.error_reports(seed=99, n=10)
print(json.dumps(SCHEMA, indent=1))
print(labelled[0])


def ask(messages):
    """The model's greedy reply. Generation stops at "}", which is not returned."""
    out = client.chat.completions.create(
        model=CHAT, messages=messages, max_tokens=24, temperature=0.0, stop=["}"]
    )
    return out.choices[0].message.content or ""


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 1: the system prompt
# MAGIC
# MAGIC `SYSTEM_PROMPT` tells the model what to reply: JSON only, with the fields
# MAGIC `product_line` and `error_code`. Say what a product line is (the five names) and that
# MAGIC it is not the model number.

# COMMAND ----------

# TODO: a string naming both fields and what goes in each
SYSTEM_PROMPT = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: the messages
# MAGIC
# MAGIC `build_messages(text)` returns the chat messages for one report: the system prompt
# MAGIC first, then at least two worked examples (a `user` turn with a report and an
# MAGIC `assistant` turn with its JSON, from `example_pool` or written by you; never a message
# MAGIC of `labelled`, that would be grading on the answers), and last the `user` turn with
# MAGIC `text` itself. Cover the product lines the model confuses.

# COMMAND ----------


def build_messages(text):
    # TODO: [system, (user, assistant) * k, user(text)]
    return FILL_IN


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 3: parse and validate
# MAGIC
# MAGIC `parse_reply(reply)` returns the object when the reply holds one that is valid against
# MAGIC `SCHEMA`, and `None` otherwise (no object, not JSON, a field missing or extra, a
# MAGIC product line outside the five). The reply stops before its closing `}`: add it back.
# MAGIC Text before the `{` is allowed. Never raise: a bad reply is a `None`.

# COMMAND ----------


def parse_reply(reply):
    # TODO: find "{", json.loads(... + "}"), jsonschema.validate against SCHEMA
    return FILL_IN


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: measure
# MAGIC
# MAGIC Run every message of `labelled` through `ask(build_messages(...))` and `parse_reply`,
# MAGIC keep the results in `predictions` (same order), and set `success_rate` to the share of
# MAGIC predictions equal to their label. Iterate on Tasks 1 and 2 until it reaches `TARGET`.

# COMMAND ----------

# TODO: one prediction per labelled message, then the share that equals item["label"]
predictions = FILL_IN
success_rate = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Checks

# COMMAND ----------

# MAGIC %run ./checks/lab_prompts
