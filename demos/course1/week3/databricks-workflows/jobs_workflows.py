# Databricks notebook source
# MAGIC %md
# MAGIC # Workflows: a parameterised bronze → silver → gold job
# MAGIC
# MAGIC Course 1, week 3. Production pipelines are not one big notebook: they are **jobs** made
# MAGIC of **tasks**, each task a notebook with parameters, run in dependency order, retried on
# MAGIC failure. This notebook builds the classic *medallion* pipeline out of three task
# MAGIC notebooks in `./tasks/`:
# MAGIC
# MAGIC | task | writes | rule |
# MAGIC |---|---|---|
# MAGIC | `bronze_ingest` | `bronze_orders` (append) | keep every raw row, stamp its batch |
# MAGIC | `silver_clean` | `silver_orders` (MERGE) | reject bad rows, dedupe; idempotent |
# MAGIC | `gold_aggregate` | `gold_region_revenue` (overwrite) | business aggregates |
# MAGIC
# MAGIC `dbutils.notebook.run(path, timeout, arguments)` runs a task notebook with its own
# MAGIC widgets and returns the value the task passed to `dbutils.notebook.exit`. We use it to
# MAGIC run the job here, step by step, and check every task's result. At the end is the same
# MAGIC job declared as a Databricks multi-task job.

# COMMAND ----------

import json
import os
from typing import Any

import pyspark.sql.functions as sf

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ

dbutils.widgets.text("catalog", "workspace" if IS_DATABRICKS else "spark_catalog")
dbutils.widgets.text("schema", "course1_workflows")
catalog = dbutils.widgets.get("catalog")
schema = dbutils.widgets.get("schema")

# Start from empty tables so that the counts below hold on every run.
spark.sql(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
for name in ["bronze_orders", "silver_orders", "gold_region_revenue"]:
    spark.sql(f"DROP TABLE IF EXISTS {catalog}.{schema}.{name}")


def run_task(task: str, **arguments: str) -> dict:
    """Run one task notebook with the job's parameters and decode its JSON exit value."""
    value = dbutils.notebook.run(
        f"./tasks/{task}", 600, {"catalog": catalog, "schema": schema, **arguments}
    )
    assert value is not None, f"task {task} ended without dbutils.notebook.exit"
    result = json.loads(value)
    print(f"{task}: {result}")
    return result


# COMMAND ----------

# MAGIC %md
# MAGIC ## Run 1: the first batch
# MAGIC
# MAGIC Batch 1 holds 40 good orders plus three problems: a row without a region, a negative
# MAGIC quantity and a duplicated order. Bronze lands all 43 rows; silver keeps 40.

# COMMAND ----------

bronze_1 = run_task("bronze_ingest", batch="1")
silver_1 = run_task("silver_clean", batch="1")
gold_1 = run_task("gold_aggregate")

assert bronze_1["rows"] == 43
assert silver_1["rejected"] == 2
assert silver_1["clean"] == 40
assert silver_1["silver_rows"] == 40
assert gold_1["orders"] == 40

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run 2: a new batch, and a retry
# MAGIC
# MAGIC Batch 2 arrives: silver grows to 80 orders. Then the silver task runs *again* for
# MAGIC batch 2, as a job does when it retries a failed task. Because silver merges on the
# MAGIC order id, the retry changes nothing.

# COMMAND ----------

run_task("bronze_ingest", batch="2")
silver_2 = run_task("silver_clean", batch="2")
retry = run_task("silver_clean", batch="2")
gold_2 = run_task("gold_aggregate")

assert silver_2["silver_rows"] == 80
assert retry["silver_rows"] == 80, "a retried silver task must not duplicate rows"
assert gold_2["orders"] == 80

silver = spark.table(f"{catalog}.{schema}.silver_orders")
assert silver.select("order_id").distinct().count() == silver.count()
assert silver.filter(sf.col("region").isNull() | (sf.col("quantity") <= 0)).count() == 0

# COMMAND ----------

# MAGIC %md
# MAGIC ## The gold table
# MAGIC
# MAGIC Gold agrees with silver to the cent: it is rebuilt from it on every run.

# COMMAND ----------

gold = spark.table(f"{catalog}.{schema}.gold_region_revenue").orderBy(sf.desc("revenue"))
display(gold)

silver_revenue = silver.agg(sf.sum("amount")).collect()[0][0]
assert abs(gold_2["revenue"] - silver_revenue) < 0.01
bronze_rows = spark.table(f"{catalog}.{schema}.bronze_orders").count()
assert bronze_rows == 86, "bronze keeps every raw row, rejected ones included"

# COMMAND ----------

# MAGIC %md
# MAGIC ## The same pipeline as a Databricks job
# MAGIC
# MAGIC On Databricks you would not orchestrate from a notebook: you declare the three tasks
# MAGIC and their dependencies once, as a multi-task **job** (in the *Jobs & Pipelines* UI, or as
# MAGIC this JSON with the Jobs API, the Databricks CLI or an asset bundle), give it a schedule,
# MAGIC and Databricks runs each task on serverless compute, retries it, and alerts on failure.
# MAGIC Job parameters reach the task notebooks as widget values, exactly as the arguments of
# MAGIC `dbutils.notebook.run` did above. Locally, this notebook plays the scheduler.

# COMMAND ----------

# A job can take its notebooks straight from the Git repository this course lives in.
task_dir = "demos/course1/week3/databricks-workflows/tasks"
tasks: list[dict[str, Any]] = [
    {
        "task_key": "bronze_ingest",
        "notebook_task": {"notebook_path": f"{task_dir}/bronze_ingest", "source": "GIT"},
        "max_retries": 2,
    },
    {
        "task_key": "silver_clean",
        "depends_on": [{"task_key": "bronze_ingest"}],
        "notebook_task": {"notebook_path": f"{task_dir}/silver_clean", "source": "GIT"},
        "max_retries": 2,
    },
    {
        "task_key": "gold_aggregate",
        "depends_on": [{"task_key": "silver_clean"}],
        "notebook_task": {"notebook_path": f"{task_dir}/gold_aggregate", "source": "GIT"},
    },
]
job = {
    "name": "course1-orders-medallion",
    "git_source": {
        "git_url": "<this repository's URL>",
        "git_provider": "gitHub",
        "git_branch": "main",
    },
    "parameters": [
        {"name": "catalog", "default": catalog},
        {"name": "schema", "default": schema},
        {"name": "batch", "default": "1"},
    ],
    "tasks": tasks,
}
print(json.dumps(job, indent=2))

order = [t["task_key"] for t in tasks]
assert order == ["bronze_ingest", "silver_clean", "gold_aggregate"]
assert all(
    order.index(d["task_key"]) < order.index(t["task_key"])
    for t in tasks
    for d in t.get("depends_on", [])
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## What you saw
# MAGIC
# MAGIC - A job is tasks plus dependencies; each task is a parameterised notebook.
# MAGIC - Bronze keeps raw data, silver enforces rules, gold serves the business.
# MAGIC - `MERGE` on a key makes a task idempotent, so retries are safe.
# MAGIC - `dbutils.notebook.run` passes arguments in and gets a value back.
