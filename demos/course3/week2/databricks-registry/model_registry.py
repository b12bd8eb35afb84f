# Databricks notebook source
# MAGIC %md
# MAGIC # The model registry: versions, aliases, promotion by evidence
# MAGIC
# MAGIC Course 3, week 2. Training produces runs; the **registry** turns the runs worth keeping
# MAGIC into **versions** of a named model, and **aliases** say which version does which job:
# MAGIC `champion` serves production, `challenger` is the candidate under evaluation.
# MAGIC Consumers load `models:/<name>@champion` and never hard-code a version, so promoting
# MAGIC a model is moving an alias, and rolling back is moving it back.
# MAGIC
# MAGIC This notebook registers two fraud models, loads them by alias, compares them on a
# MAGIC holdout neither was trained or tuned on, promotes the challenger only because it wins
# MAGIC (asserted), and follows a version back to the run (its params, metrics, data).
# MAGIC
# MAGIC **Where the registry lives.** On Databricks the registry is **Unity Catalog**
# MAGIC (`mlflow.set_registry_uri("databricks-uc")`): models have three-level names
# MAGIC (`catalog.schema.model`), carry UC permissions and lineage, and *must* have a
# MAGIC signature. Locally the registry is MLflow's own, in the same SQLite store as the runs,
# MAGIC and a plain name works. One code path: the name comes from the `model_name` widget.

# COMMAND ----------

import contextlib
import os
import sys
from pathlib import Path

import mlflow
import numpy as np
import sklearn
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(_root / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

if IS_DATABRICKS:
    mlflow.set_registry_uri("databricks-uc")
    spark.sql("CREATE SCHEMA IF NOT EXISTS workspace.course3_registry")
    user = spark.sql("SELECT current_user() AS user").collect()[0]["user"]
    mlflow.set_experiment(f"/Users/{user}/course3_registry")
    default_name = "workspace.course3_registry.fraud_detector"
else:
    mlflow.set_experiment("course3_registry")
    default_name = "course3_fraud_detector"
dbutils.widgets.text("model_name", default_name)
dbutils.widgets.text("n_transactions", "20000")
model_name = dbutils.widgets.get("model_name")
client = mlflow.MlflowClient()
print(f"registry {mlflow.get_registry_uri()}, model {model_name}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Data: train, validation, holdout, in time order
# MAGIC
# MAGIC Three consecutive slices of the training period: models are fitted on the first,
# MAGIC their metrics logged on the second, and the promotion decision is made on the third,
# MAGIC which no model or person has looked at yet.
# MAGIC
# MAGIC This lesson starts from an empty model so that its versions are 1 and 2 on every run.

# COMMAND ----------

data = fraud_data.generate(int(dbutils.widgets.get("n_transactions")), seed=7)
frame = fraud_data.model_features(data.reference()).sort_values("ts")
t1, t2 = frame["ts"].quantile([0.55, 0.75])
train = frame[frame["ts"] < t1]
valid = frame[(frame["ts"] >= t1) & (frame["ts"] < t2)]
holdout = frame[frame["ts"] >= t2]
print(
    {
        k: (len(v), int(v["is_fraud"].sum()))
        for k, v in [("train", train), ("valid", valid), ("holdout", holdout)]
    }
)

with contextlib.suppress(mlflow.exceptions.MlflowException):  # not registered yet
    client.delete_registered_model(model_name)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Register two versions
# MAGIC
# MAGIC `log_model(..., registered_model_name=...)` logs the model in the run and registers
# MAGIC it as the next version. Version 1 is the team's current model (amount, hour and
# MAGIC category only); version 2 adds the behavioural features (velocity, amount against
# MAGIC the customer's history, how usual the category is for them).

# COMMAND ----------


def train_and_register(run_name: str, features: list[str]):
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(train[features], train["is_fraud"])
    score = model.predict_proba(valid[features])[:, 1]
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_param("features", ",".join(features))
        mlflow.log_metric(
            "val_precision_at_80_recall", fraud_data.precision_at_recall(valid["is_fraud"], score)
        )
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(valid[features], score),
            input_example=valid[features].head(3),
            registered_model_name=model_name,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
    return run, info


simple = ["amount", "night", "risky"]
v1_run, v1 = train_and_register("simple", simple)
v2_run, v2 = train_and_register("behavioural", list(fraud_data.FEATURES))
print(f"registered versions {v1.registered_model_version} and {v2.registered_model_version}")
assert (v1.registered_model_version, v2.registered_model_version) == (1, 2)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Aliases, tags and a description
# MAGIC
# MAGIC Version 1 is today's `champion`, version 2 the `challenger`. Tags on a version record
# MAGIC facts about it (who validated it, against what); the description is for people.

# COMMAND ----------

client.set_registered_model_alias(model_name, "champion", "1")
client.set_registered_model_alias(model_name, "challenger", "2")
client.set_model_version_tag(model_name, "2", "validation_status", "pending")
client.update_model_version(
    model_name, "2", description="Logistic regression on behavioural features"
)
champion = client.get_model_version_by_alias(model_name, "champion")
challenger = client.get_model_version_by_alias(model_name, "challenger")
print(f"champion v{champion.version}, challenger v{challenger.version}")
# Versions are numbers (the SQL store returns int, Unity Catalog a string).
assert (int(champion.version), int(challenger.version)) == (1, 2)
assert challenger.tags["validation_status"] == "pending"

# COMMAND ----------

# MAGIC %md
# MAGIC ## Load by alias and compare on the holdout
# MAGIC
# MAGIC `models:/<name>@<alias>` resolves the alias at load time. Each model's **signature**
# MAGIC says which columns it takes, so the comparison code does not need to know that the
# MAGIC two versions use different features.

# COMMAND ----------


def holdout_precision(alias: str) -> float:
    model = mlflow.sklearn.load_model(f"models:/{model_name}@{alias}")
    signature = mlflow.models.get_model_info(f"models:/{model_name}@{alias}").signature
    assert signature is not None, f"the {alias} has no signature"
    columns = [c.name for c in signature.inputs]
    score = model.predict_proba(holdout[columns])[:, 1]
    return fraud_data.precision_at_recall(holdout["is_fraud"], score)


champion_score = holdout_precision("champion")
challenger_score = holdout_precision("challenger")
print(f"holdout precision at 80% recall: champion {champion_score:.3f}")
print(f"                                 challenger {challenger_score:.3f}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Promote only on evidence
# MAGIC
# MAGIC The rule: the challenger replaces the champion when it is better on the holdout by a
# MAGIC margin (here 0.02 precision), not merely equal. Promotion moves `champion` to the
# MAGIC challenger's version, records the evidence as tags, keeps the old champion reachable
# MAGIC as `previous_champion` (rollback is one alias move) and clears `challenger`.

# COMMAND ----------

MARGIN = 0.02
promote = challenger_score >= champion_score + MARGIN
assert promote, f"the behavioural model should win: {challenger_score:.3f} vs {champion_score:.3f}"
if promote:
    client.set_registered_model_alias(model_name, "previous_champion", str(champion.version))
    client.set_registered_model_alias(model_name, "champion", str(challenger.version))
    client.delete_registered_model_alias(model_name, "challenger")
    client.set_model_version_tag(
        model_name, str(challenger.version), "validation_status", "approved"
    )
    client.set_model_version_tag(
        model_name,
        str(challenger.version),
        "holdout_precision_at_80_recall",
        f"{challenger_score:.4f}",
    )
now = client.get_model_version_by_alias(model_name, "champion")
assert int(now.version) == 2
assert int(client.get_model_version_by_alias(model_name, "previous_champion").version) == 1
assert "challenger" not in client.get_registered_model(model_name).aliases
# Whoever loads the champion now gets version 2, without any change on their side.
assert holdout_precision("champion") == challenger_score
print(f"champion is now v{now.version} (tags {now.tags})")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Lineage: from a version back to its run
# MAGIC
# MAGIC Every version records the run that produced it; from the run come its params,
# MAGIC metrics and logged model. On Databricks, Unity Catalog also shows the tables the
# MAGIC model was trained from when the data was logged as an input.

# COMMAND ----------

assert now.run_id is not None
run = client.get_run(now.run_id)
print(f"v{now.version} <- run {run.info.run_name} ({now.run_id}); source {now.source}")
assert now.run_id == v2_run.info.run_id
assert run.data.params["features"] == ",".join(fraud_data.FEATURES)
assert run.data.metrics["val_precision_at_80_recall"] > 0
versions = client.search_model_versions(f"name = '{model_name}'")
display(
    [
        {
            "version": v.version,
            "run": client.get_run(v.run_id or "").info.run_name,
            "aliases": ",".join(v.aliases),
            "status": v.tags.get("validation_status", ""),
        }
        for v in sorted(versions, key=lambda v: int(v.version))
    ]
)
assert np.isclose(float(now.tags["holdout_precision_at_80_recall"]), challenger_score, atol=1e-4)
