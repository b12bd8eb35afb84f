"""Execute Databricks source notebooks in real Jupyter kernels: ``python -m coursekit.run``.

Each notebook runs top to bottom in its own ipykernel (one SparkSession per kernel),
with the runtime's setup cell injected first, a timeout on every cell, and its
executed copy, outputs included, written under ``build/notebooks/``. A summary table
closes the run; a failing cell is reported with the notebook, the cell's number in
the Databricks source, its code and the traceback, and the exit status is 1.

Selecting notebooks::

    python -m coursekit.run demos/course1/week2            # files or directories
    python -m coursekit.run --course 1                     # a course's demos and lab solutions
    python -m coursekit.run --course examples              # examples/databricks only
    python -m coursekit.run nb.py --param schema=dev       # widget values

A course collects ``demos/course<N>/**``, except notebooks in a ``tasks/`` folder (job
tasks that their orchestrating notebook runs with ``dbutils.notebook.run``) or an
``includes/`` folder (definitions a lesson pulls in with ``%run``). Its
labs (``labs/course<N>/``) are graded both ways in the same run (:mod:`coursekit.grade`):
each solution must pass every check and each learner version fail every one.
``examples/databricks`` (notebooks over the Rust wheels: trueno against NumPy, realizar
embeddings) belongs to course 4, whose session builds and installs the wheels; it can
also be run alone as the group ``examples``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from coursekit import cache
from coursekit import notebook as nbsrc
from coursekit.runtime import SKIP_MIME, classdata, drivers, project_root
from coursekit.runtime.session import jars_cached

COURSES = ("1", "3", "4")
# Notebooks in a folder of these names run only through another notebook: tasks by
# dbutils.notebook.run (as a job would), includes by %run (shared definitions).
PART_DIRS = {"tasks", "includes"}
GROUPS = (*COURSES, "examples")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Result:
    notebook: Path
    cells: int
    seconds: float
    status: str  # "ok", "exited", "FAILED"
    message: str = ""
    report: str = ""  # the failure report: notebook, cell number, source, traceback
    # With keep_going, the cells that failed while the run went on: "cell N: Error: text".
    errors: list[str] = field(default_factory=list)


def course_dirs(root: Path, group: str) -> list[Path]:
    """The directories a course (or the ``examples`` group) draws notebooks from."""
    examples = root / "examples" / "databricks"
    if group == "examples":
        return [examples]
    if group not in COURSES:
        raise ValueError(f"unknown course {group!r}: choose one of {', '.join(GROUPS)}")
    dirs = [root / "demos" / f"course{group}", root / "labs" / f"course{group}"]
    return [*dirs, examples] if group == "4" else dirs


def collect(paths: list[Path]) -> list[Path]:
    """Databricks source notebooks in the given files and directories, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            if not nbsrc.is_databricks_source(path):
                raise ValueError(f"{path} is not a Databricks source notebook (first line)")
            found.append(path)
        elif path.is_dir():
            found.extend(p for p in sorted(path.rglob("*.py")) if nbsrc.is_databricks_source(p))
        else:
            raise FileNotFoundError(f"no such notebook or directory: {path}")
    return sorted(dict.fromkeys(p.resolve() for p in found))


def collect_course(root: Path, group: str) -> list[Path]:
    notebooks = []
    for directory in course_dirs(root, group):
        if not directory.is_dir():
            continue
        for path in collect([directory]):
            # Labs are graded, both versions, by coursekit.grade (see main).
            parts = path.relative_to(root).parts
            if parts[0] == "labs":
                continue
            # Task and include notebooks run through the notebook that uses them.
            if PART_DIRS & set(parts[:-1]):
                continue
            notebooks.append(path)
    return notebooks


def parse_params(items: list[str]) -> dict[str, str]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param takes key=value, got {item!r}")
        params[key] = value
    return params


def _output_path(out_dir: Path, root: Path, notebook: Path) -> Path:
    try:
        rel = notebook.relative_to(root)
    except ValueError:
        rel = Path(notebook.name)
    return (out_dir / rel).with_suffix(".ipynb")


def _skipped(nb: nbformat.NotebookNode) -> str:
    """The cells the runtime did not execute (%scala, %r), as the summary names them."""
    found = [
        f"cell {data[SKIP_MIME]['cell']} ({data[SKIP_MIME]['magic']})"
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if SKIP_MIME in (data := output.get("data", {}))
    ]
    return f"skipped {', '.join(found)}: not Python or SQL" if found else ""


def _exit_value(cell: nbformat.NotebookNode) -> str | None:
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if "application/vnd.coursekit.exit+json" in data:
            return data["application/vnd.coursekit.exit+json"]["value"]
    return None


def _failure_report(notebook: Path, number: int, source: str, error: str) -> str:
    rule = "-" * 78
    where = f"cell {number}" if number else "the runtime setup cell (before cell 1)"
    return (
        f"\n{rule}\nFAILED {notebook}, {where}\n{rule}\n"
        f"{source}\n{rule}\n{_ANSI.sub('', error).rstrip()}\n{rule}\n"
    )


def run_notebook(
    path: Path,
    *,
    root: Path,
    out_dir: Path,
    run_dir: Path,
    params: dict[str, str],
    timeout: int,
    keep_going: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Result:
    """Execute one notebook in a fresh kernel; never raises for notebook errors.

    A failing cell ends the run, as on Databricks, unless ``keep_going`` (lab grading:
    a learner's unfinished task must not hide the checks at the end); its error is then
    recorded in ``Result.errors`` and the next cell runs.
    """
    start = time.monotonic()
    try:
        cells = nbsrc.read(path)
    except nbsrc.NotebookFormatError as exc:
        return Result(path, 0, 0.0, "FAILED", str(exc), report=str(exc))
    nb = nbsrc.to_nbformat(cells)
    # The kernel learns what it runs from its environment (see coursekit.runtime).
    env = {
        **os.environ,
        "COURSEKIT_NOTEBOOK": str(path),
        "COURSEKIT_PARAMS": json.dumps(params),
        "COURSEKIT_RUN_DIR": str(run_dir),
        **(extra_env or {}),
    }
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    status, message, report, executed = "ok", "", "", 0
    errors: list[str] = []
    target = _output_path(out_dir, root, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The JVM's and the kernel's own chatter go to a log beside the executed notebook.
    log_path = target.with_suffix(".kernel.log")
    try:
        with log_path.open("w") as log, client.setup_kernel(env=env, stdout=log, stderr=log):
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                number = cell.metadata.get("coursekit", {}).get("cell", 0)
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as exc:
                    if exc.ename == "NotebookExit":
                        status, message = "exited", f"exit value {_exit_value(cell)!r}"
                        break
                    where = f"cell {number}" if number else "the runtime setup cell"
                    if keep_going and number:
                        errors.append(f"{where}: {exc.ename}: {exc.evalue}")
                        continue
                    status = "FAILED"
                    message = f"{where}: {exc.ename}: {exc.evalue}"
                    report = _failure_report(path, number, cell.source, exc.traceback or str(exc))
                    break
                except CellTimeoutError:
                    status = "FAILED"
                    message = f"cell {number}: timed out after {timeout} s"
                    report = _failure_report(path, number, cell.source, message)
                    break
                if number:
                    executed += 1
    except DeadKernelError as exc:
        status, message = "FAILED", f"the kernel died: {exc}"
        report = _failure_report(path, 0, f"(kernel log: {log_path})", message)
    nbformat.write(nb, target)
    if skipped := _skipped(nb):
        message = f"{message}; {skipped}" if message else skipped
    return Result(path, executed, time.monotonic() - start, status, message, report, errors)


def _times_file() -> Path:
    configured = os.environ.get("COURSEKIT_TIMES_FILE")
    return (
        Path(configured) if configured else classdata.cache_dir().parent / "notebook-seconds.json"
    )


def _time_key(root: Path, path: Path) -> str:
    return str(path.relative_to(root) if path.is_relative_to(root) else path)


def _known_times() -> dict[str, float]:
    try:
        data = json.loads(_times_file().read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _remember_times(root: Path, results: list[Result]) -> None:
    """Add this run's notebook times to the machine's record (for longest-first order)."""
    file = _times_file()
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with file.with_suffix(".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            times = _known_times()
            for r in results:
                if r.status != "FAILED":
                    times[_time_key(root, r.notebook)] = round(r.seconds, 1)
            tmp = file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(times, indent=0, sort_keys=True))
            os.replace(tmp, file)
    except OSError as exc:  # a read-only home: the order is only an optimisation
        print(f"coursekit: notebook times not recorded ({exc})", file=sys.stderr)


def longest_first(root: Path, notebooks: list[Path]) -> list[Path]:
    """The notebooks, the longest last time first (unknown ones keep their order, last).

    Two run side by side; a long one started last would run alone at the end (a job
    lesson's tasks take minutes), so the run's wall time is shortest when it starts first.
    """
    times = _known_times()
    return sorted(notebooks, key=lambda p: -times.get(_time_key(root, p), 0.0))


def summary(results: list[Result], root: Path, wall: float) -> str:
    def name(p: Path) -> str:
        try:
            return str(p.relative_to(root))
        except ValueError:
            return str(p)

    rows = [(name(r.notebook), str(r.cells), f"{r.seconds:.1f}", r.status) for r in results]
    header = ("notebook", "cells", "seconds", "status")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in rows]
    failed = sum(r.status == "FAILED" for r in results)
    total = sum(r.seconds for r in results)
    lines.append(f"wall time {wall:.1f} s (notebooks' own times add up to {total:.1f} s)")
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)


def execute(
    notebooks: list[Path],
    *,
    root: Path,
    out_dir: Path,
    params: dict[str, str],
    timeout: int,
    jobs: int,
    keep_going: bool | Callable[[Path], bool] = False,
    env_for: Callable[[Path], dict[str, str] | None] | None = None,
) -> tuple[list[Result], float]:
    """Run the notebooks (``jobs`` at a time), reporting each; results in input order.

    With more than one job they start longest first, by this machine's record of
    earlier runs (:func:`longest_first`).

    ``env_for(notebook)`` adds environment variables to that notebook's kernel;
    ``keep_going`` is a flag for every notebook or a predicate on the notebook.
    """
    # An orchestrator (batuta) running several notebooks as one job's tasks names the
    # run's directory, so that its tasks share one DBFS root.
    given = os.environ.get("COURSEKIT_RUN_DIR")
    run_dir = Path(given) if given else root / "build" / "runs" / time.strftime("%Y%m%d-%H%M%S")
    started = time.monotonic()

    def shown(path: Path) -> Path:
        return path.relative_to(root) if path.is_relative_to(root) else path

    def one(path: Path) -> Result:
        return run_notebook(
            path,
            root=root,
            out_dir=out_dir,
            run_dir=run_dir,
            params=params,
            timeout=timeout,
            keep_going=keep_going(path) if callable(keep_going) else keep_going,
            extra_env=env_for(path) if env_for else None,
        )

    def report(done: int, result: Result) -> None:
        print(f"[{done}/{len(notebooks)}] {shown(result.notebook)}", flush=True)
        print(
            f"    {result.status} in {result.seconds:.1f} s {result.message}".rstrip(), flush=True
        )
        if result.report:
            print(result.report, file=sys.stderr, flush=True)

    results: list[Result] = []
    queue = list(notebooks) if jobs == 1 else longest_first(root, notebooks)
    if jobs == 1 or not jars_cached():
        # Alone first: two JVMs fetching the Delta jars into one Ivy cache at once can
        # corrupt it; after one start the jars load straight from the cache.
        results.append(one(queue.pop(0)))
        report(1, results[-1])
    with contextlib.ExitStack() as stack:
        if len(queue) > 1 and drivers.POOL_VARIABLE not in os.environ:
            # Warm driver JVMs for the kernels to lease (coursekit.runtime.drivers): one
            # per concurrent notebook, and one for the job tasks a notebook may start.
            warm = stack.enter_context(drivers.DriverPool(run_dir / "drivers", jobs + 1))
            if warm.start():
                stack.enter_context(drivers.environment(warm.environment()))
        if jobs == 1:
            for path in queue:
                results.append(one(path))
                report(len(results), results[-1])
        elif queue:
            # Each notebook has its own kernel (and SparkContext), so notebooks can run
            # side by side.
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(one, path) for path in queue]
                for future in as_completed(futures):
                    results.append(future.result())
                    report(len(results), results[-1])
    results.sort(key=lambda r: notebooks.index(r.notebook))
    _remember_times(root, results)
    return results, time.monotonic() - started


def unchanged_courses(
    root: Path, courses: list[str], *, use_cache: bool
) -> tuple[dict[str, str], set[str]]:
    """The input digest of each course, and the courses unchanged since they passed.

    A course whose inputs are unchanged since it last passed is not run again
    (coursekit.cache); a run with widget values (``--param``) always runs.
    """
    keys: dict[str, str] = {}
    skipped: set[str] = set()
    for group in dict.fromkeys(courses):
        if group not in COURSES or not use_cache:
            continue
        keys[group] = cache.course_key(root, group)
        done = cache.up_to_date(root, group, keys[group])
        if done:
            skipped.add(group)
            print(
                f"course {group}: inputs unchanged since it passed at {done['passed_at']} "
                f"({done['seconds']:.0f} s; key {keys[group][:12]}): not run again "
                "(--no-cache or COURSEKIT_NO_CACHE=1 runs it)"
            )
    return keys, skipped


def select(root: Path, paths: list[Path], courses: list[str], *, every: bool) -> list[Path]:
    """The notebooks named by paths and courses; every course's when ``every``."""
    notebooks = collect(paths) if paths else []
    for group in courses:
        found = collect_course(root, group)
        if not found:
            where = ", ".join(str(d.relative_to(root)) for d in course_dirs(root, group))
            print(f"course {group}: no notebooks yet (looked in {where}); nothing to run")
        notebooks.extend(found)
    if every:
        for group in COURSES:
            notebooks.extend(collect_course(root, group))
    return list(dict.fromkeys(notebooks))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m coursekit.run",
        description="Execute Databricks source notebooks locally (Spark + Delta, MLflow).",
    )
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks or directories")
    parser.add_argument(
        "--course",
        action="append",
        choices=GROUPS,
        default=[],
        help="a course's demos and lab solutions (repeatable); course 4 includes "
        "examples/databricks, 'examples' runs those alone",
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="widget value"
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    parser.add_argument("--out-dir", type=Path, help="executed notebooks (default build/notebooks)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="notebooks run side by side, each in its own kernel and JVM (default 2)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="run a course even if its inputs are unchanged since it last passed",
    )
    args = parser.parse_args(argv)

    from coursekit import grade  # noqa: PLC0415 (grade builds on this module)

    root = project_root(Path.cwd())
    keys, skipped = unchanged_courses(
        root, args.course, use_cache=not (args.param or args.no_cache)
    )
    started = time.monotonic()
    try:
        params = parse_params(args.param)
        notebooks = select(
            root,
            args.paths,
            [g for g in args.course if g not in skipped],
            every=not args.paths and not args.course,
        )
        courses = [g for g in args.course if g in COURSES and g not in skipped]
        labs = {group: grade.lab_pairs(root, group) for group in courses}
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print(f"error: --jobs must be at least 1, got {args.jobs}", file=sys.stderr)
        return 2
    if not notebooks and not args.course:
        print("no notebooks to run")
        return 0

    out_dir = (args.out_dir or root / "build" / "notebooks").resolve()
    # A course's labs are graded both ways (coursekit.grade) in the same pool as its
    # lessons, so the longest notebooks of either kind start first and both kernels stay busy.
    plan = grade.Plan([nb for pairs in labs.values() for nb in grade.lab_notebooks(pairs)], root)
    for group, pairs in labs.items():
        if not pairs:
            print(f"course {group}: no labs yet")
    failed = False
    everything = [*(nb for nb in notebooks if nb not in plan), *plan.files]
    if everything:
        results, wall = execute(
            everything,
            root=root,
            out_dir=out_dir,
            params=params,
            timeout=args.timeout,
            jobs=args.jobs,
            keep_going=plan.__contains__,
            env_for=lambda nb: plan.env_for(nb) if nb in plan else None,
        )
        print()
        print(summary(results, root, wall))
        print(f"executed notebooks: {out_dir}")
        failed = any(r.status == "FAILED" for r in results if r.notebook not in plan)
        grades = plan.grades(results)
        for pairs in labs.values():
            for problem in grade.judge(pairs, grades, root) if pairs else []:
                print(f"LAB PROBLEM {problem}", file=sys.stderr)
                failed = True
    # One run covers its courses together, so a pass is recorded only when all passed.
    for group, key in keys.items():
        if group not in skipped:
            cache.record(root, group, key, time.monotonic() - started, passed=not failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
