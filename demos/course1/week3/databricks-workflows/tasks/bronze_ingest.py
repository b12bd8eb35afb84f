# Databricks notebook source
# MAGIC %md
# MAGIC # Task 1 of the orders job: bronze ingest
# MAGIC
# MAGIC Lands one batch of raw orders *as they arrive*, dirty rows included, and stamps each
# MAGIC row with its batch number and ingestion time. Running it twice for one batch leaves the
# MAGIC batch in bronze once (it replaces the batch's rows): a job may retry it safely. Bronze
# MAGIC keeps everything: cleaning is the next task's job, and the raw data stays available to
# MAGIC re-clean later.
# MAGIC
# MAGIC Run by `jobs_workflows` (or a Databricks job) with the parameters below; it returns the
# MAGIC number of rows it landed.

# COMMAND ----------

import json
import os
import random

import pyspark.sql.functions as sf

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ

dbutils.widgets.text("catalog", "workspace" if IS_DATABRICKS else "spark_catalog")
dbutils.widgets.text("schema", "course1_workflows")
dbutils.widgets.text("batch", "1")
catalog = dbutils.widgets.get("catalog")
schema = dbutils.widgets.get("schema")
batch = int(dbutils.widgets.get("batch"))

# COMMAND ----------

# Each batch is generated from its own seed: the same batch number gives the same rows.
# Batch b holds orders 40*(b-1)+1 .. 40*b, plus deliberate problems: a missing region,
# a negative quantity, and a duplicate of the batch's first order.
rng = random.Random(batch)
first_id = 40 * (batch - 1) + 1
rows: list[tuple[int, str | None, int, float]] = [
    (
        order_id,
        rng.choice(["north", "south", "east", "west"]),
        rng.randint(1, 5),
        rng.choice([2.5, 7.25, 12.0]),
    )
    for order_id in range(first_id, first_id + 40)
]
rows += [(first_id + 40, None, 2, 7.25), (first_id + 41, "east", -3, 2.5), rows[0]]

spark.sql(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
bronze_table = f"{catalog}.{schema}.bronze_orders"
spark.sql(
    f"CREATE TABLE IF NOT EXISTS {bronze_table} (order_id INT, region STRING, quantity INT, "
    "unit_price DOUBLE, batch INT, ingested_at TIMESTAMP)"
)
bronze = (
    spark.createDataFrame(rows, "order_id INT, region STRING, quantity INT, unit_price DOUBLE")
    .withColumn("batch", sf.lit(batch))
    .withColumn("ingested_at", sf.current_timestamp())
)
# Idempotent: the write *replaces this batch's rows* (and only them) in one commit, so a
# retried or re-run task lands the batch once. A plain append would land it twice.
bronze.write.mode("overwrite").option("replaceWhere", f"batch = {batch}").saveAsTable(bronze_table)
dbutils.jobs.taskValues.set("rows", len(rows))

# COMMAND ----------

dbutils.notebook.exit(json.dumps({"task": "bronze", "batch": batch, "rows": len(rows)}))
