"""The Vector Search stand-in (coursekit.vector_search) on a real local Spark + Delta.

A Delta Sync index over a table with the change data feed: the initial load, then inserts,
updates and deletes picked up by ``sync()``; results checked against an exact NumPy search
over realizar's MiniLM embeddings; filters, hybrid queries, the self-managed embeddings
variant, and each bad input for its ValueError.
"""

from __future__ import annotations

import numpy as np
import pytest

# Starts Spark in the pytest process: one worker holds every such test (conftest.py).
pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark-session")]

DOCS = [
    (1, "Refunds are issued within 14 days of the return.", "policy", 2024),
    (2, "The Sweep S1 robot vacuum runs 63 minutes per charge.", "manual", 2021),
    (3, "Parental leave is 16 weeks, fully paid.", "handbook", 2023),
    (4, "Error E04 means the vacuum battery is too hot.", "manual", 2022),
    (5, "Shipping to the European Union takes 6-10 business days.", "policy", 2024),
    (6, "Passwords must be at least 14 characters long.", "handbook", 2024),
]


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    from coursekit.runtime.session import build_session  # noqa: PLC0415

    root = tmp_path_factory.mktemp("vs")
    session = build_session(root / "warehouse", app_name="test_vs", jvm_log=root / "jvm.log")
    session.sql("CREATE SCHEMA IF NOT EXISTS vs_test")
    return session


@pytest.fixture(scope="module")
def encoder():
    import realizar  # noqa: PLC0415

    return realizar.Encoder.load()


@pytest.fixture
def table(spark):
    spark.sql("DROP TABLE IF EXISTS vs_test.docs")
    spark.createDataFrame(DOCS, "id INT, text STRING, kind STRING, year INT").write.format(
        "delta"
    ).option("delta.enableChangeDataFeed", "true").saveAsTable("vs_test.docs")
    return "vs_test.docs"


@pytest.fixture
def client(spark):
    from coursekit import vector_search  # noqa: PLC0415

    vector_search._INDEXES.clear()
    vector_search._ENDPOINTS.clear()
    vsc = vector_search.VectorSearchClient(spark=spark, disable_notice=True)
    vsc.create_endpoint(name="vs_endpoint", endpoint_type="STANDARD")
    return vsc


def ids(result: dict) -> list[int]:
    return [row[0] for row in result["result"]["data_array"]]


def test_delta_sync_follows_the_change_data_feed(spark, table, client, encoder) -> None:
    index = client.create_delta_sync_index(
        endpoint_name="vs_endpoint",
        index_name="vs_test.docs_index",
        source_table_name=table,
        pipeline_type="TRIGGERED",
        primary_key="id",
        embedding_source_column="text",
        embedding_model_endpoint_name="databricks-gte-large-en",
    )
    assert client.get_index("vs_endpoint", "vs_test.docs_index") is index
    query = "How long until I get my money back?"
    res = index.similarity_search(query_text=query, columns=["id", "text"], num_results=3)
    assert res["manifest"]["columns"] == [{"name": "id"}, {"name": "text"}, {"name": "score"}]
    assert res["result"]["row_count"] == 3
    # Same order and scores as exact cosine over the same embeddings.
    emb = encoder.encode([d[1] for d in DOCS])
    q = encoder.encode([query])[0]
    exact = [DOCS[i][0] for i in np.argsort(-(emb @ q))[:3]]
    assert ids(res) == exact
    np.testing.assert_allclose(
        [r[-1] for r in res["result"]["data_array"]], np.sort(emb @ q)[::-1][:3], atol=1e-5
    )
    assert ids(res)[0] == 1

    spark.sql("DELETE FROM vs_test.docs WHERE id = 1")
    spark.sql("UPDATE vs_test.docs SET text = 'Money back: refunds arrive in 5 days.' WHERE id = 6")
    spark.sql(
        "INSERT INTO vs_test.docs VALUES (7, 'Gift cards cannot be refunded.', 'policy', 2025)"
    )
    stale = index.similarity_search(query_text=query, columns=["id"], num_results=6)
    assert 1 in ids(stale)  # TRIGGERED: nothing changes until sync()
    index.sync()
    res = index.similarity_search(query_text=query, columns=["id", "text"], num_results=7)
    got = ids(res)
    assert 1 not in got
    assert sorted(got) == [2, 3, 4, 5, 6, 7]
    assert got[0] == 6
    assert res["result"]["data_array"][0][1].startswith("Money back")
    assert index.describe()["status"]["indexed_row_count"] == 6

    filtered = index.similarity_search(
        query_text=query, columns=["id", "kind"], filters={"kind": "policy", "year >=": 2024}
    )
    assert {r[1] for r in filtered["result"]["data_array"]} == {"policy"}
    assert set(ids(filtered)) == {5, 7}
    hybrid = index.similarity_search(
        query_text="E04 battery", columns=["id"], num_results=2, query_type="HYBRID"
    )
    assert ids(hybrid)[0] == 4


def test_self_managed_embeddings_and_bad_input(spark, table, client, encoder) -> None:
    emb = encoder.encode([d[1] for d in DOCS])
    rows = [(d[0], d[1], d[2], emb[i].tolist()) for i, d in enumerate(DOCS)]
    spark.sql("DROP TABLE IF EXISTS vs_test.vecs")
    spark.createDataFrame(rows, "id INT, text STRING, kind STRING, vec ARRAY<FLOAT>").write.format(
        "delta"
    ).option("delta.enableChangeDataFeed", "true").saveAsTable("vs_test.vecs")
    index = client.create_delta_sync_index(
        endpoint_name="vs_endpoint",
        index_name="vs_test.vecs_index",
        source_table_name="vs_test.vecs",
        pipeline_type="CONTINUOUS",
        primary_key="id",
        embedding_vector_column="vec",
        embedding_dimension=384,
    )
    res = index.similarity_search(query_vector=emb[2].tolist(), columns=["id"], num_results=1)
    assert ids(res) == [3]
    spark.sql("DELETE FROM vs_test.vecs WHERE id = 3")  # CONTINUOUS: seen by the next query
    res = index.similarity_search(query_vector=emb[2].tolist(), columns=["id"], num_results=1)
    assert ids(res) != [3]

    with pytest.raises(ValueError, match="dimension"):
        index.similarity_search(query_vector=[0.1] * 10, columns=["id"])
    with pytest.raises(ValueError, match="unknown index"):
        client.get_index("vs_endpoint", "vs_test.nope")
    with pytest.raises(ValueError, match="unknown column"):
        index.similarity_search(
            query_vector=emb[0].tolist(), columns=["id"], filters={"colour": "red"}
        )
    with pytest.raises(ValueError, match="unknown columns"):
        index.similarity_search(query_vector=emb[0].tolist(), columns=["id", "nope"])
    with pytest.raises(ValueError, match="self-managed"):
        index.similarity_search(query_text="refund", columns=["id"])
    with pytest.raises(ValueError, match="unknown endpoint"):
        client.create_delta_sync_index(
            endpoint_name="nope",
            index_name="x",
            source_table_name=table,
            pipeline_type="TRIGGERED",
            primary_key="id",
            embedding_source_column="text",
            embedding_model_endpoint_name="m",
        )
    spark.sql("DROP TABLE IF EXISTS vs_test.nocdf")
    spark.createDataFrame(DOCS, "id INT, text STRING, kind STRING, year INT").write.format(
        "delta"
    ).saveAsTable("vs_test.nocdf")
    with pytest.raises(ValueError, match="change data feed"):
        client.create_delta_sync_index(
            endpoint_name="vs_endpoint",
            index_name="vs_test.nocdf_index",
            source_table_name="vs_test.nocdf",
            pipeline_type="TRIGGERED",
            primary_key="id",
            embedding_source_column="text",
            embedding_model_endpoint_name="m",
        )
