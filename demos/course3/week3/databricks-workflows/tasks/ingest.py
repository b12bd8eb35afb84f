# Databricks notebook source
# MAGIC %md
# MAGIC # Task: ingest
# MAGIC
# MAGIC Writes the fraud data (customers, merchants, transactions) as Delta tables; passes on
# MAGIC when the drifted period starts.

# COMMAND ----------

import json
import os
import sys
from pathlib import Path

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(_root / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

dbutils.widgets.text("catalog", "spark_catalog")
dbutils.widgets.text("schema", "course3_workflows")
dbutils.widgets.text("n_transactions", "20000")
db = f"{dbutils.widgets.get('catalog')}.{dbutils.widgets.get('schema')}"
spark.sql(f"CREATE SCHEMA IF NOT EXISTS {db}")
data = fraud_data.generate(int(dbutils.widgets.get("n_transactions")), seed=7)
tables = fraud_data.write_tables(data, spark, f"{db}.fraud")
values = {"rows": len(data.transactions), "drift_start": data.drift_start.isoformat()}
for key, value in values.items():
    dbutils.jobs.taskValues.set(key, value)
dbutils.notebook.exit(json.dumps(values))
