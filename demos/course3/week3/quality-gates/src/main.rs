//! Course 3 week 3, quality gates: before a champion is trusted with traffic, measure
//! it and the data it will see, and compare each value with a threshold. First a
//! deliberately too-strict configuration, which must be reported as failing, then the
//! production configuration, whose real outcome is the exit status.

use std::process::ExitCode;
use std::time::Instant;

use aprender::metrics::roc_auc_score;
use course3_kit::data::generate;
use inference_server::{Server, dataframe_split, invoke, quantile};
use model_training::{Error, SEED, ensure_champion, positive, workdir};
use quality_gates::{Gate, Measured, Thresholds, evaluate, null_rate};

fn measure() -> Result<Measured, Error> {
    let uri = ensure_champion(&workdir())?;
    let server = Server::start(&uri)?;
    // A labelled batch the model never saw (the next period's sample).
    let batch = generate(5_000, SEED + 2, 0.0);
    let p = positive(&server.model.predict_proba(&batch.x, batch.rows)?);
    let roc_auc = roc_auc_score(&batch.y, &p)?;
    let ep = server.endpoint();
    let mut ms = Vec::with_capacity(300);
    for i in 0..300 {
        let t = Instant::now();
        invoke(&ep, &dataframe_split(batch.row(i)))?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    server.stop()?;
    ms.sort_by(f64::total_cmp);
    println!(
        "measured on {} fresh rows and 300 HTTP requests to {uri}",
        batch.rows
    );
    Ok(Measured {
        roc_auc,
        null_rate: null_rate(&batch.x),
        amounts: batch.column(0),
        p99_ms: quantile(&ms, 0.99),
    })
}

fn report(title: &str, gates: &[Gate]) -> bool {
    println!("{title}");
    for g in gates {
        println!("  {g}");
    }
    let ok = gates.iter().all(Gate::passed);
    let failed = gates.iter().filter(|g| !g.passed()).count();
    println!(
        "  => {}",
        if ok {
            "PASS: promote".to_owned()
        } else {
            format!("BLOCKED: {failed} gate(s) failed")
        }
    );
    ok
}

fn run() -> Result<bool, Error> {
    let m = measure()?;
    // Too strict on purpose: a near-perfect AUC, no amount above 500, sub-microsecond p99.
    let strict = Thresholds {
        min_roc_auc: 0.999,
        max_null_rate: 0.0,
        max_out_of_range_rate: 0.0,
        max_amount: 500.0,
        max_p99_ms: 0.001,
    };
    let production = Thresholds {
        min_roc_auc: 0.90,
        max_null_rate: 0.01,
        max_out_of_range_rate: 0.001,
        max_amount: 100_000.0,
        max_p99_ms: 250.0,
    };
    let strict_gates = evaluate(&m, &strict);
    if report("too-strict configuration:", &strict_gates) {
        return Err("the too-strict configuration passed: its gates measure nothing".into());
    }
    let failed: Vec<&str> = strict_gates
        .iter()
        .filter(|g| !g.passed())
        .map(|g| g.name)
        .collect();
    println!("  (failing as intended: {failed:?})");
    Ok(report(
        "production configuration:",
        &evaluate(&m, &production),
    ))
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("quality-gates: the production gates failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("quality-gates: {e}");
            ExitCode::from(2)
        }
    }
}
