"""The local Databricks runtime: what a notebook finds defined before its first cell.

On Databricks a notebook starts with ``spark``, ``dbutils``, ``display``,
``displayHTML``, ``table``, ``sql``, ``sc`` (classic compute), ``getArgument`` and the
``%sql``/``%sh``/``%run``/``%fs``/``%pip`` magics. :func:`setup` provides the same names
in a local Jupyter kernel, backed by real engines: a local SparkSession with Delta Lake,
a confined local DBFS that Spark, dbutils and plain Python all see
(:mod:`coursekit.runtime.paths`), secrets from the environment, and MLflow on a SQLite
store under ``build/``. :mod:`coursekit.runtime.compat` adds what Databricks adds to
PySpark (``df.display()``, the ``hive_metastore`` catalog name).

On Databricks (``DATABRICKS_RUNTIME_VERSION`` is set) :func:`setup` does nothing, so
the same notebook imports and runs there unchanged.

The executor (``python -m coursekit.run``) configures a run through environment
variables that the kernel inherits:

``COURSEKIT_NOTEBOOK``  path of the notebook being run (resolves ``%run`` and
                        ``dbutils.notebook.run`` paths)
``COURSEKIT_PARAMS``    JSON object of widget values (``--param k=v``)
``COURSEKIT_RUN_DIR``   the run's directory under ``build/`` (warehouse, DBFS root)

A job's orchestrator (``batuta run``) also sets ``COURSEKIT_TASK_KEY``: the tasks of one
job then share one warehouse and see each other's tables (:mod:`coursekit.runtime.catalog`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursekit import notebook as nbsrc
from coursekit.runtime import catalog, compat, drivers
from coursekit.runtime.dbutils import (
    DBUtils,
    FileInfo,
    NotebookApi,
    NotebookExit,
    RedactingStream,
    Secrets,
)
from coursekit.runtime.display import display, displayHTML
from coursekit.runtime.paths import confine_python

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
EXIT_MIME = "application/vnd.coursekit.exit+json"
# A cell the runtime did not execute (%scala, %r): the executor lists these.
SKIP_MIME = "application/vnd.coursekit.skipped+json"

__all__ = ["IS_DATABRICKS", "Runtime", "display", "displayHTML", "setup"]


def project_root(start: Path) -> Path:
    """The nearest directory at or above ``start`` holding pyproject.toml (else ``start``)."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / "pyproject.toml").is_file():
            return directory
    return start


def default_run_dir(root: Path) -> Path:
    return root / "build" / "runs" / time.strftime("%Y%m%d-%H%M%S") / f"pid{os.getpid()}"


@dataclass
class Runtime:
    """Everything :func:`setup` creates, kept so nested notebooks share it."""

    notebook: Path | None
    params: dict[str, str]
    run_dir: Path
    secrets: Secrets = field(default_factory=Secrets)
    spark: Any = None
    dbutils: DBUtils | None = None
    warehouse: Path | None = None
    # Builds the SparkSession on first use (see :class:`LazySpark`).
    builder: Callable[[], Any] | None = None
    # Notebook namespaces holding the stand-ins, given the real objects once Spark starts.
    namespaces: list[dict[str, Any]] = field(default_factory=list)
    _lazy: dict[str, Any] = field(default_factory=dict)

    def refresh_catalog(self) -> list[str]:
        """In a job task, register the tables other tasks saved (see :mod:`.catalog`)."""
        if self.spark is None or self.warehouse is None:
            return []
        return catalog.refresh(self.spark, self.warehouse, os.environ)

    def session(self) -> Any:
        """The SparkSession, started now if no cell has needed it yet."""
        if self.spark is None:
            if self.builder is None:
                raise RuntimeError("this runtime has no Spark session and cannot start one")
            with compat.building():
                self.spark = self.builder()
            found = self.refresh_catalog()
            shared = (
                f" (the job's, {len(found)} tables found)" if catalog.is_shared(os.environ) else ""
            )
            warm = drivers.leased()
            driver = f", on the run's warm driver JVM {warm}" if warm else ""
            print(
                f"coursekit local runtime: Spark {self.spark.version} with Delta Lake, "
                f"warehouse {self.warehouse}{shared}{driver}"
            )
            real = self._spark_globals(self.spark)
            for namespace in self.namespaces:
                for name, stand_in in self._lazy.items():
                    if namespace.get(name) is stand_in:
                        namespace[name] = real[name]
        return self.spark

    @staticmethod
    def _spark_globals(spark: Any) -> dict[str, Any]:
        return {
            "spark": spark,
            "table": spark.table,
            "sql": spark.sql,
            # Classic compute defines the SparkContext; serverless does not (course
            # notebooks avoid it, tests/coursekit/test_notebook.py checks).
            "sc": getattr(spark, "sparkContext", None),
        }

    def _stand_ins(self) -> dict[str, Any]:
        if not self._lazy:
            self._lazy = {
                "spark": LazySpark(self),
                "table": lambda *a, **k: self.session().table(*a, **k),
                "sql": lambda *a, **k: self.session().sql(*a, **k),
                "sc": LazySpark(self, "sparkContext"),
            }
        return self._lazy

    @property
    def base_dir(self) -> Path:
        return self.notebook.parent if self.notebook else Path.cwd()

    def make_dbutils(self, params: dict[str, str], notebook: Path | None) -> DBUtils:
        """A dbutils with ``params`` as widget values, resolving paths from ``notebook``."""
        base = notebook.parent if notebook else self.base_dir
        return DBUtils(
            params=params,
            fs_root=self.run_dir / "dbfs",
            secrets=self.secrets,
            notebook=NotebookApi(self.run_child, lambda: base),
        )

    def install_globals(self, namespace: dict[str, Any], dbutils: DBUtils) -> None:
        """Define the Databricks globals in ``namespace``; Spark's start on first use."""
        spark_globals = (
            self._spark_globals(self.spark) if self.spark is not None else self._stand_ins()
        )
        namespace.update(
            {
                **spark_globals,
                "dbutils": dbutils,
                "display": display,
                "displayHTML": displayHTML,
                "getArgument": dbutils.widgets.getArgument,
                "IS_DATABRICKS": False,
            }
        )
        if self.spark is None and all(namespace is not ns for ns in self.namespaces):
            self.namespaces.append(namespace)

    def run_included(self, args: str, base: Path, namespace: dict[str, Any]) -> None:
        """``%run ./other $x="1"``: the other notebook's cells in ``namespace``.

        With arguments the included notebook sees them as its widget values (through
        ``dbutils`` and ``getArgument``), as on Databricks; the caller's own widgets are
        back in place afterwards.
        """
        target, arguments = parse_run(args, base)
        if not arguments:
            self.execute_source(target, namespace)
            return
        saved = {k: namespace[k] for k in ("dbutils", "getArgument") if k in namespace}
        child = self.make_dbutils(arguments, target)
        namespace["dbutils"], namespace["getArgument"] = child, child.widgets.getArgument
        try:
            self.execute_source(target, namespace)
        finally:
            namespace.update(saved)

    # ------------------------------------------------------------ notebooks in process

    def run_child(self, path: Path, timeout_seconds: int, arguments: dict[str, str]) -> str | None:
        """``dbutils.notebook.run``: the child gets its own globals and widgets, shares Spark."""
        child_dbutils = self.make_dbutils(arguments, path)
        self.refresh_catalog()
        namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(path)}
        self.install_globals(namespace, child_dbutils)
        try:
            with _deadline(timeout_seconds, path):
                self.execute_source(path, namespace)
        except NotebookExit as done:
            return done.value
        return None

    def execute_source(self, path: Path, namespace: dict[str, Any]) -> None:
        """Run a Databricks source notebook's cells in ``namespace`` (``%run`` semantics)."""
        cells = nbsrc.read(path)
        for number, cell in enumerate(cells, 1):
            if cell.kind == nbsrc.MARKDOWN or not cell.source.strip():
                continue
            if cell.kind == nbsrc.FOREIGN:
                print(f"{path.name}: {nbsrc.skip_notice(cell, number)}")
            elif cell.kind == nbsrc.CODE:
                code = compile(cell.source, f"{path}, cell {number}", "exec")
                exec(code, namespace)
            elif cell.kind == nbsrc.SQL:
                run_sql(self.session(), cell.source, _widget_values(namespace), namespace)
            elif cell.kind == nbsrc.RUN:
                self.run_included(cell.source, path.parent, namespace)
            elif cell.kind == nbsrc.PIP:
                print(_pip_message(cell.source))
            elif cell.kind == nbsrc.SH:
                run_sh(cell.source, path.parent)
            elif cell.kind == nbsrc.FS:
                run_fs(namespace["dbutils"], cell.source)


class LazySpark:
    """``spark`` (or ``sc``) before a cell first uses it: the JVM starts then.

    Many lessons (tokenisation, prompts, retrieval over files) never touch Spark, and a
    JVM start costs seconds of CPU per notebook. The first attribute read builds the
    session (:meth:`Runtime.session`) and from then on every namespace holding this
    stand-in holds the real ``spark``, ``sc``, ``table`` and ``sql``, so ``isinstance``
    checks and libraries that take ``spark`` see a SparkSession from then on.
    ``SparkSession.builder.getOrCreate()`` and ``getActiveSession()`` in a cell start
    the same session (:func:`coursekit.runtime.compat.start_spark_with`).
    """

    def __init__(self, runtime: Runtime, attribute: str | None = None) -> None:
        object.__setattr__(self, "_runtime", runtime)
        object.__setattr__(self, "_attribute", attribute)

    def _target(self) -> Any:
        spark = self._runtime.session()
        return getattr(spark, self._attribute) if self._attribute else spark

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target(), name, value)

    def __repr__(self) -> str:
        what = self._attribute or "SparkSession"
        return f"<local {what}: Spark starts on first use>"


_RUNTIME: Runtime | None = None


def current() -> Runtime:
    """The runtime :func:`setup` created in this process."""
    if _RUNTIME is None:
        raise RuntimeError("coursekit.runtime.setup() has not run in this process")
    return _RUNTIME


def setup(namespace: dict[str, Any], *, params: dict[str, str] | None = None) -> None:
    """Define the Databricks globals in ``namespace`` (a notebook's ``globals()``).

    Does nothing on Databricks. ``params`` overrides ``$COURSEKIT_PARAMS``.
    """
    global _RUNTIME  # noqa: PLW0603 (one runtime per kernel process)
    if IS_DATABRICKS:
        return
    if not isinstance(namespace, dict):
        raise TypeError(f"setup takes a notebook's globals() dict, got {type(namespace).__name__}")
    if _RUNTIME is not None:
        # Twice in one kernel (the "Databricks (local)" kernel ran it at start-up and the
        # paired .ipynb's first cell runs it again): the same runtime, the same globals.
        _RUNTIME.refresh_catalog()
        _RUNTIME.install_globals(namespace, _RUNTIME.dbutils or _RUNTIME.make_dbutils({}, None))
        return
    nb_env = os.environ.get("COURSEKIT_NOTEBOOK")
    notebook = Path(nb_env).resolve() if nb_env else None
    root = project_root(notebook.parent if notebook else Path.cwd())
    if params is None:
        params = _params_from_env()
    run_dir = Path(os.environ.get("COURSEKIT_RUN_DIR") or default_run_dir(root))
    # Two notebooks of one run may share a file name (a demo and a lab solution).
    name = (
        f"{notebook.stem}-{hashlib.sha1(bytes(notebook)).hexdigest()[:6]}"
        if notebook
        else "interactive"
    )

    _configure_mlflow(root)
    # Spark's Python workers inherit the JVM's environment, which is this one: they
    # find the same MLflow store and confine their paths to the same DBFS
    # (coursekit.runtime.daemon).
    # Spark starts them with `python3` from PATH unless told: the kernel's own interpreter
    # is the one with the notebook's packages (mlflow, pandas, coursekit).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ["COURSEKIT_DBFS_ROOT"] = str(run_dir / "dbfs")
    os.environ["COURSEKIT_KEEP_PATHS"] = str(root)
    # PySpark logs each failed query as a JSON line on stderr; the exception already
    # says it all, and the notebook shows it.
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    from coursekit.runtime.session import build_session  # noqa: PLC0415 (starts the JVM)

    # A job's tasks share the run's warehouse; an independent notebook has its own.
    warehouse = catalog.warehouse_dir(run_dir, name, os.environ)
    runtime = Runtime(notebook=notebook, params=params, run_dir=run_dir, warehouse=warehouse)
    runtime.builder = lambda: build_session(
        warehouse,
        app_name=name,
        jvm_log=run_dir / "logs" / f"{name}.jvm.log",
        # dbutils.fs, Spark and plain Python see the same DBFS, /Volumes and /mnt.
        dbfs_root=run_dir / "dbfs",
    )
    compat.install(display)
    compat.start_spark_with(runtime.session)
    confine_python(run_dir / "dbfs", keep=(root,))
    print(
        "coursekit local runtime: Spark with Delta Lake starts when a cell first uses it, "
        f"warehouse {warehouse}"
    )
    runtime.dbutils = runtime.make_dbutils(params, notebook)
    runtime.install_globals(namespace, runtime.dbutils)
    _RUNTIME = runtime
    _install_redaction(runtime.secrets)
    _install_ipython(runtime)


def _params_from_env() -> dict[str, str]:
    raw = os.environ.get("COURSEKIT_PARAMS", "")
    if not raw:
        return {}
    params = json.loads(raw)
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        raise ValueError(f"COURSEKIT_PARAMS must be a JSON object of strings, got {raw!r}")
    return params


def _configure_mlflow(root: Path) -> None:
    """MLflow tracking and registry on SQLite under build/, unless the user chose a server."""
    if "MLFLOW_TRACKING_URI" in os.environ:
        return
    store = root / "build" / "mlflow"
    store.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ.setdefault("MLFLOW_REGISTRY_URI", uri)
    # With a SQLite store, MLflow (3.17, pinned) puts artifacts under ./mlruns of the
    # working directory, i.e. beside the notebook, unless this variable names a root.
    os.environ.setdefault("_MLFLOW_SERVER_ARTIFACT_ROOT", (store / "artifacts").as_uri())
    _create_mlflow_store(store, uri)


def _create_mlflow_store(store: Path, uri: str) -> None:
    """Create the SQLite store's tables once, before any notebook of the run uses it.

    Notebooks run side by side, and MLflow creates its tables on first use: two kernels
    reaching a new store at once both ran ``CREATE TABLE`` and one failed ("table jobs
    already exists"). Under an exclusive lock the first creates them and leaves a marker;
    the others wait, then find the marker.
    """
    import fcntl  # noqa: PLC0415 (POSIX; the local runtime runs on Linux and macOS)

    ready = store / "mlflow.db.ready"
    with (store / "mlflow.db.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.is_file() and (store / "mlflow.db").is_file():
            return
        try:
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore  # noqa: PLC0415
        except ImportError:  # no MLflow in this environment: nothing will use the store
            return
        SqlAlchemyStore(uri, os.environ["_MLFLOW_SERVER_ARTIFACT_ROOT"])
        ready.write_text("tables created\n")


def _install_redaction(secrets: Secrets) -> None:
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout, secrets)
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr, secrets)


# ---------------------------------------------------------------------------- magics


def _widget_values(namespace: dict[str, Any]) -> dict[str, str]:
    dbutils = namespace.get("dbutils")
    return dbutils.widgets.getAll() if isinstance(dbutils, DBUtils) else {}


def split_sql(text: str) -> list[str]:
    """Split a SQL cell into statements on ``;`` outside quotes and comments."""
    statements, current, i, quote = [], [], 0, ""
    while i < len(text):
        ch = text[i]
        if quote:
            current.append(ch)
            if ch == "\\" and i + 1 < len(text):
                current.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
            current.append(ch)
        elif text.startswith("--", i):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            current.append(text[i:end])
            i = end
            continue
        elif ch == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if _strip_sql_comments(s).strip()]


def _strip_sql_comments(statement: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in statement.splitlines())


def sql_literal(value: str) -> str:
    """A Spark SQL string literal holding ``value``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def bind_widgets(statement: str, widgets: dict[str, str]) -> str:
    """Replace named parameter markers (``:name``) by widget values as SQL literals.

    Databricks SQL binds widget values to ``:name`` markers, so ``IDENTIFIER(:schema)``
    names a schema chosen by a widget. Markers inside quotes, backticks and ``--``
    comments are left alone, as are ``::`` casts and names no widget defines.
    """
    out: list[str] = []
    i, n = 0, len(statement)
    while i < n:
        ch = statement[i]
        if ch in "'\"`":
            j = i + 1
            while j < n and statement[j] != ch:
                j += 2 if statement[j] == "\\" else 1
            out.append(statement[i : j + 1])
            i = j + 1
        elif statement.startswith("--", i):
            j = statement.find("\n", i)
            j = n if j < 0 else j
            out.append(statement[i:j])
            i = j
        elif ch == ":" and (i == 0 or not (statement[i - 1].isalnum() or statement[i - 1] in "_:")):
            j = i + 1
            while j < n and (statement[j].isalnum() or statement[j] == "_"):
                j += 1
            name = statement[i + 1 : j]
            if name and not name[0].isdigit() and name in widgets:
                out.append(sql_literal(widgets[name]))
            else:
                out.append(statement[i:j])
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


_WIDGET_VALUE = r"(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
_CREATE_WIDGET = re.compile(
    r"^CREATE\s+WIDGET\s+(TEXT|DROPDOWN|COMBOBOX|MULTISELECT)\s+(`[^`]+`|\w+)\s+"
    rf"DEFAULT\s+({_WIDGET_VALUE})(?:\s+CHOICES\s+(.+))?$",
    re.IGNORECASE | re.DOTALL,
)
_REMOVE_WIDGET = re.compile(r"^REMOVE\s+WIDGET\s+(`[^`]+`|\w+)$", re.IGNORECASE)


def _sql_string(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def widget_statement(spark: Any, statement: str, dbutils: DBUtils) -> bool:
    """Run ``CREATE WIDGET ...`` / ``REMOVE WIDGET ...``; False for any other statement.

    ``CREATE WIDGET DROPDOWN d DEFAULT "a" CHOICES SELECT ...`` takes its choices from
    the query's first column, as Databricks SQL does.
    """
    if match := _CREATE_WIDGET.match(statement.strip()):
        kind, name, default, query = match.groups()
        name, default = name.strip("`"), _sql_string(default)
        if kind.upper() == "TEXT":
            if query:
                raise ValueError(f"a TEXT widget takes no CHOICES: {statement!r}")
            dbutils.widgets.text(name, default)
            return True
        if not query:
            raise ValueError(f"a {kind.upper()} widget needs CHOICES SELECT ...: {statement!r}")
        choices = [str(row[0]) for row in spark.sql(query).collect()]
        getattr(dbutils.widgets, kind.lower())(name, default, choices)
        return True
    if match := _REMOVE_WIDGET.match(statement.strip()):
        dbutils.widgets.remove(match.group(1).strip("`"))
        return True
    return False


def substitute_widgets(statement: str, widgets: dict[str, str]) -> str:
    """Databricks' text substitution of widget values in SQL cells: ``${name}``.

    The value replaces the marker as text (``USE ${schema}``, ``'${day}'``). Markers
    that name no widget are left for Spark, which substitutes ``${conf.key}`` from the
    session configuration (``spark.conf.set("da.schema", ...)``).
    """

    def value(m: re.Match[str]) -> str:
        return widgets.get(m.group(1), m.group(0))

    return re.sub(r"\$\{([A-Za-z_][\w.]*)\}", value, statement)


def run_sql(spark: Any, text: str, widgets: dict[str, str], namespace: dict[str, Any]) -> Any:
    """Run a ``%sql`` cell: every statement in order, the last result displayed.

    Widget values reach SQL three ways, as in Databricks: ``CREATE WIDGET`` statements
    define widgets, ``${name}`` is replaced by the value as text, and named parameter
    markers (``:catalog``, ``IDENTIFIER(:schema)``) take values as literals. The last
    result is also kept as ``_sqldf``.
    """
    statements = split_sql(text)
    if not statements:
        raise ValueError("the %sql cell holds no statement")
    dbutils = namespace.get("dbutils")
    result = None
    for statement in statements:
        if isinstance(dbutils, DBUtils) and widget_statement(spark, statement, dbutils):
            widgets = dbutils.widgets.getAll()
            result = None
            continue
        result = spark.sql(bind_widgets(substitute_widgets(statement, widgets), widgets))
    namespace["_sqldf"] = result
    if result is not None:
        display(result)
    return result


def run_sh(script: str, cwd: Path) -> None:
    """A ``%sh`` cell: bash with ``-e``; a non-zero exit fails the cell."""
    proc = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"%sh cell exited with status {proc.returncode}")


def run_fs(dbutils: DBUtils, text: str) -> Any:
    """A ``%fs`` cell: ``%fs ls /path`` is ``dbutils.fs.ls("/path")``."""
    import pandas as pd  # noqa: PLC0415

    words = shlex.split(text)
    if not words:
        raise ValueError("the %fs cell names no command (ls, head, cp, mv, rm, mkdirs, put)")
    command, *args = words
    if command not in {"ls", "head", "cp", "mv", "rm", "mkdirs", "put"}:
        raise ValueError(f"%fs {command!r} is not a dbutils.fs command")
    flags = {a for a in args if a.startswith("-")}
    positional = [a for a in args if not a.startswith("-")]
    kwargs = {"recurse": True} if flags & {"-r", "--recurse"} else {}
    result = getattr(dbutils.fs, command)(*positional, **kwargs)
    if isinstance(result, list) and all(isinstance(r, FileInfo) for r in result):
        display(pd.DataFrame([dataclasses.asdict(r) for r in result]))
    else:
        print(result)
    return result


def _pip_message(args: str) -> str:
    return (
        f"%pip {' '.join(args.split())}: skipped locally. The project's environment "
        "already provides these packages; on Databricks this cell installs them."
    )


def parse_run(args: str, base: Path) -> tuple[Path, dict[str, str]]:
    """``%run ./other $x="1" $y=2``: the notebook's file and its arguments."""
    from coursekit.runtime.dbutils import resolve_notebook  # noqa: PLC0415

    words = shlex.split(args)
    if not words:
        raise ValueError("%run names no notebook")
    arguments = {}
    for word in words[1:]:
        name, sep, value = word.partition("=")
        if not (name.startswith("$") and sep and name[1:].isidentifier()):
            raise ValueError(
                f'%run {args!r}: arguments are written $name=value or $name="value", got {word!r}'
            )
        arguments[name[1:]] = value
    return resolve_notebook(words[0], base), arguments


@contextlib.contextmanager
def _deadline(seconds: int, path: Path) -> Generator[None]:
    """Fail a child notebook that runs past its timeout (0 means no limit)."""
    if not seconds or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"notebook {path} ran longer than timeout_seconds={seconds}")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _install_ipython(runtime: Runtime) -> None:
    """Register the Databricks magics and the notebook-exit handler in the kernel."""
    try:
        from IPython import get_ipython  # noqa: PLC0415
    except ImportError:
        return
    ip = get_ipython()
    if ip is None:
        return

    def sql_magic(line: str, cell: str) -> None:
        run_sql(
            runtime.session(), (line + "\n" + cell).strip(), _widget_values(ip.user_ns), ip.user_ns
        )

    def sh_magic(line: str, cell: str) -> None:
        run_sh((line + "\n" + cell).strip(), runtime.base_dir)

    def fs_magic(line: str, cell: str) -> None:
        run_fs(ip.user_ns["dbutils"], (line + "\n" + cell).strip())

    def pip_magic(line: str) -> None:
        print(_pip_message(line))

    def run_magic(line: str) -> None:
        runtime.run_included(line, runtime.base_dir, ip.user_ns)

    def skip_cell_magic(line: str, cell: str) -> None:
        command, _, number = line.partition(" ")
        skipped = nbsrc.Cell(nbsrc.FOREIGN, cell, magic=command + "\n")
        notice = nbsrc.skip_notice(skipped, int(number) if number.strip().isdigit() else None)
        from IPython.display import publish_display_data  # noqa: PLC0415

        publish_display_data(
            {SKIP_MIME: {"cell": number.strip(), "magic": command}, "text/plain": notice}
        )

    ip.register_magic_function(sql_magic, magic_kind="cell", magic_name="sql")
    ip.register_magic_function(sh_magic, magic_kind="cell", magic_name="sh")
    ip.register_magic_function(fs_magic, magic_kind="cell", magic_name="fs")
    ip.register_magic_function(pip_magic, magic_kind="line", magic_name="pip")
    ip.register_magic_function(run_magic, magic_kind="line", magic_name="run")
    ip.register_magic_function(skip_cell_magic, magic_kind="cell", magic_name="skip_cell")

    def on_exit(
        shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None
    ) -> None:
        exit_value = value.value if isinstance(value, NotebookExit) else str(value)
        print(f"Notebook exited: {exit_value}")
        from IPython.display import publish_display_data  # noqa: PLC0415

        publish_display_data({EXIT_MIME: {"value": exit_value}, "text/plain": exit_value})

    ip.set_custom_exc((NotebookExit,), on_exit)

    def redact_str(obj: str, printer: Any, cycle: bool) -> None:
        printer.text(repr(runtime.secrets.redact(obj)))

    ip.display_formatter.formatters["text/plain"].for_type(str, redact_str)
