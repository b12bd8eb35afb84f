"""What Databricks adds to Spark's Python API, added to the local SparkSession.

Notebooks written for Databricks lean on a few things open-source Spark lacks:

- ``df.display()``, the method form of ``display(df)``;
- ``hive_metastore`` as a catalog name (``hive_metastore.default.t``): on Databricks the
  workspace's legacy metastore, locally Spark's session catalog ``spark_catalog`` (with
  Delta), so both names reach the same tables;
- ``workspace``, the catalog Free Edition (and every new Unity Catalog workspace) gives
  its users, so a notebook or a job definition whose default catalog is ``workspace``
  runs locally unchanged (``batuta run job.json`` without ``--param catalog=...``).
  Locally it is only ever a catalog *qualifier*: ``workspace.s.t``, ``workspace.s`` and
  ``USE CATALOG workspace`` reach ``spark_catalog``; a bare ``workspace`` (a table or
  column of that name) is left alone, and a schema cannot be called ``workspace``;
- ``file:/dbfs/...``, ``file:/Volumes/...`` and ``file:/mnt/...`` URIs, which on
  Databricks reach DBFS through its FUSE mount (see :mod:`coursekit.runtime.paths`).

:func:`install` patches the PySpark classes once per process. Names are rewritten
where they enter Spark: SQL text (outside string literals, comments and other
identifiers) and the name or path arguments of the reader, writer, catalog and
``DeltaTable`` methods. A name Spark builds itself on the JVM side (a view's body
stored as text, say) is not seen here; it keeps working because both names are
rewritten before the view is created.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Generator
from typing import Any

from coursekit.runtime.paths import spark_path, spark_sql_paths

ALIAS = "hive_metastore"
WORKSPACE = "workspace"
SESSION_CATALOG = "spark_catalog"

_CODE_ALIAS = re.compile(rf"(?<![\w.`]){ALIAS}\b", re.IGNORECASE)
# `workspace` followed by a dot: the first part of a qualified name.
_CODE_WORKSPACE = re.compile(rf"(?<![\w.`]){WORKSPACE}(?=\s*\.)", re.IGNORECASE)
_CATALOG_STATEMENT = re.compile(
    rf"^(\s*(?:USE|SET)\s+CATALOG\s+)`?{WORKSPACE}`?(\s*;?\s*)$", re.IGNORECASE
)


def rename_catalog_sql(statement: str) -> str:
    """``hive_metastore`` and ``workspace`` as catalogs become ``spark_catalog``.

    Not inside string literals, comments or other identifiers; ``workspace`` only as the
    first part of a qualified name or in ``USE``/``SET CATALOG``.
    """
    lowered = statement.lower()
    if ALIAS not in lowered and WORKSPACE not in lowered:
        return statement
    statement = _CATALOG_STATEMENT.sub(rf"\g<1>{SESSION_CATALOG}\g<2>", statement)
    out: list[str] = []
    i, n, start = 0, len(statement), 0

    def code(upto: int) -> None:
        segment = _CODE_ALIAS.sub(SESSION_CATALOG, statement[start:upto])
        out.append(_CODE_WORKSPACE.sub(SESSION_CATALOG, segment))

    while i < n:
        ch = statement[i]
        if ch in "'\"`":
            code(i)
            j = i + 1
            while j < n and statement[j] != ch:
                j += 2 if statement[j] == "\\" and ch != "`" else 1
            token = statement[i : j + 1]
            quoted = token[1:-1].lower()
            qualifier = statement[j + 1 :].lstrip().startswith(".")
            if ch == "`" and (quoted == ALIAS or (quoted == WORKSPACE and qualifier)):
                token = f"`{SESSION_CATALOG}`"
            out.append(token)
            i = start = j + 1
        elif statement.startswith("--", i) or statement.startswith("/*", i):
            code(i)
            end = statement.find("\n" if statement[i + 1] == "-" else "*/", i)
            end = n if end < 0 else end + (0 if statement[i + 1] == "-" else 2)
            out.append(statement[i:end])
            i = start = end
        else:
            i += 1
    code(n)
    return "".join(out)


def rename_catalog(name: str) -> str:
    """A table or schema name whose catalog part is ``hive_metastore`` or ``workspace``.

    ``hive_metastore`` alone is renamed too (it can only be a catalog); ``workspace``
    only with a dot after it (alone it may be a table's name).
    """
    if not isinstance(name, str):
        return name
    head, dot, rest = name.partition(".")
    head = head.strip().strip("`").lower()
    if head == ALIAS or (head == WORKSPACE and dot):
        return SESSION_CATALOG + dot + rest
    return name


def rename_catalog_name(name: str) -> str:
    """A catalog's name (``setCurrentCatalog``): both aliases become ``spark_catalog``."""
    if isinstance(name, str) and name.strip().strip("`").lower() in (ALIAS, WORKSPACE):
        return SESSION_CATALOG
    return name


def _map_paths(value: Any) -> Any:
    if isinstance(value, str):
        return spark_path(value)
    if isinstance(value, list | tuple):
        return type(value)(spark_path(v) if isinstance(v, str) else v for v in value)
    return value


def _patch(cls: type, method: str, fix: Callable[[Any], Any], arg: str, every: bool) -> None:
    original = getattr(cls, method, None)
    if original is None or hasattr(original, "__coursekit_original__"):
        return

    @functools.wraps(original)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        if args:
            args = tuple(fix(a) for a in args) if every else (fix(args[0]), *args[1:])
        if arg in kwargs:
            kwargs[arg] = fix(kwargs[arg])
        return original(self, *args, **kwargs)

    patched.__coursekit_original__ = original  # ty: ignore[missing-attribute]
    setattr(cls, method, patched)


_USE_CATALOG = re.compile(r"^(\s*)USE\s+CATALOG\b", re.IGNORECASE)


def _sql(statement: Any) -> Any:
    if not isinstance(statement, str):
        return statement
    # Databricks SQL's USE CATALOG is Spark's SET CATALOG.
    statement = _USE_CATALOG.sub(r"\1SET CATALOG", statement)
    return spark_sql_paths(rename_catalog_sql(statement))


_STARTING: list[bool] = [False]


@contextlib.contextmanager
def building() -> Generator[None]:
    """While the runtime builds its session, PySpark's lookups must not start another."""
    before = _STARTING[0]
    _STARTING[0] = True
    try:
        yield
    finally:
        _STARTING[0] = before


def start_spark_with(start: Callable[[], Any]) -> None:
    """Make PySpark's own ways to reach "the" session start the runtime's on demand.

    A Databricks notebook may write ``SparkSession.builder.getOrCreate()`` or
    ``SparkSession.getActiveSession()`` instead of using ``spark``: there they return
    the cluster's session. The local runtime starts Spark on first use
    (:class:`coursekit.runtime.LazySpark`), so before a cell touches ``spark`` these would
    find none (or build a plain one without Delta); patched, they call ``start`` first.
    """
    from pyspark.sql.session import SparkSession  # noqa: PLC0415

    active = SparkSession.__dict__["getActiveSession"].__func__
    active = getattr(active, "__coursekit_original__", active)

    builder = SparkSession.Builder
    get_or_create = builder.__dict__["getOrCreate"]
    get_or_create = getattr(get_or_create, "__coursekit_original__", get_or_create)

    @functools.wraps(get_or_create)
    def patched_get_or_create(self: Any) -> Any:
        if active(SparkSession) is None and not _STARTING[0]:
            start()
        return get_or_create(self)

    patched_get_or_create.__coursekit_original__ = get_or_create  # ty: ignore[missing-attribute]
    builder.getOrCreate = patched_get_or_create  # ty: ignore[invalid-assignment]

    @functools.wraps(active)
    def patched_active(cls: Any) -> Any:
        found = active(cls)
        if found is None and not _STARTING[0]:
            start()
            found = active(cls)
        return found

    patched_active.__coursekit_original__ = active  # ty: ignore[missing-attribute]
    SparkSession.getActiveSession = classmethod(patched_active)  # ty: ignore[invalid-assignment]


def install(display: Callable[..., None]) -> None:
    """Patch PySpark (classic) and Delta's Python API for Databricks idioms."""
    from pyspark.sql import Catalog, DataFrame, DataFrameReader, DataFrameWriter  # noqa: PLC0415
    from pyspark.sql.session import SparkSession  # noqa: PLC0415
    from pyspark.sql.streaming import DataStreamReader, DataStreamWriter  # noqa: PLC0415

    if not hasattr(DataFrame, "display"):

        def display_method(self: Any, *args: Any, **kwargs: Any) -> None:
            display(self, *args, **kwargs)

        DataFrame.display = display_method  # ty: ignore[missing-attribute]

    _patch(SparkSession, "sql", _sql, "sqlQuery", every=False)
    _patch(SparkSession, "table", rename_catalog, "tableName", every=False)
    _patch(DataFrameReader, "table", rename_catalog, "tableName", every=False)
    _patch(DataStreamReader, "table", rename_catalog, "tableName", every=False)
    for method, arg in (("saveAsTable", "name"), ("insertInto", "tableName")):
        _patch(DataFrameWriter, method, rename_catalog, arg, every=False)
    _patch(DataStreamWriter, "toTable", rename_catalog, "tableName", every=False)
    _patch(DataFrame, "writeTo", rename_catalog, "table", every=False)
    _patch(Catalog, "setCurrentCatalog", rename_catalog_name, "catalogName", every=False)
    for method in ("tableExists", "getTable", "databaseExists"):
        _patch(Catalog, method, rename_catalog, "tableName", every=False)
    _patch(Catalog, "listTables", rename_catalog, "dbName", every=False)
    _patch(Catalog, "getDatabase", rename_catalog, "dbName", every=False)

    for method in ("load", "csv", "json", "parquet", "text", "orc", "xml"):
        _patch(DataFrameReader, method, _map_paths, "path", every=method == "parquet")
        _patch(DataStreamReader, method, _map_paths, "path", every=False)
    for method in ("save", "csv", "json", "parquet", "text", "orc", "xml"):
        _patch(DataFrameWriter, method, _map_paths, "path", every=False)
    _patch(DataStreamWriter, "start", _map_paths, "path", every=False)

    try:
        from delta.tables import DeltaTable  # noqa: PLC0415
    except ImportError:
        return
    # DeltaTable's constructors are class methods taking the session first.
    for method, fix in (("forName", rename_catalog), ("forPath", _map_paths)):
        original = DeltaTable.__dict__[method].__func__
        if hasattr(original, "__coursekit_original__"):
            continue

        def make(original: Any, fix: Callable[[Any], Any]) -> Any:
            @functools.wraps(original)
            def patched(cls: Any, spark: Any, name: Any, *args: Any, **kwargs: Any) -> Any:
                return original(cls, spark, fix(name), *args, **kwargs)

            patched.__coursekit_original__ = original  # ty: ignore[missing-attribute]
            return classmethod(patched)

        setattr(DeltaTable, method, make(original, fix))
