"""Remember passing runs, so an unchanged course or test suite is not executed again.

A course run (its notebooks executed, its labs graded both ways) is a pure function of
its inputs: the course's notebooks and lab files, the runtime (``src/``), the lab kit,
shared data, the installed wheels and the pinned environment. After a course passes,
:func:`record` stores a digest of those inputs; the next run compares it with
:func:`course_key` and skips the course when nothing changed, as a build system skips an
up-to-date target (Bazel does the same for tests). A fresh clone has no cache, so CI runs
everything; ``--no-cache`` (or ``COURSEKIT_NO_CACHE=1``) forces a run here.

The digest is deliberately coarse: any change to the runtime or a wheel reruns every
course; any file in a course's folders reruns that course.

The same record guards any other command whose inputs are known, such as the runtime's
Spark tests or a course's Rust demos: ``python -m coursekit.cache run NAME --input PATH
... -- COMMAND...`` runs ``COMMAND`` unless it passed before with the same bytes in every
``PATH`` (and the same interpreter), and records it when it exits 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

# Inputs of every course, relative to the project root (files or directories): the wheels
# are the test sessions' (build/wheels, `nox -s build-test`) or the release ones (dist/).
SHARED = ("src", "labs/_labkit.py", "data", "pyproject.toml", "noxfile.py", "dist", "build/wheels")
SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", "target"}


def course_inputs(root: Path, course: str) -> list[Path]:
    """The files a course run depends on, sorted."""
    names = [f"demos/course{course}", f"labs/course{course}"]
    if course == "4":
        names.append("examples/databricks")
    return expand(root, [*names, *SHARED])


def expand(root: Path, names: Iterable[str]) -> list[Path]:
    """Every file under the named files or directories (relative to ``root``), sorted."""
    roots = [root / name for name in names]
    files: set[Path] = set()
    for entry in roots:
        if entry.is_file():
            files.add(entry)
        elif entry.is_dir():
            files.update(
                p
                for p in entry.rglob("*")
                if p.is_file() and not SKIP_PARTS & set(p.parts) and p.suffix != ".pyc"
            )
    return sorted(files)


def course_key(root: Path, course: str) -> str:
    """A digest of every input of the course run (paths, bytes, interpreter)."""
    return digest_of(root, course_inputs(root, course))


def digest_of(root: Path, files: Sequence[Path], extra: str = "") -> str:
    """A digest of the files' paths and bytes, the interpreter, and ``extra``."""
    digest = hashlib.sha256()
    digest.update(f"{sys.version}\n{platform.machine()}\n{extra}\n".encode())
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _file(root: Path, course: str) -> Path:
    # A course's record is named after its number; other suites by their own name.
    name = f"course{course}" if course.isdigit() else course
    return root / "build" / "course-cache" / f"{name}.json"


def disabled() -> bool:
    return os.environ.get("COURSEKIT_NO_CACHE", "") not in ("", "0")


def up_to_date(root: Path, course: str, key: str) -> dict | None:
    """The record of the last passing run when its inputs equal ``key``, else None."""
    path = _file(root, course)
    if disabled() or not path.is_file():
        return None
    try:
        record_ = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record_ if record_.get("key") == key else None


def record(root: Path, course: str, key: str, seconds: float, *, passed: bool = True) -> None:
    """Remember that the course passed with inputs ``key`` (or forget it: it failed)."""
    path = _file(root, course)
    if not passed:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {"key": key, "passed_at": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": seconds}
        )
    )
    tmp.replace(path)


def run_cached(root: Path, name: str, inputs: Sequence[str], command: Sequence[str]) -> int:
    """Run ``command`` unless it passed before with these inputs; record a pass."""
    if not name or name.isdigit() or "/" in name:
        msg = f"a suite name must be a word that is not a course number, got {name!r}"
        raise ValueError(msg)
    if not command:
        msg = "no command to run after --"
        raise ValueError(msg)
    missing = [n for n in inputs if not (root / n).exists()]
    if missing:
        msg = f"inputs not found under {root}: {', '.join(missing)}"
        raise ValueError(msg)
    key = digest_of(root, expand(root, inputs), extra="\0".join(command))
    done = up_to_date(root, name, key)
    if done:
        print(
            f"{name}: inputs unchanged since it passed at {done['passed_at']} "
            f"({done['seconds']:.0f} s; key {key[:12]}): not run again "
            "(COURSEKIT_NO_CACHE=1 runs it)",
            flush=True,
        )
        return 0
    started = time.monotonic()
    code = subprocess.call(list(command), cwd=root)
    record(root, name, key, time.monotonic() - started, passed=code == 0)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after the first "--" is the command, passed through untouched.
    cut = argv.index("--") if "--" in argv else len(argv)
    options, command = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m coursekit.cache",
        description="Run a command unless it passed before with the same inputs.",
    )
    sub = parser.add_subparsers(dest="verb", required=True)
    run = sub.add_parser(
        "run", help="run the command after -- unless its inputs are unchanged since it passed"
    )
    run.add_argument("name", help="the suite's name (its record is build/course-cache/NAME.json)")
    run.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="PATH",
        help="a file or directory the command depends on (repeat)",
    )
    args = parser.parse_args(options)
    try:
        return run_cached(Path.cwd(), args.name, args.input, command)
    except ValueError as exc:
        parser.error(str(exc))
    return 2  # parser.error exits; this line satisfies the type checker


if __name__ == "__main__":
    sys.exit(main())
