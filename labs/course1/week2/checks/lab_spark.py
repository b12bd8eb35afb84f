# Databricks notebook source
# MAGIC %md
# MAGIC # Checks: lab_spark
# MAGIC
# MAGIC Run by the lab's last cell (`%run`). Each check recomputes its answer in plain Python
# MAGIC from the setup cell's `orders` and `customers` lists, independently of Spark.

# COMMAND ----------

from collections import Counter as _Counter
from collections import defaultdict as _defaultdict
from datetime import date as _date

from pyspark.sql import types as _types

lab = Lab("course1/week2/lab_spark")
_country = {c["customer_id"]: c["country"] for c in customers}
_paid = [o for o in orders if o[5] == "paid"]


def _expected_revenue():
    revenue = _defaultdict(float)
    for _, customer, _, quantity, price, _ in _paid:
        revenue[_country[customer]] += quantity * price
    return sorted(((c, round(r, 2)) for c, r in revenue.items()), key=lambda cr: -cr[1])


def _same_revenue(rows, what):
    got = [(r["country"], r["revenue"]) for r in rows]
    want = _expected_revenue()
    assert [c for c, _ in got] == [c for c, _ in want], (
        f"{what}: countries (in order) {[c for c, _ in got]}, expected {len(want)} countries "
        "sorted by revenue, highest first"
    )
    off = [(c, g) for (c, g), (_, w) in zip(got, want, strict=True) if abs(g - w) > 0.011]
    assert not off, f"{what}: revenue differs for {off}"


@lab.check(
    "Task 1: orders and customers loaded with declared types",
    "a DDL string or a StructType given to .schema() fixes the types; inferSchema guesses them",
)
def _():
    fields = {f.name: f.dataType for f in orders_df.schema.fields}
    assert isinstance(fields.get("order_date"), _types.DateType), (
        f"order_date is {fields.get('order_date')}, expected a date"
    )
    assert isinstance(fields.get("unit_price"), _types.DoubleType), "unit_price should be a double"
    for name in ("order_id", "customer_id", "quantity"):
        assert isinstance(fields.get(name), _types.IntegerType), f"{name} should be an int"
    assert orders_df.count() == len(orders), f"{orders_df.count()} orders, expected {len(orders)}"
    assert customers_df.count() == len(customers), "customers_df misses customers"


@lab.check(
    "Task 2: revenue per country, paid orders only",
    "filter on status before you "
    "aggregate; join to get each order's country; sum quantity * unit_price",
)
def _():
    assert set(revenue_by_country.columns) == {"country", "revenue"}, (
        f"columns are {revenue_by_country.columns}"
    )
    _same_revenue(revenue_by_country.collect(), "revenue_by_country")


@lab.check(
    "Task 3: each customer's biggest paid order",
    "row_number() over a window "
    "partitioned by customer, ordered by amount descending then order_id",
)
def _():
    best = {}
    for order_id, customer, _, quantity, price, _ in _paid:
        key = (-(quantity * price), order_id)
        if customer not in best or key < best[customer][0]:
            best[customer] = (key, order_id)
    want = {customer: order_id for customer, (_, order_id) in best.items()}
    rows = biggest_orders.select("customer_id", "order_id", "amount").collect()
    got = {r["customer_id"]: r["order_id"] for r in rows}
    assert len(rows) == len(got), "some customers appear more than once"
    assert set(got) == set(want), f"{len(got)} customers, expected {len(want)}"
    wrong = sorted(c for c in want if got[c] != want[c])
    assert not wrong, f"customers {wrong[:5]} have another order as their biggest"


@lab.check(
    "Task 4: paid orders per ISO week",
    "weekofyear() gives the ISO week of a date; group by it and count",
)
def _():
    counts = _Counter(_date.fromisoformat(o[2]).isocalendar().week for o in _paid)
    want = sorted(counts.items())
    got = [(r["week"], r["orders"]) for r in weekly.collect()]
    assert got == want, f"got {got}, expected {len(want)} weeks in week order"


@lab.check(
    "Task 5: revenue per country in Spark SQL",
    "createOrReplaceTempView names a "
    "DataFrame for SQL; the query joins, filters, groups and orders like task 2",
)
def _():
    assert isinstance(revenue_sql, str), "revenue_sql should be a SQL string"
    _same_revenue(spark.sql(revenue_sql).collect(), "revenue_sql")


lab.summary()
