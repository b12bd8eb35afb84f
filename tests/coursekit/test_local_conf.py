"""The local session's settings for a 2-core machine, checked by what Spark runs.

Delta's VACUUM lists the table's files as a Spark job whose task count is
``spark.sql.sources.parallelPartitionDiscovery.parallelism`` (10,000 by default): a
VACUUM of a 40-file table took about a minute locally. The runtime sets it to 2.
"""

from __future__ import annotations

import os

import pytest

# Starts Spark in the pytest process: one worker holds every such test (conftest.py).
pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark-session")]


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    from coursekit.runtime.session import build_session  # noqa: PLC0415

    root = tmp_path_factory.mktemp("conf")
    return build_session(root / "warehouse", app_name="test_conf", jvm_log=root / "jvm.log")


def _stage_tasks(spark, group: str) -> list[int]:
    """The task count of every stage the job group ran."""
    tracker = spark.sparkContext.statusTracker()
    counts = []
    for job in tracker.getJobIdsForGroup(group):
        info = tracker.getJobInfo(job)
        for stage in info.stageIds if info else []:
            stage_info = tracker.getStageInfo(stage)
            counts.append(stage_info.numTasks if stage_info else 0)
    return counts


def test_vacuum_lists_files_with_few_tasks_and_still_deletes_them(spark) -> None:
    spark.sql("DROP TABLE IF EXISTS conf_vacuum")
    spark.range(400).repartition(8).write.format("delta").saveAsTable("conf_vacuum")
    spark.sql("OPTIMIZE conf_vacuum")
    location = spark.sql("DESCRIBE DETAIL conf_vacuum").collect()[0].location
    folder = location.removeprefix("file:")
    parquet = [n for n in os.listdir(folder) if n.endswith(".parquet")]
    assert len(parquet) == 9  # 8 small files and the compacted one, until VACUUM
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        spark.sparkContext.setJobGroup("vacuum", "VACUUM conf_vacuum")
        spark.sql("VACUUM conf_vacuum RETAIN 0 HOURS")
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "true")
    # The listing stage has one task per parallelism slot (10,000 with Spark's default);
    # VACUUM's other stages follow the table's 2 snapshot partitions.
    stages = _stage_tasks(spark, "vacuum")
    assert stages, "VACUUM ran no Spark job in its group"
    assert max(stages) <= 2, f"VACUUM's stages ran {sorted(stages)[-5:]} tasks"
    assert len([n for n in os.listdir(folder) if n.endswith(".parquet")]) == 1
    assert spark.table("conf_vacuum").count() == 400
