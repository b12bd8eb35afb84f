# Databricks notebook source
# MAGIC %md
# MAGIC # Workflows: the ML pipeline as a multi-task job
# MAGIC
# MAGIC Course 3, week 3. The pipeline of this course, as a Databricks job of seven tasks
# MAGIC declared in `fraud_pipeline.job.json` (Jobs API 2.1):
# MAGIC
# MAGIC ```
# MAGIC ingest -> features -> train -> evaluate -> register_if_better
# MAGIC     register_if_better --(true)--> register -> batch_score (run_if NONE_FAILED)
# MAGIC ```
# MAGIC
# MAGIC - tasks pass values on (`dbutils.jobs.taskValues.set`), referenced in the definition
# MAGIC   as `{{tasks.train.values.run_id}}`; job parameters as `{{job.parameters.schema}}`;
# MAGIC - `register_if_better` is a **condition task**: `register` depends on its `true`
# MAGIC   outcome, so a candidate that is not better is never registered;
# MAGIC - `batch_score` has `run_if: NONE_FAILED`: it runs whether or not `register` ran (it
# MAGIC   scores with whichever version is `champion`), but not after a failure.
# MAGIC
# MAGIC On Databricks this notebook creates the job from the JSON with the SDK and runs it.
# MAGIC Locally, the project's orchestrator `batuta run` is meant to run the same file; it has
# MAGIC not landed in this repository yet, so this notebook runs the definition itself: it
# MAGIC checks the graph, resolves the references, runs each notebook task with
# MAGIC `dbutils.notebook.run` and applies Databricks' condition and `run_if` rules. The job
# MAGIC runs twice: first with no champion (the candidate is registered), then again on the
# MAGIC same data (an equal candidate is not better: `register` is excluded, scoring still
# MAGIC runs).

# COMMAND ----------

import contextlib
import json
import os
from pathlib import Path

import mlflow

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
job = json.loads((Path.cwd() / "fraud_pipeline.job.json").read_text())
defaults = {p["name"]: p["default"] for p in job["parameters"]}
dbutils.widgets.text("catalog", "workspace" if IS_DATABRICKS else defaults["catalog"])
dbutils.widgets.text("schema", defaults["schema"])
dbutils.widgets.text(
    "model_name",
    "workspace.course3_workflows.fraud" if IS_DATABRICKS else defaults["model_name"],
)
dbutils.widgets.text("n_transactions", defaults["n_transactions"])
parameters = {name: dbutils.widgets.get(name) for name in defaults}
if IS_DATABRICKS:
    mlflow.set_registry_uri("databricks-uc")
# A fresh model, so the first run has no champion.
client = mlflow.MlflowClient()
with contextlib.suppress(mlflow.exceptions.MlflowException):  # none registered yet
    client.delete_registered_model(parameters["model_name"])

# COMMAND ----------

# MAGIC %md
# MAGIC ## Check the definition before anything runs
# MAGIC
# MAGIC Unknown dependencies, cycles and task types this runner does not know are refused up
# MAGIC front, as the Jobs service does when a job is created.

# COMMAND ----------

tasks = {t["task_key"]: t for t in job["tasks"]}
assert len(tasks) == len(job["tasks"]), "duplicate task keys"
for t in job["tasks"]:
    for dep in t.get("depends_on", []):
        assert dep["task_key"] in tasks, f"{t['task_key']} depends on unknown {dep['task_key']}"
    kinds = {"notebook_task", "condition_task"} & set(t)
    assert len(kinds) == 1, f"{t['task_key']}: one of notebook_task/condition_task expected"
    assert t.get("run_if", "ALL_SUCCESS") in {"ALL_SUCCESS", "NONE_FAILED", "ALL_DONE"}, t
order, ready = [], [k for k, t in tasks.items() if not t.get("depends_on")]
indegree = {k: len(t.get("depends_on", [])) for k, t in tasks.items()}
while ready:
    key = ready.pop(0)
    order.append(key)
    for other, t in tasks.items():
        if any(d["task_key"] == key for d in t.get("depends_on", [])):
            indegree[other] -= 1
            if indegree[other] == 0:
                ready.append(other)
assert len(order) == len(tasks), f"the task graph has a cycle among {set(tasks) - set(order)}"
print(" -> ".join(order))

# COMMAND ----------

# MAGIC %md
# MAGIC ## On Databricks: create the job from the same file and run it
# MAGIC
# MAGIC Notebook paths in the file are relative to this folder; the Jobs service needs them
# MAGIC absolute, so they are resolved against this notebook's workspace folder.

# COMMAND ----------

if IS_DATABRICKS:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.jobs import JobParameterDefinition, Task

    w = WorkspaceClient()
    folder = str(Path.cwd()).removeprefix("/Workspace")
    specs = json.loads(json.dumps(job["tasks"]))
    for spec in specs:
        if "notebook_task" in spec:
            rel = spec["notebook_task"]["notebook_path"].removeprefix("./")
            spec["notebook_task"]["notebook_path"] = f"{folder}/{rel}"
    created = w.jobs.create(
        name=job["name"],
        tasks=[Task.from_dict(s) for s in specs],
        parameters=[JobParameterDefinition(name=k, default=v) for k, v in parameters.items()],
        max_concurrent_runs=job["max_concurrent_runs"],
    )
    assert created.job_id is not None
    run = w.jobs.run_now_and_wait(created.job_id)
    assert run.state is not None
    print(f"job {created.job_id}: {run.state.result_state}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Locally: run the definition
# MAGIC
# MAGIC Each task's outcome is `SUCCESS`, `FAILED` or `EXCLUDED` (not run: its condition
# MAGIC branch was not taken, or its `run_if` was not met). A task's values come back as its
# MAGIC notebook exit value (the tasks also `taskValues.set` them for Databricks).

# COMMAND ----------

OPS = {
    "EQUAL_TO": lambda a, b: a == b,
    "NOT_EQUAL": lambda a, b: a != b,
    "GREATER_THAN": lambda a, b: a > b,
    "GREATER_THAN_OR_EQUAL": lambda a, b: a >= b,
    "LESS_THAN": lambda a, b: a < b,
    "LESS_THAN_OR_EQUAL": lambda a, b: a <= b,
}


def resolve(text: str, values: dict[str, dict]) -> str:
    out = text
    for name, value in parameters.items():
        out = out.replace(f"{{{{job.parameters.{name}}}}}", value)
    for task_key, task_values in values.items():
        for key, value in task_values.items():
            out = out.replace(
                f"{{{{tasks.{task_key}.values.{key}}}}}", "" if value is None else str(value)
            )
    assert "{{" not in out, f"unresolved reference in {text!r}"
    return out


def compare(op: str, left: str, right: str) -> bool:
    # Databricks compares numerically when both sides are numbers, else as strings.
    try:
        return OPS[op](float(left), float(right))
    except ValueError:
        if op not in ("EQUAL_TO", "NOT_EQUAL"):
            raise
        return OPS[op](left, right)


def run_job() -> tuple[dict[str, str], dict[str, dict]]:
    state: dict[str, str] = {}
    outcome: dict[str, str] = {}  # condition results, "true"/"false"
    values: dict[str, dict] = {}
    for key in order:
        task = tasks[key]
        deps = task.get("depends_on", [])
        satisfied = [
            state[d["task_key"]] == "SUCCESS"
            and ("outcome" not in d or outcome.get(d["task_key"]) == d["outcome"])
            for d in deps
        ]
        failed = any(state[d["task_key"]] == "FAILED" for d in deps)
        rule = task.get("run_if", "ALL_SUCCESS")
        # ALL_SUCCESS: every dependency ran and succeeded (with the branch it asks for);
        # NONE_FAILED: none failed (excluded ones are fine); ALL_DONE: always.
        runs = {"ALL_SUCCESS": all(satisfied), "NONE_FAILED": not failed, "ALL_DONE": True}[rule]
        if not runs:
            state[key] = "EXCLUDED"
            continue
        if "condition_task" in task:
            c = task["condition_task"]
            result = compare(c["op"], resolve(c["left"], values), resolve(c["right"], values))
            outcome[key] = "true" if result else "false"
            state[key] = "SUCCESS"
            print(f"{key}: {c['left']} {c['op']} {c['right']} -> {outcome[key]}")
            continue
        nb = task["notebook_task"]
        arguments = {k: resolve(v, values) for k, v in nb.get("base_parameters", {}).items()}
        try:
            exit_value = dbutils.notebook.run(
                nb["notebook_path"], task.get("timeout_seconds", 0), arguments
            )
        except Exception as err:  # a failing task fails the run, not this notebook
            print(f"{key}: FAILED ({type(err).__name__}: {err})")
            state[key] = "FAILED"
            continue
        values[key] = json.loads(exit_value) if exit_value else {}
        state[key] = "SUCCESS"
        print(f"{key}: {values[key]}")
    return state, values


# COMMAND ----------

if not IS_DATABRICKS:
    first_state, first = run_job()
    print(first_state)
    assert all(s == "SUCCESS" for s in first_state.values()), first_state
    assert first["evaluate"]["improved"] == "true"
    assert first["register"]["version"] == "1"
    assert first["batch_score"]["version"] == "1"
    assert (
        first["batch_score"]["scored"]
        == spark.table(f"{parameters['catalog']}.{parameters['schema']}.fraud_features")
        .filter("period = 'current'")
        .count()
    )

# COMMAND ----------

# MAGIC %md
# MAGIC ### The second run: an equal candidate is not registered

# COMMAND ----------

if not IS_DATABRICKS:
    second_state, second = run_job()
    print(second_state)
    assert second["evaluate"]["improved"] == "false", second["evaluate"]
    assert second_state["register"] == "EXCLUDED"
    assert second_state["batch_score"] == "SUCCESS"
    assert second["batch_score"]["version"] == "1"  # still the first champion
    versions = client.search_model_versions(f"name = '{parameters['model_name']}'")
    assert len(versions) == 1, [v.version for v in versions]
