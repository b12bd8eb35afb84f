"""The tasks of one job share a catalog; independent notebooks do not.

The ``spark`` test runs notebooks exactly as ``batuta run`` runs the notebook tasks of a
job: one ``python -m coursekit.run`` process per task, all with the run's
``COURSEKIT_RUN_DIR`` and each with its ``COURSEKIT_TASK_KEY``. The rows are checked
against the Delta log and Parquet files read with pyarrow, not through Spark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from coursekit.runtime import catalog
from coursekit.runtime.jobs import TASK_KEY, TASK_VALUES_DIR

HEADER = "# Databricks notebook source\n"
SEP = "\n\n# COMMAND ----------\n\n"


def write_notebook(path: Path, *cells: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + SEP.join(cells) + "\n")
    return path


def delta_table(path: Path) -> Path:
    (path / "_delta_log").mkdir(parents=True)
    (path / "_delta_log" / "00000000000000000000.json").write_text("{}\n")
    return path


# ------------------------------------------------------------------ fast: the layout


def test_find_tables_reads_the_managed_table_layout(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    delta_table(wh / "sales.db" / "orders")
    delta_table(wh / "sales.db" / "ünïcode_t")
    delta_table(wh / "top")  # a table of the default schema lives at the top
    (wh / "sales.db" / "creating" / "_delta_log").mkdir(parents=True)  # no commit yet
    (wh / "sales.db" / "plain").mkdir()  # not Delta
    (wh / "empty.db").mkdir()
    (wh / ".db").mkdir()  # no schema name
    (wh / "stray.txt").write_text("x")
    found = catalog.find_tables(wh)
    assert [(t.schema, t.name) for t in found] == [
        ("sales", "orders"),
        ("sales", "ünïcode_t"),
        ("default", "top"),
    ]
    assert found[0].path == wh / "sales.db" / "orders"
    assert found[1].qualified == "spark_catalog.`sales`.`ünïcode_t`"


def test_find_tables_of_a_missing_or_empty_folder(tmp_path: Path) -> None:
    assert catalog.find_tables(tmp_path / "absent") == []
    assert catalog.find_tables(tmp_path) == []


def test_quote_identifier_doubles_backticks() -> None:
    assert catalog.quote_identifier("a`b") == "`a``b`"
    assert catalog.quote_identifier("") == "``"


def test_only_a_job_task_shares_the_run_warehouse(tmp_path: Path) -> None:
    assert catalog.warehouse_dir(tmp_path, "nb-abc123", {}) == tmp_path / "warehouse/nb-abc123"
    assert catalog.warehouse_dir(tmp_path, "nb-abc123", {TASK_KEY: "  "}) == (
        tmp_path / "warehouse/nb-abc123"
    )
    for name in ("a-111111", "b-222222"):
        assert catalog.warehouse_dir(tmp_path, name, {TASK_KEY: "ingest"}) == (
            tmp_path / "warehouse" / catalog.SHARED_WAREHOUSE
        )
    assert catalog.refresh(object(), tmp_path, {}) == []  # outside a job: nothing to do


# ------------------------------------------------------------- spark: a job's tasks


def _run(project: Path, notebook: Path, run_dir: Path, task: str | None) -> None:
    env = {**os.environ, "COURSEKIT_RUN_DIR": str(run_dir)}
    env.pop(TASK_KEY, None)
    env.pop(TASK_VALUES_DIR, None)
    if task is not None:
        (run_dir / "values").mkdir(parents=True, exist_ok=True)
        env |= {TASK_KEY: task, TASK_VALUES_DIR: str(run_dir / "values")}
    result = subprocess.run(
        [sys.executable, "-m", "coursekit.run", str(notebook), "--jobs", "1", "--timeout", "900"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
        check=False,
    )
    assert result.returncode == 0, f"{notebook.name}:\n{result.stdout}\n{result.stderr}"


def _delta_rows(table: Path) -> list[dict]:
    """The table's current rows from its log and Parquet files, without Spark."""
    live: set[str] = set()
    for commit in sorted((table / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                live.add(action["add"]["path"])
            elif "remove" in action:
                live.discard(action["remove"]["path"])
    rows: list[dict] = []
    for path in sorted(live):
        rows.extend(pq.read_table(table / path).to_pylist())
    return rows


@pytest.mark.spark
def test_tasks_of_a_job_share_tables_and_independent_runs_do_not(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    nbdir = project / "demos/course1/week3/job"
    ingest = write_notebook(
        nbdir / "ingest.py",
        "rows = [(1, 'ada', 9.5), (2, 'zoë', 12.0)]\n"
        "df = spark.createDataFrame(rows, 'id INT, customer STRING, amount DOUBLE')\n"
        'spark.sql("CREATE SCHEMA IF NOT EXISTS course1_workflows")\n'
        'df.write.mode("overwrite").saveAsTable("spark_catalog.course1_workflows.bronze_orders")',
        # SQL CREATE TABLE, in the default schema.
        'spark.sql("CREATE TABLE rejects (id INT, reason STRING)")\n'
        "spark.sql(\"INSERT INTO rejects VALUES (7, 'no amount')\")",
    )
    write_notebook(
        nbdir / "child.py",
        'n = spark.table("course1_workflows.bronze_orders").count()\ndbutils.notebook.exit(str(n))',
    )
    transform = write_notebook(
        nbdir / "transform.py",
        'bronze = spark.table("spark_catalog.course1_workflows.bronze_orders")\n'
        "assert sorted(r.id for r in bronze.collect()) == [1, 2]",
        "more = spark.createDataFrame(\n"
        "    [(3, 'li', 1.25)], 'id INT, customer STRING, amount DOUBLE'\n"
        ")\n"
        'more.write.mode("append").saveAsTable("course1_workflows.bronze_orders")',
        'assert spark.sql("SELECT reason FROM rejects").first().reason == "no amount"',
        # A notebook the task runs with dbutils.notebook.run (same process) sees them too.
        'assert dbutils.notebook.run("./child", 300, {}) == "3"',
    )
    alone = write_notebook(
        nbdir / "alone.py",
        'assert not spark.catalog.tableExists("course1_workflows.bronze_orders")\n'
        'assert not spark.catalog.tableExists("rejects")\n'
        'spark.sql("CREATE SCHEMA IF NOT EXISTS course1_workflows")\n'
        "spark.range(5).selectExpr('CAST(id AS INT) AS id')"
        '.write.saveAsTable("course1_workflows.bronze_orders")',
    )
    run_dir = tmp_path / "run"
    _run(project, ingest, run_dir, task="ingest")
    _run(project, transform, run_dir, task="transform")
    # The same run directory without a task key: an independent notebook, its own tables.
    _run(project, alone, run_dir, task=None)

    shared = run_dir / "warehouse" / catalog.SHARED_WAREHOUSE
    bronze = _delta_rows(shared / "course1_workflows.db" / "bronze_orders")
    assert sorted((r["id"], r["customer"], r["amount"]) for r in bronze) == [
        (1, "ada", 9.5),
        (2, "zoë", 12.0),
        (3, "li", 1.25),
    ]
    assert _delta_rows(shared / "rejects") == [{"id": 7, "reason": "no amount"}]
    # The independent notebook wrote its own table in its own warehouse.
    own = [
        p
        for p in (run_dir / "warehouse").iterdir()
        if p.name.startswith("alone-") and p.name != catalog.SHARED_WAREHOUSE
    ]
    assert len(own) == 1
    assert sorted(r["id"] for r in _delta_rows(own[0] / "course1_workflows.db/bronze_orders")) == [
        0,
        1,
        2,
        3,
        4,
    ]
