"""When a Spark test fails, show what its JVM said; keep test runs out of the machine's record.

The in-process Spark tests write the JVM's output to ``jvm.log`` under pytest's temporary
directory (and a JVM that crashes writes ``hs_err_pid*.log`` beside it). A failure whose
cause is in the JVM (it died, it ran out of memory) otherwise shows only a broken Py4J
connection, and the temporary directory is gone by the time anyone looks: the report
carries the logs' last lines instead.

The notebooks these tests run in scratch projects would otherwise enter this machine's record
of notebook times (coursekit.run's longest-first order): they get a record of their own.

The suite runs on every core (pytest-xdist, ``--dist loadgroup``). A test that starts Spark
in the pytest process itself (``build_session``) is in the ``spark-session`` group: PySpark
has one active session per process and ``build_session`` returns it, so such tests must
share one worker, where they run in file order, as in a run without xdist. Every other
test is grouped by its file, so a module's fixtures are made once. Every test here is
marked ``runtime``: test-course1 runs ``-m "runtime or spark"`` over tests/coursekit and
tests/python, so the wheels' Spark tests share the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TAIL = 40
_BASE: list[Path] = []  # pytest's temporary root of this session


@pytest.fixture(autouse=True, scope="session")
def _remember_temporary_root(tmp_path_factory: pytest.TempPathFactory) -> None:
    _BASE.append(tmp_path_factory.getbasetemp())
    os.environ["COURSEKIT_TIMES_FILE"] = str(_BASE[0] / "notebook-seconds.json")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if not item.path.is_relative_to(here):
            continue  # this hook sees the whole run's items (test-course1 adds tests/python's)
        item.add_marker(pytest.mark.runtime)
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.path.name))


def _tails(base: Path) -> str:
    parts = []
    for log in sorted([*base.rglob("jvm.log"), *base.rglob("hs_err_pid*.log")]):
        lines = log.read_text(errors="replace").splitlines()
        parts.append(f"--- last {min(TAIL, len(lines))} lines of {log} ---")
        parts += lines[-TAIL:]
    return "\n".join(parts)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed and item.get_closest_marker("spark") is not None:
        text = _tails(_BASE[0]) if _BASE else ""
        if text:
            report.sections.append(("JVM logs", text))
    return report
