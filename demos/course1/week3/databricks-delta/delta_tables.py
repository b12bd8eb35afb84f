# Databricks notebook source
# MAGIC %md
# MAGIC # Delta Lake: a transaction log on top of Parquet
# MAGIC
# MAGIC Course 1, week 3. A Delta table is a folder of Parquet files plus a transaction log
# MAGIC (`_delta_log/`): an ordered list of JSON commits, each saying which files were added and
# MAGIC removed. Reading the log gives ACID transactions on plain object storage, and because
# MAGIC old commits stay, every earlier *version* of the table can still be read.
# MAGIC
# MAGIC In this notebook you will:
# MAGIC
# MAGIC 1. create a Delta table and append to it,
# MAGIC 2. change rows in place with `UPDATE`, `DELETE` and `MERGE INTO` (an upsert),
# MAGIC 3. read the table's history with `DESCRIBE HISTORY`,
# MAGIC 4. query an old version with `VERSION AS OF` (time travel),
# MAGIC 5. watch schema enforcement reject a bad write, then evolve the schema on purpose,
# MAGIC 6. enforce constraints, read the change data feed, delete with deletion vectors and
# MAGIC    restore an old version,
# MAGIC 7. compact small files with `OPTIMIZE ... ZORDER BY` and clean up with `VACUUM`.
# MAGIC
# MAGIC Each step asserts what it demonstrates.

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup
# MAGIC
# MAGIC Catalog and schema come from widgets: on Databricks Free Edition the default catalog is
# MAGIC `workspace` (Unity Catalog); on the local runtime it is Spark's `spark_catalog`. The
# MAGIC table is dropped first so the notebook can be run again from the top.

# COMMAND ----------

import os

import pyspark.sql.functions as sf
from pyspark.errors import AnalysisException

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ

dbutils.widgets.text("catalog", "workspace" if IS_DATABRICKS else "spark_catalog")
dbutils.widgets.text("schema", "course1_delta")
catalog = dbutils.widgets.get("catalog")
schema = dbutils.widgets.get("schema")
accounts = f"{catalog}.{schema}.accounts"

spark.sql(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
spark.sql(f"DROP TABLE IF EXISTS {accounts}")
print(f"table: {accounts}")


def balances() -> dict[int, float]:
    """The current balance of every account, read from the table."""
    return {r.account_id: r.balance for r in spark.table(accounts).collect()}


# COMMAND ----------

# MAGIC %md
# MAGIC ## 1. Create, then append
# MAGIC
# MAGIC Writing a DataFrame with `saveAsTable` creates the table and commits version 0. An
# MAGIC append adds new files and commits version 1; readers see either all of it or none.

# COMMAND ----------

schema_ddl = "account_id INT, owner STRING, tier STRING, balance DOUBLE"
initial = [
    (1, "ada", "gold", 1200.0),
    (2, "grace", "silver", 300.0),
    (3, "alan", "gold", 5000.0),
    (4, "edsger", "bronze", 50.0),
    (5, "barbara", "silver", 820.0),
]
spark.createDataFrame(initial, schema_ddl).write.format("delta").saveAsTable(accounts)

more = [(6, "donald", "bronze", 10.0), (7, "margaret", "gold", 2500.0), (8, "ken", "silver", 0.0)]
spark.createDataFrame(more, schema_ddl).write.format("delta").mode("append").saveAsTable(accounts)

display(spark.table(accounts).orderBy("account_id"))
assert spark.table(accounts).count() == 8

# COMMAND ----------

# MAGIC %md
# MAGIC ## 2. UPDATE and DELETE in place
# MAGIC
# MAGIC Parquet files are immutable: an `UPDATE` rewrites the files holding matching rows and
# MAGIC commits "remove old file, add new file" atomically. Gold accounts earn 5 % interest;
# MAGIC empty accounts are closed.

# COMMAND ----------

before = balances()
spark.sql(f"UPDATE {accounts} SET balance = ROUND(balance * 1.05, 2) WHERE tier = 'gold'")
after = balances()

gold = {1, 3, 7}
for account_id, balance in before.items():
    expected = round(balance * 1.05, 2) if account_id in gold else balance
    assert after[account_id] == expected, (account_id, after[account_id], expected)

deleted = spark.sql(f"DELETE FROM {accounts} WHERE balance = 0").collect()[0]
print(deleted)
assert 8 not in balances()
assert spark.table(accounts).count() == 7

# COMMAND ----------

# MAGIC %md
# MAGIC ## 3. MERGE INTO: the upsert
# MAGIC
# MAGIC A batch of changes arrives: two existing accounts with new balances and two new
# MAGIC accounts. `MERGE INTO` matches them on the key, updates the matches and inserts the
# MAGIC rest, in one transaction. Its result row counts what it did.

# COMMAND ----------

changes = [
    (2, "grace", "silver", 450.0),
    (4, "edsger", "silver", 75.0),
    (9, "frances", "bronze", 40.0),
    (10, "tony", "gold", 3100.0),
]
spark.createDataFrame(changes, schema_ddl).createOrReplaceTempView("account_changes")

merge = spark.sql(f"""
    MERGE INTO {accounts} AS target
    USING account_changes AS source
    ON target.account_id = source.account_id
    WHEN MATCHED THEN UPDATE SET *
    WHEN NOT MATCHED THEN INSERT *
""").collect()[0]
print(merge)

assert merge["num_updated_rows"] == 2
assert merge["num_inserted_rows"] == 2
current = balances()
assert current[2] == 450.0
assert current[10] == 3100.0
assert spark.table(accounts).count() == 9

# COMMAND ----------

# MAGIC %md
# MAGIC The table now, per tier. In a `%sql` cell, `:catalog` and `:schema` are the widgets'
# MAGIC values (named parameter markers) and `IDENTIFIER(...)` turns the string into a name.

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT tier, COUNT(*) AS accounts, ROUND(SUM(balance), 2) AS total_balance
# MAGIC FROM IDENTIFIER(:catalog || '.' || :schema || '.accounts')
# MAGIC GROUP BY tier
# MAGIC ORDER BY tier

# COMMAND ----------

# MAGIC %md
# MAGIC ## 4. The history: one version per commit
# MAGIC
# MAGIC `DESCRIBE HISTORY` reads the transaction log: every write above is a version with its
# MAGIC operation and metrics.

# COMMAND ----------

history = spark.sql(f"DESCRIBE HISTORY {accounts}").orderBy("version")
display(history.select("version", "operation", "operationMetrics"))

operations = [r.operation for r in history.collect()]
# Version 0 is the table's creation (its name differs between engines); then our commits.
assert operations[1:] == ["WRITE", "UPDATE", "DELETE", "MERGE"], operations
latest_version = history.agg({"version": "max"}).collect()[0][0]
assert latest_version == 4

# COMMAND ----------

# MAGIC %md
# MAGIC ### Where the log lives
# MAGIC
# MAGIC On Databricks, Unity Catalog manages the table's storage and does not expose the folder
# MAGIC to a notebook; `DESCRIBE DETAIL` still shows the location and file count. On the local
# MAGIC runtime the folder is on disk, so we can open `_delta_log/` and see one JSON file per
# MAGIC version.

# COMMAND ----------

detail = spark.sql(f"DESCRIBE DETAIL {accounts}").collect()[0]
print(f"format={detail.format} files={detail.numFiles} location={detail.location}")
assert detail.format == "delta"

if IS_DATABRICKS:
    print("Unity Catalog manages this table's storage; use DESCRIBE HISTORY to read its log.")
else:
    log_dir = detail.location.removeprefix("file:") + "/_delta_log"
    commits = sorted(name for name in os.listdir(log_dir) if name.endswith(".json"))
    print("\n".join(commits))
    assert len(commits) == latest_version + 1

# COMMAND ----------

# MAGIC %md
# MAGIC ## 5. Time travel: read an earlier version
# MAGIC
# MAGIC `VERSION AS OF n` reads the table as it was after commit `n`. Version 0 holds the five
# MAGIC original accounts with their original balances: nothing was lost by the updates.

# COMMAND ----------

version_0 = spark.sql(f"SELECT * FROM {accounts} VERSION AS OF 0")
display(version_0.orderBy("account_id"))

assert version_0.count() == 5
assert {r.account_id: r.balance for r in version_0.collect()} == {a[0]: a[3] for a in initial}
version_1 = spark.sql(f"SELECT COUNT(*) AS n FROM {accounts} VERSION AS OF 1").collect()[0]
assert version_1.n == 8

# COMMAND ----------

# MAGIC %md
# MAGIC ## 6. Schema enforcement
# MAGIC
# MAGIC A write whose columns do not match the table's schema is rejected, so a typo or an
# MAGIC upstream change cannot silently corrupt the table. Here a batch arrives with an extra
# MAGIC `email` column: the append fails and the table is unchanged.

# COMMAND ----------

with_email = spark.createDataFrame(
    [(11, "niklaus", "bronze", 15.0, "niklaus@example.org")],
    schema_ddl + ", email STRING",
)
rows_before = spark.table(accounts).count()
try:
    with_email.write.format("delta").mode("append").saveAsTable(accounts)
    raise AssertionError("the append with an extra column should have been rejected")
except AnalysisException as error:
    print("rejected:", str(error).splitlines()[0])

assert spark.table(accounts).count() == rows_before
assert "email" not in spark.table(accounts).columns

# COMMAND ----------

# MAGIC %md
# MAGIC ## 7. Schema evolution, on purpose
# MAGIC
# MAGIC When the new column is wanted, say so: `mergeSchema` adds it to the table schema in the
# MAGIC same commit as the data. Existing rows get `NULL` for the new column.

# COMMAND ----------

with_email.write.format("delta").mode("append").option("mergeSchema", "true").saveAsTable(accounts)

evolved = spark.table(accounts)
display(evolved.orderBy("account_id"))
assert "email" in evolved.columns
assert evolved.count() == rows_before + 1
emails = {r.account_id: r.email for r in evolved.collect()}
assert emails[11] == "niklaus@example.org"
assert emails[1] is None

# COMMAND ----------

# MAGIC %md
# MAGIC ## 8. Constraints: NOT NULL and CHECK
# MAGIC
# MAGIC Schema enforcement checks column names and types. Constraints check **values**: a
# MAGIC `NOT NULL` column and a `CHECK` expression are part of the table, and every write is
# MAGIC verified against them; a violating write fails whole and commits nothing. Adding a
# MAGIC constraint that existing rows already break is refused too.

# COMMAND ----------

# NOT NULL is declared with the column (Databricks can also add it later with ALTER
# COLUMN ... SET NOT NULL; open-source Delta only at creation).
transfers = f"{catalog}.{schema}.transfers"
spark.sql(f"DROP TABLE IF EXISTS {transfers}")
spark.sql(
    f"CREATE TABLE {transfers} (transfer_id INT NOT NULL, account_id INT, amount DOUBLE) "
    "USING DELTA"
)
spark.sql(f"INSERT INTO {transfers} VALUES (1, 3, 250.0)")
spark.sql(f"ALTER TABLE {accounts} ADD CONSTRAINT non_negative CHECK (balance >= 0)")
constrained_version = (
    spark.sql(f"DESCRIBE HISTORY {accounts}").agg({"version": "max"}).collect()[0][0]
)


def refused(statement: str) -> str:
    """Run a statement that must fail; return the line of its error that says why."""
    try:
        spark.sql(statement)
    except Exception as exc:  # a constraint violation
        lines = str(exc).splitlines()
        return next((line for line in lines if "violat" in line.lower()), lines[0])
    raise AssertionError(f"accepted, but should have been refused: {statement}")


rows_before = spark.table(accounts).count()
overdraft = refused(f"INSERT INTO {accounts} VALUES (12, 'kristen', 'bronze', -20.0, NULL)")
anonymous = refused(f"INSERT INTO {transfers} VALUES (NULL, 3, 20.0)")
too_strict = refused(f"ALTER TABLE {accounts} ADD CONSTRAINT rich CHECK (balance > 1000)")
print("overdraft: ", overdraft[:150])
print("no id:     ", anonymous[:150])
print("too strict:", too_strict[:150])
assert "non_negative" in overdraft
assert "transfer_id" in anonymous
assert spark.table(accounts).count() == rows_before
assert spark.table(transfers).count() == 1
constraints = {
    k: v for k, v in spark.sql(f"SHOW TBLPROPERTIES {accounts}").collect() if "constraints" in k
}
assert constraints == {"delta.constraints.non_negative": "balance >= 0"}

# COMMAND ----------

# MAGIC %md
# MAGIC ## 9. Change data feed: what changed, row by row
# MAGIC
# MAGIC The history says *that* an UPDATE happened. With `delta.enableChangeDataFeed` the table
# MAGIC also records *which rows* changed and how: each updated row appears twice
# MAGIC (`update_preimage`, `update_postimage`), each deleted row once (`delete`), each new row
# MAGIC once (`insert`), with the version that changed it. Downstream jobs read only the
# MAGIC changes since the version they last processed, instead of the whole table.

# COMMAND ----------

spark.sql(f"ALTER TABLE {accounts} SET TBLPROPERTIES (delta.enableChangeDataFeed = true)")
cdf_start = spark.sql(f"DESCRIBE HISTORY {accounts}").agg({"version": "max"}).collect()[0][0] + 1
spark.sql(f"UPDATE {accounts} SET tier = 'gold' WHERE account_id IN (2, 5)")
spark.sql(f"DELETE FROM {accounts} WHERE account_id = 11")

changes_df = (
    spark.read.option("readChangeFeed", "true").option("startingVersion", cdf_start).table(accounts)
)
display(
    changes_df.select("account_id", "tier", "_change_type", "_commit_version").orderBy(
        "_commit_version", "account_id", "_change_type"
    )
)
feed = sorted((r.account_id, r._change_type) for r in changes_df.collect())
print(feed)
assert feed == [
    (2, "update_postimage"),
    (2, "update_preimage"),
    (5, "update_postimage"),
    (5, "update_preimage"),
    (11, "delete"),
]

# COMMAND ----------

# MAGIC %md
# MAGIC ## 10. Deletion vectors: deleting without rewriting
# MAGIC
# MAGIC Without them, deleting one row rewrites its whole Parquet file (copy every other row
# MAGIC into a new file, remove the old one). With **deletion vectors** (on by default for new
# MAGIC tables on Databricks), a `DELETE` or `UPDATE` instead writes a small bitmap beside the
# MAGIC file marking the deleted row positions; readers skip those rows. The data file is not
# MAGIC rewritten, so the write is cheap; the rows are physically dropped later, when `OPTIMIZE`
# MAGIC (or `REORG TABLE ... APPLY (PURGE)`) rewrites the file. An `UPDATE` with deletion vectors
# MAGIC marks the old row deleted and writes the new version of the row to a new file.

# COMMAND ----------

spark.sql(f"ALTER TABLE {accounts} SET TBLPROPERTIES (delta.enableDeletionVectors = true)")
spark.sql(f"DELETE FROM {accounts} WHERE account_id = 4")
last = spark.sql(f"DESCRIBE HISTORY {accounts} LIMIT 1").collect()[0]
metrics = {k: int(v) for k, v in last.operationMetrics.items() if v.isdigit()}
print(last.operation, metrics)
assert last.operation == "DELETE"
assert metrics["numDeletionVectorsAdded"] == 1
assert metrics.get("numCopiedRows", 0) == 0  # no row was copied into a new file
assert 4 not in balances()

# COMMAND ----------

# MAGIC %md
# MAGIC ## 11. RESTORE: put a whole table back
# MAGIC
# MAGIC Time travel reads an old version; `RESTORE` makes it the current one again, as a new
# MAGIC commit (history is kept, so a restore can itself be undone). Here we undo everything
# MAGIC since the constraints were added: the CDF changes and the deletion.

# COMMAND ----------

want = {
    r.account_id: r.balance
    for r in spark.sql(f"SELECT * FROM {accounts} VERSION AS OF {constrained_version}").collect()
}
restore = spark.sql(f"RESTORE TABLE {accounts} TO VERSION AS OF {constrained_version}").collect()[0]
print(restore)
assert balances() == want
assert spark.sql(f"DESCRIBE HISTORY {accounts} LIMIT 1").collect()[0].operation == "RESTORE"

# COMMAND ----------

# MAGIC %md
# MAGIC ## 12. Small files, OPTIMIZE and Z-ordering
# MAGIC
# MAGIC Many small files make every query slow: each file costs a request and a footer read.
# MAGIC Streaming and frequent small appends produce them. `OPTIMIZE` compacts them into
# MAGIC larger files (target 1 GB) in one commit; `ZORDER BY (col)` also sorts the rows along a
# MAGIC space-filling curve so that files hold narrow ranges of `col`, letting queries filtering
# MAGIC on it skip files from their min/max statistics. On Databricks, **liquid clustering**
# MAGIC (`CLUSTER BY (col)` on the table) is the newer way to get the same layout
# MAGIC incrementally, and replaces partitioning and Z-ordering for new tables.
# MAGIC
# MAGIC We write an events table as 16 small files, then optimize it.

# COMMAND ----------

events = f"{catalog}.{schema}.events"
spark.sql(f"DROP TABLE IF EXISTS {events}")
(
    spark.range(4000)
    .select(
        sf.col("id").alias("event_id"),
        (sf.col("id") % 40).alias("device"),
        (sf.col("id") * 7 % 1000 / 10).alias("reading"),
    )
    .repartition(16)
    .write.format("delta")
    .saveAsTable(events)
)


def file_count(table: str) -> int:
    return spark.sql(f"DESCRIBE DETAIL {table}").collect()[0].numFiles


files_before = file_count(events)
optimized = spark.sql(f"OPTIMIZE {events} ZORDER BY (device)").collect()[0]
files_after = file_count(events)
print(f"files: {files_before} before OPTIMIZE, {files_after} after")
print("OPTIMIZE metrics:", {k: optimized.metrics[k] for k in ("numFilesAdded", "numFilesRemoved")})
assert files_before == 16
assert files_after < files_before
assert optimized.metrics["numFilesRemoved"] == 16
assert spark.table(events).count() == 4000
zorder = spark.sql(f"DESCRIBE HISTORY {events} LIMIT 1").collect()[0]
assert zorder.operation == "OPTIMIZE"
assert "device" in zorder.operationParameters["zOrderBy"]

# COMMAND ----------

# MAGIC %md
# MAGIC ## 13. VACUUM and retention
# MAGIC
# MAGIC OPTIMIZE *removed* the 16 small files from the table, in the log, but left them on
# MAGIC storage: version 0 still needs them, so time travel to it works. `VACUUM` deletes files
# MAGIC that no version within the **retention period** needs (default 7 days,
# MAGIC `delta.deletedFileRetentionDuration`). Right after OPTIMIZE it deletes nothing: the small
# MAGIC files were removed less than 7 days ago. Time travel is only as long as the retention.
# MAGIC
# MAGIC Locally we then shorten the retention to zero (Delta refuses that unless its safety
# MAGIC check is switched off, because a running query or writer might still be reading those
# MAGIC files), and VACUUM deletes the 16 files for real: version 0 can no longer be read. On
# MAGIC Databricks, do not do that on a shared table; the cell only runs the default VACUUM there.

# COMMAND ----------


def version_0_total():
    # SUM needs the data files (a COUNT(*) could be answered from the log's statistics).
    total = spark.sql(f"SELECT SUM(reading) FROM {events} VERSION AS OF 0").collect()[0][0]
    return round(total, 6)  # files are read in another order: float sums differ in the last bits


total = round(spark.table(events).agg(sf.sum("reading")).collect()[0][0], 6)
assert version_0_total() == total
spark.sql(f"VACUUM {events}")  # default retention: nothing is old enough yet
assert version_0_total() == total

if not IS_DATABRICKS:
    location = spark.sql(f"DESCRIBE DETAIL {events}").collect()[0].location.removeprefix("file:")
    on_disk_before = len([n for n in os.listdir(location) if n.endswith(".parquet")])
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    spark.sql(f"VACUUM {events} RETAIN 0 HOURS")
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "true")
    on_disk_after = len([n for n in os.listdir(location) if n.endswith(".parquet")])
    print(f"Parquet files on disk: {on_disk_before} before VACUUM, {on_disk_after} after")
    assert on_disk_before == files_after + 16
    assert on_disk_after == files_after
    try:
        version_0_total()
        old_version = "readable"
    except Exception:  # its files are gone
        old_version = "gone"
    assert old_version == "gone"
    assert spark.table(events).count() == 4000  # the current version is untouched

# COMMAND ----------

# MAGIC %md
# MAGIC ## What you saw
# MAGIC
# MAGIC - Every write is a commit in `_delta_log/`; `DESCRIBE HISTORY` lists them.
# MAGIC - `UPDATE`, `DELETE` and `MERGE INTO` change rows in place, atomically.
# MAGIC - `VERSION AS OF` reads any earlier version: updates do not destroy history.
# MAGIC - Schema enforcement rejects mismatched writes; `mergeSchema` evolves the schema
# MAGIC   deliberately. Constraints (`NOT NULL`, `CHECK`) reject bad values.
# MAGIC - The change data feed lists the rows each commit changed.
# MAGIC - Deletion vectors make deletes cheap by marking rows instead of rewriting files.
# MAGIC - `RESTORE` brings an old version back as a new commit.
# MAGIC - `OPTIMIZE` compacts small files (and `ZORDER BY` clusters them); `VACUUM` deletes
# MAGIC   unneeded files after the retention period, which bounds time travel.
