//! The `batuta` command: `batuta run job.json`, `batuta validate job.json`,
//! `batuta repair record.json`. Exit status: 0 when the run's result is SUCCESS or
//! SUCCESS_WITH_FAILURES (every leaf task succeeded), 1 when FAILED or TIMEDOUT, 130
//! when canceled (Ctrl-C), 3 when `max_concurrent_runs` runs of the job are active, 2
//! for a bad command line, an invalid job definition or an unreadable record.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use batuta::record;
use batuta::runner::{self, Repair, Settings};
use batuta::{Job, ResultState};

fn usage() -> String {
    format!(
        "usage:
  batuta run JOB.json [--param KEY=VALUE]... [--record OUT.json] [options]
  batuta validate JOB.json [--repo-root DIR]
  batuta repair RECORD.json [--task KEY]... [--param KEY=VALUE]... [options]
  batuta --version | --source-hash

options:
  --parallelism N     tasks running at once (default {parallelism})
  --run-dir DIR       logs, task values, executed notebooks (default build/batuta/<job>/<time>)
  --python PATH       interpreter for notebook and Python tasks (default: $BATUTA_PYTHON, else
                      the python beside this command, else python3)
  --repo-root DIR     root for relative GIT-source paths (default: nearest folder with .git)
  --retry-backoff F   multiply the retry interval by F after each retry (default 1: Databricks'
                      constant min_retry_interval_millis)
  --kill-grace S      seconds between SIGTERM and SIGKILL of a task's process tree (default {grace})
  --quiet             no progress lines on stderr

repair re-runs the tasks that did not succeed and every task downstream of them, or the
tasks named by --task and their downstream tasks, and updates RECORD.json in place.",
        parallelism = Settings::DEFAULT_PARALLELISM,
        grace = Settings::DEFAULT_KILL_GRACE.as_secs_f64(),
    )
}

struct Args {
    command: String,
    path: PathBuf,
    params: BTreeMap<String, String>,
    tasks: Vec<String>,
    record: Option<PathBuf>,
    run_dir: Option<PathBuf>,
    python: Option<PathBuf>,
    repo_root: Option<PathBuf>,
    parallelism: Option<usize>,
    retry_backoff: Option<f64>,
    kill_grace: Option<f64>,
    quiet: bool,
}

fn parse(argv: &[String]) -> Result<Args, String> {
    let mut it = argv.iter();
    let command = it.next().ok_or("")?.clone();
    if !matches!(command.as_str(), "run" | "validate" | "repair") {
        return Err(format!("unknown command {command:?}"));
    }
    let mut a = Args {
        command,
        path: PathBuf::new(),
        params: BTreeMap::new(),
        tasks: Vec::new(),
        record: None,
        run_dir: None,
        python: None,
        repo_root: None,
        parallelism: None,
        retry_backoff: None,
        kill_grace: None,
        quiet: false,
    };
    let mut path = None;
    while let Some(arg) = it.next() {
        if arg == "--quiet" {
            a.quiet = true;
            continue;
        }
        if !arg.starts_with("--") {
            if path.replace(PathBuf::from(arg)).is_some() {
                return Err(format!("unexpected argument {arg:?}"));
            }
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f != "--param" => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))?,
        };
        let number = |what: &str| -> Result<f64, String> {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("{what} takes a non-negative number, got {value:?}"))
        };
        match flag {
            "--param" => {
                let (k, v) = value
                    .split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| format!("--param takes KEY=VALUE, got {value:?}"))?;
                a.params.insert(k.to_owned(), v.to_owned());
            }
            "--task" => a.tasks.push(value),
            "--record" => a.record = Some(value.into()),
            "--run-dir" => a.run_dir = Some(value.into()),
            "--python" => a.python = Some(value.into()),
            "--repo-root" => a.repo_root = Some(value.into()),
            "--parallelism" => {
                a.parallelism = Some(value.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(
                    || format!("--parallelism takes an integer >= 1, got {value:?}"),
                )?);
            }
            "--retry-backoff" => {
                let f = number("--retry-backoff")?;
                if f < 1.0 {
                    return Err(format!("--retry-backoff must be >= 1, got {value:?}"));
                }
                a.retry_backoff = Some(f);
            }
            "--kill-grace" => a.kill_grace = Some(number("--kill-grace")?),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    a.path = path.ok_or_else(|| format!("{} needs a file", a.command))?;
    Ok(a)
}

/// The interpreter: $BATUTA_PYTHON, else the venv's python beside this executable.
fn default_python() -> PathBuf {
    if let Some(p) = std::env::var_os("BATUTA_PYTHON") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        for name in ["python", "python3"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from("python3")
}

fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if s.is_empty() { "job".into() } else { s }
}

fn default_run_dir(job: &Job) -> PathBuf {
    let ms = runner::now_ms();
    let stamp = batuta::refs::TimeField::IsoDatetime
        .format(ms)
        .replace([':', '-'], "");
    PathBuf::from("build/batuta")
        .join(slug(&job.name))
        .join(format!("{stamp}-{:03}-{}", ms % 1000, std::process::id()))
}

/// One of `max` slots for runs of this job, held (a file lock) until the run ends.
fn run_slot(dir: &Path, job: &Job) -> Result<Option<File>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for i in 0..job.max_concurrent_runs {
        let path = dir.join(format!(".{}.run-slot-{i}.lock", slug(&job.name)));
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match f.try_lock() {
            Ok(()) => return Ok(Some(f)),
            Err(std::fs::TryLockError::WouldBlock) => continue,
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
    }
    Ok(None)
}

fn exit_for(result: ResultState) -> ExitCode {
    match result {
        ResultState::Success | ResultState::SuccessWithFailures => ExitCode::SUCCESS,
        ResultState::Canceled => ExitCode::from(130),
        _ => ExitCode::from(1),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match argv.first().map(String::as_str) {
        Some("--version") => {
            println!("batuta {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some("--source-hash") => {
            println!("{}", env!("SOURCE_FINGERPRINT"));
            return ExitCode::SUCCESS;
        }
        Some("-h" | "--help") | None => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let args = match parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("batuta: {e}\n{}", usage());
            return ExitCode::from(2);
        }
    };
    match main_with(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("batuta: {}", e.trim_end());
            ExitCode::from(2)
        }
    }
}

fn main_with(args: &Args) -> Result<ExitCode, String> {
    let (job, previous, job_file) = if args.command == "repair" {
        let text = std::fs::read_to_string(&args.path)
            .map_err(|e| format!("cannot read {}: {e}", args.path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not JSON: {e}", args.path.display()))?;
        let previous = record::from_json(&value)?;
        let job_dir = previous
            .job_file
            .as_ref()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        let locate = batuta::Locate {
            job_dir,
            repo_root: args
                .repo_root
                .clone()
                .or_else(|| previous.repo_root.clone()),
        };
        let job = Job::from_value(previous.settings.clone(), &locate).map_err(|e| e.to_string())?;
        if job.tasks.len() != previous.tasks.len()
            || job
                .tasks
                .iter()
                .zip(&previous.tasks)
                .any(|(t, r)| t.key != r.key)
        {
            return Err("run record: its tasks do not match its job settings".into());
        }
        let file = previous.job_file.clone();
        (job, Some(previous), file)
    } else {
        let job = Job::load(&args.path, args.repo_root.clone()).map_err(|e| e.to_string())?;
        let file = args.path.canonicalize().ok();
        (job, None, file)
    };

    if args.command == "validate" {
        println!(
            "{}: job {:?} is valid: {} tasks, run order {}",
            args.path.display(),
            job.name,
            job.tasks.len(),
            job.order
                .iter()
                .map(|&i| job.tasks[i].key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let local: Vec<&str> = job
            .tasks
            .iter()
            .filter(|t| matches!(t.kind, batuta::job::TaskKind::Shell { .. }))
            .map(|t| t.key.as_str())
            .collect();
        if !local.is_empty() {
            println!(
                "note: shell_task is a batuta extension that Databricks does not accept (tasks: {})",
                local.join(", ")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }

    let run_dir = match (&previous, &args.run_dir) {
        (_, Some(d)) => d.clone(),
        (Some(p), None) => p.run_dir.clone(),
        (None, None) => default_run_dir(&job),
    };
    std::fs::create_dir_all(&run_dir)
        .map_err(|e| format!("cannot create {}: {e}", run_dir.display()))?;
    let run_dir = run_dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", run_dir.display()))?;
    let slot_dir = run_dir.parent().unwrap_or(&run_dir).to_path_buf();
    let Some(_slot) = run_slot(&slot_dir, &job)? else {
        eprintln!(
            "batuta: MAXIMUM_CONCURRENT_RUNS_REACHED: {} run(s) of job {:?} are active (max_concurrent_runs)",
            job.max_concurrent_runs, job.name
        );
        return Ok(ExitCode::from(3));
    };

    let repair = match previous {
        None => None,
        Some(previous) => {
            let rerun: BTreeSet<usize> = if args.tasks.is_empty() {
                runner::failed_and_downstream(&job, &previous)
            } else {
                let mut roots = BTreeSet::new();
                for k in &args.tasks {
                    roots.insert(
                        job.index_of(k)
                            .ok_or_else(|| format!("--task {k}: the job has no task {k:?}"))?,
                    );
                }
                job.downstream_closure(&roots)
            };
            if rerun.is_empty() {
                println!(
                    "nothing to repair: every task of run {} succeeded",
                    previous.run_id
                );
                return Ok(ExitCode::SUCCESS);
            }
            Some(Repair { previous, rerun })
        }
    };

    let cancel = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&cancel))
            .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }
    // Unset options keep the library's defaults (Settings::new): one home for them.
    let mut settings = Settings::new(run_dir.clone());
    if let Some(n) = args.parallelism {
        settings.parallelism = n;
    }
    if let Some(f) = args.retry_backoff {
        settings.retry_backoff = f;
    }
    if let Some(g) = args.kill_grace {
        settings.kill_grace = Duration::from_secs_f64(g);
    }
    settings.python = args.python.clone().unwrap_or_else(default_python);
    settings.params = args.params.clone();
    settings.cancel = cancel;
    settings.cwd = std::env::current_dir().map_err(|e| format!("no working directory: {e}"))?;
    settings.echo = !args.quiet;
    let mut run = runner::run(&job, &settings, repair)?;
    run.job_file = job_file;
    run.repo_root = args.repo_root.clone().or(run.repo_root);

    let in_dir = run_dir.join("record.json");
    record::write(&run, &in_dir)?;
    let mut written = vec![in_dir];
    let target = match (&args.record, args.command.as_str()) {
        (Some(p), _) => Some(p.clone()),
        (None, "repair") => Some(args.path.clone()),
        _ => None,
    };
    if let Some(p) = target
        && !written.contains(&p)
    {
        record::write(&run, &p)?;
        written.push(p);
    }
    print!("{}", record::summary(&run));
    for p in &written {
        println!("run record: {}", p.display());
    }
    Ok(exit_for(run.result))
}
