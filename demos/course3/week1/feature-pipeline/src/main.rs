//! Course 3, week 1: a feature pipeline without a platform. What a feature table job does
//! on Databricks (read the raw table, compute each transaction's history features,
//! write the feature table), as a program over the Sovereign crates:
//!
//! 1. the course's generator (`data/fraud_data.py`, through `reference.py`) writes the
//!    fraud transactions as Parquet, exactly as a notebook writes them to a Volume;
//! 2. **alimentar** reads them, checking the schema before trusting the file;
//! 3. the features the model learns from are computed per customer in time order:
//!    velocity (earlier transactions in the last hour and day), the amount against the
//!    customer's own mean so far, the share of their history in this category, the hour;
//!    the vector arithmetic (ratios, logs, means) is **trueno**'s;
//! 4. alimentar writes the feature table as Parquet (atomically);
//! 5. checked twice: alimentar reads pandas' reference features (the generator's
//!    `model_features`) and every value must match, then pyarrow reads the Rust-written
//!    file and compares it with the same reference in Python.
//!
//! Only earlier transactions of the same customer enter a row's features: the
//! point-in-time rule that keeps a model from seeing the future.
//!
//! Settings: `FEATURE_PIPELINE_ROWS` (default 20000 transactions), `PYTHON` (default
//! `python` on PATH: it needs numpy, pandas and pyarrow), `COURSE3_DEMO_DIR` (default
//! `course3-sovereign` under the temp directory; files go to its `feature-pipeline/`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;

use alimentar::{Dataset, Options, WriteOptions};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

/// Categories fraudsters prefer (`fraud_data.RISKY`).
const RISKY: [&str; 5] = [
    "electronics",
    "jewelry",
    "gaming",
    "travel",
    "online_retail",
];
const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;

/// The raw transactions, one vector per column, in file order.
#[derive(Debug, Clone, PartialEq)]
struct Transactions {
    id: Vec<i64>,
    customer: Vec<i64>,
    category: Vec<String>,
    /// Microseconds since the epoch (the file's `timestamp[us]`).
    ts: Vec<i64>,
    amount: Vec<f64>,
    is_fraud: Vec<i32>,
}

/// The history features of each transaction, in the input's row order.
#[derive(Debug, Clone, PartialEq)]
struct Features {
    n_prev_1h: Vec<i64>,
    n_prev_24h: Vec<i64>,
    amount_ratio: Vec<f64>,
    log_amount_ratio: Vec<f64>,
    category_share: Vec<f64>,
    hour: Vec<i32>,
    night: Vec<i32>,
    risky: Vec<i32>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The raw table's schema as the generator writes it; anything else is refused.
fn raw_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("transaction_id", DataType::Int64, true),
        Field::new("customer_id", DataType::Int64, true),
        Field::new("category", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("amount", DataType::Float64, true),
        Field::new("is_fraud", DataType::Int32, true),
    ]))
}

fn no_nulls(a: &ArrayRef, name: &str) -> Result<(), String> {
    if a.null_count() > 0 {
        return Err(format!(
            "column {name:?} has {} nulls; every transaction needs one",
            a.null_count()
        ));
    }
    Ok(())
}

fn load(path: &Path) -> Result<Transactions, String> {
    let schema = raw_schema();
    let options = Options {
        columns: Some(schema.fields().iter().map(|f| f.name().clone()).collect()),
        expect_schema: Some(schema),
        ..Options::default()
    };
    let ds = Dataset::open(path, &options).map_err(err)?;
    let col = |name: &str| -> Result<ArrayRef, String> {
        let a = ds.column(name).map_err(err)?;
        no_nulls(&a, name)?;
        Ok(a)
    };
    let category = col("category")?;
    let category = category.as_string::<i32>();
    Ok(Transactions {
        id: col("transaction_id")?
            .as_primitive::<Int64Type>()
            .values()
            .to_vec(),
        customer: col("customer_id")?
            .as_primitive::<Int64Type>()
            .values()
            .to_vec(),
        category: (0..category.len())
            .map(|i| category.value(i).to_owned())
            .collect(),
        ts: col("ts")?
            .as_primitive::<TimestampMicrosecondType>()
            .values()
            .to_vec(),
        // A dense f64 slice straight from Arrow's buffer when the file allows it.
        amount: ds.column_f64("amount").map_err(err)?.into_owned(),
        is_fraud: col("is_fraud")?
            .as_primitive::<Int32Type>()
            .values()
            .to_vec(),
    })
}

/// The features, computed as `fraud_data.history_features` defines them.
///
/// Rows are visited per customer in (ts, transaction_id) order; a row's history is the
/// customer's earlier rows in that order. Windows include their start: an earlier
/// purchase exactly one hour before counts in `n_prev_1h`, as pandas' `searchsorted`
/// (side left) counts it. The first purchase has ratio 1 and category share 0.
fn features(tx: &Transactions) -> Result<Features, String> {
    let n = tx.id.len();
    let fields = [
        tx.customer.len(),
        tx.category.len(),
        tx.ts.len(),
        tx.amount.len(),
    ];
    if fields.iter().any(|&len| len != n) || tx.is_fraud.len() != n {
        return Err("the transaction columns differ in length".into());
    }
    if let Some(i) = tx.amount.iter().position(|a| !(a.is_finite() && *a > 0.0)) {
        return Err(format!(
            "transaction {}: amount {} is not a positive finite number",
            tx.id[i], tx.amount[i]
        ));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (tx.customer[i], tx.ts[i], tx.id[i]));

    let mut n_prev_1h = vec![0i64; n];
    let mut n_prev_24h = vec![0i64; n];
    // The customer's mean amount before each row, and 1.0 where there is no history.
    let mut prev_mean = vec![0.0f64; n];
    let mut category_share = vec![0.0f64; n];
    let mut start = 0;
    while start < n {
        let c = tx.customer[order[start]];
        let end = start + order[start..].partition_point(|&i| tx.customer[i] == c);
        let seg = &order[start..end];
        let (mut lo_1h, mut lo_24h) = (0, 0);
        // pandas' cumsum minus the row's own amount, the same two roundings.
        let mut running = 0.0f64;
        let mut seen = std::collections::HashMap::<&str, usize>::new();
        for (k, &i) in seg.iter().enumerate() {
            let t = tx.ts[i];
            while tx.ts[seg[lo_1h]] < t - HOUR_US {
                lo_1h += 1;
            }
            while tx.ts[seg[lo_24h]] < t - DAY_US {
                lo_24h += 1;
            }
            n_prev_1h[i] = (k - lo_1h) as i64;
            n_prev_24h[i] = (k - lo_24h) as i64;
            running += tx.amount[i];
            let before = running - tx.amount[i];
            prev_mean[i] = if k == 0 {
                tx.amount[i]
            } else {
                before / k as f64
            };
            let same = seen.entry(tx.category[i].as_str()).or_insert(0);
            category_share[i] = if k == 0 { 0.0 } else { *same as f64 / k as f64 };
            *same += 1;
        }
        start = end;
    }
    // The vector part, on trueno: amount over the history mean, then its log.
    let mut amount_ratio = vec![0.0f64; n];
    trueno::div_f64(&tx.amount, &prev_mean, &mut amount_ratio).map_err(|e| format!("{e:?}"))?;
    let mut log_amount_ratio = vec![0.0f64; n];
    trueno::log_f64(&amount_ratio, &mut log_amount_ratio).map_err(|e| format!("{e:?}"))?;
    let hour: Vec<i32> = tx
        .ts
        .iter()
        .map(|t| (t.div_euclid(HOUR_US).rem_euclid(24)) as i32)
        .collect();
    Ok(Features {
        n_prev_1h,
        n_prev_24h,
        amount_ratio,
        log_amount_ratio,
        category_share,
        night: hour.iter().map(|&h| i32::from(h < 6)).collect(),
        risky: tx
            .category
            .iter()
            .map(|c| i32::from(RISKY.contains(&c.as_str())))
            .collect(),
        hour,
    })
}

/// The feature table: ids, label, and the features, sorted by transaction id.
fn feature_table(tx: &Transactions, f: &Features) -> Result<Dataset, String> {
    let mut order: Vec<usize> = (0..tx.id.len()).collect();
    order.sort_by_key(|&i| tx.id[i]);
    let i64s = |v: &[i64]| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(order.iter().map(|&i| v[i])))
    };
    let i32s = |v: &[i32]| -> ArrayRef {
        Arc::new(Int32Array::from_iter_values(order.iter().map(|&i| v[i])))
    };
    let f64s = |v: &[f64]| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(order.iter().map(|&i| v[i])))
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("transaction_id", i64s(&tx.id)),
        ("customer_id", i64s(&tx.customer)),
        ("is_fraud", i32s(&tx.is_fraud)),
        ("n_prev_1h", i64s(&f.n_prev_1h)),
        ("n_prev_24h", i64s(&f.n_prev_24h)),
        ("hour", i32s(&f.hour)),
        ("night", i32s(&f.night)),
        ("risky", i32s(&f.risky)),
        ("amount", f64s(&tx.amount)),
        ("amount_ratio", f64s(&f.amount_ratio)),
        ("log_amount_ratio", f64s(&f.log_amount_ratio)),
        ("category_share", f64s(&f.category_share)),
    ];
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, a)| Field::new(*name, a.data_type().clone(), false))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .map_err(err)?;
    Dataset::from_batches(schema, vec![batch]).map_err(err)
}

/// Every column of `ours` against pandas' reference: integers equal, floats within
/// 1e-12 relative (trueno's log is within a few ulp of libm's, not bit-equal).
fn compare(ours: &Dataset, reference: &Dataset) -> Result<usize, String> {
    if ours.num_rows() != reference.num_rows() {
        return Err(format!(
            "{} feature rows, the reference has {}",
            ours.num_rows(),
            reference.num_rows()
        ));
    }
    let mut checked = 0;
    for name in ours.column_names() {
        let a = ours.column_f64(&name).map_err(err)?;
        let b = reference.column_f64(&name).map_err(err)?;
        let exact = !matches!(
            ours.schema()
                .field_with_name(&name)
                .map_err(err)?
                .data_type(),
            DataType::Float64
        );
        for (r, (x, y)) in a.iter().zip(b.iter()).enumerate() {
            let ok = if exact {
                x == y
            } else {
                (x - y).abs() <= 1e-12 * y.abs().max(1e-300)
            };
            if !ok {
                return Err(format!("column {name:?}, row {r}: ours {x}, pandas {y}"));
            }
            checked += 1;
        }
    }
    Ok(checked)
}

fn demo_dir() -> PathBuf {
    std::env::var_os("COURSE3_DEMO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("course3-sovereign"))
        .join("feature-pipeline")
}

fn python(args: &[&str]) -> Result<(), String> {
    let exe = std::env::var("PYTHON").unwrap_or_else(|_| "python".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference.py");
    let status = Command::new(&exe)
        .arg(&script)
        .args(args)
        .status()
        .map_err(|e| {
            format!("cannot start {exe:?} ({e}): put a python with numpy, pandas and pyarrow on PATH or set PYTHON")
        })?;
    if !status.success() {
        return Err(format!(
            "{} {} failed: {status}",
            script.display(),
            args.join(" ")
        ));
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let rows: usize = match std::env::var("FEATURE_PIPELINE_ROWS") {
        Ok(v) => v.parse().ok().filter(|&n| n >= 1000).ok_or_else(|| {
            format!("FEATURE_PIPELINE_ROWS must be an integer >= 1000, got {v:?}")
        })?,
        Err(_) => 20_000,
    };
    let dir = demo_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir_s = dir.to_string_lossy().into_owned();
    python(&["generate", &dir_s, "--rows", &rows.to_string()])?;

    let started = std::time::Instant::now();
    let tx = load(&dir.join("transactions.parquet"))?;
    let loaded = started.elapsed();
    let f = features(&tx)?;
    let computed = started.elapsed();
    let table = feature_table(&tx, &f)?;
    let out = dir.join("features.parquet");
    table.write(&out, &WriteOptions::default()).map_err(err)?;
    let written = started.elapsed();
    println!(
        "feature-pipeline: {} transactions of {} customers: read {:.1} ms, features {:.1} ms, written {:.1} ms -> {}",
        tx.id.len(),
        {
            let mut c = tx.customer.clone();
            c.sort_unstable();
            c.dedup();
            c.len()
        },
        loaded.as_secs_f64() * 1e3,
        (computed - loaded).as_secs_f64() * 1e3,
        (written - computed).as_secs_f64() * 1e3,
        out.display()
    );

    // Check 1: what alimentar reads back equals pandas' reference, column by column.
    let back = Dataset::open(&out, &Options::default()).map_err(err)?;
    let reference = Dataset::open(
        dir.join("reference.parquet"),
        &Options {
            columns: Some(back.column_names()),
            ..Options::default()
        },
    )
    .map_err(err)?;
    let checked = compare(&back, &reference)?;
    println!("feature-pipeline: {checked} values equal to pandas' fraud_data.model_features");

    // The features carry the signal the course's models learn (the generator's bursts).
    let fraud: Vec<f64> = (0..tx.id.len())
        .filter(|&i| tx.is_fraud[i] == 1)
        .map(|i| f.log_amount_ratio[i])
        .collect();
    let genuine: Vec<f64> = (0..tx.id.len())
        .filter(|&i| tx.is_fraud[i] == 0)
        .map(|i| f.log_amount_ratio[i])
        .collect();
    let (mf, mg) = (
        trueno::mean_f64(&fraud).map_err(|e| format!("{e:?}"))?,
        trueno::mean_f64(&genuine).map_err(|e| format!("{e:?}"))?,
    );
    let rate = |keep: &dyn Fn(usize) -> bool| {
        let idx: Vec<usize> = (0..tx.id.len()).filter(|&i| keep(i)).collect();
        idx.iter().filter(|&&i| tx.is_fraud[i] == 1).count() as f64 / idx.len().max(1) as f64
    };
    let (base, fast) = (rate(&|_| true), rate(&|i| f.n_prev_1h[i] >= 1));
    println!(
        "feature-pipeline: mean log amount ratio {mf:.3} (fraud) vs {mg:.3} (genuine); fraud rate {:.2} % overall, {:.2} % after a purchase in the last hour",
        base * 100.0,
        fast * 100.0
    );
    if !(mf > mg + 0.3 && fast > 3.0 * base) {
        return Err(
            "the features lost the generator's fraud signal (amount ratio, velocity)".into(),
        );
    }

    // Check 2: pyarrow reads what alimentar wrote, and agrees with pandas.
    python(&["check", &dir_s])
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("feature-pipeline: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(rows: &[(i64, i64, &str, i64, f64)]) -> Transactions {
        Transactions {
            id: rows.iter().map(|r| r.0).collect(),
            customer: rows.iter().map(|r| r.1).collect(),
            category: rows.iter().map(|r| r.2.to_owned()).collect(),
            ts: rows.iter().map(|r| r.3).collect(),
            amount: rows.iter().map(|r| r.4).collect(),
            is_fraud: vec![0; rows.len()],
        }
    }

    #[test]
    fn history_features_by_hand() {
        let h = HOUR_US;
        // Customer 1: four purchases, out of order in the file; customer 2: one, at night.
        let t = tx(&[
            (4, 1, "gaming", 3 * h, 40.0),
            (1, 1, "grocery", 0, 10.0),
            (9, 2, "jewelry", 2 * h, 7.0),
            (2, 1, "grocery", h, 20.0),
            (3, 1, "grocery", h + 1, 30.0),
        ]);
        let f = features(&t).unwrap();
        // Row order is the file's. tx 1: first purchase.
        assert_eq!((f.n_prev_1h[1], f.n_prev_24h[1]), (0, 0));
        assert_eq!((f.amount_ratio[1], f.category_share[1]), (1.0, 0.0));
        // tx 2 at exactly one hour after tx 1: the window includes its start.
        assert_eq!(f.n_prev_1h[3], 1);
        assert_eq!(f.amount_ratio[3], 2.0);
        assert_eq!(f.category_share[3], 1.0);
        // tx 3: one microsecond later; tx 1 is now outside the hour.
        assert_eq!((f.n_prev_1h[4], f.n_prev_24h[4]), (1, 2));
        assert_eq!(f.amount_ratio[4], 30.0 / 15.0);
        // tx 4, two hours after tx 3: nothing in its hour, three in its day; the mean of
        // 10, 20, 30 is 20; no gaming before.
        assert_eq!((f.n_prev_1h[0], f.n_prev_24h[0]), (0, 3));
        assert_eq!(f.amount_ratio[0], 2.0);
        assert_eq!(f.category_share[0], 0.0);
        assert!((f.log_amount_ratio[0] - 2f64.ln()).abs() < 1e-15);
        // Customer 2 is independent of customer 1; 02:00 is night; jewelry is risky.
        assert_eq!((f.n_prev_24h[2], f.amount_ratio[2]), (0, 1.0));
        assert_eq!((f.hour[2], f.night[2], f.risky[2]), (2, 1, 1));
        assert_eq!((f.night[0], f.risky[1]), (1, 0));
    }

    #[test]
    fn empty_and_bad_input() {
        let f = features(&tx(&[])).unwrap();
        assert!(f.n_prev_1h.is_empty() && f.log_amount_ratio.is_empty());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = features(&tx(&[(5, 1, "fuel", 0, bad)])).unwrap_err();
            assert!(e.contains("transaction 5"), "{e}");
        }
        // Before 1970 the hour still lies in 0..24.
        let f = features(&tx(&[(1, 1, "fuel", -HOUR_US, 3.0)])).unwrap();
        assert_eq!(f.hour[0], 23);
    }

    #[test]
    fn a_file_of_another_shape_is_refused_with_its_columns() {
        let dir =
            std::env::temp_dir().join(format!("feature-pipeline-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wrong.parquet");
        let schema = Arc::new(Schema::new(vec![Field::new(
            "amount",
            DataType::Float64,
            false,
        )]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Float64Array::from(vec![1.0])) as ArrayRef],
        )
        .unwrap();
        Dataset::from_batches(schema, vec![batch])
            .unwrap()
            .write(&path, &WriteOptions::default())
            .unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.contains("transaction_id"), "{e}");
    }
}
