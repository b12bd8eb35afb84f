# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: a supplier's products in the catalog
# MAGIC
# MAGIC Course 1, week 1. A supplier sends its product list as a CSV file. Your team wants
# MAGIC it in the catalog: a managed table, a view for the premium range, a shared VAT
# MAGIC function, a small report file next to the raw data, and an inventory of what the
# MAGIC schema now holds.
# MAGIC
# MAGIC Replace every `FILL_IN` with your code, run the notebook top to bottom, and read the
# MAGIC checks at the end. Locally: `nox -s grade -- labs/course1/week1/lab_workspace.py`.

# COMMAND ----------

# MAGIC %run ../../_labkit

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup (run as is)

# COMMAND ----------

import csv
import json
import os
import random
from pathlib import Path

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
catalog = "workspace" if IS_DATABRICKS else "spark_catalog"
schema = "course1_lab_workspace"
spark.sql(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
volume = f"/Volumes/{catalog}/{schema}/supplier"
if IS_DATABRICKS:
    spark.sql(f"CREATE VOLUME IF NOT EXISTS {catalog}.{schema}.supplier")
else:
    dbutils.fs.mkdirs(volume)

# Start from an empty schema, so that the checks see only what this run made.
spark.sql(f"DROP VIEW IF EXISTS {catalog}.{schema}.premium_products")
spark.sql(f"DROP TABLE IF EXISTS {catalog}.{schema}.products")
spark.sql(f"DROP FUNCTION IF EXISTS {catalog}.{schema}.price_with_vat")
Path(volume, "report.json").unlink(missing_ok=True)

rng = random.Random(3)
categories = ["garden", "kitchen", "tools", "lighting"]
names = ["Gießkanne", "café press", "saw", "lamp", "rake", "kettle", "drill", "bulb"]
products = [
    (
        f"SKU-{i:03d}",
        f"{rng.choice(names)} {i}",
        rng.choice(categories),
        rng.choice([9.5, 24.0, 99.99, 100.0, 149.0]),
    )
    for i in range(1, 41)
]
with Path(volume, "products.csv").open("w", encoding="utf-8", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["sku", "name", "category", "price"])
    writer.writerows(products)
products_table = f"{catalog}.{schema}.products"
print(f"{len(products)} products in {volume}/products.csv; the table to create: {products_table}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 1: a managed table from the volume's CSV
# MAGIC
# MAGIC Read `products.csv` from the volume with Spark, with a header and a **declared** schema
# MAGIC (`price` a DOUBLE, the rest strings), and save it as the **managed** table
# MAGIC `products_table` (a three-part name).

# COMMAND ----------

# TODO: read products.csv with a declared schema
products_df = FILL_IN
# TODO: save products_df as the managed table products_table (replace the line below)
FILL_IN()

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: a view of the premium range
# MAGIC
# MAGIC Create the view `premium_products` in the same catalog and schema: the `sku`, `name` and
# MAGIC `price` of the products priced at 100 or more.

# COMMAND ----------

# TODO: CREATE VIEW ... premium_products (replace the line below)
FILL_IN()

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 3: a shared function
# MAGIC
# MAGIC Create the SQL function `price_with_vat(price DOUBLE, rate DOUBLE)` in the schema: the
# MAGIC price with VAT added (`rate` 0.2 means 20 %), rounded to 2 decimals. Anyone with access
# MAGIC to the schema can then call it from SQL.

# COMMAND ----------

# TODO: CREATE FUNCTION ... price_with_vat (replace the line below)
FILL_IN()

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: a report file next to the raw data
# MAGIC
# MAGIC With **plain Python** (no Spark), read `products.csv` from the volume and write
# MAGIC `report.json` into the same volume: a JSON object with `"products"` (how many) and
# MAGIC `"per_category"` (an object: category -> number of products).

# COMMAND ----------

# TODO: count the products in the CSV with plain Python, and write report.json
report = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 5: what the schema holds
# MAGIC
# MAGIC Set `inventory` to a dict from each table or view name in the schema (just the name,
# MAGIC e.g. `"products"`) to its type as the catalog reports it (`"MANAGED"`, `"EXTERNAL"`,
# MAGIC `"VIEW"`). On Databricks `information_schema.tables` has it; everywhere, so does
# MAGIC Spark's catalog API.

# COMMAND ----------

# TODO: name -> type of every table and view in catalog.schema
inventory = FILL_IN

# COMMAND ----------

# MAGIC %run ./checks/lab_workspace
