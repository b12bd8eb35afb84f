# Databricks notebook source
# MAGIC %md
# MAGIC # Checks: lab_features
# MAGIC
# MAGIC Run by the lab's last cell. The expected features are recomputed in pandas from the
# MAGIC raw transactions (`tx_pd`), and the point-in-time join with `pandas.merge_asof`.

# COMMAND ----------

import numpy as _np

lab = Lab("course3/week1/lab_features")


def _expected_daily():
    day = tx_pd["ts"].dt.normalize()
    daily = (
        tx_pd.assign(as_of=day + pd.Timedelta(days=1))
        .groupby(["merchant_id", "as_of"])["amount"]
        .agg(n="count", total="sum")
        .reset_index()
    )
    parts = []
    for _, g in daily.groupby("merchant_id"):
        rolled = g.set_index("as_of")[["n", "total"]].rolling("7D").sum()
        parts.append(
            pd.DataFrame(
                {
                    "merchant_id": g["merchant_id"].to_numpy(),
                    "as_of": rolled.index,
                    "txn_count_7d": rolled["n"].to_numpy(),
                    "avg_amount_7d": (rolled["total"] / rolled["n"]).to_numpy(),
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)
    # Microseconds, as Spark timestamps and the generator's `ts` are.
    return out.astype({"as_of": "datetime64[us]"})


_daily = _expected_daily()


def _need(*values):
    """A blank task reads as "not done yet", whatever the check would do with it."""
    for value in values:
        if is_blank(value):
            raise BlankNotFilledError("a FILL_IN is still there")


@lab.check(
    "Task 1: the feature table is keyed by merchant and time",
    "fe.create_table(name=..., primary_keys=[entity, time], timeseries_column=time, df=...)",
)
def _():
    table = fe.get_table(name=feature_table)
    assert set(table.primary_keys) == {"merchant_id", "as_of"}, f"keys {table.primary_keys}"
    assert table.timeseries_column == "as_of" or getattr(table, "timestamp_keys", None) == [
        "as_of"
    ], "as_of should be the timeseries column"
    assert spark.table(feature_table).count() == len(_daily), (
        f"{spark.table(feature_table).count()} rows, expected one per merchant and active day"
    )


@lab.check(
    "Task 1: 7-day counts and mean amounts are right (before the correction)",
    "aggregate per merchant and day first, then a RANGE window of 6 days back over "
    "unix_seconds(as_of); as_of is the day plus one day",
)
def _():
    _need(merchant_daily)
    got = merchant_daily.toPandas().sort_values(["merchant_id", "as_of"]).reset_index(drop=True)
    want = _daily.sort_values(["merchant_id", "as_of"]).reset_index(drop=True)
    assert len(got) == len(want), f"{len(got)} rows, expected {len(want)}"
    assert (got["as_of"].to_numpy() == want["as_of"].to_numpy()).all(), "as_of values differ"
    assert _np.allclose(got["txn_count_7d"], want["txn_count_7d"]), "txn_count_7d differs"
    assert _np.allclose(got["avg_amount_7d"], want["avg_amount_7d"]), "avg_amount_7d differs"


@lab.check(
    "Task 2: the training set holds each transaction's features as of its time",
    "FeatureLookup(table_name, lookup_key, timestamp_lookup_key='ts', feature_names=[...])",
)
def _():
    _need(training_set)
    got = training_set.load_df().toPandas()
    assert "merchant_id" not in got.columns, "merchant_id should be excluded"
    assert {"transaction_id", "is_fraud", "txn_count_7d", "avg_amount_7d"} <= set(got.columns), (
        f"columns {list(got.columns)}"
    )
    assert len(got) == len(tx_pd), f"{len(got)} rows, expected one per transaction"
    want = pd.merge_asof(
        tx_pd.sort_values("ts"),
        _daily.sort_values("as_of"),
        left_on="ts",
        right_on="as_of",
        by="merchant_id",
        direction="backward",
    ).set_index("transaction_id")
    got = got.set_index("transaction_id").loc[want.index]
    # Merchant 1 was corrected after the training set was defined; compare the others.
    keep = (want["merchant_id"] != 1).to_numpy()
    a = got["avg_amount_7d"].to_numpy()[keep]
    b = want["avg_amount_7d"].to_numpy()[keep]
    assert _np.array_equal(_np.isnan(a), _np.isnan(b)), "rows without an earlier value differ"
    assert _np.allclose(a[~_np.isnan(a)], b[~_np.isnan(b)]), "looked-up values differ"


@lab.check(
    "Task 3: the corrections were merged, nothing else changed",
    "fe.write_table(name=..., df=..., mode='merge') updates rows by primary key",
)
def _():
    table = spark.table(feature_table).toPandas()
    assert len(table) == rows_before, f"{len(table)} rows after the merge, {rows_before} before"
    m1 = table[table["merchant_id"] == 1].sort_values("as_of")
    w1 = _daily[_daily["merchant_id"] == 1].sort_values("as_of")
    assert _np.allclose(m1["txn_count_7d"], 2 * w1["txn_count_7d"]), "merchant 1 not corrected"
    rest = table[table["merchant_id"] == 2].sort_values("as_of")
    w2 = _daily[_daily["merchant_id"] == 2].sort_values("as_of")
    assert _np.allclose(rest["txn_count_7d"], w2["txn_count_7d"]), "other merchants changed"


@lab.check(
    "Task 4: the leak is measured",
    "row_number() over a window per merchant ordered by as_of descending; then compare as_of "
    "with ts",
)
def _():
    _need(n_future_rows)
    latest_as_of = _daily.groupby("merchant_id")["as_of"].max()
    want = int((tx_pd["merchant_id"].map(latest_as_of) > tx_pd["ts"]).sum())
    assert int(n_future_rows) == want, f"n_future_rows is {n_future_rows}, expected {want}"


lab.summary()
