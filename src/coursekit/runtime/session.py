"""The local SparkSession: Spark in one JVM with Delta Lake, sized for a laptop and CI.

Databricks gives every notebook a ready ``spark``. Locally we build the closest
equivalent: ``local[2]``, two shuffle partitions (the default 200 turns a tiny
groupBy into 200 tasks), no UI, quiet logs, Delta Lake's SQL extensions and catalog
so that ``spark_catalog.<schema>.<table>`` names and ``USING DELTA`` work, and a
warehouse directory under ``build/`` that belongs to one run.

Delta's jars come from Maven Central the first time (through Spark's own resolver,
into an Ivy cache: ``$COURSEKIT_IVY_DIR`` or ``~/.ivy2.5.2``). The resolved jar list is
then recorded beside the cache, and later sessions load those files directly: no
resolver, no network, and a faster start.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import sys
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

from coursekit.runtime import classdata, drivers
from coursekit.runtime.paths import hadoop_conf

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Settings a notebook must not depend on, chosen for a 2-core machine.
MASTER = "local[2]"
LOCAL_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.catalogImplementation": "in-memory",
    # As on Databricks, a table or a read without a format is Delta (Spark's own default
    # is Parquet, which would make CREATE TABLE without USING a non-Delta table).
    "spark.sql.sources.default": "delta",
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    # Delta rebuilds table state with this many tasks (default 50).
    "spark.databricks.delta.snapshotPartitions": "2",
    # File listings (Delta's VACUUM lists the table this way) run with this many tasks
    # (default 10,000): one VACUUM of a 40-file table took 48-60 s locally, with 2 it takes 5.
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
    "spark.driver.memory": "2g",
    "spark.sql.session.timeZone": "UTC",
    # display() and toPandas() move rows to pandas through Arrow, not row by row.
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}

# A notebook's JVM lives a minute or two: the quick C1 compiler alone warms up sooner
# than tiered C2 and halved the course-1 notebooks' time on a busy 2-core machine.
# $COURSEKIT_JVM_OPTS adds options (or overrides: the last occurrence wins).
JVM_OPTIONS = ["-XX:TieredStopAtLevel=1"]


def ivy_dir() -> Path:
    """Where Spark's resolver caches Maven artifacts."""
    configured = os.environ.get("COURSEKIT_IVY_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".ivy2.5.2"


def delta_coordinate() -> str:
    """The Maven coordinate of the Delta jar matching the installed delta-spark and pyspark.

    delta-spark 4.x publishes one artifact per Spark minor version
    (``io.delta:delta-spark_4.2_2.13:4.4.0`` for Spark 4.2).
    """
    import pyspark  # noqa: PLC0415 (imported only when a session is built)

    delta_version = importlib.metadata.version("delta-spark")
    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{spark_minor}_2.13:{delta_version}"


def _manifest(ivy: Path, coordinate: str) -> Path:
    return ivy / f"coursekit-{coordinate.replace(':', '_')}.jars"


def _cached_jars(ivy: Path, coordinate: str) -> list[str] | None:
    manifest = _manifest(ivy, coordinate)
    if not manifest.is_file():
        return None
    jars = [line for line in manifest.read_text().splitlines() if line.strip()]
    if not jars or not all(Path(j).is_file() for j in jars):
        return None
    return jars


@contextlib.contextmanager
def _jvm_output_to(log: Path | None) -> Generator[None]:
    """Point fds 1 and 2 at ``log`` while the JVM starts, so it inherits the log.

    The JVM writes to the file descriptors it inherits, which a Jupyter kernel
    forwards into the cell's output; its start-up chatter belongs in a log.
    """
    if log is None:
        yield
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with log.open("ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def jars_cached() -> bool:
    """True when the Delta jars were fetched before and start-up needs no resolver."""
    return _cached_jars(ivy_dir(), delta_coordinate()) is not None


def build_session(
    warehouse: Path,
    *,
    app_name: str = "coursekit",
    jvm_log: Path | None = None,
    dbfs_root: Path | None = None,
    java_options: list[str] | None = None,
    class_archive: bool = True,
) -> SparkSession:
    """Create (or return the running) local SparkSession with Delta Lake.

    With ``jvm_log`` the JVM's own output (Ivy resolution, log4j) goes to that file; with
    ``dbfs_root``, ``dbfs:/``, scheme-less paths, ``/Volumes`` and ``/mnt`` live in that
    directory (:func:`coursekit.runtime.paths.hadoop_conf`). ``java_options`` are added to
    the driver JVM's. With ``class_archive``, once the Delta jars are cached, the JVM maps
    the machine's class-data archive, made on first use (:mod:`coursekit.runtime.classdata`).
    """
    from pyspark.sql import SparkSession  # noqa: PLC0415

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Bind to loopback: no hostname lookups, nothing listening on other interfaces.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Spark starts its Python workers with `python3` from PATH unless told: this
    # interpreter is the one with the caller's packages (pandas for Arrow UDFs, mlflow).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    warehouse.mkdir(parents=True, exist_ok=True)
    conf = dict(LOCAL_CONF)
    if dbfs_root is not None:
        conf.update(hadoop_conf(dbfs_root))
    # A file: URI, so table locations stay local paths (not viewfs:// ones).
    conf["spark.sql.warehouse.dir"] = warehouse.resolve().as_uri()
    # A warm driver JVM of the run's pool (coursekit.runtime.drivers), when one is free
    # and this session asks for nothing a running JVM cannot give.
    leased = java_options is None and class_archive and drivers.attach()
    if leased:
        conf.update(drivers.worker_environment())
    else:
        conf.update(
            launch_conf(
                error_dir=jvm_log.parent if jvm_log is not None else None,
                java_options=java_options,
                class_archive=class_archive,
            )
        )
    builder = SparkSession.builder.master(MASTER).appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    jars = conf.get("spark.jars")
    try:
        with _jvm_output_to(jvm_log):
            spark = builder.getOrCreate()
    except Exception as exc:
        # The JVM's own explanation (an unresolved jar, a bad Java) is in its log.
        tail = ""
        if jvm_log is not None and jvm_log.is_file():
            lines = jvm_log.read_text(errors="replace").splitlines()
            tail = f"\n--- last lines of {jvm_log} ---\n" + "\n".join(lines[-25:])
        raise RuntimeError(f"local Spark did not start: {exc}{tail}") from exc
    spark.sparkContext.setLogLevel("ERROR")
    if jars is None and not leased:
        _record_jars(spark, ivy_dir(), delta_coordinate())
    return spark


def launch_conf(
    *,
    error_dir: Path | None = None,
    java_options: list[str] | None = None,
    class_archive: bool = True,
) -> dict[str, str]:
    """The settings a driver JVM takes when it starts: memory, JVM options, Delta's jars.

    One source for the JVM a session starts itself (:func:`build_session`) and the warm
    drivers of a run's pool (:mod:`coursekit.runtime.drivers`). ``error_dir`` receives a
    crashing JVM's report; with ``class_archive``, once the jars are cached, the JVM maps
    the machine's class-data archive (:mod:`coursekit.runtime.classdata`).
    """
    _java()  # a clear error when there is no Java at all
    ivy = ivy_dir()
    coordinate = delta_coordinate()
    jars = _cached_jars(ivy, coordinate)
    archive_id = archive_key() if class_archive else None
    archive = classdata.ensure(archive_id) if archive_id is not None else None
    log4j = Path(__file__).with_name("log4j2.properties")
    options = [
        f"-Dlog4j2.configurationFile={log4j.as_uri()}",
        *_jvm_options(),
        *(java_options or []),
    ]
    if archive is not None:
        options.append(f"-XX:SharedArchiveFile={archive}")
    if error_dir is not None:
        # A JVM that dies writes its crash report next to its log, not into the cwd.
        options.append(f"-XX:ErrorFile={error_dir / 'hs_err_pid%p.log'}")
    conf = {
        "spark.driver.memory": LOCAL_CONF["spark.driver.memory"],
        "spark.driver.extraJavaOptions": " ".join(options),
        "spark.jars.ivy": str(ivy),
    }
    if jars is not None:
        conf["spark.jars"] = ",".join(jars)
    else:
        conf["spark.jars.packages"] = coordinate
    return conf


def _jvm_options() -> list[str]:
    return [*JVM_OPTIONS, *os.environ.get("COURSEKIT_JVM_OPTS", "").split()]


def archive_key() -> str | None:
    """The class-data archive key of the sessions this environment starts (None: no jars yet)."""
    jars = _cached_jars(ivy_dir(), delta_coordinate())
    if jars is None:
        return None
    settings = [LOCAL_CONF["spark.driver.memory"], *_jvm_options()]
    return classdata.archive_key(_java(), jars, settings)


def _java() -> str:
    """The java executable spark-submit starts: $JAVA_HOME's, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise RuntimeError(
            "local Spark needs a Java 17 runtime: no `java` on PATH and JAVA_HOME is not set"
        )
    return found


def _record_jars(spark: SparkSession, ivy: Path, coordinate: str) -> None:
    """Remember the jars the resolver fetched, for offline starts later."""
    resolved = spark.sparkContext.getConf().get("spark.jars", "") or ""
    jars = [j.removeprefix("file://").removeprefix("file:") for j in resolved.split(",") if j]
    if jars and all(Path(j).is_file() for j in jars):
        _manifest(ivy, coordinate).write_text("\n".join(jars) + "\n")
