# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: quality gates for the fraud pipeline
# MAGIC
# MAGIC Course 3, week 3. Before a retrained fraud model may replace the one in production,
# MAGIC the pipeline must check the data it was trained on, the model's quality against the
# MAGIC baseline, and its latency, and it must **stop** when a check fails. You write those
# MAGIC gates; the checks feed them good and broken inputs of their own.
# MAGIC
# MAGIC Replace every `FILL_IN`, run top to bottom and read the checks at the end. Locally:
# MAGIC `nox -s grade -- labs/course3/week3/lab_quality.py`.

# COMMAND ----------

# MAGIC %run ../../_labkit

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup (run as is)

# COMMAND ----------

import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(_root / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

FEATURES = list(fraud_data.FEATURES)
REQUIRED = [*FEATURES, "is_fraud", "ts"]
data = fraud_data.generate(15_000, seed=44)
frame = fraud_data.model_features(data.reference()).sort_values("ts")
cut = frame["ts"].quantile(0.7)
train, holdout = frame[frame["ts"] < cut], frame[frame["ts"] >= cut]
candidate = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
candidate.fit(train[FEATURES], train["is_fraud"])
baseline = LogisticRegression().fit(train[["amount"]], train["is_fraud"])


class QualityGateError(RuntimeError):
    """Raised when a quality gate fails; the message names the failed gates."""


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 1: data expectations
# MAGIC
# MAGIC Write `failed_expectations(batch)` returning the **names** of the expectations the
# MAGIC pandas DataFrame `batch` breaks (an empty list when it is fine), out of:
# MAGIC
# MAGIC - `"columns"`: a column of `REQUIRED` is missing (then skip the other checks);
# MAGIC - `"nulls"`: a `REQUIRED` column holds a null;
# MAGIC - `"amount"`: an amount is zero or negative;
# MAGIC - `"fraud_rate"`: the share of `is_fraud == 1` is below 0.2 % or above 5 %.

# COMMAND ----------


# TODO: return the names of the broken expectations, in the order above
def failed_expectations(batch: pd.DataFrame) -> list[str]:
    return FILL_IN


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: the model gate
# MAGIC
# MAGIC Compute `candidate_p80` and `baseline_p80`, the precision at 80 % recall on `holdout`
# MAGIC of `candidate` (on `FEATURES`) and of `baseline` (on `amount` alone), and `model_ok`:
# MAGIC True when the candidate's is at least twice the baseline's.

# COMMAND ----------

# TODO: precision at 80 % recall of both models on the holdout, and the gate
candidate_p80 = FILL_IN
baseline_p80 = FILL_IN
model_ok = FILL_IN
print(candidate_p80, baseline_p80, model_ok)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 3: the latency gate
# MAGIC
# MAGIC Time 200 single-row calls of `candidate.predict_proba` (rows of `holdout[FEATURES]`,
# MAGIC one at a time, with `time.perf_counter`) and keep every duration in milliseconds in
# MAGIC `latencies_ms` (a list of 200 numbers). `latency_ok` is True when their 95th
# MAGIC percentile is at most 100 ms.

# COMMAND ----------

# TODO: 200 timed single-row predictions; the gate on their p95
latencies_ms = FILL_IN
latency_ok = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: stop the run
# MAGIC
# MAGIC Write `enforce(gates)`: `gates` maps a gate name to True (passed) or False. It raises
# MAGIC `QualityGateError` whose message contains the name of **every** failed gate, and
# MAGIC returns None when all passed. Then enforce this run's gates.

# COMMAND ----------


# TODO: raise QualityGateError naming every failed gate
def enforce(gates: dict[str, bool]) -> None:
    FILL_IN(gates)


enforce(
    {
        "data": not failed_expectations(holdout),
        "model": bool(model_ok),
        "latency": bool(latency_ok),
    }
)

# COMMAND ----------

# MAGIC %run ./checks/lab_quality
