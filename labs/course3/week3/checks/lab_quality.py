# Databricks notebook source
# MAGIC %md
# MAGIC # Checks: lab_quality
# MAGIC
# MAGIC Run by the lab's last cell. The gates are fed batches the checks break on purpose, and
# MAGIC the metrics are recomputed from the models.

# COMMAND ----------

import numpy as _np

lab = Lab("course3/week3/lab_quality")


@lab.check(
    "Task 1: a clean batch passes, each broken batch is caught",
    "check the columns first; isna().any() for nulls; amount <= 0; the fraud rate is a mean",
)
def _():
    clean = holdout.copy()
    assert failed_expectations(clean) == [], f"the clean holdout fails {failed_expectations(clean)}"
    nulls = clean.copy()
    nulls.loc[nulls.index[5], "n_prev_1h"] = _np.nan
    assert failed_expectations(nulls) == ["nulls"], f"one null: {failed_expectations(nulls)}"
    negative = clean.copy()
    negative.loc[negative.index[:3], "amount"] = -1.0
    assert failed_expectations(negative) == ["amount"], "negative amounts are not caught"
    assert failed_expectations(clean.drop(columns=["risky"])) == ["columns"], "missing column"
    no_fraud = clean[clean["is_fraud"] == 0]
    assert failed_expectations(no_fraud) == ["fraud_rate"], "0 % fraud is not caught"
    mostly_fraud = pd.concat(
        [clean[clean["is_fraud"] == 1], clean[clean["is_fraud"] == 0].head(50)]
    )
    both = mostly_fraud.copy()
    both.loc[both.index[0], "amount"] = 0.0
    assert failed_expectations(both) == ["amount", "fraud_rate"], f"got {failed_expectations(both)}"


@lab.check(
    "Task 2: precision at 80 % recall of both models, and the gate",
    "fraud_data.precision_at_recall(y, predict_proba(...)[:, 1], 0.8); baseline on [['amount']]",
)
def _():
    want_c = fraud_data.precision_at_recall(
        holdout["is_fraud"], candidate.predict_proba(holdout[FEATURES])[:, 1]
    )
    want_b = fraud_data.precision_at_recall(
        holdout["is_fraud"], baseline.predict_proba(holdout[["amount"]])[:, 1]
    )
    assert abs(float(candidate_p80) - want_c) < 1e-9, f"candidate_p80 {candidate_p80}, check it"
    assert abs(float(baseline_p80) - want_b) < 1e-9, f"baseline_p80 {baseline_p80}, check it"
    assert bool(model_ok) == (want_c >= 2 * want_b), "model_ok does not follow the rule"


@lab.check(
    "Task 3: 200 single-row timings and the p95 gate",
    "time.perf_counter() before and after each predict_proba of one row (iloc[[i]]), in ms",
)
def _():
    times = _np.asarray(latencies_ms, dtype=float)
    assert times.shape == (200,), f"{times.shape[0]} timings, expected 200"
    assert (times > 0).all(), "a timing is not positive"
    assert times.max() < 60_000, "timings should be in milliseconds"
    assert bool(latency_ok) == (float(_np.percentile(times, 95)) <= 100), "latency_ok vs p95"


@lab.check(
    "Task 4: enforce stops on every failed gate and passes otherwise",
    "collect the names whose value is False; raise QualityGateError(message with all of them)",
)
def _():
    assert enforce({"a": True, "b": True}) is None, "enforce should return None when all pass"
    message = None
    try:
        enforce({"data": False, "model": True, "latency": False})
    except QualityGateError as err:
        message = str(err)
    assert message is not None, "enforce did not raise with two failed gates"
    assert "data" in message, f"the message {message!r} misses 'data'"
    assert "latency" in message, f"the message {message!r} misses 'latency'"
    assert "model" not in message, "a passing gate is named as failed"


lab.summary()
