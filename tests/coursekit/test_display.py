"""display(): bounded tables, images, and clear errors."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import patch

import pandas as pd
import pytest

from coursekit.runtime.dbutils import Fs
from coursekit.runtime.display import MAX_ROWS, _Table, display, displayHTML, to_table


def test_large_frame_is_cut_and_says_so() -> None:
    table = to_table(pd.DataFrame({"n": range(MAX_ROWS + 50)}))
    assert len(table.frame) == MAX_ROWS
    assert table.truncated
    assert f"showing the first {MAX_ROWS} rows" in repr(table)
    assert "<table" in table._repr_html_()


def test_small_frame_is_whole() -> None:
    table = to_table(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    assert not table.truncated
    assert repr(table).endswith("(2 rows)")


def test_statement_without_columns_shows_ok() -> None:
    assert repr(to_table(pd.DataFrame())) == "OK"


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="got list"):
        to_table([1, 2, 3])
    with pytest.raises(ValueError, match="positive int, got 0"):
        to_table(pd.DataFrame({"a": [1]}), limit=0)
    with pytest.raises(TypeError, match="takes a str, got int"):
        displayHTML(5)  # ty: ignore[invalid-argument-type]


def test_statement_without_columns_shows_ok_in_html_too() -> None:
    assert to_table(pd.DataFrame())._repr_html_() == "<p>OK</p>"


def test_a_list_of_file_infos_displays_as_a_table(tmp_path: Path) -> None:
    fs = Fs(tmp_path)
    fs.put("/a.txt", "abc")
    shown: list[object] = []
    with patch("coursekit.runtime.display.ipy_display", shown.append):
        display(fs.ls("/"))
    (table,) = shown
    assert isinstance(table, _Table)
    assert list(table.frame.columns) == ["path", "name", "size", "modificationTime"]
    assert table.frame["name"].tolist() == ["a.txt"]
