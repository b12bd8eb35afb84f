"""Spark's Python daemon with the notebook's path confinement: ``spark.python.daemon.module``.

A Python UDF runs in a worker process that Spark forks from its Python daemon, not in
the notebook's kernel, so the kernel's patched ``open`` does not reach it. The local
SparkSession names this module as its daemon (:func:`coursekit.runtime.paths.hadoop_conf`):
it confines the daemon's paths to the same DBFS root (``$COURSEKIT_DBFS_ROOT``, inherited
from the kernel through the JVM, like the MLflow tracking URI) and hands over to
PySpark's own daemon, whose forked workers inherit the confinement. (PySpark starts a
worker without the daemon only where it cannot fork, on Windows; those workers are not
confined.)
"""

from __future__ import annotations

import os
from pathlib import Path

from coursekit.runtime.paths import confine_python

ROOT_VARIABLE = "COURSEKIT_DBFS_ROOT"
KEEP_VARIABLE = "COURSEKIT_KEEP_PATHS"


def confine_from_environment() -> None:
    """Confine this process to ``$COURSEKIT_DBFS_ROOT`` when it is set."""
    root = os.environ.get(ROOT_VARIABLE)
    if root:
        keep = tuple(Path(p) for p in os.environ.get(KEEP_VARIABLE, "").split(os.pathsep) if p)
        confine_python(Path(root), keep=keep)


if __name__ == "__main__":
    confine_from_environment()
    from pyspark import daemon

    daemon.manager()
