"""A class-data sharing archive for the local Spark JVM: start-up without re-reading jars.

Every local notebook, lab run and job task starts its own JVM, and most of a short
notebook's JVM time is spent loading, verifying and linking the same twenty thousand
classes of Spark, Scala and Delta Lake. Java's class-data sharing (CDS) keeps those
classes, already parsed and verified, in an archive that the JVM maps into memory at
start-up. On this project's 2-core CI machine a session with an archive started and ran
its first Delta operations in about two thirds of the time.

Java 17 writes a *dynamic* archive when a JVM started with
``-XX:ArchiveClassesAtExit=FILE`` exits through ``System.exit``. So the archive is made
once per machine (per Python environment: the jars' paths are part of it), by a training
run in a background process (:func:`train`) that starts Spark,
runs the operations the lessons use (DataFrames, SQL, Delta writes, MERGE, history, Arrow
to pandas, Python workers), and exits the JVM. Sessions started after that map it
(``-XX:SharedArchiveFile``).

The archive is only valid for the exact JVM, jars and heap settings it was made with, so
its file name is a digest of them (:func:`archive_key`): a new Java, pyspark or Delta makes
a new one. A JVM that finds an archive it cannot use says so in its log and starts without
it (``-Xshare:auto``), so a stale or damaged file costs speed, never a failure. A training
run that fails is recorded beside the archive and not retried for a day.

``COURSEKIT_CLASS_ARCHIVE=0`` turns it off; ``COURSEKIT_CACHE_DIR`` moves the cache
(default ``$XDG_CACHE_HOME/coursekit``, else ``~/.cache/coursekit``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator, Sequence
from pathlib import Path

# How long a training run may take before it is abandoned (a loaded machine needs ~90 s).
TRAIN_TIMEOUT_S = 600
# A failed training run is not repeated for a day.
RETRY_AFTER_S = 24 * 3600


def enabled() -> bool:
    return os.environ.get("COURSEKIT_CLASS_ARCHIVE", "1") != "0"


def cache_dir() -> Path:
    configured = os.environ.get("COURSEKIT_CACHE_DIR")
    xdg = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    base = Path(configured).expanduser() if configured else xdg / "coursekit"
    return base / "jvm"


def archive_key(java: str, jars: Sequence[str], settings: Sequence[str]) -> str:
    """A digest of what an archive depends on: the JVM binary, the class path, the heap.

    ``java`` is the java executable (resolved through links), ``jars`` the extra jars,
    ``settings`` the options that change the archive's layout (heap size, GC).
    """
    import pyspark  # noqa: PLC0415 (imported only when a session is built)

    spark_jars = Path(pyspark.__file__).parent / "jars"
    parts: list[str] = [sys.version, pyspark.__version__]
    exe = Path(java).resolve()
    stat = exe.stat()
    parts.append(f"{exe}:{stat.st_size}:{stat.st_mtime_ns}")
    for jar in [*sorted(spark_jars.glob("*.jar")), *(Path(j) for j in jars)]:
        try:
            st = jar.stat()
        except OSError:
            parts.append(f"{jar}:missing")
            continue
        parts.append(f"{jar}:{st.st_size}:{st.st_mtime_ns}")
    parts.extend(settings)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def archive_path(key: str) -> Path:
    return cache_dir() / f"spark-{key}.jsa"


@contextlib.contextmanager
def _locked(path: Path) -> Generator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _failed_recently(marker: Path) -> bool:
    """A training run failed for this key within the day (a busy machine may time out)."""
    try:
        return time.time() - marker.stat().st_mtime < RETRY_AFTER_S
    except OSError:
        return False


def ensure(key: str, *, wait: bool = False) -> Path | None:
    """The archive for ``key``; when there is none yet, a training run makes it.

    Without ``wait`` the training run starts in the background (a detached process) and
    this call returns None at once: the JVM being started now goes without, the ones
    after it find the archive. Waiting would hold up every notebook of a run for the
    minute training takes. With ``wait``, the archive is made (or awaited, when another
    process is making it) before returning. None also when archives are off, or when
    training failed for this key within the day (the reason is in ``spark-<key>.failed``).
    """
    target = archive_path(key)
    failed = target.with_suffix(".failed")
    if not enabled() or target.is_file() or _failed_recently(failed):
        return target if enabled() and target.is_file() else None
    lock = target.with_suffix(".lock")
    if not wait:
        _start_in_background(key, lock)
        return None
    with _locked(lock):
        if target.is_file():
            return target
        if _failed_recently(failed):
            return None
        return _make(target, failed)


def _start_in_background(key: str, lock: Path) -> None:
    """Start a detached ``--make`` run, unless one holds the lock already."""
    if _busy(lock):
        return
    subprocess.Popen(
        [sys.executable, "-m", "coursekit.runtime.classdata", "--make", key],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _busy(lock: Path) -> bool:
    """Another process holds ``lock`` (a training run is under way)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def _make(target: Path, failed: Path) -> Path | None:
    """Run a training process into a temporary file; publish it whole, or record why not."""
    started = time.monotonic()
    fd, tmp_name = tempfile.mkstemp(prefix=target.stem, suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # the JVM creates it; an empty file would look like a finished archive
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "coursekit.runtime.classdata", str(tmp)],
            capture_output=True,
            text=True,
            timeout=TRAIN_TIMEOUT_S,
            check=False,
        )
        output = proc.stdout[-4000:] + proc.stderr[-4000:]
        ok = proc.returncode == 0 and tmp.is_file() and tmp.stat().st_size > 0
    except subprocess.TimeoutExpired as exc:
        ok, output = False, f"training run timed out after {exc.timeout} s"
    if not ok:
        tmp.unlink(missing_ok=True)
        failed.write_text(
            json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "output": output})
        )
        print(
            f"coursekit: no JVM class archive ({failed}); Spark starts without one",
            file=sys.stderr,
        )
        return None
    os.replace(tmp, target)
    print(
        f"coursekit: made the JVM class archive {target} "
        f"({target.stat().st_size / 1e6:.0f} MB in {time.monotonic() - started:.0f} s)",
        file=sys.stderr,
    )
    return target


def train(out: Path) -> None:
    """Start Spark with ``-XX:ArchiveClassesAtExit=out``, use it as lessons do, exit the JVM."""
    from coursekit.runtime import session  # noqa: PLC0415 (circular at import time)

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with tempfile.TemporaryDirectory(prefix="coursekit-cds-") as tmp:
        root = Path(tmp)
        spark = session.build_session(
            root / "warehouse",
            app_name="class-archive",
            jvm_log=root / "jvm.log",
            dbfs_root=root / "dbfs",
            java_options=[f"-XX:ArchiveClassesAtExit={out}"],
            class_archive=False,
        )
        df = spark.createDataFrame(
            [(i, f"k{i % 7}", i * 0.5, None if i % 5 else "x") for i in range(200)],
            "id long, key string, value double, note string",
        )
        df.groupBy("key").agg({"value": "sum", "id": "count"}).orderBy("key").collect()
        df.createOrReplaceTempView("v")
        spark.sql(
            "SELECT key, avg(value) OVER (PARTITION BY key ORDER BY id) AS a FROM v"
        ).collect()
        df.write.format("delta").mode("overwrite").saveAsTable("t")
        spark.sql("CREATE TABLE s (id long, key string) USING DELTA")
        spark.sql("INSERT INTO s VALUES (1, 'a'), (2, 'b')")
        spark.sql("UPDATE t SET value = value + 1 WHERE id < 10")
        spark.sql("DELETE FROM t WHERE id > 190")
        spark.sql(
            "MERGE INTO t USING s ON t.id = s.id "
            "WHEN MATCHED THEN UPDATE SET key = s.key "
            "WHEN NOT MATCHED THEN INSERT (id, key) VALUES (s.id, s.key)"
        )
        spark.sql("DESCRIBE HISTORY t").collect()
        spark.read.option("versionAsOf", 0).table("t").count()
        spark.table("t").join(spark.table("s"), "id").toPandas()
        out_dir = root / "dbfs" / "files"
        df.write.mode("overwrite").parquet(str(out_dir / "p"))
        df.write.mode("overwrite").option("header", True).csv(str(out_dir / "c"))
        df.write.mode("overwrite").json(str(out_dir / "j"))
        spark.read.parquet(str(out_dir / "p")).count()
        csv = spark.read.option("header", True).option("inferSchema", True)
        csv.csv(str(out_dir / "c")).count()
        spark.read.json(str(out_dir / "j")).count()
        spark.sparkContext.parallelize(range(10)).map(lambda x: x * 2).sum()  # Python workers
        gateway = spark.sparkContext._gateway
        jvm = spark.sparkContext._jvm
        assert gateway is not None
        assert jvm is not None
        proc = getattr(gateway, "proc", None)
        spark.stop()
        # The archive is written by System.exit's hooks; the Py4J call never returns: the
        # connection drops (a Py4J network error, or a refused reconnect). The caller checks
        # that the archive exists.
        from py4j.protocol import Py4JError  # noqa: PLC0415 (pyspark's own dependency)

        with contextlib.suppress(Py4JError, OSError):
            jvm.java.lang.System.exit(0)
        if proc is not None:
            proc.wait(timeout=TRAIN_TIMEOUT_S)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--make":
        sys.exit(0 if ensure(sys.argv[2], wait=True) else 1)
    if len(sys.argv) != 2:
        sys.exit("usage: python -m coursekit.runtime.classdata ARCHIVE | --make KEY")
    train(Path(sys.argv[1]))
