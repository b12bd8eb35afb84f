# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: a daily job that may be retried (solution)
# MAGIC
# MAGIC Course 1, week 3. A greenhouse wants a daily job: land the day's sensor readings,
# MAGIC roll them up per sensor, and raise an alert on hot days. Jobs retry failed tasks, so you
# MAGIC will first write the two steps so that running them twice does no harm (idempotent),
# MAGIC then declare the job in the Jobs API 2.1 format, with a job parameter, retries, a
# MAGIC dependency and a condition task.
# MAGIC
# MAGIC Replace every `FILL_IN` with your code, run the notebook top to bottom, and read the
# MAGIC checks at the end. Locally: `nox -s grade -- labs/course1/week3/lab_workflows.py`.

# COMMAND ----------

# MAGIC %run ../../../_labkit

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup (run as is)

# COMMAND ----------

import json
import os
import random

import pyspark.sql.functions as sf

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
catalog = "workspace" if IS_DATABRICKS else "spark_catalog"
schema = "course1_lab_workflows"
spark.sql(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
raw_table = f"{catalog}.{schema}.raw_readings"
stats_table = f"{catalog}.{schema}.daily_stats"
for name in (raw_table, stats_table):
    spark.sql(f"DROP TABLE IF EXISTS {name}")
spark.sql(f"CREATE TABLE {raw_table} (day STRING, sensor STRING, hour INT, celsius DOUBLE)")
spark.sql(
    f"CREATE TABLE {stats_table} (day STRING, sensor STRING, readings BIGINT, "
    "avg_celsius DOUBLE, max_celsius DOUBLE)"
)
RAW_SCHEMA = "day STRING, sensor STRING, hour INT, celsius DOUBLE"


def readings_for(day: str) -> list:
    """The readings the sensors report for a day (the same day gives the same rows)."""
    rng = random.Random(day)
    return [
        (day, sensor, hour, round(rng.uniform(14.0, 33.0), 1))
        for sensor in ("north", "south", "seedlings")
        for hour in range(0, 24, 2)
    ]


print(f"tables {raw_table} and {stats_table} are empty; readings_for(day) gives 36 rows")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 1: an idempotent ingest step
# MAGIC
# MAGIC Write `ingest(day)`: it writes `readings_for(day)` into `raw_table` and returns the number
# MAGIC of rows it wrote. Running it **twice for the same day** must leave that day in the table
# MAGIC once, and must not touch the other days (a job retrying this task must be harmless).

# COMMAND ----------


def ingest(day: str) -> int:
    rows = readings_for(day)
    (
        spark.createDataFrame(rows, RAW_SCHEMA)
        .write.mode("overwrite")
        .option("replaceWhere", f"day = '{day}'")
        .saveAsTable(raw_table)
    )
    return len(rows)


# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: an idempotent rollup step
# MAGIC
# MAGIC Write `rollup(day)`: from the day's rows in `raw_table`, compute per sensor the number of
# MAGIC readings, the average (rounded to 2 decimals) and the maximum `celsius`, and put them
# MAGIC into `stats_table` (columns as created in the setup), keyed by (`day`, `sensor`). Running
# MAGIC it twice must not duplicate rows; running it after a re-ingest must refresh them. It
# MAGIC returns the day's highest temperature (a float).

# COMMAND ----------


def rollup(day: str) -> float:
    daily = (
        spark.table(raw_table)
        .filter(sf.col("day") == day)
        .groupBy("day", "sensor")
        .agg(
            sf.count("*").alias("readings"),
            sf.round(sf.avg("celsius"), 2).alias("avg_celsius"),
            sf.max("celsius").alias("max_celsius"),
        )
    )
    daily.createOrReplaceTempView("daily_update")
    spark.sql(
        f"MERGE INTO {stats_table} AS t USING daily_update AS u "
        "ON t.day = u.day AND t.sensor = u.sensor "
        "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    return float(daily.agg(sf.max("max_celsius")).collect()[0][0])


# COMMAND ----------

# MAGIC %md
# MAGIC Run one day, then its retry (run as is once both functions are written):

# COMMAND ----------

for _attempt in range(2):  # the second round is what a retried job run does
    print(ingest("2024-07-01"), rollup("2024-07-01"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 3: the job definition
# MAGIC
# MAGIC Set `job` to a dict in the **Jobs API 2.1** format (what `job.json` holds, or
# MAGIC `WorkspaceClient().jobs.create` takes) named `greenhouse-daily`, with:
# MAGIC
# MAGIC - a job parameter `day` with the default `2024-07-01`,
# MAGIC - a notebook task `ingest` (notebook path `tasks/ingest`) with `max_retries` of 2,
# MAGIC - a notebook task `rollup` (notebook path `tasks/rollup`) that runs after `ingest`, also
# MAGIC   with `max_retries` of 2.

# COMMAND ----------

job: dict = {
    "name": "greenhouse-daily",
    "parameters": [{"name": "day", "default": "2024-07-01"}],
    "tasks": [
        {
            "task_key": "ingest",
            "notebook_task": {"notebook_path": "tasks/ingest"},
            "max_retries": 2,
        },
        {
            "task_key": "rollup",
            "depends_on": [{"task_key": "ingest"}],
            "notebook_task": {"notebook_path": "tasks/rollup"},
            "max_retries": 2,
        },
    ],
}

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: alert on hot days
# MAGIC
# MAGIC The `rollup` task publishes the day's maximum as a task value:
# MAGIC `dbutils.jobs.taskValues.set("max_celsius", value)`. Add two tasks to `job["tasks"]`:
# MAGIC a **condition task** `hot_day` that runs after `rollup` and tests whether that value
# MAGIC (referenced as `{{tasks.rollup.values.max_celsius}}`) is **greater than** `30`, and a
# MAGIC notebook task `alert` (notebook path `tasks/alert`) that runs only when `hot_day` is
# MAGIC true.

# COMMAND ----------

alert_tasks: list = [
    {
        "task_key": "hot_day",
        "depends_on": [{"task_key": "rollup"}],
        "condition_task": {
            "op": "GREATER_THAN",
            "left": "{{tasks.rollup.values.max_celsius}}",
            "right": "30",
        },
    },
    {
        "task_key": "alert",
        "depends_on": [{"task_key": "hot_day", "outcome": "true"}],
        "notebook_task": {"notebook_path": "tasks/alert"},
    },
]
job["tasks"].extend(alert_tasks)
print(json.dumps(job, indent=1))

# COMMAND ----------

# MAGIC %run ../checks/lab_workflows
