"""The executor end to end: real Jupyter kernels, a real local SparkSession.

The notebooks here are written to a temporary project so that ``build/`` lands there.
Tests marked ``spark`` start a JVM per notebook (about 10 s each); the fast suite skips
them with ``-m "not spark"`` and the course sessions run them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit.run import collect_course

HEADER = "# Databricks notebook source\n"
SEP = "\n\n# COMMAND ----------\n\n"


def write_notebook(path: Path, *cells: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + SEP.join(cells) + "\n")
    return path


def md(text: str) -> str:
    return "\n".join(
        "# MAGIC " + line if line else "# MAGIC" for line in ["%md", *text.split("\n")]
    )


def sql(text: str) -> str:
    return "\n".join("# MAGIC " + line for line in ["%sql", *text.split("\n")])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    return tmp_path


def run(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "coursekit.run", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
        check=False,
    )


def outputs_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.outputs:
        parts.append(out.get("text", ""))
        parts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(parts)


def test_course_4_includes_the_examples(project: Path) -> None:
    example = write_notebook(project / "examples/databricks/bench.py", "x = 1")
    assert collect_course(project, "4") == [example.resolve()]
    assert collect_course(project, "examples") == [example.resolve()]
    assert collect_course(project, "3") == []


def test_course_without_notebooks_says_so_and_passes(project: Path) -> None:
    result = run(project, "--course", "3")
    assert result.returncode == 0, result.stderr
    assert "course 3: no notebooks yet" in result.stdout


def test_bad_arguments_exit_2(project: Path) -> None:
    result = run(project, "--param", "no-equals-sign")
    assert result.returncode == 2
    assert "key=value" in result.stderr
    result = run(project, "missing.py")
    assert result.returncode == 2
    assert "missing.py" in result.stderr


def test_course_collects_demos_not_labs_or_tasks(project: Path) -> None:
    # Labs are graded (coursekit.grade), not merely executed; tasks run through their job.
    demo = write_notebook(project / "demos/course1/week1/databricks-x/a.py", "x = 1")
    write_notebook(project / "labs/course1/week1/lab_x.py", "x = 1")
    write_notebook(project / "labs/course1/week1/solutions/lab_x.py", "x = 1")
    (project / "demos/course1/week1/databricks-x/helper.py").write_text("not a notebook\n")
    write_notebook(project / "demos/course1/week1/databricks-x/tasks/step.py", "x = 1")
    write_notebook(project / "demos/course1/week1/databricks-x/includes/rules.py", "x = 1")
    assert collect_course(project, "1") == [demo.resolve()]


@pytest.mark.spark
def test_run_reports_failures_and_runs_the_runtime(project: Path) -> None:
    nbdir = project / "demos/course1/week1/databricks-test"
    failing = write_notebook(
        nbdir / "failing.py",
        md("# Fails on purpose"),
        "x = 1",
        'assert x == 2, "x is not two"',
        'print("never reached")',
    )
    write_notebook(
        nbdir / "child.py",
        'dbutils.widgets.text("n", "1")',
        'dbutils.notebook.exit("child saw n=" + dbutils.widgets.get("n"))',
    )
    write_notebook(nbdir / "helpers.py", "def double(v):\n    return 2 * v")
    features = write_notebook(
        nbdir / "features.py",
        md("# Everything the runtime offers"),
        "import os\n\n"
        'dbutils.widgets.text("greeting", "hello")\n'
        'dbutils.widgets.dropdown("size", "small", ["small", "large"])\n'
        'assert dbutils.widgets.get("greeting") == "bonjour"  # from --param\n'
        'assert dbutils.widgets.get("size") == "small"\n'
        "assert not IS_DATABRICKS",
        "# MAGIC %run ./helpers",
        "assert double(21) == 42",
        'value = dbutils.notebook.run("./child", 120, {"n": "7"})\n'
        'assert value == "child saw n=7", value',
        sql(
            "CREATE OR REPLACE TEMP VIEW nums AS SELECT id FROM range(10);\n"
            "SELECT :greeting AS g, COUNT(*) AS n FROM nums"
        ),
        'rows = spark.sql("SELECT COUNT(*) AS n FROM nums").collect()\nassert rows[0].n == 10',
        'token = dbutils.secrets.get("course", "token")\nprint("the token is", token)',
        'import matplotlib\n\nmatplotlib.use("Agg")\nimport matplotlib.pyplot as plt\n\n'
        "fig, ax = plt.subplots()\nax.plot([1, 2, 3])\ndisplay(fig)\n"
        'displayHTML("<b>bold</b>")',
        "import mlflow\n\n"
        'assert os.environ["MLFLOW_TRACKING_URI"].startswith("sqlite:///")\n'
        'with mlflow.start_run(run_name="t"):\n    mlflow.log_metric("m", 1.5)\n'
        "client = mlflow.MlflowClient()\n"
        'name = "coursekit_test_model"\n'
        "if not client.search_registered_models(f\"name='{name}'\"):\n"
        "    client.create_registered_model(name)\n"
        "assert client.get_registered_model(name).name == name",
        'dbutils.fs.put("/Volumes/c/s/v/hello.txt", "hi", True)\n'
        'assert dbutils.fs.head("/Volumes/c/s/v/hello.txt") == "hi"',
        "# MAGIC %fs ls /Volumes/c/s/v",
        'dbutils.fs.put("/Volumes/c/s/v/data.csv", "a,b\\n1,2\\n3,4\\n", True)\n'
        'csv = spark.read.option("header", True).csv("/Volumes/c/s/v/data.csv")\n'
        'assert [r.a for r in csv.collect()] == ["1", "3"]\n'
        'spark.range(4).write.format("delta").save("/Volumes/c/s/v/ids")\n'
        'assert sorted(f.name for f in dbutils.fs.ls("/Volumes/c/s/v")) == '
        '["data.csv", "hello.txt", "ids/"]',
        'dbutils.notebook.exit("features done")',
        'raise AssertionError("cells after exit must not run")',
    )
    result = run(
        project,
        str(failing),
        str(features),
        "--param",
        "greeting=bonjour",
        "--timeout",
        "300",
        env={"COURSEKIT_SECRET_COURSE_TOKEN": "tok-12345"},
    )
    assert result.returncode == 1, result.stdout + result.stderr

    # The failure names the notebook, the cell number, its source and the traceback.
    assert f"FAILED {failing.resolve()}, cell 3" in result.stderr
    assert 'assert x == 2, "x is not two"' in result.stderr
    assert "AssertionError: x is not two" in result.stderr
    assert "Traceback" in result.stderr or "----> 1" in result.stderr

    # The summary table closes the run.
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("executed notebooks:")
    assert lines[-2] == "1 passed, 1 failed"
    table = "\n".join(lines)
    assert "failing.py" in table
    assert "features.py" in table
    assert "exited" in table

    executed = project / "build/notebooks/demos/course1/week1/databricks-test"
    features_nb = nbformat.read(executed / "features.ipynb", as_version=4)
    texts = [outputs_text(c) for c in features_nb.cells if c.cell_type == "code"]
    everything = "\n".join(texts)
    assert "bonjour" in everything  # the %sql cell's displayed result
    assert "[REDACTED]" in everything
    assert "tok-12345" not in everything
    assert any(
        "image/png" in out.get("data", {})
        for c in features_nb.cells
        for out in c.get("outputs", [])
    )
    assert "<b>bold</b>" in everything
    assert "hello.txt" in everything  # %fs ls
    assert "features done" in everything
    assert "cells after exit" not in everything
    failing_nb = nbformat.read(executed / "failing.ipynb", as_version=4)
    assert "never reached" not in json.dumps(failing_nb.cells[-1].get("outputs", []))
    assert (project / "build/mlflow/mlflow.db").is_file()
    assert not (nbdir / "mlruns").exists()


def test_longest_first_from_the_machine_record(tmp_path, monkeypatch):
    """Notebooks start longest first by earlier runs' times; failures are not recorded."""
    from coursekit import run  # noqa: PLC0415

    monkeypatch.setenv("COURSEKIT_TIMES_FILE", str(tmp_path / "cache" / "times.json"))
    root = tmp_path / "project"
    a, b, c, d = (root / "demos" / f"{n}.py" for n in "abcd")
    assert run.longest_first(root, [a, b, c]) == [a, b, c]  # nothing known: as given
    run._remember_times(
        root,
        [
            run.Result(a, 3, 5.0, "ok"),
            run.Result(b, 3, 240.0, "ok"),
            run.Result(c, 1, 900.0, "FAILED"),
        ],
    )
    assert run.longest_first(root, [a, b, c, d]) == [b, a, c, d]
    # A later run merges into the record; a notebook outside the project is kept by path.
    outside = tmp_path / "elsewhere.py"
    run._remember_times(root, [run.Result(c, 1, 60.0, "exited"), run.Result(outside, 1, 9.0, "ok")])
    assert run.longest_first(root, [a, b, c, outside]) == [b, c, outside, a]
    # A damaged record is ignored, not an error.
    run._times_file().write_text("{not json")
    assert run.longest_first(root, [a, b]) == [a, b]


@pytest.mark.spark
def test_a_notebook_without_spark_starts_no_jvm(project: Path) -> None:
    nb = write_notebook(
        project / "plain.py",
        "import json\nvalue = json.dumps({'a': 1})\nprint(value)",
        "from pyspark import SparkContext\nprint('jvm', SparkContext._active_spark_context)",
    )
    result = run(project, str(nb))
    assert result.returncode == 0, result.stdout + result.stderr
    executed = nbformat.read(project / "build/notebooks/plain.ipynb", as_version=4)
    assert "jvm None" in outputs_text(executed.cells[-1])
    assert not list((project / "build" / "runs").glob("*/logs/*.jvm.log"))


@pytest.mark.spark
def test_builder_get_or_create_first_gets_the_runtimes_session(project: Path) -> None:
    nb = write_notebook(
        project / "builder.py",
        "import json\nfrom pyspark.sql import SparkSession\n"
        "s = SparkSession.builder.appName('mine').getOrCreate()\n"
        "active = SparkSession.getActiveSession()\n"
        "print(json.dumps({'delta': s.conf.get('spark.sql.extensions'),"
        " 'same': s is spark and active is s}))",
        "spark.sql('CREATE TABLE t (a INT)')\nprint(spark.table('t').schema.simpleString())",
    )
    result = run(project, str(nb))
    assert result.returncode == 0, result.stdout + result.stderr
    executed = nbformat.read(project / "build/notebooks/builder.ipynb", as_version=4)
    code = [c for c in executed.cells if c.cell_type == "code"]
    seen = json.loads(outputs_text(code[-2]).strip().splitlines()[-1])
    assert seen == {"delta": "io.delta.sql.DeltaSparkSessionExtension", "same": True}
    assert "struct<a:int>" in outputs_text(code[-1])
