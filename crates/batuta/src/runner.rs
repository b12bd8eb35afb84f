//! The scheduler: runs a validated job's tasks in dependency order, at most
//! `parallelism` at a time, with retries, timeouts, cancellation, task values passed
//! between tasks, and a run record in the shape of the Jobs API's run object.
//!
//! One thread (the caller's) owns all state and decides; each running attempt has a
//! watcher thread that only waits for its process tree and reports back on a channel.
//! Deciding in one place keeps the rules (`run_if`, retries, repair) free of locks.
//!
//! Task values cross process boundaries as files: the runner gives every task
//! `COURSEKIT_TASK_VALUES_DIR` and `COURSEKIT_TASK_KEY`, a task writes its values as one
//! JSON object to `$COURSEKIT_TASK_VALUES_DIR/$COURSEKIT_TASK_KEY.json`
//! (`dbutils.jobs.taskValues.set` in a notebook does it), and the runner reads the file
//! once the task has succeeded, for `{{tasks.<key>.values.<name>}}` and for the record.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::job::{Job, Task, TaskKind};
use crate::process::{self, Ending};
use crate::refs::{self, Reference};
use crate::semantics::{self, Decision, DepStatus, ResultState};

/// Largest task-values file read back (Databricks caps one value at 48 KiB).
const MAX_VALUES_BYTES: u64 = 4 * 1024 * 1024;
/// Longest wait between retries, whatever the backoff.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(600);

/// How a run is carried out (the knobs the command line exposes).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Tasks running at once.
    pub parallelism: usize,
    /// Logs, task values and executed notebooks of this run.
    pub run_dir: PathBuf,
    /// The interpreter for notebook (`-m coursekit.run`) and Python tasks.
    pub python: PathBuf,
    /// Job parameter values given for this run (override the defaults).
    pub params: BTreeMap<String, String>,
    /// Each retry waits `min_retry_interval_millis * retry_backoff^(retry - 1)`; 1 is
    /// Databricks' constant interval.
    pub retry_backoff: f64,
    /// Between SIGTERM and SIGKILL when a task's tree is killed.
    pub kill_grace: Duration,
    /// Set (by a SIGINT handler) to cancel the run.
    pub cancel: Arc<AtomicBool>,
    /// Working directory of the tasks.
    pub cwd: PathBuf,
    /// Progress lines on stderr.
    pub echo: bool,
}

impl Settings {
    pub const DEFAULT_PARALLELISM: usize = 2;
    pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

    pub fn new(run_dir: PathBuf) -> Settings {
        Settings {
            parallelism: Self::DEFAULT_PARALLELISM,
            run_dir,
            python: PathBuf::from("python3"),
            params: BTreeMap::new(),
            retry_backoff: 1.0,
            kill_grace: Self::DEFAULT_KILL_GRACE,
            cancel: Arc::new(AtomicBool::new(false)),
            cwd: PathBuf::from("."),
            echo: false,
        }
    }
}

/// One attempt of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub number: u32,
    pub start_ms: i64,
    pub end_ms: i64,
    pub result: ResultState,
    pub exit_code: Option<i32>,
    pub message: String,
    pub log: Option<PathBuf>,
}

/// A task's part of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRun {
    pub key: String,
    pub run_id: u64,
    pub result: Option<ResultState>,
    pub message: String,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub attempts: Vec<Attempt>,
    pub values: Map<String, Value>,
    /// A condition task's outcome.
    pub outcome: Option<bool>,
    /// A condition task's operands after references were resolved.
    pub condition: Option<(String, String)>,
    /// A notebook's `dbutils.notebook.exit` value.
    pub notebook_output: Option<String>,
    /// The parameters the last attempt ran with, references resolved.
    pub resolved: Option<Value>,
}

impl TaskRun {
    fn new(key: &str, run_id: u64) -> TaskRun {
        TaskRun {
            key: key.to_owned(),
            run_id,
            result: None,
            message: String::new(),
            start_ms: None,
            end_ms: None,
            attempts: Vec::new(),
            values: Map::new(),
            outcome: None,
            condition: None,
            notebook_output: None,
            resolved: None,
        }
    }

    fn execution_count(&self) -> u32 {
        self.attempts.len() as u32
    }
}

/// A run of a job: what the record file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub run_id: u64,
    pub job_id: u64,
    pub job_name: String,
    pub job_file: Option<PathBuf>,
    pub repo_root: Option<PathBuf>,
    pub run_dir: PathBuf,
    pub parameters: BTreeMap<String, String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub result: ResultState,
    pub message: String,
    pub repair_count: u32,
    /// (start, end, result, tasks run) of the original run and every repair.
    pub history: Vec<(i64, i64, ResultState, Vec<String>)>,
    pub settings: Value,
    pub tasks: Vec<TaskRun>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A stable id for a job: FNV-1a of its name (locally there is no job service to assign one).
pub fn job_id_of(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Positive and below 2^53, so JSON readers keep it exact.
    h & ((1 << 53) - 1)
}

fn new_run_id() -> u64 {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    // Room below the id for the task run ids (run_id + 1 + index + repair offset).
    micros / 1000 * 1000
}

/// The job parameter values of a run: defaults, overridden by `given`; an unknown name is refused.
pub fn parameter_values(
    job: &Job,
    given: &BTreeMap<String, String>,
    run_id: u64,
    start_ms: i64,
) -> Result<BTreeMap<String, String>, String> {
    for name in given.keys() {
        if !job.parameters.iter().any(|p| &p.name == name) {
            let declared: Vec<&str> = job.parameters.iter().map(|p| p.name.as_str()).collect();
            return Err(format!(
                "--param {name}: the job declares no parameter {name:?} (declared: {})",
                if declared.is_empty() {
                    "none".to_owned()
                } else {
                    declared.join(", ")
                }
            ));
        }
    }
    let mut out = BTreeMap::new();
    for p in &job.parameters {
        let raw = given.get(&p.name).unwrap_or(&p.default);
        let value = refs::substitute(raw, |r| match r {
            Reference::JobId => Ok(job_id_of(&job.name).to_string()),
            Reference::JobName => Ok(job.name.clone()),
            Reference::JobRunId => Ok(run_id.to_string()),
            Reference::JobRepairCount => Ok("0".into()),
            Reference::JobTriggerType => Ok("ONE_TIME".into()),
            Reference::JobStartTime(f) => Ok(f.format(start_ms)),
            Reference::LegacyStartDate => Ok(refs::TimeField::IsoDate.format(start_ms)),
            Reference::LegacyStartTime => Ok(start_ms.to_string()),
            other => Err(format!(
                "parameter {:?}: {{{{{}}}}} cannot be used in a job parameter",
                p.name,
                other.describe()
            )),
        })?;
        out.insert(p.name.clone(), value);
    }
    Ok(out)
}

enum Slot {
    Pending,
    Waiting { not_before: Instant },
    Running,
    Done,
}

struct Report {
    index: usize,
    attempt: Attempt,
    ending_values: Option<Result<Map<String, Value>, String>>,
    notebook_output: Option<String>,
}

/// What a repair starts from: the earlier run and the tasks to run again.
#[derive(Debug, Clone)]
pub struct Repair {
    pub previous: Run,
    pub rerun: BTreeSet<usize>,
}

struct Scheduler<'a> {
    job: &'a Job,
    settings: &'a Settings,
    run: Run,
    slots: Vec<Slot>,
    stop: Arc<AtomicBool>,
    timed_out: bool,
    canceled: bool,
    values_dir: PathBuf,
    coursekit_dir: PathBuf,
    started: Instant,
    tx: mpsc::Sender<Report>,
}

impl Scheduler<'_> {
    fn say(&self, msg: &str) {
        if self.settings.echo {
            let t = self.started.elapsed().as_secs_f64();
            eprintln!("[batuta {t:7.1}s] {msg}");
        }
    }

    fn is_leaf(&self, i: usize) -> bool {
        let key = &self.job.tasks[i].key;
        !self
            .job
            .tasks
            .iter()
            .any(|t| t.depends_on.iter().any(|d| &d.task_key == key))
    }

    fn finish_task(&mut self, i: usize, result: ResultState, message: String) {
        let now = now_ms();
        let tr = &mut self.run.tasks[i];
        tr.result = Some(result);
        tr.message = message;
        tr.end_ms = Some(now);
        if tr.start_ms.is_none() {
            tr.start_ms = Some(now);
        }
        self.slots[i] = Slot::Done;
        let tries = tr.attempts.len();
        let msg = if tr.message.is_empty() {
            String::new()
        } else {
            format!(": {}", tr.message)
        };
        let took = match (tr.start_ms, tr.end_ms) {
            (Some(s), Some(e)) if tries > 0 => format!(" in {:.1} s", (e - s) as f64 / 1000.0),
            _ => String::new(),
        };
        let line = format!("{} {result}{took}{msg}", self.job.tasks[i].key);
        self.say(&line);
    }

    fn dep_statuses(&self, task: &Task) -> Option<Vec<DepStatus>> {
        let mut out = Vec::new();
        for d in &task.depends_on {
            let j = self.job.index_of(&d.task_key)?;
            let tr = &self.run.tasks[j];
            let result = tr.result?;
            out.push(DepStatus::of(result, d.outcome, tr.outcome));
        }
        Some(out)
    }

    fn resolve(&self, i: usize, text: &str) -> Result<String, String> {
        let task = &self.job.tasks[i];
        let tr = &self.run.tasks[i];
        let run = &self.run;
        refs::substitute(text, |r| {
            let upstream = |k: &str| -> Result<&TaskRun, String> {
                self.job
                    .index_of(k)
                    .map(|j| &run.tasks[j])
                    .ok_or_else(|| format!("no task {k:?}"))
            };
            Ok(match r {
                Reference::JobId => job_id_of(&self.job.name).to_string(),
                Reference::JobName => self.job.name.clone(),
                Reference::JobRunId | Reference::LegacyParentRunId => run.run_id.to_string(),
                Reference::JobRepairCount => run.repair_count.to_string(),
                Reference::JobTriggerType => "ONE_TIME".into(),
                Reference::JobStartTime(f) => f.format(run.start_ms),
                Reference::JobParameter(n) => run
                    .parameters
                    .get(n)
                    .cloned()
                    .ok_or_else(|| format!("job parameter {n:?} is not declared"))?,
                Reference::TaskName => task.key.clone(),
                Reference::TaskRunId => tr.run_id.to_string(),
                Reference::TaskNotebookPath => match &task.kind {
                    TaskKind::Notebook { path, .. } => path.display().to_string(),
                    _ => {
                        return Err(format!(
                            "{{{{task.notebook_path}}}}: task {:?} is not a notebook task",
                            task.key
                        ));
                    }
                },
                // The attempt about to start counts.
                Reference::TaskExecutionCount => (tr.execution_count() + 1).to_string(),
                Reference::LegacyRetryCount => tr.execution_count().to_string(),
                Reference::LegacyStartDate => refs::TimeField::IsoDate.format(run.start_ms),
                Reference::LegacyStartTime => run.start_ms.to_string(),
                Reference::TasksRunId(k) => upstream(k)?.run_id.to_string(),
                Reference::TasksResultState(k) => upstream(k)?
                    .result
                    .map(|r| r.as_str().to_ascii_lowercase())
                    .unwrap_or_default(),
                Reference::TasksErrorCode(k) => {
                    let u = upstream(k)?;
                    match u.result {
                        Some(r) if !r.is_success_like() => r.as_str().to_owned(),
                        _ => String::new(),
                    }
                }
                Reference::TasksExecutionCount(k) => upstream(k)?.execution_count().to_string(),
                Reference::TasksValue(k, v) => {
                    let u = upstream(k)?;
                    match u.values.get(v) {
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => {
                            let set: Vec<&String> = u.values.keys().collect();
                            return Err(format!(
                                "{{{{tasks.{k}.values.{v}}}}}: task {k:?} set no value {v:?} (it set: {set:?})"
                            ));
                        }
                    }
                }
            })
        })
    }

    /// A condition operand: a task value must be a number, string or boolean.
    fn resolve_operand(&self, i: usize, text: &str) -> Result<String, String> {
        for r in refs::references(text).map_err(|e| e.0)? {
            if let Reference::TasksValue(k, v) = &r
                && let Some(j) = self.job.index_of(k)
                && let Some(val) = self.run.tasks[j].values.get(v)
                && !(val.is_string() || val.is_number() || val.is_boolean())
            {
                return Err(format!(
                    "{{{{tasks.{k}.values.{v}}}}} is {val}: a condition compares only numbers, strings and booleans"
                ));
            }
        }
        self.resolve(i, text)
    }

    fn start_attempt(&mut self, i: usize) {
        let task = self.job.tasks[i].clone();
        let number = self.run.tasks[i].execution_count() + 1;
        let start = now_ms();
        if self.run.tasks[i].start_ms.is_none() {
            self.run.tasks[i].start_ms = Some(start);
        }
        let fail_now = |s: &mut Self, message: String| {
            s.run.tasks[i].attempts.push(Attempt {
                number,
                start_ms: start,
                end_ms: now_ms(),
                result: ResultState::Failed,
                exit_code: None,
                message: message.clone(),
                log: None,
            });
            s.finish_task(i, ResultState::Failed, message);
        };

        if let TaskKind::Condition { op, left, right } = &task.kind {
            let outcome = self
                .resolve_operand(i, left)
                .and_then(|l| self.resolve_operand(i, right).map(|r| (l, r)))
                .and_then(|(l, r)| op.evaluate(&l, &r).map(|o| (l, r, o)));
            match outcome {
                Ok((l, r, o)) => {
                    let tr = &mut self.run.tasks[i];
                    tr.condition = Some((l.clone(), r.clone()));
                    tr.outcome = Some(o);
                    tr.attempts.push(Attempt {
                        number,
                        start_ms: start,
                        end_ms: now_ms(),
                        result: ResultState::Success,
                        exit_code: None,
                        message: format!("{l:?} {} {r:?} is {o}", op.symbol()),
                        log: None,
                    });
                    let msg = format!("outcome {o} ({l:?} {} {r:?})", op.symbol());
                    self.finish_task(i, ResultState::Success, msg);
                }
                Err(e) => fail_now(self, e),
            }
            return;
        }

        let cmd = match self.command(i, &task, number) {
            Ok(c) => c,
            Err(e) => {
                fail_now(self, e);
                return;
            }
        };
        let (mut cmd, log, out_dir) = cmd;
        let values_file = self.values_dir.join(format!("{}.json", task.key));
        // Values from a failed attempt must not survive into the retry.
        let _ = fs::remove_file(&values_file);
        let deadline = (task.timeout_seconds > 0)
            .then(|| Instant::now() + Duration::from_secs(task.timeout_seconds));
        let child = process::spawn(&mut cmd);
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                let program = cmd.get_program().to_string_lossy().into_owned();
                fail_now(self, format!("cannot start {program:?}: {e}"));
                return;
            }
        };
        self.slots[i] = Slot::Running;
        self.say(&format!(
            "{} started (attempt {number}, log {})",
            task.key,
            log.display()
        ));
        let tx = self.tx.clone();
        let stop = Arc::clone(&self.stop);
        let grace = self.settings.kill_grace;
        let timeout = task.timeout_seconds;
        let is_notebook = matches!(task.kind, TaskKind::Notebook { .. });
        thread::spawn(move || {
            let ending = process::watch(&mut child, deadline, &stop, grace);
            let (result, exit_code, message) = match ending {
                Ok(Ending::Exited(status)) if status.success() => {
                    (ResultState::Success, status.code(), String::new())
                }
                Ok(Ending::Exited(status)) => {
                    let why = match status.code() {
                        Some(c) => format!("exit status {c}"),
                        None => {
                            use std::os::unix::process::ExitStatusExt;
                            format!("killed by signal {}", status.signal().unwrap_or(0))
                        }
                    };
                    (ResultState::Failed, status.code(), why)
                }
                Ok(Ending::TimedOut) => (
                    ResultState::TimedOut,
                    None,
                    format!("timed out after {timeout} s; its process tree was killed"),
                ),
                Ok(Ending::Canceled) => (
                    ResultState::Canceled,
                    None,
                    "canceled; its process tree was killed".to_owned(),
                ),
                Err(e) => (
                    ResultState::Failed,
                    None,
                    format!("cannot wait for the task: {e}"),
                ),
            };
            let ending_values = (result == ResultState::Success).then(|| read_values(&values_file));
            let notebook_output = if is_notebook {
                out_dir.as_deref().and_then(notebook_exit_value)
            } else {
                None
            };
            let attempt = Attempt {
                number,
                start_ms: start,
                end_ms: now_ms(),
                result,
                exit_code,
                message,
                log: Some(log),
            };
            // The scheduler outlives every watcher; a send can only fail after it returned.
            let _ = tx.send(Report {
                index: i,
                attempt,
                ending_values,
                notebook_output,
            });
        });
    }

    /// The process an attempt runs, its log file, and (notebooks) the executed-notebook folder.
    fn command(
        &mut self,
        i: usize,
        task: &Task,
        number: u32,
    ) -> Result<(Command, PathBuf, Option<PathBuf>), String> {
        let logs = self.settings.run_dir.join("logs");
        fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
        let log_path = logs.join(format!("{}.attempt{number}.log", task.key));
        let log = File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("cannot share {}: {e}", log_path.display()))?;
        let mut out_dir = None;
        let mut cmd = match &task.kind {
            TaskKind::Notebook {
                path,
                base_parameters,
            } => {
                // Job parameters are pushed down to notebook tasks and win over a
                // task parameter of the same name.
                let mut params: BTreeMap<String, String> = BTreeMap::new();
                for (k, v) in base_parameters {
                    params.insert(k.clone(), self.resolve(i, v)?);
                }
                for (k, v) in &self.run.parameters {
                    params.insert(k.clone(), v.clone());
                }
                self.run.tasks[i].resolved = Some(json!(params));
                let dir = self
                    .settings
                    .run_dir
                    .join("notebooks")
                    .join(format!("{}.attempt{number}", task.key));
                let mut c = Command::new(&self.settings.python);
                c.arg("-m").arg("coursekit.run").arg(path);
                for (k, v) in &params {
                    c.arg("--param").arg(format!("{k}={v}"));
                }
                // The task's timeout governs; a cell may take as long as the task may.
                let cell_timeout = if task.timeout_seconds > 0 {
                    task.timeout_seconds
                } else {
                    86_400
                };
                c.arg("--jobs")
                    .arg("1")
                    .arg("--timeout")
                    .arg(cell_timeout.to_string())
                    .arg("--out-dir")
                    .arg(&dir);
                out_dir = Some(dir);
                c
            }
            TaskKind::Python { file, parameters } => {
                let mut args = Vec::new();
                for p in parameters {
                    args.push(self.resolve(i, p)?);
                }
                self.run.tasks[i].resolved = Some(json!(args));
                let mut c = Command::new(&self.settings.python);
                c.arg(file).args(&args);
                c
            }
            TaskKind::Shell { command } => {
                let command = self.resolve(i, command)?;
                self.run.tasks[i].resolved = Some(json!(command));
                let mut c = Command::new("sh");
                c.arg("-c").arg(command);
                c
            }
            TaskKind::Condition { .. } => unreachable!("condition tasks run in the scheduler"),
        };
        cmd.current_dir(&self.settings.cwd)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2)
            .env("COURSEKIT_TASK_VALUES_DIR", &self.values_dir)
            .env("COURSEKIT_TASK_KEY", &task.key)
            // Every notebook of the run shares one DBFS root and warehouse folder.
            .env("COURSEKIT_RUN_DIR", &self.coursekit_dir)
            .env("BATUTA_RUN_ID", self.run.run_id.to_string())
            .env("BATUTA_TASK_RUN_ID", self.run.tasks[i].run_id.to_string())
            .env("BATUTA_ATTEMPT", number.to_string())
            // Python output reaches the log as it happens, not when a buffer fills.
            .env("PYTHONUNBUFFERED", "1");
        Ok((cmd, log_path, out_dir))
    }

    fn on_report(&mut self, r: Report) {
        let i = r.index;
        let task = self.job.tasks[i].clone();
        if let Some(out) = r.notebook_output {
            self.run.tasks[i].notebook_output = Some(out);
        }
        let mut attempt = r.attempt;
        if attempt.result == ResultState::Success {
            match r.ending_values {
                Some(Ok(values)) => self.run.tasks[i].values = values,
                Some(Err(e)) => {
                    attempt.result = ResultState::Failed;
                    attempt.message = e;
                }
                None => {}
            }
        }
        // A stop (cancel or job timeout) turns the attempt's Canceled into the run's reason.
        if attempt.result == ResultState::Canceled && self.timed_out {
            attempt.result = ResultState::TimedOut;
            attempt.message =
                "the job's timeout_seconds passed; its process tree was killed".into();
        }
        let result = attempt.result;
        let message = attempt.message.clone();
        let start = attempt.start_ms;
        self.run.tasks[i].attempts.push(attempt);
        let retryable = match result {
            ResultState::Failed => true,
            ResultState::TimedOut => task.retry_on_timeout && !self.timed_out,
            _ => false,
        };
        let retries_done = self.run.tasks[i].execution_count().saturating_sub(1);
        let more = task.max_retries < 0 || i64::from(retries_done) < task.max_retries;
        if retryable && more && !self.stop.load(Ordering::SeqCst) {
            let retry = retries_done + 1;
            let base = task.min_retry_interval_millis as f64;
            let factor = self.settings.retry_backoff.powi(retry as i32 - 1);
            let wait =
                Duration::from_secs_f64((base * factor / 1000.0).min(MAX_RETRY_WAIT.as_secs_f64()));
            // Databricks measures the interval from the start of the failed attempt.
            let since_start = Duration::from_millis((now_ms() - start).max(0) as u64);
            let not_before = Instant::now() + wait.saturating_sub(since_start);
            self.say(&format!(
                "{} attempt {} {result} ({message}); retry {retry} in {:.1} s",
                task.key,
                retries_done + 1,
                not_before
                    .saturating_duration_since(Instant::now())
                    .as_secs_f64()
            ));
            self.slots[i] = Slot::Waiting { not_before };
        } else {
            self.finish_task(i, result, message);
        }
    }

    fn running(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s, Slot::Running))
            .count()
    }

    fn all_done(&self) -> bool {
        self.slots.iter().all(|s| matches!(s, Slot::Done))
    }

    /// Decide every pending task whose dependencies are done; start what fits.
    fn step(&mut self) {
        let stopping = self.stop.load(Ordering::SeqCst);
        for &i in &self.job.order.clone() {
            match self.slots[i] {
                Slot::Pending => {}
                Slot::Waiting { not_before } => {
                    if stopping {
                        let why = if self.timed_out {
                            ResultState::TimedOut
                        } else {
                            ResultState::Canceled
                        };
                        let msg = self.run.tasks[i]
                            .attempts
                            .last()
                            .map(|a| a.message.clone())
                            .unwrap_or_default();
                        self.finish_task(i, why, format!("stopped while waiting to retry ({msg})"));
                    } else if Instant::now() >= not_before
                        && self.running() < self.settings.parallelism
                    {
                        self.start_attempt(i);
                    }
                    continue;
                }
                Slot::Running | Slot::Done => continue,
            }
            let task = &self.job.tasks[i];
            if stopping {
                let (state, msg) = if self.timed_out {
                    (
                        ResultState::TimedOut,
                        "the job's timeout_seconds passed before it started",
                    )
                } else {
                    (
                        ResultState::Canceled,
                        "the run was canceled before it started",
                    )
                };
                self.finish_task(i, state, msg.to_owned());
                continue;
            }
            let Some(deps) = self.dep_statuses(task) else {
                continue;
            };
            if task.disabled {
                self.finish_task(
                    i,
                    ResultState::Disabled,
                    "disabled in the job definition".into(),
                );
                continue;
            }
            match semantics::decide(task.run_if, &deps) {
                Decision::Skip(state) => {
                    let msg = format!("run_if {} not met", task.run_if.as_str());
                    self.finish_task(i, state, msg);
                }
                Decision::Run => {
                    let is_condition = matches!(task.kind, TaskKind::Condition { .. });
                    if is_condition || self.running() < self.settings.parallelism {
                        self.start_attempt(i);
                    }
                }
            }
        }
    }
}

fn read_values(path: &Path) -> Result<Map<String, Value>, String> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => return Err(format!("cannot read task values {}: {e}", path.display())),
    };
    let mut text = String::new();
    f.by_ref()
        .take(MAX_VALUES_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read task values {}: {e}", path.display()))?;
    if text.len() as u64 > MAX_VALUES_BYTES {
        return Err(format!(
            "task values {} exceed {MAX_VALUES_BYTES} bytes",
            path.display()
        ));
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(format!(
            "task values {} must hold a JSON object, got {other}",
            path.display()
        )),
        Err(e) => Err(format!("task values {} are not JSON: {e}", path.display())),
    }
}

/// The `dbutils.notebook.exit` value in an executed notebook coursekit.run wrote.
fn notebook_exit_value(dir: &Path) -> Option<String> {
    const EXIT_MIME: &str = "application/vnd.coursekit.exit+json";
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).ok()?.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "ipynb") {
                let nb: Value = serde_json::from_str(&fs::read_to_string(&p).ok()?).ok()?;
                for cell in nb.get("cells")?.as_array()? {
                    for out in cell
                        .get("outputs")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(v) =
                            out.pointer(&format!("/data/{}", EXIT_MIME.replace('/', "~1")))
                        {
                            return v.get("value").and_then(Value::as_str).map(str::to_owned);
                        }
                    }
                }
            }
        }
    }
    None
}

/// The last `n` lines of a log file (what the summary shows of a failed task).
pub fn log_tail(path: &Path, n: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(16 * 1024);
    if f.seek(SeekFrom::Start(from)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Run `job` (or repair an earlier run of it) to the end and return the record.
pub fn run(job: &Job, settings: &Settings, repair: Option<Repair>) -> Result<Run, String> {
    if settings.parallelism == 0 {
        return Err("parallelism must be at least 1".into());
    }
    let (tx, rx) = mpsc::channel();
    let n = job.tasks.len();
    let mut slots: Vec<Slot> = (0..n).map(|_| Slot::Pending).collect();
    let run = match repair {
        None => {
            let run_id = new_run_id();
            let start_ms = now_ms();
            let parameters = parameter_values(job, &settings.params, run_id, start_ms)?;
            Run {
                run_id,
                job_id: job_id_of(&job.name),
                job_name: job.name.clone(),
                job_file: None,
                repo_root: None,
                run_dir: settings.run_dir.clone(),
                parameters,
                start_ms,
                end_ms: start_ms,
                result: ResultState::Success,
                message: String::new(),
                repair_count: 0,
                history: Vec::new(),
                settings: job.settings.clone(),
                tasks: job
                    .tasks
                    .iter()
                    .enumerate()
                    .map(|(i, t)| TaskRun::new(&t.key, run_id + 1 + i as u64))
                    .collect(),
            }
        }
        Some(Repair { previous, rerun }) => {
            let mut run = previous;
            run.repair_count += 1;
            for (k, v) in &settings.params {
                if !run.parameters.contains_key(k) {
                    return Err(format!("--param {k}: the job declares no parameter {k:?}"));
                }
                run.parameters.insert(k.clone(), v.clone());
            }
            let offset = u64::from(run.repair_count) * n as u64;
            for (i, slot) in slots.iter_mut().enumerate() {
                if rerun.contains(&i) {
                    let tr = &mut run.tasks[i];
                    tr.run_id = run.run_id + 1 + offset + i as u64;
                    tr.result = None;
                    tr.message.clear();
                    tr.start_ms = None;
                    tr.end_ms = None;
                    tr.values.clear();
                    tr.outcome = None;
                    tr.condition = None;
                    tr.notebook_output = None;
                } else {
                    *slot = Slot::Done;
                }
            }
            run
        }
    };
    let values_dir = settings.run_dir.join("task_values");
    fs::create_dir_all(&values_dir)
        .map_err(|e| format!("cannot create {}: {e}", values_dir.display()))?;
    let coursekit_dir = settings.run_dir.join("coursekit");
    let mut s = Scheduler {
        job,
        settings,
        run,
        slots,
        stop: Arc::new(AtomicBool::new(false)),
        timed_out: false,
        canceled: false,
        values_dir,
        coursekit_dir,
        started: Instant::now(),
        tx,
    };
    let pass_start = now_ms();
    let rerun_keys: Vec<String> = (0..n)
        .filter(|&i| !matches!(s.slots[i], Slot::Done))
        .map(|i| job.tasks[i].key.clone())
        .collect();
    let deadline = (job.timeout_seconds > 0)
        .then(|| Instant::now() + Duration::from_secs(job.timeout_seconds));
    loop {
        if !s.stop.load(Ordering::SeqCst) {
            if settings.cancel.load(Ordering::SeqCst) {
                s.canceled = true;
                s.say("canceled: killing running tasks");
                s.stop.store(true, Ordering::SeqCst);
            } else if deadline.is_some_and(|d| Instant::now() >= d) {
                s.timed_out = true;
                s.say("the job's timeout_seconds passed: killing running tasks");
                s.stop.store(true, Ordering::SeqCst);
            }
        }
        s.step();
        if s.all_done() {
            break;
        }
        match rx.recv_timeout(Duration::from_millis(25)) {
            Ok(report) => s.on_report(report),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                unreachable!("the scheduler holds a sender")
            }
        }
    }
    let leaves: Vec<(ResultState, bool)> = (0..n)
        .map(|i| {
            (
                s.run.tasks[i].result.unwrap_or(ResultState::Failed),
                s.is_leaf(i),
            )
        })
        .collect();
    let result = semantics::job_result(&leaves, s.canceled, s.timed_out);
    let failed: Vec<String> = s
        .run
        .tasks
        .iter()
        .filter(|t| !t.result.is_some_and(ResultState::is_success_like))
        .map(|t| t.key.clone())
        .collect();
    let mut run = s.run;
    run.result = result;
    run.end_ms = now_ms();
    run.message = if failed.is_empty() {
        String::new()
    } else {
        format!("not successful: {}", failed.join(", "))
    };
    run.history
        .push((pass_start, run.end_ms, result, rerun_keys));
    Ok(run)
}

/// The tasks a repair re-runs by default: every task that did not succeed (and was not
/// excluded or disabled), and everything downstream of them.
pub fn failed_and_downstream(job: &Job, run: &Run) -> BTreeSet<usize> {
    let failed: BTreeSet<usize> = run
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.result.is_some_and(ResultState::is_success_like))
        .map(|(i, _)| i)
        .collect();
    job.downstream_closure(&failed)
}
