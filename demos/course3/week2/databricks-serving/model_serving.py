# Databricks notebook source
# MAGIC %md
# MAGIC # Serving: an endpoint, two local servers, and batch scoring on Spark
# MAGIC
# MAGIC Course 3, week 2. A registered model is used in two ways:
# MAGIC
# MAGIC - **online**: a REST endpoint answers one request at a time (a card authorisation
# MAGIC   asks "is this fraud?" and waits). The request format is MLflow's scoring protocol:
# MAGIC   `POST /invocations` with `{"dataframe_split": {"columns": [...], "data": [[...]]}}`.
# MAGIC - **batch**: a Spark job scores a whole table; the model is shipped to the executors and
# MAGIC   applied partition by partition.
# MAGIC
# MAGIC On Databricks, **Model Serving** hosts the endpoint (created with the SDK below, with a
# MAGIC traffic split between champion and challenger). Locally the same registered model is
# MAGIC served twice, by `mlflow models serve` (Python, uvicorn) and by `realizar serve` (the
# MAGIC project's Rust server, from the model exported to realizar's tabular format); both get
# MAGIC the same payloads, must give the same answers, and their latency is measured side by side
# MAGIC (a measurement on this machine, not a benchmark).

# COMMAND ----------

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyspark.sql.functions as sf
import requests
import sklearn
from mlflow.models import infer_signature
from pyspark.sql.types import DoubleType, StructField, StructType
from sklearn.ensemble import RandomForestClassifier

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(_root / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

if IS_DATABRICKS:
    mlflow.set_registry_uri("databricks-uc")
    user = spark.sql("SELECT current_user() AS user").collect()[0]["user"]
    mlflow.set_experiment(f"/Users/{user}/course3_serving")
    default_name = "workspace.course3_serving.fraud_forest"
    spark.sql("CREATE SCHEMA IF NOT EXISTS workspace.course3_serving")
else:
    mlflow.set_experiment("course3_serving")
    default_name = "course3_fraud_forest"
dbutils.widgets.text("model_name", default_name)
dbutils.widgets.text("n_transactions", "20000")
model_name = dbutils.widgets.get("model_name")
client = mlflow.MlflowClient()

# COMMAND ----------

# MAGIC %md
# MAGIC ## A registered champion to serve
# MAGIC
# MAGIC A random forest (a model family both servers support) on the behavioural features,
# MAGIC registered with its signature, alias `champion`.

# COMMAND ----------

data = fraud_data.generate(int(dbutils.widgets.get("n_transactions")), seed=7)
features = list(fraud_data.FEATURES)
frame = fraud_data.model_features(data.transactions)
train = frame[frame["ts"] < data.drift_start]
new = frame[frame["ts"] >= data.drift_start].reset_index(drop=True)
forest = RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0, n_jobs=1)
forest.fit(train[features], train["is_fraud"])
with mlflow.start_run(run_name="forest-for-serving"):
    info = mlflow.sklearn.log_model(
        forest,
        name="model",
        signature=infer_signature(train[features], forest.predict(train[features])),
        input_example=train[features].head(2),
        registered_model_name=model_name,
        skops_trusted_types=["sklearn.tree._tree.Tree"],
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
version = str(info.registered_model_version)
client.set_registered_model_alias(model_name, "champion", version)
champion_uri = f"models:/{model_name}@champion"
print(f"{champion_uri} -> version {version}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## On Databricks: a Model Serving endpoint
# MAGIC
# MAGIC `create_and_wait` builds the endpoint (minutes the first time); the traffic config
# MAGIC routes 100 % to the champion. For a canary, a second served entity (the challenger
# MAGIC version) gets, say, 10 % with `update_config_and_wait`. Querying takes the same
# MAGIC `dataframe_split` payload as the local servers. (Free Edition offers Model Serving for
# MAGIC custom models with limits; the call below is the same on every tier.)

# COMMAND ----------

payload_rows = new[features].head(64)
payload = {"dataframe_split": {"columns": features, "data": payload_rows.to_numpy().tolist()}}
if IS_DATABRICKS:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.serving import (
        DataframeSplitInput,
        EndpointCoreConfigInput,
        Route,
        ServedEntityInput,
        TrafficConfig,
    )

    w = WorkspaceClient()
    endpoint = "course3-fraud"
    served = ServedEntityInput(
        name="champion",
        entity_name=model_name,
        entity_version=version,
        workload_size="Small",
        scale_to_zero_enabled=True,
    )
    config = EndpointCoreConfigInput(
        name=endpoint,
        served_entities=[served],
        traffic_config=TrafficConfig(
            routes=[Route(served_model_name="champion", traffic_percentage=100)]
        ),
    )
    if any(e.name == endpoint for e in w.serving_endpoints.list()):
        w.serving_endpoints.update_config_and_wait(
            endpoint, served_entities=[served], traffic_config=config.traffic_config
        )
    else:
        w.serving_endpoints.create_and_wait(endpoint, config=config)
    answer = w.serving_endpoints.query(
        endpoint,
        dataframe_split=DataframeSplitInput(
            columns=features, data=payload["dataframe_split"]["data"]
        ),
    )
    assert answer.predictions is not None
    assert list(answer.predictions) == forest.predict(payload_rows).tolist()

# COMMAND ----------

# MAGIC %md
# MAGIC ## Locally: two servers for the same registered model
# MAGIC
# MAGIC Both load the champion from the registry: `mlflow models serve -m models:/...@champion
# MAGIC --env-manager local` directly, realizar from the same artifact exported to its format
# MAGIC (`realizar.export_sklearn`; the Rust server needs no Python to predict).

# COMMAND ----------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {seconds} s")


servers: dict[str, tuple[str, subprocess.Popen]] = {}
if not IS_DATABRICKS:
    import realizar

    work = Path(os.environ.get("COURSEKIT_RUN_DIR", "/tmp")) / "serving"
    work.mkdir(parents=True, exist_ok=True)
    model_file = work / "fraud_forest.safetensors"
    realizar.export_sklearn(mlflow.sklearn.load_model(champion_uri), model_file)
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    port = free_port()
    servers["realizar"] = (
        f"http://127.0.0.1:{port}",
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "realizar",
                "serve",
                "--model",
                str(model_file),
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    )
    port = free_port()
    mlflow_exe = shutil.which("mlflow", path=bindir) or "mlflow"
    servers["mlflow"] = (
        f"http://127.0.0.1:{port}",
        subprocess.Popen(
            [
                mlflow_exe,
                "models",
                "serve",
                "-m",
                champion_uri,
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "--env-manager",
                "local",
                "-w",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group: stopping it stops its workers
        ),
    )
    wait_ready(servers["realizar"][0] + "/health", servers["realizar"][1])
    wait_ready(servers["mlflow"][0] + "/ping", servers["mlflow"][1])
    print({name: url for name, (url, _) in servers.items()})

# COMMAND ----------

# MAGIC %md
# MAGIC ### Same payload, same answers, latency side by side
# MAGIC
# MAGIC 64 transactions of the new period in one request, then 100 single-transaction
# MAGIC requests to each server in turn (one HTTP connection each), timing every round trip.

# COMMAND ----------

if not IS_DATABRICKS:
    want = forest.predict(payload_rows).tolist()
    answers = {}
    for name, (url, _) in servers.items():
        reply = requests.post(f"{url}/invocations", json=payload, timeout=60)
        assert reply.status_code == 200, (name, reply.status_code, reply.text[:200])
        answers[name] = reply.json()["predictions"]
    assert answers["realizar"] == answers["mlflow"] == want, answers
    print(f"both servers agree with scikit-learn on {len(want)} rows")

    latency = {}
    for name, (url, _) in servers.items():
        with requests.Session() as session:
            times = []
            for i in range(100):
                row = new[features].iloc[[i]]
                body = {"dataframe_split": {"columns": features, "data": row.to_numpy().tolist()}}
                start = time.perf_counter()
                r = session.post(f"{url}/invocations", json=body, timeout=60)
                times.append((time.perf_counter() - start) * 1000)
                assert r.status_code == 200
        latency[name] = {"p50 ms": np.percentile(times, 50), "p95 ms": np.percentile(times, 95)}
    display(pd.DataFrame(latency).T.round(2).reset_index(names="server"))

    # A bad request gets a 4xx in the protocol's JSON shape from both.
    bad = {"dataframe_split": {"columns": features[:-1], "data": [[1.0] * (len(features) - 1)]}}
    for name, (url, _) in servers.items():
        r = requests.post(f"{url}/invocations", json=bad, timeout=60)
        assert 400 <= r.status_code < 500, (name, r.status_code)
        assert "error_code" in r.json() or "message" in r.json(), (name, r.text[:200])

    for name, (_, proc) in servers.items():
        if name == "mlflow":
            os.killpg(proc.pid, 15)
        else:
            proc.terminate()
        proc.wait(timeout=30)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Batch scoring on Spark
# MAGIC
# MAGIC A Spark table is split into **partitions**; each executor scores its partitions
# MAGIC independently, so the job scales with the cluster. The model must reach every
# MAGIC executor:
# MAGIC
# MAGIC - `mlflow.pyfunc.spark_udf` downloads the model artifact once per executor (from the
# MAGIC   registry) and calls it on Arrow batches of each partition;
# MAGIC - with the Rust model in `mapInPandas`, the model file's bytes travel in the
# MAGIC   function's closure (Spark pickles the function with what it captures into every
# MAGIC   task); each task loads the model once and then scores its partition's pandas
# MAGIC   batches. For a large model, put the file on a Volume that every executor reads (or,
# MAGIC   on classic compute, in a broadcast variable) instead of the closure.

# COMMAND ----------

table = spark.createDataFrame(new[["transaction_id", *features]]).repartition(4)
partitions = table.select(sf.spark_partition_id()).distinct().count()
print(f"{table.count()} rows in {partitions} partitions")
udf = mlflow.pyfunc.spark_udf(spark, champion_uri, result_type="double", env_manager="local")
by_mlflow = table.withColumn("prediction", udf(sf.struct(*features)))

if IS_DATABRICKS:
    model_file = Path("/tmp/fraud_forest.safetensors")
    import realizar

    realizar.export_sklearn(forest, model_file)
model_bytes = model_file.read_bytes()


def score_with_realizar(batches):
    # Runs on the executors: write the shipped bytes once, load the Rust model once.
    import tempfile  # noqa: PLC0415

    import realizar  # noqa: PLC0415

    with tempfile.NamedTemporaryFile(suffix=".safetensors") as f:
        f.write(model_bytes)
        f.flush()
        model = realizar.TabularModel.load(f.name)
    for batch in batches:
        x = batch[features].to_numpy(dtype=np.float64)
        yield batch.assign(prediction=model.predict(x).astype(np.float64))


schema = StructType([*table.schema.fields, StructField("prediction", DoubleType())])
by_rust = table.mapInPandas(score_with_realizar, schema=schema)
got_mlflow = (
    by_mlflow.select("transaction_id", "prediction").toPandas().sort_values("transaction_id")
)
got_rust = by_rust.select("transaction_id", "prediction").toPandas().sort_values("transaction_id")
want_all = forest.predict(new.sort_values("transaction_id")[features]).astype(float)
np.testing.assert_array_equal(got_mlflow["prediction"].to_numpy(), want_all)
np.testing.assert_array_equal(got_rust["prediction"].to_numpy(), want_all)
print(f"spark_udf and mapInPandas(realizar) agree with scikit-learn on {len(want_all)} rows")
print(f"{int(want_all.sum())} transactions flagged")
