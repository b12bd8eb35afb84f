# Databricks notebook source
# MAGIC %md
# MAGIC # Order rules (included with `%run`)
# MAGIC
# MAGIC Shared definitions that several notebooks use: `spark_notebooks` runs this notebook
# MAGIC with `%run ./includes/order_rules`, and everything defined here becomes defined there.
# MAGIC It only defines names, so running it on its own is harmless.

# COMMAND ----------

import pyspark.sql.functions as sf

VAT_RATE = 0.2


def with_amounts(orders_df):
    """Add the net `amount` (quantity x unit price) and the `gross` amount with VAT."""
    amount = sf.col("quantity") * sf.col("unit_price")
    return orders_df.withColumn("amount", sf.round(amount, 2)).withColumn(
        "gross", sf.round(amount * (1 + VAT_RATE), 2)
    )
