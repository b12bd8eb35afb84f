"""A local stand-in for Databricks Vector Search, on Delta and the project's own retrieval stack.

What it teaches: a **Delta Sync index** is a vector index that follows a Delta table. It is
created over a table with the change data feed enabled; each ``sync()`` reads the table's
changes since the last synced version (``readChangeFeed``) and applies them to the index:
inserted and updated rows are embedded (the ``embedding_source_column`` with a model, or a
precomputed ``embedding_vector_column``) and upserted by primary key, deleted rows are
removed. ``similarity_search`` then finds the nearest rows to a query, optionally filtered
on other columns, and ``query_type="HYBRID"`` fuses keyword (BM25) and vector rankings.

On Databricks, notebooks use ``databricks.vector_search.client.VectorSearchClient``; this
module mirrors its names and keyword arguments (databricks-vectorsearch 0.81) for the subset
the course uses: ``create_endpoint``, ``get_endpoint``, ``list_endpoints``,
``create_delta_sync_index`` (managed embeddings via ``embedding_source_column`` +
``embedding_model_endpoint_name``, or self-managed via ``embedding_vector_column`` +
``embedding_dimension``), ``get_index``, ``list_indexes``, ``delete_index``, and on the index
``sync()``, ``describe()`` and ``similarity_search(query_text=, query_vector=, columns=,
num_results=, filters=, query_type=)``, which returns the service's result shape
``{"manifest": {"column_count", "columns": [{"name"}...]}, "result": {"row_count",
"data_array"}}`` with the score as the last column.

Nothing is mocked: the index is `realizar.rag.HNSW` (trueno-rag) with metadata filters in
the service's dictionary syntax, keyword search is `realizar.rag.BM25`, fusion is weighted
reciprocal rank fusion, and text is embedded by realizar's all-MiniLM-L6-v2 (whatever
``embedding_model_endpoint_name`` names: locally there is one embedding model). Deliberate
differences: indexes live in the client's process (one registry shared by every client);
``pipeline_type="CONTINUOUS"`` syncs before each query instead of in the background; hybrid
scores are RRF scores, not the service's; bad input (an unknown endpoint or index, a filter
or column the index lacks, a vector of the wrong dimension) raises ``ValueError`` naming it.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_ENDPOINTS: dict[str, dict[str, Any]] = {}
_INDEXES: dict[str, VectorSearchIndex] = {}
_ENCODER: list[Any] = []

RRF_K = 60.0


def _encoder() -> Any:
    """realizar's MiniLM, loaded once per process."""
    if not _ENCODER:
        import realizar  # noqa: PLC0415 (the wheel is needed only when text is embedded)

        _ENCODER.append(realizar.Encoder.load())
    return _ENCODER[0]


def _scalar(v: Any) -> Any:
    """A column value as JSON for the index's filter metadata (None if not filterable)."""
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, _dt.date | _dt.datetime):
        return v.isoformat()
    return None


@dataclass
class VectorSearchIndex:
    """One Delta Sync index (get it from `VectorSearchClient.get_index`)."""

    name: str
    endpoint_name: str
    source_table_name: str
    primary_key: str
    pipeline_type: str
    embedding_source_column: str | None
    embedding_model_endpoint_name: str | None
    embedding_vector_column: str | None
    embedding_dimension: int
    columns: list[str]
    spark: Any
    _hnsw: Any = None
    _rows: dict[Any, dict[str, Any]] = field(default_factory=dict)
    _labels: dict[Any, int] = field(default_factory=dict)
    _next_label: int = 0
    _version: int = -1
    _bm25: Any = None
    _bm25_keys: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        from realizar import rag  # noqa: PLC0415

        self._hnsw = rag.HNSW(self.embedding_dimension, M=16, ef_construction=200, ef_search=100)

    # -- sync ---------------------------------------------------------------------------

    def _table_version(self) -> int:
        hist = self.spark.sql(f"DESCRIBE HISTORY {self.source_table_name} LIMIT 1").collect()
        return int(hist[0]["version"])

    def sync(self) -> None:
        """Apply the source table's changes since the last sync (its change data feed)."""
        latest = self._table_version()
        if latest <= self._version:
            return
        if self._version < 0:
            rows = self.spark.table(self.source_table_name).collect()
            changes = [(r.asDict(), "insert") for r in rows]
        else:
            df = (
                self.spark.read.format("delta")
                .option("readChangeFeed", "true")
                .option("startingVersion", self._version + 1)
                .option("endingVersion", latest)
                .table(self.source_table_name)
                .where("_change_type != 'update_preimage'")
                .orderBy("_commit_version")
            )
            # The last change of each key wins (a row updated twice, or deleted then re-added).
            last: dict[Any, tuple[dict[str, Any], str]] = {}
            for r in df.collect():
                d = r.asDict()
                last[d[self.primary_key]] = (d, d["_change_type"])
            changes = list(last.values())
        self._apply(changes)
        self._version = latest

    def _apply(self, changes: list[tuple[dict[str, Any], str]]) -> None:
        upserts: list[dict[str, Any]] = []
        for row, kind in changes:
            key = row[self.primary_key]
            if kind == "delete":
                if key in self._labels:
                    self._hnsw.delete(self._labels.pop(key))
                    self._rows.pop(key, None)
            else:
                upserts.append({c: row.get(c) for c in self.columns})
        if upserts:
            vectors = self._embed_rows(upserts)
            labels = []
            for row in upserts:
                key = row[self.primary_key]
                if key not in self._labels:
                    self._labels[key] = self._next_label
                    self._next_label += 1
                labels.append(self._labels[key])
                self._rows[key] = row
            metadata = [{c: _scalar(v) for c, v in row.items()} for row in upserts]
            self._hnsw.add(vectors, labels, metadata)
        self._bm25 = None  # keyword statistics depend on the whole corpus: rebuilt lazily

    def _embed_rows(self, rows: list[dict[str, Any]]) -> np.ndarray:
        if self.embedding_vector_column is not None:
            vecs = np.asarray([r[self.embedding_vector_column] for r in rows], dtype=np.float32)
            if vecs.ndim != 2 or vecs.shape[1] != self.embedding_dimension:
                msg = (
                    f"column {self.embedding_vector_column!r} holds vectors of shape "
                    f"{vecs.shape[1:]}, the index expects dimension {self.embedding_dimension}"
                )
                raise ValueError(msg)
            return vecs
        col = str(self.embedding_source_column)
        texts = [str(r[col] or "") for r in rows]
        return _encoder().encode(texts)

    # -- queries --------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "source_table": self.source_table_name,
            "pipeline_type": self.pipeline_type,
        }
        if self.embedding_source_column:
            spec["embedding_source_columns"] = [
                {
                    "name": self.embedding_source_column,
                    "embedding_model_endpoint_name": self.embedding_model_endpoint_name,
                }
            ]
        else:
            spec["embedding_vector_columns"] = [
                {
                    "name": self.embedding_vector_column,
                    "embedding_dimension": self.embedding_dimension,
                }
            ]
        return {
            "name": self.name,
            "endpoint_name": self.endpoint_name,
            "primary_key": self.primary_key,
            "index_type": "DELTA_SYNC",
            "delta_sync_index_spec": spec,
            "status": {
                "ready": True,
                "indexed_row_count": len(self._rows),
                "message": f"synced to version {self._version}",
            },
        }

    def _keyword_ranking(self, query_text: str, k: int, allowed: set[Any] | None) -> list[int]:
        from realizar import rag  # noqa: PLC0415

        if self.embedding_source_column is None:
            msg = "HYBRID search needs a text column: this index has no embedding_source_column"
            raise ValueError(msg)
        if self._bm25 is None:
            self._bm25_keys = list(self._rows)
            texts = [
                str(self._rows[key][self.embedding_source_column] or "") for key in self._bm25_keys
            ]
            self._bm25 = rag.BM25.from_texts(texts, stop_words=True)
        tokens = rag.analyze(query_text, stop_words=True)
        idx, scores = self._bm25.top_k(tokens, len(self._bm25_keys))
        out = []
        for i, s in zip(idx.tolist(), scores.tolist(), strict=True):
            key = self._bm25_keys[i]
            if s <= 0 or (allowed is not None and key not in allowed):
                continue
            out.append(self._labels[key])
            if len(out) == k:
                break
        return out

    def _check(
        self, columns: list[str], filters: dict[str, Any] | None, num_results: int, qtype: str
    ) -> None:
        from realizar import rag  # noqa: PLC0415

        if qtype not in {"ANN", "HYBRID"}:
            msg = f"query_type must be 'ANN' or 'HYBRID', got {qtype!r}"
            raise ValueError(msg)
        if not isinstance(columns, list | tuple) or not columns:
            msg = "columns must be a non-empty list of column names"
            raise ValueError(msg)
        missing = [c for c in columns if c not in self.columns]
        if missing:
            msg = f"unknown columns {missing} for index {self.name}; it has {self.columns}"
            raise ValueError(msg)
        if not isinstance(num_results, int) or num_results < 1:
            msg = f"num_results must be a positive int, got {num_results!r}"
            raise ValueError(msg)
        if filters is not None and not isinstance(filters, dict):
            kind = type(filters).__name__
            msg = f"filters must be a dict (the standard endpoint syntax), got {kind}"
            raise ValueError(msg)
        unknown = [c for c in rag.HNSW.filter_columns(filters or {}) if c not in self.columns]
        if unknown:
            msg = f"filter on unknown column(s) {unknown} for index {self.name}"
            msg += f"; it has {self.columns}"
            raise ValueError(msg)

    def _query_vector(
        self, query_text: str | None, query_vector: list[float] | None, qtype: str
    ) -> np.ndarray:
        if qtype == "HYBRID" and query_text is None:
            msg = "HYBRID search needs query_text"
            raise ValueError(msg)
        if query_vector is not None:
            q = np.asarray(query_vector, dtype=np.float32)
            if q.ndim != 1 or q.shape[0] != self.embedding_dimension:
                msg = (
                    f"query_vector has dimension {q.shape}, index {self.name} expects "
                    f"{self.embedding_dimension}"
                )
                raise ValueError(msg)
            return q
        if query_text is None:
            msg = "pass query_text or query_vector"
            raise ValueError(msg)
        if self.embedding_source_column is None:
            msg = f"index {self.name} has self-managed embeddings: pass query_vector"
            raise ValueError(msg)
        return _encoder().encode([query_text])[0]

    def similarity_search(  # noqa: PLR0917 (the client's signature takes these positionally)
        self,
        columns: list[str],
        query_text: str | None = None,
        query_vector: list[float] | None = None,
        filters: dict[str, Any] | None = None,
        num_results: int = 5,
        debug_level: int = 0,
        score_threshold: float | None = None,
        query_type: str | None = None,
    ) -> dict[str, Any]:
        """The `num_results` nearest rows, as the service's result dict."""
        from realizar import rag  # noqa: PLC0415

        del debug_level
        if self.pipeline_type == "CONTINUOUS":
            self.sync()
        qtype = (query_type or "ANN").upper()
        self._check(columns, filters, num_results, qtype)
        q = self._query_vector(query_text, query_vector, qtype)
        k = num_results
        pool = k if qtype == "ANN" else max(4 * k, 50)
        labels, scores = self._hnsw.search(q, pool, ef=max(100, 2 * pool), filters=filters)
        by_label = {label: key for key, label in self._labels.items()}
        if qtype == "ANN":
            hits = list(zip(labels.tolist(), scores.tolist(), strict=True))
        else:
            allowed = None
            if filters:
                everything = self._hnsw.search_exact(q, len(self._rows), filters=filters)[0]
                allowed = {by_label[x] for x in everything.tolist()}
            lexical = self._keyword_ranking(query_text or "", pool, allowed)
            hits = rag.rrf([labels.tolist(), lexical], [1.0, 1.0], RRF_K)
        hits = [(lab, s) for lab, s in hits if score_threshold is None or s >= score_threshold]
        data = [[*(self._rows[by_label[lab]][c] for c in columns), float(s)] for lab, s in hits[:k]]
        return {
            "manifest": {
                "column_count": len(columns) + 1,
                "columns": [{"name": c} for c in columns] + [{"name": "score"}],
            },
            "result": {"row_count": len(data), "data_array": data},
        }


class VectorSearchClient:
    """The local Vector Search client: endpoints and Delta Sync indexes (see the module)."""

    def __init__(self, *args: Any, spark: Any = None, disable_notice: bool = False, **kwargs: Any):
        # Workspace URL and credentials are accepted and ignored: everything is local.
        del args, kwargs, disable_notice
        if spark is None:
            from pyspark.sql import SparkSession  # noqa: PLC0415

            spark = SparkSession.getActiveSession()
            if spark is None:
                msg = "no active SparkSession: start one (the notebook runner does) or pass spark="
                raise ValueError(msg)
        self.spark = spark

    def create_endpoint(
        self, name: str, endpoint_type: str = "STANDARD", **_: Any
    ) -> dict[str, Any]:
        if not name or not isinstance(name, str):
            msg = f"endpoint name must be a non-empty str, got {name!r}"
            raise ValueError(msg)
        if name in _ENDPOINTS:
            msg = f"endpoint {name!r} already exists"
            raise ValueError(msg)
        if endpoint_type not in {"STANDARD", "STORAGE_OPTIMIZED"}:
            msg = f"endpoint_type must be STANDARD or STORAGE_OPTIMIZED, got {endpoint_type!r}"
            raise ValueError(msg)
        _ENDPOINTS[name] = {
            "name": name,
            "endpoint_type": endpoint_type,
            "endpoint_status": {"state": "ONLINE"},
        }
        return dict(_ENDPOINTS[name])

    def create_endpoint_and_wait(
        self, name: str, endpoint_type: str = "STANDARD", **kw: Any
    ) -> dict[str, Any]:
        return self.create_endpoint(name, endpoint_type, **kw)

    def get_endpoint(self, name: str) -> dict[str, Any]:
        if name not in _ENDPOINTS:
            msg = f"unknown endpoint {name!r}; endpoints: {sorted(_ENDPOINTS)}"
            raise ValueError(msg)
        return dict(_ENDPOINTS[name])

    def list_endpoints(self) -> dict[str, Any]:
        return {"endpoints": [dict(e) for e in _ENDPOINTS.values()]}

    def delete_endpoint(self, name: str) -> None:
        self.get_endpoint(name)
        for idx in [i for i in _INDEXES.values() if i.endpoint_name == name]:
            del _INDEXES[idx.name]
        del _ENDPOINTS[name]

    def create_delta_sync_index(  # noqa: PLR0917 (the client's positional signature)
        self,
        endpoint_name: str,
        index_name: str,
        primary_key: str,
        source_table_name: str,
        pipeline_type: str,
        embedding_dimension: int | None = None,
        embedding_vector_column: str | None = None,
        embedding_source_column: str | None = None,
        embedding_model_endpoint_name: str | None = None,
        columns_to_sync: list[str] | None = None,
        **_: Any,
    ) -> VectorSearchIndex:
        self.get_endpoint(endpoint_name)
        if index_name in _INDEXES:
            msg = f"index {index_name!r} already exists"
            raise ValueError(msg)
        if pipeline_type not in {"TRIGGERED", "CONTINUOUS"}:
            msg = f"pipeline_type must be TRIGGERED or CONTINUOUS, got {pipeline_type!r}"
            raise ValueError(msg)
        if not self.spark.catalog.tableExists(source_table_name):
            msg = f"source table {source_table_name!r} does not exist"
            raise ValueError(msg)
        props = {
            r["key"]: r["value"]
            for r in self.spark.sql(f"SHOW TBLPROPERTIES {source_table_name}").collect()
        }
        if props.get("delta.enableChangeDataFeed", "false").lower() != "true":
            msg = (
                f"source table {source_table_name!r} must have the change data feed enabled: "
                f"ALTER TABLE {source_table_name} SET TBLPROPERTIES "
                "(delta.enableChangeDataFeed = true)"
            )
            raise ValueError(msg)
        schema = self.spark.table(source_table_name).columns
        managed = embedding_source_column is not None
        if managed == (embedding_vector_column is not None):
            msg = "give exactly one of embedding_source_column or embedding_vector_column"
            raise ValueError(msg)
        if managed and not embedding_model_endpoint_name:
            msg = "embedding_source_column needs embedding_model_endpoint_name"
            raise ValueError(msg)
        if not managed and (not isinstance(embedding_dimension, int) or embedding_dimension < 1):
            msg = "embedding_vector_column needs a positive embedding_dimension"
            msg += f", got {embedding_dimension!r}"
            raise ValueError(msg)
        needed = [primary_key, str(embedding_source_column or embedding_vector_column)]
        wanted = list(columns_to_sync) if columns_to_sync else list(schema)
        columns = list(dict.fromkeys([*needed, *wanted]))
        missing = [c for c in columns if c not in schema]
        if missing:
            msg = f"columns {missing} are not in {source_table_name}; it has {schema}"
            raise ValueError(msg)
        dim = _encoder().dim if managed else int(embedding_dimension or 0)
        index = VectorSearchIndex(
            name=index_name,
            endpoint_name=endpoint_name,
            source_table_name=source_table_name,
            primary_key=primary_key,
            pipeline_type=pipeline_type,
            embedding_source_column=embedding_source_column,
            embedding_model_endpoint_name=embedding_model_endpoint_name,
            embedding_vector_column=embedding_vector_column,
            embedding_dimension=dim,
            columns=columns,
            spark=self.spark,
        )
        index.sync()  # the initial load, as the service does on creation
        _INDEXES[index_name] = index
        return index

    def get_index(
        self, endpoint_name: str | None = None, index_name: str | None = None
    ) -> VectorSearchIndex:
        if index_name not in _INDEXES:
            msg = f"unknown index {index_name!r}; indexes: {sorted(_INDEXES)}"
            raise ValueError(msg)
        index = _INDEXES[index_name]
        if endpoint_name is not None and endpoint_name != index.endpoint_name:
            msg = f"index {index_name!r} is on endpoint {index.endpoint_name!r}"
            msg += f", not {endpoint_name!r}"
            raise ValueError(msg)
        return index

    def list_indexes(self, name: str) -> dict[str, Any]:
        self.get_endpoint(name)
        return {
            "vector_indexes": [
                {"name": i.name, "primary_key": i.primary_key, "index_type": "DELTA_SYNC"}
                for i in _INDEXES.values()
                if i.endpoint_name == name
            ]
        }

    def delete_index(self, endpoint_name: str | None = None, index_name: str | None = None) -> None:
        self.get_index(endpoint_name, index_name)
        del _INDEXES[str(index_name)]
