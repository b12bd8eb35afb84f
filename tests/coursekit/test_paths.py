"""Databricks path forms mapped into one root, Databricks names rewritten for Spark.

The mapping functions are tested directly; the patched interpreter is tested in a
subprocess, because :func:`coursekit.runtime.paths.confine_python` changes ``open`` and
``os`` for the whole process it runs in.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from coursekit.runtime import parse_run, substitute_widgets, widget_statement
from coursekit.runtime.compat import rename_catalog, rename_catalog_sql
from coursekit.runtime.dbutils import DBUtils, Fs, NotebookApi, Secrets
from coursekit.runtime.paths import (
    is_databricks_path,
    python_path,
    spark_path,
    spark_sql_paths,
)

ROOT = Path("/run/dbfs")


@pytest.mark.parametrize(
    ("path", "local"),
    [
        ("/dbfs", "/run/dbfs"),
        ("/dbfs/", "/run/dbfs"),
        ("/dbfs/x/y.csv", "/run/dbfs/x/y.csv"),
        ("//dbfs//x", "/run/dbfs/x"),
        ("/Volumes/c/s/v/f", "/run/dbfs/Volumes/c/s/v/f"),
        ("/mnt/raw/a", "/run/dbfs/mnt/raw/a"),
        ("/mnt", "/run/dbfs/mnt"),
        ("/dbfs/mnt/raw/a", "/run/dbfs/mnt/raw/a"),
        ("/dbfs/Volumes/c", "/run/dbfs/Volumes/c"),
        ("/dbfs/ünï/😀.txt", "/run/dbfs/ünï/😀.txt"),
        # Not Databricks paths: the host's, as on a Databricks driver.
        ("/dbfsx/a", "/dbfsx/a"),
        ("/mntx", "/mntx"),
        ("/tmp/a", "/tmp/a"),
        ("relative/dbfs/x", "relative/dbfs/x"),
        ("", ""),
        # ".." is resolved before mapping: it can leave /dbfs (to the host's own /etc,
        # as on Databricks) but never climb out of the root.
        ("/dbfs/../etc/passwd", "/dbfs/../etc/passwd"),
        ("/mnt/a/../../dbfs/b", "/run/dbfs/b"),
        ("/dbfs/a/../../../x", "/dbfs/a/../../../x"),
    ],
)
def test_python_paths(path: str, local: str) -> None:
    assert python_path(path, ROOT) == local


def test_kept_prefixes_are_never_mapped() -> None:
    # A checkout under /mnt (WSL's /mnt/c) stays the host's own directory.
    keep = ("/mnt/c/Users/me/course",)
    assert python_path("/mnt/c/Users/me/course/data.csv", ROOT, keep) == (
        "/mnt/c/Users/me/course/data.csv"
    )
    assert python_path("/mnt/c/other", ROOT, keep) == "/run/dbfs/mnt/c/other"
    assert not is_databricks_path("relative")
    assert is_databricks_path("/Volumes")


@pytest.mark.parametrize(
    ("path", "spark"),
    [
        ("file:/dbfs/x", "dbfs:/x"),
        ("file:///dbfs/x/y", "dbfs:/x/y"),
        ("file:/dbfs", "dbfs:/"),
        ("file:/mnt/raw", "/mnt/raw"),
        ("file:/Volumes/c/s/v", "/Volumes/c/s/v"),
        ("file:/tmp/x", "file:/tmp/x"),
        ("dbfs:/x", "dbfs:/x"),
        ("/mnt/x", "/mnt/x"),
        ("s3://bucket/x", "s3://bucket/x"),
    ],
)
def test_spark_paths(path: str, spark: str) -> None:
    assert spark_path(path) == spark


def test_sql_file_uris_of_databricks_prefixes() -> None:
    sql = (
        "CREATE TABLE t LOCATION 'file:/dbfs/a' AS SELECT * FROM delta.`file:///mnt/b` "
        "WHERE p = 'file:/tmp/c' AND q = \"file:/Volumes/c/s/v\""
    )
    assert spark_sql_paths(sql) == (
        "CREATE TABLE t LOCATION 'dbfs:/a' AS SELECT * FROM delta.`/mnt/b` "
        "WHERE p = 'file:/tmp/c' AND q = \"/Volumes/c/s/v\""
    )


def test_hive_metastore_names() -> None:
    sql = (
        "SELECT 'hive_metastore.x', `hive_metastore`.s.t.c FROM HIVE_METASTORE.s.t "
        "-- hive_metastore.comment\nJOIN x.hive_metastore ON 1 = 1 /* hive_metastore */"
    )
    assert rename_catalog_sql(sql) == (
        "SELECT 'hive_metastore.x', `spark_catalog`.s.t.c FROM spark_catalog.s.t "
        "-- hive_metastore.comment\nJOIN x.hive_metastore ON 1 = 1 /* hive_metastore */"
    )
    assert rename_catalog_sql("USE CATALOG hive_metastore") == "USE CATALOG spark_catalog"
    assert rename_catalog_sql("SELECT 1") == "SELECT 1"
    assert rename_catalog("hive_metastore.default.t") == "spark_catalog.default.t"
    assert rename_catalog("`hive_metastore`.default.t") == "spark_catalog.default.t"
    assert rename_catalog("hive_metastore") == "spark_catalog"
    assert rename_catalog("main.hive_metastore.t") == "main.hive_metastore.t"


def test_dollar_brace_widgets_are_substituted_as_text() -> None:
    widgets = {"schema": "dev", "day": "2026-01-01"}
    sql = "USE ${schema}; SELECT '${day}', ${da.schema_name}, ${missing}, $schema"
    assert substitute_widgets(sql, widgets) == (
        "USE dev; SELECT '2026-01-01', ${da.schema_name}, ${missing}, $schema"
    )


def test_run_arguments() -> None:
    base = Path(__file__).parent / "corpus"
    target, args = parse_run('./Includes/Classroom-Setup $mode="reset all" $n=1', base)
    assert target == (base / "Includes" / "Classroom-Setup.py").resolve()
    assert args == {"mode": "reset all", "n": "1"}
    assert parse_run("./child_exit", base)[1] == {}
    with pytest.raises(ValueError, match=r"\$name=value.*'mode=1'"):
        parse_run("./child_exit mode=1", base)
    with pytest.raises(ValueError, match="names no notebook"):
        parse_run("   ", base)
    with pytest.raises(FileNotFoundError, match=r"'\./nope'"):
        parse_run("./nope", base)


class _ChoicesSpark:
    def sql(self, query: str) -> _ChoicesSpark:
        self.query = query
        return self

    def collect(self) -> list[tuple[str]]:
        return [("EU",), ("US",)]


def _dbutils(tmp_path: Path) -> DBUtils:
    return DBUtils(
        params={},
        fs_root=tmp_path,
        secrets=Secrets({}),
        notebook=NotebookApi(lambda p, t, a: None, Path.cwd),
    )


def test_sql_widget_statements(tmp_path: Path) -> None:
    dbutils, spark = _dbutils(tmp_path), _ChoicesSpark()
    assert widget_statement(spark, 'CREATE WIDGET TEXT t DEFAULT "it\'s"', dbutils)
    assert widget_statement(spark, "create widget text `u` default 'a\\'b'", dbutils)
    assert widget_statement(
        spark, 'CREATE WIDGET DROPDOWN r DEFAULT "EU" CHOICES SELECT x FROM v', dbutils
    )
    assert spark.query == "SELECT x FROM v"
    assert dbutils.widgets.getAll() == {"t": "it's", "u": "a'b", "r": "EU"}
    with pytest.raises(ValueError, match="'FR' of dropdown 'f'"):
        widget_statement(spark, 'CREATE WIDGET DROPDOWN f DEFAULT "FR" CHOICES SELECT 1', dbutils)
    with pytest.raises(ValueError, match="needs CHOICES"):
        widget_statement(spark, 'CREATE WIDGET COMBOBOX c DEFAULT "x"', dbutils)
    assert widget_statement(spark, "REMOVE WIDGET t", dbutils)
    assert "t" not in dbutils.widgets.getAll()
    assert not widget_statement(spark, "SELECT 'CREATE WIDGET TEXT x DEFAULT 1'", dbutils)


def test_dbutils_file_uris_follow_the_fuse_mapping(tmp_path: Path) -> None:
    fs = Fs(tmp_path / "dbfs")
    fs.put("file:/dbfs/a/b.txt", "fuse")
    assert (tmp_path / "dbfs" / "a" / "b.txt").read_text() == "fuse"
    assert fs.head("dbfs:/a/b.txt") == "fuse"
    fs.put("file:/mnt/m.txt", "mounted")
    assert fs.head("/mnt/m.txt") == "mounted"
    host = tmp_path / "host.txt"
    host.write_text("driver disk")
    # file: outside the FUSE prefixes is the local disk, shown as a file: URI.
    assert fs.head(f"file:{host}") == "driver disk"
    assert fs.ls(f"file:{host}")[0].path == host.as_uri().replace("file:///", "file:/")
    fs.cp(f"file:{host}", "/Volumes/c/s/v/copied.txt")
    assert fs.head("/Volumes/c/s/v/copied.txt") == "driver disk"
    with pytest.raises(ValueError, match=r"'\.\.'"):
        fs.put("file:/dbfs/../etc/x", "no")


_CONFINED = """
import io, os, shutil, sys
from pathlib import Path
from coursekit.runtime.paths import confine_python
root = Path(sys.argv[1])
confine_python(root, keep=(Path(sys.argv[2]),))
os.makedirs("/dbfs/a", exist_ok=True)
with open("/dbfs/a/b.txt", "w") as f:
    f.write("python")
assert (root / "a" / "b.txt").read_text() == "python"
assert Path("/dbfs/a/b.txt").read_text() == "python"
Path("/Volumes/c/s/v").mkdir(parents=True)
shutil.copy("/dbfs/a/b.txt", "/Volumes/c/s/v/c.txt")
os.makedirs("/mnt/raw", exist_ok=True)
os.replace("/Volumes/c/s/v/c.txt", "/mnt/raw/c.txt")
assert sorted(os.listdir("/mnt/raw")) == ["c.txt"]
assert [p.name for p in Path("/mnt").iterdir()] == ["raw"]
assert (root / "mnt" / "raw" / "c.txt").read_bytes() == b"python"
assert open(b"/dbfs/a/b.txt", "rb").read() == b"python"
shutil.rmtree("/mnt/raw")
assert not (root / "mnt" / "raw").exists()
# A kept path under a Databricks prefix is the host's own.
kept = Path(sys.argv[2]) / "k.txt"
kept.write_text("kept")
assert kept.read_text() == "kept"
# A route around the mapping is refused, not let through to the host.
try:
    io.FileIO("/mnt/escape.txt", "w")
except PermissionError as exc:
    assert "without the local runtime's path mapping" in str(exc), exc
else:
    raise AssertionError("io.FileIO reached /mnt")
# A second root in the same process is refused.
try:
    confine_python(root / "other")
except RuntimeError as exc:
    assert "already confined" in str(exc)
else:
    raise AssertionError("a second root was accepted")
print("confined ok")
"""


def test_confined_interpreter(tmp_path: Path) -> None:
    keep = tmp_path / "checkout"
    keep.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CONFINED), str(tmp_path / "dbfs"), str(keep)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "confined ok"
    assert not Path("/mnt/escape.txt").exists()
    assert not Path("/mnt/raw").exists()
    assert not Path("/Volumes/c").exists()
