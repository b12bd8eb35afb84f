"""A local ``dbutils``: widgets, a confined file system, secrets, notebook workflows.

Each part mirrors the Databricks API a course notebook uses, with the same names and
argument order, so that the notebook text stays the same in both places:

- ``dbutils.widgets``: notebook parameters. Values passed on the command line
  (``python -m coursekit.run nb.py --param schema=dev``) override the defaults that
  the notebook declares, as job parameters do on Databricks.
- ``dbutils.fs``: ``dbfs:/``, ``/Volumes`` and ``/mnt`` paths mapped under one local
  root directory. A path with a ``..`` segment is rejected, so no notebook reads or
  writes outside that root through them; ``file:`` URIs name the local disk, where
  ``/dbfs``, ``/Volumes`` and ``/mnt`` are that same root (:mod:`coursekit.runtime.paths`).
- ``dbutils.secrets``: values from environment variables. A secret's value printed
  to the notebook output appears as ``[REDACTED]``, as on Databricks.
- ``dbutils.notebook``: ``exit`` ends a notebook with a value; ``run`` executes
  another notebook with arguments and returns that value.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from coursekit.runtime.jobs import Jobs
from coursekit.runtime.paths import python_path

REDACTED = "[REDACTED]"


def _check_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, got {type(value).__name__}: {value!r}")
    return value


# --------------------------------------------------------------------------- widgets


class InputWidgetNotDefinedError(ValueError):
    """``dbutils.widgets.get`` of a name that no widget and no parameter defines."""


@dataclass
class _Widget:
    kind: str
    default: str
    choices: tuple[str, ...]
    label: str


class Widgets:
    """``dbutils.widgets`` with values overridable by notebook parameters."""

    def __init__(self, params: dict[str, str] | None = None) -> None:
        params = dict(params or {})
        for key, value in params.items():
            _check_str(key, "widget parameter name")
            _check_str(value, f"value of widget parameter {key!r}")
        self._params = params
        self._widgets: dict[str, _Widget] = {}

    def _define(
        self, kind: str, name: str, default: str, choices: Iterable[str], label: str | None
    ) -> None:
        _check_str(name, "widget name")
        _check_str(default, f"default value of widget {name!r}")
        if not name:
            raise ValueError("widget name must not be empty")
        if isinstance(choices, str):
            raise TypeError(f"choices of widget {name!r} must be a list of str, not a str")
        options = tuple(choices)
        for choice in options:
            _check_str(choice, f"choice of widget {name!r}")
        if kind in {"dropdown", "multiselect"}:
            if not options:
                raise ValueError(f"{kind} widget {name!r} needs at least one choice")
            self._check_choice(name, kind, default, options)
        self._widgets[name] = _Widget(kind, default, options, label or name)
        if name in self._params:
            # A bad parameter fails where the widget is declared, naming both.
            self._check_choice(name, kind, self._params[name], options)

    @staticmethod
    def _check_choice(name: str, kind: str, value: str, options: tuple[str, ...]) -> None:
        if kind == "dropdown" and value not in options:
            raise ValueError(f"value {value!r} of dropdown {name!r} is not one of {list(options)}")
        if kind == "multiselect":
            for item in value.split(",") if value else []:
                if item not in options:
                    raise ValueError(
                        f"value {item!r} of multiselect {name!r} is not one of {list(options)}"
                    )

    def text(self, name: str, defaultValue: str, label: str | None = None) -> None:  # noqa: N803
        """A free-text widget."""
        self._define("text", name, defaultValue, (), label)

    def dropdown(
        self,
        name: str,
        defaultValue: str,  # noqa: N803 (the Databricks keyword names)
        choices: Iterable[str],
        label: str | None = None,
    ) -> None:
        """One value out of ``choices``."""
        self._define("dropdown", name, defaultValue, choices, label)

    def combobox(
        self,
        name: str,
        defaultValue: str,  # noqa: N803
        choices: Iterable[str],
        label: str | None = None,
    ) -> None:
        """A suggested list of values; any text is accepted."""
        self._define("combobox", name, defaultValue, choices, label)

    def multiselect(
        self,
        name: str,
        defaultValue: str,  # noqa: N803
        choices: Iterable[str],
        label: str | None = None,
    ) -> None:
        """Several values out of ``choices``; ``get`` returns them comma-separated."""
        self._define("multiselect", name, defaultValue, choices, label)

    def get(self, name: str) -> str:
        """The widget's value: the parameter passed for it, else its default."""
        _check_str(name, "widget name")
        if name in self._params:
            return self._params[name]
        widget = self._widgets.get(name)
        if widget is None:
            raise InputWidgetNotDefinedError(
                f"no widget named {name!r} is defined (defined: {sorted(self._widgets)})"
            )
        return widget.default

    def getArgument(self, name: str, optional: str | None = None) -> str:  # noqa: N802
        """The older ``getArgument``: like :meth:`get`, with ``optional`` when undefined."""
        try:
            return self.get(name)
        except InputWidgetNotDefinedError:
            if optional is None:
                raise
            return _check_str(optional, f"default of argument {name!r}")

    def getAll(self) -> dict[str, str]:  # noqa: N802 (the Databricks method name)
        """Every defined widget's current value, plus parameters passed without a widget."""
        values = {name: w.default for name, w in self._widgets.items()}
        values.update(self._params)
        return values

    def remove(self, name: str) -> None:
        """Remove one widget."""
        _check_str(name, "widget name")
        if name not in self._widgets:
            raise InputWidgetNotDefinedError(f"cannot remove widget {name!r}: it is not defined")
        del self._widgets[name]

    def removeAll(self) -> None:  # noqa: N802
        """Remove every widget (parameters passed to the notebook stay)."""
        self._widgets.clear()


# ------------------------------------------------------------------------------- fs


@dataclass(frozen=True)
class FileInfo:
    """One entry of ``dbutils.fs.ls``, with the fields Databricks returns."""

    path: str
    name: str
    size: int
    modificationTime: int  # noqa: N815 (the Databricks field name)

    def isDir(self) -> bool:  # noqa: N802
        return self.name.endswith("/")

    def isFile(self) -> bool:  # noqa: N802
        return not self.isDir()


class Fs:
    """``dbutils.fs`` over a local directory standing in for ``dbfs:/`` and ``/Volumes``.

    ``dbfs:/a/b`` and ``/a/b`` map to ``<root>/a/b``; ``/Volumes/c/s/v/f`` maps to
    ``<root>/Volumes/c/s/v/f``. Paths are always absolute and may not contain ``..``.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def local_path(self, path: str) -> Path:
        """The local file behind a DBFS or Volumes path (for tools that need one)."""
        _check_str(path, "path")
        rest = path
        if rest.startswith("file:"):
            # The driver's local disk, where /dbfs, /Volumes and /mnt are DBFS (as the
            # FUSE mount makes them on Databricks); see coursekit.runtime.paths.
            local = "/" + rest[len("file:") :].lstrip("/")
            if ".." in PurePosixPath(local).parts:
                raise ValueError(f"path {path!r} contains '..'")
            mapped = python_path(local, self.root)
            if mapped == local:
                return Path(local)
            rest = "/" + Path(mapped).relative_to(self.root).as_posix().removeprefix(".")
        elif rest.startswith("dbfs:"):
            rest = rest[len("dbfs:") :]
        elif re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", rest):
            raise ValueError(
                f"path {path!r}: only dbfs:/, /Volumes and file:/ paths exist in the local runtime"
            )
        if not rest.startswith("/"):
            raise ValueError(f"path {path!r} must be absolute (dbfs:/..., /..., /Volumes/...)")
        parts = PurePosixPath(rest).parts[1:]
        if ".." in parts:
            raise ValueError(
                f"path {path!r} contains '..': paths may not leave the DBFS root {self.root}"
            )
        local = self.root.joinpath(*parts).resolve() if parts else self.root
        # A symlink inside the root could still point outside it.
        if local != self.root and self.root not in local.parents:
            raise ValueError(f"path {path!r} resolves outside the DBFS root {self.root}")
        return local

    def _display_path(self, local: Path) -> str:
        if local != self.root and self.root not in local.parents:
            return local.as_uri().replace("file:///", "file:/", 1)
        rel = local.relative_to(self.root).as_posix()
        return "dbfs:/" + ("" if rel == "." else rel)

    def ls(self, path: str) -> list[FileInfo]:
        local = self.local_path(path)
        if not local.exists():
            raise FileNotFoundError(f"{path!r} does not exist")
        entries = sorted(local.iterdir()) if local.is_dir() else [local]
        infos = []
        for entry in entries:
            stat = entry.stat()
            suffix = "/" if entry.is_dir() else ""
            infos.append(
                FileInfo(
                    path=self._display_path(entry) + suffix,
                    name=entry.name + suffix,
                    size=0 if entry.is_dir() else stat.st_size,
                    modificationTime=int(stat.st_mtime * 1000),
                )
            )
        return infos

    def head(self, file: str, maxBytes: int = 65536) -> str:  # noqa: N803
        if not isinstance(maxBytes, int) or isinstance(maxBytes, bool) or maxBytes < 0:
            raise ValueError(f"maxBytes must be a non-negative int, got {maxBytes!r}")
        local = self.local_path(file)
        if not local.is_file():
            raise FileNotFoundError(f"{file!r} is not a file")
        with local.open("rb") as f:
            return f.read(maxBytes).decode("utf-8", errors="replace")

    def put(self, file: str, contents: str, overwrite: bool = False) -> bool:
        _check_str(contents, "contents")
        local = self.local_path(file)
        if local.exists() and not overwrite:
            raise FileExistsError(f"{file!r} exists; pass overwrite=True to replace it")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(contents, encoding="utf-8")
        return True

    def mkdirs(self, dir: str) -> bool:
        self.local_path(dir).mkdir(parents=True, exist_ok=True)
        return True

    def cp(self, from_: str, to: str, recurse: bool = False) -> bool:
        src, dst = self.local_path(from_), self.local_path(to)
        if not src.exists():
            raise FileNotFoundError(f"{from_!r} does not exist")
        if src.is_dir():
            if not recurse:
                raise ValueError(f"{from_!r} is a directory; pass recurse=True to copy it")
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        return True

    def mv(self, from_: str, to: str, recurse: bool = False) -> bool:
        src, dst = self.local_path(from_), self.local_path(to)
        if not src.exists():
            raise FileNotFoundError(f"{from_!r} does not exist")
        if src.is_dir() and not recurse:
            raise ValueError(f"{from_!r} is a directory; pass recurse=True to move it")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(src, dst)
        return True

    def rm(self, dir: str, recurse: bool = False) -> bool:
        local = self.local_path(dir)
        if local == self.root:
            raise ValueError("refusing to remove the DBFS root")
        if not local.exists():
            return False
        if local.is_dir():
            if not recurse:
                raise ValueError(f"{dir!r} is a directory; pass recurse=True to remove it")
            shutil.rmtree(local)
        else:
            local.unlink()
        return True


# -------------------------------------------------------------------------- secrets


def secret_env_var(scope: str, key: str) -> str:
    """The environment variable holding a secret: ``COURSEKIT_SECRET_<SCOPE>_<KEY>``."""
    clean = re.sub(r"[^A-Za-z0-9]", "_", f"{scope}_{key}").upper()
    return f"COURSEKIT_SECRET_{clean}"


class Secrets:
    """``dbutils.secrets`` read from environment variables.

    ``get("course", "api-token")`` reads ``COURSEKIT_SECRET_COURSE_API_TOKEN``. Every
    value read is remembered so that :meth:`redact` can hide it in printed output.
    """

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._seen: set[str] = set()

    def get(self, scope: str, key: str) -> str:
        _check_str(scope, "secret scope")
        _check_str(key, "secret key")
        var = secret_env_var(scope, key)
        value = self._environ.get(var)
        if value is None:
            raise ValueError(
                f"secret {key!r} in scope {scope!r} is not set: export {var}=... "
                "(locally, secrets come from environment variables)"
            )
        if value:
            self._seen.add(value)
        return value

    def listScopes(self) -> list[str]:  # noqa: N802
        prefix = "COURSEKIT_SECRET_"
        return sorted(
            {k[len(prefix) :].split("_")[0].lower() for k in self._environ if k.startswith(prefix)}
        )

    def redact(self, text: str) -> str:
        # Longest first, so a secret containing another is hidden whole.
        for value in sorted(self._seen, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text


class RedactingStream:
    """A text stream wrapper that hides secret values before they reach the output."""

    def __init__(self, stream: Any, secrets: Secrets) -> None:
        self._stream = stream
        self._secrets = secrets

    def write(self, text: str) -> int:
        self._stream.write(self._secrets.redact(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


# ------------------------------------------------------------------------- notebook


class NotebookExit(Exception):  # noqa: N818 (named after what it does, as on Databricks)
    """Raised by ``dbutils.notebook.exit``; the runtime ends the notebook quietly."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


class NotebookApi:
    """``dbutils.notebook``: ``exit`` and ``run``.

    ``runner(path, timeout_seconds, arguments)`` executes another notebook and returns
    its exit value; the runtime provides it (an in-process interpreter sharing the
    SparkSession, with its own globals and widgets).
    """

    def __init__(
        self,
        runner: Callable[[Path, int, dict[str, str]], str | None],
        base_dir: Callable[[], Path],
    ) -> None:
        self._runner = runner
        self._base_dir = base_dir

    def exit(self, value: Any) -> None:
        """End the notebook with ``value``, which Databricks turns into a string.

        ``exit(42)`` returns ``"42"`` to the caller and ``exit({"a": 1})`` returns
        ``"{'a': 1}"`` (``str`` of the value): serialise with ``json.dumps`` for a
        result the caller can parse.
        """
        raise NotebookExit(value if isinstance(value, str) else str(value))

    def run(
        self, path: str, timeout_seconds: int = 0, arguments: dict[str, str] | None = None
    ) -> str | None:
        _check_str(path, "notebook path")
        if not isinstance(timeout_seconds, int) or timeout_seconds < 0:
            raise ValueError(f"timeout_seconds must be a non-negative int, got {timeout_seconds!r}")
        args = dict(arguments or {})
        for key, value in args.items():
            _check_str(key, "notebook argument name")
            _check_str(value, f"notebook argument {key!r}")
        return self._runner(resolve_notebook(path, self._base_dir()), timeout_seconds, args)


def resolve_notebook(path: str, base_dir: Path) -> Path:
    """A notebook path as Databricks writes it (relative, no ``.py``) to a local file."""
    candidate = Path(path) if Path(path).is_absolute() else base_dir / path
    for option in (candidate, candidate.with_name(candidate.name + ".py")):
        if option.is_file():
            return option.resolve()
    raise FileNotFoundError(f"notebook {path!r} not found (looked for {candidate}[.py])")


class Library:
    """``dbutils.library``: after ``%pip`` on Databricks, ``restartPython()`` reloads packages.

    Locally ``%pip`` installs nothing (the project environment has the packages), so
    there is nothing to reload and the notebook's state is kept.
    """

    def restartPython(self) -> None:  # noqa: N802 (the Databricks name)
        print("dbutils.library.restartPython(): nothing to restart in the local runtime")


class DBUtils:
    """The ``dbutils`` object of the local runtime."""

    def __init__(
        self,
        *,
        params: dict[str, str] | None,
        fs_root: Path,
        secrets: Secrets,
        notebook: NotebookApi,
    ) -> None:
        self.widgets = Widgets(params)
        self.fs = Fs(fs_root)
        self.secrets = secrets
        self.notebook = notebook
        self.library = Library()
        # Task values between a job's tasks (coursekit.runtime.jobs; batuta runs the job).
        self.jobs = Jobs()

    def __repr__(self) -> str:
        return f"<local dbutils: fs root {self.fs.root}>"
