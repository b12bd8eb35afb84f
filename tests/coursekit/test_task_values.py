"""dbutils.jobs.taskValues: the file channel batuta reads, and Databricks' outside-a-job rules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from coursekit.runtime.jobs import MAX_VALUE_BYTES, TASK_KEY, TASK_VALUES_DIR, TaskValues


def in_job(tmp_path: Path, task: str) -> TaskValues:
    return TaskValues({TASK_VALUES_DIR: str(tmp_path), TASK_KEY: task})


def test_set_writes_one_json_object_per_task_and_get_reads_it(tmp_path: Path) -> None:
    producer = in_job(tmp_path, "ingest")
    producer.set("rows", 42)
    producer.set("label", "café ✓")
    producer.set("stats", {"mean": 1.5, "cols": ["a", "b"]})
    producer.set("rows", 43)  # a second set replaces the value
    on_disk = json.loads((tmp_path / "ingest.json").read_text(encoding="utf-8"))
    assert on_disk == {"rows": 43, "label": "café ✓", "stats": {"mean": 1.5, "cols": ["a", "b"]}}
    consumer = in_job(tmp_path, "train")
    assert consumer.get(taskKey="ingest", key="rows") == 43
    assert consumer.get("ingest", "label") == "café ✓"
    assert consumer.get("ingest", "missing", default=7) == 7
    assert not list(tmp_path.glob(".*.tmp")), "the temporary file was left behind"


def test_get_errors_name_the_task_and_key(tmp_path: Path) -> None:
    in_job(tmp_path, "ingest").set("rows", 1)
    consumer = in_job(tmp_path, "train")
    with pytest.raises(ValueError, match=r"'ingest' set no value 'nope' \(it set: \['rows'\]\)"):
        consumer.get("ingest", "nope")
    with pytest.raises(ValueError, match=r"task 'ghost' set no task values.*\['ingest'\]"):
        consumer.get("ghost", "rows")


def test_outside_a_job_get_returns_debug_value_or_refuses() -> None:
    values = TaskValues({})
    values.set("x", 1)  # accepted, kept in memory
    assert values.get("ingest", "rows", debugValue=5) == 5
    with pytest.raises(TypeError, match="debugValue"):
        values.get("ingest", "rows")


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({1, 2}, TypeError),
        (object(), TypeError),
        (math.nan, ValueError),
        ({"a": [math.inf]}, ValueError),
        ("x" * MAX_VALUE_BYTES, ValueError),
    ],
)
def test_set_refuses_what_json_cannot_hold(
    tmp_path: Path, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        in_job(tmp_path, "t").set("v", value)
    assert not (tmp_path / "t.json").exists()


@pytest.mark.parametrize("key", ["", "a b", "../up", 3])
def test_keys_are_checked(tmp_path: Path, key: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        in_job(tmp_path, "t").set(key, 1)  # ty: ignore[invalid-argument-type]
