# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: a lake folder becomes a table, and survives a bad night (solution)
# MAGIC
# MAGIC Course 1, week 1. A greenhouse's sensor exporter drops its readings as Parquet files
# MAGIC into a folder (a plain data lake). You will make that folder a Delta table, append the
# MAGIC next day, and then recover the table after a night in which one job overwrote it with
# MAGIC wrong values and another crashed half way, using nothing but the transaction log.
# MAGIC
# MAGIC Replace every `FILL_IN` with your code, run the notebook top to bottom, and read the
# MAGIC checks at the end. Locally: `nox -s grade -- labs/course1/week1/lab_lakehouse.py`.

# COMMAND ----------

# MAGIC %run ../../../_labkit

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup (run as is)

# COMMAND ----------

import json
import os
import random
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pyspark.sql.functions as sf

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
catalog = "workspace" if IS_DATABRICKS else "spark_catalog"
schema = "course1_lab_lakehouse"
spark.sql(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
volume = f"/Volumes/{catalog}/{schema}/greenhouse"
if IS_DATABRICKS:
    spark.sql(f"CREATE VOLUME IF NOT EXISTS {catalog}.{schema}.greenhouse")
landing = f"{volume}/landing"  # where the exporter drops Parquet files
table_path = f"{volume}/readings"  # where the Delta table goes
for folder in (landing, table_path):
    dbutils.fs.rm(folder, True)
dbutils.fs.mkdirs(landing)

READING_SCHEMA = "reading_id STRING, sensor STRING, day STRING, celsius DOUBLE"
rng = random.Random(5)
sensors = ["north-bed", "south-bed", "seedlings", "tomatoes"]


def readings(day: str, n: int) -> list:
    return [
        (f"{day}-{i:04d}", rng.choice(sensors), day, round(rng.uniform(12.0, 31.0), 1))
        for i in range(n)
    ]


def parquet_file(folder: str, rows: list) -> str:
    """Write rows as one Parquet file in folder (plain Python, as the exporter does)."""
    columns = list(zip(*rows, strict=True))
    table = pa.table(
        {
            "reading_id": list(columns[0]),
            "sensor": list(columns[1]),
            "day": list(columns[2]),
            "celsius": pa.array(columns[3], pa.float64()),
        }
    )
    name = f"part-{uuid.uuid4()}.parquet"
    with Path(folder, name).open("wb") as out:
        pq.write_table(table, out)
    return name


day1 = readings("2024-05-01", 300)
day2 = readings("2024-05-02", 240)
for i in range(3):
    parquet_file(landing, day1[i * 100 : (i + 1) * 100])
day2_df = spark.createDataFrame(day2, READING_SCHEMA)
print(f"{len(os.listdir(landing))} files in {landing}; day2_df holds {len(day2)} readings")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 1: from a folder of files to a Delta table
# MAGIC
# MAGIC Read the Parquet files in `landing` with Spark and save them **in Delta format** at
# MAGIC `table_path` (use mode `"overwrite"` so that the cell can be run again). This first
# MAGIC write is the table's version 0.

# COMMAND ----------

landing_df = spark.read.parquet(landing)
landing_df.write.format("delta").mode("overwrite").save(table_path)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: append the next day
# MAGIC
# MAGIC Add the readings of `day2_df` to the Delta table, keeping day 1 (this is version 1).

# COMMAND ----------

day2_df.write.format("delta").mode("append").save(table_path)

# COMMAND ----------

# MAGIC %md
# MAGIC ## The night (run as is)
# MAGIC
# MAGIC Two jobs run against your table overnight. Run the cell, then repair the damage.

# COMMAND ----------

# A job with a unit bug rewrites the whole table in Fahrenheit and commits it; then a
# second job dies after writing two of its files. Both happen to the table you built.
log_dir = Path(table_path, "_delta_log")
if log_dir.is_dir():
    current = spark.read.format("delta").load(table_path)
    wrong = current.withColumn("celsius", sf.round(sf.col("celsius") * 9 / 5 + 32, 1))
    wrong.write.format("delta").mode("overwrite").save(table_path)
    bad_version = max(int(n.split(".")[0]) for n in os.listdir(log_dir) if n.endswith(".json"))
    crashed_files = [parquet_file(table_path, readings("2024-05-03", 50)) for _ in range(2)]
    print(f"the bad overwrite committed version {bad_version}; the crash left 2 files")
else:
    bad_version, crashed_files = None, []
    print("no Delta table at table_path yet: do tasks 1 and 2 first")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 3: find the last good version
# MAGIC
# MAGIC The table's history (`DESCRIBE HISTORY` on the table's path, or the commit files in
# MAGIC `_delta_log/`) shows every version. Set `last_good_version` to the version just before
# MAGIC the bad overwrite, and read the table **as of that version** into `good_df`.

# COMMAND ----------

history = spark.sql(f"DESCRIBE HISTORY delta.`{table_path}`").orderBy("version")
display(history.select("version", "operation", "operationParameters"))
last_good_version = history.collect()[-2]["version"]
good_df = spark.read.format("delta").option("versionAsOf", last_good_version).load(table_path)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: the files no commit ever added
# MAGIC
# MAGIC The crashed job left Parquet files in the table's folder. Readers ignore them because no
# MAGIC commit `add`s them. With plain Python, read every commit file in `_delta_log/` (one JSON
# MAGIC action per line), and set `never_committed` to the set of **file names** in the table's
# MAGIC folder that no commit ever added. (Files that a later commit `remove`d are not among them:
# MAGIC old versions still need them.)

# COMMAND ----------

log = Path(table_path, "_delta_log")
added = set()
for commit in sorted(log.glob("*.json")):
    for line in commit.read_text(encoding="utf-8").splitlines():
        action = json.loads(line)
        if "add" in action:
            added.add(action["add"]["path"])
in_folder = {p.name for p in Path(table_path).glob("*.parquet")}
never_committed = in_folder - added

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 5: restore the table
# MAGIC
# MAGIC Make the current version of the table hold the last good data again, **without**
# MAGIC rewriting history: the bad version must stay readable with time travel. (Delta has a
# MAGIC command for exactly this.)

# COMMAND ----------

spark.sql(f"RESTORE TABLE delta.`{table_path}` TO VERSION AS OF {last_good_version}")
display(spark.sql(f"DESCRIBE HISTORY delta.`{table_path}`").select("version", "operation"))

# COMMAND ----------

# MAGIC %run ../checks/lab_lakehouse
