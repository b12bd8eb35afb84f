# Databricks notebook source
# MAGIC %md
# MAGIC # Workflows: a parameterised bronze → silver → gold job
# MAGIC
# MAGIC Course 1, week 3. Production pipelines are not one big notebook: they are **jobs** made
# MAGIC of **tasks**, each task a notebook with parameters, run in dependency order, retried on
# MAGIC failure. This notebook builds the classic *medallion* pipeline out of the task
# MAGIC notebooks in `./tasks/`:
# MAGIC
# MAGIC | task | writes | rule |
# MAGIC |---|---|---|
# MAGIC | `bronze_ingest` | `bronze_orders` (replace batch) | keep every raw row, stamp its batch |
# MAGIC | `silver_clean` | `silver_orders` (MERGE) | reject bad rows, dedupe; idempotent |
# MAGIC | `gold_aggregate` | `gold_region_revenue` (overwrite) | business aggregates |
# MAGIC | `any_rejected` | (a condition task) | did silver reject rows? |
# MAGIC | `report_rejects` | `rejected_orders` (replace batch) | only if `any_rejected` |
# MAGIC
# MAGIC The job itself is a file next to this notebook, `job.json`, in the Jobs API 2.1 format:
# MAGIC its tasks and dependencies, **job parameters** (`catalog`, `schema`, `batch`) that
# MAGIC reach every task as widget values, **task values** (silver publishes how many rows it
# MAGIC rejected with `dbutils.jobs.taskValues.set`), and a **condition task** that reads that
# MAGIC value (`{{tasks.silver_clean.values.rejected}}`) to decide whether the report task runs.
# MAGIC
# MAGIC Every task may be retried (`max_retries`), so every task must be **idempotent**:
# MAGIC running it twice for the same batch must leave the same tables as running it once.
# MAGIC Bronze replaces its batch's rows (`replaceWhere`), silver merges on the order id, gold
# MAGIC overwrites, the report replaces its batch. We prove it below by retrying tasks.
# MAGIC
# MAGIC On Databricks the last section creates this job from `job.json` with the Databricks SDK
# MAGIC and runs it for real. Everywhere (locally, and on Databricks first) the notebook plays
# MAGIC the scheduler: it runs the same task notebooks in the job's order with
# MAGIC `dbutils.notebook.run(path, timeout, arguments)`, which returns the value each task
# MAGIC passed to `dbutils.notebook.exit`, and evaluates the condition task itself.

# COMMAND ----------

import json
import operator
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyspark.sql.functions as sf

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ

dbutils.widgets.text("catalog", "workspace" if IS_DATABRICKS else "spark_catalog")
dbutils.widgets.text("schema", "course1_workflows")
catalog = dbutils.widgets.get("catalog")
schema = dbutils.widgets.get("schema")

# Start from empty tables so that the counts below hold on every run.
spark.sql(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
for name in ["bronze_orders", "silver_orders", "gold_region_revenue", "rejected_orders"]:
    spark.sql(f"DROP TABLE IF EXISTS {catalog}.{schema}.{name}")


# The job definition, read from the file that sits next to this notebook.
here = Path.cwd() if IS_DATABRICKS else Path(os.environ["COURSEKIT_NOTEBOOK"]).parent
job = json.loads((here / "job.json").read_text(encoding="utf-8"))
job_tasks = {t["task_key"]: t for t in job["tasks"]}


def run_task(task: str, **arguments: str) -> dict:
    """Run one task notebook with the job's parameters and decode its JSON exit value."""
    path = "./" + job_tasks[task]["notebook_task"]["notebook_path"]
    value = dbutils.notebook.run(path, 600, {"catalog": catalog, "schema": schema, **arguments})
    assert value is not None, f"task {task} ended without dbutils.notebook.exit"
    result = json.loads(value)
    print(f"{task}: {result}")
    return result


# COMMAND ----------

# MAGIC %md
# MAGIC ## Run 1: the first batch
# MAGIC
# MAGIC Batch 1 holds 40 good orders plus three problems: a row without a region, a negative
# MAGIC quantity and a duplicated order. Bronze lands all 43 rows; silver keeps 40.

# COMMAND ----------

OPS = {
    "EQUAL_TO": operator.eq,
    "NOT_EQUAL": operator.ne,
    "GREATER_THAN": operator.gt,
    "GREATER_THAN_OR_EQUAL": operator.ge,
    "LESS_THAN": operator.lt,
    "LESS_THAN_OR_EQUAL": operator.le,
}


def condition(task: str, values: dict) -> bool:
    """Evaluate a condition task of job.json, its {{tasks.X.values.Y}} references resolved."""
    spec = job_tasks[task]["condition_task"]

    def resolve(text: str) -> str:
        ref = re.fullmatch(r"\{\{tasks\.(\w+)\.values\.(\w+)\}\}", text)
        return str(values[ref[1]][ref[2]]) if ref else text

    left, right = resolve(spec["left"]), resolve(spec["right"])
    try:  # numbers compare as numbers, as on Databricks
        return OPS[spec["op"]](float(left), float(right))
    except ValueError:
        return OPS[spec["op"]](left, right)


def run_batch(batch: str) -> dict:
    """One job run for a batch: the tasks in job.json's order, the condition decided here."""
    out = {"bronze_ingest": run_task("bronze_ingest", batch=batch)}
    out["silver_clean"] = run_task("silver_clean", batch=batch)
    out["gold_aggregate"] = run_task("gold_aggregate")
    out["any_rejected"] = condition("any_rejected", out)
    if out["any_rejected"]:
        out["report_rejects"] = run_task(
            "report_rejects", batch=batch, rejected=str(out["silver_clean"]["rejected"])
        )
    return out


run_1 = run_batch("1")
bronze_1, silver_1, gold_1 = run_1["bronze_ingest"], run_1["silver_clean"], run_1["gold_aggregate"]

assert bronze_1["rows"] == 43
assert silver_1["rejected"] == 2
assert silver_1["clean"] == 40
assert silver_1["silver_rows"] == 40
assert gold_1["orders"] == 40
assert run_1["any_rejected"] is True
assert run_1["report_rejects"]["reported"] == 2

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run 2: a new batch, and retries
# MAGIC
# MAGIC Batch 2 arrives: silver grows to 80 orders. Then bronze and silver run *again* for
# MAGIC batch 2, as a job does when it retries a failed task. Bronze replaces the batch's rows
# MAGIC and silver merges on the order id, so the retries change nothing.

# COMMAND ----------

run_2 = run_batch("2")
silver_2 = run_2["silver_clean"]
run_task("bronze_ingest", batch="2")  # a retry of bronze ...
retry = run_task("silver_clean", batch="2")  # ... and of silver
gold_2 = run_task("gold_aggregate")

assert silver_2["silver_rows"] == 80
assert retry["silver_rows"] == 80, "a retried silver task must not duplicate rows"
assert gold_2["orders"] == 80

silver = spark.table(f"{catalog}.{schema}.silver_orders")
assert silver.select("order_id").distinct().count() == silver.count()
assert silver.filter(sf.col("region").isNull() | (sf.col("quantity") <= 0)).count() == 0

# COMMAND ----------

# MAGIC %md
# MAGIC ## The gold table
# MAGIC
# MAGIC Gold agrees with silver to the cent: it is rebuilt from it on every run.

# COMMAND ----------

gold = spark.table(f"{catalog}.{schema}.gold_region_revenue").orderBy(sf.desc("revenue"))
display(gold)

silver_revenue = silver.agg(sf.sum("amount")).collect()[0][0]
assert abs(gold_2["revenue"] - silver_revenue) < 0.01
bronze_rows = spark.table(f"{catalog}.{schema}.bronze_orders").count()
assert bronze_rows == 86, "bronze keeps every raw row once, rejected ones included"
rejected_rows = spark.table(f"{catalog}.{schema}.rejected_orders").count()
assert rejected_rows == 4  # two per batch, each reported once

# COMMAND ----------

# MAGIC %md
# MAGIC ## The job on Databricks, created from `job.json`
# MAGIC
# MAGIC On Databricks you do not orchestrate from a notebook: you declare the job once and
# MAGIC Databricks schedules it, runs each task (on serverless compute when the tasks name no
# MAGIC cluster), retries failed tasks and alerts. The cell below creates the job from the very
# MAGIC file the local run followed, with the Databricks SDK (`databricks-sdk`, preinstalled on
# MAGIC Databricks), runs it with job parameters, waits for it, and checks that every task
# MAGIC succeeded and that the condition task let the report run. The notebook paths in
# MAGIC `job.json` are relative; the cell makes them absolute workspace paths next to this
# MAGIC notebook. The job is deleted afterwards (keep it, and add a `schedule`, to run it daily).
# MAGIC
# MAGIC Locally there is no Jobs service, and the SDK cell is not executed. The project's
# MAGIC own runner for Jobs JSON, `batuta` (`crates/batuta`, the `batuta` command), runs the
# MAGIC same file instead: each task in its own process through the notebook runner, job
# MAGIC parameters pushed down to every task, task values passed as files, the condition
# MAGIC task evaluated with Databricks' rules, retries as `max_retries` says. From a shell:
# MAGIC
# MAGIC ```sh
# MAGIC batuta run demos/course1/week3/databricks-workflows/job.json --param batch=3
# MAGIC ```
# MAGIC
# MAGIC The file's default catalog is `workspace` (Free Edition's); locally the runtime reads
# MAGIC `workspace.<schema>` as the session catalog `spark_catalog`, so the defaults work
# MAGIC unchanged. The tasks of one batuta run share their own catalog (a fresh warehouse in
# MAGIC the run's directory), so this run starts from empty tables, as a new job would.

# COMMAND ----------

order = [t["task_key"] for t in job["tasks"]]
for t in job["tasks"]:  # dependencies point backwards: the file lists tasks in run order
    assert all(
        order.index(d["task_key"]) < order.index(t["task_key"]) for d in t.get("depends_on", [])
    )
retried = [t["task_key"] for t in job["tasks"] if t.get("max_retries", 0) > 0]
print("tasks retried on failure (each idempotent, as run 2 showed):", retried)
assert {"bronze_ingest", "silver_clean"} <= set(retried)

if IS_DATABRICKS:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.jobs import JobSettings, RunResultState

    # A notebook's working directory is its workspace folder (/Workspace/...).
    folder = str(here).removeprefix("/Workspace")
    definition = json.loads(json.dumps(job))
    for t in definition["tasks"]:
        if "notebook_task" in t:
            t["notebook_task"]["notebook_path"] = f"{folder}/{t['notebook_task']['notebook_path']}"
    for p in definition["parameters"]:
        p["default"] = {"catalog": catalog, "schema": schema}.get(p["name"], p["default"])

    w = WorkspaceClient()
    job_id = w.jobs.create(**JobSettings.from_dict(definition).as_shallow_dict()).job_id
    assert job_id is not None
    print(f"created job {job_id}: {w.config.host}/jobs/{job_id}")
    try:
        run = w.jobs.run_now_and_wait(job_id, job_parameters={"batch": "3"})
        states = {t.task_key: t.state.result_state if t.state else None for t in run.tasks or []}
        print(states)
        assert run.state is not None
        assert run.state.result_state == RunResultState.SUCCESS
        assert states["report_rejects"] == RunResultState.SUCCESS  # the condition was true
        bronze_3 = spark.table(f"{catalog}.{schema}.bronze_orders").filter("batch = 3").count()
        assert bronze_3 == 43
    finally:
        w.jobs.delete(job_id)
else:
    beside = Path(sys.executable).with_name("batuta")
    command = str(beside) if beside.is_file() else shutil.which("batuta")
    if command is None:
        raise RuntimeError(
            "the batuta command is not installed here (nox -s build builds its wheel)"
        )
    run_dir = (
        Path(os.environ.get("COURSEKIT_RUN_DIR") or here / "build") / f"batuta-{time.time_ns()}"
    )
    # No --param catalog: job.json's default `workspace` works locally too.
    done = subprocess.run(
        [command, "run", str(here / "job.json"), "--param", "batch=3", "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    print(done.stderr + done.stdout)
    assert done.returncode == 0, f"batuta run exited with {done.returncode}"
    record = json.loads((run_dir / "record.json").read_text(encoding="utf-8"))
    tasks = {t["task_key"]: t for t in record["tasks"]}
    states = {k: t["state"]["result_state"] for k, t in tasks.items()}
    print(states)
    assert record["state"]["result_state"] == "SUCCESS", record["state"]
    assert set(states.values()) == {"SUCCESS"}, states
    assert tasks["bronze_ingest"]["resolved_parameters"]["catalog"] == "workspace"

    def exit_value(task: str) -> dict:
        return json.loads(tasks[task]["notebook_output"]["result"])

    # A fresh job catalog: batch 3 alone, with the same three problem rows as every batch.
    assert exit_value("bronze_ingest")["rows"] == 43
    assert tasks["silver_clean"]["task_values"] == {"rejected": 2, "clean": 40}
    assert exit_value("silver_clean")["silver_rows"] == 40
    assert exit_value("gold_aggregate")["orders"] == 40
    assert tasks["any_rejected"]["condition_task"]["outcome"] == "true"
    assert exit_value("report_rejects")["reported"] == 2

# COMMAND ----------

# MAGIC %md
# MAGIC ## What you saw
# MAGIC
# MAGIC - A job is tasks plus dependencies; each task is a parameterised notebook.
# MAGIC - Bronze keeps raw data, silver enforces rules, gold serves the business.
# MAGIC - A retried task must be idempotent: replace the batch (`replaceWhere`), `MERGE` on a
# MAGIC   key or overwrite, never a blind append.
# MAGIC - Task values pass small results between tasks; a condition task branches on them.
# MAGIC - The job is a file (`job.json`); the SDK creates and runs it on Databricks.
# MAGIC - `dbutils.notebook.run` passes arguments in and gets a value back.
