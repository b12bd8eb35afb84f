# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: quality gates for the fraud pipeline (solution)
# MAGIC
# MAGIC Course 3, week 3. Before a retrained fraud model may replace the one in production,
# MAGIC the pipeline must check the data it was trained on, the model's quality against the
# MAGIC baseline, and its latency, and it must **stop** when a check fails. You write those
# MAGIC gates; the checks feed them good and broken inputs of their own.
# MAGIC
# MAGIC Replace every `FILL_IN`, run top to bottom and read the checks at the end. Locally:
# MAGIC `nox -s grade -- labs/course3/week3/lab_quality.py`.

# COMMAND ----------

# MAGIC %run ../../../_labkit

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


def failed_expectations(batch: pd.DataFrame) -> list[str]:
    if any(c not in batch.columns for c in REQUIRED):
        return ["columns"]
    failed = []
    if batch[REQUIRED].isna().any().any():
        failed.append("nulls")
    if (batch["amount"] <= 0).any():
        failed.append("amount")
    rate = batch["is_fraud"].mean()
    if not 0.002 <= rate <= 0.05:
        failed.append("fraud_rate")
    return failed


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: the model gate
# MAGIC
# MAGIC Compute `candidate_p80` and `baseline_p80`, the precision at 80 % recall on `holdout`
# MAGIC of `candidate` (on `FEATURES`) and of `baseline` (on `amount` alone), and `model_ok`:
# MAGIC True when the candidate's is at least twice the baseline's.

# COMMAND ----------

candidate_p80 = fraud_data.precision_at_recall(
    holdout["is_fraud"], candidate.predict_proba(holdout[FEATURES])[:, 1]
)
baseline_p80 = fraud_data.precision_at_recall(
    holdout["is_fraud"], baseline.predict_proba(holdout[["amount"]])[:, 1]
)
model_ok = candidate_p80 >= 2 * baseline_p80
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

latencies_ms = []
for i in range(200):
    start = time.perf_counter()
    candidate.predict_proba(holdout[FEATURES].iloc[[i]])
    latencies_ms.append((time.perf_counter() - start) * 1000)
latency_ok = float(np.percentile(latencies_ms, 95)) <= 100

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: stop the run
# MAGIC
# MAGIC Write `enforce(gates)`: `gates` maps a gate name to True (passed) or False. It raises
# MAGIC `QualityGateError` whose message contains the name of **every** failed gate, and
# MAGIC returns None when all passed. Then enforce this run's gates.

# COMMAND ----------


def enforce(gates: dict[str, bool]) -> None:
    failed = [name for name, ok in gates.items() if not ok]
    if failed:
        raise QualityGateError(f"quality gates failed: {', '.join(failed)}")


enforce(
    {
        "data": not failed_expectations(holdout),
        "model": bool(model_ok),
        "latency": bool(latency_ok),
    }
)

# COMMAND ----------

# MAGIC %run ../checks/lab_quality
