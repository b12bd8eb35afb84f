# Databricks notebook source
# MAGIC %md
# MAGIC # Task: evaluate
# MAGIC
# MAGIC Scores the candidate and the current champion (if any) on the holdout (the last 30 %
# MAGIC of the reference period) by precision at 80 % recall. `improved` is `"true"` only
# MAGIC when the candidate is strictly better: the condition task reads it.

# COMMAND ----------

import json
import os
import sys
from pathlib import Path

import mlflow

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(_root / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

dbutils.widgets.text("catalog", "spark_catalog")
dbutils.widgets.text("schema", "course3_workflows")
dbutils.widgets.text("model_name", "course3_workflows_fraud")
dbutils.widgets.text("run_id", "")
db = f"{dbutils.widgets.get('catalog')}.{dbutils.widgets.get('schema')}"
model_name, run_id = dbutils.widgets.get("model_name"), dbutils.widgets.get("run_id")
if IS_DATABRICKS:
    mlflow.set_registry_uri("databricks-uc")
features = list(fraud_data.FEATURES)
frame = spark.table(f"{db}.fraud_features").filter("period = 'reference'").toPandas()
frame = frame.sort_values("ts")
holdout = frame[frame["ts"] >= frame["ts"].quantile(0.7)]


def precision(uri: str) -> float:
    model = mlflow.sklearn.load_model(uri)
    return fraud_data.precision_at_recall(
        holdout["is_fraud"], model.predict_proba(holdout[features])[:, 1]
    )


candidate = precision(f"runs:/{run_id}/model")
try:
    champion = precision(f"models:/{model_name}@champion")
except mlflow.exceptions.MlflowException:
    champion = float("-inf")  # no champion yet: any candidate is an improvement
values = {
    "candidate_precision": candidate,
    "champion_precision": champion if champion > float("-inf") else None,
    "improved": "true" if candidate > champion else "false",
}
for key, value in values.items():
    dbutils.jobs.taskValues.set(key, value)
dbutils.notebook.exit(json.dumps(values))
