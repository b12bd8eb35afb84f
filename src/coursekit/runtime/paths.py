"""Where Databricks paths live locally: one root per run, for Spark, dbutils and Python.

A Databricks notebook names files in several ways that all reach DBFS or a Unity
Catalog volume:

==========================  ===================================  ==========================
path form                   on Databricks                        locally (``D`` = run's DBFS)
==========================  ===================================  ==========================
``dbfs:/x``, Spark ``/x``   DBFS (Spark's default file system)   ``D/x``
``/Volumes/c/s/v/x``        a Unity Catalog volume               ``D/Volumes/c/s/v/x``
``/mnt/x``                  a DBFS mount                         ``D/mnt/x``
Python ``/dbfs/x``          DBFS through its FUSE mount          ``D/x``
``file:/dbfs/x``            the same FUSE mount                  ``D/x``
``file:/tmp/x``, ``/tmp``   the driver's local disk              the host's ``/tmp/x``
==========================  ===================================  ==========================

so every Databricks-named path lands inside the run's root, whichever API names it.
Paths that name the driver's own disk (``file:`` URIs outside those prefixes, plain
Python paths outside ``/dbfs``, ``/Volumes`` and ``/mnt``) are the host's local disk,
as they are the driver's on Databricks.

The JVM side is Hadoop configuration (:func:`hadoop_conf`): a view file system is
Spark's default file system with the run's DBFS as its fallback, and the ``dbfs``
scheme is the same view. The Python side (:func:`confine_python`) patches the
functions of :mod:`builtins`, :mod:`io`, :mod:`os` that take a path, so that
``open``, :mod:`pathlib`, :mod:`shutil`, :mod:`glob` and pandas see the mapped path,
and installs an audit hook that refuses any Databricks path that reached the
interpreter some other way. Code that opens files outside the Python interpreter
(a subprocess, ``%sh``, a C++ library such as pyarrow's own file system) sees the
host's paths: :func:`confine_python` cannot reach it, and the audit hook cannot see it.
"""

from __future__ import annotations

import builtins
import functools
import io
import os
import posixpath
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Python paths under these prefixes are Databricks paths: "/dbfs" is DBFS itself,
# the others keep their name under the DBFS root.
_FUSE = "/dbfs"
_KEPT = ("/Volumes", "/mnt")


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def is_databricks_path(path: str) -> bool:
    """True for an absolute POSIX path that names DBFS or a volume (``/dbfs``, ...)."""
    clean = posixpath.normpath(path) if path.startswith("/") else ""
    return any(_under(clean, p) for p in (_FUSE, *_KEPT))


def python_path(path: str, dbfs_root: Path, keep: tuple[str, ...] = ()) -> str:
    """The local file behind a path plain Python opens (unchanged when not Databricks').

    The path is normalised first, so ``/dbfs/../etc`` is ``/etc`` (the host's, as on
    Databricks) and no ``..`` can climb out of the root. Paths inside ``keep`` (the
    run's root, the project, the interpreter: on WSL a checkout often lives under
    ``/mnt/c``) are the host's own and stay as they are.
    """
    if not path.startswith("/"):
        return path
    clean = posixpath.normpath(path)
    # POSIX keeps a leading "//" through normpath; it means "/" here.
    clean = "/" + clean.lstrip("/")
    if any(_under(clean, k) for k in keep):
        return path
    if _under(clean, _FUSE):
        rest = clean[len(_FUSE) :].lstrip("/")
        return str(dbfs_root / rest) if rest else str(dbfs_root)
    for prefix in _KEPT:
        if _under(clean, prefix):
            return str(dbfs_root / clean.lstrip("/"))
    return path


def spark_path(path: str) -> str:
    """A path for Spark, with ``file:`` URIs of Databricks prefixes put back on DBFS.

    ``file:/dbfs/x`` is ``dbfs:/x`` and ``file:/mnt/x`` is ``/mnt/x`` on Databricks; the
    JVM's ``file`` scheme is the host's disk, so these are rewritten before Spark sees
    them. Every other path is returned unchanged (``dbfs:`` and scheme-less paths are
    mapped by the Hadoop configuration).
    """
    match = re.match(r"^file:(/+)(.*)$", path)
    if not match:
        return path
    local = "/" + match.group(2)
    if not is_databricks_path(local):
        return path
    clean = posixpath.normpath(local)
    if _under(clean, _FUSE):
        return "dbfs:/" + clean[len(_FUSE) :].lstrip("/")
    return clean


_SQL_FILE_URI = re.compile(r"(?<=['\"`])file:/+(?=(?:dbfs|Volumes|mnt)(?:/|['\"`]))")


def spark_sql_paths(statement: str) -> str:
    """Rewrite quoted ``file:/dbfs/...``, ``file:/Volumes/...``, ``file:/mnt/...`` in SQL."""

    def fix(m: re.Match[str]) -> str:
        return "/"

    rewritten = _SQL_FILE_URI.sub(fix, statement)
    # "file:/dbfs/x" became "/dbfs/x": on DBFS that is dbfs:/x.
    return re.sub(r"(?<=['\"`])/dbfs(?=/|['\"`])", "dbfs:", rewritten)


def hadoop_conf(dbfs_root: Path) -> dict[str, str]:
    """Spark settings that put DBFS, ``/Volumes`` and ``/mnt`` under ``dbfs_root``.

    Spark's default file system becomes a Hadoop view file system whose fallback is the
    run's DBFS, so a path without a scheme (``/mnt/x``, ``/tmp/x``, ``/Volumes/...``)
    lands there, as it lands on DBFS on Databricks; the ``dbfs`` scheme is overloaded
    with the same view (its mount table is the view file system's default one). A
    ``file:`` URI stays the host's disk. Table locations in the warehouse are ``file:``
    URIs, so they are untouched.
    """
    root = dbfs_root.resolve()
    (root / "Volumes").mkdir(parents=True, exist_ok=True)
    view = "spark.hadoop.fs.viewfs.mounttable"
    return {
        "spark.hadoop.fs.defaultFS": "viewfs://coursekit/",
        # A view needs one link; /Volumes is the one Databricks names most.
        f"{view}.coursekit.link./Volumes": (root / "Volumes").as_uri(),
        f"{view}.coursekit.linkFallback": root.as_uri(),
        "spark.hadoop.fs.dbfs.impl": "org.apache.hadoop.fs.viewfs.ViewFileSystemOverloadScheme",
        f"{view}.default.link./Volumes": (root / "Volumes").as_uri(),
        f"{view}.default.linkFallback": root.as_uri(),
        "spark.hadoop.fs.viewfs.overload.scheme.target.file.impl": (
            "org.apache.hadoop.fs.LocalFileSystem"
        ),
        # Delta picks how it commits by scheme; both views are the local disk underneath,
        # where LocalLogStore's rename-based commit is the right one (HDFSLogStore, the
        # default for unknown schemes, needs a FileContext the dbfs scheme lacks).
        "spark.delta.logStore.dbfs.impl": "io.delta.storage.LocalLogStore",
        "spark.delta.logStore.viewfs.impl": "io.delta.storage.LocalLogStore",
        # Python UDFs run in processes forked from a daemon, which confines them too.
        "spark.python.daemon.module": "coursekit.runtime.daemon",
    }


# ------------------------------------------------------------------- plain Python

# The path-taking functions patched, with the positions of their path arguments.
_OS_ONE_PATH = (
    "stat", "lstat", "listdir", "scandir", "mkdir", "rmdir", "remove", "unlink", "chmod",
    "utime", "access", "readlink", "truncate", "chdir", "open",
)  # fmt: skip
_OS_TWO_PATHS = ("rename", "replace", "link", "symlink")
# Audit events whose first two arguments may be paths. shutil's own events are raised
# before it calls os and open (which map), so they are not among them.
_AUDITED = frozenset(
    {
        "open", "os.listdir", "os.scandir", "os.mkdir", "os.rmdir", "os.remove", "os.rename",
        "os.chmod", "os.utime", "os.truncate", "os.chdir", "os.symlink", "os.link",
    }
)  # fmt: skip
_state: dict[str, Any] = {}


def _mapper(dbfs_root: Path, keep: tuple[str, ...]) -> Callable[[Any], Any]:
    def mapped(path: Any) -> Any:
        if isinstance(path, int):
            return path
        try:
            raw = os.fspath(path)
        except TypeError:
            return path
        if isinstance(raw, bytes):
            text = os.fsdecode(raw)
            out = python_path(text, dbfs_root, keep)
            return path if out == text else os.fsencode(out)
        out = python_path(raw, dbfs_root, keep)
        return path if out == raw else out

    return mapped


def _wrap(func: Callable[..., Any], mapped: Callable[[Any], Any], count: int) -> Any:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if args:
            args = tuple(mapped(a) if i < count else a for i, a in enumerate(args))
        for key in ("file", "path", "src", "dst"):
            if key in kwargs:
                kwargs[key] = mapped(kwargs[key])
        return func(*args, **kwargs)

    wrapper.__coursekit_original__ = func  # ty: ignore[missing-attribute]
    return wrapper


# Modules whose names for the originals must stay (the wrappers' own home, the
# C modules the originals come from).
_NOT_REBOUND = frozenset({"builtins", "io", "_io", "os", "posix", "nt", __name__})


def _rebind_imported(patched: dict[Any, Any]) -> None:
    """Point names that modules imported before patching (``from os import listdir``,
    IPython's ``from io import open as io_open``) at the wrappers too."""
    for name, module in list(sys.modules.items()):
        if name in _NOT_REBOUND or module is None:
            continue
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            try:
                wrapper = patched.get(value)
            except (TypeError, ValueError):  # an unhashable module attribute
                continue
            if wrapper is not None:
                namespace[attr] = wrapper
            elif callable(value) and type(value).__name__ == "function":
                # A decorator's __wrapped__ (IPython's open wraps io.open): pickling the
                # function (a Spark UDF that calls open) would look the original up as
                # io.open, find the wrapper, and refuse.
                inner = value.__dict__.get("__wrapped__")
                try:
                    replacement = patched.get(inner)
                except (TypeError, ValueError):
                    continue
                if replacement is not None:
                    value.__wrapped__ = replacement


def confine_python(dbfs_root: Path, keep: tuple[Path, ...] = ()) -> None:
    """Map plain Python's ``/dbfs``, ``/Volumes`` and ``/mnt`` paths under ``dbfs_root``.

    Idempotent per process; a second call with another root is an error (one root per
    kernel). After it, ``open("/dbfs/x")``, ``Path("/Volumes/c/s/v/f").read_text()``,
    ``os.listdir("/mnt/raw")`` and ``shutil.copy`` use the run's DBFS, and an attempt
    to reach such a path without the mapping raises :class:`PermissionError`. Paths
    inside ``keep`` (and the root itself, and the interpreter's prefixes) are never
    mapped.
    """
    root = Path(dbfs_root).resolve()
    if "root" in _state:
        if _state["root"] != root:
            raise RuntimeError(f"Python paths are already confined to {_state['root']}")
        return
    root.mkdir(parents=True, exist_ok=True)
    kept = tuple(
        dict.fromkeys(str(Path(p).resolve()) for p in (root, *keep, sys.prefix, sys.base_prefix))
    )
    mapped = _mapper(root, kept)
    builtins.open = _wrap(builtins.open, mapped, 1)
    io.open = builtins.open
    patched = {}
    for names, count in ((_OS_ONE_PATH, 1), (_OS_TWO_PATHS, 2)):
        for name in names:
            original = getattr(os, name)
            patched[original] = _wrap(original, mapped, count)
            setattr(os, name, patched[original])
    _rebind_imported(patched | {builtins.open.__coursekit_original__: builtins.open})
    # Libraries ask these sets whether a function takes a descriptor or follow_symlinks.
    for capability in (os.supports_fd, os.supports_dir_fd, os.supports_follow_symlinks):
        capability.update(patched[f] for f in list(capability) if f in patched)
    _state["root"] = root

    def audit(event: str, args: tuple[Any, ...]) -> None:
        if event not in _AUDITED:
            return
        for arg in args[:2]:
            path = os.fsdecode(arg) if isinstance(arg, bytes) else arg
            if (
                isinstance(path, str)
                and is_databricks_path(path)
                and not any(_under(posixpath.normpath(path), k) for k in kept)
            ):
                raise PermissionError(
                    f"{event}({path!r}) reached the interpreter without the local runtime's "
                    f"path mapping; Databricks paths live under {root} (open, os, pathlib "
                    "and shutil map them)"
                )

    sys.addaudithook(audit)


def confined_root() -> Path | None:
    """The root :func:`confine_python` mapped this process's paths to, if any."""
    return _state.get("root")
