# Databricks notebook source
# MAGIC %md
# MAGIC # Checks: lab_workspace
# MAGIC
# MAGIC Run by the lab's last cell (`%run`). The expected answers come from the setup cell's
# MAGIC `products` list; the catalog is asked directly (the catalog API, SQL) what exists.

# COMMAND ----------

import json as _json
from collections import Counter as _Counter
from pathlib import Path as _Path

lab = Lab("course1/week1/lab_workspace")


def _objects() -> dict:
    return {t.name: t.tableType for t in spark.catalog.listTables(f"{catalog}.{schema}")}


@lab.check(
    "Task 1: products is a managed table with declared types",
    "saveAsTable without a path makes a managed table; .schema() declares the types",
)
def _():
    assert _objects().get("products") == "MANAGED", "no managed table `products` in the schema"
    table_df = spark.table(products_table)
    assert dict(table_df.dtypes).get("price") == "double", "price should be a double"
    got = {(r.sku, r.name, r.category, r.price) for r in table_df.collect()}
    assert got == set(products), f"{len(got)} rows differ from the {len(products)} in the CSV"


@lab.check(
    "Task 2: the premium_products view",
    "a view is a saved SELECT; filter on the price, keep three columns",
)
def _():
    assert _objects().get("premium_products") == "VIEW", "no view `premium_products`"
    view = spark.table(f"{catalog}.{schema}.premium_products")
    assert sorted(view.columns) == ["name", "price", "sku"], f"columns are {view.columns}"
    want = {p[0] for p in products if p[3] >= 100}
    got = {r.sku for r in view.collect()}
    assert got == want, f"{len(got)} products in the view, expected {len(want)} (mind the bound)"


@lab.check(
    "Task 3: price_with_vat is callable from SQL",
    "CREATE FUNCTION name(args) RETURNS type RETURN expression, in the schema",
)
def _():
    cases = [(100.0, 0.2), (9.99, 0.23), (0.0, 0.19), (149.0, 0.0)]
    fn = f"{catalog}.{schema}.price_with_vat"
    values = ", ".join(f"{fn}(CAST({p} AS DOUBLE), CAST({r} AS DOUBLE))" for p, r in cases)
    got = list(spark.sql(f"SELECT {values}").collect()[0])
    want = [round(p * (1 + r), 2) for p, r in cases]
    assert all(abs(g - w) < 1e-9 for g, w in zip(got, want, strict=True)), (
        f"for {cases} the function gives {got}"
    )


@lab.check(
    "Task 4: report.json in the volume",
    "a volume path works with open() and pathlib; json.dumps writes the object",
)
def _():
    path = _Path(volume, "report.json")
    assert path.is_file(), "no report.json in the volume"
    got = _json.loads(path.read_text(encoding="utf-8"))
    assert got.get("products") == len(products), "the product count is wrong"
    assert got.get("per_category") == dict(_Counter(p[2] for p in products)), (
        "the per-category counts are wrong"
    )


@lab.check(
    "Task 5: the schema's inventory",
    "list the schema's tables with their type: information_schema or spark.catalog",
)
def _():
    assert not is_blank(inventory), "inventory is not set"
    want = {"products": "MANAGED", "premium_products": "VIEW"}
    assert dict(inventory) == want, f"inventory is {inventory}"


lab.summary()
