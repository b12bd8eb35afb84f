//! Course 3 week 3 capstone: batuta runs a Databricks Jobs 2.1 definition locally whose
//! tasks (`shell_task`, batuta's extension: a Rust step cannot be a spark_python_task)
//! are this program's own subcommands: load -> train (and register) -> serve -> monitor.
//! Task values cross the process boundary as batuta passes them (`{{tasks.load.values.
//! data_hash}}`); the run succeeds only if every step's own checks hold.

use std::process::ExitCode;

use batuta::{Job, Locate, ResultState, Settings};
use course3_kit::data::generate;
use inference_server::{Server, dataframe_split, invoke, local_predictions};
use model_training::{Error, ROWS, SEED, train_and_register, workdir};
use serde_json::json;

/// Write this task's values where batuta reads them.
fn set_task_values(values: &serde_json::Value) -> Result<(), Error> {
    let dir = std::env::var("COURSEKIT_TASK_VALUES_DIR")?;
    let key = std::env::var("COURSEKIT_TASK_KEY")?;
    std::fs::write(
        std::path::Path::new(&dir).join(format!("{key}.json")),
        values.to_string(),
    )?;
    Ok(())
}

/// Population stability index of `actual` against `expected` over expected's deciles.
fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    let mut sorted = expected.to_vec();
    sorted.sort_by(f64::total_cmp);
    let edges: Vec<f64> = (1..10).map(|i| sorted[i * sorted.len() / 10]).collect();
    let share = |v: &[f64]| {
        let mut c = [0.0f64; 10];
        for &x in v {
            c[edges.partition_point(|&e| e <= x)] += 1.0;
        }
        c.map(|n| (n / v.len() as f64).max(1e-4))
    };
    let (e, a) = (share(expected), share(actual));
    e.iter().zip(&a).map(|(e, a)| (a - e) * (a / e).ln()).sum()
}

fn step(name: &str, arg: Option<&str>) -> Result<(), Error> {
    let dir = workdir().join("capstone");
    std::fs::create_dir_all(&dir)?;
    match name {
        "load" => {
            let data = generate(ROWS, SEED, 0.0);
            std::fs::write(dir.join("fraud.csv"), data.to_csv())?;
            println!(
                "load: {} rows, {:.2} % fraud, {}",
                data.rows,
                100.0 * data.fraud_rate(),
                data.content_hash()
            );
            set_task_values(&json!({"data_hash": data.content_hash(), "rows": data.rows}))
        }
        "train" => {
            let r = train_and_register(&dir)?;
            let expected = arg.ok_or("train needs the load task's data hash")?;
            if r.card["data_hash"] != expected {
                return Err(format!(
                    "trained on {} but load produced {expected}",
                    r.card["data_hash"]
                )
                .into());
            }
            println!(
                "train: v{} roc_auc {:.4} (baseline {:.4}) registered as champion",
                r.version, r.trained.model.roc_auc, r.trained.baseline.roc_auc
            );
            if r.trained.model.roc_auc < r.trained.baseline.roc_auc + 0.1 {
                return Err("the forest does not beat the baseline".into());
            }
            set_task_values(&json!({"version": r.version, "roc_auc": r.trained.model.roc_auc}))
        }
        "serve" => {
            let server = Server::start(&model_training::champion_uri(&dir))?;
            let rows = generate(1_000, SEED + 3, 0.0);
            let remote = invoke(&server.endpoint(), &dataframe_split(&rows.x))?;
            let ok = remote == local_predictions(&server.model, &rows.x)?;
            server.stop()?;
            println!(
                "serve: {} rows over HTTP, answers equal in-process: {ok}",
                rows.rows
            );
            if ok {
                Ok(())
            } else {
                Err("served answers differ".into())
            }
        }
        "monitor" => {
            let reference = generate(ROWS, SEED, 0.0).column(0);
            let same = psi(&reference, &generate(5_000, SEED + 4, 0.0).column(0));
            let drifted = psi(&reference, &generate(5_000, SEED + 5, 0.7).column(0));
            println!(
                "monitor: amount PSI same-period {same:.4}, drifted-period {drifted:.4} (alert above 0.2)"
            );
            if same < 0.1 && drifted > 0.2 {
                Ok(())
            } else {
                Err("drift monitor did not separate the periods".into())
            }
        }
        other => Err(format!("unknown step {other:?}: load, train, serve, monitor").into()),
    }
}

fn orchestrate() -> Result<bool, Error> {
    let exe = std::env::current_exe()?;
    let exe = exe.display().to_string().replace('\'', "'\\''");
    let task = |key: &str, deps: &[&str], cmd: String| {
        json!({"task_key": key, "depends_on": deps.iter().map(|d| json!({"task_key": d})).collect::<Vec<_>>(),
               "shell_task": {"command": cmd}, "max_retries": 0, "timeout_seconds": 600})
    };
    let job = json!({
        "name": "course3-capstone-rust",
        "tasks": [
            task("load", &[], format!("'{exe}' load")),
            task("train", &["load"], format!("'{exe}' train '{{{{tasks.load.values.data_hash}}}}'")),
            task("serve", &["train"], format!("'{exe}' serve")),
            task("monitor", &["train"], format!("'{exe}' monitor")),
        ],
    });
    let dir = workdir().join("capstone");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("capstone.job.json"),
        serde_json::to_string_pretty(&job)?,
    )?;
    let parsed = Job::from_value(
        job,
        &Locate {
            job_dir: dir.clone(),
            repo_root: None,
        },
    )
    .map_err(|e| e.to_string())?;
    let run_dir = dir.join(format!("run-{}", batuta::runner::now_ms()));
    let run = batuta::run(&parsed, &Settings::new(run_dir.clone()), None)?;
    batuta::record::write(&run, &run_dir.join("record.json"))?;
    println!("{}", batuta::record::summary(&run));
    for key in ["load", "train", "serve", "monitor"] {
        let log = run_dir.join("logs").join(format!("{key}.attempt1.log"));
        print!("{}", std::fs::read_to_string(&log).unwrap_or_default());
    }
    println!(
        "job file {} ; record {}",
        dir.join("capstone.job.json").display(),
        run_dir.join("record.json").display()
    );
    Ok(run.result == ResultState::Success)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first() {
        Some(s) => step(s, args.get(1).map(String::as_str)).map(|()| true),
        None => orchestrate(),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("capstone: the job did not succeed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("capstone: {e}");
            ExitCode::FAILURE
        }
    }
}
