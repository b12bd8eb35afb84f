"""One catalog for the tasks of a job: tables one task saves, the next finds by name.

On Databricks every task of a job sees the same Unity Catalog: ``ingest`` saves
``course1_workflows.bronze_orders`` and ``transform`` reads it with ``spark.table``.
Locally each task is its own ``python -m coursekit.run`` process with its own JVM and
Spark's in-memory catalog, which dies with the process. What survives is the Delta
table on disk: a managed table lives at ``<warehouse>/<schema>.db/<table>`` (a table of
the ``default`` schema at ``<warehouse>/<table>``) and its ``_delta_log`` describes it
completely (schema, partitioning, properties, data files).

So the tasks of one job share ONE warehouse folder under the run directory, and every
session of such a task, when it starts (and again when a notebook starts in it through
``dbutils.notebook.run``, :func:`refresh`), registers each Delta table it finds there
with ``CREATE SCHEMA IF NOT EXISTS`` and ``CREATE TABLE IF NOT EXISTS ... USING delta
LOCATION``. The catalog is rebuilt from the files, the files are the truth.

Why not Spark's Hive catalog with a metastore on disk: the only metastore that needs no
server is embedded Derby, and embedded Derby lets one JVM at a time open a database.
Checked with the Derby that pyspark ships (10.16.1.1): while one JVM holds
``metastore_db`` open, a second JVM's connection fails with SQLState XJ040, "Another
instance of Derby may have already booted the database". batuta runs independent tasks
side by side (``--parallelism 2``), so the second task's session would fail. A
metastore server (Derby network, PostgreSQL) is a service to run for a course that
otherwise needs none.

Who shares: a task of a job, i.e. a process that ``COURSEKIT_TASK_KEY`` names a task of
(batuta sets it for every task, beside the shared ``COURSEKIT_RUN_DIR``). Independent
notebooks run by ``python -m coursekit.run`` keep a warehouse each: two of them run side
by side (``--jobs 2``) may use the same schema and table names (a demo and a lab
solution), and must not see or overwrite each other's tables.

Differences from Unity Catalog a learner may meet: a table registered from the folder
is EXTERNAL in this session (``DESCRIBE EXTENDED`` says so), so ``DROP TABLE`` in a
later task removes the name but not the files, and the next session registers the
table again; replace a table (``CREATE OR REPLACE``, ``mode("overwrite")``) rather
than dropping it. Views and functions live in one session's memory and are not shared.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursekit.runtime.jobs import TASK_KEY

# The folder of a job's shared warehouse under the run directory. Per-notebook warehouses
# are named <stem>-<hash>, so no notebook's folder can take this name.
SHARED_WAREHOUSE = "job"


@dataclass(frozen=True)
class TableDir:
    """A Delta table found in a warehouse folder: its schema, name and directory."""

    schema: str
    name: str
    path: Path

    @property
    def qualified(self) -> str:
        return f"spark_catalog.{quote_identifier(self.schema)}.{quote_identifier(self.name)}"


def is_shared(environ: Mapping[str, str]) -> bool:
    """True in a task of a job (``COURSEKIT_TASK_KEY`` set), whose catalog is the run's."""
    return bool(environ.get(TASK_KEY, "").strip())


def warehouse_dir(run_dir: Path, notebook_name: str, environ: Mapping[str, str]) -> Path:
    """The warehouse of a session: the run's shared one in a job task, else the notebook's."""
    return run_dir / "warehouse" / (SHARED_WAREHOUSE if is_shared(environ) else notebook_name)


def quote_identifier(name: str) -> str:
    """A Spark SQL identifier in backticks (a backtick inside is doubled)."""
    return "`" + name.replace("`", "``") + "`"


def _is_delta_table(directory: Path) -> bool:
    # A table another task is creating at this moment may have a _delta_log and no
    # commit yet; it has no schema to register until its first commit lands.
    log = directory / "_delta_log"
    return log.is_dir() and any(log.glob("*.json"))


def find_tables(warehouse: Path) -> list[TableDir]:
    """The Delta tables in a warehouse folder, in Spark's managed-table layout.

    ``<schema>.db/<table>/_delta_log`` is a table of ``<schema>``, and
    ``<table>/_delta_log`` at the top a table of ``default`` (whose location is the
    warehouse itself). Anything else (a half-created table, a stray file) is ignored.
    """
    if not warehouse.is_dir():
        return []
    found: list[TableDir] = []
    for entry in sorted(warehouse.iterdir()):
        if not entry.is_dir():
            continue
        if entry.name.endswith(".db") and len(entry.name) > len(".db"):
            schema = entry.name.removesuffix(".db")
            found.extend(
                TableDir(schema, table.name, table)
                for table in sorted(entry.iterdir())
                if table.is_dir() and _is_delta_table(table)
            )
        elif _is_delta_table(entry):
            found.append(TableDir("default", entry.name, entry))
    return found


def register_tables(spark: Any, warehouse: Path) -> list[str]:
    """Register every Delta table under ``warehouse`` in the session's catalog.

    Returns the qualified names registered now (tables already known are left as they
    are). A table that cannot be registered (another task is replacing it this instant)
    is reported on stderr and skipped: the session still starts, and the next
    :func:`refresh` tries again.
    """
    known = {
        (row.namespace, row.tableName)
        for schema in {t.schema for t in find_tables(warehouse)}
        if spark.catalog.databaseExists(schema)
        for row in spark.sql(f"SHOW TABLES IN spark_catalog.{quote_identifier(schema)}").collect()
    }
    registered = []
    for table in find_tables(warehouse):
        if (table.schema, table.name) in known:
            continue
        from coursekit.runtime import sql_literal  # noqa: PLC0415 (runtime imports this module)

        try:
            spark.sql(f"CREATE SCHEMA IF NOT EXISTS spark_catalog.{quote_identifier(table.schema)}")
            spark.sql(
                f"CREATE TABLE IF NOT EXISTS {table.qualified} USING delta "
                # A file: URI: a bare path would resolve through the DBFS mount table.
                f"LOCATION {sql_literal(table.path.resolve().as_uri())}"
            )
        except Exception as exc:  # any Spark error: skip this table, say why
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"coursekit: table {table.qualified} not registered: {first}", file=sys.stderr)
            continue
        registered.append(f"{table.schema}.{table.name}")
    return registered


def refresh(spark: Any, warehouse: Path, environ: Mapping[str, str]) -> list[str]:
    """In a job task, register the tables other tasks saved since the session started."""
    if not is_shared(environ):
        return []
    return register_tables(spark, warehouse)
