"""Spark starts when a cell first uses it (coursekit.runtime.LazySpark), never before.

Unit tests drive a Runtime with a stand-in builder (no JVM): nothing is built by setup,
the first use builds once, and every namespace then holds the real objects. The
notebook-level tests (real kernels: a notebook without Spark starts no JVM;
``SparkSession.builder.getOrCreate()`` first returns the runtime's Delta session) are in
test_executor.py, beside its kernel helpers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coursekit.runtime import LazySpark, Runtime


class _Session:
    version = "test"

    def __init__(self) -> None:
        self.sparkContext = object()
        self.conf_set: dict[str, str] = {}

    def table(self, name: str) -> str:
        return f"table {name}"

    def sql(self, query: str) -> str:
        return f"sql {query}"

    def range(self, n: int) -> list[int]:
        return list(range(n))


def _runtime(tmp_path: Path) -> tuple[Runtime, list[_Session]]:
    built: list[_Session] = []

    def build() -> _Session:
        built.append(_Session())
        return built[-1]

    runtime = Runtime(notebook=None, params={}, run_dir=tmp_path / "run")
    runtime.builder = build
    return runtime, built


def test_nothing_starts_until_first_use_then_every_namespace_is_real(tmp_path: Path) -> None:
    runtime, built = _runtime(tmp_path)
    first: dict[str, Any] = {}
    second: dict[str, Any] = {}
    runtime.install_globals(first, runtime.make_dbutils({}, None))
    runtime.install_globals(second, runtime.make_dbutils({}, None))
    assert built == []
    assert isinstance(first["spark"], LazySpark)
    assert "starts on first use" in repr(first["spark"])
    assert first["spark"].range(3) == [0, 1, 2]
    assert len(built) == 1
    for ns in (first, second):
        assert ns["spark"] is built[0]
        assert ns["sc"] is built[0].sparkContext
        assert ns["table"]("t") == "table t"
    # Used again, or from a namespace made later: the same session, never a second build.
    assert second["sql"]("SELECT 1") == "sql SELECT 1"
    third: dict[str, Any] = {}
    runtime.install_globals(third, runtime.make_dbutils({}, None))
    assert third["spark"] is built[0]
    assert len(built) == 1


def test_table_sql_and_sc_stand_ins_start_it_too(tmp_path: Path) -> None:
    runtime, built = _runtime(tmp_path)
    ns: dict[str, Any] = {}
    runtime.install_globals(ns, runtime.make_dbutils({}, None))
    assert ns["table"]("orders") == "table orders"
    assert len(built) == 1
    assert ns["sc"] is built[0].sparkContext


def test_setting_an_attribute_reaches_the_session(tmp_path: Path) -> None:
    runtime, built = _runtime(tmp_path)
    ns: dict[str, Any] = {}
    runtime.install_globals(ns, runtime.make_dbutils({}, None))
    lazy = ns["spark"]
    lazy.custom = 5
    assert built[0].custom == 5  # ty: ignore[missing-attribute]


def test_a_runtime_without_a_builder_says_so(tmp_path: Path) -> None:
    runtime = Runtime(notebook=None, params={}, run_dir=tmp_path / "run")
    with pytest.raises(RuntimeError, match="no Spark session"):
        runtime.session()
