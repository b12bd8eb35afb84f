# Databricks notebook source
# MAGIC %md
# MAGIC # Checks: lab_delta
# MAGIC
# MAGIC Run by the lab's last cell (`%run`). The expected members are recomputed in plain
# MAGIC Python from the setup cell's `members` and `changes` lists; the table is read back
# MAGIC through its history, its properties and `DESCRIBE DETAIL`.

# COMMAND ----------

lab = Lab("course1/week3/lab_delta")
_merged = {m[0]: m for m in members}
_merged.update({c[0]: c for c in changes})
_gold = {i for i, m in _merged.items() if m[3] == "gold"}


def _history() -> list:
    return spark.sql(f"DESCRIBE HISTORY {members_table}").orderBy("version").collect()


def _rows_at(version: int) -> dict:
    rows = spark.sql(f"SELECT * FROM {members_table} VERSION AS OF {version}").collect()
    return {r.member_id: tuple(r) for r in rows}


def _properties() -> dict:
    return {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES {members_table}").collect()}


@lab.check(
    "Task 1: the batch upserted in one commit",
    "MERGE INTO ... USING ... ON the key: WHEN MATCHED update, WHEN NOT MATCHED insert",
)
def _():
    merges = [h for h in _history() if h.operation == "MERGE"]
    assert merges, "no MERGE in the table's history"
    got = _rows_at(merges[0].version)
    assert set(got) == set(_merged), f"{len(got)} members after the batch, expected {len(_merged)}"
    wrong = sorted(i for i in _merged if got[i] != _merged[i])
    assert not wrong, f"members {wrong[:5]} do not have their new values"


@lab.check(
    "Task 2: negative points are refused",
    "ALTER TABLE ... ADD CONSTRAINT name CHECK (condition)",
)
def _():
    rule = _properties().get("delta.constraints.points_non_negative")
    assert rule is not None, "no constraint named points_non_negative on the table"

    def holds(points: int) -> bool:
        query = f"SELECT ({rule}) AS ok FROM VALUES ({points}) AS t(points)"
        return spark.sql(query).collect()[0].ok is True

    assert not holds(-1), f"the rule {rule!r} lets -1 points through"
    assert holds(0), f"the rule {rule!r} refuses a balance of 0"


@lab.check(
    "Task 3: the change data feed is on",
    "the change data feed is a table property (delta.enableChangeDataFeed)",
)
def _():
    value = _properties().get("delta.enableChangeDataFeed", "false")
    assert value.lower() == "true", "delta.enableChangeDataFeed is not true"


@lab.check(
    "Task 4: the members the bonus changed",
    "readChangeFeed with a starting (and ending) version; keep one image per updated row",
)
def _():
    assert not is_blank(bonus_members), "bonus_members is not set"
    got = {int(i) for i in bonus_members}
    assert got == _gold, f"{len(got)} members found, expected {len(_gold)}"


@lab.check(
    "Task 5: the bonus undone, history kept",
    "RESTORE TABLE ... TO VERSION AS OF makes an old version current in a new commit",
)
def _():
    ops = [(h.version, h.operation) for h in _history()]
    assert any(op == "RESTORE" and v > bonus_version for v, op in ops), "no restore after the bonus"
    current = {r.member_id: tuple(r) for r in spark.table(members_table).collect()}
    assert current == _merged, "the table does not hold the members as they were before the bonus"
    assert any(v == bonus_version and op == "UPDATE" for v, op in ops), "the bonus left the history"


@lab.check(
    "Task 6: the small files compacted",
    "OPTIMIZE rewrites small files into large ones; DESCRIBE DETAIL has numFiles",
)
def _():
    detail = spark.sql(f"DESCRIBE DETAIL {members_table}").collect()[0]
    assert detail.numFiles == 1, f"the table has {detail.numFiles} files"
    assert files_after == detail.numFiles, f"files_after is {files_after}"
    assert any(h.operation == "OPTIMIZE" for h in _history()), "no OPTIMIZE in the history"


lab.summary()
