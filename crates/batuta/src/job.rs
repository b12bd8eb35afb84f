//! The job definition: the subset of the Databricks Jobs API 2.1 `JobSettings` that
//! runs locally, read from the JSON `databricks jobs create --json` takes.
//!
//! Reading is strict where a mistake would otherwise surface mid-run: every problem
//! of a definition (a missing `task_key`, a task with two types, a `python_wheel_task`,
//! a cycle, a dependency on a task that does not exist, a reference to an undeclared
//! parameter) is collected and reported together, before any task starts. Fields the
//! platform uses for compute, notifications or scheduling (`job_clusters`,
//! `email_notifications`, `schedule`, `tags`, ...) have no local meaning and are ignored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::refs::{self, Reference};
use crate::semantics::{ConditionOp, RunIf};

/// Every problem found in a job definition, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub problems: Vec<String>,
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "invalid job definition ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for JobError {}

/// Where a task's relative `notebook_path` / `python_file` is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Relative to the repository root (the nearest ancestor of the job file holding `.git`).
    Git,
    /// Relative to the job file's directory (Databricks wants absolute workspace paths).
    Workspace,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TaskKind {
    Notebook {
        path: PathBuf,
        base_parameters: BTreeMap<String, String>,
    },
    Python {
        file: PathBuf,
        parameters: Vec<String>,
    },
    /// A batuta extension (the Jobs API has no shell task): `{"command": "..."}` run by `sh -c`.
    Shell { command: String },
    Condition {
        op: ConditionOp,
        left: String,
        right: String,
    },
}

impl TaskKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            TaskKind::Notebook { .. } => "notebook_task",
            TaskKind::Python { .. } => "spark_python_task",
            TaskKind::Shell { .. } => "shell_task",
            TaskKind::Condition { .. } => "condition_task",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub task_key: String,
    /// Only on a dependency on a condition task: the outcome that lets this task run.
    pub outcome: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub key: String,
    pub depends_on: Vec<Dependency>,
    pub run_if: RunIf,
    pub kind: TaskKind,
    /// `-1` retries without limit, `0` never (the Jobs API's encoding).
    pub max_retries: i64,
    pub min_retry_interval_millis: u64,
    pub retry_on_timeout: bool,
    /// `0` means no timeout.
    pub timeout_seconds: u64,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobParameter {
    pub name: String,
    pub default: String,
}

/// A validated job: task keys unique, dependencies known and acyclic, references sound.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: String,
    pub parameters: Vec<JobParameter>,
    pub tasks: Vec<Task>,
    pub max_concurrent_runs: u32,
    /// Whole-run timeout, `0` for none.
    pub timeout_seconds: u64,
    /// The definition as read, kept in the run record so `batuta repair` re-runs the same job.
    pub settings: Value,
    /// Directory relative notebook and Python paths were resolved from (for messages).
    pub base_dir: PathBuf,
    /// Tasks in an order where every task follows its dependencies (stable: file order).
    pub order: Vec<usize>,
}

/// Task types of the Jobs API that have no local runner, with what to do instead.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "python_wheel_task",
        "install the wheel in the environment and call its entry point from a spark_python_task or shell_task",
    ),
    ("spark_jar_task", "there is no JVM job runner locally"),
    ("spark_submit_task", "use a spark_python_task"),
    (
        "pipeline_task",
        "Lakeflow declarative pipelines have no local engine",
    ),
    ("sql_task", "run the SQL from a notebook_task (%sql cells)"),
    ("dbt_task", "there is no dbt runner locally"),
    ("dbt_cloud_task", "dbt Cloud is a remote service"),
    ("dbt_platform_task", "dbt is a remote service"),
    (
        "run_job_task",
        "run the other job with its own `batuta run`",
    ),
    ("for_each_task", "not implemented by batuta"),
    (
        "clean_rooms_notebook_task",
        "clean rooms are a Databricks service",
    ),
    ("dashboard_task", "dashboards are a Databricks service"),
    ("power_bi_task", "Power BI is a remote service"),
    ("alert_task", "SQL alerts are a Databricks service"),
    ("ai_function_task", "a Databricks service"),
    ("ai_runtime_task", "a Databricks service"),
    ("gen_ai_compute_task", "a Databricks service"),
    ("python_operator_task", "not implemented by batuta"),
];

const SUPPORTED: &[&str] = &[
    "notebook_task",
    "spark_python_task",
    "shell_task",
    "condition_task",
];

struct Reader {
    problems: Vec<String>,
}

impl Reader {
    fn problem(&mut self, p: String) {
        self.problems.push(p);
    }

    fn string(&mut self, obj: &Map<String, Value>, key: &str, at: &str) -> Option<String> {
        match obj.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.problem(format!("{at}.{key} must be a string, got {other}"));
                None
            }
            None => None,
        }
    }

    fn required_string(&mut self, obj: &Map<String, Value>, key: &str, at: &str) -> Option<String> {
        let s = self.string(obj, key, at);
        if s.is_none() && !obj.contains_key(key) {
            self.problem(format!("{at}.{key} is required"));
        }
        s
    }

    /// A parameter value: Databricks stores strings; numbers and booleans are accepted
    /// as the text they would be sent as.
    fn scalar_text(&mut self, v: &Value, at: &str) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                self.problem(format!("{at} must be a string, got {other}"));
                None
            }
        }
    }

    fn int(&mut self, obj: &Map<String, Value>, key: &str, at: &str, min: i64) -> Option<i64> {
        let v = obj.get(key)?;
        match v.as_i64() {
            Some(n) if n >= min => Some(n),
            _ => {
                self.problem(format!("{at}.{key} must be an integer >= {min}, got {v}"));
                None
            }
        }
    }

    fn bool(&mut self, obj: &Map<String, Value>, key: &str, at: &str) -> Option<bool> {
        match obj.get(key)? {
            Value::Bool(b) => Some(*b),
            other => {
                self.problem(format!("{at}.{key} must be true or false, got {other}"));
                None
            }
        }
    }
}

/// The repository root for `source: GIT` paths: the nearest ancestor holding `.git`.
fn repo_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// Options that locate the files a definition names.
#[derive(Debug, Clone, Default)]
pub struct Locate {
    /// The job file's directory (relative paths of WORKSPACE tasks).
    pub job_dir: PathBuf,
    /// Overrides the repository root found from `job_dir` (relative paths of GIT tasks).
    pub repo_root: Option<PathBuf>,
}

fn resolve_file(
    r: &mut Reader,
    raw: &str,
    source: Source,
    locate: &Locate,
    at: &str,
    notebook: bool,
) -> PathBuf {
    let base = match source {
        Source::Git => locate
            .repo_root
            .clone()
            .or_else(|| repo_root(&locate.job_dir))
            .unwrap_or_else(|| locate.job_dir.clone()),
        Source::Workspace => locate.job_dir.clone(),
    };
    let given = Path::new(raw);
    let candidate = if given.is_absolute() {
        given.to_path_buf()
    } else {
        base.join(given)
    };
    // Databricks names notebooks without their extension; the local file is `<name>.py`.
    let mut options = vec![candidate.clone()];
    if notebook && candidate.extension().is_none() {
        let mut with = candidate.clone().into_os_string();
        with.push(".py");
        options.push(PathBuf::from(with));
    }
    match options.iter().find(|p| p.is_file()) {
        Some(p) => p.clone(),
        None => {
            let tried: Vec<String> = options.iter().map(|p| p.display().to_string()).collect();
            r.problem(format!(
                "{at}: {raw:?} not found (looked for {})",
                tried.join(", ")
            ));
            candidate
        }
    }
}

fn read_task(
    r: &mut Reader,
    index: usize,
    value: &Value,
    git_source: bool,
    locate: &Locate,
) -> Option<Task> {
    let at0 = format!("tasks[{index}]");
    let Some(obj) = value.as_object() else {
        r.problem(format!("{at0} must be an object, got {value}"));
        return None;
    };
    let key = r.required_string(obj, "task_key", &at0)?;
    let at = format!("task {key:?}");
    if key.is_empty() || key.len() > 100 {
        r.problem(format!("{at0}.task_key must be 1 to 100 characters"));
    } else if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        r.problem(format!(
            "{at}: task_key may hold only letters, digits, '_' and '-'"
        ));
    }

    let mut depends_on = Vec::new();
    match obj.get("depends_on") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (j, item) in items.iter().enumerate() {
                let dat = format!("{at}.depends_on[{j}]");
                let Some(d) = item.as_object() else {
                    r.problem(format!("{dat} must be an object, got {item}"));
                    continue;
                };
                let Some(task_key) = r.required_string(d, "task_key", &dat) else {
                    continue;
                };
                let outcome = match r.string(d, "outcome", &dat).as_deref() {
                    None => None,
                    Some("true") => Some(true),
                    Some("false") => Some(false),
                    Some(other) => {
                        r.problem(format!(
                            "{dat}.outcome must be \"true\" or \"false\", got {other:?}"
                        ));
                        None
                    }
                };
                depends_on.push(Dependency { task_key, outcome });
            }
        }
        Some(other) => r.problem(format!("{at}.depends_on must be a list, got {other}")),
    }

    let run_if = match r.string(obj, "run_if", &at) {
        None => RunIf::AllSuccess,
        Some(s) => match RunIf::parse(&s) {
            Some(v) => v,
            None => {
                r.problem(format!(
                    "{at}.run_if {s:?} is not one of ALL_SUCCESS, AT_LEAST_ONE_SUCCESS, NONE_FAILED, ALL_DONE, AT_LEAST_ONE_FAILED, ALL_FAILED"
                ));
                RunIf::AllSuccess
            }
        },
    };

    // Exactly one task type.
    let types: Vec<&String> = obj.keys().filter(|k| k.ends_with("_task")).collect();
    let mut kind = None;
    if types.is_empty() {
        r.problem(format!(
            "{at} has no task type (one of {})",
            SUPPORTED.join(", ")
        ));
    } else if types.len() > 1 {
        let names: Vec<&str> = types.iter().map(|s| s.as_str()).collect();
        r.problem(format!(
            "{at} has {} task types ({}); a task has exactly one",
            names.len(),
            names.join(", ")
        ));
    } else {
        let t = types[0].as_str();
        if let Some((_, why)) = UNSUPPORTED.iter().find(|(name, _)| *name == t) {
            r.problem(format!("{at}: {t} is not supported locally: {why}"));
        } else if !SUPPORTED.contains(&t) {
            r.problem(format!(
                "{at}: unknown task type {t:?} (supported: {})",
                SUPPORTED.join(", ")
            ));
        } else {
            kind = read_kind(r, t, &obj[t], &at, git_source, locate);
        }
    }

    let max_retries = r.int(obj, "max_retries", &at, -1).unwrap_or(0);
    let min_retry_interval_millis =
        r.int(obj, "min_retry_interval_millis", &at, 0).unwrap_or(0) as u64;
    let retry_on_timeout = r.bool(obj, "retry_on_timeout", &at).unwrap_or(false);
    let timeout_seconds = r.int(obj, "timeout_seconds", &at, 0).unwrap_or(0) as u64;
    let disabled = r.bool(obj, "disabled", &at).unwrap_or(false);
    if let Some(TaskKind::Condition { .. }) = &kind
        && (max_retries != 0 || timeout_seconds != 0)
    {
        r.problem(format!(
            "{at}: a condition_task takes no max_retries or timeout_seconds"
        ));
    }
    Some(Task {
        key,
        depends_on,
        run_if,
        kind: kind?,
        max_retries,
        min_retry_interval_millis,
        retry_on_timeout,
        timeout_seconds,
        disabled,
    })
}

fn read_source(r: &mut Reader, t: &Map<String, Value>, at: &str, git_source: bool) -> Source {
    match r.string(t, "source", at).as_deref() {
        Some("GIT") => Source::Git,
        Some("WORKSPACE") => Source::Workspace,
        Some(other) => {
            r.problem(format!(
                "{at}.source must be GIT or WORKSPACE, got {other:?}"
            ));
            Source::Workspace
        }
        // The Jobs API: empty means GIT when the job has a git_source, else WORKSPACE.
        None if git_source => Source::Git,
        None => Source::Workspace,
    }
}

fn read_kind(
    r: &mut Reader,
    t: &str,
    value: &Value,
    at: &str,
    git_source: bool,
    locate: &Locate,
) -> Option<TaskKind> {
    let at = format!("{at}.{t}");
    let Some(obj) = value.as_object() else {
        r.problem(format!("{at} must be an object, got {value}"));
        return None;
    };
    match t {
        "notebook_task" => {
            let raw = r.required_string(obj, "notebook_path", &at)?;
            let source = read_source(r, obj, &at, git_source);
            let path = resolve_file(
                r,
                &raw,
                source,
                locate,
                &format!("{at}.notebook_path"),
                true,
            );
            let mut base_parameters = BTreeMap::new();
            match obj.get("base_parameters") {
                None | Some(Value::Null) => {}
                Some(Value::Object(m)) => {
                    for (k, v) in m {
                        if let Some(s) = r.scalar_text(v, &format!("{at}.base_parameters.{k}")) {
                            base_parameters.insert(k.clone(), s);
                        }
                    }
                }
                Some(other) => r.problem(format!(
                    "{at}.base_parameters must be an object of strings, got {other}"
                )),
            }
            Some(TaskKind::Notebook {
                path,
                base_parameters,
            })
        }
        "spark_python_task" => {
            let raw = r.required_string(obj, "python_file", &at)?;
            let source = read_source(r, obj, &at, git_source);
            let file = resolve_file(r, &raw, source, locate, &format!("{at}.python_file"), false);
            let mut parameters = Vec::new();
            match obj.get("parameters") {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for (j, v) in items.iter().enumerate() {
                        if let Some(s) = r.scalar_text(v, &format!("{at}.parameters[{j}]")) {
                            parameters.push(s);
                        }
                    }
                }
                Some(other) => r.problem(format!(
                    "{at}.parameters must be a list of strings, got {other}"
                )),
            }
            Some(TaskKind::Python { file, parameters })
        }
        "shell_task" => {
            let command = r.required_string(obj, "command", &at)?;
            if command.trim().is_empty() {
                r.problem(format!("{at}.command is empty"));
            }
            Some(TaskKind::Shell { command })
        }
        "condition_task" => {
            let op_raw = r.required_string(obj, "op", &at);
            let left = obj
                .get("left")
                .and_then(|v| r.scalar_text(v, &format!("{at}.left")));
            let right = obj
                .get("right")
                .and_then(|v| r.scalar_text(v, &format!("{at}.right")));
            if !obj.contains_key("left") {
                r.problem(format!("{at}.left is required"));
            }
            if !obj.contains_key("right") {
                r.problem(format!("{at}.right is required"));
            }
            let op = match op_raw {
                Some(s) => match ConditionOp::parse(&s) {
                    Some(op) => Some(op),
                    None => {
                        r.problem(format!(
                            "{at}.op {s:?} is not one of EQUAL_TO, NOT_EQUAL, GREATER_THAN, GREATER_THAN_OR_EQUAL, LESS_THAN, LESS_THAN_OR_EQUAL"
                        ));
                        None
                    }
                },
                None => None,
            };
            Some(TaskKind::Condition {
                op: op?,
                left: left?,
                right: right?,
            })
        }
        _ => None,
    }
}

impl Job {
    /// Read and validate a definition from JSON text.
    pub fn parse(text: &str, locate: &Locate) -> Result<Job, JobError> {
        let settings: Value = serde_json::from_str(text).map_err(|e| JobError {
            problems: vec![format!("not valid JSON: {e}")],
        })?;
        Job::from_value(settings, locate)
    }

    /// Read and validate a definition file.
    pub fn load(path: &Path, repo_root: Option<PathBuf>) -> Result<Job, JobError> {
        let text = std::fs::read_to_string(path).map_err(|e| JobError {
            problems: vec![format!("cannot read {}: {e}", path.display())],
        })?;
        let job_dir = path
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        Job::parse(&text, &Locate { job_dir, repo_root })
    }

    pub fn from_value(settings: Value, locate: &Locate) -> Result<Job, JobError> {
        let mut r = Reader {
            problems: Vec::new(),
        };
        let Some(root) = settings.as_object() else {
            return Err(JobError {
                problems: vec![format!(
                    "a job definition is a JSON object (JobSettings), got {}",
                    kind_of(&settings)
                )],
            });
        };
        let name = r
            .string(root, "name", "job")
            .unwrap_or_else(|| "Untitled".to_owned());
        let git_source = matches!(root.get("git_source"), Some(Value::Object(_)));
        let max_concurrent_runs = r.int(root, "max_concurrent_runs", "job", 1).unwrap_or(1);
        let max_concurrent_runs = u32::try_from(max_concurrent_runs.min(1000)).unwrap_or(1000);
        let timeout_seconds = r.int(root, "timeout_seconds", "job", 0).unwrap_or(0) as u64;

        let mut parameters: Vec<JobParameter> = Vec::new();
        match root.get("parameters") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("parameters[{i}]");
                    let Some(p) = item.as_object() else {
                        r.problem(format!(
                            "{at} must be an object {{name, default}}, got {item}"
                        ));
                        continue;
                    };
                    let Some(pname) = r.required_string(p, "name", &at) else {
                        continue;
                    };
                    if pname.is_empty()
                        || !pname
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                    {
                        r.problem(format!(
                            "{at}: parameter name {pname:?} may hold only letters, digits, '_', '-' and '.'"
                        ));
                    }
                    let default = match p.get("default") {
                        Some(v) => r.scalar_text(v, &format!("{at}.default")),
                        None => {
                            r.problem(format!("{at}.default is required"));
                            None
                        }
                    };
                    if parameters.iter().any(|q| q.name == pname) {
                        r.problem(format!("job parameter {pname:?} is declared twice"));
                    }
                    parameters.push(JobParameter {
                        name: pname,
                        default: default.unwrap_or_default(),
                    });
                }
            }
            Some(other) => r.problem(format!("parameters must be a list, got {other}")),
        }

        let mut tasks = Vec::new();
        match root.get("tasks") {
            Some(Value::Array(items)) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(t) = read_task(&mut r, i, item, git_source, locate) {
                        tasks.push(t);
                    }
                }
            }
            Some(Value::Array(_)) | None => r.problem("the job has no tasks".to_owned()),
            Some(other) => r.problem(format!("tasks must be a list, got {other}")),
        }

        let order = check_graph(&mut r, &tasks);
        if let Some(order) = &order {
            check_references(&mut r, &tasks, &parameters, order);
        }
        if !r.problems.is_empty() {
            return Err(JobError {
                problems: r.problems,
            });
        }
        Ok(Job {
            name,
            parameters,
            tasks,
            max_concurrent_runs,
            timeout_seconds,
            settings,
            base_dir: locate.job_dir.clone(),
            order: order.unwrap_or_default(),
        })
    }

    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.tasks.iter().position(|t| t.key == key)
    }

    /// Every task downstream of `roots` (transitively), the roots included.
    pub fn downstream_closure(&self, roots: &BTreeSet<usize>) -> BTreeSet<usize> {
        let mut out = roots.clone();
        for &i in &self.order {
            if self.tasks[i]
                .depends_on
                .iter()
                .any(|d| self.index_of(&d.task_key).is_some_and(|j| out.contains(&j)))
            {
                out.insert(i);
            }
        }
        out
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Keys unique, dependencies known, outcomes only on condition tasks, no cycle.
/// Returns a dependency order (Kahn's algorithm, ties in file order) when the graph is sound.
fn check_graph(r: &mut Reader, tasks: &[Task]) -> Option<Vec<usize>> {
    let before = r.problems.len();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, t) in tasks.iter().enumerate() {
        if index.insert(t.key.as_str(), i).is_some() {
            r.problem(format!(
                "task_key {:?} is used by more than one task",
                t.key
            ));
        }
    }
    for t in tasks {
        let mut seen = BTreeSet::new();
        for d in &t.depends_on {
            if !seen.insert(d.task_key.as_str()) {
                r.problem(format!(
                    "task {:?} lists dependency {:?} twice",
                    t.key, d.task_key
                ));
            }
            if d.task_key == t.key {
                r.problem(format!("task {:?} depends on itself", t.key));
                continue;
            }
            match index.get(d.task_key.as_str()) {
                None => r.problem(format!(
                    "task {:?} depends on {:?}, which is not a task of this job",
                    t.key, d.task_key
                )),
                Some(&j) => {
                    let is_condition = matches!(tasks[j].kind, TaskKind::Condition { .. });
                    if d.outcome.is_some() && !is_condition {
                        r.problem(format!(
                            "task {:?}: depends_on {:?} has an outcome, but only condition tasks have outcomes",
                            t.key, d.task_key
                        ));
                    }
                }
            }
        }
    }
    if r.problems.len() > before {
        return None;
    }
    // Kahn's algorithm; what is left over lies on or behind a cycle.
    let n = tasks.len();
    let mut indegree = vec![0usize; n];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, t) in tasks.iter().enumerate() {
        for d in &t.depends_on {
            let j = index[d.task_key.as_str()];
            indegree[i] += 1;
            children[j].push(i);
        }
    }
    let mut order = Vec::with_capacity(n);
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &c in &children[i] {
            indegree[c] -= 1;
            if indegree[c] == 0 {
                ready.insert(c);
            }
        }
    }
    if order.len() < n {
        let cycle = find_cycle(tasks, &index, &indegree);
        r.problem(format!("the tasks form a cycle: {}", cycle.join(" -> ")));
        return None;
    }
    Some(order)
}

/// One cycle among the tasks Kahn's algorithm could not order, as task keys, closed.
fn find_cycle(tasks: &[Task], index: &HashMap<&str, usize>, indegree: &[usize]) -> Vec<String> {
    // Walk dependencies from a leftover task; among leftovers every task has a leftover
    // dependency, so the walk must revisit a task, closing a cycle.
    let start = (0..tasks.len()).find(|&i| indegree[i] > 0).unwrap_or(0);
    let mut path = vec![start];
    let mut pos: HashMap<usize, usize> = HashMap::from([(start, 0)]);
    let mut cur = start;
    loop {
        let next = tasks[cur]
            .depends_on
            .iter()
            .map(|d| index[d.task_key.as_str()])
            .find(|&j| indegree[j] > 0);
        let Some(next) = next else {
            break;
        };
        if let Some(&p) = pos.get(&next) {
            let mut cycle: Vec<String> = path[p..].iter().map(|&i| tasks[i].key.clone()).collect();
            // Printed in run order: each task runs after the one before it.
            cycle.reverse();
            cycle.push(cycle[0].clone());
            return cycle;
        }
        pos.insert(next, path.len());
        path.push(next);
        cur = next;
    }
    path.iter().map(|&i| tasks[i].key.clone()).collect()
}

/// Every `{{...}}` a task holds must name a known reference; job parameters must be
/// declared; `tasks.<key>` must be an upstream task of the task that reads it (its
/// values exist only once it has run).
fn check_references(r: &mut Reader, tasks: &[Task], params: &[JobParameter], order: &[usize]) {
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.key.as_str(), i))
        .collect();
    // Ancestors of each task, computed in dependency order.
    let mut ancestors: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); tasks.len()];
    for &i in order {
        let mut acc = BTreeSet::new();
        for d in &tasks[i].depends_on {
            let j = index[d.task_key.as_str()];
            acc.insert(j);
            acc.extend(ancestors[j].iter().copied());
        }
        ancestors[i] = acc;
    }
    let declared: BTreeSet<&str> = params.iter().map(|p| p.name.as_str()).collect();
    for p in params {
        for reference in scan(r, &p.default, &format!("parameter {:?}", p.name)) {
            match reference {
                Reference::JobParameter(n) => r.problem(format!(
                    "parameter {:?}: a default cannot reference job parameter {n:?}",
                    p.name
                )),
                ref other if other.task_scoped() => r.problem(format!(
                    "parameter {:?}: {{{{{}}}}} names a task; job parameter defaults know only the job",
                    p.name,
                    other.describe()
                )),
                _ => {}
            }
        }
    }
    for (i, t) in tasks.iter().enumerate() {
        let at = format!("task {:?}", t.key);
        for field in task_strings(t) {
            for reference in scan(r, field, &at) {
                if let Reference::JobParameter(n) = &reference
                    && !declared.contains(n.as_str())
                {
                    r.problem(format!(
                        "{at}: {{{{job.parameters.{n}}}}} names a parameter the job does not declare"
                    ));
                }
                if let Some(other) = reference.upstream_task() {
                    match index.get(other) {
                        None => r.problem(format!(
                            "{at}: {{{{{}}}}} names task {other:?}, which is not a task of this job",
                            reference.describe()
                        )),
                        Some(j) if !ancestors[i].contains(j) => r.problem(format!(
                            "{at}: {{{{{}}}}} reads task {other:?}, which is not upstream of it (add it to depends_on)",
                            reference.describe()
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
    }
}

fn scan(r: &mut Reader, text: &str, at: &str) -> Vec<Reference> {
    match refs::references(text) {
        Ok(v) => v,
        Err(e) => {
            r.problem(format!("{at}: {e}"));
            Vec::new()
        }
    }
}

/// The task's fields that take dynamic value references.
pub fn task_strings(t: &Task) -> Vec<&str> {
    match &t.kind {
        TaskKind::Notebook {
            base_parameters, ..
        } => base_parameters.values().map(String::as_str).collect(),
        TaskKind::Python { parameters, .. } => parameters.iter().map(String::as_str).collect(),
        TaskKind::Shell { command } => vec![command.as_str()],
        TaskKind::Condition { left, right, .. } => vec![left.as_str(), right.as_str()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(tasks: &Value) -> Result<Job, JobError> {
        Job::from_value(
            json!({"name": "t", "tasks": tasks}),
            &Locate {
                job_dir: std::env::temp_dir(),
                repo_root: None,
            },
        )
    }

    fn sh(key: &str, deps: &[&str]) -> Value {
        let deps: Vec<Value> = deps.iter().map(|d| json!({"task_key": d})).collect();
        json!({"task_key": key, "depends_on": deps, "shell_task": {"command": "true"}})
    }

    #[test]
    fn order_follows_dependencies_and_file_order() {
        let job = parse(&json!([
            sh("report", &["train", "score"]),
            sh("ingest", &[]),
            sh("score", &["train"]),
            sh("train", &["ingest"]),
            sh("audit", &[]),
        ]))
        .unwrap();
        let keys: Vec<&str> = job
            .order
            .iter()
            .map(|&i| job.tasks[i].key.as_str())
            .collect();
        assert_eq!(keys, ["ingest", "train", "score", "report", "audit"]);
    }

    #[test]
    fn a_cycle_is_named_in_run_order() {
        let err = parse(&json!([
            sh("a", &["c"]),
            sh("b", &["a"]),
            sh("c", &["b"]),
            sh("d", &["a"])
        ]))
        .unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        let p = &err.problems[0];
        assert!(p.starts_with("the tasks form a cycle: "), "{p}");
        let cycle: Vec<&str> = p["the tasks form a cycle: ".len()..]
            .split(" -> ")
            .collect();
        assert_eq!(cycle.len(), 4);
        assert_eq!(cycle[0], cycle[3]);
        // Each task in the printed cycle depends on the one before it.
        let job_deps = |k: &str| -> Vec<&str> {
            match k {
                "a" => vec!["c"],
                "b" => vec!["a"],
                "c" => vec!["b"],
                _ => vec![],
            }
        };
        for w in cycle.windows(2) {
            assert!(job_deps(w[1]).contains(&w[0]), "{p}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = parse(&json!([
            sh("x", &["ghost"]),
            sh("x", &[]),
            {"task_key": "w", "python_wheel_task": {}},
            {"task_key": "bad key!", "shell_task": {"command": "true"}},
        ]))
        .unwrap_err();
        assert!(err.problems.len() >= 3, "{err}");
    }

    proptest::proptest! {
        /// Random DAGs (edges only towards earlier tasks) validate, in an order that
        /// respects every edge; one edge from the first task to the last closes a cycle.
        #[test]
        fn random_dags_order_and_back_edges_cycle(n in 2usize..12, edges in proptest::collection::vec((0usize..12, 0usize..12), 0..30)) {
            let mut deps: Vec<Vec<String>> = vec![Vec::new(); n];
            for (a, b) in edges {
                let (a, b) = (a % n, b % n);
                if a > b && !deps[a].contains(&format!("t{b}")) {
                    deps[a].push(format!("t{b}"));
                }
            }
            let tasks: Vec<Value> = (0..n)
                .map(|i| {
                    let d: Vec<&str> = deps[i].iter().map(String::as_str).collect();
                    sh(&format!("t{i}"), &d)
                })
                .collect();
            let job = parse(&Value::Array(tasks.clone())).unwrap();
            let pos: HashMap<&str, usize> =
                job.order.iter().enumerate().map(|(p, &i)| (job.tasks[i].key.as_str(), p)).collect();
            for t in &job.tasks {
                for d in &t.depends_on {
                    proptest::prop_assert!(pos[d.task_key.as_str()] < pos[t.key.as_str()]);
                }
            }
            // t0 -> ... -> t(n-1) chain plus t0 depending on t(n-1): always a cycle.
            let mut cyclic = tasks;
            for (i, t) in cyclic.iter_mut().enumerate() {
                let mut d: Vec<Value> = t["depends_on"].as_array().unwrap().clone();
                let want = if i == 0 { format!("t{}", n - 1) } else { format!("t{}", i - 1) };
                if !d.iter().any(|x| x["task_key"] == want.as_str()) {
                    d.push(json!({"task_key": want}));
                }
                t["depends_on"] = Value::Array(d);
            }
            let err = parse(&Value::Array(cyclic)).unwrap_err();
            proptest::prop_assert!(err.problems.iter().any(|p| p.contains("cycle")), "{}", err);
        }
    }
}
