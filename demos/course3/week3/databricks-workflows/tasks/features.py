# Databricks notebook source
# MAGIC %md
# MAGIC # Task: features
# MAGIC
# MAGIC Computes the model inputs (`fraud_data.model_features`: velocity, amount against the
# MAGIC customer's history, category habits, hour) into `fraud_features`, with a `period`
# MAGIC column: `reference` before the drift, `current` from it on.

# COMMAND ----------

import json
import os
import sys
from pathlib import Path

import pandas as pd

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(_root / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

dbutils.widgets.text("catalog", "spark_catalog")
dbutils.widgets.text("schema", "course3_workflows")
dbutils.widgets.text("drift_start", "")
db = f"{dbutils.widgets.get('catalog')}.{dbutils.widgets.get('schema')}"
drift_start = pd.Timestamp(dbutils.widgets.get("drift_start"))
tx = spark.table(f"{db}.fraud_transactions").toPandas()
feats = fraud_data.model_features(tx)
feats["period"] = (feats["ts"] >= drift_start).map({False: "reference", True: "current"})
columns = ["transaction_id", "ts", "period", *fraud_data.FEATURES, "is_fraud"]
spark.createDataFrame(feats[columns]).write.format("delta").mode("overwrite").option(
    "overwriteSchema", "true"
).saveAsTable(f"{db}.fraud_features")
values = {"rows": len(feats)}
dbutils.jobs.taskValues.set("rows", len(feats))
dbutils.notebook.exit(json.dumps(values))
