"""The JVM class-data archive (coursekit.runtime.classdata): keyed, made once, never fatal.

The key must change with anything the archive depends on (a jar, the Java binary, the
heap), a training run that fails must be recorded and not repeated on every start, and a
Spark session built when an archive exists must have been started with it.
"""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

import pytest

from coursekit.runtime import classdata


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSEKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COURSEKIT_CLASS_ARCHIVE", raising=False)
    return tmp_path / "cache" / "jvm"


def _java(tmp_path: Path) -> Path:
    java = tmp_path / "bin" / "java"
    java.parent.mkdir(parents=True, exist_ok=True)
    java.write_bytes(b"#!/bin/sh\n")
    return java


def test_key_follows_jars_java_and_settings(tmp_path):
    java = _java(tmp_path)
    jar = tmp_path / "delta.jar"
    jar.write_bytes(b"PK one")
    base = classdata.archive_key(str(java), [str(jar)], ["2g"])
    assert base == classdata.archive_key(str(java), [str(jar)], ["2g"])
    assert base != classdata.archive_key(str(java), [str(jar)], ["4g"])
    assert base != classdata.archive_key(str(java), [], ["2g"])
    jar.write_bytes(b"PK two, a different build")
    assert base != classdata.archive_key(str(java), [str(jar)], ["2g"])
    # A symlinked java is the binary it points to.
    link = tmp_path / "java-link"
    link.symlink_to(java)
    assert classdata.archive_key(str(link), [str(jar)], ["2g"]) == classdata.archive_key(
        str(java), [str(jar)], ["2g"]
    )
    # A missing jar still gives a key (the JVM then reports the class path mismatch).
    assert classdata.archive_key(str(java), [str(tmp_path / "gone.jar")], ["2g"])


def test_switched_off(cache, monkeypatch):
    monkeypatch.setenv("COURSEKIT_CLASS_ARCHIVE", "0")
    assert classdata.ensure("k" * 24) is None
    assert classdata.ensure("k" * 24, wait=True) is None
    assert not cache.exists()


def test_failed_training_is_recorded_and_not_repeated(cache, monkeypatch):
    calls: list[list[str]] = []

    def fail(cmd, **_kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 3, stdout="", stderr="no base CDS archive")

    monkeypatch.setattr(classdata.subprocess, "run", fail)
    assert classdata.ensure("a" * 24, wait=True) is None
    marker = cache / f"spark-{'a' * 24}.failed"
    assert "no base CDS archive" in marker.read_text()
    assert classdata.ensure("a" * 24, wait=True) is None
    assert len(calls) == 1
    assert not list(cache.glob("*.jsa"))
    assert not list(cache.glob("*.tmp"))


def test_training_that_writes_nothing_is_a_failure(cache, monkeypatch):
    monkeypatch.setattr(
        classdata.subprocess,
        "run",
        lambda cmd, **_: subprocess.CompletedProcess(cmd, 0, stdout="", stderr=""),
    )
    assert classdata.ensure("b" * 24, wait=True) is None
    assert (cache / f"spark-{'b' * 24}.failed").is_file()


def test_a_timed_out_training_run_is_a_failure(cache, monkeypatch):
    def slow(cmd, **kwargs):
        raise subprocess.TimeoutExpired(cmd, kwargs["timeout"])

    monkeypatch.setattr(classdata.subprocess, "run", slow)
    assert classdata.ensure("c" * 24, wait=True) is None
    assert "timed out" in (cache / f"spark-{'c' * 24}.failed").read_text()


def test_an_archive_is_published_whole(cache, monkeypatch):
    def train(cmd, **_):
        Path(cmd[-1]).write_bytes(b"archive bytes")
        return subprocess.CompletedProcess(cmd, 0, stdout="", stderr="")

    monkeypatch.setattr(classdata.subprocess, "run", train)
    made = classdata.ensure("d" * 24, wait=True)
    assert made == cache / f"spark-{'d' * 24}.jsa"
    assert made is not None
    assert made.read_bytes() == b"archive bytes"
    assert not list(cache.glob("*.tmp"))
    # Found again without training.
    monkeypatch.setattr(classdata.subprocess, "run", None)
    assert classdata.ensure("d" * 24) == made


def test_without_waiting_training_starts_in_the_background_once(cache, monkeypatch):
    started: list[list[str]] = []

    class Spawned:
        def __init__(self, cmd, **kwargs):
            assert kwargs["start_new_session"]
            started.append(cmd)

    monkeypatch.setattr(classdata.subprocess, "Popen", Spawned)
    assert classdata.ensure("e" * 24) is None
    assert started[0][-2:] == ["--make", "e" * 24]
    # While a training run holds the lock, nobody starts another.
    lock = cache / f"spark-{'e' * 24}.lock"
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        assert classdata.ensure("e" * 24) is None
    assert len(started) == 1


@pytest.mark.spark
@pytest.mark.xdist_group("spark-session")  # Spark in the pytest process (conftest.py)
def test_a_session_starts_with_the_machine_archive(tmp_path):
    """The real thing: the archive is made (or found) and the driver JVM maps it."""
    from pyspark.sql import SparkSession  # noqa: PLC0415

    from coursekit.runtime import session  # noqa: PLC0415

    # Without cached Delta jars (a first start resolves them) no archive is used; a JVM
    # an earlier test started may predate the jars.
    expected = session.jars_cached() and SparkSession.getActiveSession() is None
    key = session.archive_key()
    if key is not None:
        classdata.ensure(key, wait=True)  # sessions started from now on map it
    spark = session.build_session(tmp_path / "warehouse", jvm_log=tmp_path / "jvm.log")
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    args = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    shared = [a for a in args if a.startswith("-XX:SharedArchiveFile=")]
    assert len(shared) <= 1
    if not shared:
        if expected:
            # Only acceptable when training failed here, and then the reason is on record.
            assert list(classdata.cache_dir().glob("spark-*.failed")), args
            pytest.skip("this machine's JVM could not make a class archive (reason on record)")
        pytest.skip("this process's JVM started before the Delta jars were cached")
    archive = Path(shared[0].split("=", 1)[1])
    assert archive.is_file()
    assert archive.parent == classdata.cache_dir()
    assert "sharing" in jvm.java.lang.System.getProperty("java.vm.info")
    assert spark.range(10).selectExpr("sum(id) AS s").collect()[0]["s"] == 45
