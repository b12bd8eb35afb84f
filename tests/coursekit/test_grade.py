"""Lab grading: the lab kit's checks, the grader's verdicts, and the CI proof.

The unit tests judge synthetic results; the ``spark`` tests run real labs (each notebook
in its own kernel, as a learner's attempt runs) in a scratch project holding the
project's own lab kit, including a lab whose check cannot fail, which the proof refuses.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coursekit.grade import Grade, LabPair, check_pair, lab_pairs
from coursekit.runtime import project_root

ROOT = project_root(Path(__file__).parent)
HEADER = "# Databricks notebook source\n"
SEP = "\n\n# COMMAND ----------\n\n"


def nb(path: Path, *cells: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + SEP.join(cells) + "\n")
    return path


def labkit_namespace() -> dict:
    """The lab kit's definitions, executed as `%run` would (its code cells in order)."""
    from coursekit import notebook as nbsrc  # noqa: PLC0415

    namespace: dict = {}
    for cell in nbsrc.read(ROOT / "labs" / "_labkit.py"):
        if cell.kind == nbsrc.CODE:
            exec(compile(cell.source, "_labkit", "exec"), namespace)
    return namespace


def test_fill_in_refuses_every_use_with_a_clear_error() -> None:
    kit = labkit_namespace()
    blank, error = kit["FILL_IN"], kit["BlankNotFilledError"]
    for use in (
        blank,
        lambda: blank.filter,
        lambda: bool(blank),
        lambda: blank + 1,
        lambda: blank[0],
        lambda: list(blank),
    ):
        with pytest.raises(error, match="FILL_IN is still in this cell"):
            use()
    assert repr(blank) == "FILL_IN"
    assert kit["is_blank"](blank)
    assert kit["is_blank"](None)
    assert not kit["is_blank"](0)


def test_lab_checks_report_pass_fail_and_write_results(tmp_path: Path, monkeypatch) -> None:
    kit = labkit_namespace()
    target = tmp_path / "results.json"
    monkeypatch.setenv("LABKIT_RESULTS", str(target))
    lab = kit["Lab"]("demo")
    lab.check("passes", "h1")(lambda: None)
    lab.check("assertion", "h2")(lambda: (_ for _ in ()).throw(AssertionError("3 rows, not 4")))
    lab.check("blank", "h3")(lambda: kit["FILL_IN"].count)
    lab.check("crash", "h4")(lambda: 1 / 0)
    lab.check("false", "h5")(lambda: False)
    assert lab.summary() is False
    import json  # noqa: PLC0415

    results = json.loads(target.read_text())["checks"]
    assert [r["passed"] for r in results] == [True, False, False, False, False]
    assert results[1]["detail"] == "3 rows, not 4"
    assert "FILL_IN" in results[2]["detail"]
    assert results[3]["detail"].startswith("ZeroDivisionError")
    assert [r["hint"] for r in results] == ["h1", "h2", "h3", "h4", "h5"]


def _grade(path: str, *passed: bool) -> Grade:
    return Grade(
        Path(path),
        [{"check": f"c{i}", "passed": p, "detail": "", "hint": ""} for i, p in enumerate(passed)],
    )


def _pair(tmp_path: Path, blank_end: str = "./checks/lab_x") -> LabPair:
    week = tmp_path / "labs/course1/week1"
    blank = nb(week / "lab_x.py", "# MAGIC %run ../../_labkit", f"# MAGIC %run {blank_end}")
    solution = nb(
        week / "solutions/lab_x.py", "# MAGIC %run ../../../_labkit", "# MAGIC %run ../checks/lab_x"
    )
    return LabPair(blank, solution, nb(week / "checks/lab_x.py", "lab = 1"))


def test_check_pair_accepts_an_honest_lab(tmp_path: Path) -> None:
    pair = _pair(tmp_path)
    assert check_pair(pair, _grade("b", *[False] * 4), _grade("s", *[True] * 4), tmp_path) == []


def test_check_pair_names_each_problem(tmp_path: Path) -> None:
    pair = _pair(tmp_path)
    problems = check_pair(
        pair, _grade("b", False, True, False), _grade("s", True, False, True), tmp_path
    )
    text = "\n".join(problems)
    assert "cannot fail): ['c1']" in text
    assert "solution must pass every check (failing: ['c1'])" in text
    assert "3 checks, at least 4" in text
    assert "must run to its checks" in "\n".join(
        check_pair(pair, Grade(Path("b")), _grade("s", *[True] * 4), tmp_path)
    )
    wrong_end = _pair(tmp_path / "other", blank_end="./checks/other")
    assert any(
        "must end with `%run ./checks/lab_x`" in p
        for p in check_pair(
            wrong_end, _grade("b", *[False] * 4), _grade("s", *[True] * 4), tmp_path / "other"
        )
    )


def test_lab_pairs_requires_solution_and_checks(tmp_path: Path) -> None:
    nb(tmp_path / "labs/course3/week1/lab_y.py", "x = 1")
    with pytest.raises(FileNotFoundError, match="has no solutions"):
        lab_pairs(tmp_path, "3")


LAB_TASK = """# MAGIC %md
# MAGIC ## Task: the even numbers below ten as a DataFrame with column `n`"""
CHECKS = """lab = Lab("scratch/lab_x")


@lab.check("even numbers", "range() and a filter on n % 2")
def _():
    assert sorted(r["n"] for r in evens.collect()) == [0, 2, 4, 6, 8], "not the even numbers"


@lab.check("count", "count() is an action")
def _():
    assert n_evens == 5, f"n_evens is {n_evens!r}"


@lab.check("sum", "sf.sum over the column")
def _():
    assert total == 20, f"total is {total!r}"


@lab.check("always", "a check that cannot fail")
def _():
    assert True


lab.summary()"""


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    (tmp_path / "labs").mkdir()
    shutil.copy(ROOT / "labs/_labkit.py", tmp_path / "labs/_labkit.py")
    week = tmp_path / "labs/course1/week1"
    nb(
        week / "lab_x.py",
        "# MAGIC %run ../../_labkit",
        LAB_TASK,
        "evens = FILL_IN\nn_evens = evens.count()",
        "total = FILL_IN",
        "# MAGIC %run ./checks/lab_x",
    )
    nb(
        week / "solutions/lab_x.py",
        "# MAGIC %run ../../../_labkit",
        LAB_TASK,
        'evens = spark.range(10).withColumnRenamed("id", "n").filter("n % 2 = 0")\n'
        "n_evens = evens.count()",
        'total = evens.groupBy().sum("n").first()[0]',
        "# MAGIC %run ../checks/lab_x",
    )
    nb(week / "checks/lab_x.py", CHECKS)
    return tmp_path


def grade_cli(
    project: Path, *args: str, module: str = "coursekit.grade"
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.spark
def test_grade_and_prove_on_real_notebooks(scratch: Path) -> None:
    solved = grade_cli(scratch, "labs/course1/week1/solutions/lab_x.py")
    assert solved.returncode == 0, solved.stdout + solved.stderr
    assert "4 of 4 checks pass" in solved.stdout
    # Grading the blank too: one failing lab makes the exit status 1.
    both = grade_cli(
        scratch, "labs/course1/week1/solutions/lab_x.py", "labs/course1/week1/lab_x.py"
    )
    assert both.returncode == 1, both.stdout + both.stderr
    # The blank cell failed (FILL_IN.count()), the run went on, and the checks ran.
    assert "cell error (the run went on)" in both.stdout
    assert "FAIL  even numbers" in both.stdout
    assert "1 of 4 checks pass" in both.stdout
    # The proof refuses the lab: its "always" check passes on the blank.
    proof = grade_cli(scratch, "--prove", "1")
    assert proof.returncode == 1
    assert "checks that pass on the blank lab (cannot fail): ['always']" in proof.stderr
    # A course run grades its labs in the same pool as its lessons, with the same verdict,
    # and a lesson that fails still fails the run on its own.
    nb(scratch / "demos/course1/week1/lesson/lesson.py", "print('lesson ran')")
    course = grade_cli(scratch, "--course", "1", "--no-cache", module="coursekit.run")
    assert course.returncode == 1, course.stdout + course.stderr
    summary = course.stdout[course.stdout.index("notebook  ") :]
    for name in ("lesson/lesson.py", "week1/lab_x.py", "solutions/lab_x.py"):
        assert name in summary, summary
    assert "3 passed, 0 failed" in summary
    assert "lab labs/course1/week1/lab_x.py: solution passes 4/4, blank fails 3/4" in course.stdout
    assert (
        "LAB PROBLEM labs/course1/week1/lab_x.py: checks that pass on the blank lab "
        "(cannot fail): ['always']" in course.stderr
    )
