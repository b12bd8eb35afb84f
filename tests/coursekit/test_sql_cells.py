"""How %sql cells are split into statements and bound to widget values."""

from __future__ import annotations

from coursekit.runtime import bind_widgets, split_sql


def test_split_on_semicolons_outside_quotes_and_comments() -> None:
    text = (
        "CREATE SCHEMA s;\n"
        "SELECT ';' AS semi, `a;b` -- trailing; comment\nFROM t;\n"
        "-- only a comment;\n"
    )
    assert split_sql(text) == [
        "CREATE SCHEMA s",
        "SELECT ';' AS semi, `a;b` -- trailing; comment\nFROM t",
    ]


def test_single_statement_without_semicolon() -> None:
    assert split_sql("SELECT 1") == ["SELECT 1"]
    assert split_sql("  \n-- nothing\n") == []


def test_markers_take_widget_values_as_literals() -> None:
    widgets = {"schema": "course'1", "catalog": "spark_catalog"}
    sql = "SELECT * FROM IDENTIFIER(:catalog || '.' || :schema || '.t') WHERE x = :schema"
    assert bind_widgets(sql, widgets) == (
        "SELECT * FROM IDENTIFIER('spark_catalog' || '.' || 'course\\'1' || '.t') "
        "WHERE x = 'course\\'1'"
    )


def test_markers_in_strings_comments_casts_and_unknown_names_stay() -> None:
    widgets = {"x": "1"}
    sql = "SELECT ':x', `:x`, v::int, :unknown -- :x\n, :x"
    assert bind_widgets(sql, widgets) == "SELECT ':x', `:x`, v::int, :unknown -- :x\n, '1'"
