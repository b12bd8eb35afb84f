//! Course 3 week 1, experiment tracking: the Rust MLflow client against a real
//! `mlflow server`. With `MLFLOW_TRACKING_URI` set the demo uses that server; unset, it
//! starts `mlflow server` from PATH on a free loopback port with a fresh SQLite store,
//! and stops it (its whole process group) at the end. Three logistic-regression runs
//! (aprender, one per C) log params, a learning curve and tags in batches; the demo
//! then reads everything back (get, history, search with filter and order) and exits
//! non-zero unless the server returned exactly what was logged.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use aprender::Matrix;
use aprender::logistic::LogisticRegression;
use aprender::metrics::roc_auc_score;
use aprender::preprocessing::{StandardScaler, TestSize, train_test_split};
use course3_kit::data::{FraudSet, generate};
use course3_kit::http::Endpoint;
use experiment_tracking::{Client, Error as MlflowError, Metric, run_value};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A `mlflow server` this demo started; stopped with its process group on drop.
struct MlflowServer {
    child: Child,
    url: String,
}

impl MlflowServer {
    fn start() -> Result<MlflowServer, Error> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir: PathBuf =
            std::env::temp_dir().join(format!("course3-mlflow-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("artifacts"))?;
        let log = std::fs::File::create(dir.join("server.log"))?;
        let mut cmd = Command::new("mlflow");
        cmd.args([
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--workers",
            "1",
        ])
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
        .arg("--default-artifact-root")
        .arg(dir.join("artifacts"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().map_err(|e| {
            format!("cannot start `mlflow server` ({e}): put mlflow (pyproject's pin) on PATH or set MLFLOW_TRACKING_URI")
        })?;
        let mut server = MlflowServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let ep = Endpoint::parse(&server.url)?;
        let t0 = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                return Err(format!(
                    "mlflow server exited with {status}; see {}",
                    dir.join("server.log").display()
                )
                .into());
            }
            if ep.get("/health").is_ok_and(|r| r.status == 200) {
                println!(
                    "started mlflow server on {} in {:.1} s (store {})",
                    server.url,
                    t0.elapsed().as_secs_f64(),
                    dir.display()
                );
                return Ok(server);
            }
            if t0.elapsed() > Duration::from_secs(180) {
                server.stop();
                return Err("mlflow server did not answer /health within 180 s".into());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn stop(&mut self) {
        // The server forks its workers into the group it leads: signal the whole group.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn check(what: &str, ok: bool) -> Result<(), Error> {
    println!("  [{}] {what}", if ok { "ok" } else { "FAILED" });
    if ok {
        Ok(())
    } else {
        Err(format!("claim failed: {what}").into())
    }
}

/// Holdout ROC AUC of a C-regularised logistic regression trained on the first `n` rows.
fn fit(train: &FraudSet, test: &FraudSet, c: f64, n: usize) -> Result<f64, Error> {
    let part = train.take(&(0..n).collect::<Vec<_>>());
    let x = Matrix::new(&part.x, n, FraudSet::COLS)?;
    let scaler = StandardScaler::fit(&x)?;
    let xs = scaler.transform(&x)?;
    let model = LogisticRegression {
        c,
        ..LogisticRegression::default()
    }
    .fit(&Matrix::new(&xs, n, FraudSet::COLS)?, &part.y)?;
    let xt = scaler.transform(&Matrix::new(&test.x, test.rows, FraudSet::COLS)?)?;
    let p: Vec<f64> = model
        .predict_proba(&Matrix::new(&xt, test.rows, FraudSet::COLS)?)?
        .chunks_exact(2)
        .map(|r| r[1])
        .collect();
    Ok(roc_auc_score(&test.y, &p)?)
}

fn run() -> Result<(), Error> {
    let (_server, url) = match std::env::var("MLFLOW_TRACKING_URI") {
        Ok(u) if !u.is_empty() => {
            println!("using MLFLOW_TRACKING_URI={u}");
            (None, u)
        }
        _ => {
            let s = MlflowServer::start()?;
            let u = s.url.clone();
            (Some(s), u)
        }
    };
    let client = Client::new(&url)?;
    let name = format!(
        "/Shared/course3-fraud-rust-{}",
        experiment_tracking::now_ms()
    );
    let exp = client.set_experiment(&name)?;
    let got = client.get_experiment(&exp)?;
    println!("experiment {name:?} id {exp}");
    check(
        "experiments/get returns the created experiment",
        got.get("name").and_then(|v| v.as_str()) == Some(name.as_str()),
    )?;
    check(
        "set_experiment on an existing name returns the same id",
        client.set_experiment(&name)? == exp,
    )?;

    let data = generate(8_000, 7, 0.0);
    let (tr, te) = train_test_split(data.rows, TestSize::Fraction(0.25), 7, Some(&data.y))?;
    let (train, test) = (data.take(&tr), data.take(&te));
    let sizes = [1_500, 3_000, train.rows];
    let team = "équipe fraude 🛡";
    let mut logged = Vec::new();
    for c in [0.001, 0.01, 1.0] {
        let run_id = client.create_run(&exp, &format!("logreg-C{c}"), &[("team", team)])?;
        let mut curve = Vec::new();
        for (step, &n) in sizes.iter().enumerate() {
            curve.push(Metric {
                key: "roc_auc".into(),
                value: fit(&train, &test, c, n)?,
                step: step as i64,
            });
        }
        let params = [
            ("C", c.to_string()),
            ("model", "LogisticRegression".into()),
            ("train_rows", train.rows.to_string()),
        ];
        client.log_batch(&run_id, &params, &curve, &[("stage", "tuning")])?;
        client.update_run(&run_id, "FINISHED")?;
        let last = curve.last().map_or(f64::NAN, |m| m.value);
        println!(
            "run {run_id} C={c}: holdout ROC AUC by train size {:?}",
            curve
                .iter()
                .map(|m| format!("{:.4}", m.value))
                .collect::<Vec<_>>()
        );
        logged.push((run_id, c, curve, last));
    }

    let runs = client.search_runs(
        &[&exp],
        "tags.stage = 'tuning'",
        &["metrics.roc_auc DESC"],
        10,
    )?;
    let best = logged
        .iter()
        .max_by(|a, b| a.3.total_cmp(&b.3))
        .ok_or("no runs")?;
    let top = runs
        .first()
        .and_then(|r| r.pointer("/info/run_id"))
        .and_then(|v| v.as_str());
    println!(
        "search_runs(order_by roc_auc DESC): {} runs, best {top:?} (C={})",
        runs.len(),
        best.1
    );
    check(
        "search finds all 3 runs and ranks the in-process best first",
        runs.len() == 3 && top == Some(best.0.as_str()),
    )?;
    let one = client.search_runs(&[&exp], "params.C = '1'", &[], 10)?;
    check(
        "filter params.C = '1' selects exactly the C=1 run",
        one.len() == 1
            && one[0].pointer("/info/run_id").and_then(|v| v.as_str())
                == Some(logged[2].0.as_str()),
    )?;
    for (run_id, c, curve, last) in &logged {
        let r = client.get_run(run_id)?;
        let status = r.pointer("/info/status").and_then(|v| v.as_str());
        let metric = run_value(&r, "metrics", "roc_auc").and_then(|v| v.as_f64());
        let history = client.metric_history(run_id, "roc_auc")?;
        // serde_json's default float parser (no `float_roundtrip` feature) may land one
        // ulp off the shortest decimal MLflow writes, so values agree to 1e-15 relative.
        let same = |a: f64, b: f64| (a - b).abs() <= 1e-15 * a.abs().max(b.abs());
        let history_ok = history.len() == curve.len()
            && history
                .iter()
                .zip(curve)
                .all(|(h, l)| h.key == l.key && h.step == l.step && same(h.value, l.value));
        let latest_ok = metric.is_some_and(|m| same(m, *last));
        if !(history_ok && latest_ok) {
            println!("    logged {curve:?}\n    server {history:?} latest {metric:?}");
        }
        check(
            &format!("run C={c}: status FINISHED, param C={c}, unicode tag read back"),
            status == Some("FINISHED")
                && run_value(&r, "params", "C").and_then(|v| v.as_str())
                    == Some(c.to_string().as_str())
                && run_value(&r, "tags", "team").and_then(|v| v.as_str()) == Some(team),
        )?;
        check(
            &format!(
                "run C={c}: latest roc_auc {metric:?} and its {}-step history equal what was logged",
                history.len()
            ),
            history_ok && latest_ok,
        )?;
    }
    let missing = client.get_experiment("987654321");
    println!(
        "experiments/get of an unknown id: {}",
        missing
            .as_ref()
            .map_or_else(ToString::to_string, ToString::to_string)
    );
    check(
        "an unknown experiment is MLflow's RESOURCE_DOES_NOT_EXIST",
        matches!(&missing, Err(MlflowError::Api { code, .. }) if code == "RESOURCE_DOES_NOT_EXIST"),
    )?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("experiment-tracking: {e}");
            ExitCode::FAILURE
        }
    }
}
