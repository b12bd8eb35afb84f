# Databricks notebook source
# MAGIC %md
# MAGIC # Workflows: the ML pipeline as a multi-task job
# MAGIC
# MAGIC Course 3, week 3. The pipeline of this course, as a Databricks job of seven tasks
# MAGIC declared in `fraud_pipeline.job.json` (Jobs API 2.1):
# MAGIC
# MAGIC ```
# MAGIC ingest -> features -> train -> evaluate -> register_if_better
# MAGIC     register_if_better --(true)--> register
# MAGIC     evaluate, register -> batch_score (run_if NONE_FAILED)
# MAGIC ```
# MAGIC
# MAGIC - tasks pass values on (`dbutils.jobs.taskValues.set`), referenced in the definition
# MAGIC   as `{{tasks.train.values.run_id}}`; job parameters as `{{job.parameters.schema}}`;
# MAGIC - `register_if_better` is a **condition task**: `register` depends on its `true`
# MAGIC   outcome, so a candidate that is not better is never registered;
# MAGIC - `batch_score` depends on `evaluate` and `register` with `run_if: NONE_FAILED`: it
# MAGIC   runs whether or not `register` ran (it scores with whichever version is
# MAGIC   `champion`), but not after a failure.
# MAGIC
# MAGIC The same file runs in both places:
# MAGIC
# MAGIC - **on Databricks** this notebook creates the job from the JSON with the SDK
# MAGIC   (`jobs.create`) and runs it (`run_now`): the Jobs service schedules the tasks;
# MAGIC - **locally** the project's orchestrator runs it: `batuta run fraud_pipeline.job.json`
# MAGIC   (crates/batuta, installed as the `batuta` command). Each notebook task runs in its
# MAGIC   own process through the notebook runner, task values travel as files, the tasks of
# MAGIC   one run share one catalog (a table `ingest` saves, `features` reads by name), and
# MAGIC   the condition task and `run_if` follow Databricks' rules. The SDK cell below is
# MAGIC   not executed locally (there is no Jobs service here).
# MAGIC
# MAGIC The job runs, then is **repaired** from `evaluate` on: the candidate is evaluated
# MAGIC again, now against the champion the first run registered; an equal candidate is not
# MAGIC better, so `register` is excluded while scoring still runs.

# COMMAND ----------

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
_here = Path.cwd()
_root = next(p for p in (_here, *_here.parents) if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(_root / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

job_file = Path.cwd() / "fraud_pipeline.job.json"
job = json.loads(job_file.read_text(encoding="utf-8"))
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
# MAGIC ## The task graph, checked before anything runs
# MAGIC
# MAGIC `batuta validate` refuses unknown dependencies, cycles, task types it cannot run
# MAGIC locally and references to tasks that are not upstream (`{{tasks.x.values.v}}` with
# MAGIC `x` not before the task), as the Jobs service does when a job is created, and prints
# MAGIC the run order. The table is the graph as the file declares it.

# COMMAND ----------

graph = pd.DataFrame(
    [
        {
            "task": t["task_key"],
            "type": next(k for k in t if k.endswith("_task")),
            "depends_on": ", ".join(
                d["task_key"] + (f" ({d['outcome']})" if "outcome" in d else "")
                for d in t.get("depends_on", [])
            ),
            "run_if": t.get("run_if", "ALL_SUCCESS"),
        }
        for t in job["tasks"]
    ]
)
display(graph)


def batuta_command() -> str:
    """The `batuta` executable: beside this interpreter (its wheel's venv), else on PATH."""
    beside = Path(sys.executable).with_name("batuta")
    found = str(beside) if beside.is_file() else shutil.which("batuta")
    if found is None:
        raise RuntimeError(
            "the batuta command is not installed here: `nox -s build` builds its wheel "
            "(dist/batuta-*.whl), `pip install` it into this notebook's environment"
        )
    return found


def batuta(*args: str) -> str:
    """Run `batuta ARGS`, show its progress and summary; fail the cell if the job failed."""
    out = subprocess.run(
        [batuta_command(), *args], cwd=job_file.parent, capture_output=True, text=True, check=False
    )
    print(out.stderr + out.stdout)
    if out.returncode != 0:
        raise RuntimeError(f"batuta {args[0]} exited with {out.returncode}; see the output above")
    return out.stdout


if not IS_DATABRICKS:
    validated = batuta("validate", str(job_file))
    order = validated.split("run order ")[1].strip().split(", ")
    assert order[0] == "ingest", order
    assert order[-1] == "batch_score", order

# COMMAND ----------

# MAGIC %md
# MAGIC ## On Databricks: create the job from the same file and run it
# MAGIC
# MAGIC Notebook paths in the file are relative to this folder; the Jobs service needs them
# MAGIC absolute, so they are resolved against this notebook's workspace folder. The widget
# MAGIC values become the job parameters' defaults. This cell runs only on Databricks: the
# MAGIC local runtime has no Jobs service, and nothing here pretends to be one.

# COMMAND ----------

if IS_DATABRICKS:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.jobs import JobParameterDefinition, RunResultState, Task

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
    states = {t.task_key: t.state.result_state if t.state else None for t in run.tasks or []}
    print(f"job {created.job_id}: {run.state.result_state}", states)
    assert run.state.result_state == RunResultState.SUCCESS, states

# COMMAND ----------

# MAGIC %md
# MAGIC ## Locally: `batuta run`
# MAGIC
# MAGIC The widgets become job parameters (`--param`), which override the file's defaults.
# MAGIC batuta prints each task as it starts and ends, then a summary with a timeline, and
# MAGIC writes a run record (`record.json`, the shape of the Jobs API's `runs/get`): each
# MAGIC task's state, attempts, resolved parameters, task values and the notebook's exit
# MAGIC value. Each task's executed notebook and log stay in the run directory.

# COMMAND ----------

if not IS_DATABRICKS:
    base = Path(os.environ.get("COURSEKIT_RUN_DIR") or Path.cwd() / "build")
    run_dir = base / "batuta" / f"fraud_pipeline-{time.time_ns()}"
    params = [arg for name, value in parameters.items() for arg in ("--param", f"{name}={value}")]
    batuta("run", str(job_file), *params, "--run-dir", str(run_dir))
    record_file = run_dir / "record.json"


def read_record() -> tuple[dict, pd.DataFrame]:
    """The run record, and one row per task: state, tries, duration, values."""
    record = json.loads(record_file.read_text(encoding="utf-8"))
    rows = pd.DataFrame(
        [
            {
                "task": t["task_key"],
                "result": t["state"]["result_state"],
                "tries": len(t.get("attempts", [])),
                "seconds": t.get("execution_duration", 0) / 1000,
                "values": t.get("task_values") or t.get("condition_task", {}).get("outcome"),
            }
            for t in record["tasks"]
        ]
    ).set_index("task")
    return record, rows


def output(record: dict, task: str) -> dict:
    """A notebook task's `dbutils.notebook.exit` value, decoded."""
    (found,) = [t for t in record["tasks"] if t["task_key"] == task]
    return json.loads(found["notebook_output"]["result"])


# COMMAND ----------

# MAGIC %md
# MAGIC ### What the first run did
# MAGIC
# MAGIC No champion existed, so the candidate is an improvement, the condition is true,
# MAGIC `register` makes version 1 the champion and `batch_score` scores the drifted period
# MAGIC with it. The counts are checked against the data generator itself.

# COMMAND ----------

if not IS_DATABRICKS:
    first, first_tasks = read_record()
    display(first_tasks.reset_index())
    assert first["state"]["result_state"] == "SUCCESS", first["state"]
    assert (first_tasks["result"] == "SUCCESS").all(), first_tasks["result"].to_dict()
    # The ingest task generated with seed 7; the same call here gives the same rows.
    data = fraud_data.generate(int(parameters["n_transactions"]), seed=7)
    assert output(first, "ingest") == {
        "rows": len(data.transactions),
        "drift_start": data.drift_start.isoformat(),
    }
    assert output(first, "features")["rows"] == len(data.transactions)
    assert output(first, "evaluate")["improved"] == "true"
    assert output(first, "evaluate")["champion_precision"] is None
    assert first_tasks.loc["register_if_better", "values"] == "true"
    assert output(first, "register") == {"version": "1"}
    scored = output(first, "batch_score")
    assert scored["version"] == "1"
    assert scored["scored"] == len(data.drifted()), (scored, len(data.drifted()))
    assert 0 <= scored["flagged"] <= scored["scored"]
    # Lineage: the champion is the model the train task logged.
    champion = client.get_model_version_by_alias(parameters["model_name"], "champion")
    assert str(champion.version) == "1"
    assert champion.run_id == output(first, "train")["run_id"]

# COMMAND ----------

# MAGIC %md
# MAGIC ### Repair from `evaluate`: an equal candidate is not registered
# MAGIC
# MAGIC `batuta repair record.json --task evaluate` re-runs `evaluate` and everything
# MAGIC downstream of it (Databricks' *repair run*), keeping the upstream tasks' results
# MAGIC and values. The candidate (the same trained model) now meets the champion it
# MAGIC became: not strictly better, so the condition is false and `register` is EXCLUDED.
# MAGIC `batch_score` depends on `evaluate` and `register` with `run_if: NONE_FAILED`: none
# MAGIC failed and one ran, so it scores again, still with version 1. (Had it depended on
# MAGIC `register` alone, it would be excluded too: NONE_FAILED needs a dependency that ran.)

# COMMAND ----------

if not IS_DATABRICKS:
    batuta("repair", str(record_file), "--task", "evaluate")
    second, second_tasks = read_record()
    display(second_tasks.reset_index())
    assert second["repair_count"] == 1
    assert second["repair_history"][-1]["task_keys"] == [
        "evaluate",
        "register_if_better",
        "register",
        "batch_score",
    ]
    # Upstream tasks kept their first run: one attempt each, the same values.
    for task in ("ingest", "features", "train"):
        assert second_tasks.loc[task, "tries"] == 1, second_tasks.loc[task]
        assert output(second, task) == output(first, task)
    evaluated = output(second, "evaluate")
    assert evaluated["improved"] == "false", evaluated
    assert evaluated["champion_precision"] == evaluated["candidate_precision"]
    assert second_tasks.loc["register_if_better", "values"] == "false"
    assert second_tasks.loc["register", "result"] == "EXCLUDED"
    assert second_tasks.loc["batch_score", "result"] == "SUCCESS"
    assert output(second, "batch_score")["version"] == "1"  # still the first champion
    versions = client.search_model_versions(f"name = '{parameters['model_name']}'")
    assert len(versions) == 1, [v.version for v in versions]
