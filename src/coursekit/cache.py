"""Remember passing course runs, so an unchanged course is not executed again.

A course run (its notebooks executed, its labs graded both ways) is a pure function of
its inputs: the course's notebooks and lab files, the runtime (``src/``), the lab kit,
shared data, the installed wheels and the pinned environment. After a course passes,
:func:`record` stores a digest of those inputs; the next run compares it with
:func:`course_key` and skips the course when nothing changed, as a build system skips an
up-to-date target (Bazel does the same for tests). A fresh clone has no cache, so CI runs
everything; ``--no-cache`` (or ``COURSEKIT_NO_CACHE=1``) forces a run here.

The digest is deliberately coarse: any change to the runtime or a wheel reruns every
course; any file in a course's folders reruns that course.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

# Inputs of every course, relative to the project root (files or directories).
SHARED = ("src", "labs/_labkit.py", "data", "pyproject.toml", "noxfile.py", "dist")
SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints"}


def course_inputs(root: Path, course: str) -> list[Path]:
    """The files a course run depends on, sorted."""
    roots = [root / "demos" / f"course{course}", root / "labs" / f"course{course}"]
    if course == "4":
        roots.append(root / "examples" / "databricks")
    roots += [root / name for name in SHARED]
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
    digest = hashlib.sha256()
    digest.update(f"{sys.version}\n{platform.machine()}\n".encode())
    for path in course_inputs(root, course):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _file(root: Path, course: str) -> Path:
    return root / "build" / "course-cache" / f"course{course}.json"


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
