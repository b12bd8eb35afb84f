"""The Databricks notebook source format, read and written.

A Databricks notebook exported as source is a plain ``.py`` file::

    # Databricks notebook source
    # MAGIC %md
    # MAGIC # A title

    # COMMAND ----------

    df = spark.range(3)

    # COMMAND ----------

    # MAGIC %sql
    # MAGIC SELECT 1

The first line marks the format, ``# COMMAND ----------`` lines split cells, and a
cell whose every line starts with ``# MAGIC`` is a magic cell whose first line names
the language (``%md``, ``%sql``, ``%pip``, ``%sh``, ``%run``, ``%fs``). Because magic
lines are comments, Python linters see only the code cells.

jupytext has no Databricks format, so this module is the parser: :func:`parse` turns
the text into :class:`Cell` objects, :func:`render` turns them back into text (the
two round-trip), and :func:`to_nbformat` builds the notebook that Jupyter executes.

Like Databricks itself, the parser splits on a separator line even inside a
triple-quoted string: the separator is reserved in this format.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"
MAGIC = "# MAGIC"

# Cell kinds. "code" is Python; the others come from a magic command.
CODE = "code"
MARKDOWN = "md"
SQL = "sql"
PIP = "pip"
SH = "sh"
RUN = "run"
FS = "fs"

# The magic command that opens a cell, mapped to the cell kind.
_MAGIC_KINDS = {
    "%md": MARKDOWN,
    "%md-sandbox": MARKDOWN,
    "%sql": SQL,
    "%pip": PIP,
    "%sh": SH,
    "%run": RUN,
    "%fs": FS,
    "%python": CODE,
}
# Languages a Databricks notebook may hold that the local runtime cannot execute.
_UNSUPPORTED = ("%scala", "%r", "%lsp")

# The cell the executor injects before the notebook's own cells when it runs
# outside Databricks. On Databricks `setup` is a no-op, so the paired .ipynb
# imports there too (once the project's wheel is installed).
SETUP_SOURCE = "import coursekit.runtime\n\ncoursekit.runtime.setup(globals())"
SETUP_TAG = "coursekit-setup"


@dataclass(frozen=True)
class Cell:
    """One cell of a Databricks notebook.

    ``source`` is the cell's body without ``# MAGIC`` prefixes and without the magic
    command line: for ``%md`` the markdown, for ``%sql`` the SQL, for ``%pip``, ``%sh``,
    ``%run`` and ``%fs`` the command's arguments and following lines.
    ``magic`` keeps the exact command (``%md-sandbox`` versus ``%md``) so that
    rendering gives back the original text.
    """

    kind: str
    source: str
    magic: str = ""

    def __post_init__(self) -> None:
        if self.kind not in {CODE, MARKDOWN, SQL, PIP, SH, RUN, FS}:
            raise ValueError(f"unknown cell kind {self.kind!r}")
        if not isinstance(self.source, str):
            raise TypeError(f"cell source must be str, got {type(self.source).__name__}")


class NotebookFormatError(ValueError):
    """The text is not a well-formed Databricks notebook source file."""


def is_databricks_source(path: Path) -> bool:
    """True when the file's first line is the Databricks source header."""
    try:
        with path.open(encoding="utf-8") as f:
            return f.readline().rstrip("\r\n") == HEADER
    except (OSError, UnicodeDecodeError):
        return False


def parse(text: str, *, name: str = "<notebook>") -> list[Cell]:
    """Split Databricks source text into cells.

    ``name`` only labels error messages. Empty cells are kept (as empty code cells)
    so that :func:`render` gives back the same number of cells.
    """
    if not isinstance(text, str):
        raise TypeError(f"notebook text must be str, got {type(text).__name__}")
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or lines[0].rstrip() != HEADER:
        first = lines[0] if lines else ""
        raise NotebookFormatError(f"{name}: first line must be {HEADER!r}, found {first[:60]!r}")
    chunks: list[list[str]] = [[]]
    for line in lines[1:]:
        if line.rstrip() == SEPARATOR:
            chunks.append([])
        else:
            chunks[-1].append(line)
    return [_parse_chunk(chunk, name, number) for number, chunk in enumerate(chunks, 1)]


def _strip_blank_edges(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _is_magic_line(line: str) -> bool:
    return line == MAGIC or line.startswith(MAGIC + " ")


def _parse_chunk(chunk: list[str], name: str, number: int) -> Cell:
    lines = _strip_blank_edges(chunk)
    if not lines:
        return Cell(CODE, "")
    # A magic cell has every line prefixed; a code cell that merely mentions
    # "# MAGIC" (in a string or a comment) stays code.
    if not all(_is_magic_line(line) for line in lines):
        return Cell(CODE, "\n".join(lines))
    body = [line[len(MAGIC) + 1 :] if line != MAGIC else "" for line in lines]
    command, _, rest = body[0].strip().partition(" ")
    if command in _UNSUPPORTED:
        raise NotebookFormatError(
            f"{name}: cell {number} is {command}; the local runtime runs Python, "
            "SQL, markdown, %pip, %sh, %run and %fs cells only"
        )
    kind = _MAGIC_KINDS.get(command)
    if kind is None:
        raise NotebookFormatError(
            f"{name}: cell {number} is a MAGIC cell whose first line {body[0]!r} "
            f"names no known magic (one of {', '.join(sorted(_MAGIC_KINDS))})"
        )
    # The command may carry content on its own line ("%run ./setup",
    # "%sql SELECT 1"); keep it as the first line of the body.
    content = ([rest] if rest.strip() else []) + body[1:]
    same_line = bool(rest.strip())
    source = "\n".join(content)
    return Cell(kind, source, magic=command + (" " if same_line else "\n"))


def render(cells: list[Cell]) -> str:
    """Write cells back as Databricks source text (the inverse of :func:`parse`)."""
    parts = []
    for cell in cells:
        if cell.kind == CODE and not cell.magic:
            parts.append(cell.source)
            continue
        magic = cell.magic or ("%" + cell.kind + "\n")
        text = magic + cell.source
        parts.append("\n".join(MAGIC + (" " + line if line else "") for line in text.split("\n")))
    return HEADER + "\n" + ("\n\n" + SEPARATOR + "\n\n").join(parts) + "\n"


def read(path: Path | str) -> list[Cell]:
    """Parse a Databricks source file."""
    path = Path(path)
    return parse(path.read_text(encoding="utf-8"), name=str(path))


def cell_code(cell: Cell) -> str:
    """The source Jupyter executes for a cell, using the runtime's magics.

    SQL, %sh and %fs become IPython cell magics registered by
    :func:`coursekit.runtime.setup`; %pip and %run become line magics.
    """
    if cell.kind == CODE:
        return cell.source
    if cell.kind == SQL:
        return "%%sql\n" + cell.source
    if cell.kind == SH:
        return "%%sh\n" + cell.source
    if cell.kind == FS:
        return "%%fs\n" + cell.source
    if cell.kind in {PIP, RUN}:
        # Line magics: continuation lines become one command.
        return f"%{cell.kind} " + " ".join(cell.source.split())
    raise ValueError(f"cell kind {cell.kind!r} has no code")


def to_nbformat(cells: list[Cell], *, setup: bool = True) -> NotebookNode:
    """Build an nbformat v4 notebook from cells.

    With ``setup`` the runtime's setup cell comes first (tagged ``coursekit-setup``).
    Each notebook cell carries ``metadata.coursekit.cell``, its 1-based number in the
    Databricks source, so errors name the cell a learner sees.
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    if setup:
        nb.cells.append(nbformat.v4.new_code_cell(SETUP_SOURCE, metadata={"tags": [SETUP_TAG]}))
    for number, cell in enumerate(cells, 1):
        meta = {"coursekit": {"cell": number, "kind": cell.kind}}
        if cell.kind == MARKDOWN:
            nb.cells.append(nbformat.v4.new_markdown_cell(cell.source, metadata=meta))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(cell_code(cell), metadata=meta))
    return nb


def write_ipynb(source: Path | str, target: Path | str | None = None) -> Path:
    """Write the paired ``.ipynb`` of a Databricks source file (beside it by default)."""
    source = Path(source)
    out = Path(target) if target is not None else source.with_suffix(".ipynb")
    nb = to_nbformat(read(source))
    nbformat.validate(nb)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m coursekit.notebook FILE.py...``: write paired .ipynb files."""
    parser = argparse.ArgumentParser(
        prog="python -m coursekit.notebook",
        description="Write a Jupyter .ipynb beside each Databricks source notebook "
        "(the .ipynb is a convenience copy; the .py stays the source of truth).",
    )
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--out-dir", type=Path, help="write the .ipynb files here instead")
    args = parser.parse_args(argv)
    for path in args.paths:
        target = args.out_dir / path.with_suffix(".ipynb").name if args.out_dir else None
        try:
            print(write_ipynb(path, target))
        except (OSError, NotebookFormatError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
