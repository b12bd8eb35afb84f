"""`realizar serve` as a real process on a loopback port, hit by real HTTP clients.

The server is started through the console entry point (`python -m realizar serve`) with
`--port 0`; it prints the address it bound, which the fixture reads. MLflow scoring
payloads go through `requests` and are checked against scikit-learn's own predictions.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression

import realizar

STARTUP_SECONDS = 30
TIMEOUT = 10


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def start_server(model: Path, *extra: str) -> Server:
    cmd = [sys.executable, "-m", "realizar", "serve", "--model", str(model), "--port", "0", *extra]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + STARTUP_SECONDS
    line = ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        if match:
            return Server(proc, match.group(1))
    proc.kill()
    rest = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"server did not start: {line}{rest}")


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray, RandomForestClassifier]:
    x, y = load_breast_cancer(return_X_y=True)
    est = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0).fit(x, y)
    return x, y, est


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    cancer: tuple[np.ndarray, np.ndarray, RandomForestClassifier],
) -> Iterator[Server]:
    path = tmp_path_factory.mktemp("model") / "cancer-forest.safetensors"
    realizar.export_sklearn(cancer[2], path)
    srv = start_server(path, "--max-batch", "100", "--max-body-bytes", "200000")
    yield srv
    assert srv.stop() == 0, "server did not exit cleanly on SIGTERM"


def post(server: Server, payload: Any) -> requests.Response:
    return requests.post(f"{server.url}/invocations", json=payload, timeout=TIMEOUT)


def test_health_models_and_ping(server: Server) -> None:
    r = requests.get(f"{server.url}/health", timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "model": "cancer-forest",
        "kind": "tabular",
        "models": [{"name": "cancer-forest", "kind": "tabular"}],
    }
    models = requests.get(f"{server.url}/v1/models", timeout=TIMEOUT).json()
    assert [m["id"] for m in models["data"]] == ["cancer-forest"]


def test_every_mlflow_input_shape_matches_sklearn(server: Server, cancer: tuple) -> None:
    x, _, est = cancer
    rows = x[:25]
    want = est.predict(rows).tolist()
    columns = [str(i) for i in range(x.shape[1])]
    payloads = {
        "dataframe_split": {"dataframe_split": {"columns": columns, "data": rows.tolist()}},
        "dataframe_records": {
            "dataframe_records": [dict(zip(columns, r, strict=True)) for r in rows.tolist()]
        },
        "instances": {"instances": rows.tolist()},
        "inputs": {"inputs": rows.tolist()},
        "inputs-columns": {"inputs": {c: rows[:, i].tolist() for i, c in enumerate(columns)}},
    }
    for name, payload in payloads.items():
        r = post(server, payload)
        assert r.status_code == 200, (name, r.text)
        assert r.headers["content-type"].startswith("application/json")
        assert r.json() == {"predictions": want}, name


def test_whole_dataset_matches_sklearn(server: Server, cancer: tuple) -> None:
    x, _, est = cancer
    got = []
    for start in range(0, len(x), 100):
        r = post(server, {"instances": x[start : start + 100].tolist()})
        assert r.status_code == 200, r.text
        got += r.json()["predictions"]
    assert got == est.predict(x).tolist()


def test_concurrent_clients(server: Server, cancer: tuple) -> None:
    x, _, est = cancer
    want = est.predict(x[:40]).tolist()

    def one(i: int) -> list[int]:
        with requests.Session() as s:
            r = s.post(
                f"{server.url}/invocations", json={"instances": [x[i].tolist()]}, timeout=TIMEOUT
            )
            r.raise_for_status()
            return r.json()["predictions"]

    with ThreadPoolExecutor(8) as pool:
        got = [p[0] for p in pool.map(one, range(40))]
    assert got == want


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ("{not json", 400, "malformed JSON"),
        ('{"instances": [[1.0, 2.0, 3.0]]}', 400, "3 features, but the model expects 30"),
        (
            '{"instances": [["a"' + ", 1.0" * 29 + "]]}",
            400,
            "expected a finite number, got a string",
        ),
        ('{"instances": [[null' + ", 1.0" * 29 + "]]}", 400, "got null"),
        ('{"instances": "abc"}', 400, "wrong type"),
        ('{"data": [[1.0]]}', 400, "needs one of the keys"),
        (
            '{"instances": [' + ",".join(["[" + ",".join(["0"] * 30) + "]"] * 101) + "]}",
            413,
            "limit of 100 rows",
        ),
        ('{"instances": [[' + ",".join(["1.0"] * 60000) + "]]}", 413, "larger than the limit"),
        ("[1, 2, 3]", 400, "must be a JSON object"),
    ],
    ids=[
        "malformed",
        "feature-count",
        "string",
        "null",
        "wrong-type",
        "no-key",
        "batch",
        "body",
        "not-object",
    ],
)
def test_bad_requests_get_json_4xx(server: Server, body: str, status: int, needle: str) -> None:
    r = requests.post(
        f"{server.url}/invocations",
        data=body,
        headers={"content-type": "application/json"},
        timeout=TIMEOUT,
    )
    assert r.status_code == status, r.text
    doc = r.json()
    assert needle in doc["message"], doc
    assert doc["error_code"]
    # The server is still healthy after every bad request.
    assert requests.get(f"{server.url}/health", timeout=TIMEOUT).status_code == 200


def test_wrong_route_and_method_are_json(server: Server) -> None:
    r = requests.get(f"{server.url}/invocations", timeout=TIMEOUT)
    assert r.status_code == 405
    assert "GET" in r.json()["message"]
    r = requests.post(
        f"{server.url}/v1/embeddings", json={"input": "x", "model": "m"}, timeout=TIMEOUT
    )
    assert r.status_code == 404
    err = r.json()["error"]
    assert "cancer-forest" in err["message"]
    assert err["code"] == "model_not_found"
    r = requests.get(f"{server.url}/does-not-exist", timeout=TIMEOUT)
    assert r.status_code == 404
    assert r.json()["error"]["message"]


def test_metrics_count_requests(server: Server) -> None:
    before = requests.get(f"{server.url}/metrics", timeout=TIMEOUT).text
    post(server, {"instances": [[0.0] * 30]})
    post(server, {"instances": [[0.0]]})
    text = requests.get(f"{server.url}/metrics", timeout=TIMEOUT).text

    def count(t: str, status: str) -> int:
        m = re.search(
            rf'realizar_requests_total{{route="/invocations",status="{status}"}} (\d+)', t
        )
        return int(m.group(1)) if m else 0

    assert count(text, "200") == count(before, "200") + 1
    assert count(text, "400") == count(before, "400") + 1
    assert 'realizar_request_duration_seconds_bucket{route="/invocations",le="+Inf"}' in text


def test_regressor_and_named_features(tmp_path: Path) -> None:
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns="target")
    est = LinearRegression().fit(frame.drop(columns="petal width (cm)"), frame["petal width (cm)"])
    path = tmp_path / "iris-lr.safetensors"
    realizar.export_sklearn(est, path)
    srv = start_server(path)
    try:
        sample = frame.drop(columns="petal width (cm)").head(5)
        want = est.predict(sample)
        # Columns in another order are matched by name.
        shuffled = sample[list(reversed(sample.columns))]
        split = json.loads(shuffled.to_json(orient="split", index=False))
        r = requests.post(
            f"{srv.url}/invocations", json={"dataframe_split": split}, timeout=TIMEOUT
        )
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["predictions"], want, rtol=1e-5)
        text = pd.DataFrame(sample).to_json(orient="records")
        assert text is not None
        records = json.loads(text)
        r = requests.post(
            f"{srv.url}/invocations", json={"dataframe_records": records}, timeout=TIMEOUT
        )
        np.testing.assert_allclose(r.json()["predictions"], want, rtol=1e-5)
        bad = [{"sepal length (cm)": 1.0}]
        r = requests.post(
            f"{srv.url}/invocations", json={"dataframe_records": bad}, timeout=TIMEOUT
        )
        assert r.status_code == 400
        assert "missing column" in r.json()["message"]
    finally:
        assert srv.stop(signal.SIGINT) == 0, "server did not exit cleanly on SIGINT"


def test_bad_model_path_fails_fast(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "realizar", "serve", "--model", str(tmp_path / "nope.safetensors")],
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        check=False,
    )
    assert proc.returncode == 1
    assert "cannot read" in proc.stderr
