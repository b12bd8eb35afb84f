# Databricks notebook source
# MAGIC %md
# MAGIC # Notebooks, dbutils and reading data
# MAGIC
# MAGIC Course 1, week 2. A Databricks notebook is a sequence of cells that share one Python
# MAGIC process and one `spark` session. Besides Python, a cell can hold another language or a
# MAGIC command through a *magic* on its first line:
# MAGIC
# MAGIC | magic | does |
# MAGIC |---|---|
# MAGIC | `%md` | documentation, like this cell |
# MAGIC | `%sql` | a SQL query through the same SparkSession; the result is displayed |
# MAGIC | `%run ./other` | runs another notebook inline, sharing its definitions |
# MAGIC | `%pip install ...` | installs a Python package for this notebook |
# MAGIC | `%sh`, `%fs` | a shell command; a file-system command (`dbutils.fs`) |
# MAGIC
# MAGIC `dbutils` is the notebook's toolbox: **widgets** (parameters), **fs** (files),
# MAGIC **secrets** and **notebook** (run other notebooks, return a value).
# MAGIC
# MAGIC In this notebook you will parameterise a notebook with widgets, write files into a
# MAGIC Unity Catalog **volume**, and read them back as CSV, JSON, Parquet and Delta.

# COMMAND ----------

# MAGIC %md
# MAGIC ## Widgets: notebook parameters
# MAGIC
# MAGIC A widget declares a parameter with a default. A job (or `--param name=value` on the
# MAGIC local runner) overrides the default without editing the notebook. `get` always returns
# MAGIC a string, so convert it yourself.

# COMMAND ----------

import json
import os
import random

import pyspark.sql.functions as sf

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ

dbutils.widgets.text("catalog", "workspace" if IS_DATABRICKS else "spark_catalog")
dbutils.widgets.text("schema", "course1_notebooks")
dbutils.widgets.dropdown("region", "north", ["north", "south", "east", "west"], "Region")
dbutils.widgets.text("min_quantity", "3", "Minimum quantity")

catalog = dbutils.widgets.get("catalog")
schema = dbutils.widgets.get("schema")
region = dbutils.widgets.get("region")
min_quantity = int(dbutils.widgets.get("min_quantity"))
print(dbutils.widgets.getAll())

# COMMAND ----------

# MAGIC %md
# MAGIC ## A volume for files
# MAGIC
# MAGIC Tables live in a schema; *files* live in a **volume**, addressed as
# MAGIC `/Volumes/<catalog>/<schema>/<volume>/...`. On Databricks we create the volume in Unity
# MAGIC Catalog with SQL. The local runtime has no Unity Catalog: it maps `/Volumes` onto a
# MAGIC folder under `build/`, for `dbutils.fs` and for Spark alike, so the paths stay the same.

# COMMAND ----------

spark.sql(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
volume = f"/Volumes/{catalog}/{schema}/raw"
if IS_DATABRICKS:
    spark.sql(f"CREATE VOLUME IF NOT EXISTS {catalog}.{schema}.raw")
else:
    dbutils.fs.mkdirs(volume)
print(volume)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Writing files with `dbutils.fs`
# MAGIC
# MAGIC We generate 60 orders (seeded, so identical on every run) and write them as a CSV file
# MAGIC and a JSON Lines file with `dbutils.fs.put`. `dbutils.fs.head` shows the start of a file.

# COMMAND ----------

rng = random.Random(7)
regions = ["north", "south", "east", "west"]
columns = ["order_id", "region", "product", "quantity", "unit_price"]
orders = [
    (
        i,
        regions[i % 4],
        rng.choice(["widget", "gadget", "gizmo"]),
        rng.randint(1, 6),
        rng.choice([2.5, 7.25, 12.0]),
    )
    for i in range(1, 61)
]
csv_text = ",".join(columns) + "\n" + "".join(",".join(map(str, o)) + "\n" for o in orders)
json_text = "".join(json.dumps(dict(zip(columns, o, strict=True))) + "\n" for o in orders)

dbutils.fs.put(f"{volume}/orders.csv", csv_text, True)
dbutils.fs.put(f"{volume}/orders.json", json_text, True)
print(dbutils.fs.head(f"{volume}/orders.csv", 120))

files = {f.name: f.size for f in dbutils.fs.ls(volume)}
display(dbutils.fs.ls(volume))
assert files["orders.csv"] == len(csv_text.encode())
assert files["orders.json"] == len(json_text.encode())

# COMMAND ----------

# MAGIC %md
# MAGIC ## Reading CSV: inferred versus declared schema
# MAGIC
# MAGIC CSV carries no types. Without help every column is a string; `inferSchema` makes Spark
# MAGIC read the data an extra time to guess; a declared schema is both faster and certain.

# COMMAND ----------

raw = spark.read.option("header", True).csv(f"{volume}/orders.csv")
inferred = spark.read.option("header", True).option("inferSchema", True).csv(f"{volume}/orders.csv")
order_schema = "order_id INT, region STRING, product STRING, quantity INT, unit_price DOUBLE"
declared = spark.read.option("header", True).schema(order_schema).csv(f"{volume}/orders.csv")

print("no schema:", raw.dtypes)
print("inferred: ", inferred.dtypes)
print("declared: ", declared.dtypes)
assert dict(raw.dtypes)["quantity"] == "string"
assert dict(inferred.dtypes)["unit_price"] == "double"
assert dict(declared.dtypes) == {
    "order_id": "int",
    "region": "string",
    "product": "string",
    "quantity": "int",
    "unit_price": "double",
}
assert declared.count() == len(orders)

# COMMAND ----------

# MAGIC %md
# MAGIC ## JSON, Parquet and Delta
# MAGIC
# MAGIC JSON records carry their field names; Parquet and Delta store the schema with the data,
# MAGIC in a compressed columnar layout. We write the declared DataFrame as Parquet into the
# MAGIC volume and as a Delta table in the schema, then read all four back.

# COMMAND ----------

from_json = spark.read.json(f"{volume}/orders.json")

declared.write.mode("overwrite").parquet(f"{volume}/orders_parquet")
from_parquet = spark.read.parquet(f"{volume}/orders_parquet")

orders_table = f"{catalog}.{schema}.orders"
declared.write.mode("overwrite").saveAsTable(orders_table)
from_delta = spark.table(orders_table)

counts = {
    "csv": declared.count(),
    "json": from_json.count(),
    "parquet": from_parquet.count(),
    "delta": from_delta.count(),
}
print(counts)
assert set(counts.values()) == {len(orders)}
assert dict(from_parquet.dtypes) == dict(declared.dtypes)
assert sorted(from_json.columns) == sorted(columns)

# COMMAND ----------

# MAGIC %md
# MAGIC ## The widgets at work
# MAGIC
# MAGIC The region and the minimum quantity come from the widgets. Change them (on Databricks
# MAGIC in the widget bar, locally with `--param region=east --param min_quantity=5`) and the
# MAGIC same notebook answers a different question.

# COMMAND ----------

selected = from_delta.filter(
    (sf.col("region") == region) & (sf.col("quantity") >= min_quantity)
).withColumn("amount", sf.col("quantity") * sf.col("unit_price"))
display(selected.orderBy("order_id"))

expected = [o for o in orders if o[1] == region and o[3] >= min_quantity]
assert selected.count() == len(expected)

# COMMAND ----------

# MAGIC %md
# MAGIC In a `%sql` cell, `:region` and `:min_quantity` are the widgets' values, and
# MAGIC `IDENTIFIER(...)` turns a string into a table name:

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT product, COUNT(*) AS orders, SUM(quantity) AS units
# MAGIC FROM IDENTIFIER(:catalog || '.' || :schema || '.orders')
# MAGIC WHERE region = :region AND quantity >= CAST(:min_quantity AS INT)
# MAGIC GROUP BY product
# MAGIC ORDER BY product

# COMMAND ----------

# MAGIC %md
# MAGIC ## What you saw
# MAGIC
# MAGIC - Magics mix Markdown, SQL and shell into one Python notebook.
# MAGIC - Widgets make a notebook a parameterised program; `get` returns strings.
# MAGIC - Files belong in volumes (`/Volumes/catalog/schema/volume`), tables in schemas.
# MAGIC - CSV needs a schema; JSON, Parquet and Delta bring their own.
