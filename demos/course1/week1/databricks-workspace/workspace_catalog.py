# Databricks notebook source
# MAGIC %md
# MAGIC # Unity Catalog: where every table, file and function has a name
# MAGIC
# MAGIC Course 1, week 1. The previous notebook showed that a lakehouse table is a folder of
# MAGIC files with a transaction log. Unity Catalog is what turns such folders into named,
# MAGIC governed objects. Every object has a three-part name:
# MAGIC
# MAGIC ```
# MAGIC metastore (one per region, holds everything below)
# MAGIC └── catalog                 e.g. workspace (Free Edition's default), main, dev
# MAGIC     └── schema              e.g. course1_workspace   (a "database")
# MAGIC         ├── table           catalog.schema.sales     managed or external
# MAGIC         ├── view            catalog.schema.store_revenue   a saved query
# MAGIC         ├── volume          /Volumes/catalog/schema/raw/   files that are not tables
# MAGIC         └── function        catalog.schema.net_amount      SQL or Python, callable in SQL
# MAGIC ```
# MAGIC
# MAGIC In this notebook you will put files in a volume and read them with Spark and with plain
# MAGIC Python, make a managed and an external table and see what `DROP TABLE` does to each, save
# MAGIC a view and a function in the schema, list the schema's contents, and grant access.
# MAGIC
# MAGIC **Locally and on Databricks.** On Databricks every name below is a Unity Catalog object.
# MAGIC The local runtime has no Unity Catalog: the catalog is Spark's own `spark_catalog`
# MAGIC (Delta's catalog over a local warehouse folder), which really does hold schemas, tables,
# MAGIC views and SQL functions under three-part names, and `/Volumes/...` paths are folders in
# MAGIC the run's directory. What only Unity Catalog provides is shown in `if IS_DATABRICKS:`
# MAGIC blocks with the local equivalent next to it: `CREATE VOLUME`, the `information_schema`
# MAGIC views and, above all, **grants: only Databricks enforces access control**. Unity Catalog
# MAGIC also exists as open source (a separate Java server that Spark talks to through a
# MAGIC connector); the local runtime does not run that server, so this notebook does not use it.

# COMMAND ----------

# MAGIC %md
# MAGIC ## Setup: a catalog and a schema
# MAGIC
# MAGIC `USE CATALOG` and `USE SCHEMA` set the defaults, so that a bare `sales` means
# MAGIC `catalog.schema.sales`. The notebook still writes full names: they make a query mean the
# MAGIC same thing whatever the defaults are.

# COMMAND ----------

import csv
import json
import os
import random
from pathlib import Path

IS_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ

dbutils.widgets.text("catalog", "workspace" if IS_DATABRICKS else "spark_catalog")
dbutils.widgets.text("schema", "course1_workspace")
# Where external tables live. On Databricks: a path under an external location you may
# write to (Free Edition has none, so it stays empty there). Locally: a DBFS folder.
dbutils.widgets.text("external_root", "" if IS_DATABRICKS else "dbfs:/external/course1_workspace")
catalog = dbutils.widgets.get("catalog")
schema = dbutils.widgets.get("schema")
external_root = dbutils.widgets.get("external_root").rstrip("/")

spark.sql(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
spark.sql(f"USE CATALOG {catalog}")
spark.sql(f"USE SCHEMA {schema}")
for old in ("store_revenue",):
    spark.sql(f"DROP VIEW IF EXISTS {catalog}.{schema}.{old}")
for old in ("sales", "sales_ext", "stores"):
    spark.sql(f"DROP TABLE IF EXISTS {catalog}.{schema}.{old}")

here = spark.sql("SELECT current_catalog() AS c, current_schema() AS s").collect()[0]
print(f"current catalog.schema: {here['c']}.{here['s']}")
assert (here["c"], here["s"]) == (catalog, schema)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Volumes: governed folders for files
# MAGIC
# MAGIC Raw files (a partner's CSV export, images, a model file) are not tables yet. A volume
# MAGIC gives them a place in the catalog, `/Volumes/<catalog>/<schema>/<volume>/`, with the
# MAGIC same permissions as tables. The same path works for Spark, for `dbutils.fs`, and for
# MAGIC plain Python (`open`, `pathlib`, pandas), because Databricks mounts volumes on the
# MAGIC driver's file system.
# MAGIC
# MAGIC We write two files into a volume `raw`: a CSV of sales with `dbutils.fs.put`, and a JSON
# MAGIC list of stores with plain Python.

# COMMAND ----------

volume = f"/Volumes/{catalog}/{schema}/raw"
if IS_DATABRICKS:
    spark.sql(f"CREATE VOLUME IF NOT EXISTS {catalog}.{schema}.raw COMMENT 'partner exports'")
else:
    dbutils.fs.mkdirs(volume)  # locally a volume is a folder in the run's directory

rng = random.Random(11)
stores = [
    {"store_id": 1, "city": "Lyon", "vat": 0.20},
    {"store_id": 2, "city": "Gdańsk", "vat": 0.23},
    {"store_id": 3, "city": "Porto", "vat": 0.23},
    {"store_id": 4, "city": "Köln", "vat": 0.19},
]
store_ids = [int(s["store_id"]) for s in stores]
sales = [
    (sale_id, rng.choice(store_ids), rng.randint(1, 4), rng.choice([3.5, 9.9, 24.0]))
    for sale_id in range(1, 201)
]
dbutils.fs.put(
    f"{volume}/sales.csv",
    "sale_id,store_id,quantity,gross_price\n"
    + "".join(",".join(map(str, s)) + "\n" for s in sales),
    True,
)
Path(volume, "stores.json").write_text(
    "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in stores), encoding="utf-8"
)

print(sorted(f.name for f in dbutils.fs.ls(volume)))
assert sorted(os.listdir(volume)) == ["sales.csv", "stores.json"]

# COMMAND ----------

# MAGIC %md
# MAGIC Spark reads the files as DataFrames; plain Python reads the very same bytes. Both
# MAGIC agree, including the non-ASCII city names.

# COMMAND ----------

sales_df = (
    spark.read.option("header", True)
    .schema("sale_id INT, store_id INT, quantity INT, gross_price DOUBLE")
    .csv(f"{volume}/sales.csv")
)
stores_df = spark.read.schema("store_id INT, city STRING, vat DOUBLE").json(f"{volume}/stores.json")

with Path(volume, "sales.csv").open(encoding="utf-8") as f:
    python_rows = [
        tuple(int(r[k]) for k in ("sale_id", "store_id", "quantity")) for r in csv.DictReader(f)
    ]
spark_rows = [(r.sale_id, r.store_id, r.quantity) for r in sales_df.orderBy("sale_id").collect()]
python_cities = {
    json.loads(line)["city"] for line in Path(volume, "stores.json").read_text("utf-8").splitlines()
}

print(f"Spark: {len(spark_rows)} sales, Python: {len(python_rows)} sales")
assert spark_rows == python_rows == [s[:3] for s in sales]
assert {r.city for r in stores_df.collect()} == python_cities == {"Lyon", "Gdańsk", "Porto", "Köln"}

# COMMAND ----------

# MAGIC %md
# MAGIC ## Managed and external tables
# MAGIC
# MAGIC - A **managed** table's files live where the catalog decides (the schema's managed
# MAGIC   storage). The catalog owns them: `DROP TABLE` removes the data too (Unity Catalog
# MAGIC   keeps it for 7 days, so `UNDROP TABLE` can bring it back, then deletes it).
# MAGIC - An **external** table points at files at a `LOCATION` you chose (on Databricks, inside
# MAGIC   an *external location* an admin registered). `DROP TABLE` removes only the name; the
# MAGIC   files stay, and another `CREATE TABLE ... LOCATION` over them brings the table back.
# MAGIC
# MAGIC Managed is the default and the recommended kind (the catalog can optimise and clean up
# MAGIC files it owns); external is for data that other systems also write or own.

# COMMAND ----------

sales_table = f"{catalog}.{schema}.sales"
sales_df.write.saveAsTable(sales_table)  # no path: managed
stores_df.write.saveAsTable(f"{catalog}.{schema}.stores")


def table_info(name: str) -> dict:
    """Type, provider and location of a table, from DESCRIBE TABLE EXTENDED."""
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
    return {r.col_name: r.data_type for r in rows if r.col_name in ("Type", "Provider", "Location")}


managed = table_info(sales_table)
print(managed)
assert managed["Type"] == "MANAGED"
assert managed["Provider"].lower() == "delta"

# COMMAND ----------

ext_table = f"{catalog}.{schema}.sales_ext"
if external_root:
    ext_location = f"{external_root}/sales_ext"
    dbutils.fs.rm(ext_location, True)
    sales_df.write.format("delta").save(ext_location)  # files first, written by any engine
    spark.sql(f"CREATE TABLE {ext_table} USING DELTA LOCATION '{ext_location}'")
    external = table_info(ext_table)
    print(external)
    assert external["Type"] == "EXTERNAL"
    assert spark.table(ext_table).count() == len(sales)
else:
    print("no external_root: set the widget to a path in an external location to try this")

# COMMAND ----------

# MAGIC %md
# MAGIC Now drop both. The external table's files survive and a new table over them has all
# MAGIC its rows back. Locally we can also look into the managed table's folder and see it is
# MAGIC gone (on Databricks managed storage is not readable by path, and the files are kept
# MAGIC for `UNDROP` for 7 days).

# COMMAND ----------

spark.sql(f"DROP TABLE {sales_table}")
if not IS_DATABRICKS:
    # Read the dropped table's folder by path: the files are gone with the name.
    try:
        left = spark.read.format("delta").load(managed["Location"]).count()
    except Exception as exc:  # not a Delta table (any more)
        left = f"nothing ({type(exc).__name__})"
    print(f"managed table's location after DROP: {left}")
    assert isinstance(left, str)
if external_root:
    spark.sql(f"DROP TABLE {ext_table}")
    assert dbutils.fs.ls(f"{ext_location}/_delta_log")  # the files outlived the name
    spark.sql(f"CREATE TABLE {ext_table} USING DELTA LOCATION '{ext_location}'")
    print("external table re-created over its files:", spark.table(ext_table).count(), "rows")
    assert spark.table(ext_table).count() == len(sales)

sales_df.write.saveAsTable(sales_table)  # the managed table back, for what follows

# COMMAND ----------

# MAGIC %md
# MAGIC ## Views and functions live in the schema too
# MAGIC
# MAGIC A **view** is a saved query with a name; it holds no data and is recomputed when read.
# MAGIC A **function** is reusable logic callable from SQL. Here `net_amount` takes the VAT out
# MAGIC of a gross price, and the view `store_revenue` uses it: anyone who may read the view
# MAGIC gets the same definition of "net revenue".

# COMMAND ----------

spark.sql(
    f"""
    CREATE OR REPLACE FUNCTION {catalog}.{schema}.net_amount(quantity INT, gross DOUBLE, vat DOUBLE)
    RETURNS DOUBLE
    COMMENT 'quantity x gross price without VAT, rounded to cents'
    RETURN ROUND(quantity * gross / (1 + vat), 2)
    """
)
spark.sql(
    f"""
    CREATE OR REPLACE VIEW {catalog}.{schema}.store_revenue AS
    SELECT st.city, ROUND(SUM({catalog}.{schema}.net_amount(s.quantity, s.gross_price, st.vat)), 2)
           AS net_revenue
    FROM {catalog}.{schema}.sales s JOIN {catalog}.{schema}.stores st USING (store_id)
    GROUP BY st.city
    """
)
revenue = {
    r.city: r.net_revenue for r in spark.table(f"{catalog}.{schema}.store_revenue").collect()
}
display(spark.table(f"{catalog}.{schema}.store_revenue").orderBy("city"))

vat = {int(s["store_id"]): (str(s["city"]), float(s["vat"])) for s in stores}
expected: dict = {}
for _, store_id, quantity, gross in sales:
    city, rate = vat[store_id]
    expected[city] = expected.get(city, 0.0) + round(quantity * gross / (1 + rate), 2)
assert revenue.keys() == expected.keys()
assert all(abs(revenue[c] - expected[c]) < 0.015 for c in expected), (revenue, expected)

# COMMAND ----------

# MAGIC %md
# MAGIC ## What is in the schema? `information_schema` and the catalog API
# MAGIC
# MAGIC Unity Catalog describes itself in SQL: every catalog has an `information_schema` with
# MAGIC views such as `tables`, `columns`, `views`, `routines` and `volumes`, filtered to what you
# MAGIC may see. Spark's own catalog has no `information_schema`; locally we ask the catalog API
# MAGIC (`spark.catalog.listTables`, `listFunctions`), which exists on Databricks too. Both give
# MAGIC the same inventory.

# COMMAND ----------

if IS_DATABRICKS:
    inventory_df = spark.sql(
        f"""
        SELECT table_name AS name, table_type AS type
        FROM {catalog}.information_schema.tables WHERE table_schema = '{schema}'
        """
    )
    functions = {
        r.routine_name
        for r in spark.sql(
            f"SELECT routine_name FROM {catalog}.information_schema.routines "
            f"WHERE routine_schema = '{schema}'"
        ).collect()
    }
    volumes = {
        r.volume_name
        for r in spark.sql(
            f"SELECT volume_name FROM {catalog}.information_schema.volumes "
            f"WHERE volume_schema = '{schema}'"
        ).collect()
    }
    inventory = {r.name: r.type for r in inventory_df.collect()}
else:
    inventory = {t.name: t.tableType for t in spark.catalog.listTables(f"{catalog}.{schema}")}
    functions = {
        f.name for f in spark.catalog.listFunctions(f"{catalog}.{schema}") if not f.isTemporary
    }
    volumes = set(os.listdir(f"/Volumes/{catalog}/{schema}"))  # locally: the folders
print("tables and views:", inventory)
print("functions:", functions, " volumes:", volumes)

want = {"sales": "MANAGED", "stores": "MANAGED", "store_revenue": "VIEW"}
if external_root:
    want["sales_ext"] = "EXTERNAL"
assert inventory == want
assert "net_amount" in functions
assert "raw" in volumes

# COMMAND ----------

# MAGIC %md
# MAGIC ## Grants: who may do what (enforced only on Databricks)
# MAGIC
# MAGIC Unity Catalog checks privileges on every access, from every compute: to read
# MAGIC `catalog.schema.sales` a user needs `USE CATALOG` on the catalog, `USE SCHEMA` on the
# MAGIC schema and `SELECT` on the table. Privileges granted on a catalog or schema are
# MAGIC inherited by everything inside it. Volumes have `READ VOLUME`/`WRITE VOLUME`, functions
# MAGIC `EXECUTE`.
# MAGIC
# MAGIC On Databricks the cell grants read access on the view (not the table) to all account
# MAGIC users, a common pattern: people see net revenue per city, not individual sales.
# MAGIC
# MAGIC **Locally nothing is enforced.** Open-source Spark's catalog has no privileges, and its
# MAGIC SQL parser does not even accept `GRANT`; anyone who can read the warehouse folder can
# MAGIC read every table. The local branch proves that the statement is refused, so that nobody
# MAGIC mistakes the local catalog for a governed one.

# COMMAND ----------

grant = f"GRANT SELECT ON VIEW {catalog}.{schema}.store_revenue TO `account users`"
if IS_DATABRICKS:
    spark.sql(f"GRANT USE SCHEMA ON SCHEMA {catalog}.{schema} TO `account users`")
    spark.sql(grant)
    grants = spark.sql(f"SHOW GRANTS `account users` ON VIEW {catalog}.{schema}.store_revenue")
    display(grants)
    assert "SELECT" in {r.ActionType for r in grants.collect()}
else:
    try:
        spark.sql(grant)
        refused = ""
    except Exception as exc:  # Spark's parser has no GRANT statement
        refused = type(exc).__name__
    print(f"local Spark refuses GRANT: {refused}")
    assert refused == "ParseException"

# COMMAND ----------

# MAGIC %md
# MAGIC ## What you saw
# MAGIC
# MAGIC - Three-part names `catalog.schema.object` name tables, views and functions; volumes
# MAGIC   give files a governed path, readable alike by Spark and by plain Python.
# MAGIC - `DROP TABLE` deletes a managed table's data and only the name of an external one.
# MAGIC - A schema can be listed through `information_schema` (Unity Catalog) or the catalog API.
# MAGIC - Grants exist only where Unity Catalog runs; the local runtime says so by refusing them.
