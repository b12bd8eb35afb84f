# Databricks notebook source
# MAGIC %md-sandbox
# MAGIC
# MAGIC <div style="text-align: center; padding-top: 9px;">
# MAGIC   <b>An export with every variation the source format allows</b>
# MAGIC </div>

# COMMAND ----------

# MAGIC
# MAGIC
# MAGIC %md
# MAGIC ## Blank magic lines before the command
# MAGIC
# MAGIC Workspace exports sometimes open a cell with empty `# MAGIC` lines.

# COMMAND ----------

# MAGIC %run ./Includes/Classroom-Setup $mode="reset" $lesson=variations

# COMMAND ----------

assert setup_mode == "reset", setup_mode  # noqa: F821  # ty: ignore[unresolved-reference]
assert setup_lesson == "variations", setup_lesson  # noqa: F821  # ty: ignore[unresolved-reference]
# %run's arguments were the included notebook's widgets, not this notebook's.
assert "mode" not in dbutils.widgets.getAll()

# COMMAND ----------

# MAGIC   %sql
# MAGIC   -- extra spaces before the magic, and a Spark conf key set by the include
# MAGIC   USE ${da.schema_name}

# COMMAND ----------

# MAGIC %python
# MAGIC assert spark.catalog.currentDatabase() == "corpus_variations"

# COMMAND ----------

# DBTITLE 1,Widgets declared in SQL
# MAGIC %sql
# MAGIC CREATE WIDGET TEXT table_name DEFAULT "orders";
# MAGIC CREATE WIDGET DROPDOWN region DEFAULT "EU" CHOICES SELECT * FROM (VALUES ("EU"), ("US"));
# MAGIC CREATE OR REPLACE TABLE ${table_name} AS
# MAGIC   SELECT id, CASE WHEN id % 2 = 0 THEN 'EU' ELSE 'US' END AS region FROM range(10);

# COMMAND ----------

assert dbutils.widgets.get("table_name") == "orders"
assert getArgument("region") == "EU"

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT count(*) AS n FROM ${table_name} WHERE region = '${region}' AND region = :region

# COMMAND ----------

assert _sqldf.collect()[0].n == 5  # noqa: F821  # ty: ignore[unresolved-reference]

# COMMAND ----------

# MAGIC %scala
# MAGIC val orders = spark.table("orders")
# MAGIC orders.createOrReplaceTempView("orders_scala")

# COMMAND ----------

# MAGIC %r
# MAGIC library(SparkR)
# MAGIC head(sql("SELECT 1"))

# COMMAND ----------

# MAGIC %sql
# MAGIC REMOVE WIDGET region

# COMMAND ----------

assert "region" not in dbutils.widgets.getAll()
value = dbutils.notebook.run("./child_exit", 60, {"rows": "7"})
assert value == "{'rows': 7, 'ok': True}", value
