"""The feature-pipeline demo's Python side: the data it loads and the reference it meets.

``generate DIR --rows N`` writes the fraud data the course's generator makes
(``data/fraud_data.py``: ``write_volume``, so ``DIR/transactions.parquet`` as pandas and
pyarrow write it) and ``DIR/reference.parquet``, the same generator's
``model_features`` computed by pandas. ``check DIR`` reads the demo's Rust-written
``DIR/features.parquet`` with pyarrow and compares it with the reference: an
independent reader of what alimentar wrote, and an independent computation of what
trueno computed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "data" / "fraud_data.py").is_file())
sys.path.insert(0, str(ROOT / "data"))
import fraud_data  # noqa: E402 (found through sys.path above)

# Columns the demo writes and the reference holds, with the dtype both must have.
INTEGERS = ("transaction_id", "customer_id", "is_fraud", "n_prev_1h", "n_prev_24h", "hour")
FLAGS = ("night", "risky")
FLOATS = ("amount", "amount_ratio", "log_amount_ratio", "category_share")


def generate(directory: Path, rows: int, seed: int) -> None:
    data = fraud_data.generate(rows, seed=seed)
    fraud_data.write_volume(data, directory)
    reference = fraud_data.model_features(data.transactions)
    columns = [*INTEGERS, *FLAGS, *FLOATS]
    reference[columns].to_parquet(directory / "reference.parquet", index=False)
    print(f"reference.py: {len(data.transactions)} transactions (seed {seed}) in {directory}")


def check(directory: Path) -> None:
    ours = pq.read_table(directory / "features.parquet")
    ref = pq.read_table(directory / "reference.parquet")
    if ours.num_rows != ref.num_rows:
        raise SystemExit(f"features.parquet has {ours.num_rows} rows, the reference {ref.num_rows}")
    for name in (*INTEGERS, *FLAGS):
        a, b = ours[name].to_numpy(), ref[name].to_numpy()
        if ours[name].null_count or not np.array_equal(a.astype(np.int64), b.astype(np.int64)):
            raise SystemExit(f"column {name}: pyarrow reads values that differ from pandas'")
    for name in FLOATS:
        if not pa.types.is_float64(ours.schema.field(name).type):
            raise SystemExit(f"column {name} is {ours.schema.field(name).type}, not double")
        np.testing.assert_allclose(ours[name].to_numpy(), ref[name].to_numpy(), rtol=1e-12)
    print(f"reference.py: pyarrow reads features.parquet ({ours.num_rows} rows): equal to pandas")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("generate", "check"))
    parser.add_argument("directory", type=Path)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.command == "generate":
        generate(args.directory, args.rows, args.seed)
    else:
        check(args.directory)


if __name__ == "__main__":
    main()
