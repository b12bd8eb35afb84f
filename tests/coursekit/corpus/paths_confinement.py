# Databricks notebook source
# MAGIC %md
# MAGIC # Every path form, through every API, lands in the run's DBFS
# MAGIC
# MAGIC The widget `probe` names a directory that must never appear on the host (the test
# MAGIC checks `/mnt/<probe>`, `/dbfs` and `/Volumes/<probe>` there after the run).

# COMMAND ----------

import os
import shutil
from pathlib import Path

import pandas as pd
from pyspark.sql.functions import udf

dbutils.widgets.text("probe", "coursekit_probe")
probe = dbutils.widgets.get("probe")
root = Path(dbutils.fs.local_path("dbfs:/"))
forms = {
    "dbfs": f"dbfs:/{probe}/dbfs_form",
    "mnt": f"/mnt/{probe}/mnt_form",
    "volume": f"/Volumes/{probe}/s/v/volume_form",
    "bare": f"/{probe}/bare_form",
}
# Where each form lives under the root, and how plain Python names the same place.
inside = {
    "dbfs": root / probe / "dbfs_form",
    "mnt": root / "mnt" / probe / "mnt_form",
    "volume": root / "Volumes" / probe / "s" / "v" / "volume_form",
    "bare": root / probe / "bare_form",
}
python_name = {
    "dbfs": f"/dbfs/{probe}/dbfs_form",
    "mnt": f"/mnt/{probe}/mnt_form",
    "volume": f"/Volumes/{probe}/s/v/volume_form",
    "bare": f"/dbfs/{probe}/bare_form",
}

# COMMAND ----------

# DBTITLE 1,Spark writes, then dbutils and plain Python read the same files
for form, path in forms.items():
    spark.range(4).write.mode("overwrite").format("delta").save(f"{path}/table")
    one_row = spark.createDataFrame([(form,)], "form STRING").coalesce(1)
    one_row.write.mode("overwrite").csv(f"{path}/csv")
    assert (inside[form] / "table" / "_delta_log").is_dir(), form
    listed = {f.name for f in dbutils.fs.ls(f"{path}/table")}
    assert "_delta_log/" in listed, (form, listed)
    assert Path(python_name[form], "table", "_delta_log").is_dir(), form
    assert "_delta_log" in os.listdir(f"{python_name[form]}/table"), form
    csv_file = next(p for p in os.listdir(f"{python_name[form]}/csv") if p.endswith(".csv"))
    with open(f"{python_name[form]}/csv/{csv_file}") as f:
        assert f.read().strip() == form
    assert pd.read_csv(f"{python_name[form]}/csv/{csv_file}", header=None)[0][0] == form

# COMMAND ----------

# DBTITLE 1,Plain Python writes, then Spark and dbutils read
for form, path in forms.items():
    target = Path(python_name[form]) / "from_python" / "rows.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("n\n1\n2\n")
    shutil.copy(target, target.with_name("copy.csv"))
    os.rename(target.with_name("copy.csv"), target.with_name("moved.csv"))
    read = spark.read.option("header", True).csv(f"{path}/from_python/rows.csv")
    assert [r.n for r in read.collect()] == ["1", "2"], form
    assert dbutils.fs.head(f"{path}/from_python/moved.csv") == "n\n1\n2\n", form
    assert (inside[form] / "from_python" / "moved.csv").is_file(), form

# COMMAND ----------

# DBTITLE 1,file: URIs of the FUSE paths are DBFS too
spark.range(2).write.mode("overwrite").parquet(f"file:/dbfs/{probe}/file_form")
assert (root / probe / "file_form").is_dir()
assert spark.read.parquet(f"dbfs:/{probe}/file_form").count() == 2
spark.range(3).write.mode("overwrite").parquet(f"file:/mnt/{probe}/file_mnt")
assert spark.read.parquet(f"/mnt/{probe}/file_mnt").count() == 3
assert dbutils.fs.ls(f"file:/dbfs/{probe}/file_form")
assert dbutils.fs.head(f"file:/mnt/{probe}/mnt_form/from_python/rows.csv") == "n\n1\n2\n"

# COMMAND ----------

# MAGIC %sql
# MAGIC CREATE TABLE corpus_paths_sql USING DELTA LOCATION 'file:/dbfs/${probe}/sql_location'
# MAGIC   AS SELECT 1 AS one

# COMMAND ----------

assert (root / probe / "sql_location" / "_delta_log").is_dir()
rows = spark.sql(f"SELECT * FROM delta.`/mnt/{probe}/mnt_form/table`").count()
assert rows == 4

# COMMAND ----------

# DBTITLE 1,A dbutils write, read back by Spark and Python
dbutils.fs.put(f"/mnt/{probe}/put.json", '{"a": 1}', True)
assert spark.read.json(f"dbfs:/mnt/{probe}/put.json").collect()[0].a == 1
assert Path(f"/dbfs/mnt/{probe}/put.json").read_text() == '{"a": 1}'
assert Path(f"/mnt/{probe}/put.json").read_text() == '{"a": 1}'

# COMMAND ----------


# DBTITLE 1,Spark's Python workers see the same files
@udf("string")
def read_in_worker(path: str) -> str:
    with open(path) as f:
        return f.read()


got = spark.createDataFrame([(f"/dbfs/mnt/{probe}/put.json",)], "p STRING")
assert got.select(read_in_worker("p")).collect()[0][0] == '{"a": 1}'

# COMMAND ----------

# DBTITLE 1,Escapes are refused or normalised, never outside the root
for bad in (f"/mnt/{probe}/../../../etc/x", "dbfs:/../x"):
    try:
        dbutils.fs.put(bad, "x")
        refused = ""
    except ValueError as exc:
        refused = str(exc)
    assert "'..'" in refused, f"dbutils wrote {bad}"
# Plain Python: /dbfs/.. is the host's / (as on Databricks), never a path into the root.
assert os.path.normpath(f"/dbfs/{probe}/../..") == "/"
