# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: Spark DataFrames on a month of shop orders
# MAGIC
# MAGIC Course 1, week 2. A small web shop exports its orders as CSV and its customers as JSON
# MAGIC into a volume. Your job: load both with explicit schemas, answer four questions the
# MAGIC shop's manager asked, and express one of them in Spark SQL.
# MAGIC
# MAGIC Replace every `FILL_IN` with your code, run the notebook top to bottom, and read the
# MAGIC checks at the end. Locally: `nox -s grade -- labs/course1/week2/lab_spark.py`.

# COMMAND ----------

# MAGIC %run ../../_labkit

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup: the shop's files (run as is)

# COMMAND ----------

import json
import os
import random
from datetime import date, timedelta

import pyspark.sql.functions as sf
from pyspark.sql import Window

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ
catalog = "workspace" if IS_DATABRICKS else "spark_catalog"
schema = "course1_lab_spark"
spark.sql(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
volume = f"/Volumes/{catalog}/{schema}/shop"
if IS_DATABRICKS:
    spark.sql(f"CREATE VOLUME IF NOT EXISTS {catalog}.{schema}.shop")
else:
    dbutils.fs.mkdirs(volume)

rng = random.Random(2024)
countries = ["DE", "FR", "NL", "PL", "ES"]
customers = [
    {"customer_id": c, "name": f"customer {c}", "country": rng.choice(countries)}
    for c in range(1, 41)
]
orders = []
for order_id in range(1, 301):
    day = date(2024, 3, 1) + timedelta(days=rng.randrange(31))
    quantity = rng.randint(1, 5)
    price = rng.choice([4.99, 12.5, 19.0, 49.9, 120.0])
    # A few orders were cancelled: they carry no amount.
    status = "cancelled" if rng.random() < 0.08 else "paid"
    orders.append((order_id, rng.randint(1, 40), day.isoformat(), quantity, price, status))
csv_text = "order_id,customer_id,order_date,quantity,unit_price,status\n" + "".join(
    ",".join(map(str, o)) + "\n" for o in orders
)
dbutils.fs.put(f"{volume}/orders.csv", csv_text, True)
dbutils.fs.put(f"{volume}/customers.json", "".join(json.dumps(c) + "\n" for c in customers), True)
print(f"wrote {len(orders)} orders and {len(customers)} customers to {volume}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 1: load the orders with a declared schema
# MAGIC
# MAGIC Read `orders.csv` into `orders_df` with a header and **declared** types: `order_date`
# MAGIC as a DATE, `unit_price` as a DOUBLE, the ids and quantity as INT. Read
# MAGIC `customers.json` into `customers_df`.

# COMMAND ----------

# TODO: read orders.csv with a header and a declared schema, and customers.json
orders_df = FILL_IN
customers_df = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: revenue per country
# MAGIC
# MAGIC Only **paid** orders count. Build `revenue_by_country` with the columns `country` and
# MAGIC `revenue` (the sum of quantity x unit_price, rounded to 2 decimals), highest first.

# COMMAND ----------

# TODO: paid orders only, joined to customers, revenue per country, highest first
revenue_by_country = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 3: each customer's biggest order
# MAGIC
# MAGIC With a **window function**, keep for every customer their single largest paid order
# MAGIC by amount (quantity x unit_price; on a tie, the lower `order_id`). `biggest_orders` has
# MAGIC the columns `customer_id`, `order_id`, `amount`.

# COMMAND ----------

# TODO: a window per customer, ordered by amount (then order_id); keep the first row
biggest_orders = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: weekly paid orders
# MAGIC
# MAGIC `weekly` counts paid orders per ISO week of `order_date`: columns `week` (the week
# MAGIC number) and `orders`, in week order.

# COMMAND ----------

# TODO: count paid orders per ISO week of order_date
weekly = FILL_IN

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 5: the same revenue question in SQL
# MAGIC
# MAGIC Register `orders_df` and `customers_df` as temporary views named `orders` and
# MAGIC `customers`, then write the query of task 2 in SQL as `revenue_sql` (a string); the
# MAGIC check runs it with `spark.sql`.

# COMMAND ----------

# TODO: register the temporary views `orders` and `customers`, then write the query
revenue_sql = FILL_IN

# COMMAND ----------

# MAGIC %run ./checks/lab_spark
