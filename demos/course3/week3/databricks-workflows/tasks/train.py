# Databricks notebook source
# MAGIC %md
# MAGIC # Task: train
# MAGIC
# MAGIC Fits the fraud model on the first 70 % of the reference period and logs it to MLflow
# MAGIC (signature included); passes on the run id.

# COMMAND ----------

import json
import os
import sys
from pathlib import Path

import mlflow
import sklearn
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(_root / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

dbutils.widgets.text("catalog", "spark_catalog")
dbutils.widgets.text("schema", "course3_workflows")
db = f"{dbutils.widgets.get('catalog')}.{dbutils.widgets.get('schema')}"
features = list(fraud_data.FEATURES)
frame = spark.table(f"{db}.fraud_features").filter("period = 'reference'").toPandas()
frame = frame.sort_values("ts")
train = frame[frame["ts"] < frame["ts"].quantile(0.7)]
if IS_DATABRICKS:
    user = spark.sql("SELECT current_user() AS user").collect()[0]["user"]
    mlflow.set_experiment(f"/Users/{user}/course3_workflows")
else:
    mlflow.set_experiment("course3_workflows")
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
model.fit(train[features], train["is_fraud"])
with mlflow.start_run(run_name="pipeline-train") as run:
    mlflow.log_param("features", ",".join(features))
    mlflow.log_metric("train_rows", len(train))
    mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(train[features], model.predict_proba(train[features])[:, 1]),
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
dbutils.jobs.taskValues.set("run_id", run.info.run_id)
dbutils.notebook.exit(json.dumps({"run_id": run.info.run_id}))
