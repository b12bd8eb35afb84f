# Databricks notebook source
# MAGIC %md
# MAGIC # From warehouse to lake to lakehouse, shown with real files
# MAGIC
# MAGIC Course 1, week 1. Three generations of analytics storage:
# MAGIC
# MAGIC - A **data warehouse** keeps data in its own engine's format behind SQL. Writes are
# MAGIC   transactions, but the data is locked in one system and costly to scale.
# MAGIC - A **data lake** keeps open files (Parquet, CSV, JSON) on cheap object storage that any
# MAGIC   engine can read. But a folder of files is not a table: nothing says which files belong
# MAGIC   to it *right now*, so a crashed writer or a reader arriving mid-write sees a mix.
# MAGIC - A **lakehouse** keeps the open files of the lake and adds a **transaction log** next to
# MAGIC   them (Delta Lake's `_delta_log/`). The log, not the folder listing, says which files form
# MAGIC   each version of the table, which gives the warehouse's transactions on the lake's files.
# MAGIC
# MAGIC This notebook puts a plain Parquet folder (a lake table) and a Delta table (a lakehouse
# MAGIC table) side by side, holding the same orders, and hits both with the same failures:
# MAGIC
# MAGIC 1. an **overwrite that crashes** half way through,
# MAGIC 2. an **append that a reader catches in progress**, and two appends at once,
# MAGIC
# MAGIC then reads the transaction log by hand to see why Delta's readers never saw a mix. It
# MAGIC ends with where these files live (control plane and data plane) and the kinds of compute
# MAGIC a notebook can run on. Every claim is asserted.

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup
# MAGIC
# MAGIC Both tables live as folders in a Unity Catalog **volume** (a governed folder of files,
# MAGIC next week's topic): on Databricks `/Volumes/workspace/course1_lakehouse/files`, locally
# MAGIC the same path inside the run's directory (the local runtime maps `/Volumes` for Spark,
# MAGIC `dbutils` and plain Python alike). We write the files ourselves with `pyarrow` through
# MAGIC Python's `open`, so that we control exactly which files exist at every moment.

# COMMAND ----------

import io
import json
import os
import random
import threading
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pyspark.sql.functions as sf

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ

dbutils.widgets.text("catalog", "workspace" if IS_DATABRICKS else "spark_catalog")
dbutils.widgets.text("schema", "course1_lakehouse")
catalog = dbutils.widgets.get("catalog")
schema = dbutils.widgets.get("schema")

spark.sql(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
volume = f"/Volumes/{catalog}/{schema}/files"
if IS_DATABRICKS:
    spark.sql(f"CREATE VOLUME IF NOT EXISTS {catalog}.{schema}.files")
lake_path = f"{volume}/orders_parquet"  # the lake table: a folder of Parquet files
delta_path = f"{volume}/orders_delta"  # the lakehouse table: Parquet files + _delta_log/
for folder in (lake_path, delta_path):
    dbutils.fs.rm(folder, True)
    dbutils.fs.mkdirs(folder)

ORDER_SCHEMA = "order_id BIGINT, customer STRING, amount DOUBLE, batch STRING"


def make_orders(first_id: int, n: int, batch: str) -> pa.Table:
    """n orders with ids from first_id, tagged with the batch that wrote them."""
    rng = random.Random(first_id)
    return pa.table(
        {
            "order_id": pa.array(range(first_id, first_id + n), pa.int64()),
            "customer": [f"c{rng.randrange(50):02d}" for _ in range(n)],
            "amount": [round(rng.uniform(5, 500), 2) for _ in range(n)],
            "batch": [batch] * n,
        }
    )


class WriterCrashedError(RuntimeError):
    """The writing job died (a lost executor, a killed driver, an out-of-memory)."""


def write_parts(folder: str, table: pa.Table, parts: int, crash_after: int | None = None) -> list:
    """Write table as `parts` Parquet files, one after another, as a job's tasks do.

    With crash_after=k the writer dies after k files: they stay on storage (nothing
    cleans up after a dead process), the rest are never written.
    """
    names, size = [], -(-table.num_rows // parts)
    for i in range(parts):
        if crash_after is not None and i == crash_after:
            raise WriterCrashedError(f"writer died after {i} of {parts} files")
        name = f"part-{i:05d}-{uuid.uuid4()}.parquet"
        with Path(folder, name).open("wb") as out:  # plain Python sees the volume too
            pq.write_table(table.slice(i * size, size), out)
        names.append(name)
    return names


def data_files(folder: str) -> list:
    return sorted(n for n in os.listdir(folder) if n.endswith(".parquet"))


def read_lake():
    """What any engine reading the Parquet folder sees: every file that is there."""
    return spark.read.schema(ORDER_SCHEMA).parquet(lake_path)


def read_delta(version: int | None = None):
    """What a Delta reader sees: the files the log lists for the latest (or a given) version."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(delta_path)


def batches(df) -> dict:
    return {r["batch"]: r["count"] for r in df.groupBy("batch").count().collect()}


# COMMAND ----------

# MAGIC %md
# MAGIC ## Day 1: both tables hold the same 1,000 orders
# MAGIC
# MAGIC The lake table is four Parquet files in a folder. The Delta table starts from the same
# MAGIC rows, written by Delta's writer, which adds a first commit to `_delta_log/`.

# COMMAND ----------

day1 = make_orders(1, 1000, "day1")
write_parts(lake_path, day1, parts=4)
spark.createDataFrame(day1.to_pandas()).repartition(4).write.format("delta").save(delta_path)

print("lake folder: ", data_files(lake_path))
print("delta folder:", data_files(delta_path), "+", os.listdir(f"{delta_path}/_delta_log"))
assert batches(read_lake()) == {"day1": 1000}
assert batches(read_delta()) == {"day1": 1000}

# COMMAND ----------

# MAGIC %md
# MAGIC ## Failure 1: an overwrite that crashes half way
# MAGIC
# MAGIC Day 2's job recomputes all 1,000 orders and overwrites the table. On a folder of files
# MAGIC an overwrite means: delete the old files, write the new ones (this is also what Spark's
# MAGIC own `mode("overwrite")` does to a Parquet path). The job dies after two of its four
# MAGIC files. The same crash hits the Delta writer: it too writes its data files first, and
# MAGIC would commit (append one JSON file to the log) only at the very end, which it never
# MAGIC reaches.

# COMMAND ----------

day2 = make_orders(1, 1000, "day2")

for old in data_files(lake_path):  # the overwrite's first step: clear the folder
    os.remove(f"{lake_path}/{old}")
try:
    write_parts(lake_path, day2, parts=4, crash_after=2)
except WriterCrashedError as crash:
    print("lake writer: ", crash)

try:
    write_parts(delta_path, day2, parts=4, crash_after=2)
except WriterCrashedError as crash:
    print("delta writer:", crash)

lake_after, delta_after = batches(read_lake()), batches(read_delta())
print("a reader of the Parquet folder sees:", lake_after)
print("a reader of the Delta table sees:   ", delta_after)

# The lake lost day 1 and holds half of day 2: 500 rows that were never a valid table.
assert lake_after == {"day2": 500}
# Delta: the two orphan files are in the folder, but no commit lists them.
assert delta_after == {"day1": 1000}
assert len(data_files(delta_path)) == 4 + 2
assert len(read_delta().inputFiles()) == 4

# COMMAND ----------

# MAGIC %md
# MAGIC The real Spark writer fails the same way. Below, a job fails on its 900th row
# MAGIC (`raise_error` stands in for any task failure). Spark's Parquet overwrite deleted the
# MAGIC old files before the job ran, so the folder is left without its data; Delta's overwrite
# MAGIC writes the new files and commits last, so the failed job leaves the table as it was.

# COMMAND ----------

# repartition: the rows go to tasks, so the error is raised in a running task (on a
# local list of rows, Spark's optimiser would evaluate it on the driver before writing).
crashing = (
    spark.createDataFrame(day2.to_pandas())
    .repartition(4)
    .withColumn(
        "amount",
        sf.when(
            sf.col("order_id") == 900, sf.raise_error(sf.lit("task lost at row 900"))
        ).otherwise(sf.col("amount")),
    )
)
spark_lake = f"{volume}/orders_parquet_spark"
spark.createDataFrame(day1.to_pandas()).write.mode("overwrite").parquet(spark_lake)

outcomes = {}
for name, write in {
    "parquet": lambda: crashing.write.mode("overwrite").parquet(spark_lake),
    "delta": lambda: crashing.write.format("delta").mode("overwrite").save(delta_path),
}.items():
    try:
        write()
        outcomes[name] = "succeeded"
    except Exception as exc:  # a failed Spark job surfaces as a JVM or Connect error
        outcomes[name] = "failed: task lost" if "task lost at row 900" in str(exc) else str(exc)
print(outcomes)
assert outcomes == {"parquet": "failed: task lost", "delta": "failed: task lost"}

left = os.listdir(spark_lake) if os.path.isdir(spark_lake) else []
lake_rows = (
    spark.read.schema(ORDER_SCHEMA).parquet(spark_lake).count()
    if any(n.endswith(".parquet") for n in left)
    else 0
)
print(f"Parquet folder after Spark's failed overwrite: {lake_rows} rows")
assert batches(read_delta()) == {"day1": 1000}
if not IS_DATABRICKS:
    # Open-source Spark deletes the old files first; the data is gone.
    assert lake_rows == 0

# COMMAND ----------

# MAGIC %md
# MAGIC ## Why: the transaction log
# MAGIC
# MAGIC `_delta_log/` holds one JSON file per committed version, `00000000000000000000.json`
# MAGIC for version 0 and so on. Each line is an action: `add` a file, `remove` a file, the
# MAGIC table's schema (`metaData`), what wrote it (`commitInfo`). A reader replays the log and
# MAGIC reads exactly the files that are added and not removed. Writing a commit is one atomic
# MAGIC "create this file if it does not exist", so a version is either fully there or not at
# MAGIC all. A crashed writer leaves files no commit mentions, and readers never look at them
# MAGIC (`VACUUM` deletes such orphans later, week 3).
# MAGIC
# MAGIC Plain Python is enough to read it:

# COMMAND ----------


def commits() -> list:
    log = f"{delta_path}/_delta_log"
    return sorted(n for n in os.listdir(log) if n.endswith(".json"))


def actions(version: int) -> list:
    log = Path(delta_path, "_delta_log", f"{version:020d}.json")
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]


def live_files() -> set:
    """Replay the log: files added and not removed since."""
    live = set()
    for name in commits():
        for action in actions(int(name.split(".")[0])):
            if "add" in action:
                live.add(action["add"]["path"])
            if "remove" in action:
                live.discard(action["remove"]["path"])
    return live


print("commits:", commits())
for action in actions(0):
    print(json.dumps(action)[:150])

spark_files = {p.rsplit("/", 1)[-1] for p in read_delta().inputFiles()}
assert commits() == ["00000000000000000000.json"]  # the two crashed writers committed nothing
assert live_files() == spark_files  # our replay picks the files Spark reads
orphans = set(data_files(delta_path)) - live_files()
print(f"{len(orphans)} orphan files in the folder, ignored by every reader")
# Our crashed writer's two, plus whatever tasks of Spark's failed job had finished.
assert len(orphans) >= 2

# COMMAND ----------

# MAGIC %md
# MAGIC A successful overwrite is one commit that `remove`s the old files and `add`s the new.
# MAGIC The old files stay on storage, so version 0 can still be read: that is time travel.

# COMMAND ----------

spark.createDataFrame(day2.to_pandas()).repartition(4).write.format("delta").mode("overwrite").save(
    delta_path
)
kinds = [next(iter(a)) for a in actions(1)]
print("version 1 actions:", {k: kinds.count(k) for k in set(kinds)})
assert kinds.count("remove") == 4
assert kinds.count("add") >= 1
assert batches(read_delta()) == {"day2": 1000}
assert batches(read_delta(version=0)) == {"day1": 1000}

# COMMAND ----------

# MAGIC %md
# MAGIC ## Failure 2: a reader arrives during an append
# MAGIC
# MAGIC Day 3 appends 400 new orders as four files. A dashboard queries the table after the
# MAGIC writer has written two of them. In the lake folder, the files are the table, so the
# MAGIC dashboard counts half an append. In the Delta table the same two files are on storage
# MAGIC but not yet committed, so the dashboard sees version 1 complete, and after the commit it
# MAGIC sees all 400 rows at once.

# COMMAND ----------

# Repair the lake table first (by hand: there is no older version to go back to).
for old in data_files(lake_path):
    os.remove(f"{lake_path}/{old}")
write_parts(lake_path, day2, parts=4)

day3 = make_orders(1001, 400, "day3")
size = day3.num_rows // 4
for folder in (lake_path, delta_path):  # the appending writer has written 2 of its 4 files
    write_parts(folder, day3.slice(0, 2 * size), parts=2)

mid_lake, mid_delta = batches(read_lake()), batches(read_delta())
print("mid-append, lake reader: ", mid_lake)
print("mid-append, delta reader:", mid_delta)
assert mid_lake == {"day2": 1000, "day3": 200}  # half an append, visible
assert mid_delta == {"day2": 1000}  # nothing until the commit

# The writer finishes. For the lake that is two more files; Delta's writer commits.
write_parts(lake_path, day3.slice(2 * size), parts=2)
spark.createDataFrame(day3.to_pandas()).repartition(4).write.format("delta").mode("append").save(
    delta_path
)
assert batches(read_lake()) == batches(read_delta()) == {"day2": 1000, "day3": 400}

# COMMAND ----------

# MAGIC %md
# MAGIC ### Two appends at the same time
# MAGIC
# MAGIC Two jobs append to the Delta table at once. Each writes its files, then tries to
# MAGIC create the next log file. Only one can create version 3; the other finds it taken,
# MAGIC checks that the winner did not touch anything it read (two blind appends never
# MAGIC conflict), and commits as version 4. No append is lost and each version is complete.
# MAGIC (An overwrite racing with a read-modify-write would instead fail with a
# MAGIC `ConcurrentModificationException`, so that the second writer retries on fresh data.)

# COMMAND ----------


def append(batch: str, first_id: int):
    rows = make_orders(first_id, 100, batch).to_pandas()
    spark.createDataFrame(rows).write.format("delta").mode("append").save(delta_path)


writers = [
    threading.Thread(target=append, args=("day4-shop", 2001)),
    threading.Thread(target=append, args=("day4-app", 3001)),
]
for w in writers:
    w.start()
for w in writers:
    w.join()

history = spark.sql(f"DESCRIBE HISTORY delta.`{delta_path}`").orderBy("version")
display(history.select("version", "operation", "operationParameters"))
final = batches(read_delta())
print(final)
assert final == {"day2": 1000, "day3": 400, "day4-shop": 100, "day4-app": 100}
ops = [(r["version"], r["operation"]) for r in history.collect()]
assert [v for v, _ in ops] == [0, 1, 2, 3, 4]
assert [op for v, op in ops if v >= 2] == ["WRITE", "WRITE", "WRITE"]

# COMMAND ----------

# MAGIC %md
# MAGIC ## Where all this runs: control plane and data plane
# MAGIC
# MAGIC A Databricks workspace is split in two:
# MAGIC
# MAGIC - the **control plane**, run by Databricks: the web app, notebooks' source, job
# MAGIC   definitions, the cluster manager, and Unity Catalog's metadata (which tables exist,
# MAGIC   where their files are, who may read them);
# MAGIC - the **data plane**, where the data is processed and stored: the compute that runs
# MAGIC   your Spark code and the cloud storage holding the Parquet files and `_delta_log/`
# MAGIC   you just read. With serverless compute the data plane machines are in Databricks'
# MAGIC   account; with classic compute they are in yours. Either way the table's bytes are in
# MAGIC   object storage, in open formats, and the log next to them is the source of truth.
# MAGIC
# MAGIC Everything we touched above is data plane: a folder of files. What the control plane
# MAGIC adds is the name `catalog.schema.table` pointing at such a folder (next notebook).
# MAGIC Locally the "data plane" is this run's directory, which we can prove:

# COMMAND ----------

local_file = next(n for n in data_files(delta_path) if n in live_files())
# The same bytes Spark reads, opened by plain Python.
on_disk = pq.read_table(io.BytesIO(Path(delta_path, local_file).read_bytes()))
print(f"{local_file}: {on_disk.num_rows} rows, columns {on_disk.column_names}")
assert on_disk.column_names == ["order_id", "customer", "amount", "batch"]

# COMMAND ----------

# MAGIC %md
# MAGIC ## Compute types, and what each means for a notebook
# MAGIC
# MAGIC - **Serverless** (Free Edition's only choice): Databricks-managed, starts in seconds,
# MAGIC   you pick no machines. Python and SQL run through **Spark Connect**: DataFrames and SQL
# MAGIC   work, but there is no `sparkContext`, no RDDs, no `.cache()`, no accumulators, no
# MAGIC   custom Spark configs or JVM libraries.
# MAGIC - **Classic** (all-purpose and job clusters): VMs in your cloud account; you choose
# MAGIC   their size, the runtime version and libraries. The full Spark API, including
# MAGIC   `spark.sparkContext` (`sc`), RDDs, caching, init scripts, Scala and R cells.
# MAGIC - **SQL warehouse** (serverless, pro or classic): compute for SQL only. A notebook
# MAGIC   attached to one runs its `%sql` cells only; dashboards and BI tools use it.
# MAGIC
# MAGIC A notebook can tell which one it is on: under Spark Connect the session's class comes
# MAGIC from `pyspark.sql.connect`, and `sparkContext` is refused. The local runtime is a classic
# MAGIC Spark driver in this process, so `sc` exists here. Write course notebooks so they work
# MAGIC without `sc` and they run on every compute type that runs Python: this one never
# MAGIC touches it (a check in the project's tests refuses notebooks that do).

# COMMAND ----------

session_class = f"{type(spark).__module__}.{type(spark).__name__}"
on_connect = type(spark).__module__.startswith("pyspark.sql.connect")
print(f"session: {session_class}; Spark Connect: {on_connect}")
if not IS_DATABRICKS:
    # The local runtime is a classic driver in this very process.
    assert not on_connect, session_class
# Either way the DataFrame API is the same, which is why course notebooks use only it.
assert spark.range(3).count() == 3

# COMMAND ----------

# MAGIC %md
# MAGIC ## What you saw
# MAGIC
# MAGIC - A folder of Parquet files has no notion of a version: a crashed overwrite left 500
# MAGIC   rows that were never the table, and a reader mid-append counted half an append.
# MAGIC - The same files with a transaction log beside them are a table: readers see only
# MAGIC   committed versions, a failed job leaves nothing behind that anyone reads, concurrent
# MAGIC   appends become consecutive versions, and old versions stay readable.
# MAGIC - The log is plain JSON in the data plane's storage; replaying it by hand gave exactly
# MAGIC   the files Spark reads.
