"""Warm driver JVMs (coursekit.runtime.drivers): leases, and what a lessee must not inherit.

The lease tests need no JVM: a fake driver's announcement and lock file are enough. The
Spark tests start a one-driver pool and run "kernels" as subprocesses, one after another
on the same JVM, each with its own warehouse and DBFS root, and check that the second sees
nothing of the first: not its tables, not its DBFS, not its running SparkContext, and that
its Python workers get its own environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from coursekit.runtime import drivers
from coursekit.runtime.session import jars_cached


def announce(directory: Path, index: int, pid: int, body: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"driver-{index}.json"
    path.write_text(
        body if body is not None else json.dumps({"port": 1, "secret": "s", "pid": pid})
    )
    path.with_suffix(".lock").touch()
    return path


def test_no_pool_no_lease(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(drivers.POOL_VARIABLE, raising=False)
    assert drivers._lease() is None
    monkeypatch.setenv(drivers.POOL_VARIABLE, str(tmp_path / "missing"))
    assert drivers._lease() is None


def test_a_lease_is_exclusive_and_ends_with_its_holder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(drivers.POOL_VARIABLE, str(tmp_path))
    announce(tmp_path, 0, os.getpid())
    first = drivers._lease()
    assert first is not None
    assert first[1] == {"port": 1, "secret": "s", "pid": os.getpid(), "name": "0"}
    assert drivers._lease() is None, "a leased driver must not be leased again"
    # Another process holding the lock (a running kernel) keeps it busy too.
    first[0].close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
                "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"
            ),
            str(tmp_path / "driver-0.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert drivers._lease() is None
    finally:
        holder.kill()
        holder.wait()
    again = drivers._lease()  # the holder died: its lock went with it
    assert again is not None
    again[0].close()


def test_dead_or_malformed_drivers_are_skipped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(drivers.POOL_VARIABLE, str(tmp_path))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    announce(tmp_path, 0, int(dead.stdout))  # a driver whose process is gone
    announce(tmp_path, 1, 0, body="{not json")
    announce(tmp_path, 2, 0, body=json.dumps({"port": "x", "secret": "s", "pid": 1}))
    announce(tmp_path, 3, 0, body=json.dumps({"secret": "s", "pid": 1}))
    assert drivers._lease() is None
    announce(tmp_path, 4, os.getpid())
    got = drivers._lease()
    assert got is not None
    assert got[1]["name"] == "4"
    got[0].close()


def test_only_a_driver_started_with_the_same_settings_is_leased(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(drivers.POOL_VARIABLE, str(tmp_path))
    launch = {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1"}
    info = {"port": 1, "secret": "s", "pid": os.getpid(), "launch": launch}
    announce(tmp_path, 0, 0, body=json.dumps(info))
    assert drivers._lease({"spark.driver.extraJavaOptions": "-Xint"}) is None
    got = drivers._lease(dict(launch))
    assert got is not None
    got[0].close()
    # The class-data archive (made in the background after the pool started) and the
    # crash-report directory change how fast a JVM starts and where it reports, not what
    # it runs: a kernel that would map the archive still takes a driver that does not.
    later = {
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 "
        "-XX:SharedArchiveFile=/cache/a.jsa -XX:ErrorFile=/logs/hs_err_pid%p.log"
    }
    got = drivers._lease(later)
    assert got is not None
    got[0].close()


def test_a_pool_without_java_starts_nothing_and_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not jars_cached():
        pytest.skip("without cached jars the pool starts nothing before looking for Java")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    pool = drivers.DriverPool(tmp_path / "pool", 2)
    assert pool.start() == 0
    assert pool.environment() == {}
    assert "no warm driver JVMs: local Spark needs a Java 17 runtime" in capsys.readouterr().err
    pool.close()


def test_a_pool_needs_a_driver() -> None:
    with pytest.raises(ValueError, match="size=0"):
        drivers.DriverPool(Path("unused"), 0)


KERNEL = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from coursekit.runtime import drivers
    from coursekit.runtime.session import build_session

    base = Path(sys.argv[1])
    os.environ["COURSEKIT_DBFS_ROOT"] = str(base / "dbfs")
    os.environ["DRIVER_TEST_MARK"] = sys.argv[2]
    spark = build_session(base / "warehouse", dbfs_root=base / "dbfs")
    from pyspark.sql import functions as sf
    tables = sorted(r.tableName for r in spark.sql("SHOW TABLES").collect())
    spark.range(3).write.format("delta").saveAsTable("mine_" + sys.argv[2])
    spark.range(4).write.format("delta").save("/mnt/out")
    mark = sf.udf(lambda _: os.environ.get("DRIVER_TEST_MARK", "-"))
    seen = spark.range(1).select(mark("id")).collect()[0][0]
    print(json.dumps({"driver": drivers.leased(), "tables_before": tables, "worker_mark": seen}))
    sys.stdout.flush()
    if sys.argv[3] == "die":
        os._exit(0)  # no spark.stop(): the next lessee finds this SparkContext running
    """
)


@pytest.mark.spark
@pytest.mark.slow
def test_kernels_on_one_warm_driver_see_nothing_of_each_other(tmp_path: Path) -> None:
    if not jars_cached():
        pytest.skip("the pool starts once the Delta jars are cached (a session started before)")
    script = tmp_path / "kernel.py"
    script.write_text(KERNEL)
    with drivers.DriverPool(tmp_path / "pool", 1) as pool:
        assert pool.start() == 1
        env = {**os.environ, **pool.environment()}
        runs = []
        for name, ending in (("a", "die"), ("b", "stop")):
            base = tmp_path / name
            done = subprocess.run(
                [sys.executable, str(script), str(base), name, ending],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, done.stderr[-3000:]
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            # Each kernel's DBFS path landed in its own DBFS root.
            assert (base / "dbfs" / "mnt" / "out" / "_delta_log").is_dir(), name
    assert [r["driver"] for r in runs] == ["0", "0"]
    assert runs[1]["tables_before"] == [], "the second kernel saw the first one's catalog"
    assert [r["worker_mark"] for r in runs] == ["a", "b"]
