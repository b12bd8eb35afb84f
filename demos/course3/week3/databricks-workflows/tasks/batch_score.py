# Databricks notebook source
# MAGIC %md
# MAGIC # Task: batch score
# MAGIC
# MAGIC Scores the current period with whichever version is `champion` now (new or kept) on
# MAGIC Spark (`mlflow.pyfunc.spark_udf`) into `fraud_scores`.

# COMMAND ----------

import json
import os
import sys
from pathlib import Path

import mlflow
import pyspark.sql.functions as sf

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(_root / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

dbutils.widgets.text("catalog", "spark_catalog")
dbutils.widgets.text("schema", "course3_workflows")
dbutils.widgets.text("model_name", "course3_workflows_fraud")
db = f"{dbutils.widgets.get('catalog')}.{dbutils.widgets.get('schema')}"
model_name = dbutils.widgets.get("model_name")
if IS_DATABRICKS:
    mlflow.set_registry_uri("databricks-uc")
uri = f"models:/{model_name}@champion"
version = mlflow.MlflowClient().get_model_version_by_alias(model_name, "champion").version
current = spark.table(f"{db}.fraud_features").filter("period = 'current'")
# The logged pyfunc predicts labels (0/1) at the model's 0.5 threshold.
predict = mlflow.pyfunc.spark_udf(spark, uri, result_type="double", env_manager="local")
scored = current.withColumn("flagged", predict(sf.struct(*fraud_data.FEATURES))).withColumn(
    "model_version", sf.lit(str(version))
)
scored.select("transaction_id", "ts", "flagged", "model_version").write.format("delta").mode(
    "overwrite"
).saveAsTable(f"{db}.fraud_scores")
counts = (
    spark.table(f"{db}.fraud_scores")
    .agg(sf.count("*").alias("scored"), sf.sum("flagged").alias("flagged"))
    .collect()[0]
)
values = {
    "scored": int(counts["scored"]),
    "flagged": int(counts["flagged"]),
    "version": str(version),
}
dbutils.jobs.taskValues.set("scored", values["scored"])
dbutils.notebook.exit(json.dumps(values))
