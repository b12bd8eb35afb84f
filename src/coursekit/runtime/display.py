"""``display`` and ``displayHTML``: what a Databricks notebook shows under a cell.

Databricks renders a DataFrame as an interactive table. Locally a bounded HTML table
(plus a text version for terminals and diffs) stands in: Spark DataFrames are
limited before they reach the driver, so displaying a large table never collects it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
from IPython.display import HTML, Image
from IPython.display import display as ipy_display

MAX_ROWS = 100


class _Table:
    """A pandas frame shown as HTML and text, with a note when rows were cut."""

    def __init__(self, frame: pd.DataFrame, truncated: bool, note: str = "") -> None:
        self.frame = frame
        self.truncated = truncated
        self.note = note

    def _footer(self) -> str:
        rows = len(self.frame)
        text = f"showing the first {rows} rows" if self.truncated else f"{rows} rows"
        return f"{text}{self.note}"

    def _repr_html_(self) -> str:
        if self.frame.columns.empty:
            return "<p>OK</p>"
        return (
            self.frame.to_html(index=False, max_rows=MAX_ROWS) + f"<p><em>{self._footer()}</em></p>"
        )

    def __repr__(self) -> str:
        if self.frame.columns.empty:
            return "OK"
        body = self.frame.to_string(index=False, max_rows=MAX_ROWS, max_colwidth=60)
        return f"{body}\n({self._footer()})"


def _is_spark_frame(obj: object) -> bool:
    # Classic and Spark Connect DataFrames share this base class; checking by module
    # keeps pyspark out of the import path for notebooks that never use it.
    cls = type(obj)
    return any(
        c.__name__ == "DataFrame" and c.__module__.startswith("pyspark.sql") for c in cls.__mro__
    )


def _is_record(obj: object) -> bool:
    return dataclasses.is_dataclass(obj) and not isinstance(obj, type)


def to_table(obj: Any, limit: int = MAX_ROWS) -> _Table:
    """The bounded table ``display`` shows for a Spark or pandas DataFrame."""
    if not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive int, got {limit!r}")
    if _is_spark_frame(obj):
        frame = obj.limit(limit + 1).toPandas()
    elif isinstance(obj, pd.DataFrame):
        frame = obj.head(limit + 1)
    elif isinstance(obj, pd.Series):
        frame = obj.to_frame().head(limit + 1)
    else:
        raise TypeError(f"to_table takes a Spark or pandas DataFrame, got {type(obj).__name__}")
    truncated = len(frame) > limit
    return _Table(frame.head(limit), truncated)


def display(obj: Any = None, *args: Any, **kwargs: Any) -> None:
    """Show a DataFrame as a table, a matplotlib figure as an image, anything else as-is.

    Extra arguments that Databricks' display accepts (``summary=True``, chart
    options) only affect its interactive view and are ignored here.
    """
    del args, kwargs
    if obj is None:
        # ``display()`` with no argument shows the current matplotlib figure on Databricks.
        import matplotlib.pyplot as plt  # noqa: PLC0415

        obj = plt.gcf()
    if _is_spark_frame(obj) or isinstance(obj, pd.DataFrame | pd.Series):
        ipy_display(to_table(obj))
        return
    if isinstance(obj, list) and obj and all(_is_record(item) for item in obj):
        # dbutils.fs.ls() and similar lists of records show as a table, as on Databricks.
        ipy_display(to_table(pd.DataFrame([dataclasses.asdict(item) for item in obj])))
        return
    if type(obj).__module__.startswith("matplotlib") and hasattr(obj, "savefig"):
        import io  # noqa: PLC0415

        buffer = io.BytesIO()
        obj.savefig(buffer, format="png", bbox_inches="tight")
        ipy_display(Image(data=buffer.getvalue(), format="png"))
        return
    ipy_display(obj)


def displayHTML(html: str) -> None:  # noqa: N802 (the Databricks name)
    """Render an HTML string under the cell."""
    if not isinstance(html, str):
        raise TypeError(f"displayHTML takes a str, got {type(html).__name__}")
    ipy_display(HTML(html))
