"""The installed ``batuta`` command (the batuta wheel) running Jobs API definitions.

The first tests need only the wheel: a freshness check and a job of Python and shell
tasks. The last runs Databricks notebooks through coursekit (``python -m
coursekit.run``), passing task values between them, so it needs the ``notebooks``
group and a JVM; it is marked ``spark``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fingerprint import fingerprint

FIXTURE = Path(__file__).parent / "fixtures" / "batuta_job"


def batuta_command() -> str:
    # The console script sits beside the interpreter of the venv the wheel went into.
    beside = Path(sys.executable).parent / "batuta"
    found = str(beside) if beside.is_file() else shutil.which("batuta")
    assert found, "the batuta wheel is not installed (no `batuta` command)"
    return found


def run_batuta(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BATUTA_PYTHON": sys.executable}
    return subprocess.run(
        [batuta_command(), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def tasks_by_key(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["task_key"]: t for t in record["tasks"]}


def test_installed_batuta_was_built_from_this_tree(tmp_path: Path) -> None:
    out = run_batuta("--source-hash", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == fingerprint(["crates/batuta"]), "the batuta wheel is stale"


def test_python_and_shell_tasks_with_parameters_and_values(tmp_path: Path) -> None:
    (tmp_path / "count.py").write_text(
        "import json, os, sys\n"
        "n = int(sys.argv[1])\n"
        "path = os.path.join(os.environ['COURSEKIT_TASK_VALUES_DIR'],"
        " os.environ['COURSEKIT_TASK_KEY'] + '.json')\n"
        "json.dump({'n': n, 'ok': n > 2}, open(path, 'w'))\n"
    )
    job = {
        "name": "py-and-shell",
        "parameters": [{"name": "n", "default": "1"}],
        "tasks": [
            {
                "task_key": "count",
                "spark_python_task": {
                    "python_file": "count.py",
                    "parameters": ["{{job.parameters.n}}"],
                },
            },
            {
                "task_key": "gate",
                "depends_on": [{"task_key": "count"}],
                "condition_task": {
                    "op": "EQUAL_TO",
                    "left": "{{tasks.count.values.ok}}",
                    "right": "true",
                },
            },
            {
                "task_key": "publish",
                "depends_on": [{"task_key": "gate", "outcome": "true"}],
                "shell_task": {"command": "echo published {{tasks.count.values.n}} > out.txt"},
            },
        ],
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    out = run_batuta("validate", "job.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "count, gate, publish" in out.stdout

    low = run_batuta("run", "job.json", "--record", "low.json", "--quiet", cwd=tmp_path)
    assert low.returncode == 0, low.stdout + low.stderr
    record = json.loads((tmp_path / "low.json").read_text())
    tasks = tasks_by_key(record)
    assert tasks["gate"]["condition_task"] == {"left": "false", "right": "true", "outcome": "false"}
    assert tasks["publish"]["state"]["result_state"] == "EXCLUDED"
    assert not (tmp_path / "out.txt").exists()

    high = run_batuta("run", "job.json", "--param", "n=5", "--record", "high.json", cwd=tmp_path)
    assert high.returncode == 0, high.stdout + high.stderr
    record = json.loads((tmp_path / "high.json").read_text())
    assert record["state"]["result_state"] == "SUCCESS"
    assert record["job_parameters"] == [{"name": "n", "value": "5"}]
    assert tasks_by_key(record)["count"]["task_values"] == {"n": 5, "ok": True}
    assert (tmp_path / "out.txt").read_text() == "published 5\n"
    # The summary's timeline lists every task.
    for key in ("count", "gate", "publish"):
        assert key in high.stdout


def test_bad_definitions_exit_2_with_every_problem(tmp_path: Path) -> None:
    job = {
        "tasks": [
            {"task_key": "a", "depends_on": [{"task_key": "b"}], "shell_task": {"command": "x"}},
            {"task_key": "b", "depends_on": [{"task_key": "a"}], "shell_task": {"command": "x"}},
            {"task_key": "w", "python_wheel_task": {"package_name": "p", "entry_point": "m"}},
        ]
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    out = run_batuta("run", "job.json", cwd=tmp_path)
    assert out.returncode == 2
    assert "python_wheel_task is not supported locally" in out.stderr
    assert not (tmp_path / "build").exists(), "a run started despite the invalid definition"


@pytest.mark.spark
def test_notebook_tasks_pass_task_values_through_coursekit(tmp_path: Path) -> None:
    out = run_batuta(
        "run",
        str(FIXTURE / "job.json"),
        "--param",
        "rows=21",
        "--record",
        "record.json",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    record = json.loads((tmp_path / "record.json").read_text())
    tasks = tasks_by_key(record)
    states = {k: t["state"]["result_state"] for k, t in tasks.items()}
    assert states == {
        "produce": "SUCCESS",
        "consume": "SUCCESS",
        "is_42": "SUCCESS",
        "report": "SUCCESS",
        "alarm": "EXCLUDED",
    }
    run_id = record["run_id"]
    assert tasks["produce"]["task_values"] == {"rows": 21, "source": f"run-{run_id}"}
    assert tasks["consume"]["resolved_parameters"] == {"rows": "21", "upstream_rows": "21"}
    assert json.loads(tasks["consume"]["notebook_output"]["result"]) == {
        "doubled": 42,
        "source": f"run-{run_id}",
    }
    assert tasks["is_42"]["condition_task"]["outcome"] == "true"
    assert (tmp_path / "report.txt").read_text() == "42\n"
    assert not (tmp_path / "alarm.txt").exists()
