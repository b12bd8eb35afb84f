# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: tracking a fraud model against its baseline
# MAGIC
# MAGIC Course 3, week 1. The fraud team's current rule of thumb is "big amounts are
# MAGIC suspicious". Your job: record that baseline as an MLflow run, train a better model on
# MAGIC the behavioural features, log it as a model with a signature, let MLflow tell you which
# MAGIC run wins, and score the newest (drifted) transactions with the logged model.
# MAGIC
# MAGIC The metric is **precision at 80 % recall** on the validation set:
# MAGIC `fraud_data.precision_at_recall(y, score, 0.8)`.
# MAGIC
# MAGIC Replace every `FILL_IN`, run top to bottom and read the checks at the end. Locally:
# MAGIC `nox -s grade -- labs/course3/week1/lab_mlflow.py`.

# COMMAND ----------

# MAGIC %run ../../_labkit

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup (run as is)

# COMMAND ----------

import os
import sys
import uuid
from pathlib import Path

import mlflow
import numpy as np
import sklearn
from mlflow.data.pandas_dataset import from_pandas
from mlflow.models import infer_signature
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(_root / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

data = fraud_data.generate(20_000, seed=21)
frame = fraud_data.model_features(data.reference())
FEATURES = list(fraud_data.FEATURES)
cut = frame["ts"].quantile(0.7)
train, valid = frame[frame["ts"] < cut], frame[frame["ts"] >= cut]
drifted = fraud_data.model_features(data.transactions).query("ts >= @data.drift_start")
if IS_DATABRICKS:
    _user = spark.sql("SELECT current_user() AS user").collect()[0]["user"]
    experiment = mlflow.set_experiment(f"/Users/{_user}/course3_lab_mlflow")
else:
    experiment = mlflow.set_experiment("course3_lab_mlflow")
# Tag your runs with this id so that searches find this attempt's runs only.
attempt = uuid.uuid4().hex[:12]
print(f"train {len(train)}, valid {len(valid)}, drifted {len(drifted)}; attempt {attempt}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 1: the baseline run
# MAGIC
# MAGIC In a run named `baseline` tagged `attempt=<attempt>`: fit
# MAGIC `LogisticRegression()` on the `amount` column only, log the param `features` with the
# MAGIC value `"amount"` and the metric `val_precision_at_80_recall` on `valid`. Keep the run's
# MAGIC id in `baseline_run_id`.

# COMMAND ----------

# TODO: a run named baseline, tagged with the attempt: fit on amount, log the param and metric
baseline_run_id = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: a candidate, logged as a model
# MAGIC
# MAGIC In a run named `candidate` (same tag): fit a model of your choice on all of `FEATURES`,
# MAGIC log the training frame as a dataset input named `fraud_train`, the metric
# MAGIC `val_precision_at_80_recall`, and the model itself with `mlflow.sklearn.log_model`
# MAGIC (name `model`), a **signature** inferred from `valid[FEATURES]` and the fraud scores,
# MAGIC and an **input example** of a few rows. Keep `candidate_run_id` and
# MAGIC `candidate_model_uri` (the `model_uri` of what `log_model` returns).
# MAGIC
# MAGIC MLflow 3 saves scikit-learn models with skops: a tree model needs
# MAGIC `skops_trusted_types=["sklearn.tree._tree.Tree"]`; naming `pip_requirements` saves time.

# COMMAND ----------

# TODO: a run named candidate: dataset input, metric, and the model with signature and example
candidate_run_id = FILL_IN
candidate_model_uri = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 3: let MLflow pick the winner
# MAGIC
# MAGIC With `mlflow.search_runs`, find this attempt's runs (filter on the tag) ordered by
# MAGIC `val_precision_at_80_recall`, best first. Put the winner's run id in `best_run_id`.

# COMMAND ----------

# TODO: search this attempt's runs, best precision at 80 % recall first
best_run_id = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: score the newest transactions with the logged model
# MAGIC
# MAGIC Load the candidate back from `candidate_model_uri` (not the object in memory) and put
# MAGIC its fraud probabilities for `drifted[FEATURES]` in `drift_scores` (a 1-D array). Then
# MAGIC compute `drift_precision`, the precision at 80 % recall after the drift.

# COMMAND ----------

# TODO: load the logged model and score the drifted period
drift_scores = FILL_IN
drift_precision = FILL_IN
print(drift_precision)

# COMMAND ----------

# MAGIC %run ./checks/lab_mlflow
