"""The Course 4 prompt-engineering sets (data/support_tickets.py): deterministic, honest labels.

Routing: every queue has one demonstration and seven test messages, never the same message
twice. Extraction: every label's error code is one the knowledge base lists for that product
line, the message names a model of that line and shows that code, and the label satisfies
the published JSON schema (checked with jsonschema) while a model name in its place does not.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "data"))
import knowledge_base as kb
import support_tickets as st


def test_routing_is_deterministic_balanced_and_disjoint() -> None:
    examples, test = st.routing()
    assert (examples, test) == st.routing()
    assert st.routing(seed=1) != (examples, test)
    assert [e["label"] for e in examples] == list(st.QUEUES)
    assert Counter(t["label"] for t in test) == dict.fromkeys(st.QUEUES, 7)
    texts = [x["text"] for x in examples + test]
    assert len(set(texts)) == len(texts)
    assert all("{" not in t for t in texts)


def test_error_reports_agree_with_the_knowledge_base() -> None:
    reports = st.error_reports(seed=1, n=200)
    assert reports == st.error_reports(seed=1, n=200)
    assert st.error_reports(n=0) == []
    assert {r["label"]["product_line"] for r in reports} == set(kb.LINES)
    for r in reports:
        line, code = r["label"]["product_line"], r["label"]["error_code"]
        assert code in {c for c, _, _ in kb.LINES[line]["errors"]}
        assert code in r["text"]
        assert f"Kestrel {line} " in r["text"]
        jsonschema.validate(r["label"], st.ERROR_REPORT_SCHEMA)


@pytest.mark.parametrize(
    "bad",
    [
        {"product_line": "W4 Pro", "error_code": "E34"},
        {"product_line": "Watch", "error_code": "34"},
        {"product_line": "Watch"},
        {"product_line": "Watch", "error_code": "E34", "extra": 1},
    ],
)
def test_schema_refuses_what_the_model_gets_wrong(bad: dict) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, st.ERROR_REPORT_SCHEMA)


@pytest.mark.parametrize("n", [-1, 1.5, True, "3"])
def test_error_reports_refuses_bad_n(n: object) -> None:
    with pytest.raises(ValueError, match="n must be"):
        st.error_reports(n=n)  # ty: ignore[invalid-argument-type]
