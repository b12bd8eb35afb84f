"""Passing course runs are remembered by the digest of their inputs, and only then."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from coursekit import cache


def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mod.py").write_text("x = 1\n")
    week = tmp_path / "demos" / "course3" / "week1"
    week.mkdir(parents=True)
    (week / "notes.md").write_text("not a notebook\n")
    return tmp_path


def test_key_follows_every_input_of_the_course_and_nothing_else(tmp_path: Path) -> None:
    root = project(tmp_path)
    key = cache.course_key(root, "3")
    assert cache.course_key(root, "3") == key
    (root / "demos" / "course3" / "week1" / "notes.md").write_text("changed\n")
    assert cache.course_key(root, "3") != key
    key = cache.course_key(root, "3")
    (root / "src" / "mod.py").write_text("x = 2\n")  # the runtime is every course's input
    assert cache.course_key(root, "3") != key
    key = cache.course_key(root, "3")
    (root / "demos" / "course1").mkdir()
    (root / "demos" / "course1" / "other.py").write_text("y = 1\n")  # another course
    (root / "demos" / "course3" / "__pycache__").mkdir()
    (root / "demos" / "course3" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    assert cache.course_key(root, "3") == key


def test_record_forget_and_disable(tmp_path: Path, monkeypatch) -> None:
    root = project(tmp_path)
    key = cache.course_key(root, "3")
    assert cache.up_to_date(root, "3", key) is None
    cache.record(root, "3", key, 12.5)
    done = cache.up_to_date(root, "3", key)
    assert done is not None
    assert done["seconds"] == 12.5
    assert cache.up_to_date(root, "3", "another key") is None
    monkeypatch.setenv("COURSEKIT_NO_CACHE", "1")
    assert cache.up_to_date(root, "3", key) is None
    monkeypatch.delenv("COURSEKIT_NO_CACHE")
    cache.record(root, "3", key, 1.0, passed=False)
    assert cache.up_to_date(root, "3", key) is None


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COURSEKIT_NO_CACHE"}
    return subprocess.run(
        [sys.executable, "-m", "coursekit.run", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_a_passing_course_is_not_run_again_until_an_input_changes(tmp_path: Path) -> None:
    root = project(tmp_path)
    first = run(root, "--course", "3")
    assert first.returncode == 0, first.stderr
    assert "inputs unchanged" not in first.stdout
    # Another course's notebook: a skipped course must not turn into "run everything".
    other = root / "demos" / "course1" / "week1" / "databricks-x" / "a.py"
    other.parent.mkdir(parents=True)
    other.write_text("# Databricks notebook source\nx = 1\n")
    second = run(root, "--course", "3")
    assert second.returncode == 0, second.stderr
    assert "course 3: inputs unchanged since it passed" in second.stdout
    assert "a.py" not in second.stdout
    assert "inputs unchanged" not in run(root, "--course", "3", "--no-cache").stdout
    (root / "demos" / "course3" / "week1" / "notes.md").write_text("edited\n")
    assert "inputs unchanged" not in run(root, "--course", "3").stdout


def cached_run(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COURSEKIT_NO_CACHE"}
    return subprocess.run(
        [sys.executable, "-m", "coursekit.cache", "run", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_a_suite_runs_again_only_when_an_input_or_the_command_changes(tmp_path: Path) -> None:
    root = project(tmp_path)
    count = root / "runs.txt"  # not an input: the command appends a line per real run
    command = ["--", sys.executable, "-c", f"open({str(count)!r}, 'a').write('x')"]
    args = ["suite", "--input=src", "--input=pyproject.toml", *command]
    assert cached_run(root, *args).returncode == 0
    assert count.read_text() == "x"
    again = cached_run(root, *args)
    assert again.returncode == 0
    assert "suite: inputs unchanged since it passed" in again.stdout
    assert count.read_text() == "x"
    (root / "src" / "mod.py").write_text("x = 3\n")
    assert cached_run(root, *args).returncode == 0
    assert count.read_text() == "xx"
    # Another command under the same name is another suite run.
    other = [*args[:-1], args[-1] + " or None"]
    assert cached_run(root, *other).returncode == 0
    assert count.read_text() == "xxx"


def test_a_failing_suite_is_not_recorded_and_bad_use_is_refused(tmp_path: Path) -> None:
    root = project(tmp_path)
    fail = ["suite", "--input=src", "--", sys.executable, "-c", "raise SystemExit(3)"]
    assert cached_run(root, *fail).returncode == 3
    assert cached_run(root, *fail).returncode == 3  # a failure is never remembered
    assert not (root / "build" / "course-cache" / "suite.json").exists()
    missing = cached_run(root, "suite", "--input=nowhere", "--", "true")
    assert missing.returncode == 2
    assert "inputs not found" in missing.stderr
    assert "nowhere" in missing.stderr
    number = cached_run(root, "3", "--input=src", "--", "true")  # would overwrite course 3's
    assert number.returncode == 2
    assert "not a course number" in number.stderr
    empty = cached_run(root, "suite", "--input=src")
    assert empty.returncode == 2
    assert "no command" in empty.stderr
