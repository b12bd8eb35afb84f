# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: a parameterised daily import
# MAGIC
# MAGIC Course 1, week 2. Every morning the logistics team gets the day's shipments as
# MAGIC three files in three formats (one per export system) in a volume. You will turn the
# MAGIC notebook into a parameterised daily import: widgets choose the day and the warehouse,
# MAGIC `dbutils.fs` lists what arrived, Spark reads the three formats into one DataFrame, the
# MAGIC team's shared tariff notebook (included with `%run`) prices the shipments, and the result
# MAGIC is written partitioned by warehouse.
# MAGIC
# MAGIC Replace every `FILL_IN` with your code, run the notebook top to bottom, and read the
# MAGIC checks at the end. Locally: `nox -s grade -- labs/course1/week2/lab_notebooks.py`.

# COMMAND ----------

# MAGIC %run ../../_labkit

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup (run as is)

# COMMAND ----------

import json
import os
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pyspark.sql.functions as sf

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
catalog = "workspace" if IS_DATABRICKS else "spark_catalog"
schema = "course1_lab_notebooks"
spark.sql(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
volume = f"/Volumes/{catalog}/{schema}/logistics"
if IS_DATABRICKS:
    spark.sql(f"CREATE VOLUME IF NOT EXISTS {catalog}.{schema}.logistics")
dbutils.fs.rm(volume + "/incoming", True)
dbutils.fs.rm(volume + "/priced", True)
dbutils.widgets.removeAll()  # the lab defines its own widgets

rng = random.Random(9)
warehouses = ["berlin", "lyon", "porto"]
zones = ["domestic", "eu", "world"]
arrivals = {}  # day -> list of (shipment_id, warehouse, weight_kg, zone)
for day in ("2024-06-02", "2024-06-03"):
    arrivals[day] = [
        (
            f"{day}-{i:03d}",
            rng.choice(warehouses),
            round(rng.uniform(0.5, 45.0), 1),
            rng.choice(zones),
        )
        for i in range(60)
    ]
    folder = f"{volume}/incoming/{day}"
    dbutils.fs.mkdirs(folder)
    rows = arrivals[day]
    # System A exports CSV, system B JSON lines, system C Parquet.
    dbutils.fs.put(
        f"{folder}/system_a.csv",
        "shipment_id,warehouse,weight_kg,zone\n"
        + "".join(",".join(map(str, r)) + "\n" for r in rows[:20]),
        True,
    )
    keys = ("shipment_id", "warehouse", "weight_kg", "zone")
    dbutils.fs.put(
        f"{folder}/system_b.json",
        "".join(json.dumps(dict(zip(keys, r, strict=True))) + "\n" for r in rows[20:45]),
        True,
    )
    columns = list(zip(*rows[45:], strict=True))
    with Path(folder, "system_c.parquet").open("wb") as out:
        pq.write_table(pa.table({k: list(c) for k, c in zip(keys, columns, strict=True)}), out)
print({d: len(r) for d, r in arrivals.items()}, "shipments under", f"{volume}/incoming")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 1: parameters as widgets
# MAGIC
# MAGIC Define two widgets: a **text** widget `day` with the default `2024-06-03`, and a
# MAGIC **dropdown** `warehouse` with the choices `berlin`, `lyon`, `porto` and the default
# MAGIC `berlin`. Then read their values into the variables `day` and `warehouse`. (A job run
# MAGIC would pass other values; the code below must use the variables, never the defaults.)

# COMMAND ----------

# TODO: define the two widgets, then read them
day = FILL_IN
warehouse = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: what arrived?
# MAGIC
# MAGIC With `dbutils.fs`, list the day's folder `f"{volume}/incoming/{day}"` and set `incoming`
# MAGIC to a dict from each file's name to its size in bytes.

# COMMAND ----------

# TODO: name -> size of each file in the day's folder
incoming = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 3: three formats, one DataFrame
# MAGIC
# MAGIC Read the day's `system_a.csv` (it has a header; declare its schema), `system_b.json` and
# MAGIC `system_c.parquet`, and combine them into one DataFrame `shipments` with the columns
# MAGIC `shipment_id`, `warehouse`, `weight_kg` (a DOUBLE) and `zone`. Mind that the three
# MAGIC readers do not give the columns in the same order.

# COMMAND ----------

# TODO: read the three files and combine them (by column name)
shipments = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: price the shipments with the team's tariff
# MAGIC
# MAGIC The tariff lives in a shared notebook, `./includes/shipping_rules`. Add a cell **above
# MAGIC the next one** that includes it with `%run` (a `%run` cell holds nothing else); it
# MAGIC defines `shipping_cost(weight_col, zone_col)`, which returns a Spark Column. Then set
# MAGIC `priced` to `shipments` with a `cost` column, and `warehouse_cost` to the total cost
# MAGIC (a float, rounded to 2 decimals) of the shipments of the widget's `warehouse`.

# COMMAND ----------

# MAGIC %md
# MAGIC Now price the shipments.

# COMMAND ----------

# TODO: after a %run cell above, add the cost column and total it for `warehouse`
priced = FILL_IN
warehouse_cost = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 5: write the day's result
# MAGIC
# MAGIC Write `priced` as **Parquet**, **partitioned by warehouse**, to
# MAGIC `f"{volume}/priced/{day}"` (overwrite, so that a re-run replaces the day).

# COMMAND ----------

# TODO: write priced, partitioned by warehouse (replace the line below)
FILL_IN()

# COMMAND ----------

# MAGIC %run ./checks/lab_notebooks
