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
# MAGIC 5. prove that transformations are lazy, and watch Catalyst rewrite a query in its plans
# MAGIC    (`explain`): a filter moved below a join, a broadcast join,
# MAGIC 6. work with nested data (arrays, structs, maps, `explode`), nulls, `when`/`otherwise`
# MAGIC    and dates,
# MAGIC 7. compare a Python UDF with the built-in function that does the same,
# MAGIC 8. save the result as a table with a three-part name `catalog.schema.table`.
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
import time
from datetime import date, timedelta

import pyspark.sql.functions as sf
from pyspark.sql import Window

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ

dbutils.widgets.text("catalog", "workspace" if IS_DATABRICKS else "spark_catalog")
dbutils.widgets.text("schema", "course1_spark")
catalog = dbutils.widgets.get("catalog")
schema = dbutils.widgets.get("schema")
spark.sql(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
volume = f"/Volumes/{catalog}/{schema}/scratch"  # a folder for the files of section 2
if IS_DATABRICKS:
    spark.sql(f"CREATE VOLUME IF NOT EXISTS {catalog}.{schema}.scratch")
else:
    dbutils.fs.mkdirs(volume)


def plan_of(df, mode: str = "extended") -> str:
    """The text `df.explain(mode)` prints, captured so that it can be checked."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        df.explain(mode=mode)
    return out.getvalue()


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
# MAGIC ### Proof: a transformation reads nothing
# MAGIC
# MAGIC "Nothing runs until an action" can be tested. We write a small CSV file, define a read
# MAGIC of it followed by a filter and a derived column, and then **delete the file** before
# MAGIC any action. Defining the DataFrame succeeded, so it cannot have read the rows; the
# MAGIC action that follows is the first thing to open the file, and fails because it is gone.
# MAGIC Putting the file back makes the same DataFrame work: it reads the data at action time.
# MAGIC (This holds on serverless too, unlike tricks that count Python UDF calls with an
# MAGIC accumulator: serverless has no accumulators.)

# COMMAND ----------

lazy_file = f"{volume}/lazy_orders.csv"
lazy_csv = "order_id,amount\n1,10.0\n2,20.0\n3,30.0\n"
dbutils.fs.put(lazy_file, lazy_csv, True)
big_ones = (
    spark.read.option("header", True)
    .schema("order_id INT, amount DOUBLE")
    .csv(lazy_file)
    .filter(sf.col("amount") > 15)
    .withColumn("vat", sf.col("amount") * 0.2)
)
dbutils.fs.rm(lazy_file)  # gone before any action

try:
    big_ones.count()
    first_action = "read the rows"
except Exception as exc:  # the action is the first to open the file
    first_action = f"failed: {type(exc).__name__}"
print("the action after deleting the file:", first_action)
assert first_action.startswith("failed")

dbutils.fs.put(lazy_file, lazy_csv, True)  # put it back: the same DataFrame now runs
assert big_ones.count() == 2

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
# MAGIC of the source data, the filter on `status`, the join strategy and the aggregate.
# MAGIC On Databricks the operator names differ (Photon), the structure is the same.

# COMMAND ----------

plan = plan_of(by_region, "formatted")
print(plan)
assert "Physical Plan" in plan
assert "Filter" in plan  # the status filter survives into the physical plan

# COMMAND ----------

# MAGIC %md
# MAGIC ### Catalyst moves a filter below a join
# MAGIC
# MAGIC Below, the filter on `region` is written **after** the join: taken literally, Spark
# MAGIC would join all 202 orders and then throw most of them away. `explain("extended")` shows
# MAGIC the plan at each stage. In the *analyzed* plan (your query, resolved) the `Filter` sits
# MAGIC above the `Join`, as written. In the *optimized* plan, Catalyst's predicate pushdown has
# MAGIC moved it below the join, onto the `customers` side: only the northern customers are
# MAGIC joined. (A plan prints its root first, so "above" means "printed earlier".)

# COMMAND ----------

north = orders.join(customers, "customer_id").filter(sf.col("region") == "north")
extended = plan_of(north, "extended")


def stage(text: str, name: str) -> list:
    """The lines of one plan stage of explain("extended") output."""
    block = text.split(f"== {name} ==", 1)[1].split("\n== ", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def first_line(lines: list, *words: str) -> int:
    return next(i for i, line in enumerate(lines) if all(w in line for w in words))


analyzed = stage(extended, "Analyzed Logical Plan")
optimized = stage(extended, "Optimized Logical Plan")
print("\n".join(["analyzed:", *analyzed, "", "optimized:", *optimized]))

assert first_line(analyzed, "Filter", "region") < first_line(analyzed, "Join")
assert first_line(optimized, "Join") < first_line(optimized, "Filter", "region")
assert north.count() == sum(
    1 for o in orders_data if o[1] in {c[0] for c in customers_data if c[2] == "north"}
)

# COMMAND ----------

# MAGIC %md
# MAGIC ### A broadcast join
# MAGIC
# MAGIC Joining two large tables needs a *shuffle*: both sides are redistributed across the
# MAGIC cluster by the join key. When one side is small, Spark can instead send a full copy of
# MAGIC it to every executor and join locally: a **broadcast hash join**, no shuffle of the big
# MAGIC side. Spark does this by itself for tables under
# MAGIC `spark.sql.autoBroadcastJoinThreshold` (10 MB); `broadcast()` asks for it explicitly.

# COMMAND ----------

hinted = orders.join(sf.broadcast(customers), "customer_id")
physical = plan_of(hinted, "simple")
print(physical)
assert "BroadcastHashJoin" in physical  # PhotonBroadcastHashJoin on Databricks contains it too
assert hinted.count() == sum(1 for o in orders_data if o[1] in known_customers)

# COMMAND ----------

# MAGIC %md
# MAGIC ## 8. Nested data, nulls, conditions and dates
# MAGIC
# MAGIC Real records are rarely flat. A shop's baskets hold an **array** of line items, each a
# MAGIC **struct** (product, quantity), and a **map** of tags. `explode` turns each array
# MAGIC element into a row, so nested data can be aggregated like any other; `explode_outer`
# MAGIC keeps the rows whose array is empty or null.

# COMMAND ----------

basket_rows = [
    (1, "2024-03-04", [("widget", 2), ("gizmo", 1)], {"channel": "web"}),
    (2, "2024-03-09", [("gadget", 1)], {"channel": "shop", "coupon": "SPRING"}),
    (3, "2024-03-31", [], {"channel": "web"}),
    (4, None, None, None),
]
baskets = spark.createDataFrame(
    basket_rows,
    "basket_id INT, day STRING, items ARRAY<STRUCT<product: STRING, qty: INT>>, "
    "tags MAP<STRING, STRING>",
)
baskets.printSchema()

lines = baskets.select("basket_id", sf.explode("items").alias("item")).select(
    "basket_id", "item.product", "item.qty"
)
display(lines)
assert [tuple(r) for r in lines.orderBy("basket_id", "product").collect()] == [
    (1, "gizmo", 1),
    (1, "widget", 2),
    (2, "gadget", 1),
]
assert baskets.select(sf.explode_outer("items")).count() == 3 + 2  # baskets 3 and 4 kept
coupons = {
    r.basket_id: r.coupon
    for r in baskets.select("basket_id", sf.col("tags")["coupon"].alias("coupon")).collect()
}
assert coupons == {1: None, 2: "SPRING", 3: None, 4: None}  # a missing key reads as null

# COMMAND ----------

# MAGIC %md
# MAGIC **Nulls.** `NULL` means "unknown", so any comparison with it is unknown too, and
# MAGIC `filter` keeps only rows where the condition is *true*: `col == NULL` matches nothing;
# MAGIC use `isNull()`. Aggregates skip nulls (`count(col)` counts the known values, `avg` averages
# MAGIC them), `count("*")` counts rows. `coalesce` and `na.fill` replace nulls with a value.

# COMMAND ----------

people = spark.createDataFrame(
    [(1, "ada", "ada@example.org", 36), (2, "bob", None, None), (3, None, "c@example.org", 51)],
    "id INT, name STRING, email STRING, age INT",
)
assert people.filter(sf.col("email") == sf.lit(None)).count() == 0
assert people.filter(sf.col("email").isNull()).count() == 1
stats = people.agg(
    sf.count("*").alias("rows"), sf.count("age").alias("known_ages"), sf.avg("age").alias("avg_age")
).collect()[0]
print(stats)
assert (stats.rows, stats.known_ages, stats.avg_age) == (3, 2, (36 + 51) / 2)
filled = people.select(
    "id", sf.coalesce("name", sf.lit("(no name)")).alias("name"), "email"
).na.fill({"email": "unknown"})
assert [tuple(r) for r in filled.orderBy("id").collect()] == [
    (1, "ada", "ada@example.org"),
    (2, "bob", "unknown"),
    (3, "(no name)", "c@example.org"),
]

# COMMAND ----------

# MAGIC %md
# MAGIC **Conditions.** `when(...).when(...).otherwise(...)` is SQL's `CASE WHEN`: the first
# MAGIC true branch wins, `otherwise` catches the rest (without it, the rest would be null).

# COMMAND ----------

sized = shipped.withColumn(
    "size",
    sf.when(sf.col("amount") >= 50, "large")
    .when(sf.col("amount") >= 15, "medium")
    .otherwise("small"),
)
got_sizes = {r["size"]: r["count"] for r in sized.groupBy("size").count().collect()}


def python_size(amount: float) -> str:
    return "large" if amount >= 50 else "medium" if amount >= 15 else "small"


want_sizes: dict = {}
for o in expected_shipped:
    key = python_size(o[3] * o[4])
    want_sizes[key] = want_sizes.get(key, 0) + 1
display(sized.groupBy("size").count())
assert got_sizes == want_sizes

# COMMAND ----------

# MAGIC %md
# MAGIC **Dates.** Store dates as `DATE`, not strings: `to_date` parses, and then date functions
# MAGIC work: day of week (1 = Sunday in Spark), `date_add`, `datediff`, the ISO week, the first
# MAGIC day of the month. We check each against Python's `datetime`.

# COMMAND ----------

dated = (
    baskets.where(sf.col("day").isNotNull())
    .withColumn("day", sf.to_date("day", "yyyy-MM-dd"))
    .select(
        "basket_id",
        "day",
        sf.dayofweek("day").alias("dow"),
        sf.date_add("day", 30).alias("due"),
        sf.datediff(sf.to_date(sf.lit("2024-04-01")), "day").alias("days_to_april"),
        sf.weekofyear("day").alias("iso_week"),
        sf.trunc("day", "month").alias("month"),
    )
)
display(dated)
for r in dated.collect():
    d = date.fromisoformat(str(next(b[1] for b in basket_rows if b[0] == r.basket_id)))
    assert r.day == d
    assert r.dow == d.isoweekday() % 7 + 1
    assert r.due == d + timedelta(days=30)
    assert r.days_to_april == (date(2024, 4, 1) - d).days
    assert r.iso_week == d.isocalendar().week
    assert r.month == d.replace(day=1)

# COMMAND ----------

# MAGIC %md
# MAGIC ## 9. A Python UDF against the built-in function
# MAGIC
# MAGIC A Python UDF runs your function on every row, but the rows live in the JVM: Spark
# MAGIC serialises them to a Python worker process and the results back. A built-in function
# MAGIC (`upper`, `regexp_replace`, ...) runs inside the engine (and Photon) without leaving
# MAGIC it, and Catalyst can reason about it. Both give the same answer; the time is what
# MAGIC differs. (The timings are printed, not asserted: on a shared machine they vary; the
# MAGIC gap is usually several times.) Prefer a built-in when one exists.

# COMMAND ----------


@sf.udf("string")
def shout(text):
    return None if text is None else text.upper().replace("-", "_")


skus = spark.range(20000).select(
    sf.concat(sf.lit("sku-"), sf.col("id").cast("string")).alias("sku")
)
builtin = sf.regexp_replace(sf.upper("sku"), "-", "_")


def timed(column) -> tuple:
    started = time.perf_counter()
    digest = (
        skus.select(column.alias("out")).agg(sf.sum(sf.hash("out").cast("bigint"))).collect()[0][0]
    )
    return digest, time.perf_counter() - started


udf_digest, udf_seconds = timed(shout("sku"))
builtin_digest, builtin_seconds = timed(builtin)
print(f"Python UDF: {udf_seconds:.2f} s, built-in: {builtin_seconds:.2f} s")
assert udf_digest == builtin_digest  # the same 20,000 values
assert skus.select(shout("sku")).collect()[0][0] == "SKU_0"

# COMMAND ----------

# MAGIC %md
# MAGIC ## 10. Save the result as a table
# MAGIC
# MAGIC A three-part name `catalog.schema.table` addresses a table in Unity Catalog on Databricks
# MAGIC and in the local Spark catalog; the default table format is Delta Lake in both.

# COMMAND ----------

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
# MAGIC - `explain` shows what really runs, after Catalyst rewrote your query: a filter
# MAGIC   written after a join ran before it, and a small table was broadcast.
# MAGIC - `explode` flattens arrays of structs; nulls need `isNull`, and aggregates skip them.
# MAGIC - A Python UDF gives the same result as a built-in function, at the price of moving
# MAGIC   every row to Python and back.
