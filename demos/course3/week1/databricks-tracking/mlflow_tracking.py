# Databricks notebook source
# MAGIC %md
# MAGIC # MLflow tracking: experiments, runs, metrics, artifacts, models
# MAGIC
# MAGIC Course 3, week 1. A model is the result of many attempts; tracking records each one
# MAGIC (its parameters, metrics, plots and the model itself) so that you can compare them and
# MAGIC reproduce the best. This notebook trains fraud detectors on the course's card-fraud
# MAGIC data and records everything with MLflow:
# MAGIC
# MAGIC 1. an **experiment** and a **run** with params, metrics, the training data as an input
# MAGIC    and artifacts (a precision-recall plot, a confusion matrix);
# MAGIC 2. **step metrics**: a boosted model's validation score after every tree;
# MAGIC 3. **autolog**: MLflow records a scikit-learn fit by itself;
# MAGIC 4. a **sweep** as nested runs under one parent, and a comparison chart;
# MAGIC 5. **search_runs** with a filter and an ordering;
# MAGIC 6. a **logged model** with a signature and an input example, loaded back and checked.
# MAGIC
# MAGIC On Databricks, MLflow tracking is built in: experiments live in the workspace (a path
# MAGIC such as `/Users/you@example.com/course3_tracking`) and runs show in the Experiments UI.
# MAGIC Locally the coursekit runtime points MLflow at a SQLite store under `build/mlflow/`;
# MAGIC `mlflow ui --backend-store-uri sqlite:///build/mlflow/mlflow.db` shows the same runs.

# COMMAND ----------

import os
import sys
import uuid
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import sklearn
from mlflow.data.pandas_dataset import from_pandas
from mlflow.models import infer_signature
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    average_precision_score,
    confusion_matrix,
    log_loss,
    roc_auc_score,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
# The course's data generator is a plain module of the repository (data/fraud_data.py): a
# notebook in a Git folder, on Databricks or here, runs in its own folder, so the repo
# root is found above it and its data/ folder goes on sys.path.
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(_root / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

dbutils.widgets.text("n_transactions", "20000")
n_transactions = int(dbutils.widgets.get("n_transactions"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## The data and a time-ordered split
# MAGIC
# MAGIC Fraud models are trained on the past and used on the future, so the validation set is
# MAGIC the **later** part of the training period, never a random sample (a random split lets
# MAGIC a model see the end of a fraud burst while it is asked about its start).

# COMMAND ----------

data = fraud_data.generate(n_transactions, seed=7)
frame = fraud_data.model_features(data.reference())
features = list(fraud_data.FEATURES)
cut = frame["ts"].quantile(0.7)
train, valid = frame[frame["ts"] < cut], frame[frame["ts"] >= cut]
X_train, y_train = train[features], train["is_fraud"]
X_valid, y_valid = valid[features], valid["is_fraud"]
print(f"train {len(train)} rows ({y_train.mean():.2%} fraud), valid {len(valid)} rows")

# COMMAND ----------

# MAGIC %md
# MAGIC ## An experiment and a first run
# MAGIC
# MAGIC `mlflow.set_experiment` creates the experiment if needed and makes it current.
# MAGIC Everything logged inside `with mlflow.start_run()` belongs to that run. Each
# MAGIC execution of this notebook tags its runs with a fresh `lesson_run` id, so that the
# MAGIC searches below see this execution's runs only (the store keeps every past run).

# COMMAND ----------

if IS_DATABRICKS:
    user = spark.sql("SELECT current_user() AS user").collect()[0]["user"]
    experiment_name = f"/Users/{user}/course3_tracking"
else:
    experiment_name = "course3_tracking"
experiment = mlflow.set_experiment(experiment_name)
lesson_run = uuid.uuid4().hex[:12]
print(f"experiment {experiment.name} (id {experiment.experiment_id}), lesson_run {lesson_run}")


def evaluate(model, x, y) -> dict[str, float]:
    score = model.predict_proba(x)[:, 1]
    return {
        "val_roc_auc": roc_auc_score(y, score),
        "val_average_precision": average_precision_score(y, score),
        "val_precision_at_80_recall": fraud_data.precision_at_recall(y, score, 0.8),
    }


params = {"C": 1.0, "max_iter": 1000}
with mlflow.start_run(run_name="logreg", tags={"lesson_run": lesson_run}) as run:
    mlflow.log_params(params)
    # The training data, as a dataset input of the run (name, digest, schema, row count).
    mlflow.log_input(from_pandas(train, name="fraud_train"), context="training")
    logreg = make_pipeline(StandardScaler(), LogisticRegression(**params)).fit(X_train, y_train)
    metrics = evaluate(logreg, X_valid, y_valid)
    mlflow.log_metrics(metrics)

    fig, ax = plt.subplots(figsize=(5, 4))
    PrecisionRecallDisplay.from_estimator(logreg, X_valid, y_valid, ax=ax, name="logreg")
    mlflow.log_figure(fig, "plots/precision_recall.png")
    plt.close(fig)
    # The confusion matrix at the threshold that reaches 80 % recall.
    score = logreg.predict_proba(X_valid)[:, 1]
    threshold = np.sort(score[y_valid.to_numpy() == 1])[::-1][int(np.ceil(0.8 * y_valid.sum())) - 1]
    cm = confusion_matrix(y_valid, score >= threshold)
    fig, ax = plt.subplots(figsize=(4, 4))
    ConfusionMatrixDisplay(cm, display_labels=["genuine", "fraud"]).plot(ax=ax, colorbar=False)
    mlflow.log_figure(fig, "plots/confusion_matrix.png")
    plt.close(fig)
    mlflow.log_dict({"threshold": float(threshold), "matrix": cm.tolist()}, "confusion.json")
print(metrics)

# COMMAND ----------

# MAGIC %md
# MAGIC What was recorded, read back through the client: the params are strings (MLflow
# MAGIC stores them as text), the metrics are the numbers computed above, the artifacts are
# MAGIC files, and the input is the dataset with its digest.

# COMMAND ----------

client = mlflow.MlflowClient()
logged = client.get_run(run.info.run_id)
assert logged.data.params == {k: str(v) for k, v in params.items()}
for name, value in metrics.items():
    assert logged.data.metrics[name] == value, name
files = {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
assert files == {"plots/precision_recall.png", "plots/confusion_matrix.png"}, files
confusion = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/confusion.json")
assert confusion["matrix"] == cm.tolist()
assert cm[1].sum() == y_valid.sum()
assert cm[1, 1] >= 0.8 * y_valid.sum()
assert logged.inputs is not None
(dataset_input,) = logged.inputs.dataset_inputs
assert dataset_input.dataset.name == "fraud_train"
print("params, metrics, artifacts and input recorded:", sorted(files), dataset_input.dataset.digest)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Step metrics: a learning curve
# MAGIC
# MAGIC `log_metric(key, value, step=i)` records a series. Gradient boosting adds one tree at
# MAGIC a time; `staged_predict_proba` gives the validation predictions after each tree, so
# MAGIC the run holds the validation loss and average precision as the model grows (the
# MAGIC Experiments UI plots them against the step).

# COMMAND ----------

n_trees = 40
with mlflow.start_run(run_name="boosting-curve", tags={"lesson_run": lesson_run}) as curve_run:
    gbm = GradientBoostingClassifier(n_estimators=n_trees, max_depth=3, random_state=0)
    gbm.fit(X_train, y_train)
    mlflow.log_params({"n_estimators": n_trees, "max_depth": 3})
    losses = []
    for step, proba in enumerate(gbm.staged_predict_proba(X_valid), start=1):
        losses.append(log_loss(y_valid, proba[:, 1]))
        mlflow.log_metric("val_log_loss", losses[-1], step=step)
        mlflow.log_metric(
            "val_average_precision", average_precision_score(y_valid, proba[:, 1]), step=step
        )

history = client.get_metric_history(curve_run.info.run_id, "val_log_loss")
assert [m.step for m in history] == list(range(1, n_trees + 1))
assert np.allclose([m.value for m in history], losses)
# The latest value is what the run's summary shows.
assert client.get_run(curve_run.info.run_id).data.metrics["val_log_loss"] == losses[-1]
print(f"log loss after 1 tree {losses[0]:.4f}, after {n_trees} trees {losses[-1]:.4f}")
assert losses[-1] < losses[0]

# COMMAND ----------

# MAGIC %md
# MAGIC ## Autolog
# MAGIC
# MAGIC `mlflow.sklearn.autolog()` patches scikit-learn's `fit`: every fit opens (or joins) a
# MAGIC run and logs the estimator's parameters, training metrics and the model, with no
# MAGIC logging code. On Databricks ML runtimes autologging is on by default
# MAGIC (*Databricks Autologging*); here we switch it on and off explicitly.

# COMMAND ----------

mlflow.sklearn.autolog(log_models=False, log_datasets=False, silent=True)
with mlflow.start_run(run_name="forest-autolog", tags={"lesson_run": lesson_run}) as auto_run:
    RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0, n_jobs=1).fit(
        X_train, y_train
    )
mlflow.sklearn.autolog(disable=True)

auto = client.get_run(auto_run.info.run_id).data
print({k: auto.params[k] for k in ("n_estimators", "max_depth", "criterion")})
assert auto.params["n_estimators"] == "30"
assert auto.params["max_depth"] == "6"
# Autolog computed training metrics itself, e.g. the training ROC AUC.
assert 0.5 < auto.metrics["training_roc_auc"] <= 1.0, auto.metrics

# COMMAND ----------

# MAGIC %md
# MAGIC ## A sweep as nested runs
# MAGIC
# MAGIC A hyperparameter sweep is one parent run with one child run per configuration
# MAGIC (`start_run(nested=True)` inside the parent). The parent records the winner; the
# MAGIC children are the leaderboard.

# COMMAND ----------

grid = [{"max_depth": depth, "min_samples_leaf": leaf} for depth in (4, 8) for leaf in (1, 20)]
results = []
with mlflow.start_run(run_name="forest-sweep", tags={"lesson_run": lesson_run}) as sweep:
    for config in grid:
        with mlflow.start_run(
            run_name=f"depth{config['max_depth']}-leaf{config['min_samples_leaf']}",
            nested=True,
            tags={"lesson_run": lesson_run, "sweep": "forest"},
        ) as child:
            forest = RandomForestClassifier(n_estimators=40, random_state=0, n_jobs=1, **config)
            forest.fit(X_train, y_train)
            scores = evaluate(forest, X_valid, y_valid)
            mlflow.log_params(config)
            mlflow.log_metrics(scores)
            results.append((child.info.run_id, config, scores["val_average_precision"]))
    best_id, best_config, best_ap = max(results, key=lambda r: r[2])
    mlflow.log_params({f"best_{k}": v for k, v in best_config.items()})
    mlflow.log_metric("best_val_average_precision", best_ap)

    fig, ax = plt.subplots(figsize=(6, 3))
    labels = [f"d{c['max_depth']}/l{c['min_samples_leaf']}" for _, c, _ in results]
    ax.bar(labels, [ap for _, _, ap in results], color="tab:blue")
    ax.axhline(metrics["val_average_precision"], color="tab:red", ls="--", label="logreg")
    ax.set_ylabel("validation average precision")
    ax.legend()
    mlflow.log_figure(fig, "sweep_comparison.png")
    plt.close(fig)
print(f"best {best_config}: average precision {best_ap:.4f}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Searching runs
# MAGIC
# MAGIC `mlflow.search_runs` takes a filter in MLflow's search syntax (`params.x`,
# MAGIC `metrics.y`, `tags.z`, `attributes.status`) and an ordering, and returns a pandas
# MAGIC DataFrame. The sweep's children, best first, must put the run chosen above on top;
# MAGIC a filter on the parent's id (`tags.mlflow.parentRunId`) selects the same children.

# COMMAND ----------

leaderboard = mlflow.search_runs(
    experiment_ids=[experiment.experiment_id],
    filter_string=f"tags.lesson_run = '{lesson_run}' AND tags.sweep = 'forest'",
    order_by=["metrics.val_average_precision DESC"],
)
display(
    leaderboard[
        [
            "tags.mlflow.runName",
            "params.max_depth",
            "params.min_samples_leaf",
            "metrics.val_average_precision",
            "metrics.val_precision_at_80_recall",
        ]
    ]
)
assert len(leaderboard) == len(grid)
assert leaderboard["run_id"].iloc[0] == best_id
assert leaderboard["metrics.val_average_precision"].is_monotonic_decreasing
children = mlflow.search_runs(
    experiment_ids=[experiment.experiment_id],
    filter_string=f"tags.mlflow.parentRunId = '{sweep.info.run_id}'",
)
assert set(children["run_id"]) == set(leaderboard["run_id"])
deep = mlflow.search_runs(
    experiment_ids=[experiment.experiment_id],
    filter_string=f"tags.lesson_run = '{lesson_run}' AND params.max_depth = '8'",
)
assert len(deep) == 2, deep[["tags.mlflow.runName"]]

# COMMAND ----------

# MAGIC %md
# MAGIC ## A logged model with a signature and an input example
# MAGIC
# MAGIC The **signature** is the model's input and output schema (column names and types),
# MAGIC inferred from real data with `infer_signature`; serving and batch scoring check
# MAGIC requests against it. The **input example** is stored beside the model, so a reader
# MAGIC knows what to send. Loading the model back as a generic `pyfunc` gives the same
# MAGIC predictions as the object in memory.
# MAGIC
# MAGIC MLflow 3 saves scikit-learn models with **skops** rather than pickle: loading does not
# MAGIC run arbitrary code, and types that skops cannot vouch for must be named as trusted.
# MAGIC A forest's `Tree` is one (a crafted file could hold out-of-range node indices); we
# MAGIC trained this one ourselves, so we trust it explicitly.

# COMMAND ----------

best = RandomForestClassifier(n_estimators=40, random_state=0, n_jobs=1, **best_config)
best.fit(X_train, y_train)
signature = infer_signature(X_valid, best.predict_proba(X_valid)[:, 1])
with mlflow.start_run(run_name="forest-best", tags={"lesson_run": lesson_run}) as model_run:
    mlflow.log_params(best_config)
    mlflow.log_metrics(evaluate(best, X_valid, y_valid))
    model_info = mlflow.sklearn.log_model(
        best,
        name="model",
        signature=signature,
        input_example=X_valid.head(3),
        skops_trusted_types=["sklearn.tree._tree.Tree"],
        # Named, not inferred: inference re-imports the model in a subprocess to see
        # which packages it touches, which costs far more than the fit.
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
print(model_info.model_uri)
print(model_info.signature)
assert [c.name for c in model_info.signature.inputs] == features
loaded = mlflow.pyfunc.load_model(model_info.model_uri)
assert np.array_equal(np.asarray(loaded.predict(X_valid)), best.predict(X_valid))
# The signature is enforced: a request missing a column is refused.
try:
    loaded.predict(X_valid.drop(columns=["amount"]))
except mlflow.exceptions.MlflowException as err:
    print("refused:", str(err).splitlines()[0])
else:
    raise AssertionError("a request without `amount` should be refused by the signature")
