"""The "Databricks (local)" Jupyter kernel: it starts, and a notebook's first cells run.

The kernelspec is installed under a temporary prefix (Jupyter finds it through
``JUPYTER_PATH``), started with jupyter_client as Jupyter and VS Code start it, and fed
the first cells of a Databricks notebook: the globals and magics must be there before
any cell defines them, as the executor provides them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from coursekit import kernel
from coursekit import notebook as nbsrc


def test_kernel_spec_runs_the_executors_setup_cell() -> None:
    spec = kernel.kernel_spec("/opt/venv/bin/python")
    argv = spec["argv"]
    assert isinstance(argv, list)
    assert argv[:3] == ["/opt/venv/bin/python", "-m", "ipykernel_launcher"]
    assert argv[-1] == (
        "--IPKernelApp.exec_lines=import coursekit.runtime; coursekit.runtime.setup(globals())"
    )
    assert spec["display_name"] == "Databricks (local)"


def test_paired_ipynb_names_the_kernel(tmp_path: Path) -> None:
    src = tmp_path / "lesson.py"
    src.write_text(nbsrc.HEADER + "\n# MAGIC %md\n# MAGIC hi\n")
    data = json.loads(nbsrc.write_ipynb(src).read_text())
    assert data["metadata"]["kernelspec"]["name"] == "databricks-local"
    assert "".join(data["cells"][0]["source"]) == nbsrc.SETUP_SOURCE


def _run(client: Any, code: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    outputs: list[dict[str, Any]] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] in {"stream", "execute_result", "display_data", "error"}:
            outputs.append({"type": msg["msg_type"], **msg["content"]})

    reply = client.execute_interactive(code, timeout=300, output_hook=hook)
    return outputs, reply["content"]


@pytest.mark.spark
def test_kernel_starts_and_runs_a_notebooks_first_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_client.manager import start_new_kernel  # noqa: PLC0415

    prefix = tmp_path / "prefix"
    installed = kernel.install(prefix=str(prefix), python=sys.executable)
    assert Path(installed, "kernel.json").is_file()
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    # Jupyter looks kernels up in this process, and the kernel inherits the variable.
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    env = dict(os.environ)
    for variable in ("COURSEKIT_NOTEBOOK", "COURSEKIT_PARAMS", "COURSEKIT_RUN_DIR"):
        env.pop(variable, None)
    manager, client = start_new_kernel(
        kernel_name=kernel.KERNEL_NAME, cwd=str(project), env=env, startup_timeout=300
    )
    try:
        outputs, reply = _run(client, "spark.range(5).count()")
        assert reply["status"] == "ok", outputs
        assert outputs[-1]["data"]["text/plain"] == "5"

        outputs, reply = _run(
            client,
            'dbutils.fs.put("/Volumes/c/s/v/hello.txt", "hi", True)\n'
            'print([f.name for f in dbutils.fs.ls("/Volumes/c/s/v")])',
        )
        assert reply["status"] == "ok", outputs
        assert outputs[-1]["text"].strip() == "['hello.txt']"

        outputs, reply = _run(client, 'display(spark.range(3).toDF("n"))')
        assert reply["status"] == "ok", outputs
        assert "<table" in outputs[-1]["data"]["text/html"]
        assert "(3 rows)" in outputs[-1]["data"]["text/plain"]

        # The paired .ipynb's own setup cell runs again: the same runtime, no new session.
        outputs, reply = _run(
            client, "before = spark\n" + nbsrc.SETUP_SOURCE + "\nassert spark is before"
        )
        assert reply["status"] == "ok", outputs

        outputs, reply = _run(client, "%%sql\nSELECT 40 + 2 AS answer")
        assert reply["status"] == "ok", outputs
        assert "42" in outputs[-1]["data"]["text/plain"]
        assert (project / "build" / "runs").is_dir()
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
