# Databricks notebook source
# MAGIC %md
# MAGIC # Idioms of classic-compute notebooks
# MAGIC
# MAGIC `sc`, `df.display()`, `hive_metastore` names, Delta without `USING`, a Python UDF that
# MAGIC talks to MLflow from Spark's worker processes.

# COMMAND ----------

import mlflow
from pyspark.sql.functions import lit, udf

assert sc.defaultParallelism >= 1
assert sc.parallelize(range(10)).sum() == 45

# COMMAND ----------

# DBTITLE 1,hive_metastore is the session catalog
spark.sql("CREATE SCHEMA IF NOT EXISTS hive_metastore.corpus_idioms")
spark.sql("CREATE TABLE hive_metastore.corpus_idioms.plain (id BIGINT, name STRING)")
spark.sql("INSERT INTO hive_metastore.corpus_idioms.plain VALUES (1, 'hive_metastore.x')")
spark.range(5).write.saveAsTable("`hive_metastore`.corpus_idioms.saved")
assert spark.table("spark_catalog.corpus_idioms.saved").count() == 5
assert spark.read.table("hive_metastore.corpus_idioms.saved").count() == 5
assert spark.catalog.tableExists("hive_metastore.corpus_idioms.plain")
# The string literal is data, not a name: it is not rewritten.
assert spark.table("hive_metastore.corpus_idioms.plain").collect()[0].name == "hive_metastore.x"

# COMMAND ----------

# MAGIC %sql
# MAGIC USE CATALOG hive_metastore;
# MAGIC SHOW TABLES IN corpus_idioms

# COMMAND ----------

# DBTITLE 1,Delta is the default table format
for name in ("plain", "saved"):
    detail = spark.sql(f"DESCRIBE DETAIL hive_metastore.corpus_idioms.{name}").collect()[0]
    assert detail.format == "delta", (name, detail.format)

# COMMAND ----------

spark.range(3).display()  # ty: ignore[not-callable]
spark.table("hive_metastore.corpus_idioms.saved").display()  # ty: ignore[not-callable]

# COMMAND ----------

# DBTITLE 1,A Python UDF sees the driver's MLflow store
experiment_id = mlflow.set_experiment("/Shared/corpus-udf").experiment_id


@udf("string")
def experiment_seen_by_worker(name: str) -> str:
    found = mlflow.MlflowClient().get_experiment_by_name(name)
    return f"{mlflow.get_tracking_uri()}|{found.experiment_id if found else None}"


seen = spark.range(1).select(experiment_seen_by_worker(lit("/Shared/corpus-udf"))).collect()[0][0]
assert seen == f"{mlflow.get_tracking_uri()}|{experiment_id}", seen
