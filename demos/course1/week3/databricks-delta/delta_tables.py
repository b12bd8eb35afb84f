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
# MAGIC 5. watch schema enforcement reject a bad write, then evolve the schema on purpose.
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
# MAGIC ## What you saw
# MAGIC
# MAGIC - Every write is a commit in `_delta_log/`; `DESCRIBE HISTORY` lists them.
# MAGIC - `UPDATE`, `DELETE` and `MERGE INTO` change rows in place, atomically.
# MAGIC - `VERSION AS OF` reads any earlier version: updates do not destroy history.
# MAGIC - Schema enforcement rejects mismatched writes; `mergeSchema` evolves the schema
# MAGIC   deliberately.
