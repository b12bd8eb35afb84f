# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: a loyalty ledger in Delta
# MAGIC
# MAGIC Course 1, week 3. A café chain keeps its loyalty members in a Delta table. Today's
# MAGIC jobs: apply a batch of sign-ups and point changes, protect the table against negative
# MAGIC balances, record row-level changes, undo a bonus that went out by mistake, and compact
# MAGIC the table's small files.
# MAGIC
# MAGIC Replace every `FILL_IN` with your code, run the notebook top to bottom, and read the
# MAGIC checks at the end. Locally: `nox -s grade -- labs/course1/week3/lab_delta.py`.

# COMMAND ----------

# MAGIC %run ../../_labkit

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup (run as is)

# COMMAND ----------

import os
import random

import pyspark.sql.functions as sf

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
catalog = "workspace" if IS_DATABRICKS else "spark_catalog"
schema = "course1_lab_delta"
spark.sql(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
members_table = f"{catalog}.{schema}.members"
spark.sql(f"DROP TABLE IF EXISTS {members_table}")

MEMBER_SCHEMA = "member_id INT, name STRING, points INT, tier STRING"
rng = random.Random(21)
tiers = ["bronze", "silver", "gold"]
members = [(i, f"member {i}", rng.randint(0, 900), rng.choice(tiers)) for i in range(1, 31)]
# Written as 6 files, as six small loads would have left it.
spark.createDataFrame(members, MEMBER_SCHEMA).repartition(6).write.format("delta").saveAsTable(
    members_table
)
# Today's batch: 5 members with new points (one moves to gold), 4 sign-ups.
changes = [
    (3, "member 3", 120, "silver"),
    (7, "member 7", 950, "gold"),
    (12, "member 12", 0, "bronze"),
]
changes += [(18, "member 18", 410, "silver"), (25, "member 25", 77, "bronze")]
changes += [(31 + i, f"member {31 + i}", 50, "bronze") for i in range(4)]
changes_df = spark.createDataFrame(changes, MEMBER_SCHEMA)
print(f"{members_table}: {len(members)} members; changes_df: {len(changes)} rows")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 1: apply the batch (upsert)
# MAGIC
# MAGIC `changes_df` holds changed rows of existing members and rows of new members. Apply it
# MAGIC to `members_table` in **one** statement that updates the members that exist (matched on
# MAGIC `member_id`) and inserts the others.

# COMMAND ----------

# TODO: upsert changes_df into members_table (replace the line below)
FILL_IN()

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: no negative balances, ever
# MAGIC
# MAGIC Add a constraint named `points_non_negative` to the table so that every future write
# MAGIC with negative `points` is rejected.

# COMMAND ----------

# TODO: add the constraint (replace the line below)
FILL_IN()

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 3: record row-level changes
# MAGIC
# MAGIC Switch on the table's **change data feed**, so that every later commit also records
# MAGIC which rows it changed and how.

# COMMAND ----------

# TODO: enable the change data feed on members_table (replace the line below)
FILL_IN()

# COMMAND ----------

# MAGIC %md
# MAGIC ## The bonus (run as is)

# COMMAND ----------

# The marketing job grants 100 points to every gold member (it should not have).
spark.sql(f"UPDATE {members_table} SET points = points + 100 WHERE tier = 'gold'")
bonus_version = spark.sql(f"DESCRIBE HISTORY {members_table} LIMIT 1").collect()[0].version
print(f"the bonus is version {bonus_version}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: who got the bonus?
# MAGIC
# MAGIC From the **change data feed** of version `bonus_version`, set `bonus_members` to the set
# MAGIC of `member_id`s whose points the bonus changed (each updated row appears as a pre-image
# MAGIC and a post-image; count each member once).

# COMMAND ----------

# TODO: read the change feed of bonus_version and collect the member ids
bonus_members = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 5: undo the bonus
# MAGIC
# MAGIC Bring the whole table back to the version **just before** the bonus, keeping the
# MAGIC history (the bonus must stay visible in `DESCRIBE HISTORY`).

# COMMAND ----------

# TODO: put the table back as it was before bonus_version (replace the line below)
FILL_IN()

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 6: compact the small files
# MAGIC
# MAGIC The table still consists of several small files. Compact them, then set `files_after` to
# MAGIC the table's number of files as `DESCRIBE DETAIL` reports it.

# COMMAND ----------

# TODO: compact the table, then read its file count
files_after = FILL_IN

# COMMAND ----------

# MAGIC %run ./checks/lab_delta
