# Databricks notebook source
# MAGIC %md
# MAGIC # Checks: lab_notebooks
# MAGIC
# MAGIC Run by the lab's last cell (`%run`). The expected shipments come from the setup
# MAGIC cell's `arrivals`; file sizes are read with plain Python (`os.stat`), costs from this
# MAGIC notebook's own copy of the published tariff, and the written output from its folders.

# COMMAND ----------

import os as _os
from pathlib import Path as _Path

lab = Lab("course1/week2/lab_notebooks")
# The published tariff (zone -> base fee, per kg), and the heavy-parcel surcharge.
_TARIFF = {"domestic": (4.5, 0.8), "eu": (9.0, 1.6), "world": (25.0, 4.2)}


def _cost(weight: float, zone: str) -> float:
    base, per_kg = _TARIFF[zone]
    return round(base + weight * per_kg + (15.0 if weight > 30 else 0.0), 2)


def _day() -> str:
    try:
        return dbutils.widgets.get("day")
    except Exception:  # the widget is not defined: task 1 is not done
        raise AssertionError("there is no widget `day` yet (task 1)") from None


@lab.check(
    "Task 1: the day and the warehouse come from widgets",
    "dbutils.widgets.text and .dropdown define a widget; .get reads its value (a string)",
)
def _():
    assert _day() in arrivals, f"the day widget says {_day()!r}, which has no folder"
    assert dbutils.widgets.get("warehouse") in {"berlin", "lyon", "porto"}, "warehouse widget"
    assert (day, warehouse) == (_day(), dbutils.widgets.get("warehouse")), (
        "the variables day and warehouse should hold the widgets' values"
    )


@lab.check(
    "Task 2: the day's files and their sizes",
    "dbutils.fs.ls gives FileInfo objects with a name and a size",
)
def _():
    folder = _Path(volume, "incoming", _day())
    want = {p.name: _os.stat(p).st_size for p in folder.iterdir()}
    assert not is_blank(incoming), "incoming is not set"
    got = {str(k).rstrip("/"): v for k, v in dict(incoming).items()}
    assert got == want, f"incoming is {incoming}"


@lab.check(
    "Task 3: one DataFrame from CSV, JSON and Parquet",
    "each reader has its own options; unionByName matches columns by name, not position",
)
def _():
    assert dict(shipments.dtypes).get("weight_kg") == "double", "weight_kg should be a double"
    got = sorted(
        tuple(r)
        for r in shipments.select("shipment_id", "warehouse", "weight_kg", "zone").collect()
    )
    want = sorted(arrivals[_day()])
    assert len(got) == len(want), f"{len(got)} shipments, expected {len(want)} from three files"
    assert got == want, "some shipments have their values in the wrong columns"


@lab.check(
    "Task 4: shipments priced with the shared tariff",
    "%run makes the included notebook's functions yours; withColumn, then filter and sum",
)
def _():
    costs = {r.shipment_id: r.cost for r in priced.select("shipment_id", "cost").collect()}
    want = {s[0]: _cost(s[2], s[3]) for s in arrivals[_day()]}
    wrong = [k for k in want if costs.get(k) is None or abs(costs[k] - want[k]) > 0.005]
    assert not wrong, f"{len(wrong)} shipments have another cost, e.g. {wrong[:3]}"
    total = sum(want[s[0]] for s in arrivals[_day()] if s[1] == dbutils.widgets.get("warehouse"))
    assert not is_blank(warehouse_cost), "warehouse_cost is not set"
    assert abs(float(warehouse_cost) - round(total, 2)) < 0.011, (
        f"warehouse_cost is {warehouse_cost}; it should total the widget's warehouse only"
    )


@lab.check(
    "Task 5: Parquet partitioned by warehouse",
    "partitionBy writes one folder per value, named column=value",
)
def _():
    out = _Path(volume, "priced", _day())
    assert out.is_dir(), "nothing was written to the day's output folder"
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    want = sorted({f"warehouse={s[1]}" for s in arrivals[_day()]})
    assert folders == want, f"the folders are {folders}"
    back = spark.read.parquet(f"{volume}/priced/{_day()}")
    assert back.count() == len(arrivals[_day()]), "the written data misses shipments"


lab.summary()
