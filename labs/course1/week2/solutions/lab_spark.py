# Databricks notebook source
# MAGIC %md
# MAGIC # Lab: Spark DataFrames on a month of shop orders (solution)
# MAGIC
# MAGIC Course 1, week 2. A small web shop exports its orders as CSV and its customers as JSON
# MAGIC into a volume. Your job: load both with explicit schemas, answer four questions the
# MAGIC shop's manager asked, and express one of them in Spark SQL.
# MAGIC
# MAGIC Replace every `FILL_IN` with your code, run the notebook top to bottom, and read the
# MAGIC checks at the end. Locally: `nox -s grade -- labs/course1/week2/lab_spark.py`.

# COMMAND ----------

# MAGIC %run ../../../_labkit

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

orders_df = (
    spark.read.option("header", True)
    .schema(
        "order_id INT, customer_id INT, order_date DATE, quantity INT, "
        "unit_price DOUBLE, status STRING"
    )
    .csv(f"{volume}/orders.csv")
)
customers_df = spark.read.schema("customer_id INT, name STRING, country STRING").json(
    f"{volume}/customers.json"
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 2: revenue per country
# MAGIC
# MAGIC Only **paid** orders count. Build `revenue_by_country` with the columns `country` and
# MAGIC `revenue` (the sum of quantity x unit_price, rounded to 2 decimals), highest first.

# COMMAND ----------

revenue_by_country = (
    orders_df.filter(sf.col("status") == "paid")
    .join(customers_df, "customer_id")
    .groupBy("country")
    .agg(sf.round(sf.sum(sf.col("quantity") * sf.col("unit_price")), 2).alias("revenue"))
    .orderBy(sf.desc("revenue"))
)
display(revenue_by_country)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 3: each customer's biggest order
# MAGIC
# MAGIC With a **window function**, keep for every customer their single largest paid order
# MAGIC by amount (quantity x unit_price; on a tie, the lower `order_id`). `biggest_orders` has
# MAGIC the columns `customer_id`, `order_id`, `amount`.

# COMMAND ----------

by_amount = Window.partitionBy("customer_id").orderBy(sf.desc("amount"), "order_id")
biggest_orders = (
    orders_df.filter(sf.col("status") == "paid")
    .withColumn("amount", sf.col("quantity") * sf.col("unit_price"))
    .withColumn("rank", sf.row_number().over(by_amount))
    .filter(sf.col("rank") == 1)
    .select("customer_id", "order_id", "amount")
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 4: weekly paid orders
# MAGIC
# MAGIC `weekly` counts paid orders per ISO week of `order_date`: columns `week` (the week
# MAGIC number) and `orders`, in week order.

# COMMAND ----------

weekly = (
    orders_df.filter(sf.col("status") == "paid")
    .groupBy(sf.weekofyear("order_date").alias("week"))
    .agg(sf.count("*").alias("orders"))
    .orderBy("week")
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Task 5: the same revenue question in SQL
# MAGIC
# MAGIC Register `orders_df` and `customers_df` as temporary views named `orders` and
# MAGIC `customers`, then write the query of task 2 in SQL as `revenue_sql` (a string); the
# MAGIC check runs it with `spark.sql`.

# COMMAND ----------

orders_df.createOrReplaceTempView("orders")
customers_df.createOrReplaceTempView("customers")
revenue_sql = """
SELECT c.country, ROUND(SUM(o.quantity * o.unit_price), 2) AS revenue
FROM orders o JOIN customers c ON o.customer_id = c.customer_id
WHERE o.status = 'paid'
GROUP BY c.country
ORDER BY revenue DESC
"""

# COMMAND ----------

# MAGIC %run ../checks/lab_spark
