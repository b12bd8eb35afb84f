# Databricks notebook source
# MAGIC %md
# MAGIC # Feature engineering: feature tables and point-in-time lookups
# MAGIC
# MAGIC Course 3, week 1. A **feature table** holds features computed once and reused by every
# MAGIC model: here, per customer and per day, their recent spending and how many of their
# MAGIC transactions were confirmed as fraud so far (chargebacks). It is keyed by the
# MAGIC **entity** (`customer_id`) and a **timestamp** (`as_of`: when the values became known).
# MAGIC
# MAGIC The trap this lesson is about is **label leakage**. Joining each transaction to the
# MAGIC customer's *latest* features uses information from after the transaction (its own
# MAGIC chargeback among it): the model looks excellent in validation and fails in
# MAGIC production, where the future is not known. A **point-in-time lookup** (an as-of join)
# MAGIC gives each transaction the values as they were at its own time. We show both and
# MAGIC assert the difference, then build the training set from lookups, log the model with
# MAGIC them, and score new transactions with the very same definitions.
# MAGIC
# MAGIC On Databricks the client is `databricks.feature_engineering.FeatureEngineeringClient`
# MAGIC (tables in Unity Catalog, e.g. `workspace.course3_features.customer_daily`; the package
# MAGIC is in Databricks Runtime ML and on serverless). Locally it is
# MAGIC `coursekit.feature_engineering.FeatureEngineeringClient`: the same calls for what this
# MAGIC lesson uses, on Spark + Delta (`spark_catalog.course3_features.customer_daily`).

# COMMAND ----------

import os
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyspark.sql.functions as sf
import sklearn
from pyspark.sql import Window
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score
from sklearn.pipeline import make_pipeline
from threadpoolctl import threadpool_limits

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
# Histogram boosting fits with every core by default (OpenMP); on a small machine running
# several notebooks, threads fight for cores. One thread per fit is faster there.
threadpool_limits(1)
if IS_DATABRICKS:
    # Part of Databricks Runtime ML and serverless; not installed locally.
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

dbutils.widgets.text("catalog", "workspace" if IS_DATABRICKS else "spark_catalog")
dbutils.widgets.text("schema", "course3_features")
dbutils.widgets.text("n_transactions", "20000")
catalog, schema = dbutils.widgets.get("catalog"), dbutils.widgets.get("schema")
n_transactions = int(dbutils.widgets.get("n_transactions"))
db = f"{catalog}.{schema}"
spark.sql(f"CREATE SCHEMA IF NOT EXISTS {db}")
for name in ("customer_daily", "fraud_transactions", "fraud_customers", "fraud_merchants"):
    spark.sql(f"DROP TABLE IF EXISTS {db}.{name}")
fe = FeatureEngineeringClient()

# COMMAND ----------

# MAGIC %md
# MAGIC ## The transactions, as a Delta table
# MAGIC
# MAGIC Two inputs come straight from the transaction itself (known when it happens):
# MAGIC `night` and `risky` (a category fraudsters prefer).

# COMMAND ----------

data = fraud_data.generate(n_transactions, seed=7)
tables = fraud_data.write_tables(data, spark, f"{db}.fraud")
transactions = (
    spark.table(tables["transactions"])
    .withColumn("night", (sf.hour("ts") < 6).cast("int"))
    .withColumn("risky", sf.col("category").isin(*fraud_data.RISKY).cast("int"))
)
print(tables, transactions.count())

# COMMAND ----------

# MAGIC %md
# MAGIC ## A feature table keyed by customer and time
# MAGIC
# MAGIC One row per customer and day they shopped, computed at the end of that day (so
# MAGIC `as_of` is the next midnight): transactions and mean amount over the last 30 days, and
# MAGIC the number of chargebacks (confirmed fraud) so far. The timestamp is part of the key:
# MAGIC `timeseries_column` marks it as the time the values hold from.

# COMMAND ----------

transactions.createOrReplaceTempView("tx")
customer_daily = spark.sql(
    """
    WITH daily AS (
      SELECT customer_id,
             CAST(date_trunc('DAY', ts) + INTERVAL 1 DAY AS TIMESTAMP) AS as_of,
             COUNT(*) AS n, SUM(amount) AS total, SUM(is_fraud) AS frauds
      FROM tx GROUP BY customer_id, date_trunc('DAY', ts)
    )
    SELECT customer_id, as_of,
           SUM(n) OVER w30 AS txn_count_30d,
           SUM(total) OVER w30 / SUM(n) OVER w30 AS avg_amount_30d,
           SUM(frauds) OVER (PARTITION BY customer_id ORDER BY as_of
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS chargebacks_total
    FROM daily
    WINDOW w30 AS (PARTITION BY customer_id ORDER BY unix_seconds(as_of)
                   RANGE BETWEEN 2505600 PRECEDING AND CURRENT ROW)
    """
)
feature_table = f"{db}.customer_daily"
fe.create_table(
    name=feature_table,
    primary_keys=["customer_id", "as_of"],
    timeseries_column="as_of",
    df=customer_daily,
    description="Per customer and day: 30-day activity and chargebacks so far",
)
print(fe.get_table(name=feature_table))
display(fe.read_table(name=feature_table).orderBy("customer_id", "as_of").limit(5))

# COMMAND ----------

# MAGIC %md
# MAGIC ## The naive join leaks
# MAGIC
# MAGIC Joining on `customer_id` alone to the customer's latest row is what a quick notebook
# MAGIC does. Each transaction then "knows" its customer's chargebacks up to the end of the
# MAGIC data, its own included. Train on the first 70 % of the training period, validate on
# MAGIC the rest, both built the same naive way.

# COMMAND ----------

features = ["amount", "night", "risky", "txn_count_30d", "avg_amount_30d", "chargebacks_total"]
labelled = transactions.filter(sf.col("ts") < sf.lit(data.drift_start)).select(
    "transaction_id", "customer_id", "ts", "amount", "night", "risky", "is_fraud"
)
newest_first = Window.partitionBy("customer_id").orderBy(sf.desc("as_of"))
latest = (
    fe.read_table(name=feature_table)
    .withColumn("rank", sf.row_number().over(newest_first))
    .filter("rank = 1")
    .drop("rank", "as_of")
)
naive = labelled.join(latest, "customer_id", "left").toPandas().sort_values("ts")
cut = naive["ts"].quantile(0.7)


def fit_and_score(frame: pd.DataFrame) -> tuple[HistGradientBoostingClassifier, float]:
    train, valid = frame[frame["ts"] < cut], frame[frame["ts"] >= cut]
    model = HistGradientBoostingClassifier(max_iter=60, random_state=0)
    model.fit(train[features], train["is_fraud"])
    ap = average_precision_score(valid["is_fraud"], model.predict_proba(valid[features])[:, 1])
    return model, ap


naive_model, naive_ap = fit_and_score(naive)
print(f"naive join: validation average precision {naive_ap:.3f}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## The point-in-time lookup does not
# MAGIC
# MAGIC `FeatureLookup(..., timestamp_lookup_key="ts")` takes, for each transaction, the
# MAGIC latest feature row with `as_of <= ts`. `create_training_set` joins every lookup onto
# MAGIC the labelled rows; `exclude_columns` keeps keys out of the model's inputs.

# COMMAND ----------

lookups = [
    FeatureLookup(
        table_name=feature_table,
        lookup_key="customer_id",
        timestamp_lookup_key="ts",
        feature_names=["txn_count_30d", "avg_amount_30d", "chargebacks_total"],
    )
]
training_set = fe.create_training_set(
    df=labelled,
    feature_lookups=lookups,
    label="is_fraud",
    exclude_columns=["transaction_id", "customer_id"],
)
point_in_time = training_set.load_df().toPandas().sort_values("ts")
pit_model, pit_ap = fit_and_score(point_in_time)
print(f"point-in-time lookup: validation average precision {pit_ap:.3f}")

# COMMAND ----------

# MAGIC %md
# MAGIC ### What the difference means
# MAGIC
# MAGIC The naive model looks far better, but it is judged on data it could never have in
# MAGIC production. Score it on the point-in-time features of the validation rows (what it
# MAGIC would really see at each transaction) and its advantage is gone.
# MAGIC
# MAGIC An independent check of the as-of join: for a few transactions, the chargebacks
# MAGIC count recomputed in pandas from the raw transactions (frauds on earlier days only).

# COMMAND ----------

valid_pit = point_in_time[point_in_time["ts"] >= cut]
naive_in_production = average_precision_score(
    valid_pit["is_fraud"], naive_model.predict_proba(valid_pit[features])[:, 1]
)
print(f"naive model on real-time features: {naive_in_production:.3f}")
assert naive_ap > pit_ap + 0.1, (naive_ap, pit_ap)
assert naive_in_production < naive_ap - 0.1, (naive_in_production, naive_ap)
# Customers with a chargeback at the end of the data carry it on every naive row.
assert (naive["chargebacks_total"] > 0).mean() > (point_in_time["chargebacks_total"] > 0).mean()

tx_pd = data.transactions
sample = (
    labelled.select("transaction_id", "customer_id", "ts").toPandas().sample(25, random_state=1)
)
pit_by_tx = (
    fe.create_training_set(df=spark.createDataFrame(sample), feature_lookups=lookups, label=None)
    .load_df()
    .toPandas()
    .set_index("transaction_id")
)
for tid, customer, ts in sample[["transaction_id", "customer_id", "ts"]].itertuples(index=False):
    before = tx_pd[(tx_pd["customer_id"] == customer) & (tx_pd["ts"] < ts.normalize())]
    got = pit_by_tx.loc[tid, "chargebacks_total"]
    want = before["is_fraud"].sum() if len(before) else np.nan
    assert (np.isnan(got) and np.isnan(want)) or got == want, (tid, got, want)
print("as-of chargebacks match a pandas recomputation on 25 transactions")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Train from the training set, log the model with its lookups
# MAGIC
# MAGIC `fe.log_model` logs the model *and* the lookups it was trained with. The model's
# MAGIC inputs are the training set's columns minus the label (`ts` is kept in the lookups'
# MAGIC key, so it is dropped before fitting by selecting the feature columns; the model
# MAGIC below is a pipeline that does that selection itself, so training and scoring agree).

# COMMAND ----------

train_df = point_in_time[point_in_time["ts"] < cut]
model = make_pipeline(
    ColumnTransformer([("features", "passthrough", features)]),
    HistGradientBoostingClassifier(max_iter=60, random_state=0),
)
model.fit(train_df.drop(columns=["is_fraud"]), train_df["is_fraud"])
if IS_DATABRICKS:
    user = spark.sql("SELECT current_user() AS user").collect()[0]["user"]
    mlflow.set_experiment(f"/Users/{user}/course3_features")
else:
    mlflow.set_experiment("course3_features")
with mlflow.start_run(run_name="fraud-point-in-time"):
    mlflow.log_metric("val_average_precision", pit_ap)
    info = fe.log_model(
        model=model,
        artifact_path="model",
        flavor=mlflow.sklearn,
        training_set=training_set,
        # Scores, not labels: the pyfunc calls predict_proba.
        pyfunc_predict_fn="predict_proba",
        # MLflow 3 saves with skops; we trained this tree model, so we trust its nodes.
        skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
print(info.model_uri)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Score new transactions with the same definitions
# MAGIC
# MAGIC The drifted period's transactions arrive with their ids, customer and time only;
# MAGIC `score_batch` looks their features up as of each transaction's time (the recorded
# MAGIC lookups), runs the model on Spark, and appends `prediction` (here the two class
# MAGIC probabilities). The scores equal the model's own on a training set built for the
# MAGIC same rows: one definition of the features, in training and in scoring.

# COMMAND ----------

new = transactions.filter(sf.col("ts") >= sf.lit(data.drift_start)).select(
    "transaction_id", "customer_id", "ts", "amount", "night", "risky"
)
scored = fe.score_batch(model_uri=info.model_uri, df=new, result_type="array<double>")
scored = scored.withColumn("fraud_score", sf.col("prediction")[1])
display(scored.select("transaction_id", "customer_id", "ts", "amount", "fraud_score").limit(5))

got = scored.select("transaction_id", "fraud_score").toPandas().set_index("transaction_id")
reference = fe.create_training_set(df=new, feature_lookups=lookups, label=None).load_df().toPandas()
want = pd.Series(
    model.predict_proba(reference)[:, 1], index=reference["transaction_id"]
).sort_index()
np.testing.assert_allclose(got["fraud_score"].sort_index().to_numpy(), want.to_numpy(), rtol=1e-12)
truth = data.drifted().set_index("transaction_id")["is_fraud"].sort_index()
print(
    f"scored {len(got)} new transactions; average precision after the drift "
    f"{average_precision_score(truth, want):.3f} (validation before it: {pit_ap:.3f})"
)
