"""Card-fraud transactions, generated: the one data set of Course 3 (MLOps).

Every Course 3 lesson, lab and the capstone train, serve and monitor models on this data,
so it has the structure a real card-fraud feed has and a model can learn from:

- **customers** with a home region, a typical spend level (log-normal) and a daytime
  shopping habit (a preferred hour);
- **merchants**, each in one of :data:`CATEGORIES`;
- **transactions** over several months: each customer shops mostly at merchants of
  two or three favourite categories, at hours near their habit, with amounts drawn around
  their own spend level (log-normal with a Pareto tail: a few very large purchases);
- **fraud**, about :data:`DEFAULT_FRAUD_RATE` of the rows, comes in bursts on a stolen card:
  several transactions minutes apart (*velocity*), mostly in categories the customer does
  not use (electronics, jewelry, gaming, travel), often at night, with amounts several
  times the customer's usual spend. Each signal is present only with some probability and
  genuine customers sometimes do the same things, so the patterns are learnable but no
  single rule separates the classes;
- a **drifted period**: from ``drift_start_month`` on, prices are inflated, online and
  night-time shopping grow, and fraudsters move to smaller amounts in online categories.
  Monitoring lessons detect this shift; a model trained before it degrades after it.

The generator is pure NumPy and pandas, deterministic for a seed (same seed, same rows, on
any machine), and small by default so CI stays fast; ``n_transactions`` scales it.

Where it lives and why: notebooks in a Databricks Git folder can import plain ``.py`` files
of the repository once their folder is on ``sys.path``, but not ``src/coursekit`` unless the
project is installed on the cluster. This file therefore has no project imports, and
notebooks put its folder on ``sys.path`` (their working directory is their own folder,
on Databricks and locally) and import it::

    here = Path.cwd()
    root = next(p for p in (here, *here.parents) if (p / "data" / "fraud_data.py").is_file())
    sys.path.insert(0, str(root / "data"))
    import fraud_data

:func:`write_tables` saves the three frames as Delta tables (Spark) and :func:`write_volume`
as Parquet files under a path such as a Unity Catalog Volume (``/Volumes/cat/schema/vol``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CATEGORIES = (
    "grocery",
    "restaurant",
    "fuel",
    "pharmacy",
    "clothing",
    "home",
    "online_retail",
    "electronics",
    "jewelry",
    "gaming",
    "travel",
)
# Categories fraudsters prefer: resellable goods and things bought online.
RISKY = ("electronics", "jewelry", "gaming", "travel", "online_retail")
# Everyday categories genuine customers pick their favourites from.
EVERYDAY = ("grocery", "restaurant", "fuel", "pharmacy", "clothing", "home", "online_retail")
REGIONS = ("north", "south", "east", "west")
DEFAULT_FRAUD_RATE = 0.01
# The columns of the transactions frame, in order.
TRANSACTION_COLUMNS = (
    "transaction_id",
    "customer_id",
    "merchant_id",
    "category",
    "ts",
    "amount",
    "is_fraud",
)


@dataclass(frozen=True)
class FraudData:
    """The generated data: three frames and the instant the drifted period starts."""

    customers: pd.DataFrame
    merchants: pd.DataFrame
    transactions: pd.DataFrame
    drift_start: datetime
    seed: int

    def reference(self) -> pd.DataFrame:
        """Transactions before the drift (the training period)."""
        return self.transactions[self.transactions["ts"] < self.drift_start]

    def drifted(self) -> pd.DataFrame:
        """Transactions from the drift on (the monitored period)."""
        return self.transactions[self.transactions["ts"] >= self.drift_start]


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def generate(
    n_transactions: int = 30_000,
    *,
    n_customers: int | None = None,
    n_merchants: int | None = None,
    months: int = 6,
    drift_start_month: int | None = None,
    fraud_rate: float = DEFAULT_FRAUD_RATE,
    start: str = "2025-01-01",
    seed: int = 7,
) -> FraudData:
    """Generate the data set.

    ``n_transactions`` is approximate only in that fraud comes in whole bursts; the
    result has exactly ``n_transactions`` rows. Customers and merchants default to
    one per 30 and one per 150 transactions. The drifted period starts at the
    beginning of month ``drift_start_month`` (0-based; default: the last third).
    """
    n = _check_int("n_transactions", n_transactions, 1_000)
    months = _check_int("months", months, 2)
    n_cust = _check_int("n_customers", n_customers or max(50, n // 30), 10)
    n_merch = _check_int("n_merchants", n_merchants or max(len(CATEGORIES) * 3, n // 150), 11)
    drift_month = _check_int(
        "drift_start_month", drift_start_month or months - max(1, months // 3), 1
    )
    if drift_month >= months:
        raise ValueError(f"drift_start_month must be below months={months}, got {drift_month}")
    if not isinstance(fraud_rate, (int, float)) or not 0.001 <= fraud_rate <= 0.2:
        raise ValueError(f"fraud_rate must be a number in [0.001, 0.2], got {fraud_rate!r}")
    try:
        t0 = datetime.fromisoformat(start)
    except (TypeError, ValueError):
        raise ValueError(f"start must be an ISO date such as '2025-01-01', got {start!r}") from None
    rng = np.random.default_rng(seed)
    drift_start = _add_months(t0, drift_month)
    span = (_add_months(t0, months) - t0).total_seconds()
    drift_at = (drift_start - t0).total_seconds()
    people = _customers(rng, n_cust, t0)
    merchants, by_cat = _merchants(rng, n_merch)

    # Fraud bursts: 2-6 transactions on one card, minutes apart.
    n_fraud_target = max(10, round(n * fraud_rate))
    sizes: list[int] = []
    while sum(sizes) < n_fraud_target:
        sizes.append(int(rng.integers(2, 7)))
    n_legit = n - sum(sizes)
    if n_legit <= 0:
        raise ValueError(f"n_transactions={n} is too small for fraud_rate={fraud_rate}")
    legit = _genuine(rng, people, n_legit, span, drift_at)
    fraud = [_burst(rng, people, k, span, drift_at) for k in sizes]
    tx = pd.concat([legit, *fraud], ignore_index=True)
    tx = tx.sort_values(["t", "customer"], kind="stable").reset_index(drop=True)
    # A merchant of the chosen category, at random.
    pick = rng.random(len(tx))
    merchant = np.empty(len(tx), dtype=np.int64)
    for ci, members in enumerate(by_cat):
        mask = tx["cat"].to_numpy() == ci
        merchant[mask] = members[(pick[mask] * len(members)).astype(int)]
    transactions = pd.DataFrame(
        {
            "transaction_id": np.arange(1, len(tx) + 1, dtype=np.int64),
            "customer_id": (tx["customer"].to_numpy() + 1).astype(np.int64),
            "merchant_id": (merchant + 1).astype(np.int64),
            "category": np.array(CATEGORIES)[tx["cat"].to_numpy()],
            # Whole seconds, microsecond resolution: Spark timestamps and pandas agree.
            "ts": (
                np.datetime64(t0, "us") + np.floor(tx["t"].to_numpy()).astype("timedelta64[s]")
            ).astype("datetime64[us]"),
            "amount": np.round(tx["amount"].to_numpy(), 2).clip(0.5, None),
            "is_fraud": tx["is_fraud"].to_numpy().astype(np.int32),
        }
    )
    return FraudData(people.frame, merchants, transactions, drift_start, seed)


def _add_months(t: datetime, months: int) -> datetime:
    year, month = divmod(t.month - 1 + months, 12)
    return t.replace(year=t.year + year, month=month + 1, day=1)


@dataclass(frozen=True)
class _People:
    frame: pd.DataFrame
    spend_mu: np.ndarray  # log of each customer's typical amount
    habit_hour: np.ndarray
    favourites: np.ndarray  # (customers, categories) shopping probabilities


def _customers(rng: np.random.Generator, n_cust: int, t0: datetime) -> _People:
    """A spend level, a daytime habit and two or three favourite categories each."""
    spend_mu = rng.normal(3.3, 0.55, n_cust)  # typical amount ~27 on average
    habit_hour = rng.normal(14.0, 2.5, n_cust).clip(8, 20)
    n_fav = rng.integers(2, 4, n_cust)
    fav = np.zeros((n_cust, len(CATEGORIES)))
    everyday_idx = np.array([CATEGORIES.index(c) for c in EVERYDAY])
    for i in range(n_cust):
        chosen = rng.choice(everyday_idx, n_fav[i], replace=False)
        fav[i, chosen] = rng.dirichlet(np.ones(n_fav[i])) * 0.9
    fav += 0.1 / len(CATEGORIES)  # anyone may shop anywhere now and then
    fav /= fav.sum(axis=1, keepdims=True)
    signup = np.datetime64(t0, "us") - rng.integers(30, 2000, n_cust).astype("timedelta64[D]")
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(1, n_cust + 1, dtype=np.int64),
            "region": rng.choice(REGIONS, n_cust),
            "signup_date": signup.astype("datetime64[us]"),
            "typical_amount": np.round(np.exp(spend_mu), 2),
        }
    )
    return _People(frame, spend_mu, habit_hour, fav)


def _merchants(rng: np.random.Generator, n_merch: int) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Every category has at least one merchant; the rest are spread at random."""
    merch_cat = np.concatenate(
        [np.arange(len(CATEGORIES)), rng.integers(0, len(CATEGORIES), n_merch - len(CATEGORIES))]
    )
    frame = pd.DataFrame(
        {
            "merchant_id": np.arange(1, n_merch + 1, dtype=np.int64),
            "category": np.array(CATEGORIES)[merch_cat],
            "region": rng.choice(REGIONS, n_merch),
        }
    )
    return frame, [np.flatnonzero(merch_cat == c) for c in range(len(CATEGORIES))]


# Price level of each category (added to the log amount), in CATEGORIES order.
_CATEGORY_PRICE = np.array([0.0, 0.2, 0.3, -0.3, 0.5, 0.6, 0.3, 1.3, 1.6, -0.2, 1.8])
_ONLINE = CATEGORIES.index("online_retail")
_RISKY_IDX = np.array([CATEGORIES.index(c) for c in RISKY])


def _genuine(
    rng: np.random.Generator, people: _People, n: int, span: float, drift_at: float
) -> pd.DataFrame:
    """Genuine purchases; some customers shop far more often than others."""
    activity = rng.gamma(2.0, 1.0, len(people.spend_mu))
    cust = rng.choice(len(activity), n, p=activity / activity.sum())
    t = rng.uniform(0, span, n)
    drifted = t >= drift_at
    # Category from the customer's favourites; after the drift online shopping grows.
    probs = people.favourites[cust].copy()
    probs[drifted, _ONLINE] += 0.35
    probs /= probs.sum(axis=1, keepdims=True)
    cat = (probs.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    # Hour near the habit; a few genuine night purchases; after the drift, later evenings.
    hour = rng.normal(people.habit_hour[cust] + np.where(drifted, 2.5, 0.0), 3.0)
    hour = np.where(rng.random(n) < 0.03, rng.uniform(0, 6, n), hour) % 24
    # Amount: the customer's level, the category's price level, a Pareto tail; inflation.
    amount = np.exp(people.spend_mu[cust] + _CATEGORY_PRICE[cat] + rng.normal(0, 0.6, n))
    amount *= np.where(rng.random(n) < 0.02, rng.pareto(2.5, n) + 1, 1)
    amount *= np.where(drifted, 1.3, 1.0)
    at = np.floor(t / 86400) * 86400 + hour * 3600 + rng.uniform(0, 3600, n)
    return pd.DataFrame(
        {"customer": cust, "cat": cat, "t": at.clip(0, span - 1), "amount": amount, "is_fraud": 0}
    )


def _burst(
    rng: np.random.Generator, people: _People, k: int, span: float, drift_at: float
) -> pd.DataFrame:
    """``k`` fraudulent transactions on one stolen card."""
    c = int(rng.integers(len(people.spend_mu)))
    t_start = rng.uniform(0, span - 3 * 3600)
    after = t_start >= drift_at
    # Velocity: usually minutes apart; sometimes spread over a day.
    gaps = rng.exponential(4 * 60 if rng.random() < 0.7 else 6 * 3600, k)
    ts = t_start + np.cumsum(gaps)
    if rng.random() < 0.55:  # at night
        ts = np.floor(ts / 86400) * 86400 + rng.uniform(0, 5, k) * 3600
    if after:  # drifted fraud: online retail, smaller amounts
        cats = np.where(rng.random(k) < 0.6, _ONLINE, rng.choice(_RISKY_IDX, k))
        factor = rng.uniform(1.0, 3.0, k)
    else:
        cats = np.where(
            rng.random(k) < 0.75, rng.choice(_RISKY_IDX, k), rng.choice(len(CATEGORIES), k)
        )
        factor = np.where(rng.random(k) < 0.7, rng.uniform(2.0, 8.0, k), rng.uniform(0.5, 2, k))
    amount = np.exp(people.spend_mu[c] + rng.normal(0, 0.4, k)) * factor * (1.3 if after else 1.0)
    return pd.DataFrame(
        {"customer": c, "cat": cats, "t": ts.clip(0, span - 1), "amount": amount, "is_fraud": 1}
    )


def history_features(transactions: pd.DataFrame) -> pd.DataFrame:
    """Per-transaction features from the customer's own past, as a reference.

    For each transaction, using only earlier transactions of the same customer:
    ``n_prev_1h`` (velocity), ``n_prev_24h``, ``amount_ratio`` (amount over the mean of
    the customer's previous amounts; 1.0 for a first purchase), ``category_share`` (the
    share of the customer's previous transactions in this category; 0.0 for none) and
    ``hour``. Lessons build the same features in Spark; this pandas version is what tests
    and checks compare them with.
    """
    missing = [c for c in ("customer_id", "ts", "amount", "category") if c not in transactions]
    if missing:
        raise ValueError(f"transactions lack the columns {missing}")
    df = transactions.sort_values(["customer_id", "ts", "transaction_id"]).copy()
    g = df.groupby("customer_id", sort=False)
    ts_ns = df["ts"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    cust = df["customer_id"].to_numpy()
    n_prev_1h = np.zeros(len(df), dtype=np.int64)
    n_prev_24h = np.zeros(len(df), dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(cust[1:] != cust[:-1]) + 1, len(df)]
    for a, b in itertools.pairwise(starts):
        seg = ts_ns[a:b]
        for window, out in ((3600, n_prev_1h), (86400, n_prev_24h)):
            first = np.searchsorted(seg, seg - window * 10**9, side="left")
            out[a:b] = np.arange(b - a) - first
    df["n_prev_1h"] = n_prev_1h
    df["n_prev_24h"] = n_prev_24h
    prev_sum = g["amount"].cumsum() - df["amount"]
    prev_n = g.cumcount()
    df["amount_ratio"] = np.where(prev_n > 0, df["amount"] / (prev_sum / prev_n.clip(lower=1)), 1.0)
    same_cat = df.groupby(["customer_id", "category"], sort=False).cumcount()
    df["category_share"] = np.where(prev_n > 0, same_cat / prev_n.clip(lower=1), 0.0)
    df["hour"] = df["ts"].dt.hour
    return df.sort_values("transaction_id").reset_index(drop=True)


def write_tables(data: FraudData, spark: Any, prefix: str) -> dict[str, str]:
    """Save customers, merchants and transactions as Delta tables ``{prefix}_<name>``.

    ``prefix`` is a qualified name start such as ``main.course3.fraud`` (tables
    ``main.course3.fraud_transactions`` ...). Existing tables are overwritten.
    """
    names = {}
    for part in ("customers", "merchants", "transactions"):
        name = f"{prefix}_{part}"
        frame = getattr(data, part)
        spark.createDataFrame(frame).write.format("delta").mode("overwrite").option(
            "overwriteSchema", "true"
        ).saveAsTable(name)
        names[part] = name
    return names


def write_volume(data: FraudData, directory: str | Path) -> dict[str, Path]:
    """Save the three frames as Parquet files in ``directory`` (e.g. a UC Volume path)."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    paths = {}
    for part in ("customers", "merchants", "transactions"):
        path = target / f"{part}.parquet"
        getattr(data, part).to_parquet(path, index=False)
        paths[part] = path
    return paths


# The model inputs every Course 3 lesson uses (see :func:`model_features`).
FEATURES = (
    "amount",
    "n_prev_1h",
    "n_prev_24h",
    "log_amount_ratio",
    "category_share",
    "night",
    "risky",
)


def model_features(transactions: pd.DataFrame) -> pd.DataFrame:
    """:func:`history_features` plus the derived inputs of :data:`FEATURES`.

    ``log_amount_ratio`` (log of amount over the customer's mean so far), ``night``
    (1 before 6 am) and ``risky`` (1 for a category in :data:`RISKY`).
    """
    df = history_features(transactions)
    df["log_amount_ratio"] = np.log(df["amount_ratio"])
    df["night"] = (df["hour"] < 6).astype(np.int32)
    df["risky"] = df["category"].isin(RISKY).astype(np.int32)
    return df


def precision_at_recall(y_true: Any, score: Any, recall: float = 0.8) -> float:
    """Precision at the highest threshold whose recall is at least ``recall``.

    The course's headline metric: "of the alerts we raise while catching ``recall`` of
    all fraud, how many are fraud". Ties in ``score`` are kept together (a threshold
    cannot split them).
    """
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(score, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"y_true and score must be 1-D of one length, got {y.shape} and {s.shape}")
    if not 0 < recall <= 1:
        raise ValueError(f"recall must be in (0, 1], got {recall!r}")
    if np.isnan(s).any():
        raise ValueError("score contains NaN")
    positives = int(y.sum())
    if positives == 0:
        raise ValueError("y_true has no positive (fraud) rows: recall is undefined")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    # Cut only where the score changes: the last index of each run of equal scores.
    last = np.r_[np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), len(s) - 1]
    tp = np.cumsum(y_sorted)[last]
    first = np.searchsorted(tp, np.ceil(recall * positives - 1e-9))
    return float(tp[first] / (last[first] + 1))
