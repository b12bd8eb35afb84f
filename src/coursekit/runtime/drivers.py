"""Warm Spark driver JVMs shared by the notebooks of one run, as a cluster is shared.

On Databricks a notebook or a job task attaches to a running cluster: its driver JVM
started once, and every notebook after the first finds its classes loaded and its hot
code compiled. Locally each kernel used to start its own JVM, and that start-up is most
of a short notebook's time: the same Delta write, read, MERGE and aggregation took
18.1 s in a fresh JVM and 6.4-6.9 s in one that had run them before (2026-12-06, 2-core
Xeon, busy).

So the executor (``python -m coursekit.run``) starts a few driver JVMs for a run
(:class:`DriverPool`) and names their directory in ``$COURSEKIT_DRIVER_POOL``. A kernel
whose first cell uses ``spark`` leases a free one (:func:`attach`): it stops whatever
the previous lessee left in that JVM (its SparkContext, the file systems Hadoop caches
across contexts, Delta's table-log cache), then starts its own SparkContext there. Its
session, catalog, warehouse, DBFS and settings are its own, as in a fresh JVM; what it
shares with earlier notebooks is loaded classes and compiled code. A lease is an
exclusive lock (``flock``) on the driver's lock file, held until the kernel exits, so a
driver serves one kernel at a time, and a kernel that dies frees it. With no free driver
(or no pool: a notebook run alone, a kernel opened by hand) the kernel starts its own JVM,
as before.

Processes started from a leased kernel (a job's tasks under ``batuta run``) inherit
``$COURSEKIT_DRIVER_POOL`` and lease the other drivers; the pool has one more driver
than the run has concurrent notebooks for them.

Spark's Python workers take their environment from the JVM, which here was started by
the executor, not by the kernel. :func:`worker_environment` hands them the kernel's own
variables (the DBFS root they are confined to, MLflow's tracking URI) through
``spark.executorEnv.*``, which PySpark passes to every worker it starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import threading
from collections.abc import Generator
from pathlib import Path
from typing import IO, Any

POOL_VARIABLE = "COURSEKIT_DRIVER_POOL"
# The variables PySpark reads to attach to a running JVM instead of starting one.
_GATEWAY_VARIABLES = ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET")
# Never handed to Python workers: the lease's gateway, Jupyter's own plumbing.
_NOT_FOR_WORKERS = (*_GATEWAY_VARIABLES, "_PYSPARK_DRIVER_CONN_INFO_PATH", "JPY_PARENT_PID")

# This process's lease: the open, locked lock file (closing it releases the driver),
# and the driver's number in the pool.
_LEASE: IO[str] | None = None
_LEASED: str | None = None


class DriverPool:
    """``size`` driver JVMs in ``directory``, started by :meth:`start`, ended by :meth:`close`.

    Each driver ``i`` is announced by ``driver-<i>.json`` (its gateway's port and
    secret; readable by this user only) once it accepts connections, and leased through
    ``driver-<i>.lock``. A driver JVM ends when this process closes its standard input
    (PySpark's gateway exits on end of input), so it never outlives the run.
    """

    def __init__(self, directory: Path, size: int) -> None:
        if size < 1:
            raise ValueError(f"a driver pool needs at least one driver, got size={size}")
        self.directory = directory
        self.size = size
        self._procs: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()

    def start(self) -> int:
        """Start the drivers side by side; the number that started (failures are logged)."""
        from coursekit.runtime.session import jars_cached  # noqa: PLC0415 (imports pyspark)

        if not jars_cached():
            # The first JVM of a machine resolves Delta's jars; two at once could corrupt
            # the shared Ivy cache, so kernels start their own until the jars are cached.
            return 0
        from coursekit.runtime.session import launch_conf  # noqa: PLC0415

        self.directory.mkdir(parents=True, exist_ok=True)
        # Once, not per thread: it may start the class-data archive's training run.
        try:
            settings = launch_conf()
            launch = launch_conf(error_dir=self.directory)
        except RuntimeError as exc:  # no Java: a kernel that uses Spark says so itself
            print(f"coursekit: no warm driver JVMs: {exc}", file=sys.stderr)
            return 0
        threads = [
            threading.Thread(target=self._start_one, args=(i, settings, launch))
            for i in range(self.size)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if len(self._procs) < self.size:
            # Not fatal (kernels without a driver start their own JVM), but not silent.
            print(
                f"coursekit: {len(self._procs)} of {self.size} warm driver JVMs started; "
                f"why the others did not is in {self.directory}/driver-*.jvm.log",
                file=sys.stderr,
            )
        return len(self._procs)

    def _start_one(self, index: int, settings: dict[str, str], launch: dict[str, str]) -> None:
        """Start driver ``index`` with ``launch``; announce it with ``settings`` to match."""
        from pyspark import SparkConf  # noqa: PLC0415
        from pyspark.java_gateway import launch_gateway  # noqa: PLC0415

        from coursekit.runtime.session import MASTER  # noqa: PLC0415

        log_path = self.directory / f"driver-{index}.jvm.log"
        try:
            conf = SparkConf(loadDefaults=False).setMaster(MASTER)
            conf.setAll(list(launch.items()))
            with log_path.open("ab") as log:
                gateway = launch_gateway(conf, popen_kwargs={"stdout": log, "stderr": log})
            params = gateway.java_parameters if hasattr(gateway, "java_parameters") else None
            params = params or gateway.gateway_parameters
            port, secret = params.port, params.auth_token
            gateway.close()
        except Exception as exc:
            with log_path.open("a") as log:
                print(f"driver {index} did not start: {exc!r}", file=log)
            return
        proc = gateway.proc
        with self._lock:
            self._procs.append(proc)
        (self.directory / f"driver-{index}.lock").touch()
        announce = self.directory / f"driver-{index}.json"
        tmp = announce.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"port": port, "secret": secret, "pid": proc.pid, "launch": settings}, f)
        tmp.replace(announce)

    def environment(self) -> dict[str, str]:
        """What a kernel needs in its environment to lease these drivers."""
        return {POOL_VARIABLE: str(self.directory)} if self._procs else {}

    def close(self) -> None:
        """End every driver: close its input, then wait for it (killed after 30 s)."""
        for announce in self.directory.glob("driver-*.json"):
            announce.unlink(missing_ok=True)
        for proc in self._procs:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
        for proc in self._procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()

    def __enter__(self) -> DriverPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lease(launch: dict[str, str] | None = None) -> tuple[IO[str], dict[str, Any]] | None:
    """Lock a free, live driver of ``$COURSEKIT_DRIVER_POOL``: its lock file and details.

    With ``launch``, only a driver started with exactly those settings
    (:func:`coursekit.runtime.session.launch_conf`) is taken: a kernel asking for other
    JVM options (``$COURSEKIT_JVM_OPTS``) or other jars starts its own JVM.
    """
    directory = os.environ.get(POOL_VARIABLE)
    if not directory:
        return None
    for announce in sorted(Path(directory).glob("driver-*.json")):
        try:
            lock = announce.with_suffix(".lock").open("a")
        except OSError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            info = json.loads(announce.read_text())
            port, secret, pid = int(info["port"]), str(info["secret"]), int(info["pid"])
            if launch is not None and _comparable(info.get("launch")) != _comparable(launch):
                raise ValueError("started with other settings")
            os.kill(pid, 0)  # still running?
        except (OSError, ValueError, KeyError, TypeError):
            lock.close()  # busy, gone, or not a driver's file: the next one
            continue
        name = announce.stem.removeprefix("driver-")
        return lock, {"port": port, "secret": secret, "pid": pid, "name": name}
    return None


def _comparable(settings: object) -> object:
    """Launch settings without what changes only how fast a JVM starts or where it logs.

    The class-data archive is made in the background by the first session of a machine,
    so a pool started before it exists would otherwise never match a kernel started after.
    """
    if not isinstance(settings, dict):
        return settings
    options = str(settings.get("spark.driver.extraJavaOptions", "")).split()
    kept = [o for o in options if not o.startswith(("-XX:SharedArchiveFile=", "-XX:ErrorFile="))]
    return {**settings, "spark.driver.extraJavaOptions": " ".join(kept)}


def leased() -> str | None:
    """The pool driver this process runs Spark on (its number), or None (its own JVM)."""
    return _LEASED


def attach() -> bool:
    """Make PySpark's next SparkContext start in a leased warm driver; False: none free.

    The driver is first cleared of what an earlier lessee left: a SparkContext still
    running (its kernel died or never stopped it), the file systems Hadoop caches per
    JVM (a ``viewfs://`` DBFS keeps the mount table it was created with, so a cached one
    would point at the earlier notebook's DBFS root), Delta's cache of table logs, and
    the active and default sessions.
    """
    global _LEASE, _LEASED
    from pyspark import SparkContext  # noqa: PLC0415

    if SparkContext._gateway is not None:  # this kernel already has its JVM
        return _LEASE is not None
    if not os.environ.get(POOL_VARIABLE):
        return False
    from coursekit.runtime.session import launch_conf  # noqa: PLC0415 (a cycle otherwise)

    leased = _lease(launch_conf())
    if leased is None:
        return False
    lock, info = leased
    from pyspark.java_gateway import launch_gateway  # noqa: PLC0415

    gateway_variables = dict(
        zip(_GATEWAY_VARIABLES, (str(info["port"]), info["secret"]), strict=True)
    )
    try:
        # Set only while PySpark connects: this kernel's children (a job's tasks) must
        # lease a driver of their own, not attach to this one.
        with environment(gateway_variables):
            gateway = launch_gateway()
        jvm = gateway.jvm
        context = jvm.java.lang.Class.forName("org.apache.spark.SparkContext$")
        running = context.getField("MODULE$").get(None).getActive()
        if running.isDefined():
            running.get().stop()
        jvm.org.apache.spark.sql.SparkSession.clearActiveSession()
        jvm.org.apache.spark.sql.SparkSession.clearDefaultSession()
        jvm.org.apache.hadoop.fs.FileSystem.closeAll()
        jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    except Exception as exc:
        print(
            f"coursekit: warm driver {info['pid']} unusable ({exc}); starting a JVM",
            file=sys.stderr,
        )
        lock.close()
        return False
    SparkContext._gateway = gateway
    SparkContext._jvm = gateway.jvm
    _LEASE, _LEASED = lock, info["name"]
    return True


@contextlib.contextmanager
def environment(variables: dict[str, str]) -> Generator[None]:
    """``os.environ`` with ``variables`` set (processes started meanwhile inherit them),
    restored afterwards."""
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def worker_environment() -> dict[str, str]:
    """``spark.executorEnv.*`` settings giving Python workers this process's environment.

    Only the variables whose value differs from the driver JVM's own are passed: the
    rest the workers inherit from the JVM anyway.
    """
    from pyspark import SparkContext  # noqa: PLC0415

    jvm = SparkContext._jvm
    if jvm is None:
        return {}
    theirs = dict(jvm.java.lang.System.getenv())
    return {
        f"spark.executorEnv.{key}": value
        for key, value in os.environ.items()
        if key not in _NOT_FOR_WORKERS and theirs.get(key) != value
    }
