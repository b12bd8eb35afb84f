"""The Course 3 fraud generator (data/fraud_data.py): rate, determinism, drift, learnability.

References: scipy's two-sample KS test for the amount drift, a population stability index
computed here from category shares, and scikit-learn models for "a model can learn it".
"""

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "data"))
import fraud_data


@pytest.fixture(scope="module")
def data():
    return fraud_data.generate(20_000, seed=11)


def test_shapes_and_keys(data):
    tx = data.transactions
    assert len(tx) == 20_000
    assert list(tx.columns) == list(fraud_data.TRANSACTION_COLUMNS)
    assert tx["transaction_id"].is_unique
    assert set(tx["customer_id"]) <= set(data.customers["customer_id"])
    merchants = data.merchants.set_index("merchant_id")["category"]
    # Every transaction's category is its merchant's category.
    assert (merchants.loc[tx["merchant_id"]].to_numpy() == tx["category"].to_numpy()).all()
    assert tx["ts"].is_monotonic_increasing
    assert (tx["amount"] > 0).all()
    assert tx["ts"].min() >= pd.Timestamp("2025-01-01")
    assert tx["ts"].max() < pd.Timestamp("2025-07-01")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fraud_rate_in_range(seed):
    tx = fraud_data.generate(20_000, seed=seed).transactions
    assert 0.005 <= tx["is_fraud"].mean() <= 0.02


def test_fraud_rate_parameter():
    tx = fraud_data.generate(20_000, fraud_rate=0.02, seed=3).transactions
    assert 0.015 <= tx["is_fraud"].mean() <= 0.025


def test_long_tailed_amounts(data):
    amounts = data.transactions["amount"]
    assert amounts.mean() > amounts.median() * 1.2  # right skew
    assert amounts.quantile(0.999) > 8 * amounts.median()


def test_deterministic_for_a_seed():
    a = fraud_data.generate(5_000, seed=42)
    b = fraud_data.generate(5_000, seed=42)
    c = fraud_data.generate(5_000, seed=43)
    pd.testing.assert_frame_equal(a.transactions, b.transactions)
    pd.testing.assert_frame_equal(a.customers, b.customers)
    assert not a.transactions["amount"].equals(c.transactions["amount"])


def test_scales():
    small = fraud_data.generate(2_000, seed=5)
    big = fraud_data.generate(60_000, seed=5)
    assert len(big.transactions) == 60_000
    assert len(big.customers) > len(small.customers)


def _psi(expected: pd.Series, actual: pd.Series) -> float:
    cats = sorted(set(expected) | set(actual))
    e = expected.value_counts(normalize=True).reindex(cats, fill_value=0).to_numpy() + 1e-6
    a = actual.value_counts(normalize=True).reindex(cats, fill_value=0).to_numpy() + 1e-6
    return float(np.sum((a - e) * np.log(a / e)))


def test_drift_is_present(data):
    ref, cur = data.reference(), data.drifted()
    assert len(ref) > len(cur) > 0
    assert ks_2samp(ref["amount"], cur["amount"]).pvalue < 1e-6
    assert _psi(ref["category"], cur["category"]) > 0.1
    # Within the reference period itself there is no such shift.
    half = len(ref) // 2
    first, second = ref.iloc[:half], ref.iloc[half:]
    assert _psi(first["category"], second["category"]) < 0.02
    assert ks_2samp(first["amount"], second["amount"]).pvalue > 1e-3


def test_patterns_are_learnable(data):
    feats = fraud_data.history_features(data.reference())
    feats["risky"] = feats["category"].isin(fraud_data.RISKY).astype(int)
    feats["night"] = (feats["hour"] < 6).astype(int)
    feats["log_ratio"] = np.log(feats["amount_ratio"])
    cols = ["n_prev_1h", "n_prev_24h", "log_ratio", "category_share", "night", "risky"]
    split = int(len(feats) * 0.7)
    train, test = feats.iloc[:split], feats.iloc[split:]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(train[cols], train["is_fraud"])
    score = model.predict_proba(test[cols])[:, 1]
    assert roc_auc_score(test["is_fraud"], score) > 0.9
    # Average precision of chance is the fraud rate; the model is many times better.
    assert average_precision_score(test["is_fraud"], score) > 20 * test["is_fraud"].mean()
    # The raw amount alone, the course's baseline, learns far less.
    raw = LogisticRegression().fit(train[["amount"]], train["is_fraud"])
    raw_ap = average_precision_score(test["is_fraud"], raw.predict_proba(test[["amount"]])[:, 1])
    assert raw_ap < average_precision_score(test["is_fraud"], score) / 3


def test_history_features_match_a_loop():
    tx = fraud_data.generate(2_000, seed=9).transactions
    feats = fraud_data.history_features(tx).set_index("transaction_id")
    for tid in tx.sample(40, random_state=0)["transaction_id"]:
        row = tx.set_index("transaction_id").loc[tid]
        past = tx[(tx["customer_id"] == row["customer_id"]) & (tx["transaction_id"] < tid)]
        window = past[past["ts"] >= row["ts"] - pd.Timedelta(hours=1)]
        assert feats.loc[tid, "n_prev_1h"] == len(window)
        want = row["amount"] / past["amount"].mean() if len(past) else 1.0
        assert feats.loc[tid, "amount_ratio"] == pytest.approx(want)
        share = (past["category"] == row["category"]).mean() if len(past) else 0.0
        assert feats.loc[tid, "category_share"] == pytest.approx(share)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"n_transactions": 10}, ValueError),
        ({"n_transactions": 5000.0}, TypeError),
        ({"n_transactions": True}, TypeError),
        ({"fraud_rate": 0.5}, ValueError),
        ({"fraud_rate": float("nan")}, ValueError),
        ({"months": 3, "drift_start_month": 3}, ValueError),
    ],
)
def test_bad_parameters(kwargs, error):
    params: dict[str, Any] = {"n_transactions": 5_000, **kwargs}
    with pytest.raises(error, match=next(iter(kwargs))):
        fraud_data.generate(**params)


def test_history_features_names_missing_columns():
    with pytest.raises(ValueError, match="category"):
        fraud_data.history_features(pd.DataFrame({"customer_id": [1], "ts": [0], "amount": [1]}))


def test_write_volume_roundtrip(data, tmp_path):
    paths = fraud_data.write_volume(data, tmp_path / "vol")
    back = pd.read_parquet(paths["transactions"])
    pd.testing.assert_frame_equal(back, data.transactions)


def test_precision_at_recall_matches_sklearn_curve():
    from sklearn.metrics import precision_recall_curve  # noqa: PLC0415

    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.05).astype(int)
    score = np.round(y * 0.8 + rng.random(3000), 2)  # rounding makes ties
    for recall in (0.5, 0.8, 0.95, 1.0):
        precision, rec, _ = precision_recall_curve(y, score)
        want = precision[rec >= recall][-1]  # highest threshold with enough recall
        assert fraud_data.precision_at_recall(y, score, recall) == pytest.approx(want)


def test_precision_at_recall_edges():
    assert fraud_data.precision_at_recall([1, 0, 1], [0.9, 0.5, 0.1], 1.0) == pytest.approx(2 / 3)
    assert fraud_data.precision_at_recall([1, 0], [0.5, 0.5], 0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no positive"):
        fraud_data.precision_at_recall([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        fraud_data.precision_at_recall([1, 0], [float("nan"), 0.2])
    with pytest.raises(ValueError, match="one length"):
        fraud_data.precision_at_recall([1, 0], [0.2])
    with pytest.raises(ValueError, match="recall"):
        fraud_data.precision_at_recall([1, 0], [0.2, 0.1], 0.0)


def test_model_features_columns():
    feats = fraud_data.model_features(fraud_data.generate(2_000, seed=1).transactions)
    assert set(fraud_data.FEATURES) <= set(feats.columns)
    assert feats[list(fraud_data.FEATURES)].notna().all().all()
    assert set(feats["night"]) <= {0, 1}
