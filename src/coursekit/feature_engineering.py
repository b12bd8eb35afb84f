"""A local stand-in for Databricks' Feature Engineering client, on Spark and Delta.

What it teaches: a **feature table** is a Delta table with a primary key (the entity, e.g.
``customer_id``) and optionally a **timeseries column** (when each value became known). A
training set is built by *looking features up* for each labelled row: for a time-series
table the lookup is **point-in-time** (an as-of join): the row gets the latest feature value
whose timestamp is at or before the row's own timestamp, never a later one, so no
information from the future leaks into training. The same lookups, recorded with the model
(:meth:`FeatureEngineeringClient.log_model`), are replayed when scoring
(:meth:`FeatureEngineeringClient.score_batch`), so training and scoring use one definition.

On Databricks, notebooks use ``databricks.feature_engineering`` (Unity Catalog tables);
this module has the same names and keyword arguments for the subset the course uses:
``create_table``, ``write_table`` (merge or overwrite), ``read_table``, ``get_table``,
``drop_table``, ``FeatureLookup`` (``lookup_key``, ``feature_names``, ``rename_outputs``,
``timestamp_lookup_key``, ``lookback_window``, ``default_values``),
``create_training_set`` → ``TrainingSet.load_df``, ``log_model`` and ``score_batch``.
Nothing is mocked: tables are real Delta tables whose keys are kept in table properties,
and lookups are Spark joins.

Deliberate differences: a lookup into a time-series table must name its
``timestamp_lookup_key`` (a lookup on the key alone would take the latest value, which is
the leak this lesson is about); bad input raises ``ValueError``/``TypeError`` naming the
table and the column.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

_PK_PROP = "coursekit.feature.primary_keys"
_TS_PROP = "coursekit.feature.timeseries_column"
_DESC_PROP = "coursekit.feature.description"
_ROW = "__coursekit_row"
_SPEC_KEY = "coursekit_feature_spec"

__all__ = ["FeatureEngineeringClient", "FeatureLookup", "FeatureTable", "TrainingSet"]


def _check_timeseries(name: str, columns: dict[str, Any], column: str) -> None:
    from pyspark.sql import types as T  # noqa: N812, PLC0415

    if column not in columns:
        raise ValueError(
            f"feature table {name!r}: timeseries column {column!r} is not in the schema "
            f"({sorted(columns)})"
        )
    if not isinstance(columns[column], (T.TimestampType, T.DateType)):
        raise TypeError(
            f"feature table {name!r}: timeseries column {column!r} must be a timestamp or a "
            f"date, not {columns[column].simpleString()}"
        )


def _as_list(value: str | list[str] | tuple[str, ...] | None, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise TypeError(f"{what} must be a column name or a list of names, got {value!r}")


@dataclass(frozen=True)
class FeatureTable:
    """What the client knows about a feature table (``get_table``)."""

    name: str
    primary_keys: list[str]
    timeseries_column: str | None
    features: list[str]
    description: str = ""

    @property
    def entity_keys(self) -> list[str]:
        """The primary key without the timeseries column: what a lookup matches on."""
        return [k for k in self.primary_keys if k != self.timeseries_column]


class FeatureLookup:
    """Which features to take from a table, and how to match rows to it."""

    def __init__(
        self,
        table_name: str,
        lookup_key: str | list[str],
        *,
        feature_names: str | list[str] | None = None,
        rename_outputs: dict[str, str] | None = None,
        timestamp_lookup_key: str | None = None,
        lookback_window: _dt.timedelta | None = None,
        default_values: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(table_name, str) or not table_name:
            raise TypeError(f"table_name must be a table name, got {table_name!r}")
        self.table_name = table_name
        self.lookup_key = _as_list(lookup_key, "lookup_key")
        if not self.lookup_key:
            raise ValueError(f"FeatureLookup({table_name!r}): lookup_key is empty")
        self.feature_names = _as_list(feature_names, "feature_names")
        if rename_outputs is not None and not isinstance(rename_outputs, dict):
            raise ValueError(f"rename_outputs must be a dict, got {type(rename_outputs).__name__}")
        self.rename_outputs = dict(rename_outputs or {})
        if timestamp_lookup_key is not None and not isinstance(timestamp_lookup_key, str):
            raise TypeError(
                f"timestamp_lookup_key must be a column name, got {timestamp_lookup_key!r}"
            )
        self.timestamp_lookup_key = timestamp_lookup_key
        if lookback_window is not None and (
            not isinstance(lookback_window, _dt.timedelta) or lookback_window <= _dt.timedelta(0)
        ):
            raise ValueError(
                f"lookback_window must be a positive timedelta, got {lookback_window!r}"
            )
        self.lookback_window = lookback_window
        self.default_values = dict(default_values or {})

    def to_dict(self) -> dict[str, Any]:
        return {
            "table_name": self.table_name,
            "lookup_key": self.lookup_key,
            "feature_names": self.feature_names,
            "rename_outputs": self.rename_outputs,
            "timestamp_lookup_key": self.timestamp_lookup_key,
            "lookback_window_seconds": (
                self.lookback_window.total_seconds() if self.lookback_window else None
            ),
            "default_values": self.default_values,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureLookup:
        window = d.get("lookback_window_seconds")
        return cls(
            d["table_name"],
            d["lookup_key"],
            feature_names=d["feature_names"],
            rename_outputs=d["rename_outputs"],
            timestamp_lookup_key=d["timestamp_lookup_key"],
            lookback_window=_dt.timedelta(seconds=window) if window else None,
            default_values=d["default_values"],
        )


@dataclass
class TrainingSet:
    """Labelled rows with their looked-up features; ``load_df()`` gives the DataFrame."""

    _df: Any
    feature_lookups: list[FeatureLookup]
    label: list[str]
    exclude_columns: list[str]
    input_columns: list[str] = field(default_factory=list)

    def load_df(self) -> Any:
        return self._df


class FeatureEngineeringClient:
    """Feature tables on the local runtime's Spark session (``spark`` of the notebook)."""

    def __init__(self, *, spark: Any = None) -> None:
        if spark is None:
            from pyspark.sql import SparkSession  # noqa: PLC0415 (the JVM starts on demand)

            spark = SparkSession.getActiveSession()
            if spark is None:
                raise RuntimeError("FeatureEngineeringClient needs an active SparkSession")
        self._spark = spark

    # ------------------------------------------------------------------ tables

    def create_table(
        self,
        *,
        name: str,
        primary_keys: str | list[str],
        df: Any = None,
        timeseries_column: str | None = None,
        partition_columns: str | list[str] | None = None,
        schema: Any = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> FeatureTable:
        """Create the Delta table ``name`` keyed by ``primary_keys`` (and fill it from ``df``)."""
        keys = _as_list(primary_keys, "primary_keys")
        if not keys:
            raise ValueError(f"feature table {name!r}: primary_keys is empty")
        if df is None and schema is None:
            raise ValueError(f"feature table {name!r}: give df or schema")
        schema = schema if schema is not None else df.schema
        if self._exists(name):
            raise ValueError(f"feature table {name!r} already exists (drop_table it first)")
        columns = {f.name: f.dataType for f in schema.fields}
        for key in keys:
            if key not in columns:
                raise ValueError(
                    f"feature table {name!r}: primary key column {key!r} is not in the schema "
                    f"({sorted(columns)})"
                )
        if timeseries_column is not None:
            _check_timeseries(name, columns, timeseries_column)
            if timeseries_column not in keys:
                keys = [*keys, timeseries_column]  # the time is part of the key
        partitions = _as_list(partition_columns, "partition_columns")
        props = {_PK_PROP: ",".join(keys), _DESC_PROP: description or ""}
        if timeseries_column:
            props[_TS_PROP] = timeseries_column
        for k, v in (tags or {}).items():
            props[f"coursekit.tag.{k}"] = v
        empty = self._spark.createDataFrame([], schema)
        writer = empty.write.format("delta")
        if partitions:
            writer = writer.partitionBy(*partitions)
        writer.saveAsTable(name)
        assignments = ", ".join(f"'{k}' = {json.dumps(v)}" for k, v in props.items())
        self._spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ({assignments})")
        if description:
            self._spark.sql(f"COMMENT ON TABLE {name} IS {json.dumps(description)}")
        if df is not None:
            self.write_table(name=name, df=df, mode="overwrite")
        return self.get_table(name=name)

    def get_table(self, *, name: str) -> FeatureTable:
        if not self._exists(name):
            raise ValueError(f"feature table {name!r} does not exist")
        props = {
            r["key"]: r["value"] for r in self._spark.sql(f"SHOW TBLPROPERTIES {name}").collect()
        }
        if _PK_PROP not in props:
            raise ValueError(
                f"table {name!r} is not a feature table (no primary key): create it with "
                "create_table"
            )
        keys = props[_PK_PROP].split(",")
        ts = props.get(_TS_PROP)
        columns = self._spark.table(name).columns
        return FeatureTable(
            name=name,
            primary_keys=keys,
            timeseries_column=ts,
            features=[c for c in columns if c not in keys],
            description=props.get(_DESC_PROP, ""),
        )

    def read_table(self, *, name: str) -> Any:
        self.get_table(name=name)
        return self._spark.table(name)

    def drop_table(self, *, name: str) -> None:
        self.get_table(name=name)
        self._spark.sql(f"DROP TABLE {name}")

    def write_table(self, *, name: str, df: Any, mode: str = "merge") -> None:
        """Upsert ``df`` by primary key (``merge``), or replace the table (``overwrite``)."""
        from delta.tables import DeltaTable  # noqa: PLC0415
        from pyspark.sql import functions as F  # noqa: N812, PLC0415

        if mode not in ("merge", "overwrite"):
            raise ValueError(f"write_table mode must be 'merge' or 'overwrite', got {mode!r}")
        table = self.get_table(name=name)
        target = {f.name: f.dataType for f in self._spark.table(name).schema.fields}
        given = {f.name: f.dataType for f in df.schema.fields}
        missing = [c for c in target if c not in given]
        extra = [c for c in given if c not in target]
        if missing or extra:
            raise ValueError(
                f"write_table({name!r}): the DataFrame's columns differ from the table's "
                f"(missing {missing}, unexpected {extra})"
            )
        for column, dtype in target.items():
            if given[column] != dtype:
                raise TypeError(
                    f"write_table({name!r}): column {column!r} is "
                    f"{given[column].simpleString()}, the table has {dtype.simpleString()}"
                )
        keys = table.primary_keys
        nulls = df.filter(" OR ".join(f"`{k}` IS NULL" for k in keys)).limit(1).count()
        if nulls:
            raise ValueError(f"write_table({name!r}): a primary key column {keys} holds NULL")
        dupes = df.groupBy(*keys).count().filter(F.col("count") > 1).limit(1).collect()
        if dupes:
            key = {k: dupes[0][k] for k in keys}
            raise ValueError(f"write_table({name!r}): the primary key {key} appears more than once")
        df = df.select(*target)
        if mode == "overwrite":
            df.write.format("delta").mode("overwrite").saveAsTable(name)
            return
        condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        (
            DeltaTable.forName(self._spark, name)
            .alias("t")
            .merge(df.alias("s"), condition)
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        )

    def _exists(self, name: str) -> bool:
        return bool(self._spark.catalog.tableExists(name))

    # ------------------------------------------------------------ training sets

    def create_training_set(
        self,
        *,
        df: Any,
        feature_lookups: list[FeatureLookup],
        label: str | list[str] | None,
        exclude_columns: list[str] | None = None,
    ) -> TrainingSet:
        """Join every lookup's features onto ``df`` (point in time for time-series tables)."""
        labels = _as_list(label, "label")
        excluded = _as_list(exclude_columns, "exclude_columns")
        for column in labels:
            if column not in df.columns:
                raise ValueError(f"create_training_set: label column {column!r} is not in df")
        joined = self._join_lookups(df, feature_lookups)
        for column in excluded:
            if column not in joined.columns:
                raise ValueError(
                    f"create_training_set: exclude_columns names {column!r}, not a column"
                )
        joined = joined.drop(*excluded)
        inputs = [c for c in joined.columns if c not in labels]
        return TrainingSet(joined, list(feature_lookups), labels, excluded, inputs)

    def _join_lookups(self, df: Any, lookups: list[FeatureLookup]) -> Any:
        from pyspark.sql import functions as F  # noqa: N812, PLC0415

        if not isinstance(lookups, list) or not all(isinstance(x, FeatureLookup) for x in lookups):
            raise TypeError("feature_lookups must be a list of FeatureLookup")
        if _ROW in df.columns:
            raise ValueError(f"df has a reserved column {_ROW!r}")
        out = df.withColumn(_ROW, F.monotonically_increasing_id())
        for lookup in lookups:
            out = self._apply_lookup(out, df, lookup)
        return out.orderBy(_ROW).drop(_ROW)

    def _apply_lookup(self, out: Any, df: Any, lookup: FeatureLookup) -> Any:
        """``out`` with one lookup's features joined on (``df``: the caller's columns)."""
        from pyspark.sql import functions as F  # noqa: N812, PLC0415

        table = self.get_table(name=lookup.table_name)
        where = f"FeatureLookup({lookup.table_name!r})"
        if len(lookup.lookup_key) != len(table.entity_keys):
            raise ValueError(
                f"{where}: lookup_key {lookup.lookup_key} must name one column of df per "
                f"key of the table {table.entity_keys}"
            )
        for column in lookup.lookup_key:
            if column not in df.columns:
                raise ValueError(f"{where}: lookup key column {column!r} is not in df")
        names = lookup.feature_names or [c for c in table.features if c not in lookup.lookup_key]
        unknown = [f for f in names if f not in table.features]
        if unknown:
            raise ValueError(f"{where}: no feature {unknown[0]!r} (has {table.features})")
        outputs = [lookup.rename_outputs.get(f, f) for f in names]
        clash = [o for o in outputs if o in out.columns]
        if clash:
            raise ValueError(f"{where}: output columns {clash} already exist in df")
        ft = self._spark.table(table.name)
        ts = [F.col(table.timeseries_column).alias("__ts")] if table.timeseries_column else []
        right = ft.select(
            *[F.col(k).alias(f"__k{i}") for i, k in enumerate(table.entity_keys)],
            *[F.col(f).alias(o) for f, o in zip(names, outputs, strict=True)],
            *ts,
        )
        if table.timeseries_column:
            want = ft.schema[table.timeseries_column].dataType
            matched = _as_of(
                out,
                df,
                lookup,
                ts_column=table.timeseries_column,
                ts_type=want,
                right=right,
                outputs=outputs,
            )
            out = out.join(matched, _ROW, "left")
        else:
            cond = [out[c] == right[f"__k{i}"] for i, c in enumerate(lookup.lookup_key)]
            out = out.join(right, cond, "left").drop(
                *[f"__k{i}" for i in range(len(table.entity_keys))]
            )
        defaults = {
            o: lookup.default_values[f]
            for f, o in zip(names, outputs, strict=True)
            if f in lookup.default_values
        }
        return out.fillna(defaults) if defaults else out

    # ----------------------------------------------------------------- models

    def log_model(
        self,
        *,
        model: Any,
        artifact_path: str,
        flavor: ModuleType,
        training_set: TrainingSet,
        registered_model_name: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Log ``model`` with ``flavor`` and the training set's lookups in its metadata."""
        if not isinstance(training_set, TrainingSet):
            raise TypeError("log_model needs the TrainingSet the model was trained on")
        spec = {
            "lookups": [x.to_dict() for x in training_set.feature_lookups],
            "exclude_columns": training_set.exclude_columns,
            "input_columns": training_set.input_columns,
        }
        metadata = {**kwargs.pop("metadata", {}), _SPEC_KEY: json.dumps(spec)}
        return flavor.log_model(
            model,
            name=artifact_path,
            registered_model_name=registered_model_name,
            metadata=metadata,
            **kwargs,
        )

    def score_batch(self, *, model_uri: str, df: Any, result_type: str = "double") -> Any:
        """Look the model's features up for ``df`` and append its ``prediction`` column."""
        import mlflow  # noqa: PLC0415
        from pyspark.sql import functions as F  # noqa: N812, PLC0415

        info = mlflow.models.get_model_info(model_uri)
        raw = (info.metadata or {}).get(_SPEC_KEY)
        if raw is None:
            raise ValueError(
                f"model {model_uri!r} was not logged with FeatureEngineeringClient.log_model "
                "(it carries no feature lookups)"
            )
        spec = json.loads(raw)
        lookups = [FeatureLookup.from_dict(d) for d in spec["lookups"]]
        joined = self._join_lookups(df, lookups)
        missing = [c for c in spec["input_columns"] if c not in joined.columns]
        if missing:
            raise ValueError(f"score_batch: df lacks the model's input columns {missing}")
        predict = mlflow.pyfunc.spark_udf(
            self._spark, model_uri, result_type=result_type, env_manager="local"
        )
        inputs = [F.col(c) for c in spec["input_columns"]]
        return joined.withColumn("prediction", predict(F.struct(*inputs)))


def _as_of(
    out: Any,
    df: Any,
    lookup: FeatureLookup,
    *,
    ts_column: str,
    ts_type: Any,
    right: Any,
    outputs: list[str],
) -> Any:
    """Point in time: for each row of ``out``, the latest feature row at or before its time."""
    from pyspark.sql import Window  # noqa: PLC0415
    from pyspark.sql import functions as F  # noqa: N812, PLC0415

    where = f"FeatureLookup({lookup.table_name!r})"
    ts_key = lookup.timestamp_lookup_key
    if ts_key is None:
        raise ValueError(
            f"{where}: the table is a time series (column {ts_column!r}); give "
            "timestamp_lookup_key, the df column holding each row's time, so that values "
            "from later are not used"
        )
    if ts_key not in df.columns:
        raise ValueError(f"{where}: timestamp_lookup_key column {ts_key!r} is not in df")
    got = df.schema[ts_key].dataType
    if got != ts_type:
        raise TypeError(
            f"{where}: timestamp_lookup_key {ts_key!r} is {got.simpleString()}, the table's "
            f"{ts_column!r} is {ts_type.simpleString()}"
        )
    left = out.select(_ROW, *dict.fromkeys([*lookup.lookup_key, ts_key]))
    cond = [left[c] == right[f"__k{i}"] for i, c in enumerate(lookup.lookup_key)]
    cond.append(right["__ts"] <= left[ts_key])
    if lookup.lookback_window is not None:
        seconds = int(lookup.lookback_window.total_seconds())
        cond.append(right["__ts"] >= left[ts_key] - F.expr(f"INTERVAL {seconds} SECONDS"))
    latest = Window.partitionBy(_ROW).orderBy(F.col("__ts").desc())
    return (
        left.join(right, cond, "inner")
        .withColumn("__rank", F.row_number().over(latest))
        .filter("__rank = 1")
        .select(_ROW, *outputs)
    )
