//! Course 3 week 2, model training: aprender fits a random forest on the seeded fraud
//! set and must beat the amount-only logistic baseline on the holdout; the forest is
//! saved in realizar's tabular format, pacha registers it (SHA-256 content address,
//! Ed25519 signature, model card with metrics and data hash) and promotes it to
//! `champion`. Exits non-zero if any claim fails.

use std::process::ExitCode;
use std::time::Instant;

use model_training::{Error, MODEL_NAME, positive, train_and_register, workdir};
use realizar::tabular::TabularModel;

fn check(what: &str, ok: bool) -> Result<(), Error> {
    println!("  [{}] {what}", if ok { "ok" } else { "FAILED" });
    if ok {
        Ok(())
    } else {
        Err(format!("claim failed: {what}").into())
    }
}

fn run() -> Result<(), Error> {
    let dir = workdir();
    let start = Instant::now();
    let r = train_and_register(&dir)?;
    let t = &r.trained;
    println!(
        "data: {} rows, {:.2} % fraud, {} ({} train / {} holdout, stratified)",
        t.data.rows,
        100.0 * t.data.fraud_rate(),
        t.data.content_hash(),
        t.train.rows,
        t.test.rows
    );
    println!(
        "trained and registered in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    println!("holdout        ROC AUC  precision  recall     F1  log loss");
    for (name, s) in [
        ("baseline (amount, logistic)", &t.baseline),
        ("random forest", &t.model),
    ] {
        println!(
            "{name:<28} {:.4}     {:.4}  {:.4} {:.4}    {:.4}",
            s.roc_auc, s.precision, s.recall, s.f1, s.log_loss
        );
    }

    println!("claims:");
    check(
        &format!(
            "the forest beats the baseline by >= 0.10 ROC AUC ({:.4} vs {:.4})",
            t.model.roc_auc, t.baseline.roc_auc
        ),
        t.model.roc_auc >= t.baseline.roc_auc + 0.10,
    )?;
    check(
        &format!(
            "the forest's log loss is below the baseline's ({:.4} < {:.4})",
            t.model.log_loss, t.baseline.log_loss
        ),
        t.model.log_loss < t.baseline.log_loss,
    )?;

    // The registered bytes, loaded back through pacha's verifying load, predict what
    // aprender predicted in-process.
    let registry = pacha::Registry::open(&dir.join("registry"))?;
    let loaded = registry.load(&format!("{MODEL_NAME}@champion"))?;
    check(
        &format!(
            "champion is version {} (was {:?})",
            r.version, r.previous_champion
        ),
        loaded.manifest.version == r.version,
    )?;
    check(
        "the registry stored exactly the saved bytes",
        loaded.bytes == t.artifact,
    )?;
    let served = TabularModel::from_bytes(&loaded.bytes)?;
    let p = positive(&served.predict_proba(&t.test.x, t.test.rows)?);
    let max_diff = p
        .iter()
        .zip(&t.test_scores)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    check(
        &format!(
            "realizar's P(fraud) from the registered file equals aprender's on {} rows (max |diff| {max_diff:.1e})",
            t.test.rows
        ),
        max_diff <= 1e-12,
    )?;
    let report = registry.verify()?;
    check(
        &format!(
            "pacha verify: {} versions ok, no problems",
            report.versions_ok
        ),
        report.problems.is_empty(),
    )?;

    println!(
        "registered {MODEL_NAME} v{} sha256:{} ({} bytes), signed by {}",
        r.version, loaded.manifest.sha256, loaded.manifest.size, loaded.manifest.signed_by
    );
    println!("registry: {}", dir.join("registry").display());
    println!("model card:\n{}", serde_json::to_string_pretty(&r.card)?);
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("model-training: {e}");
            ExitCode::FAILURE
        }
    }
}
