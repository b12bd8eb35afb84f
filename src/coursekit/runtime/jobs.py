"""``dbutils.jobs.taskValues``: values one task of a job sets for the tasks after it.

On Databricks a task calls ``dbutils.jobs.taskValues.set("rows", 42)`` and a later task
reads it with ``dbutils.jobs.taskValues.get(taskKey="ingest", key="rows")``, or the job
definition references it as ``{{tasks.ingest.values.rows}}``. Tasks run in separate
processes, so locally the values travel as files: the orchestrator (``batuta run``)
gives each task two environment variables,

``COURSEKIT_TASK_VALUES_DIR``  the run's task-values directory
``COURSEKIT_TASK_KEY``         the running task's key

and a task's values are one JSON object in ``<dir>/<task key>.json``, which batuta reads
back once the task has succeeded. Outside a job (neither variable set) ``get`` returns
its ``debugValue``, as on Databricks, and ``set`` keeps the value in memory.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TASK_VALUES_DIR = "COURSEKIT_TASK_VALUES_DIR"
TASK_KEY = "COURSEKIT_TASK_KEY"
# Databricks' limit on one value's JSON representation.
MAX_VALUE_BYTES = 48 * 1024
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def _check_key(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, got {type(value).__name__}: {value!r}")
    if not _KEY.match(value):
        raise ValueError(f"{what} {value!r} must be 1-100 letters, digits, '_' or '-'")
    return value


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(v) for v in value)
    return False


class TaskValues:
    """``dbutils.jobs.taskValues`` with ``set`` and ``get`` as on Databricks."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._local: dict[str, Any] = {}

    def _job(self) -> tuple[Path, str] | None:
        directory, task = self._environ.get(TASK_VALUES_DIR), self._environ.get(TASK_KEY)
        if not directory or not task:
            return None
        return Path(directory), task

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        if not isinstance(values, dict):
            raise ValueError(f"task values file {path} must hold a JSON object")
        return values

    def set(self, key: str, value: Any) -> None:
        """Set ``key`` to ``value`` (anything JSON can hold, at most 48 KiB as JSON)."""
        _check_key(key, "task value key")
        if _has_non_finite(value):
            raise ValueError(f"task value {key!r} holds NaN or infinity, which JSON cannot")
        try:
            text = json.dumps(value, allow_nan=False)
        except TypeError as exc:
            raise TypeError(
                f"task value {key!r} must be JSON-serialisable, got {type(value).__name__}: {exc}"
            ) from exc
        if len(text.encode("utf-8")) > MAX_VALUE_BYTES:
            raise ValueError(
                f"task value {key!r} is {len(text.encode('utf-8'))} bytes as JSON; "
                f"the limit is {MAX_VALUE_BYTES}"
            )
        job = self._job()
        if job is None:
            self._local[key] = json.loads(text)
            return
        directory, task = job
        path = directory / f"{task}.json"
        values = self._read(path)
        values[key] = json.loads(text)
        # Write then rename, so the orchestrator never reads half a file.
        tmp = path.with_name(f".{task}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(values, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)

    def get(
        self,
        taskKey: str,  # noqa: N803 (the Databricks keyword names)
        key: str,
        default: Any = None,
        debugValue: Any = None,  # noqa: N803
    ) -> Any:
        """The value ``key`` that task ``taskKey`` set; ``default`` when it set none.

        Outside a job, ``debugValue`` (which must then be given).
        """
        _check_key(taskKey, "taskKey")
        _check_key(key, "task value key")
        job = self._job()
        if job is None:
            if debugValue is None:
                raise TypeError(
                    f"taskValues.get({taskKey!r}, {key!r}) outside a job needs debugValue "
                    "(run the notebook as a job task, e.g. with `batuta run job.json`)"
                )
            return debugValue
        directory, _ = job
        path = directory / f"{taskKey}.json"
        values = self._read(path)
        if key in values:
            return values[key]
        if default is not None:
            return default
        if not path.exists():
            known = sorted(p.stem for p in directory.glob("*.json"))
            raise ValueError(
                f"task {taskKey!r} set no task values in this run (tasks that did: {known}); "
                "it must be an upstream task that ran"
            )
        raise ValueError(f"task {taskKey!r} set no value {key!r} (it set: {sorted(values)})")


class Jobs:
    """``dbutils.jobs``."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        # The Databricks attribute name.
        self.taskValues = TaskValues(environ)
