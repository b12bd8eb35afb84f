"""The Feature Engineering stand-in (coursekit.feature_engineering) on a real local Spark.

The point-in-time lookup is checked against pandas' ``merge_asof`` (the reference as-of
join), the merge write against a hand-computed upsert, and every bad input for its error
naming the table and the column.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

# Starts Spark in the pytest process: one worker holds every such test (conftest.py).
pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark-session")]

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "data"))


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    from coursekit.runtime.session import build_session  # noqa: PLC0415

    # Spark's Python workers (score_batch's UDF) run this interpreter, not the PATH's python3.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    root = tmp_path_factory.mktemp("fe")
    session = build_session(root / "warehouse", app_name="test_fe", jvm_log=root / "jvm.log")
    session.sql("CREATE SCHEMA IF NOT EXISTS fe_test")
    return session


@pytest.fixture
def fe(spark):
    from coursekit.feature_engineering import FeatureEngineeringClient  # noqa: PLC0415

    for t in spark.catalog.listTables("fe_test"):
        spark.sql(f"DROP TABLE fe_test.{t.name}")
    return FeatureEngineeringClient(spark=spark)


def _snapshots(seed: int = 0) -> pd.DataFrame:
    """Daily customer snapshots with a feature that changes every day."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2025-01-01", periods=10, freq="D")
    rows = [
        {"customer_id": c, "as_of": d, "spend_7d": float(rng.integers(0, 1000)), "n": i}
        for c in range(1, 6)
        for i, d in enumerate(days)
        if rng.random() < 0.8  # some days are missing
    ]
    return pd.DataFrame(rows).astype({"as_of": "datetime64[us]"})


def _events(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.Timestamp("2024-12-31") + pd.to_timedelta(rng.uniform(0, 12 * 86400, 60), unit="s")
    return pd.DataFrame(
        {
            "event_id": np.arange(60),
            "customer_id": rng.integers(1, 7, 60),  # customer 6 has no features
            "ts": ts.floor("s").astype("datetime64[us]"),
            "label": rng.integers(0, 2, 60),
        }
    )


def test_point_in_time_lookup_matches_merge_asof(spark, fe):
    from coursekit.feature_engineering import FeatureLookup  # noqa: PLC0415

    snaps = _snapshots()
    fe.create_table(
        name="fe_test.snap",
        primary_keys="customer_id",
        timeseries_column="as_of",
        df=spark.createDataFrame(snaps),
    )
    table = fe.get_table(name="fe_test.snap")
    assert table.primary_keys == ["customer_id", "as_of"]
    assert table.entity_keys == ["customer_id"]
    events = _events()
    ts = fe.create_training_set(
        df=spark.createDataFrame(events),
        feature_lookups=[
            FeatureLookup(
                "fe_test.snap",
                "customer_id",
                feature_names=["spend_7d"],
                timestamp_lookup_key="ts",
            )
        ],
        label="label",
        exclude_columns=["customer_id"],
    )
    got = ts.load_df().toPandas().sort_values("event_id").reset_index(drop=True)
    want = pd.merge_asof(
        events.sort_values("ts"),
        snaps.sort_values("as_of")[["customer_id", "as_of", "spend_7d"]],
        left_on="ts",
        right_on="as_of",
        by="customer_id",
        direction="backward",
    ).sort_values("event_id")
    assert list(got.columns) == ["event_id", "ts", "label", "spend_7d"]
    np.testing.assert_array_equal(got["spend_7d"].to_numpy(), want["spend_7d"].to_numpy())
    assert got["spend_7d"].isna().sum() > 0  # customer 6, and events before the first snapshot
    assert ts.input_columns == ["event_id", "ts", "spend_7d"]


def test_lookback_window_and_defaults(spark, fe):
    from coursekit.feature_engineering import FeatureLookup  # noqa: PLC0415

    snaps = _snapshots()
    fe.create_table(
        name="fe_test.snap",
        primary_keys=["customer_id"],
        timeseries_column="as_of",
        df=spark.createDataFrame(snaps),
    )
    events = _events()
    lookup = FeatureLookup(
        "fe_test.snap",
        "customer_id",
        feature_names="spend_7d",
        timestamp_lookup_key="ts",
        lookback_window=dt.timedelta(days=1),
        rename_outputs={"spend_7d": "spend"},
        default_values={"spend_7d": -1.0},
    )
    got = (
        fe.create_training_set(
            df=spark.createDataFrame(events), feature_lookups=[lookup], label=None
        )
        .load_df()
        .toPandas()
        .sort_values("event_id")
    )
    want = pd.merge_asof(
        events.sort_values("ts"),
        snaps.sort_values("as_of")[["customer_id", "as_of", "spend_7d"]],
        left_on="ts",
        right_on="as_of",
        by="customer_id",
        direction="backward",
    ).sort_values("event_id")
    # The lookback window: a snapshot older than a day does not count.
    stale = (want["ts"] - want["as_of"]) > pd.to_timedelta(1, unit="D")
    expected = want["spend_7d"].mask(stale).fillna(-1.0).to_numpy()
    np.testing.assert_array_equal(got["spend"].to_numpy(), expected)
    assert stale.any()


def test_write_table_merge_upserts(spark, fe):
    first = pd.DataFrame({"customer_id": [1, 2, 3], "score": [0.1, 0.2, 0.3]})
    fe.create_table(
        name="fe_test.static", primary_keys="customer_id", df=spark.createDataFrame(first)
    )
    update = pd.DataFrame({"customer_id": [3, 4], "score": [0.9, 0.4]})
    fe.write_table(name="fe_test.static", df=spark.createDataFrame(update), mode="merge")
    got = fe.read_table(name="fe_test.static").toPandas().sort_values("customer_id")
    assert got["customer_id"].tolist() == [1, 2, 3, 4]
    assert got["score"].tolist() == [0.1, 0.2, 0.9, 0.4]
    fe.write_table(name="fe_test.static", df=spark.createDataFrame(update), mode="overwrite")
    assert fe.read_table(name="fe_test.static").count() == 2


def test_static_lookup_and_score_batch(spark, fe, tmp_path):
    import mlflow  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

    from coursekit.feature_engineering import FeatureLookup  # noqa: PLC0415

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    # Artifacts under tmp_path too (a SQLite store otherwise writes ./mlruns).
    experiment = mlflow.create_experiment("fe", artifact_location=(tmp_path / "art").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    feats = pd.DataFrame({"customer_id": range(1, 41), "x": np.linspace(-2, 2, 40)})
    fe.create_table(
        name="fe_test.cust", primary_keys="customer_id", df=spark.createDataFrame(feats)
    )
    labels = pd.DataFrame({"customer_id": range(1, 41), "y": (feats["x"] > 0).astype(int)})
    ts = fe.create_training_set(
        df=spark.createDataFrame(labels),
        feature_lookups=[FeatureLookup("fe_test.cust", "customer_id")],
        label="y",
        exclude_columns=["customer_id"],
    )
    train = ts.load_df().toPandas()
    model = LogisticRegression().fit(train[["x"]], train["y"])
    with mlflow.start_run():
        info = fe.log_model(
            model=model,
            artifact_path="m",
            flavor=mlflow.sklearn,
            training_set=ts,
            pip_requirements=["scikit-learn"],
        )
    scored = fe.score_batch(
        model_uri=info.model_uri, df=spark.createDataFrame(labels[["customer_id"]])
    )
    got = scored.toPandas().sort_values("customer_id")
    np.testing.assert_allclose(got["prediction"], model.predict(feats[["x"]]))
    with mlflow.start_run():
        plain = mlflow.sklearn.log_model(model, name="plain", pip_requirements=["scikit-learn"])
    with pytest.raises(ValueError, match="not logged with FeatureEngineeringClient"):
        fe.score_batch(model_uri=plain.model_uri, df=spark.createDataFrame(labels))


def test_errors_name_table_and_column(spark, fe):
    from coursekit.feature_engineering import FeatureLookup  # noqa: PLC0415

    snaps = spark.createDataFrame(_snapshots())
    with pytest.raises(ValueError, match=r"'fe_test.nope'.*does not exist"):
        fe.get_table(name="fe_test.nope")
    with pytest.raises(ValueError, match=r"fe_test.snap.*primary key column 'cust'"):
        fe.create_table(name="fe_test.snap", primary_keys="cust", df=snaps)
    with pytest.raises(TypeError, match=r"fe_test.snap.*timeseries column 'n' must be a timestamp"):
        fe.create_table(
            name="fe_test.snap", primary_keys="customer_id", timeseries_column="n", df=snaps
        )
    fe.create_table(
        name="fe_test.snap", primary_keys="customer_id", timeseries_column="as_of", df=snaps
    )
    with pytest.raises(ValueError, match="already exists"):
        fe.create_table(name="fe_test.snap", primary_keys="customer_id", df=snaps)
    events = spark.createDataFrame(_events())

    def lookup(**kw: Any):
        args: dict[str, Any] = {"timestamp_lookup_key": "ts", **kw}
        key = args.pop("lookup_key", "customer_id")
        table = args.pop("table", "fe_test.snap")
        return fe.create_training_set(
            df=events, feature_lookups=[FeatureLookup(table, key, **args)], label="label"
        )

    with pytest.raises(ValueError, match=r"'fe_test.missing'.*does not exist"):
        lookup(table="fe_test.missing")
    with pytest.raises(ValueError, match=r"fe_test.snap.*lookup key column 'client' is not in df"):
        lookup(lookup_key="client")
    with pytest.raises(ValueError, match=r"fe_test.snap.*timestamp_lookup_key column 'when'"):
        lookup(timestamp_lookup_key="when")
    with pytest.raises(ValueError, match=r"fe_test.snap.*time series.*give timestamp_lookup_key"):
        lookup(timestamp_lookup_key=None)
    with pytest.raises(
        TypeError, match=r"fe_test.snap.*'event_id' is bigint.*'as_of' is timestamp"
    ):
        lookup(timestamp_lookup_key="event_id")
    with pytest.raises(ValueError, match=r"fe_test.snap.*no feature 'spend_30d'"):
        lookup(feature_names=["spend_30d"])
    with pytest.raises(ValueError, match=r"write_table\('fe_test.snap'\).*missing \['n'\]"):
        fe.write_table(name="fe_test.snap", df=snaps.drop("n"))
    with pytest.raises(TypeError, match=r"column 'n' is string"):
        fe.write_table(name="fe_test.snap", df=snaps.withColumn("n", snaps["n"].cast("string")))
    with pytest.raises(ValueError, match="appears more than once"):
        fe.write_table(name="fe_test.snap", df=snaps.union(snaps))
    with pytest.raises(ValueError, match="mode must be"):
        fe.write_table(name="fe_test.snap", df=snaps, mode="append")
    with pytest.raises(ValueError, match="label column 'target'"):
        fe.create_training_set(df=events, feature_lookups=[], label="target")
    spark.sql("CREATE TABLE fe_test.plain (a INT) USING delta")
    with pytest.raises(ValueError, match=r"'fe_test.plain' is not a feature table"):
        fe.get_table(name="fe_test.plain")


def test_feature_lookup_argument_errors():
    from coursekit.feature_engineering import FeatureLookup  # noqa: PLC0415

    with pytest.raises(ValueError, match="lookup_key is empty"):
        FeatureLookup("t", [])
    with pytest.raises(TypeError, match="lookup_key"):
        FeatureLookup("t", 3)  # ty: ignore[invalid-argument-type]
    with pytest.raises(ValueError, match="lookback_window"):
        FeatureLookup("t", "k", lookback_window=dt.timedelta(0))
