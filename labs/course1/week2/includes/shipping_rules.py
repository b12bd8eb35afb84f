# Databricks notebook source
# MAGIC %md
# MAGIC # Shipping rules (included with `%run`)
# MAGIC
# MAGIC The logistics team's tariff, shared by every notebook that prices shipments. Include it
# MAGIC with `%run ./includes/shipping_rules`; it defines `TARIFF` and `shipping_cost`.

# COMMAND ----------

import pyspark.sql.functions as sf

# zone -> (base fee, price per kg), in euros
TARIFF = {"domestic": (4.5, 0.8), "eu": (9.0, 1.6), "world": (25.0, 4.2)}
HEAVY_KG = 30  # above this weight a handling surcharge applies
HEAVY_SURCHARGE = 15.0


def shipping_cost(weight_kg, zone):
    """The cost of one shipment as a Spark Column, from a weight and a zone column."""
    weight, zone = sf.col(weight_kg), sf.col(zone)
    cost = sf.lit(None).cast("double")
    for name, (base, per_kg) in TARIFF.items():
        cost = sf.when(zone == name, sf.lit(base) + weight * per_kg).otherwise(cost)
    surcharge = sf.when(weight > HEAVY_KG, HEAVY_SURCHARGE).otherwise(0.0)
    return sf.round(cost + surcharge, 2)
