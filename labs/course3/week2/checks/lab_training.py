# Databricks notebook source
# MAGIC %md
# MAGIC # Checks: lab_training
# MAGIC
# MAGIC Run by the lab's last cell. The trials are read back from MLflow and refitted; the
# MAGIC registry is read through the client.

# COMMAND ----------

lab = Lab("course3/week2/lab_training")


def _need(*values):
    for value in values:
        if is_blank(value):
            raise BlankNotFilledError("a FILL_IN is still there")


def _children():
    _need(search_run_id)
    return mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{search_run_id}'",
    )


@lab.check(
    "Task 1: every trial is a child run with its params and a true val_ap",
    "trial.suggest_int for both; mlflow.start_run(nested=True) inside the objective; "
    "average_precision_score on valid",
)
def _():
    runs = _children()
    assert len(runs) == N_TRIALS, f"{len(runs)} child runs under the search, expected {N_TRIALS}"
    for column in ("params.max_depth", "params.min_samples_leaf", "metrics.val_ap"):
        assert column in runs.columns, f"the trials lack {column}"
    row = runs.iloc[0]
    model = make_forest(int(row["params.max_depth"]), int(row["params.min_samples_leaf"]))
    model.fit(train[FEATURES], train["is_fraud"])
    want = average_precision_score(valid["is_fraud"], model.predict_proba(valid[FEATURES])[:, 1])
    assert abs(row["metrics.val_ap"] - want) < 1e-12, "a trial's val_ap is not its model's AP"
    for _, r in runs.iterrows():
        assert 2 <= int(r["params.max_depth"]) <= 12, "max_depth out of the range 2-12"
        assert 1 <= int(r["params.min_samples_leaf"]) <= 50, "min_samples_leaf out of 1-50"


@lab.check(
    "Task 2: the study maximised and its best is the best child run",
    "optuna.create_study(direction='maximize', sampler=TPESampler(seed=0)); optimize(n_trials=)",
)
def _():
    _need(study)
    assert len(study.trials) == N_TRIALS, f"{len(study.trials)} trials"
    runs = _children()
    assert abs(study.best_value - runs["metrics.val_ap"].max()) < 1e-12, "best != best child"
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE, "the study minimises"


@lab.check(
    "Task 3: the winner is registered with a signature, alias challenger",
    "log_model(..., signature=infer_signature(...), registered_model_name=MODEL_NAME), then "
    "client.set_registered_model_alias",
)
def _():
    _need(challenger_version, study)
    version = client.get_model_version_by_alias(MODEL_NAME, "challenger")
    assert str(version.version) == str(challenger_version), "challenger points elsewhere"
    assert str(challenger_version) != "1", "version 1 is the old champion"
    model_info = mlflow.models.get_model_info(f"models:/{MODEL_NAME}@challenger")
    assert model_info.signature is not None, "no signature"
    assert [c.name for c in model_info.signature.inputs] == FEATURES, "signature inputs"
    loaded = mlflow.sklearn.load_model(f"models:/{MODEL_NAME}@challenger")
    refit = make_forest(**study.best_params).fit(train[FEATURES], train["is_fraud"])
    assert (
        loaded.predict_proba(holdout[FEATURES]) == refit.predict_proba(holdout[FEATURES])
    ).all(), "the registered model is not the best trial's settings refitted"


@lab.check(
    "Task 4: champion moved exactly when the challenger won on the holdout",
    "load models:/NAME@alias for both, compare average precision on holdout, "
    "set_registered_model_alias('champion', ...) only when the challenger is higher",
)
def _():
    _need(promoted, challenger_version)
    v1 = mlflow.sklearn.load_model(f"models:/{MODEL_NAME}/1")
    new = mlflow.sklearn.load_model(f"models:/{MODEL_NAME}/{challenger_version}")
    ap = {
        "old": average_precision_score(
            holdout["is_fraud"], v1.predict_proba(holdout[FEATURES])[:, 1]
        ),
        "new": average_precision_score(
            holdout["is_fraud"], new.predict_proba(holdout[FEATURES])[:, 1]
        ),
    }
    should = ap["new"] > ap["old"]
    assert bool(promoted) == should, f"promoted={promoted}, but holdout AP {ap}"
    champion = str(client.get_model_version_by_alias(MODEL_NAME, "champion").version)
    assert champion == (str(challenger_version) if should else "1"), f"champion is v{champion}"


lab.summary()
