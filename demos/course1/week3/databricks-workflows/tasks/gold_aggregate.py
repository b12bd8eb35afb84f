# Databricks notebook source
# MAGIC %md
# MAGIC # Task 3 of the orders job: gold aggregate
# MAGIC
# MAGIC Rebuilds the business-level table from silver: revenue and order count per region.
# MAGIC Gold tables are what dashboards read; rebuilding them whole from silver keeps them
# MAGIC consistent with it after every run.

# COMMAND ----------

import json
import os

import pyspark.sql.functions as sf

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ

dbutils.widgets.text("catalog", "workspace" if IS_DATABRICKS else "spark_catalog")
dbutils.widgets.text("schema", "course1_workflows")
catalog = dbutils.widgets.get("catalog")
schema = dbutils.widgets.get("schema")

# COMMAND ----------

gold = (
    spark.table(f"{catalog}.{schema}.silver_orders")
    .groupBy("region")
    .agg(sf.count("order_id").alias("orders"), sf.round(sf.sum("amount"), 2).alias("revenue"))
)
gold.write.mode("overwrite").saveAsTable(f"{catalog}.{schema}.gold_region_revenue")

totals = gold.agg(sf.sum("orders").alias("orders"), sf.sum("revenue").alias("revenue")).collect()[0]
result = {
    "task": "gold",
    "regions": gold.count(),
    "orders": totals.orders,
    "revenue": totals.revenue,
}
dbutils.notebook.exit(json.dumps(result))
