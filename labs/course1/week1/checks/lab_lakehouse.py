# Databricks notebook source
# MAGIC %md
# MAGIC # Checks: lab_lakehouse
# MAGIC
# MAGIC Run by the lab's last cell (`%run`). The expected rows come from the setup cell's
# MAGIC `day1` and `day2` lists and the names of the files the crashed job wrote; the table's
# MAGIC state is read back through Spark and through its log, never through the learner's
# MAGIC variables alone.

# COMMAND ----------

import json as _json
from pathlib import Path as _Path

lab = Lab("course1/week1/lab_lakehouse")
_log = _Path(table_path, "_delta_log")


def _rows(df) -> dict:
    return {r["reading_id"]: r["celsius"] for r in df.select("reading_id", "celsius").collect()}


def _version(v: int) -> dict:
    # A clear message instead of Spark's stack trace when the version does not exist.
    assert (_log / f"{v:020d}.json").is_file(), f"the table has no version {v}"
    return _rows(spark.read.format("delta").option("versionAsOf", v).load(table_path))


def _commit(v: int) -> list:
    text = (_log / f"{v:020d}.json").read_text(encoding="utf-8")
    return [_json.loads(line) for line in text.splitlines() if line]


_day1 = {r[0]: r[3] for r in day1}
_both = {**_day1, **{r[0]: r[3] for r in day2}}


@lab.check(
    "Task 1: the landing folder is a Delta table (version 0)",
    "a Delta table is the Parquet files plus a _delta_log folder; write with format delta",
)
def _():
    assert _log.is_dir(), "table_path has no _delta_log: it is not a Delta table yet"
    got = _version(0)
    assert got == _day1, f"version 0 holds {len(got)} readings, expected the {len(_day1)} of day 1"


@lab.check(
    "Task 2: day 2 appended (version 1)",
    "append mode adds files in a new commit and keeps the ones already there",
)
def _():
    got = _version(1)
    assert set(got) == set(_both), f"version 1 holds {len(got)} readings, expected {len(_both)}"
    assert not any("remove" in a for a in _commit(1)), "version 1 removed files: not an append"


@lab.check(
    "Task 3: the last good version, read with time travel",
    "the history lists the operation of each version; versionAsOf reads an old one",
)
def _():
    assert not is_blank(last_good_version), "last_good_version is not set"
    assert bad_version is not None, "the night's cell found no table"
    assert last_good_version == bad_version - 1, (
        f"version {last_good_version} is not the one right before the bad overwrite"
    )
    got = _rows(good_df)
    assert got == _both, f"good_df holds {len(got)} readings; some are missing or wrong"


@lab.check(
    "Task 4: the files no commit ever added",
    "collect every path that an add action names, across all commits; compare with the folder",
)
def _():
    assert not is_blank(never_committed), "never_committed is not set"
    got = {str(n).rsplit("/", 1)[-1] for n in never_committed}
    assert crashed_files, "the night's cell did not run on your table"
    want = set(crashed_files)
    assert got == want, f"{len(got)} files found, expected {len(want)}; removed files do not count"


@lab.check(
    "Task 5: the table restored, history kept",
    "restoring is a new commit whose files are those of an old version",
)
def _():
    assert bad_version is not None, "the night's cell found no table"
    latest = max(int(p.stem) for p in _log.glob("*.json"))
    assert latest > bad_version, "no commit after the bad overwrite: the table was not restored"
    current = _rows(spark.read.format("delta").load(table_path))
    assert current == _both, "the current version does not hold the good readings"
    assert _version(bad_version) != _both, "the bad version should stay readable as it was"


lab.summary()
