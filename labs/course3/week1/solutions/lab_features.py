# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: merchant features without peeking into the future (solution)
# MAGIC
# MAGIC Course 3, week 1. Fraud rings hit a few merchants hard for a few days, so the fraud
# MAGIC team wants merchant-level activity features: how many transactions a merchant saw in
# MAGIC the last 7 days, and their mean amount. Your job: publish them as a feature table keyed
# MAGIC by merchant and time, build a point-in-time training set from it, apply a correction
# MAGIC batch with a merge, and measure how many rows a naive join would have leaked.
# MAGIC
# MAGIC Replace every `FILL_IN`, run top to bottom and read the checks at the end. Locally:
# MAGIC `nox -s grade -- labs/course3/week1/lab_features.py`.

# COMMAND ----------

# MAGIC %run ../../../_labkit

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup (run as is)

# COMMAND ----------

import os
import sys
from pathlib import Path

import pandas as pd
import pyspark.sql.functions as sf
from pyspark.sql import Window

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
if IS_DATABRICKS:
    from databricks.feature_engineering import (  # ty: ignore[import-not-found]
        FeatureEngineeringClient,
        FeatureLookup,
    )
else:
    from coursekit.feature_engineering import FeatureEngineeringClient, FeatureLookup

_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(_root / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

catalog = "workspace" if IS_DATABRICKS else "spark_catalog"
db = f"{catalog}.course3_lab_features"
spark.sql(f"CREATE SCHEMA IF NOT EXISTS {db}")
feature_table = f"{db}.merchant_daily"
spark.sql(f"DROP TABLE IF EXISTS {feature_table}")
fe = FeatureEngineeringClient()

data = fraud_data.generate(8_000, seed=33)
tx_pd = data.transactions
transactions = spark.createDataFrame(tx_pd)
transactions.createOrReplaceTempView("transactions")
print(f"{len(tx_pd)} transactions, {tx_pd['merchant_id'].nunique()} merchants")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 1: the merchant feature table
# MAGIC
# MAGIC Build `merchant_daily` with one row per merchant and day that merchant had
# MAGIC transactions: `merchant_id`, `as_of` (the **next** midnight after that day, a
# MAGIC TIMESTAMP: the values are known once the day is over), `txn_count_7d` (transactions
# MAGIC on that day and the 6 days before) and `avg_amount_7d` (their mean amount). Then
# MAGIC create the feature table `feature_table` from it, keyed by `merchant_id` and `as_of`,
# MAGIC with `as_of` as the timeseries column.

# COMMAND ----------

merchant_daily = spark.sql(
    """
    WITH daily AS (
      SELECT merchant_id,
             CAST(date_trunc('DAY', ts) + INTERVAL 1 DAY AS TIMESTAMP) AS as_of,
             COUNT(*) AS n, SUM(amount) AS total
      FROM transactions GROUP BY merchant_id, date_trunc('DAY', ts)
    )
    SELECT merchant_id, as_of,
           SUM(n) OVER w AS txn_count_7d,
           SUM(total) OVER w / SUM(n) OVER w AS avg_amount_7d
    FROM daily
    WINDOW w AS (PARTITION BY merchant_id ORDER BY unix_seconds(as_of)
                 RANGE BETWEEN 518400 PRECEDING AND CURRENT ROW)
    """
)
fe.create_table(
    name=feature_table,
    primary_keys=["merchant_id", "as_of"],
    timeseries_column="as_of",
    df=merchant_daily,
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: a point-in-time training set
# MAGIC
# MAGIC For every transaction (`transactions`), look up the merchant's two features as of the
# MAGIC transaction's `ts`. Build `training_set` with `fe.create_training_set`, label
# MAGIC `is_fraud`, and keep `transaction_id` in it (exclude `merchant_id` and `customer_id`).

# COMMAND ----------

training_set = fe.create_training_set(
    df=transactions,
    feature_lookups=[
        FeatureLookup(
            table_name=feature_table,
            lookup_key="merchant_id",
            timestamp_lookup_key="ts",
            feature_names=["txn_count_7d", "avg_amount_7d"],
        )
    ],
    label="is_fraud",
    exclude_columns=["merchant_id", "customer_id"],
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 3: a correction batch
# MAGIC
# MAGIC A late file showed that merchant 1's counts were wrong: `corrections` holds its rows
# MAGIC with `txn_count_7d` doubled. **Merge** it into the feature table (update the matching
# MAGIC keys, keep every other row).

# COMMAND ----------

corrections = (
    spark.table(feature_table)
    .filter("merchant_id = 1")
    .withColumn("txn_count_7d", sf.col("txn_count_7d") * 2)
)
rows_before = spark.table(feature_table).count()

fe.write_table(name=feature_table, df=corrections, mode="merge")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: how much would a naive join leak?
# MAGIC
# MAGIC Join every transaction to its merchant's **latest** feature row (ignoring time), and
# MAGIC count in `n_future_rows` the transactions whose joined row's `as_of` is later than
# MAGIC the transaction's `ts`: each of those rows would train on the future.

# COMMAND ----------

newest = Window.partitionBy("merchant_id").orderBy(sf.desc("as_of"))
latest = (
    spark.table(feature_table)
    .withColumn("rank", sf.row_number().over(newest))
    .filter("rank = 1")
    .select("merchant_id", "as_of")
)
n_future_rows = transactions.join(latest, "merchant_id").filter("as_of > ts").count()
print(n_future_rows)

# COMMAND ----------

# MAGIC %run ../checks/lab_features
