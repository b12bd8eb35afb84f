//! The run record (JSON in the shape of the Jobs API's `Run`: `run_id`, `state`,
//! `tasks[]` with `state.result_state`, `start_time`, `end_time`, `attempt_number`,
//! `repair_history`), read back by `batuta repair`, and the readable summary with a
//! timeline that closes `batuta run`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::runner::{Attempt, Run, TaskRun, log_tail};
use crate::semantics::ResultState;

/// Bumped when the record's layout changes incompatibly.
pub const RECORD_VERSION: u64 = 1;

fn state(result: Option<ResultState>, message: &str) -> Value {
    json!({
        "life_cycle_state": if result.is_some() { "TERMINATED" } else { "PENDING" },
        "result_state": result.map(ResultState::as_str),
        "state_message": message,
    })
}

fn attempt_json(a: &Attempt) -> Value {
    json!({
        "attempt_number": a.number - 1,
        "start_time": a.start_ms,
        "end_time": a.end_ms,
        "result_state": a.result.as_str(),
        "exit_code": a.exit_code,
        "state_message": a.message,
        "log": a.log.as_ref().map(|p| p.display().to_string()),
    })
}

fn task_json(t: &TaskRun) -> Value {
    let mut m = Map::new();
    m.insert("task_key".into(), json!(t.key));
    m.insert("run_id".into(), json!(t.run_id));
    m.insert("state".into(), state(t.result, &t.message));
    m.insert("start_time".into(), json!(t.start_ms));
    m.insert("end_time".into(), json!(t.end_ms));
    m.insert(
        "execution_duration".into(),
        json!(match (t.start_ms, t.end_ms) {
            (Some(s), Some(e)) => e - s,
            _ => 0,
        }),
    );
    // The Jobs API numbers attempts from 0.
    m.insert(
        "attempt_number".into(),
        json!(t.attempts.len().saturating_sub(1)),
    );
    m.insert(
        "attempts".into(),
        Value::Array(t.attempts.iter().map(attempt_json).collect()),
    );
    m.insert("task_values".into(), Value::Object(t.values.clone()));
    if let Some(o) = t.outcome {
        let (l, r) = t.condition.clone().unwrap_or_default();
        m.insert(
            "condition_task".into(),
            json!({"left": l, "right": r, "outcome": o.to_string()}),
        );
    }
    if let Some(out) = &t.notebook_output {
        m.insert("notebook_output".into(), json!({"result": out}));
    }
    if let Some(p) = &t.resolved {
        m.insert("resolved_parameters".into(), p.clone());
    }
    Value::Object(m)
}

/// The record as JSON.
pub fn to_json(run: &Run) -> Value {
    json!({
        "batuta_record": RECORD_VERSION,
        "run_id": run.run_id,
        "job_id": run.job_id,
        "run_name": run.job_name,
        "job_file": run.job_file.as_ref().map(|p| p.display().to_string()),
        "repo_root": run.repo_root.as_ref().map(|p| p.display().to_string()),
        "run_dir": run.run_dir.display().to_string(),
        "job_parameters": run.parameters.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "start_time": run.start_ms,
        "end_time": run.end_ms,
        "run_duration": run.end_ms - run.start_ms,
        "state": state(Some(run.result), &run.message),
        "repair_count": run.repair_count,
        "repair_history": run.history.iter().enumerate().map(|(i, (s, e, r, keys))| json!({
            "type": if i == 0 { "ORIGINAL" } else { "REPAIR" },
            "start_time": s,
            "end_time": e,
            "state": {"result_state": r.as_str()},
            "task_keys": keys,
        })).collect::<Vec<_>>(),
        "settings": run.settings,
        "tasks": run.tasks.iter().map(task_json).collect::<Vec<_>>(),
    })
}

/// Write the record atomically (a reader never sees half a file).
pub fn write(run: &Run, path: &Path) -> Result<(), String> {
    let text = serde_json::to_string_pretty(&to_json(run)).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("json.tmp");
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(&tmp, text + "\n")
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn field<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a Value, String> {
    v.get(key)
        .ok_or_else(|| format!("run record: {at} has no {key:?}"))
}

fn int(v: &Value, key: &str, at: &str) -> Result<i64, String> {
    field(v, key, at)?
        .as_i64()
        .ok_or_else(|| format!("run record: {at}.{key} must be an integer"))
}

fn opt_int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn result_of(v: &Value, at: &str) -> Result<Option<ResultState>, String> {
    match v.pointer("/state/result_state") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => ResultState::parse(s)
            .map(Some)
            .ok_or_else(|| format!("run record: {at} has an unknown result_state {s:?}")),
        Some(other) => Err(format!(
            "run record: {at} result_state must be a string, got {other}"
        )),
    }
}

/// Read a record back (for `batuta repair`), checking what repair relies on.
pub fn from_json(v: &Value) -> Result<Run, String> {
    if v.get("batuta_record").and_then(Value::as_u64) != Some(RECORD_VERSION) {
        return Err(format!(
            "not a batuta run record (version {RECORD_VERSION}): no \"batuta_record\": {RECORD_VERSION}"
        ));
    }
    let mut parameters = BTreeMap::new();
    for p in field(v, "job_parameters", "the run")?
        .as_array()
        .ok_or("run record: job_parameters must be a list")?
    {
        parameters.insert(text(p, "name"), text(p, "value"));
    }
    let mut tasks = Vec::new();
    for (i, t) in field(v, "tasks", "the run")?
        .as_array()
        .ok_or("run record: tasks must be a list")?
        .iter()
        .enumerate()
    {
        let at = format!("tasks[{i}]");
        let mut attempts = Vec::new();
        for a in t
            .get("attempts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let result = a
                .get("result_state")
                .and_then(Value::as_str)
                .and_then(ResultState::parse)
                .ok_or_else(|| format!("run record: {at} has an attempt without a result_state"))?;
            attempts.push(Attempt {
                number: u32::try_from(int(a, "attempt_number", &at)? + 1).unwrap_or(1),
                start_ms: int(a, "start_time", &at)?,
                end_ms: int(a, "end_time", &at)?,
                result,
                exit_code: opt_int(a, "exit_code").and_then(|c| i32::try_from(c).ok()),
                message: text(a, "state_message"),
                log: a.get("log").and_then(Value::as_str).map(PathBuf::from),
            });
        }
        let condition = t.get("condition_task");
        tasks.push(TaskRun {
            key: text(t, "task_key"),
            run_id: u64::try_from(int(t, "run_id", &at)?).unwrap_or(0),
            result: result_of(t, &at)?,
            message: t
                .pointer("/state/state_message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            start_ms: opt_int(t, "start_time"),
            end_ms: opt_int(t, "end_time"),
            attempts,
            values: t
                .get("task_values")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            outcome: condition
                .and_then(|c| c.get("outcome"))
                .and_then(Value::as_str)
                .map(|s| s == "true"),
            condition: condition.map(|c| (text(c, "left"), text(c, "right"))),
            notebook_output: t
                .pointer("/notebook_output/result")
                .and_then(Value::as_str)
                .map(str::to_owned),
            resolved: t.get("resolved_parameters").cloned(),
        });
    }
    let mut history = Vec::new();
    for h in v
        .get("repair_history")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        history.push((
            opt_int(h, "start_time").unwrap_or(0),
            opt_int(h, "end_time").unwrap_or(0),
            h.pointer("/state/result_state")
                .and_then(Value::as_str)
                .and_then(ResultState::parse)
                .unwrap_or(ResultState::Failed),
            h.get("task_keys")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        ));
    }
    Ok(Run {
        run_id: u64::try_from(int(v, "run_id", "the run")?).unwrap_or(0),
        job_id: u64::try_from(int(v, "job_id", "the run")?).unwrap_or(0),
        job_name: text(v, "run_name"),
        job_file: v.get("job_file").and_then(Value::as_str).map(PathBuf::from),
        repo_root: v
            .get("repo_root")
            .and_then(Value::as_str)
            .map(PathBuf::from),
        run_dir: PathBuf::from(text(v, "run_dir")),
        parameters,
        start_ms: int(v, "start_time", "the run")?,
        end_ms: int(v, "end_time", "the run")?,
        result: result_of(v, "the run")?.unwrap_or(ResultState::Failed),
        message: v
            .pointer("/state/state_message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        repair_count: u32::try_from(opt_int(v, "repair_count").unwrap_or(0)).unwrap_or(0),
        history,
        settings: field(v, "settings", "the run")?.clone(),
        tasks,
    })
}

fn secs(ms: i64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// A table of the tasks with a timeline bar each, then the reasons of what failed.
pub fn summary(run: &Run) -> String {
    const WIDTH: usize = 40;
    let mut out = String::new();
    let total = (run.end_ms - run.start_ms).max(1);
    let pass = if run.repair_count > 0 {
        format!(" (repair {})", run.repair_count)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "job {:?} run {}{pass}: {} in {}",
        run.job_name,
        run.run_id,
        run.result,
        secs(run.end_ms - run.start_ms)
    );
    let key_w = run
        .tasks
        .iter()
        .map(|t| t.key.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{:<key_w$}  {:<17}  {:>5}  {:>7}  {:>8}  timeline 0 .. {}",
        "task",
        "result",
        "tries",
        "start",
        "duration",
        secs(total)
    );
    for t in &run.tasks {
        let result = t.result.map_or("PENDING", ResultState::as_str);
        let (start, dur) = match (t.start_ms, t.end_ms) {
            (Some(s), Some(e)) => (s - run.start_ms, e - s),
            _ => (0, 0),
        };
        let mut bar = vec![' '; WIDTH];
        if !t.attempts.is_empty() {
            for a in &t.attempts {
                let from = ((a.start_ms - run.start_ms).max(0) as f64 / total as f64 * WIDTH as f64)
                    as usize;
                let to = ((a.end_ms - run.start_ms).max(0) as f64 / total as f64 * WIDTH as f64)
                    .ceil() as usize;
                let mark = if a.result == ResultState::Success {
                    '#'
                } else {
                    'x'
                };
                // At least one cell per attempt, never past the bar's end.
                let from = from.min(WIDTH - 1);
                let to = to.clamp(from + 1, WIDTH);
                for c in &mut bar[from..to] {
                    *c = mark;
                }
            }
        } else if t.result.is_some() {
            let at = ((start.max(0) as f64 / total as f64) * WIDTH as f64) as usize;
            bar[at.min(WIDTH - 1)] = '.';
        }
        let bar: String = bar.into_iter().collect();
        let _ = writeln!(
            out,
            "{:<key_w$}  {:<17}  {:>5}  {:>7}  {:>8}  |{bar}|",
            t.key,
            result,
            t.attempts.len(),
            secs(start),
            secs(dur)
        );
    }
    let _ = writeln!(
        out,
        "('#' a successful attempt, 'x' a failed one, '.' a skipped task)"
    );
    let bad: Vec<&TaskRun> = run
        .tasks
        .iter()
        .filter(|t| {
            matches!(
                t.result,
                Some(ResultState::Failed | ResultState::TimedOut | ResultState::Canceled)
            )
        })
        .collect();
    for t in bad {
        let _ = writeln!(
            out,
            "\n{} {}: {}",
            t.key,
            t.result.map_or("", ResultState::as_str),
            t.message
        );
        if let Some(log) = t.attempts.last().and_then(|a| a.log.as_ref()) {
            let tail = log_tail(log, 12);
            let _ = writeln!(out, "  log {}", log.display());
            for line in tail.lines() {
                let _ = writeln!(out, "  | {line}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn sample() -> Run {
        let attempt = |n: u32, s: i64, e: i64, r: ResultState| Attempt {
            number: n,
            start_ms: s,
            end_ms: e,
            result: r,
            exit_code: Some(if r == ResultState::Success { 0 } else { 1 }),
            message: "ü".into(),
            log: Some(PathBuf::from("/nonexistent/log")),
        };
        let mut t1 = TaskRun {
            key: "a".into(),
            run_id: 11,
            result: Some(ResultState::Success),
            message: String::new(),
            start_ms: Some(1000),
            end_ms: Some(2000),
            attempts: vec![
                attempt(1, 1000, 1500, ResultState::Failed),
                attempt(2, 1600, 2000, ResultState::Success),
            ],
            values: serde_json::from_str(r#"{"n": 1, "s": "é"}"#).unwrap(),
            outcome: None,
            condition: None,
            notebook_output: Some("{\"x\": 1}".into()),
            resolved: Some(json!(["--x"])),
        };
        let mut t2 = t1.clone();
        t2.key = "cond".into();
        t2.run_id = 12;
        // Starts and ends exactly at the run's end: the timeline's last cell.
        t2.start_ms = Some(2000);
        t2.end_ms = Some(2000);
        t2.attempts = vec![attempt(1, 2000, 2000, ResultState::Success)];
        t2.outcome = Some(false);
        t2.condition = Some(("1".into(), "2".into()));
        t2.notebook_output = None;
        t1.message = "kept".into();
        let mut t3 = TaskRun {
            key: "skipped".into(),
            run_id: 13,
            result: Some(ResultState::UpstreamFailed),
            message: "run_if ALL_SUCCESS not met".into(),
            start_ms: Some(2000),
            end_ms: Some(2000),
            attempts: Vec::new(),
            values: Map::new(),
            outcome: None,
            condition: None,
            notebook_output: None,
            resolved: None,
        };
        t3.start_ms = Some(2000);
        Run {
            run_id: 10,
            job_id: 5,
            job_name: "j".into(),
            job_file: Some("/x/job.json".into()),
            repo_root: None,
            run_dir: "/x/run".into(),
            parameters: BTreeMap::from([("p".into(), "v".into())]),
            start_ms: 1000,
            end_ms: 2000,
            result: ResultState::Failed,
            message: "not successful: skipped".into(),
            repair_count: 0,
            history: vec![(1000, 2000, ResultState::Failed, vec!["a".into()])],
            settings: json!({"name": "j"}),
            tasks: vec![t1, t2, t3],
        }
    }

    #[test]
    fn record_round_trips() {
        let run = sample();
        let back = from_json(&to_json(&run)).unwrap();
        assert_eq!(back, run);
    }

    #[test]
    fn summary_draws_every_task_within_the_bar() {
        let text = summary(&sample());
        let bars: Vec<&str> = text.lines().filter(|l| l.ends_with('|')).collect();
        assert_eq!(bars.len(), 3, "{text}");
        for b in &bars {
            let inner = &b[b.find('|').unwrap() + 1..b.len() - 1];
            assert_eq!(inner.chars().count(), 40, "{b}");
        }
        assert!(bars[0].contains('x') && bars[0].contains('#'), "{text}");
        assert!(bars[1].trim_end_matches('|').ends_with('#'), "{text}");
        assert!(bars[2].contains('.'), "{text}");
    }

    #[test]
    fn foreign_json_is_refused() {
        assert!(from_json(&json!({"run_id": 1})).is_err());
        let mut v = to_json(&sample());
        v["tasks"][0]["state"]["result_state"] = json!("MAYBE");
        assert!(from_json(&v).unwrap_err().contains("MAYBE"));
    }
}
