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

Exports from a workspace carry variations the parser accepts as Databricks does:
a cell title line (``# DBTITLE 1,Load the data``) above the cell, blank ``# MAGIC``
lines or extra spaces before the magic command, ``%md-sandbox`` and a redundant
``%python``. Cells in a language the local runtime cannot run (``%scala``, ``%r``)
parse as :data:`FOREIGN` cells: executing one prints a notice naming the cell and
the reason and goes on (see :func:`skip_notice`), as a learner running someone
else's notebook expects; the executor's summary lists them.
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
# A cell in a language the local runtime does not execute (%scala, %r): kept, reported.
FOREIGN = "foreign"

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
# Languages a Databricks notebook may hold that the local runtime cannot execute:
# the magic, and the language named in the notice.
FOREIGN_LANGUAGES = {"%scala": "Scala", "%r": "R"}
_TITLE = "# DBTITLE"

# The cell the executor injects before the notebook's own cells when it runs
# outside Databricks. On Databricks `setup` is a no-op, so the paired .ipynb
# imports there too (once the project's wheel is installed).
SETUP_SOURCE = "import coursekit.runtime\n\ncoursekit.runtime.setup(globals())"
SETUP_TAG = "coursekit-setup"
# The Jupyter kernel whose start-up runs that setup (coursekit.kernel); the paired
# .ipynb names it, the executor uses the plain python3 kernel and injects the cell.
KERNEL_NAME = "databricks-local"
KERNEL_DISPLAY_NAME = "Databricks (local)"


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
    # The export's title line, kept verbatim ("# DBTITLE 1,Load the data"), or "".
    title: str = ""

    def __post_init__(self) -> None:
        if self.kind not in {CODE, MARKDOWN, SQL, PIP, SH, RUN, FS, FOREIGN}:
            raise ValueError(f"unknown cell kind {self.kind!r}")
        if not isinstance(self.source, str):
            raise TypeError(f"cell source must be str, got {type(self.source).__name__}")

    @property
    def command(self) -> str:
        """The magic command without surrounding blanks (``%md-sandbox``), or ""."""
        return self.magic.strip()

    @property
    def language(self) -> str:
        """The language a :data:`FOREIGN` cell is written in (``Scala``, ``R``)."""
        return FOREIGN_LANGUAGES.get(self.command, self.command)


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
    title = ""
    if lines and lines[0].startswith(_TITLE):
        title, lines = lines[0], _strip_blank_edges(lines[1:])
    if not lines:
        return Cell(CODE, "", title=title)
    # A magic cell has every line prefixed; a code cell that merely mentions
    # "# MAGIC" (in a string or a comment) stays code.
    if not all(_is_magic_line(line) for line in lines):
        return Cell(CODE, "\n".join(lines), title=title)
    body = [line[len(MAGIC) + 1 :] if line != MAGIC else "" for line in lines]
    # Exports may open with blank "# MAGIC" lines or indent the command: the first
    # non-blank line names the magic, and what precedes it is kept for rendering.
    first = next(i for i, line in enumerate(body) if line.strip())
    stripped = body[first].lstrip()
    lead = "\n".join(body[:first]) + ("\n" if first else "")
    lead += body[first][: len(body[first]) - len(stripped)]
    command, sep, rest = stripped.partition(" ")
    kind = FOREIGN if command in FOREIGN_LANGUAGES else _MAGIC_KINDS.get(command)
    if kind is None:
        raise NotebookFormatError(
            f"{name}: cell {number} is a MAGIC cell whose first line {body[first]!r} "
            f"names no known magic (one of "
            f"{', '.join(sorted([*_MAGIC_KINDS, *FOREIGN_LANGUAGES]))})"
        )
    # The command may carry content on its own line ("%run ./setup",
    # "%sql SELECT 1"); keep it as the first line of the body.
    same_line = bool(rest.strip())
    content = ([rest] if same_line else []) + body[first + 1 :]
    magic = lead + command + (sep if same_line else (rest + "\n"))
    return Cell(kind, "\n".join(content), magic=magic, title=title)


def render(cells: list[Cell]) -> str:
    """Write cells back as Databricks source text (the inverse of :func:`parse`)."""
    parts = []
    for cell in cells:
        head = cell.title + "\n" if cell.title else ""
        if cell.kind == CODE and not cell.magic:
            parts.append(head + cell.source)
            continue
        if cell.kind == FOREIGN and not cell.magic:
            raise ValueError("a foreign-language cell needs its magic (%scala, %r)")
        magic = cell.magic or ("%" + cell.kind + "\n")
        text = magic + cell.source
        lines = (MAGIC + (" " + line if line else "") for line in text.split("\n"))
        parts.append(head + "\n".join(lines))
    return HEADER + "\n" + ("\n\n" + SEPARATOR + "\n\n").join(parts) + "\n"


def read(path: Path | str) -> list[Cell]:
    """Parse a Databricks source file."""
    path = Path(path)
    return parse(path.read_text(encoding="utf-8"), name=str(path))


def skip_notice(cell: Cell, number: int | None) -> str:
    """What the runtime prints for a cell it does not execute (a :data:`FOREIGN` cell)."""
    where = f"cell {number}" if number else "a cell"
    return (
        f"Skipped {where} ({cell.command}): the local runtime runs Python and SQL, not "
        f"{cell.language}; this cell runs only on Databricks, and whatever it defines "
        "(a view, a table, a variable) is missing from the cells below."
    )


def cell_code(cell: Cell, number: int | None = None) -> str:
    """The source Jupyter executes for a cell, using the runtime's magics.

    SQL, %sh and %fs become IPython cell magics registered by
    :func:`coursekit.runtime.setup`; %pip and %run become line magics. A
    :data:`FOREIGN` cell becomes the ``%%skip_cell`` magic, which prints
    :func:`skip_notice` (``number`` is the cell's number in the source file).
    """
    if cell.kind == CODE:
        return cell.source
    if cell.kind == FOREIGN:
        return f"%%skip_cell {cell.command} {number or 0}\n" + cell.source
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


def to_nbformat(
    cells: list[Cell], *, setup: bool = True, kernel: tuple[str, str] = ("python3", "Python 3")
) -> NotebookNode:
    """Build an nbformat v4 notebook from cells.

    With ``setup`` the runtime's setup cell comes first (tagged ``coursekit-setup``).
    Each notebook cell carries ``metadata.coursekit.cell``, its 1-based number in the
    Databricks source, so errors name the cell a learner sees. ``kernel`` is the
    kernelspec's (name, display name).
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": kernel[0],
        "display_name": kernel[1],
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
            nb.cells.append(nbformat.v4.new_code_cell(cell_code(cell, number), metadata=meta))
    return nb


def write_ipynb(source: Path | str, target: Path | str | None = None) -> Path:
    """Write the paired ``.ipynb`` of a Databricks source file (beside it by default).

    It opens with the "Databricks (local)" kernel (``make setup`` registers it).
    """
    source = Path(source)
    out = Path(target) if target is not None else source.with_suffix(".ipynb")
    nb = to_nbformat(read(source), kernel=(KERNEL_NAME, KERNEL_DISPLAY_NAME))
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
