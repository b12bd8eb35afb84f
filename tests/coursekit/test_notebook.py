"""The Databricks source parser: cells out, the same text back, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from coursekit import notebook as nb

ROOT = Path(__file__).resolve().parents[2]
SEP = "\n\n# COMMAND ----------\n\n"


def source(*cells: str) -> str:
    return nb.HEADER + "\n" + SEP.join(cells) + "\n"


def test_code_markdown_and_sql_cells() -> None:
    text = source(
        "# MAGIC %md\n# MAGIC # Title\n# MAGIC\n# MAGIC Some *text*.",
        "x = 1\nprint(x)",
        "# MAGIC %sql\n# MAGIC SELECT 1 AS one",
    )
    cells = nb.parse(text)
    assert [c.kind for c in cells] == [nb.MARKDOWN, nb.CODE, nb.SQL]
    assert cells[0].source == "# Title\n\nSome *text*."
    assert cells[1].source == "x = 1\nprint(x)"
    assert cells[2].source == "SELECT 1 AS one"
    assert nb.render(cells) == text


def test_magic_inside_a_string_stays_code() -> None:
    code = 'banner = """\n# MAGIC %md\nnot markdown\n"""\nline = "# MAGIC %sql"'
    text = source(code)
    (cell,) = nb.parse(text)
    assert cell.kind == nb.CODE
    assert cell.source == code
    assert nb.render([cell]) == text


def test_a_code_cell_with_one_magic_comment_stays_code() -> None:
    code = "# MAGIC this is only a comment\nvalue = 2"
    (cell,) = nb.parse(source(code))
    assert cell == nb.Cell(nb.CODE, code)


def test_empty_cells_are_kept_and_round_trip() -> None:
    text = source("a = 1", "", "b = 2")
    cells = nb.parse(text)
    assert [c.source for c in cells] == ["a = 1", "", "b = 2"]
    assert nb.render(cells) == text


def test_markdown_holding_a_code_fence() -> None:
    md = "Run this:\n\n```python\n# COMMAND is fine inside a fence line\nspark.range(3)\n```"
    text = source(
        "# MAGIC %md\n"
        + "\n".join("# MAGIC " + line if line else "# MAGIC" for line in md.split("\n"))
    )
    (cell,) = nb.parse(text)
    assert cell.kind == nb.MARKDOWN
    assert cell.source == md
    assert nb.render([cell]) == text


def test_magic_with_arguments_on_the_command_line() -> None:
    text = source(
        "# MAGIC %run ./setup_notebook", "# MAGIC %pip install trueno", "# MAGIC %sql SELECT 2"
    )
    cells = nb.parse(text)
    assert [(c.kind, c.source) for c in cells] == [
        (nb.RUN, "./setup_notebook"),
        (nb.PIP, "install trueno"),
        (nb.SQL, "SELECT 2"),
    ]
    assert nb.render(cells) == text
    assert nb.cell_code(cells[0]) == "%run ./setup_notebook"
    assert nb.cell_code(cells[2]) == "%%sql\nSELECT 2"


def test_sh_fs_and_md_sandbox_cells() -> None:
    text = source(
        "# MAGIC %sh\n# MAGIC echo hi\n# MAGIC ls",
        "# MAGIC %fs ls /Volumes",
        "# MAGIC %md-sandbox\n# MAGIC <b>html</b>",
        "# MAGIC %python\n# MAGIC y = 3",
    )
    cells = nb.parse(text)
    assert [c.kind for c in cells] == [nb.SH, nb.FS, nb.MARKDOWN, nb.CODE]
    assert nb.cell_code(cells[0]) == "%%sh\necho hi\nls"
    assert nb.cell_code(cells[3]) == "y = 3"
    assert nb.render(cells) == text


def test_windows_line_endings_are_accepted() -> None:
    cells = nb.parse(source("a = 1", "# MAGIC %md\n# MAGIC hi").replace("\n", "\r\n"))
    assert [(c.kind, c.source) for c in cells] == [(nb.CODE, "a = 1"), (nb.MARKDOWN, "hi")]


def test_missing_header_names_the_first_line() -> None:
    with pytest.raises(nb.NotebookFormatError, match="print\\('hello'\\)"):
        nb.parse("print('hello')\n", name="x.py")


def test_unknown_magic_is_an_error_naming_cell_and_line() -> None:
    with pytest.raises(ValueError, match=r"cell 2 .*%wat"):
        nb.parse(source("a = 1", "# MAGIC %wat\n# MAGIC hmm"))
    with pytest.raises(ValueError, match=r"cell 1 .*'   %nope'"):
        nb.parse(source("# MAGIC\n# MAGIC    %nope"))


def test_scala_and_r_cells_are_kept_as_foreign_cells_with_a_notice() -> None:
    text = source("# MAGIC %scala\n# MAGIC val x = 1", "# MAGIC %r\n# MAGIC x <- 1", "y = 2")
    cells = nb.parse(text)
    assert [(c.kind, c.language, c.source) for c in cells[:2]] == [
        (nb.FOREIGN, "Scala", "val x = 1"),
        (nb.FOREIGN, "R", "x <- 1"),
    ]
    assert nb.render(cells) == text
    assert nb.cell_code(cells[0], 4) == "%%skip_cell %scala 4\nval x = 1"
    notice = nb.skip_notice(cells[1], 7)
    assert notice.startswith("Skipped cell 7 (%r): the local runtime runs Python and SQL, not R")
    code = [c for c in nb.to_nbformat(cells).cells if c.cell_type == "code"]
    assert code[1].source == "%%skip_cell %scala 1\nval x = 1"
    assert code[2].source == "%%skip_cell %r 2\nx <- 1"


def test_export_variations_title_blank_magic_lines_and_indented_magic() -> None:
    text = source(
        "# DBTITLE 1,Load the data\nrows = 3",
        "# DBTITLE 0,Hidden title\n# MAGIC %sql\n# MAGIC SELECT 1",
        "# MAGIC\n# MAGIC\n# MAGIC %md\n# MAGIC ## After two blank magic lines",
        "# MAGIC   %sql\n# MAGIC   SELECT 2",
        "# MAGIC %md-sandbox\n# MAGIC <div>html</div>",
        "# MAGIC %python\n# MAGIC z = 1",
        '# MAGIC %run   ./setup $x="1"',
    )
    cells = nb.parse(text)
    assert [(c.kind, c.title) for c in cells] == [
        (nb.CODE, "# DBTITLE 1,Load the data"),
        (nb.SQL, "# DBTITLE 0,Hidden title"),
        (nb.MARKDOWN, ""),
        (nb.SQL, ""),
        (nb.MARKDOWN, ""),
        (nb.CODE, ""),
        (nb.RUN, ""),
    ]
    assert cells[0].source == "rows = 3"
    assert cells[1].source == "SELECT 1"
    assert cells[2].source == "## After two blank magic lines"
    assert cells[3].source == "  SELECT 2"
    assert cells[4].command == "%md-sandbox"
    assert nb.cell_code(cells[5]) == "z = 1"
    assert cells[6].source == '  ./setup $x="1"'
    assert nb.render(cells) == text


def test_parse_rejects_non_str() -> None:
    with pytest.raises(TypeError, match="bytes"):
        nb.parse(b"# Databricks notebook source\n")  # ty: ignore[invalid-argument-type]


def test_to_nbformat_injects_setup_and_numbers_cells() -> None:
    cells = nb.parse(source("# MAGIC %md\n# MAGIC hi", "x = 1", "# MAGIC %sql\n# MAGIC SELECT 1"))
    notebook = nb.to_nbformat(cells)
    nbformat.validate(notebook)
    first = notebook.cells[0]
    assert first.cell_type == "code"
    assert nb.SETUP_TAG in first.metadata["tags"]
    assert [c.cell_type for c in notebook.cells[1:]] == ["markdown", "code", "code"]
    assert [c.metadata["coursekit"]["cell"] for c in notebook.cells[1:]] == [1, 2, 3]
    assert notebook.cells[3].source == "%%sql\nSELECT 1"
    assert nb.to_nbformat(cells, setup=False).cells[0].cell_type == "markdown"


def test_write_ipynb_beside_or_elsewhere(tmp_path: Path) -> None:
    src = tmp_path / "lesson.py"
    src.write_text(source("# MAGIC %md\n# MAGIC hi", "x = 1"))
    beside = nb.write_ipynb(src)
    assert beside == tmp_path / "lesson.ipynb"
    assert len(nbformat.read(beside, as_version=4).cells) == 3
    assert nb.main([str(src), "--out-dir", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "lesson.ipynb").is_file()


def committed_notebooks() -> list[Path]:
    found = []
    for folder in ("demos", "labs", "examples"):
        found += [p for p in sorted((ROOT / folder).rglob("*.py")) if nb.is_databricks_source(p)]
    return found


@pytest.mark.parametrize("path", committed_notebooks(), ids=lambda p: p.name)
def test_committed_notebooks_parse_and_round_trip(path: Path) -> None:
    cells = nb.read(path)
    assert cells, f"{path} has no cells"
    assert nb.parse(nb.render(cells)) == cells
    assert any(c.kind == nb.MARKDOWN for c in cells), "a lesson explains itself in markdown"


# What serverless compute (Databricks Free Edition) does not offer. A notebook that uses
# one of these passes locally and fails there, so the committed notebooks must not.
SERVERLESS_FORBIDDEN = {
    r"\.rdd\b": "the RDD API",
    r"\bsparkContext\b": "the SparkContext",
    r"\bsc\.": "the SparkContext (sc)",
    r"\.cache\(\)": ".cache()",
    r"\.persist\(": ".persist()",
    r"\bspark\.conf\.set\(\s*[\"']spark\.(executor|driver|master)": "a cluster-level conf",
}


@pytest.mark.parametrize("path", committed_notebooks(), ids=lambda p: p.name)
def test_committed_notebooks_are_serverless_safe(path: Path) -> None:
    code = "\n".join(c.source for c in nb.read(path) if c.kind in {nb.CODE, nb.SQL})
    found = [what for pattern, what in SERVERLESS_FORBIDDEN.items() if re.search(pattern, code)]
    assert not found, f"{path} uses {', '.join(found)}, which serverless compute lacks"


def test_serverless_check_catches_forbidden_calls(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(source("df = spark.range(3).cache()\nn = df.rdd.count()"))
    with pytest.raises(AssertionError, match=r"the RDD API, \.cache\(\)"):
        test_committed_notebooks_are_serverless_safe(bad)
