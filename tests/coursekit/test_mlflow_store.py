"""Notebooks running side by side share one new MLflow store without racing to create it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

_WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    root, go, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    import mlflow
    import coursekit.runtime as runtime
    (go.parent / f"ready-{name}").touch()
    while not go.exists():  # every worker starts the store at the same moment
        time.sleep(0.005)
    runtime._configure_mlflow(root)
    experiment = mlflow.create_experiment(name)
    with mlflow.start_run(experiment_id=experiment):
        mlflow.log_metric("m", 1.0)
    print("ok", name)
    """
)


def test_kernels_side_by_side_share_a_new_store(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    go = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.pop("_MLFLOW_SERVER_ARTIFACT_ROOT", None)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(root), str(go), f"exp{i}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    # Every worker has imported mlflow before any reaches the store.
    deadline = time.monotonic() + 240
    while len(list(tmp_path.glob("ready-*"))) < len(workers):
        assert time.monotonic() < deadline, "the workers did not start"
        assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
        time.sleep(0.05)
    go.touch()
    outcomes = [w.communicate(timeout=300) for w in workers]
    for worker, (out, err) in zip(workers, outcomes, strict=True):
        assert worker.returncode == 0, err[-3000:]
        assert out.startswith("ok")
    import sqlite3  # noqa: PLC0415

    with sqlite3.connect(root / "build" / "mlflow" / "mlflow.db") as db:
        names = {row[0] for row in db.execute("SELECT name FROM experiments")}
    assert {f"exp{i}" for i in range(4)} <= names
