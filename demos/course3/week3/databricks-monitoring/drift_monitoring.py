# Databricks notebook source
# MAGIC %md
# MAGIC # Monitoring: data drift, prediction drift, an inference table, alerts
# MAGIC
# MAGIC Course 3, week 3. A fraud model is trained on the past; the world then moves (prices
# MAGIC rise, people shop online at night, fraudsters change tactics). Monitoring compares what
# MAGIC the model sees now with what it was trained on, per feature and for its outputs, and
# MAGIC raises an alert when the difference crosses a threshold.
# MAGIC
# MAGIC - **PSI** (population stability index): bin the reference distribution by its
# MAGIC   deciles, compare the share of current data in each bin:
# MAGIC   `PSI = sum((cur - ref) * ln(cur / ref))`. Rule of thumb: < 0.1 stable, 0.1-0.2
# MAGIC   moderate, > 0.2 a significant shift.
# MAGIC - **KS** (Kolmogorov-Smirnov): the largest gap between the two empirical CDFs, with a
# MAGIC   p-value for "same distribution". Both are computed here by hand and checked against
# MAGIC   `scipy.stats.ks_2samp` and a plain loop.
# MAGIC - An **inference table**: every request to the served model and its response, as a
# MAGIC   Delta table. Monitoring reads *that*, not the training notebook's memory.
# MAGIC
# MAGIC On Databricks, Model Serving writes inference tables itself and **Lakehouse
# MAGIC Monitoring** (`w.quality_monitors.create(..., inference_log=...)`) computes drift
# MAGIC metrics on a schedule; that branch is at the end. Locally the model is served by
# MAGIC `realizar serve` (Rust) and this notebook writes the inference table from the requests
# MAGIC it sends.

# COMMAND ----------

import itertools
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyspark.sql.functions as sf
import requests
from scipy.stats import ks_2samp
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(_root / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

dbutils.widgets.text("catalog", "workspace" if IS_DATABRICKS else "spark_catalog")
dbutils.widgets.text("schema", "course3_monitoring")
dbutils.widgets.text("n_transactions", "20000")
db = f"{dbutils.widgets.get('catalog')}.{dbutils.widgets.get('schema')}"
spark.sql(f"CREATE SCHEMA IF NOT EXISTS {db}")
inference_table = f"{db}.fraud_inference_log"
spark.sql(f"DROP TABLE IF EXISTS {inference_table}")

data = fraud_data.generate(int(dbutils.widgets.get("n_transactions")), seed=7)
features = list(fraud_data.FEATURES)
everything = fraud_data.model_features(data.transactions)
reference_all = everything[everything["ts"] < data.drift_start]
cut = reference_all["ts"].quantile(0.6)
train = reference_all[reference_all["ts"] < cut]
reference = reference_all[reference_all["ts"] >= cut]  # what the model was validated on
current = everything[everything["ts"] >= data.drift_start]
# Balanced class weights: the model flags a few percent of traffic, so its alert rate is a
# readable output to monitor.
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, class_weight="balanced"))
model.fit(train[features], train["is_fraud"])
print(f"train {len(train)}, reference {len(reference)}, current {len(current)} transactions")

# COMMAND ----------

# MAGIC %md
# MAGIC ## PSI and KS, by hand

# COMMAND ----------


def psi(ref: np.ndarray, cur: np.ndarray, bins: int = 10, eps: float = 1e-4) -> float:
    """PSI over the reference's quantile bins (ties merged), shares floored at ``eps``."""
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1))[1:-1])
    ref_share = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    cur_share = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    r = np.maximum(ref_share / len(ref), eps)
    c = np.maximum(cur_share / len(cur), eps)
    return float(np.sum((c - r) * np.log(c / r)))


def ks(ref: np.ndarray, cur: np.ndarray) -> float:
    """The largest distance between the two empirical CDFs."""
    grid = np.sort(np.concatenate([ref, cur]))
    cdf_ref = np.searchsorted(np.sort(ref), grid, side="right") / len(ref)
    cdf_cur = np.searchsorted(np.sort(cur), grid, side="right") / len(cur)
    return float(np.max(np.abs(cdf_ref - cdf_cur)))


# Checked against scipy and against a plain loop over bins.
a, b = reference["amount"].to_numpy(), current["amount"].to_numpy()
assert abs(ks(a, b) - ks_2samp(a, b).statistic) < 1e-12
edges = np.unique(np.quantile(a, np.linspace(0, 1, 11))[1:-1])
bounds = [-np.inf, *edges, np.inf]
loop = 0.0
for lo, hi in itertools.pairwise(bounds):
    r = max(np.mean((a >= lo) & (a < hi)), 1e-4)
    c = max(np.mean((b >= lo) & (b < hi)), 1e-4)
    loop += (c - r) * np.log(c / r)
assert abs(psi(a, b) - loop) < 1e-12, (psi(a, b), loop)
print(f"amount: PSI {psi(a, b):.4f}, KS {ks(a, b):.4f} (scipy {ks_2samp(a, b).statistic:.4f})")

# COMMAND ----------

# MAGIC %md
# MAGIC ## A drift report per feature, and a control
# MAGIC
# MAGIC The control compares the reference period's two halves: nothing was changed there on
# MAGIC purpose, so no feature may be flagged (a monitor that cries wolf is switched off).

# COMMAND ----------

PSI_ALERT, KS_P_ALERT = 0.2, 0.01


def drift_report(ref: pd.DataFrame, cur: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    rows = []
    for col in columns:
        x, y = ref[col].to_numpy(float), cur[col].to_numpy(float)
        test = ks_2samp(x, y)
        value = psi(x, y)
        rows.append(
            {
                "feature": col,
                "psi": value,
                "ks": ks(x, y),
                "ks_pvalue": float(test.pvalue),
                "alert": bool(value > PSI_ALERT or (test.pvalue < KS_P_ALERT and value > 0.1)),
            }
        )
    return pd.DataFrame(rows)


report = drift_report(reference, current, features)
display(report)
half = len(reference) // 2
control = drift_report(reference.iloc[:half], reference.iloc[half:], features)
display(control)
assert report.set_index("feature").loc["amount", "alert"], "inflation should flag amount"
assert report["alert"].sum() >= 2, report
assert not control["alert"].any(), control

# COMMAND ----------

# MAGIC %md
# MAGIC ## Serve the model and keep an inference table
# MAGIC
# MAGIC The model goes to realizar's tabular format and `realizar serve` answers MLflow
# MAGIC scoring requests (`POST /invocations` with `dataframe_split`). Each request of the
# MAGIC current period (batches of 250 transactions, as a client would send them) and its
# MAGIC response land in a Delta table with the columns of a Databricks inference table:
# MAGIC `request_id`, `timestamp_ms`, `status_code`, `execution_time_ms`, `request`, `response`.

# COMMAND ----------

import realizar  # noqa: E402 (the project's wheel)

model_dir = Path(os.environ.get("COURSEKIT_RUN_DIR", "/tmp")) / "monitoring"
model_dir.mkdir(parents=True, exist_ok=True)
model_file = model_dir / "fraud.safetensors"
# realizar's format holds the estimator; the pipeline's scaler is applied client-side.
scaler, classifier = model.named_steps["standardscaler"], model.named_steps["logisticregression"]
realizar.export_sklearn(classifier, model_file)
server = subprocess.Popen(
    [sys.executable, "-m", "realizar", "serve", "--model", str(model_file), "--port", "0"],
    stderr=subprocess.PIPE,
    stdout=subprocess.DEVNULL,
    text=True,
)
assert server.stderr is not None
deadline, url = time.monotonic() + 60, None
while url is None and time.monotonic() < deadline:
    line = server.stderr.readline()
    if not line and server.poll() is not None:
        raise RuntimeError("realizar serve exited")
    found = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
    url = found.group(1) if found else None
assert url is not None, "realizar serve did not start"
print(f"serving on {url}")

log_rows = []
try:
    for start in range(0, len(current), 250):
        batch = current.iloc[start : start + 250]
        scaled = scaler.transform(batch[features])
        payload = {"dataframe_split": {"columns": features, "data": scaled.tolist()}}
        began = time.perf_counter()
        reply = requests.post(f"{url}/invocations", json=payload, timeout=30)
        elapsed = (time.perf_counter() - began) * 1000
        log_rows.append(
            {
                "request_id": str(uuid.uuid4()),
                "timestamp_ms": int(time.time() * 1000),
                "status_code": reply.status_code,
                "execution_time_ms": elapsed,
                # The raw features travel with the request for monitoring's sake.
                "request": json.dumps(
                    {
                        "dataframe_split": {
                            "columns": features,
                            "data": batch[features].to_numpy().tolist(),
                        }
                    }
                ),
                "response": reply.text,
            }
        )
finally:
    server.terminate()
    server.wait(timeout=15)
spark.createDataFrame(pd.DataFrame(log_rows)).write.format("delta").saveAsTable(inference_table)
print(f"{len(log_rows)} requests logged to {inference_table}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Monitoring from the inference table
# MAGIC
# MAGIC Unpack the logged requests and responses with Spark, then recompute the drift report
# MAGIC from them: it must equal the report above (the table holds what was served). The
# MAGIC served predictions must equal the model's own, and the **prediction drift** is the
# MAGIC change in the alert rate between the reference period and now.

# COMMAND ----------

logged = spark.table(inference_table)
assert logged.filter("status_code != 200").count() == 0
req_schema = "struct<dataframe_split: struct<columns: array<string>, data: array<array<double>>>>"
rows = (
    logged.select(
        "request_id",
        sf.from_json("request", req_schema).alias("req"),
        sf.from_json("response", "struct<predictions: array<int>>").alias("resp"),
    )
    .select(
        "request_id",
        sf.arrays_zip("req.dataframe_split.data", "resp.predictions").alias("pairs"),
    )
    .select("request_id", sf.posexplode("pairs").alias("pos", "pair"))
)
served = rows.select(
    *[sf.col("pair.data")[i].alias(c) for i, c in enumerate(features)],
    sf.col("pair.predictions").alias("prediction"),
).toPandas()
assert len(served) == len(current)
from_table = drift_report(reference, served, features)
np.testing.assert_allclose(from_table["psi"], report["psi"], rtol=1e-9)
expected = model.predict(served[features])
assert (served["prediction"].to_numpy() == expected).all(), "served != model"
ref_rate = model.predict(reference[features]).mean()
cur_rate = served["prediction"].mean()
score_psi = psi(
    model.predict_proba(reference[features])[:, 1], model.predict_proba(served[features])[:, 1]
)
print(f"alert rate: reference {ref_rate:.2%}, served now {cur_rate:.2%}; score PSI {score_psi:.3f}")
latency = logged.select(sf.percentile_approx("execution_time_ms", 0.95)).collect()[0][0]
print(f"p95 request latency {latency:.1f} ms over {logged.count()} requests")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Thresholds that raise an alert
# MAGIC
# MAGIC The monitor turns the report into alerts; a job running it fails (and notifies) when
# MAGIC there is one. Here the drifted period raises, the control does not.

# COMMAND ----------


class DriftAlertError(RuntimeError):
    """Raised by the monitor when a threshold is crossed."""


def monitor(feature_report: pd.DataFrame, prediction_psi: float, limit: float = PSI_ALERT) -> None:
    flagged = feature_report.loc[feature_report["alert"], "feature"].tolist()
    if prediction_psi > limit:
        flagged.append("prediction")
    if flagged:
        raise DriftAlertError(f"drift alert on {flagged}")


monitor(
    control,
    psi(
        model.predict_proba(reference.iloc[:half][features])[:, 1],
        model.predict_proba(reference.iloc[half:][features])[:, 1],
    ),
)
print("control period: no alert")
try:
    monitor(from_table, score_psi)
except DriftAlertError as alert:
    print(f"current period: {alert}")
    raised = True
else:
    raised = False
assert raised, "the drifted period must raise an alert"

# COMMAND ----------

# MAGIC %md
# MAGIC ## On Databricks: Lakehouse Monitoring on the inference table
# MAGIC
# MAGIC A monitor with an inference-log profile computes these statistics (and many more)
# MAGIC per time window into `<table>_profile_metrics` and `<table>_drift_metrics` tables,
# MAGIC with a dashboard. It needs the predictions, a timestamp and a model id as columns, so
# MAGIC the unpacked view is written first. (Databricks only; not available locally.)

# COMMAND ----------

if IS_DATABRICKS:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.catalog import (
        MonitorInferenceLog,
        MonitorInferenceLogProblemType,
    )

    w = WorkspaceClient()
    monitored = f"{db}.fraud_predictions"
    spark.createDataFrame(
        served.assign(model_id="fraud_v1", ts=current["ts"].to_numpy())
    ).write.mode("overwrite").saveAsTable(monitored)
    user = spark.sql("SELECT current_user() AS user").collect()[0]["user"]
    w.quality_monitors.create(
        table_name=monitored,
        assets_dir=f"/Workspace/Users/{user}/course3_monitoring",
        output_schema_name=db,
        inference_log=MonitorInferenceLog(
            problem_type=MonitorInferenceLogProblemType.PROBLEM_TYPE_CLASSIFICATION,
            timestamp_col="ts",
            granularities=["1 day"],
            prediction_col="prediction",
            model_id_col="model_id",
        ),
    )
