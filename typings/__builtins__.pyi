# The globals a Databricks notebook finds already defined, declared for type checkers
# (ty, pyright). On Databricks the platform defines them; locally coursekit.runtime.setup
# does, with the same behaviour. ruff's `builtins` setting in pyproject.toml lists the
# same names for lint.
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from coursekit.runtime.dbutils import DBUtils

spark: SparkSession
dbutils: DBUtils
sc: Any  # classic compute only (serverless has none); the local runtime defines it

def display(obj: Any = None, *args: Any, **kwargs: Any) -> None: ...
def getArgument(name: str, optional: str | None = None) -> str: ...  # noqa: N802
def displayHTML(html: str) -> None: ...  # noqa: N802 (the Databricks name)
def table(tableName: str) -> DataFrame: ...  # noqa: N803
def sql(
    sqlQuery: str,  # noqa: N803
    args: dict[str, Any] | list[Any] | None = None,
    **kwargs: Any,
) -> DataFrame: ...

# The lab kit (labs/_labkit.py), defined in every lab by its first cell, `%run .../_labkit`.
class BlankNotFilledError(NotImplementedError): ...

FILL_IN: Any

def is_blank(value: object) -> bool: ...

class Lab:
    name: str
    results: list[dict[str, Any]]
    def __init__(self, name: str) -> None: ...
    def check(self, title: str, hint: str) -> Any: ...
    def summary(self) -> bool: ...
