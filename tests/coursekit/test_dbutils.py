"""The local dbutils: widgets, the confined file system, secrets, notebook workflows."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from coursekit.runtime import Runtime
from coursekit.runtime.dbutils import (
    REDACTED,
    DBUtils,
    Fs,
    InputWidgetNotDefinedError,
    NotebookApi,
    NotebookExit,
    RedactingStream,
    Secrets,
    Widgets,
    secret_env_var,
)

# ------------------------------------------------------------------------- widgets


def test_widget_default_and_command_line_override() -> None:
    widgets = Widgets({"schema": "from_cli"})
    widgets.text("schema", "course1")
    widgets.text("catalog", "spark_catalog")
    assert widgets.get("schema") == "from_cli"
    assert widgets.get("catalog") == "spark_catalog"
    assert widgets.getAll() == {"schema": "from_cli", "catalog": "spark_catalog"}


def test_undefined_widget_is_an_error_naming_it() -> None:
    widgets = Widgets()
    widgets.text("a", "1")
    with pytest.raises(InputWidgetNotDefinedError, match="'missing'"):
        widgets.get("missing")


def test_dropdown_checks_default_and_override() -> None:
    Widgets().dropdown("env", "dev", ["dev", "prod"])
    with pytest.raises(ValueError, match="'test' of dropdown 'env'"):
        Widgets().dropdown("env", "test", ["dev", "prod"])
    with pytest.raises(ValueError, match="'staging' of dropdown 'env'"):
        Widgets({"env": "staging"}).dropdown("env", "dev", ["dev", "prod"])
    with pytest.raises(TypeError, match="list of str, not a str"):
        Widgets().dropdown("env", "dev", "dev,prod")


def test_combobox_accepts_any_value_and_multiselect_checks_each() -> None:
    widgets = Widgets({"model": "custom", "metrics": "rmse,mae"})
    widgets.combobox("model", "linear", ["linear", "forest"])
    widgets.multiselect("metrics", "rmse", ["rmse", "mae", "r2"])
    assert widgets.get("model") == "custom"
    assert widgets.get("metrics").split(",") == ["rmse", "mae"]
    with pytest.raises(ValueError, match="'mape' of multiselect 'm'"):
        Widgets({"m": "rmse,mape"}).multiselect("m", "rmse", ["rmse", "mae"])


def test_remove_and_remove_all() -> None:
    widgets = Widgets()
    widgets.text("a", "1")
    widgets.text("b", "2")
    widgets.remove("a")
    assert widgets.getAll() == {"b": "2"}
    with pytest.raises(InputWidgetNotDefinedError):
        widgets.remove("a")
    widgets.removeAll()
    assert widgets.getAll() == {}


def test_widget_type_errors_name_the_value() -> None:
    with pytest.raises(TypeError, match="default value of widget 'n' must be str, got int: 5"):
        Widgets().text("n", 5)  # ty: ignore[invalid-argument-type]
    with pytest.raises(TypeError, match="widget parameter"):
        Widgets({"n": 5})  # ty: ignore[invalid-argument-type]


# ------------------------------------------------------------------------------ fs


def test_fs_put_head_ls_cp_mv_rm(tmp_path: Path) -> None:
    fs = Fs(tmp_path / "dbfs")
    assert fs.put("dbfs:/data/a.txt", "hello world")
    assert fs.head("/data/a.txt") == "hello world"
    assert fs.head("dbfs:/data/a.txt", 5) == "hello"
    with pytest.raises(FileExistsError):
        fs.put("/data/a.txt", "again")
    fs.put("/data/a.txt", "replaced", overwrite=True)
    fs.cp("/data/a.txt", "/data/b.txt")
    fs.mv("/data/b.txt", "/Volumes/workspace/course/raw/b.txt")
    assert (tmp_path / "dbfs/Volumes/workspace/course/raw/b.txt").read_text() == "replaced"
    listing = fs.ls("/data")
    assert [(f.name, f.size, f.isDir()) for f in listing] == [("a.txt", 8, False)]
    assert listing[0].path == "dbfs:/data/a.txt"
    assert fs.mkdirs("/empty/dir")
    assert [f.name for f in fs.ls("/")] == ["Volumes/", "data/", "empty/"]
    with pytest.raises(ValueError, match="recurse=True"):
        fs.rm("/data")
    assert fs.rm("/data", recurse=True)
    assert not fs.rm("/data/a.txt")


@pytest.mark.parametrize(
    "path", ["/../etc/passwd", "dbfs:/data/../../x", "/Volumes/c/s/v/../../../../.."]
)
def test_fs_rejects_dot_dot(tmp_path: Path, path: str) -> None:
    fs = Fs(tmp_path)
    with pytest.raises(ValueError, match=r"contains '\.\.'"):
        fs.head(path)
    with pytest.raises(ValueError, match=r"contains '\.\.'"):
        fs.put(path, "x")


def test_fs_rejects_relative_paths_other_schemes_and_symlink_escapes(tmp_path: Path) -> None:
    fs = Fs(tmp_path / "root")
    with pytest.raises(ValueError, match="must be absolute"):
        fs.ls("data")
    with pytest.raises(ValueError, match="s3://bucket/x"):
        fs.ls("s3://bucket/x")
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="resolves outside"):
        fs.ls("/link")


# ------------------------------------------------------------------------- secrets


def test_secret_from_environment_and_missing_secret() -> None:
    secrets = Secrets({"COURSEKIT_SECRET_COURSE_API_TOKEN": "s3cr3t-value"})
    assert secret_env_var("course", "api-token") == "COURSEKIT_SECRET_COURSE_API_TOKEN"
    assert secrets.get("course", "api-token") == "s3cr3t-value"
    with pytest.raises(ValueError, match="COURSEKIT_SECRET_COURSE_OTHER"):
        secrets.get("course", "other")
    assert secrets.listScopes() == ["course"]


def test_printed_secret_is_redacted() -> None:
    secrets = Secrets({"COURSEKIT_SECRET_S_K": "hunter2"})
    out = io.StringIO()
    stream = RedactingStream(out, secrets)
    stream.write("before any read: hunter2\n")
    token = secrets.get("s", "k")
    stream.write(f"token={token}!\n")
    print("printed", token, file=stream)
    lines = out.getvalue().splitlines()
    # Only values read through dbutils.secrets are known, and so hidden.
    assert lines[0] == "before any read: hunter2"
    assert lines[1] == f"token={REDACTED}!"
    assert lines[2] == f"printed {REDACTED}"
    assert token == "hunter2"  # the value itself stays usable


# ------------------------------------------------------------------------ notebook


@pytest.mark.parametrize(
    ("value", "returned"),
    [
        ("finished", "finished"),
        (42, "42"),
        (1.5, "1.5"),
        (True, "True"),
        (None, "None"),
        ({"a": 1}, "{'a': 1}"),
        ("żółw 🐢", "żółw 🐢"),
    ],
)
def test_exit_value_is_stringified_as_databricks_does(value: object, returned: str) -> None:
    api = NotebookApi(lambda p, t, a: None, Path.cwd)
    with pytest.raises(NotebookExit) as done:
        api.exit(value)
    assert done.value.value == returned


def test_get_argument_falls_back_to_its_default_only_when_undefined() -> None:
    widgets = Widgets({"passed": "from-job"})
    widgets.text("declared", "d")
    assert widgets.getArgument("passed") == "from-job"
    assert widgets.getArgument("declared", "other") == "d"
    assert widgets.getArgument("missing", "fallback") == "fallback"
    with pytest.raises(InputWidgetNotDefinedError, match="'missing'"):
        widgets.getArgument("missing")


class _FakeSpark:
    """Enough of a SparkSession for notebooks that do not touch data."""

    def table(self, name: str) -> None:
        raise AssertionError("not used")

    def sql(self, query: str) -> None:
        raise AssertionError("not used")


def _runtime(tmp_path: Path, notebook: Path) -> tuple[Runtime, DBUtils]:
    runtime = Runtime(notebook=notebook, params={}, run_dir=tmp_path / "run")
    runtime.spark = _FakeSpark()
    return runtime, runtime.make_dbutils({}, notebook)


def test_notebook_run_passes_arguments_and_returns_the_exit_value(tmp_path: Path) -> None:
    child = tmp_path / "child.py"
    child.write_text(
        "# Databricks notebook source\n"
        "# MAGIC %md\n# MAGIC A child\n\n# COMMAND ----------\n\n"
        'dbutils.widgets.text("n", "1")\n'
        'dbutils.widgets.text("word", "x")\n'
        "\n# COMMAND ----------\n\n"
        'result = dbutils.widgets.get("word") * int(dbutils.widgets.get("n"))\n'
        "dbutils.notebook.exit(result)\n"
        "\n# COMMAND ----------\n\n"
        'raise AssertionError("after exit")\n'
    )
    parent = tmp_path / "parent.py"
    _, dbutils = _runtime(tmp_path, parent)
    assert dbutils.notebook.run("./child", 60, {"n": "3", "word": "ab"}) == "ababab"
    assert dbutils.notebook.run("child.py", 0) == "x"
    # The child's widgets are its own: the caller's are untouched.
    assert dbutils.widgets.getAll() == {}


def test_notebook_run_without_exit_returns_none_and_errors_propagate(tmp_path: Path) -> None:
    (tmp_path / "quiet.py").write_text("# Databricks notebook source\nx = 1\n")
    (tmp_path / "broken.py").write_text(
        "# Databricks notebook source\nx = 1\n\n# COMMAND ----------\n\n1 / 0\n"
    )
    _, dbutils = _runtime(tmp_path, tmp_path / "parent.py")
    assert dbutils.notebook.run("quiet", 10) is None
    with pytest.raises(ZeroDivisionError):
        dbutils.notebook.run("broken", 10)
    with pytest.raises(FileNotFoundError, match="'nope'"):
        dbutils.notebook.run("nope", 10)
    with pytest.raises(ValueError, match="timeout_seconds"):
        dbutils.notebook.run("quiet", -1)


def test_notebook_run_timeout(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(
        "# Databricks notebook source\nimport time\n\ntime.sleep(5)\n"
    )
    _, dbutils = _runtime(tmp_path, tmp_path / "parent.py")
    with pytest.raises(TimeoutError, match="timeout_seconds=1"):
        dbutils.notebook.run("slow", 1)


def test_library_restart_python_is_a_no_op(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _, dbutils = _runtime(tmp_path, tmp_path / "nb.py")
    dbutils.library.restartPython()
    assert "nothing to restart" in capsys.readouterr().out
