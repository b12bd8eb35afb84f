# Databricks notebook source
# MAGIC %md
# MAGIC # Checks: lab_workflows
# MAGIC
# MAGIC Run by the lab's last cell (`%run`). The steps are checked by running them again (as
# MAGIC a job retry would) and comparing the tables with aggregates computed in plain Python
# MAGIC from `readings_for`; the job definition is parsed with the Databricks SDK's own
# MAGIC `JobSettings`, the type `jobs.create` accepts.

# COMMAND ----------

from collections import defaultdict as _defaultdict

from databricks.sdk.service.jobs import ConditionTaskOp as _Op
from databricks.sdk.service.jobs import JobSettings as _JobSettings

lab = Lab("course1/week3/lab_workflows")
_DAYS = ("2024-07-01", "2024-07-02")


def _raw(day: str) -> list:
    rows = spark.table(raw_table).filter(sf.col("day") == day).collect()
    return sorted(tuple(r) for r in rows)


def _stats(day: str) -> dict:
    by_sensor = _defaultdict(list)
    for _, sensor, _, celsius in readings_for(day):
        by_sensor[sensor].append(celsius)
    return {(day, s): (len(v), round(sum(v) / len(v), 2), max(v)) for s, v in by_sensor.items()}


def _job():
    assert not is_blank(job), "job is not set"
    settings = _JobSettings.from_dict(job)
    return settings, {t.task_key: t for t in settings.tasks or []}


@lab.check(
    "Task 1: ingest lands a day once, however often it runs",
    "overwrite with replaceWhere replaces only the rows matching a condition",
)
def _():
    counts = [ingest(_DAYS[0]), ingest(_DAYS[0]), ingest(_DAYS[1])]
    assert counts == [36, 36, 36], f"ingest returned {counts}"
    for day in _DAYS:
        assert _raw(day) == sorted(readings_for(day)), f"the rows of {day} are wrong or doubled"
    assert spark.table(raw_table).count() == 72, "other days were touched or rows doubled"


@lab.check(
    "Task 2: rollup upserts the day's statistics",
    "MERGE on (day, sensor): update when matched, insert when not",
)
def _():
    highs = [rollup(_DAYS[0]), rollup(_DAYS[0]), rollup(_DAYS[1])]
    want = {**_stats(_DAYS[0]), **_stats(_DAYS[1])}
    rows = spark.table(stats_table).collect()
    got = {(r.day, r.sensor): (r.readings, r.avg_celsius, r.max_celsius) for r in rows}
    assert len(rows) == len(got), "some (day, sensor) rows appear twice"
    assert set(got) == set(want), f"{len(got)} (day, sensor) rows, expected {len(want)}"
    # Averages may differ by one cent: Spark rounds half up, Python's round() to even.
    off = [
        k
        for k, (n, avg, top) in want.items()
        if got[k][0] != n or got[k][2] != top or abs(got[k][1] - avg) > 0.011
    ]
    assert not off, f"the statistics of {off[:3]} differ from the readings"
    tops = [max(v[2] for k, v in want.items() if k[0] == d) for d in (_DAYS[0], _DAYS[0], _DAYS[1])]
    assert highs == tops, f"rollup returned {highs}, expected each day's highest reading"


@lab.check(
    "Task 3: the job: a parameter, two tasks, a dependency, retries",
    "tasks have a task_key; depends_on lists task keys; parameters have a name and default",
)
def _():
    settings, tasks = _job()
    assert settings.name == "greenhouse-daily", f"the job is named {settings.name!r}"
    params = {p.name: p.default for p in settings.parameters or []}
    assert params == {"day": "2024-07-01"}, f"the job parameters are {params}"
    assert {"ingest", "rollup"} <= set(tasks), f"tasks: {sorted(tasks)}"
    for key in ("ingest", "rollup"):
        nb = tasks[key].notebook_task
        assert nb is not None, f"{key} is not a notebook task"
        assert nb.notebook_path == f"tasks/{key}", f"{key} runs {nb.notebook_path!r}"
        assert tasks[key].max_retries == 2, f"{key} has max_retries {tasks[key].max_retries}"
    assert [d.task_key for d in tasks["rollup"].depends_on or []] == ["ingest"], (
        "rollup must depend on ingest"
    )
    assert not tasks["ingest"].depends_on, "ingest runs first"


@lab.check(
    "Task 4: a condition task gates the alert",
    "a condition_task has op, left and right; a dependency can require outcome 'true'",
)
def _():
    assert not is_blank(alert_tasks), "alert_tasks is not set"
    _, tasks = _job()
    hot = tasks.get("hot_day")
    assert hot is not None, "no task hot_day in the job"
    assert hot.condition_task is not None, "hot_day is not a condition task"
    cond = hot.condition_task
    assert cond.op == _Op.GREATER_THAN, f"the condition's op is {cond.op}"
    assert (cond.left, cond.right) == ("{{tasks.rollup.values.max_celsius}}", "30"), (
        f"the condition compares {cond.left!r} with {cond.right!r}"
    )
    assert [d.task_key for d in hot.depends_on or []] == ["rollup"], "hot_day runs after rollup"
    alert = tasks.get("alert")
    assert alert is not None, "no task alert in the job"
    assert alert.notebook_task is not None, "alert is not a notebook task"
    assert alert.notebook_task.notebook_path == "tasks/alert", "alert runs another notebook"
    deps = [(d.task_key, d.outcome) for d in alert.depends_on or []]
    assert deps == [("hot_day", "true")], f"alert depends on {deps}"


lab.summary()
