# Databricks notebook source
# MAGIC %md
# MAGIC # Task 2 of the orders job: silver clean
# MAGIC
# MAGIC Takes one bronze batch, rejects rows that break the rules (no region, a quantity that
# MAGIC is not positive), removes duplicates, and upserts the rest into the silver table with
# MAGIC `MERGE INTO`. Because it merges on the order id, running the task twice for the same
# MAGIC batch changes nothing: the task is *idempotent*, so a job can safely retry it.

# COMMAND ----------

import json
import os

import pyspark.sql.functions as sf

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ

dbutils.widgets.text("catalog", "workspace" if IS_DATABRICKS else "spark_catalog")
dbutils.widgets.text("schema", "course1_workflows")
dbutils.widgets.text("batch", "1")
catalog = dbutils.widgets.get("catalog")
schema = dbutils.widgets.get("schema")
batch = int(dbutils.widgets.get("batch"))
silver_table = f"{catalog}.{schema}.silver_orders"

# COMMAND ----------

batch_rows = spark.table(f"{catalog}.{schema}.bronze_orders").filter(sf.col("batch") == batch)
valid = batch_rows.filter(sf.col("region").isNotNull() & (sf.col("quantity") > 0))
clean = valid.dropDuplicates(["order_id"]).select(
    "order_id",
    "region",
    "quantity",
    "unit_price",
    (sf.col("quantity") * sf.col("unit_price")).alias("amount"),
    "batch",
)
rejected = batch_rows.count() - valid.count()

spark.sql(
    f"CREATE TABLE IF NOT EXISTS {silver_table} "
    "(order_id INT, region STRING, quantity INT, unit_price DOUBLE, amount DOUBLE, batch INT)"
)
clean.createOrReplaceTempView("silver_updates")
spark.sql(f"""
    MERGE INTO {silver_table} AS target
    USING silver_updates AS source
    ON target.order_id = source.order_id
    WHEN MATCHED THEN UPDATE SET *
    WHEN NOT MATCHED THEN INSERT *
""")

# COMMAND ----------

# Task values: what later tasks of the job (and its condition task) may read.
dbutils.jobs.taskValues.set("rejected", rejected)
dbutils.jobs.taskValues.set("clean", clean.count())
result = {
    "task": "silver",
    "batch": batch,
    "clean": clean.count(),
    "rejected": rejected,
    "silver_rows": spark.table(silver_table).count(),
}
dbutils.notebook.exit(json.dumps(result))
