# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: serve the fraud model online and in batch
# MAGIC
# MAGIC Course 3, week 2. A fraud forest is trained (setup). Your job: export it to realizar's
# MAGIC tabular format, serve it with `realizar serve`, query it with an MLflow scoring
# MAGIC payload, and score a Spark table with the same Rust model inside `mapInPandas`.
# MAGIC (On Databricks, `realizar` is the project's wheel: install it on the cluster first,
# MAGIC `%pip install` of the wheel file.)
# MAGIC
# MAGIC Replace every `FILL_IN`, run top to bottom and read the checks at the end. Locally:
# MAGIC `nox -s grade -- labs/course3/week2/lab_serving.py`.

# COMMAND ----------

# MAGIC %run ../../_labkit

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup (run as is)

# COMMAND ----------

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import requests
from pyspark.sql.types import DoubleType, StructField, StructType
from sklearn.ensemble import RandomForestClassifier

import realizar

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(_root / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

FEATURES = list(fraud_data.FEATURES)
data = fraud_data.generate(10_000, seed=66)
frame = fraud_data.model_features(data.transactions)
train = frame[frame["ts"] < data.drift_start]
new = frame[frame["ts"] >= data.drift_start].reset_index(drop=True)
forest = RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0, n_jobs=1)
forest.fit(train[FEATURES], train["is_fraud"])
workdir = Path(tempfile.mkdtemp(prefix="lab_serving_"))
model_path = workdir / "fraud_forest.safetensors"


def start_server(command: list[str]) -> tuple[subprocess.Popen, str]:
    """Start a server that prints 'on http://127.0.0.1:PORT' to stderr; return it and the URL."""
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        if found:
            return proc, found.group(1)
    proc.kill()
    raise TimeoutError("the server did not start")


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 1: export the model
# MAGIC
# MAGIC Write `forest` to `model_path` in realizar's format.

# COMMAND ----------

# TODO: one call of the realizar package
FILL_IN(model_path)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: the scoring payload
# MAGIC
# MAGIC `payload` is the MLflow scoring request for the first 50 rows of `new[FEATURES]`, in
# MAGIC the `dataframe_split` orientation (column names, and the rows as lists).

# COMMAND ----------

# TODO: {"dataframe_split": {...}} for new[FEATURES].head(50)
payload = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 3: serve and query
# MAGIC
# MAGIC Start `realizar serve` on the exported file with `start_server` (the command is
# MAGIC `python -m realizar serve --model PATH --port 0`, with `sys.executable` as python; port
# MAGIC 0 picks a free one), POST `payload` to its `/invocations`, and keep the answer's
# MAGIC predictions in `served_predictions`. Stop the server afterwards.

# COMMAND ----------

# TODO: start the server, POST the payload, keep the predictions, stop the server
served_predictions = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: batch scoring with mapInPandas
# MAGIC
# MAGIC `table` holds the new period. Build `scored`: `table` with a `prediction` column
# MAGIC (double) computed by `realizar.TabularModel` inside `table.mapInPandas(fn, schema)`.
# MAGIC `fn` receives an iterator of pandas DataFrames (one partition) and yields them with
# MAGIC the column added; load the model once per call of `fn`, not once per batch. The
# MAGIC executors may not see this machine's files: ship the model file's bytes inside the
# MAGIC function's closure (a variable it reads) and write them to a temporary file there.

# COMMAND ----------

table = spark.createDataFrame(new[["transaction_id", *FEATURES]]).repartition(3)
out_schema = StructType([*table.schema.fields, StructField("prediction", DoubleType())])

# TODO: ship the model file's bytes in the closure; a function over pandas batches; mapInPandas
scored = FILL_IN

# COMMAND ----------

# MAGIC %run ./checks/lab_serving
