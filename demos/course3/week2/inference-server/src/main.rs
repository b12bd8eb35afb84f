//! Course 3 week 2, inference server: realizar serves the registered champion
//! (`pacha://.../fraud-forest@champion`, trained and registered first if the registry
//! has none) on a loopback port; the demo scores the holdout over HTTP with MLflow's
//! `dataframe_split` payload, checks every answer equals the model's in-process
//! prediction, checks a malformed request gets MLflow's 400 error shape, and measures
//! single-row latency (p50/p99, one connection per request). Exits non-zero if a claim
//! fails.

use std::process::ExitCode;
use std::time::Instant;

use course3_kit::data::{FraudSet, generate};
use inference_server::{Error, Server, dataframe_split, invoke, local_predictions, quantile};
use model_training::{ROWS, SEED, ensure_champion, workdir};
use serde_json::Value;

fn check(what: &str, ok: bool) -> Result<(), Error> {
    println!("  [{}] {what}", if ok { "ok" } else { "FAILED" });
    if ok {
        Ok(())
    } else {
        Err(format!("claim failed: {what}").into())
    }
}

fn run() -> Result<(), Error> {
    let uri = ensure_champion(&workdir())?;
    let server = Server::start(&uri)?;
    println!(
        "realizar serving {} ({}) on http://{}",
        server.name,
        server.model.estimator(),
        server.addr
    );
    let ep = server.endpoint();

    // Fresh rows the model never saw: a later sample of the same process.
    let rows = 2_000;
    let fresh = generate(rows, SEED + 1, 0.0);
    let local = local_predictions(&server.model, &fresh.x)?;
    let mut remote: Vec<Value> = Vec::with_capacity(rows);
    let t0 = Instant::now();
    for chunk in fresh.x.chunks(200 * FraudSet::COLS) {
        remote.extend(invoke(&ep, &dataframe_split(chunk))?);
    }
    let batch_s = t0.elapsed().as_secs_f64();
    println!(
        "scored {rows} rows in batches of 200 in {:.1} ms ({:.0} rows/s)",
        batch_s * 1e3,
        rows as f64 / batch_s
    );
    let flagged = remote.iter().filter(|v| v.as_i64() == Some(1)).count();
    println!(
        "flagged as fraud: {flagged} of {rows} (true fraud in these rows: {})",
        fresh.y.iter().filter(|&&v| v == 1).count()
    );
    check(
        &format!("all {rows} HTTP answers equal the in-process predictions"),
        remote == local,
    )?;

    let bad = ep.post_json(
        "/invocations",
        r#"{"dataframe_split": {"columns": ["amount"], "data": [[1.0]]}}"#,
    )?;
    let shape: Value = serde_json::from_str(&bad.body).unwrap_or(Value::Null);
    println!(
        "a request with 1 of {} columns: {} {}",
        FraudSet::COLS,
        bad.status,
        bad.body
    );
    check(
        "it is refused with 400 and MLflow's {error_code, message}",
        bad.status == 400 && shape.get("error_code").is_some() && shape.get("message").is_some(),
    )?;

    let n = 500;
    let mut ms = Vec::with_capacity(n);
    for i in 0..n {
        let row = fresh.row(i % rows);
        let t = Instant::now();
        let p = invoke(&ep, &dataframe_split(row))?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        if p.len() != 1 || p[0] != local[i % rows] {
            return Err(format!("row {i}: answer {p:?} differs from {:?}", local[i % rows]).into());
        }
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "single-row latency over {n} requests (connect + request + answer, loopback): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        quantile(&ms, 0.5),
        quantile(&ms, 0.99),
        ms[n - 1]
    );
    let metrics = ep.get("/metrics")?;
    println!(
        "server /metrics: {} ({} bytes)",
        metrics.status,
        metrics.body.len()
    );
    server.stop()?;
    println!("trained on {ROWS} rows; served model from {uri}");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("inference-server: {e}");
            ExitCode::FAILURE
        }
    }
}
