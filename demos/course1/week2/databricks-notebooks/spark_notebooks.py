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

import csv
import io
import json
import os
import random
from pathlib import Path

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
# MAGIC ## The other magics at work
# MAGIC
# MAGIC ### `%run`: include another notebook
# MAGIC
# MAGIC `%run ./includes/order_rules` runs that notebook *inside this one*: its functions and
# MAGIC variables are defined here afterwards. It is how a team shares helpers between
# MAGIC notebooks. (`dbutils.notebook.run`, week 3, is the other way: it runs a notebook as a
# MAGIC separate job and only returns a string.) A `%run` cell holds nothing else.

# COMMAND ----------

# MAGIC %run ./includes/order_rules

# COMMAND ----------

# with_amounts and VAT_RATE come from the %run above (linters cannot see into it).
vat_rate = VAT_RATE  # noqa: F821  # ty: ignore[unresolved-reference]
priced = with_amounts(declared)  # noqa: F821  # ty: ignore[unresolved-reference]
first = priced.orderBy("order_id").collect()[0]
print(f"VAT_RATE from the included notebook: {vat_rate}; first order: {first.asDict()}")
o = orders[0]
assert first.amount == round(o[3] * o[4], 2)
assert first.gross == round(o[3] * o[4] * (1 + vat_rate), 2)

# COMMAND ----------

# MAGIC %md
# MAGIC ### `%fs`: file commands without Python
# MAGIC
# MAGIC `%fs ls /path` is `dbutils.fs.ls("/path")` with a table as output. A `%fs` cell takes a
# MAGIC literal path (no Python variables), so we list the top of `/Volumes`: one folder per
# MAGIC catalog that has volumes.

# COMMAND ----------

# MAGIC %fs ls /Volumes/

# COMMAND ----------

catalogs_with_volumes = {f.name.rstrip("/") for f in dbutils.fs.ls("/Volumes/")}
print(catalogs_with_volumes)
assert catalog in catalogs_with_volumes

# COMMAND ----------

# MAGIC %md
# MAGIC ### `%sh`: a shell on the driver
# MAGIC
# MAGIC A `%sh` cell runs bash **on the driver machine only** (never on the executors) and
# MAGIC sees the driver's local disk. A supplier's stock file is written to `/tmp` from the
# MAGIC shell, then read back in Python, which sees the same local disk. (Locally the shell is
# MAGIC your own machine's, and it does not see the runtime's `/Volumes` mapping: only Python,
# MAGIC Spark and `dbutils` do. So keep `%sh` to driver-local work, and copy files into a
# MAGIC volume from Python.)

# COMMAND ----------

# MAGIC %sh
# MAGIC printf 'product,stock\nwidget,12\ngadget,0\ngizmo,7\n' > /tmp/course1_stock.csv
# MAGIC wc -l /tmp/course1_stock.csv
# MAGIC uname -s

# COMMAND ----------

stock_text = Path("/tmp/course1_stock.csv").read_text(encoding="utf-8")
stock = {row["product"]: int(row["stock"]) for row in csv.DictReader(io.StringIO(stock_text))}
Path(volume, "stock.csv").write_text(stock_text, encoding="utf-8")  # into the volume
print(stock)
assert stock == {"widget": 12, "gadget": 0, "gizmo": 7}
assert spark.read.option("header", True).csv(f"{volume}/stock.csv").count() == 3

# COMMAND ----------

# MAGIC %md
# MAGIC ### Secrets: credentials that never appear in code or output
# MAGIC
# MAGIC An API token does not belong in a notebook. It goes into a **secret scope** once
# MAGIC (`databricks secrets create-scope course1`, then
# MAGIC `databricks secrets put-secret course1 shop-api-token`), and the notebook asks for it
# MAGIC by name. Databricks redacts a secret's value wherever the notebook prints it.
# MAGIC
# MAGIC The local runtime reads secrets from environment variables named
# MAGIC `COURSEKIT_SECRET_<SCOPE>_<KEY>` and redacts them the same way. For the demo the cell
# MAGIC sets one when it is missing; in real use you `export` it in your shell.

# COMMAND ----------

secret_scope, secret_key = "course1", "shop-api-token"
if not IS_DATABRICKS:
    os.environ.setdefault("COURSEKIT_SECRET_COURSE1_SHOP_API_TOKEN", "tok-" + "7f3a" * 6)
# Databricks returns SecretScope objects, each with a name.
scopes = {getattr(s, "name", s) for s in dbutils.secrets.listScopes()}
if secret_scope in scopes:
    token = dbutils.secrets.get(scope=secret_scope, key=secret_key)
    headers = {"Authorization": f"Bearer {token}"}  # what a REST call to the shop would send
    print("the token, printed:", token)  # shows [REDACTED]
    assert len(token) > 0
    assert headers["Authorization"].endswith(token)
else:
    print(f"no secret scope {secret_scope!r} in this workspace: create it as described above")

# COMMAND ----------

# MAGIC %md
# MAGIC ## What you saw
# MAGIC
# MAGIC - Magics mix Markdown, SQL, shell and file commands into one Python notebook; `%run`
# MAGIC   includes another notebook's definitions.
# MAGIC - Secrets are fetched by name and redacted in output.
# MAGIC - Widgets make a notebook a parameterised program; `get` returns strings.
# MAGIC - Files belong in volumes (`/Volumes/catalog/schema/volume`), tables in schemas.
# MAGIC - CSV needs a schema; JSON, Parquet and Delta bring their own.
