# Databricks notebook source
# MAGIC %md
# MAGIC # Checks: lab_serving
# MAGIC
# MAGIC Run by the lab's last cell. Every answer is compared with scikit-learn's own
# MAGIC predictions of `forest`.

# COMMAND ----------

lab = Lab("course3/week2/lab_serving")


@lab.check(
    "Task 1: the exported file predicts like the forest",
    "realizar.export_sklearn(estimator, path)",
)
def _():
    assert model_path.is_file(), f"no file at {model_path}"
    loaded = realizar.TabularModel.load(model_path)
    x = new[FEATURES].head(500).to_numpy(dtype=np.float64)
    assert (loaded.predict(x) == forest.predict(x)).all(), "the exported model predicts differently"


@lab.check(
    "Task 2: the payload is a dataframe_split request of the first 50 rows",
    "{'dataframe_split': {'columns': [...], 'data': [[...], ...]}}; .to_numpy().tolist()",
)
def _():
    assert isinstance(payload, dict), "payload should be a dict"
    assert set(payload) == {"dataframe_split"}, f"top-level keys {list(payload)}"
    split = payload["dataframe_split"]
    assert split.get("columns") == FEATURES, "columns should be FEATURES, in order"
    data = np.asarray(split.get("data"), dtype=float)
    assert data.shape == (50, len(FEATURES)), f"data has shape {data.shape}"
    assert np.allclose(data, new[FEATURES].head(50).to_numpy(dtype=float)), "rows differ"


@lab.check(
    "Task 3: the served predictions equal the model's",
    "start_server([sys.executable, '-m', 'realizar', 'serve', ...]); requests.post(url + "
    "'/invocations', json=payload).json()['predictions']",
)
def _():
    if is_blank(served_predictions):
        raise BlankNotFilledError("a FILL_IN is still there")
    want = forest.predict(new[FEATURES].head(50)).tolist()
    assert list(served_predictions) == want, "the served predictions differ from the forest's"


@lab.check(
    "Task 4: mapInPandas scored every row like the forest",
    "def fn(batches): load once, then `for b in batches: yield b.assign(prediction=...)`; "
    "table.mapInPandas(fn, schema=out_schema)",
)
def _():
    if is_blank(scored):
        raise BlankNotFilledError("a FILL_IN is still there")
    got = scored.select("transaction_id", "prediction").toPandas().sort_values("transaction_id")
    assert len(got) == len(new), f"{len(got)} rows scored, expected {len(new)}"
    want = pd.Series(forest.predict(new[FEATURES]).astype(float), index=new["transaction_id"])
    assert (got["prediction"].to_numpy() == want.sort_index().to_numpy()).all(), (
        "predictions differ"
    )


lab.summary()
