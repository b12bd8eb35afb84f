# Databricks notebook source
# MAGIC %md
# MAGIC # Spark operations: from a DataFrame to a query plan
# MAGIC
# MAGIC Course 1, week 2. A Spark DataFrame is a *description* of a computation, not data in
# MAGIC memory: transformations (`select`, `filter`, `withColumn`, `groupBy`, `join`) build a
# MAGIC logical plan, and nothing runs until an *action* (`count`, `collect`, `display`,
# MAGIC a write) asks for a result. The Catalyst optimizer then rewrites the plan before
# MAGIC executing it.
# MAGIC
# MAGIC In this notebook you will:
# MAGIC
# MAGIC 1. build DataFrames from Python data with an explicit schema,
# MAGIC 2. transform them with `select`, `filter`, `withColumn`, `groupBy`/`agg` and `join`,
# MAGIC 3. rank rows inside groups with a window function,
# MAGIC 4. ask the same question in Spark SQL over a temporary view,
# MAGIC 5. read the physical plan with `explain`,
# MAGIC 6. save the result as a table with a three-part name `catalog.schema.table`.
# MAGIC
# MAGIC Every step checks its own result with `assert`, so running the notebook tests the lesson.

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup: where am I running?
# MAGIC
# MAGIC The same file runs on Databricks (serverless) and on a laptop with the course's local
# MAGIC runtime. Databricks sets `DATABRICKS_RUNTIME_VERSION`; that is the one place where the
# MAGIC two differ here: the default catalog. Databricks Free Edition gives every workspace a
# MAGIC Unity Catalog catalog named `workspace`; locally, Spark's built-in catalog is
# MAGIC `spark_catalog`. Both are widgets, so a job or the command line can change them.

# COMMAND ----------

import contextlib
import io
import os
import random

import pyspark.sql.functions as sf
from pyspark.sql import Window

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ

dbutils.widgets.text("catalog", "workspace" if IS_DATABRICKS else "spark_catalog")
dbutils.widgets.text("schema", "course1_spark")
catalog = dbutils.widgets.get("catalog")
schema = dbutils.widgets.get("schema")
print(f"running on {'Databricks' if IS_DATABRICKS else 'the local runtime'}: {catalog}.{schema}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## 1. DataFrames from Python data
# MAGIC
# MAGIC We generate a small shop: customers in four regions and their orders. A seeded random
# MAGIC generator makes the data identical on every run, so the numbers below can be checked.
# MAGIC Two orders deliberately reference a customer that does not exist, to show what joins do
# MAGIC with them. Declaring the schema as a DDL string fixes the column types instead of letting
# MAGIC Spark guess them.

# COMMAND ----------

rng = random.Random(42)
regions = ["north", "south", "east", "west"]
customers_data = [(cid, f"customer_{cid:02d}", regions[cid % 4]) for cid in range(1, 21)]
products = {"widget": 2.50, "gadget": 12.00, "gizmo": 7.25, "doohickey": 30.00}
statuses = ["shipped", "shipped", "shipped", "cancelled"]

orders_data = []
for oid in range(1, 201):
    product = rng.choice(sorted(products))
    customer_id, quantity = rng.randint(1, 20), rng.randint(1, 5)
    status = rng.choice(statuses)
    orders_data.append((oid, customer_id, product, quantity, products[product], status))
orders_data += [(201, 99, "widget", 1, 2.50, "shipped"), (202, 98, "gadget", 2, 12.00, "shipped")]

customers = spark.createDataFrame(customers_data, "customer_id INT, name STRING, region STRING")
orders = spark.createDataFrame(
    orders_data,
    "order_id INT, customer_id INT, product STRING, quantity INT, unit_price DOUBLE, status STRING",
)
orders.printSchema()
display(orders.limit(5))

assert customers.count() == 20
assert orders.count() == 202
assert dict(orders.dtypes)["unit_price"] == "double"

# COMMAND ----------

# MAGIC %md
# MAGIC ## 2. Transformations are lazy
# MAGIC
# MAGIC `withColumn` adds a derived column, `filter` keeps rows, `select` picks columns. Each call
# MAGIC returns a new DataFrame at once, whatever the data size: Spark only records the step.
# MAGIC The `count()` at the end is the action that runs the plan.

# COMMAND ----------

shipped = (
    orders.withColumn("amount", sf.col("quantity") * sf.col("unit_price"))
    .filter(sf.col("status") == "shipped")
    .select("order_id", "customer_id", "product", "quantity", "amount")
)
display(shipped.limit(5))

expected_shipped = [o for o in orders_data if o[5] == "shipped"]
assert shipped.count() == len(expected_shipped)
assert shipped.columns == ["order_id", "customer_id", "product", "quantity", "amount"]

# COMMAND ----------

# MAGIC %md
# MAGIC ## 3. Joins: inner keeps matches, anti finds orphans
# MAGIC
# MAGIC An inner join keeps only orders whose customer exists, so the two orphan orders vanish.
# MAGIC A `left_anti` join returns exactly the rows that found no match: the usual data-quality
# MAGIC check before trusting a join.

# COMMAND ----------

enriched = shipped.join(customers, on="customer_id", how="inner")
orphans = shipped.join(customers, on="customer_id", how="left_anti")
display(orphans)

orphan_ids = sorted(row.order_id for row in orphans.collect())
assert orphan_ids == [201, 202]
assert enriched.count() == shipped.count() - len(orphan_ids)

# COMMAND ----------

# MAGIC %md
# MAGIC ## 4. groupBy and agg: revenue per region
# MAGIC
# MAGIC `groupBy` + `agg` computes several aggregates in one pass. We check the total against
# MAGIC the same sum computed in plain Python.

# COMMAND ----------

by_region = (
    enriched.groupBy("region")
    .agg(
        sf.count("order_id").alias("orders"),
        sf.round(sf.sum("amount"), 2).alias("revenue"),
        sf.round(sf.avg("amount"), 2).alias("avg_order"),
    )
    .orderBy(sf.desc("revenue"))
)
display(by_region)

known_customers = {c[0] for c in customers_data}
python_total = sum(o[3] * o[4] for o in expected_shipped if o[1] in known_customers)
spark_total = by_region.agg(sf.sum("revenue")).collect()[0][0]
assert abs(spark_total - python_total) < 0.05, (spark_total, python_total)
assert by_region.count() == 4

# COMMAND ----------

# MAGIC %md
# MAGIC ## 5. Window functions: rank inside each region
# MAGIC
# MAGIC A window function computes a value per row from a *group of related rows* without
# MAGIC collapsing them, unlike `groupBy`. Here: each customer's revenue, their rank within their
# MAGIC region, and their share of the region's revenue.

# COMMAND ----------

per_customer = enriched.groupBy("region", "customer_id", "name").agg(
    sf.round(sf.sum("amount"), 2).alias("revenue")
)
by_revenue = Window.partitionBy("region").orderBy(sf.desc("revenue"), "customer_id")
whole_region = Window.partitionBy("region")
ranked = per_customer.withColumn("rank", sf.row_number().over(by_revenue)).withColumn(
    "share", sf.round(sf.col("revenue") / sf.sum("revenue").over(whole_region), 3)
)
top_per_region = ranked.filter(sf.col("rank") == 1).orderBy("region")
display(top_per_region)

assert top_per_region.count() == 4
for row in top_per_region.collect():
    best = (
        per_customer.filter(sf.col("region") == row.region).agg(sf.max("revenue")).collect()[0][0]
    )
    assert row.revenue == best, (row.region, row.revenue, best)
shares = ranked.groupBy("region").agg(sf.sum("share").alias("total_share")).collect()
assert all(abs(r.total_share - 1.0) < 0.01 for r in shares)

# COMMAND ----------

# MAGIC %md
# MAGIC ## 6. The same question in Spark SQL
# MAGIC
# MAGIC A temporary view gives a DataFrame a name that SQL can use, for this session only. The
# MAGIC `%sql` cell below runs on the same engine and the same optimizer as the DataFrame API.

# COMMAND ----------

enriched.createOrReplaceTempView("shipped_orders")

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT region,
# MAGIC        COUNT(order_id)          AS orders,
# MAGIC        ROUND(SUM(amount), 2)    AS revenue
# MAGIC FROM shipped_orders
# MAGIC GROUP BY region
# MAGIC ORDER BY revenue DESC

# COMMAND ----------

# MAGIC %md
# MAGIC Both routes give the same table, which we check from Python with `spark.sql`:

# COMMAND ----------

via_sql = spark.sql(
    "SELECT region, COUNT(order_id) AS orders, ROUND(SUM(amount), 2) AS revenue "
    "FROM shipped_orders GROUP BY region ORDER BY revenue DESC"
)
assert [tuple(r) for r in via_sql.collect()] == [
    (r.region, r.orders, r.revenue) for r in by_region.collect()
]

# COMMAND ----------

# MAGIC %md
# MAGIC ## 7. Reading the plan with `explain`
# MAGIC
# MAGIC `explain(mode="formatted")` prints the physical plan Spark will run. Look for the scan
# MAGIC of the source data, the filter on `status` (applied before the join: Catalyst pushed it
# MAGIC down), the join strategy (a broadcast join: `customers` is small) and the aggregate.
# MAGIC On Databricks the operator names differ (Photon), the structure is the same.

# COMMAND ----------

plan_text = io.StringIO()
with contextlib.redirect_stdout(plan_text):
    by_region.explain(mode="formatted")
plan = plan_text.getvalue()
print(plan)

assert "Physical Plan" in plan
assert "Filter" in plan  # the status filter survives into the physical plan

# COMMAND ----------

# MAGIC %md
# MAGIC ## 8. Save the result as a table
# MAGIC
# MAGIC A three-part name `catalog.schema.table` addresses a table in Unity Catalog on Databricks
# MAGIC and in the local Spark catalog; the default table format is Delta Lake in both.

# COMMAND ----------

spark.sql(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
target = f"{catalog}.{schema}.region_revenue"
by_region.write.mode("overwrite").saveAsTable(target)

saved = spark.table(target)
display(saved)
assert saved.count() == 4
assert sorted(saved.columns) == ["avg_order", "orders", "region", "revenue"]

# COMMAND ----------

# MAGIC %md
# MAGIC ## What you saw
# MAGIC
# MAGIC - Transformations build a plan; actions run it.
# MAGIC - Joins silently drop unmatched rows: check with an anti join.
# MAGIC - Window functions rank and compare rows inside groups without collapsing them.
# MAGIC - SQL and DataFrames are two front ends to one engine and one optimizer.
# MAGIC - `explain` shows what really runs, after Catalyst rewrote your query.
