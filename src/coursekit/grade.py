"""Grade labs locally: ``python -m coursekit.grade PATH...`` (``nox -s grade -- PATH``).

A lab is a set of Databricks notebooks in one week's folder::

    labs/_labkit.py                                   FILL_IN and Lab (shared by every lab)
    labs/course<N>/week<W>/lab_<topic>.py             the learner's version, blanks = FILL_IN
    labs/course<N>/week<W>/solutions/lab_<topic>.py   the reference solution
    labs/course<N>/week<W>/checks/lab_<topic>.py      the checks, one home for both versions

Both versions ``%run`` the lab kit first and their checks last, so the same checks give
the same feedback on Databricks (the last cell prints the table) and here. Grading runs
the notebook in a fresh kernel, going on past failing cells so an unfinished task
cannot hide the checks, reads the results that ``Lab.summary()`` writes to the file
named by ``$LABKIT_RESULTS``, prints one row per check and exits 0 only when every
check passed.

:func:`prove` is the CI proof for a course: every solution passes every check, and every
blank version runs to its checks and fails each of them, so a check that cannot fail is a
red build. ``python -m coursekit.run --course N`` makes the same proof with :class:`Plan`
and :func:`judge`, running the labs in one pool with the course's lessons.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from coursekit import notebook as nbsrc
from coursekit.run import Result, execute
from coursekit.runtime import project_root

# Each lab has at least this many checks (one per task).
MIN_CHECKS = 4


@dataclass
class Grade:
    notebook: Path
    checks: list[dict] = field(default_factory=list)  # {"check","passed","detail","hint"}
    run: Result | None = None

    @property
    def reached_checks(self) -> bool:
        return bool(self.checks)

    @property
    def passed(self) -> bool:
        return self.reached_checks and all(c["passed"] for c in self.checks)


def results_file(root: Path, notebook: Path) -> Path:
    rel = notebook.relative_to(root) if notebook.is_relative_to(root) else Path(notebook.name)
    return (root / "build" / "grade" / rel).with_suffix(".json")


class Plan:
    """How lab notebooks run to be graded: each writes its results to its own file.

    A lab's two versions use the same volume paths and tables and may run side by side, so
    each notebook also gets a run directory (DBFS root, volumes, warehouse) of its own.
    Making a plan clears the notebooks' earlier results; :meth:`grades` reads the new ones.
    """

    def __init__(self, notebooks: list[Path], root: Path) -> None:
        self.root = root
        self.files = {nb: results_file(root, nb) for nb in notebooks}
        for target in self.files.values():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.runs_dir = root / "build" / "runs" / f"grade-{stamp}-pid{os.getpid()}"

    def __contains__(self, notebook: object) -> bool:
        return notebook in self.files

    def env_for(self, nb: Path) -> dict[str, str]:
        rel = self.files[nb].relative_to(self.root / "build" / "grade").with_suffix("")
        return {
            "LABKIT_RESULTS": str(self.files[nb]),
            "COURSEKIT_RUN_DIR": str(self.runs_dir / rel),
        }

    def grades(self, runs: list[Result]) -> list[Grade]:
        """The grade of each planned notebook among ``runs`` (what its checks reported)."""
        grades = []
        for run in runs:
            if run.notebook not in self.files:
                continue
            target = self.files[run.notebook]
            checks = json.loads(target.read_text())["checks"] if target.exists() else []
            grades.append(Grade(run.notebook, checks, run))
        return grades


def grade(notebooks: list[Path], *, root: Path, timeout: int = 600, jobs: int = 2) -> list[Grade]:
    """Run each lab notebook to its checks and collect what they reported."""
    plan = Plan(notebooks, root)
    runs, _ = execute(
        notebooks,
        root=root,
        out_dir=root / "build" / "grade",
        params={},
        timeout=timeout,
        jobs=jobs,
        keep_going=True,
        env_for=plan.env_for,
    )
    return plan.grades(runs)


def table(g: Grade, root: Path) -> str:
    name = g.notebook.relative_to(root) if g.notebook.is_relative_to(root) else g.notebook
    lines = [f"{name}"]
    if g.run is not None:
        lines += [f"  cell error (the run went on): {e}" for e in g.run.errors]
        if g.run.status == "FAILED":
            lines.append(f"  the notebook stopped: {g.run.message}")
    if not g.checks:
        lines.append("  the lab did not reach its checks (no results were written)")
        return "\n".join(lines)
    for c in g.checks:
        lines.append(f"  {'PASS' if c['passed'] else 'FAIL'}  {c['check']}")
        if not c["passed"]:
            lines.append(f"        {c['detail']}")
            lines.append(f"        hint: {c['hint']}")
    passed = sum(c["passed"] for c in g.checks)
    lines.append(f"  {passed} of {len(g.checks)} checks pass")
    return "\n".join(lines)


@dataclass
class LabPair:
    blank: Path
    solution: Path
    checks: Path


def lab_pairs(root: Path, course: str) -> list[LabPair]:
    """Every lab of a course, with its solution and checks (missing ones are an error)."""
    pairs = []
    for blank in sorted((root / "labs" / f"course{course}").glob("week*/lab_*.py")):
        pair = LabPair(
            blank, blank.parent / "solutions" / blank.name, blank.parent / "checks" / blank.name
        )
        for part in (pair.solution, pair.checks):
            if not part.is_file():
                raise FileNotFoundError(f"lab {blank.relative_to(root)} has no {part.parent.name}")
        pairs.append(pair)
    return pairs


def _runs(notebook: Path) -> list[str]:
    """The notebooks a notebook ``%run``s, as written."""
    return [c.source.strip() for c in nbsrc.read(notebook) if c.kind == nbsrc.RUN]


def check_pair(pair: LabPair, blank: Grade, solution: Grade, root: Path) -> list[str]:
    """What is wrong with one lab, judged by running both versions."""
    name = pair.blank.relative_to(root)
    problems = []
    for version, path in (("blank", pair.blank), ("solution", pair.solution)):
        expected = (
            f"./checks/{pair.blank.stem}"
            if version == "blank"
            else (f"../checks/{pair.blank.stem}")
        )
        runs = _runs(path)
        if not runs or runs[-1] != expected:
            problems.append(f"{name}: the {version} must end with `%run {expected}`")
    if not solution.passed:
        failing = [c["check"] for c in solution.checks if not c["passed"]]
        why = f"failing: {failing}" if solution.checks else "it did not reach its checks"
        problems.append(f"{name}: the solution must pass every check ({why})")
    if solution.run is not None and solution.run.errors:
        problems.append(f"{name}: the solution has failing cells: {solution.run.errors}")
    if len(solution.checks) < MIN_CHECKS:
        problems.append(f"{name}: {len(solution.checks)} checks, at least {MIN_CHECKS} expected")
    if not blank.reached_checks:
        problems.append(f"{name}: the blank lab must run to its checks")
    if blank.run is not None and any("SyntaxError" in e for e in blank.run.errors):
        problems.append(f"{name}: the blank lab has a syntax error: {blank.run.errors}")
    cannot_fail = [c["check"] for c in blank.checks if c["passed"]]
    if cannot_fail:
        problems.append(f"{name}: checks that pass on the blank lab (cannot fail): {cannot_fail}")
    if blank.reached_checks and [c["check"] for c in blank.checks] != [
        c["check"] for c in solution.checks
    ]:
        problems.append(f"{name}: the blank and the solution report different checks")
    return problems


def lab_notebooks(pairs: list[LabPair]) -> list[Path]:
    """The notebooks that grading a course's labs runs: each solution and each blank."""
    return [nb.resolve() for p in pairs for nb in (p.solution, p.blank)]


def judge(pairs: list[LabPair], grades: list[Grade], root: Path) -> list[str]:
    """The problems of each lab, from the grades of both its versions; prints one line a lab."""
    by_path = {g.notebook: g for g in grades}
    problems = []
    print()
    for pair in pairs:
        blank, solution = by_path[pair.blank.resolve()], by_path[pair.solution.resolve()]
        found = check_pair(pair, blank, solution, root)
        passed = sum(c["passed"] for c in solution.checks)
        failed = sum(not c["passed"] for c in blank.checks)
        status = "ok" if not found else "FAILED"
        print(
            f"lab {pair.blank.relative_to(root)}: solution passes {passed}/"
            f"{len(solution.checks)}, blank fails {failed}/{len(blank.checks)}  {status}"
        )
        problems += found
    return problems


def prove(root: Path, course: str, *, timeout: int = 600, jobs: int = 2) -> list[str]:
    """Grade every lab of a course both ways; return the problems (empty: all is well)."""
    pairs = lab_pairs(root, course)
    if not pairs:
        print(f"course {course}: no labs yet")
        return []
    grades = grade(lab_notebooks(pairs), root=root, timeout=timeout, jobs=jobs)
    return judge(pairs, grades, root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m coursekit.grade",
        description="Grade lab notebooks: run each to its checks and print the results.",
    )
    parser.add_argument("paths", nargs="*", type=Path, help="lab notebooks to grade")
    parser.add_argument(
        "--prove",
        metavar="COURSE",
        action="append",
        default=[],
        help="CI: every solution of the course passes, every blank fails each check",
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks run side by side")
    args = parser.parse_args(argv)
    if not args.paths and not args.prove:
        parser.error("give lab notebooks to grade (or --prove COURSE)")
    root = project_root(Path.cwd())
    status = 0
    if args.paths:
        missing = [p for p in args.paths if not p.is_file()]
        if missing:
            print(f"error: no such lab notebook: {', '.join(map(str, missing))}", file=sys.stderr)
            return 2
        grades = grade(
            [p.resolve() for p in args.paths], root=root, timeout=args.timeout, jobs=args.jobs
        )
        print()
        for g in grades:
            print(table(g, root))
        status = 0 if all(g.passed for g in grades) else 1
    for course in args.prove:
        problems = prove(root, course, timeout=args.timeout, jobs=args.jobs)
        for problem in problems:
            print(f"PROBLEM {problem}", file=sys.stderr)
        status = status or (1 if problems else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
