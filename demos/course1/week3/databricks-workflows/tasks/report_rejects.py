# Databricks notebook source
# MAGIC %md
# MAGIC # Task 4 of the orders job: report rejected rows
# MAGIC
# MAGIC Runs only when the job's condition task found rejected rows in the batch
# MAGIC (`{{tasks.silver_clean.values.rejected}} > 0`). It copies the batch's invalid bronze rows
# MAGIC into `rejected_orders` for someone to look at, replacing that batch's earlier report,
# MAGIC so a retry reports each row once. The job passes silver's count as the `rejected`
# MAGIC parameter; the task checks that it finds as many rows.

# COMMAND ----------

import json
import os

import pyspark.sql.functions as sf

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ

dbutils.widgets.text("catalog", "workspace" if IS_DATABRICKS else "spark_catalog")
dbutils.widgets.text("schema", "course1_workflows")
dbutils.widgets.text("batch", "1")
dbutils.widgets.text("rejected", "0")
catalog = dbutils.widgets.get("catalog")
schema = dbutils.widgets.get("schema")
batch = int(dbutils.widgets.get("batch"))
expected = int(dbutils.widgets.get("rejected"))

# COMMAND ----------

invalid = (
    spark.table(f"{catalog}.{schema}.bronze_orders")
    .filter(sf.col("batch") == batch)
    .filter(sf.col("region").isNull() | (sf.col("quantity") <= 0))
    .drop("ingested_at")
)
report_table = f"{catalog}.{schema}.rejected_orders"
spark.sql(
    f"CREATE TABLE IF NOT EXISTS {report_table} "
    "(order_id INT, region STRING, quantity INT, unit_price DOUBLE, batch INT)"
)
invalid.write.mode("overwrite").option("replaceWhere", f"batch = {batch}").saveAsTable(report_table)
reported = spark.table(report_table).filter(sf.col("batch") == batch).count()
if reported != expected:
    raise ValueError(f"silver rejected {expected} rows of batch {batch}, bronze has {reported}")

# COMMAND ----------

dbutils.notebook.exit(json.dumps({"task": "report", "batch": batch, "reported": reported}))
