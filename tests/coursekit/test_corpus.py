"""Notebooks written for Databricks by others run unchanged: the corpus under corpus/.

Each corpus notebook is an export in the style of public Databricks course material
(the databricks-academy layout: ``%run ./Includes/Classroom-Setup``, a schema name in a
Spark conf key, SQL widgets), holding the idioms the local runtime must accept, and
asserts what each idiom does. The run also checks confinement from the outside: the
paths the notebooks wrote through Spark, dbutils and Python exist under the run's
DBFS and nowhere on the host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pytest

from coursekit import notebook as nbsrc

CORPUS = Path(__file__).parent / "corpus"


def _texts(notebook: Path) -> list[str]:
    nb = nbformat.read(notebook, as_version=4)
    texts = []
    for cell in nb.cells:
        parts = []
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for v in out.get("data", {}).values())
        texts.append("\n".join(parts))
    return texts


@pytest.mark.spark
def test_corpus_runs_unchanged_and_stays_confined(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(CORPUS, project / "corpus")
    (project / "pyproject.toml").write_text("[project]\nname = 'corpus'\n")
    probe = f"coursekit_probe_{uuid.uuid4().hex[:8]}"
    host_before = {p: Path(p).exists() for p in ("/dbfs", "/Volumes")}
    notebooks = ["export_variations.py", "spark_idioms.py", "paths_confinement.py"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "coursekit.run",
            *(f"corpus/{n}" for n in notebooks),
            "--param",
            f"probe={probe}",
            "--timeout",
            "300",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed, 0 failed" in result.stdout

    executed = project / "build" / "notebooks" / "corpus"
    variations = "\n".join(_texts(executed / "export_variations.ipynb"))
    # Foreign-language cells are skipped with a notice naming the cell and the reason.
    cells = nbsrc.read(CORPUS / "export_variations.py")
    foreign = [(n, c.language) for n, c in enumerate(cells, 1) if c.kind == nbsrc.FOREIGN]
    assert [language for _, language in foreign] == ["Scala", "R"]
    for number, language in foreign:
        notice = f"Skipped cell {number} (%{language.lower()}): the local runtime runs Python "
        assert f"{notice}and SQL, not {language}" in variations
    # ... and the run's report lists them.
    listed = ", ".join(f"cell {n} (%{language.lower()})" for n, language in foreign)
    assert "ok in" in result.stdout
    assert f"skipped {listed}: not Python or SQL" in result.stdout
    assert "setup ran with mode=reset, lesson=variations" in variations
    idioms = "\n".join(_texts(executed / "spark_idioms.ipynb"))
    assert "showing" in idioms or "rows" in idioms  # df.display() rendered a table

    # Everything the notebooks named landed under the run's DBFS ...
    (run,) = (project / "build" / "runs").iterdir()
    dbfs = run / "dbfs"
    for inside in (
        dbfs / probe / "dbfs_form" / "table" / "_delta_log",
        dbfs / probe / "bare_form" / "csv",
        dbfs / "mnt" / probe / "mnt_form" / "from_python" / "moved.csv",
        dbfs / "Volumes" / probe / "s" / "v" / "volume_form" / "table",
        dbfs / probe / "file_form",
        dbfs / "mnt" / probe / "file_mnt",
        dbfs / probe / "sql_location" / "_delta_log",
        dbfs / "mnt" / probe / "put.json",
    ):
        assert inside.exists(), inside
    # ... and nothing on the host.
    for outside in (f"/mnt/{probe}", f"/{probe}", f"/Volumes/{probe}", f"/dbfs/{probe}"):
        assert not Path(outside).exists(), outside
    for path, existed in host_before.items():
        assert Path(path).exists() == existed, path
