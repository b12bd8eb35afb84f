# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: tune, register, promote
# MAGIC
# MAGIC Course 3, week 2. Production runs an amount-only model, registered as `champion`
# MAGIC (version 1). Your job: search random-forest settings with Optuna, each trial an MLflow
# MAGIC child run; register the winner as `challenger`; and move `champion` to it only if it
# MAGIC beats the current champion on the holdout.
# MAGIC
# MAGIC Replace every `FILL_IN`, run top to bottom and read the checks at the end. Locally:
# MAGIC `nox -s grade -- labs/course3/week2/lab_training.py`.

# COMMAND ----------

# MAGIC %run ../../_labkit

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup (run as is): the data and today's champion

# COMMAND ----------

import contextlib
import os
import sys
import uuid
from pathlib import Path

import mlflow
import optuna
import sklearn
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.pipeline import make_pipeline

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(_root / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

FEATURES = list(fraud_data.FEATURES)
N_TRIALS = 5
data = fraud_data.generate(15_000, seed=55)
frame = fraud_data.model_features(data.reference()).sort_values("ts")
t1, t2 = frame["ts"].quantile([0.6, 0.8])
train = frame[frame["ts"] < t1]
valid = frame[(frame["ts"] >= t1) & (frame["ts"] < t2)]
holdout = frame[frame["ts"] >= t2]
if IS_DATABRICKS:
    mlflow.set_registry_uri("databricks-uc")
    _user = spark.sql("SELECT current_user() AS user").collect()[0]["user"]
    experiment = mlflow.set_experiment(f"/Users/{_user}/course3_lab_training")
    MODEL_NAME = "workspace.default.course3_lab_training"
else:
    experiment = mlflow.set_experiment("course3_lab_training")
    # CI grades this lab's two versions at once in one local MLflow store: one model each.
    MODEL_NAME = f"course3_lab_training_{uuid.uuid4().hex[:8]}"
client = mlflow.MlflowClient()
with contextlib.suppress(mlflow.exceptions.MlflowException):
    client.delete_registered_model(MODEL_NAME)
# Today's champion: logistic regression on the amount, as a pipeline over FEATURES.
_amount_only = make_pipeline(
    ColumnTransformer([("amount", "passthrough", ["amount"])]),
    LogisticRegression(),
).fit(train[FEATURES], train["is_fraud"])
with mlflow.start_run(run_name="amount-only"):
    mlflow.sklearn.log_model(
        _amount_only,
        name="model",
        signature=infer_signature(
            valid[FEATURES], _amount_only.predict_proba(valid[FEATURES])[:, 1]
        ),
        registered_model_name=MODEL_NAME,
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
client.set_registered_model_alias(MODEL_NAME, "champion", "1")
optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_forest(max_depth: int, min_samples_leaf: int) -> RandomForestClassifier:
    """The model family to tune: only these two settings vary."""
    return RandomForestClassifier(
        n_estimators=30,
        max_depth=max_depth,
        min_samples_leaf=min_samples_leaf,
        random_state=0,
        n_jobs=1,
    )


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 1: the objective
# MAGIC
# MAGIC `objective(trial)` suggests `max_depth` (an int from 2 to 12) and `min_samples_leaf`
# MAGIC (an int from 1 to 50), fits `make_forest(...)` on `train[FEATURES]`, and returns the
# MAGIC average precision on `valid`. Inside a **nested** MLflow run it logs both params and
# MAGIC the metric `val_ap`.

# COMMAND ----------


# TODO: suggest, fit, score on valid; log params and val_ap in a nested run
def objective(trial: optuna.Trial) -> float:
    return FILL_IN


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: the search
# MAGIC
# MAGIC In a parent run named `search`, create a study that **maximises**, with
# MAGIC `optuna.samplers.TPESampler(seed=0)`, and optimise `objective` for `N_TRIALS` trials.
# MAGIC Keep the study in `study` and the parent's run id in `search_run_id`.

# COMMAND ----------

# TODO: a parent run, a seeded maximising study, N_TRIALS trials
study = FILL_IN
search_run_id = FILL_IN
print(study.best_params, study.best_value)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 3: register the winner as the challenger
# MAGIC
# MAGIC Refit `make_forest(**study.best_params)` on `train[FEATURES]`, log it with a signature
# MAGIC (inputs `valid[FEATURES]`) and `registered_model_name=MODEL_NAME`, and set the alias
# MAGIC `challenger` on the new version. Keep the version number in `challenger_version`
# MAGIC (a string). A forest needs `skops_trusted_types=["sklearn.tree._tree.Tree"]`.

# COMMAND ----------

# TODO: refit the best, log and register it, alias challenger
challenger_version = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: promote on evidence
# MAGIC
# MAGIC Load `champion` and `challenger` **by alias**, compute each one's average precision on
# MAGIC `holdout`, and if the challenger's is higher move `champion` to the challenger's
# MAGIC version. `promoted` records whether you did.

# COMMAND ----------

# TODO: load both by alias, compare on the holdout, move the alias if the challenger wins
promoted = FILL_IN
print(promoted)

# COMMAND ----------

# MAGIC %run ./checks/lab_training
