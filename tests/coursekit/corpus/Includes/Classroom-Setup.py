# Databricks notebook source
# MAGIC %md
# MAGIC Included with `%run ./Includes/Classroom-Setup $mode="reset"`, the way course exports
# MAGIC set up a lesson: it reads its argument as a widget and publishes names and a
# MAGIC Spark conf key that the including notebook's SQL uses as `${da.schema_name}`.

# COMMAND ----------

dbutils.widgets.text("mode", "keep")
setup_mode = dbutils.widgets.get("mode")
setup_lesson = getArgument("lesson", "unnamed")

# COMMAND ----------

# DBTITLE 1,Publish the lesson's schema
da_schema_name = f"corpus_{setup_lesson}"
spark.conf.set("da.schema_name", da_schema_name)
spark.sql(f"CREATE SCHEMA IF NOT EXISTS {da_schema_name}")
print(f"setup ran with mode={setup_mode}, lesson={setup_lesson}")
