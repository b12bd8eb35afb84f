# Databricks notebook source
# MAGIC %md
# MAGIC # Task: register
# MAGIC
# MAGIC Runs only when the condition task said the candidate is better: registers the run's
# MAGIC model as a new version and moves the `champion` alias to it.

# COMMAND ----------

import json
import os

import mlflow

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
dbutils.widgets.text("model_name", "course3_workflows_fraud")
dbutils.widgets.text("run_id", "")
dbutils.widgets.text("precision", "")
if IS_DATABRICKS:
    mlflow.set_registry_uri("databricks-uc")
model_name, run_id = dbutils.widgets.get("model_name"), dbutils.widgets.get("run_id")
version = mlflow.register_model(f"runs:/{run_id}/model", model_name)
client = mlflow.MlflowClient()
client.set_registered_model_alias(model_name, "champion", str(version.version))
client.set_model_version_tag(
    model_name,
    str(version.version),
    "holdout_precision_at_80_recall",
    dbutils.widgets.get("precision"),
)
dbutils.jobs.taskValues.set("version", str(version.version))
dbutils.notebook.exit(json.dumps({"version": str(version.version)}))
