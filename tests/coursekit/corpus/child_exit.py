# Databricks notebook source
# MAGIC %md
# MAGIC A task notebook that ends with a non-string value: Databricks hands the caller `str(value)`.

# COMMAND ----------

dbutils.widgets.text("rows", "3")
rows = int(dbutils.widgets.get("rows"))
dbutils.notebook.exit({"rows": rows, "ok": True})
