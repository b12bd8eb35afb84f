"""``workspace``, Free Edition's default catalog, names the local session catalog.

A job definition or notebook whose catalog parameter defaults to ``workspace`` runs
locally unchanged; ``workspace`` is renamed only where it can only be a catalog.
"""

from __future__ import annotations

import pytest

from coursekit.runtime.compat import rename_catalog, rename_catalog_name, rename_catalog_sql


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "CREATE SCHEMA IF NOT EXISTS workspace.course1_workflows",
            "CREATE SCHEMA IF NOT EXISTS spark_catalog.course1_workflows",
        ),
        (
            "SELECT * FROM workspace.s.t JOIN `workspace`.s.u ON workspace.s.t.a = 1",
            "SELECT * FROM spark_catalog.s.t JOIN `spark_catalog`.s.u ON spark_catalog.s.t.a = 1",
        ),
        ("MERGE INTO Workspace . s.t USING x", "MERGE INTO spark_catalog . s.t USING x"),
        ("USE CATALOG workspace", "USE CATALOG spark_catalog"),
        ("SET CATALOG `workspace`;", "SET CATALOG spark_catalog;"),
        # Not a catalog: a literal, a bare table or column, a comment, a later name part,
        # a longer identifier, a quoted column.
        (
            "SELECT 'workspace.x', workspace FROM workspace",
            "SELECT 'workspace.x', workspace FROM workspace",
        ),
        (
            "SELECT a.workspace.b FROM t -- workspace.c",
            "SELECT a.workspace.b FROM t -- workspace.c",
        ),
        (
            "SELECT * FROM myworkspace.s.t /* workspace.s */",
            "SELECT * FROM myworkspace.s.t /* workspace.s */",
        ),
        ("SELECT `workspace` FROM t", "SELECT `workspace` FROM t"),
        (
            "SELECT 'caf\u00e9', workspace.s.t.\u00e9 FROM x",
            "SELECT 'caf\u00e9', spark_catalog.s.t.\u00e9 FROM x",
        ),
    ],
)
def test_workspace_in_sql(sql: str, expected: str) -> None:
    assert rename_catalog_sql(sql) == expected


def test_workspace_in_names() -> None:
    assert rename_catalog("workspace.s.t") == "spark_catalog.s.t"
    assert rename_catalog("`workspace`.s") == "spark_catalog.s"
    assert rename_catalog("workspace") == "workspace"  # a table of that name
    assert rename_catalog("main.workspace.t") == "main.workspace.t"
    assert rename_catalog_name("workspace") == "spark_catalog"
    assert rename_catalog_name("hive_metastore") == "spark_catalog"
    assert rename_catalog_name("main") == "main"
    # hive_metastore keeps its rules.
    assert rename_catalog("hive_metastore") == "spark_catalog"
    assert rename_catalog_sql("USE CATALOG hive_metastore") == "USE CATALOG spark_catalog"
