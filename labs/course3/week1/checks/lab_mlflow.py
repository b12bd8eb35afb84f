# Databricks notebook source
# MAGIC %md
# MAGIC # Checks: lab_mlflow
# MAGIC
# MAGIC Run by the lab's last cell. Each check reads what MLflow recorded (through the client,
# MAGIC not the lab's variables alone) and recomputes the expected numbers itself.

# COMMAND ----------

import numpy as _np
from sklearn.linear_model import LogisticRegression as _LogReg

lab = Lab("course3/week1/lab_mlflow")
_client = mlflow.MlflowClient()
_METRIC = "val_precision_at_80_recall"


def _need(*values):
    """A blank task reads as "not done yet", whatever the check would do with it."""
    for value in values:
        if is_blank(value):
            raise BlankNotFilledError("a FILL_IN is still there")


def _run(run_id, name):
    _need(run_id)
    assert isinstance(run_id, str), f"{name} should be a run id string, got {type(run_id).__name__}"
    run = _client.get_run(run_id)
    assert run.info.status == "FINISHED", f"the {name} run is {run.info.status}"
    assert run.data.tags.get("attempt") == attempt, f"the {name} run lacks this attempt's tag"
    return run


@lab.check(
    "Task 1: the baseline run records amount-only logistic regression",
    "log_param and log_metric inside `with mlflow.start_run(...)`; the metric is computed on "
    "valid, with the model fitted on train[['amount']]",
)
def _():
    run = _run(baseline_run_id, "baseline")
    assert run.info.run_name == "baseline", f"the run is named {run.info.run_name!r}"
    assert run.data.params.get("features") == "amount", f"params: {run.data.params}"
    model = _LogReg().fit(train[["amount"]], train["is_fraud"])
    want = fraud_data.precision_at_recall(
        valid["is_fraud"], model.predict_proba(valid[["amount"]])[:, 1]
    )
    got = run.data.metrics.get(_METRIC)
    assert got is not None, f"no metric {_METRIC} in the baseline run"
    assert abs(got - want) < 1e-9, f"baseline {_METRIC} is {got:.4f}; recomputed it differs"


@lab.check(
    "Task 2: the candidate is logged with a signature, an input example and its data",
    "infer_signature(inputs, outputs) and input_example= in log_model; mlflow.log_input "
    "with a dataset from mlflow.data",
)
def _():
    run = _run(candidate_run_id, "candidate")
    assert run.inputs is not None
    names = [d.dataset.name for d in run.inputs.dataset_inputs]
    assert "fraud_train" in names, f"dataset inputs: {names}"
    info = mlflow.models.get_model_info(candidate_model_uri)
    assert info.run_id == candidate_run_id, "the model was logged in another run"
    assert info.signature is not None, "the model has no signature"
    cols = [c.name for c in info.signature.inputs]
    assert cols == FEATURES, f"signature inputs {cols}, expected the FEATURES columns in order"
    assert info.saved_input_example_info is not None, "the model has no input example"


@lab.check(
    "Task 2: the candidate's logged metric is true and beats the baseline",
    "compute the metric from predict_proba on valid[FEATURES]; behavioural features (velocity, "
    "amount vs history, category, hour) carry the signal",
)
def _():
    _need(candidate_model_uri)
    model = mlflow.sklearn.load_model(candidate_model_uri)
    want = fraud_data.precision_at_recall(
        valid["is_fraud"], model.predict_proba(valid[FEATURES])[:, 1]
    )
    got = _run(candidate_run_id, "candidate").data.metrics.get(_METRIC)
    assert got is not None, f"no metric {_METRIC} in the candidate run"
    assert abs(got - want) < 1e-9, "the logged metric differs from the logged model's own"
    base = _run(baseline_run_id, "baseline").data.metrics[_METRIC]
    assert want > 2 * base, f"candidate {want:.3f} vs baseline {base:.3f}: expected far better"


@lab.check(
    "Task 3: search_runs found the winner",
    "filter_string on tags.attempt, order_by the metric DESC, take the first row's run_id",
)
def _():
    _need(best_run_id, baseline_run_id, candidate_run_id)
    scores = {}
    for run_id in (baseline_run_id, candidate_run_id):
        scores[run_id] = _client.get_run(run_id).data.metrics.get(_METRIC, -1.0)
    assert isinstance(best_run_id, str), "best_run_id should be a run id string"
    winner = max(scores, key=lambda r: scores[r])
    assert best_run_id == winner, "best_run_id is not the best of the two"


@lab.check(
    "Task 4: the drifted period scored by the logged model",
    "mlflow.sklearn.load_model(uri).predict_proba(...)[:, 1] on drifted[FEATURES]",
)
def _():
    _need(drift_scores, drift_precision, candidate_model_uri)
    got = _np.asarray(drift_scores, dtype=float)
    assert got.shape == (len(drifted),), f"drift_scores has shape {got.shape}"
    model = mlflow.sklearn.load_model(candidate_model_uri)
    want = model.predict_proba(drifted[FEATURES])[:, 1]
    assert _np.allclose(got, want), "drift_scores differ from the logged model's probabilities"
    expected = fraud_data.precision_at_recall(drifted["is_fraud"], want)
    assert abs(float(drift_precision) - expected) < 1e-9, (
        "drift_precision is not 80 %-recall precision"
    )


lab.summary()
