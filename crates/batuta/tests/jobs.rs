//! Real jobs, real processes: shell and Python tasks run by the scheduler and by the
//! `batuta` binary, checked through their side effects and the run record.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use batuta::runner::{self, Run, Settings};
use batuta::{Job, Locate, ResultState};
use serde_json::{Value, json};

fn job(dir: &Path, def: Value) -> Job {
    Job::from_value(
        def,
        &Locate {
            job_dir: dir.to_path_buf(),
            repo_root: None,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn settings(dir: &Path) -> Settings {
    let mut s = Settings::new(dir.join("run"));
    s.cwd = dir.to_path_buf();
    s.kill_grace = Duration::from_millis(500);
    s
}

fn result(run: &Run, key: &str) -> ResultState {
    run.tasks
        .iter()
        .find(|t| t.key == key)
        .and_then(|t| t.result)
        .unwrap_or_else(|| panic!("no result for {key}"))
}

fn task<'a>(run: &'a Run, key: &str) -> &'a runner::TaskRun {
    run.tasks.iter().find(|t| t.key == key).unwrap()
}

fn sh(key: &str, command: &str) -> Value {
    json!({"task_key": key, "shell_task": {"command": command}})
}

/// A process that no longer runs (gone, or a zombie awaiting its reaper).
fn dead(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat[stat.rfind(')').unwrap() + 1..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            state == "Z" || state == "X"
        }
        Err(_) => true,
    }
}

fn wait_dead(pid: i32) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if dead(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn read_pid(path: &Path) -> i32 {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = fs::read_to_string(path)
            && let Ok(p) = s.trim().parse()
        {
            return p;
        }
        assert!(Instant::now() < until, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn task_values_flow_into_a_condition_and_select_a_branch() {
    let dir = tempfile::tempdir().unwrap();
    let def = json!({
        "name": "branching",
        "parameters": [{"name": "threshold", "default": "10"}],
        "tasks": [
            sh("produce", r#"printf '{"rows": 42, "label": "é ok"}' > "$COURSEKIT_TASK_VALUES_DIR/$COURSEKIT_TASK_KEY.json""#),
            {"task_key": "check", "depends_on": [{"task_key": "produce"}],
             "condition_task": {"op": "GREATER_THAN", "left": "{{tasks.produce.values.rows}}",
                                "right": "{{job.parameters.threshold}}"}},
            {"task_key": "big", "depends_on": [{"task_key": "check", "outcome": "true"}, {"task_key": "produce"}],
             "shell_task": {"command": "echo '{{tasks.produce.values.rows}} {{tasks.produce.values.label}} {{task.name}}' > big.txt"}},
            {"task_key": "small", "depends_on": [{"task_key": "check", "outcome": "false"}],
             "shell_task": {"command": "echo small > small.txt"}},
            {"task_key": "after_small", "depends_on": [{"task_key": "small"}],
             "shell_task": {"command": "echo after > after.txt"}},
        ]
    });
    let j = job(dir.path(), def.clone());
    let run = runner::run(&j, &settings(dir.path()), None).unwrap();
    assert_eq!(run.result, ResultState::Success, "{run:#?}");
    assert_eq!(task(&run, "check").outcome, Some(true));
    assert_eq!(
        task(&run, "check").condition,
        Some(("42".into(), "10".into()))
    );
    assert_eq!(result(&run, "big"), ResultState::Success);
    assert_eq!(result(&run, "small"), ResultState::Excluded);
    // Downstream of an excluded task is excluded too (all its dependencies are).
    assert_eq!(result(&run, "after_small"), ResultState::Excluded);
    assert_eq!(
        fs::read_to_string(dir.path().join("big.txt")).unwrap(),
        "42 é ok big\n"
    );
    assert!(!dir.path().join("small.txt").exists());
    assert_eq!(task(&run, "produce").values["rows"], json!(42));

    // The same job with a higher threshold takes the other branch.
    let dir2 = tempfile::tempdir().unwrap();
    let j = job(dir2.path(), def);
    let mut s = settings(dir2.path());
    s.params = BTreeMap::from([("threshold".to_owned(), "100".to_owned())]);
    let run = runner::run(&j, &s, None).unwrap();
    assert_eq!(task(&run, "check").outcome, Some(false));
    assert_eq!(result(&run, "big"), ResultState::Excluded);
    assert_eq!(result(&run, "small"), ResultState::Success);
    assert_eq!(result(&run, "after_small"), ResultState::Success);
    assert!(dir2.path().join("after.txt").exists());
}

#[test]
fn a_missing_task_value_fails_the_reading_task_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let j = job(
        dir.path(),
        json!({"name": "missing", "tasks": [
            sh("a", "true"),
            {"task_key": "b", "depends_on": [{"task_key": "a"}],
             "shell_task": {"command": "echo {{tasks.a.values.nope}}"}},
        ]}),
    );
    let run = runner::run(&j, &settings(dir.path()), None).unwrap();
    assert_eq!(result(&run, "b"), ResultState::Failed);
    assert!(
        task(&run, "b").message.contains("set no value \"nope\""),
        "{}",
        task(&run, "b").message
    );
    assert_eq!(run.result, ResultState::Failed);
}

#[test]
fn timeout_kills_the_whole_process_tree() {
    let dir = tempfile::tempdir().unwrap();
    // A child in the task's group, and a grandchild that escaped into its own session.
    let cmd = "sleep 300 & echo $! > child.pid; setsid sleep 300 & echo $! > escaped.pid; wait";
    let j = job(
        dir.path(),
        json!({"name": "timeout", "tasks": [
            {"task_key": "slow", "timeout_seconds": 1, "max_retries": 3,
             "shell_task": {"command": cmd}},
            {"task_key": "cleanup", "depends_on": [{"task_key": "slow"}], "run_if": "ALL_DONE",
             "shell_task": {"command": "echo cleaned > cleanup.txt"}},
        ]}),
    );
    let started = Instant::now();
    let run = runner::run(&j, &settings(dir.path()), None).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(result(&run, "slow"), ResultState::TimedOut);
    // retry_on_timeout is false by default: one attempt only.
    assert_eq!(task(&run, "slow").attempts.len(), 1);
    assert_eq!(result(&run, "cleanup"), ResultState::Success);
    // The leaf succeeded, an inner task did not.
    assert_eq!(run.result, ResultState::SuccessWithFailures);
    for f in ["child.pid", "escaped.pid"] {
        let pid = read_pid(&dir.path().join(f));
        assert!(wait_dead(pid), "{f} ({pid}) survived the timeout");
    }
}

#[test]
fn retry_on_timeout_retries() {
    let dir = tempfile::tempdir().unwrap();
    let j = job(
        dir.path(),
        json!({"name": "retry-timeout", "tasks": [
            {"task_key": "t", "timeout_seconds": 1, "max_retries": 1, "retry_on_timeout": true,
             "shell_task": {"command": "if [ -f once ]; then exit 0; fi; touch once; sleep 30"}},
        ]}),
    );
    let run = runner::run(&j, &settings(dir.path()), None).unwrap();
    let t = task(&run, "t");
    assert_eq!(t.result, Some(ResultState::Success));
    let results: Vec<ResultState> = t.attempts.iter().map(|a| a.result).collect();
    assert_eq!(results, vec![ResultState::TimedOut, ResultState::Success]);
}

#[test]
fn a_retry_succeeds_on_the_second_attempt_after_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let j = job(
        dir.path(),
        json!({"name": "retry", "tasks": [
            {"task_key": "flaky", "max_retries": 3, "min_retry_interval_millis": 400,
             "shell_task": {"command": "echo run >> runs.txt; if [ -f marker ]; then exit 0; fi; touch marker; echo boom >&2; exit 7"}},
        ]}),
    );
    let run = runner::run(&j, &settings(dir.path()), None).unwrap();
    let t = task(&run, "flaky");
    assert_eq!(t.result, Some(ResultState::Success));
    assert_eq!(t.attempts.len(), 2);
    assert_eq!(t.attempts[0].result, ResultState::Failed);
    assert_eq!(t.attempts[0].exit_code, Some(7));
    assert_eq!(t.attempts[0].message, "exit status 7");
    // Databricks measures the interval from the start of the failed attempt.
    assert!(t.attempts[1].start_ms - t.attempts[0].start_ms >= 400);
    assert_eq!(
        fs::read_to_string(dir.path().join("runs.txt")).unwrap(),
        "run\nrun\n"
    );
    let log = fs::read_to_string(t.attempts[0].log.as_ref().unwrap()).unwrap();
    assert!(log.contains("boom"));
}

#[test]
fn retries_give_up_after_max_retries_and_backoff_grows() {
    let dir = tempfile::tempdir().unwrap();
    let j = job(
        dir.path(),
        json!({"name": "giveup", "tasks": [
            {"task_key": "bad", "max_retries": 2, "min_retry_interval_millis": 100,
             "shell_task": {"command": "exit 1"}},
        ]}),
    );
    let mut s = settings(dir.path());
    s.retry_backoff = 3.0;
    let run = runner::run(&j, &s, None).unwrap();
    let t = task(&run, "bad");
    assert_eq!(t.result, Some(ResultState::Failed));
    assert_eq!(t.attempts.len(), 3);
    // 100 ms, then 300 ms.
    assert!(t.attempts[1].start_ms - t.attempts[0].start_ms >= 100);
    assert!(t.attempts[2].start_ms - t.attempts[1].start_ms >= 300);
}

#[test]
fn a_failing_task_with_run_if_dependants() {
    let dir = tempfile::tempdir().unwrap();
    let j = job(
        dir.path(),
        json!({"name": "run-if", "tasks": [
            sh("ok", "true"),
            sh("fail", "exit 3"),
            {"task_key": "all_done", "depends_on": [{"task_key": "fail"}], "run_if": "ALL_DONE",
             "shell_task": {"command": "touch all_done"}},
            {"task_key": "none_failed", "depends_on": [{"task_key": "fail"}, {"task_key": "ok"}],
             "run_if": "NONE_FAILED", "shell_task": {"command": "touch none_failed"}},
            {"task_key": "default", "depends_on": [{"task_key": "fail"}],
             "shell_task": {"command": "touch default"}},
            // Skipped for a failure upstream, not failed itself: NONE_FAILED runs.
            {"task_key": "tolerant", "depends_on": [{"task_key": "default"}, {"task_key": "ok"}],
             "run_if": "NONE_FAILED", "shell_task": {"command": "touch tolerant"}},
            {"task_key": "on_failure", "depends_on": [{"task_key": "fail"}, {"task_key": "ok"}],
             "run_if": "AT_LEAST_ONE_FAILED", "shell_task": {"command": "touch on_failure"}},
            {"task_key": "all_failed", "depends_on": [{"task_key": "fail"}, {"task_key": "ok"}],
             "run_if": "ALL_FAILED", "shell_task": {"command": "touch all_failed"}},
        ]}),
    );
    let run = runner::run(&j, &settings(dir.path()), None).unwrap();
    let want = [
        ("ok", ResultState::Success),
        ("fail", ResultState::Failed),
        ("all_done", ResultState::Success),
        ("none_failed", ResultState::UpstreamFailed),
        ("default", ResultState::UpstreamFailed),
        ("tolerant", ResultState::Success),
        ("on_failure", ResultState::Success),
        ("all_failed", ResultState::Excluded),
    ];
    for (k, r) in want {
        assert_eq!(result(&run, k), r, "{k}");
        let ran = dir.path().join(k).exists();
        assert_eq!(
            ran,
            r == ResultState::Success && k != "ok",
            "{k} ran: {ran}"
        );
    }
    // Leaf none_failed was skipped for a failure: the run failed.
    assert_eq!(run.result, ResultState::Failed);
    // A skipped task never started a process.
    assert!(task(&run, "default").attempts.is_empty());
}

#[test]
fn parallelism_bounds_running_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let tasks: Vec<Value> = (0..5).map(|i| sh(&format!("t{i}"), "sleep 0.4")).collect();
    let j = job(dir.path(), json!({"name": "wide", "tasks": tasks}));
    for parallelism in [1usize, 2, 5] {
        let mut s = settings(dir.path());
        s.parallelism = parallelism;
        s.run_dir = dir.path().join(format!("run{parallelism}"));
        let run = runner::run(&j, &s, None).unwrap();
        let spans: Vec<(i64, i64)> = run
            .tasks
            .iter()
            .map(|t| (t.attempts[0].start_ms, t.attempts[0].end_ms))
            .collect();
        let most = spans
            .iter()
            .map(|&(s0, _)| {
                spans
                    .iter()
                    .filter(|&&(s1, e1)| s1 <= s0 && s0 < e1)
                    .count()
            })
            .max()
            .unwrap();
        assert!(
            most <= parallelism,
            "{most} ran at once with parallelism {parallelism}"
        );
        if parallelism == 5 {
            assert!(most >= 2, "tasks did not overlap at all with parallelism 5");
        }
    }
}

#[test]
fn python_tasks_get_parameters_with_references() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("script.py"),
        "import json, os, sys\njson.dump({'argv': sys.argv[1:], 'key': os.environ['COURSEKIT_TASK_KEY']}, open('out.json', 'w'))\n",
    )
    .unwrap();
    let j = job(
        dir.path(),
        json!({"name": "py", "parameters": [{"name": "env", "default": "dev"}], "tasks": [
            {"task_key": "script", "spark_python_task": {"python_file": "script.py",
             "parameters": ["--env", "{{job.parameters.env}}", "{{task.name}}", "{{job.run_id}}", "{{ not a ref }}"]}},
        ]}),
    );
    let run = runner::run(&j, &settings(dir.path()), None).unwrap();
    assert_eq!(run.result, ResultState::Success, "{run:#?}");
    let out: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("out.json")).unwrap()).unwrap();
    assert_eq!(
        out["argv"],
        json!([
            "--env",
            "dev",
            "script",
            run.run_id.to_string(),
            "{{ not a ref }}"
        ])
    );
    assert_eq!(out["key"], "script");
}

fn batuta() -> Command {
    Command::new(env!("CARGO_BIN_EXE_batuta"))
}

fn write_job(dir: &Path, def: &Value) -> PathBuf {
    let p = dir.join("job.json");
    fs::write(&p, serde_json::to_string_pretty(def).unwrap()).unwrap();
    p
}

#[test]
fn invalid_definitions_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let def = json!({"name": "bad", "tasks": [
        sh("side_effect", "touch ran"),
        {"task_key": "a", "depends_on": [{"task_key": "c"}], "shell_task": {"command": "true"}},
        {"task_key": "b", "depends_on": [{"task_key": "a"}], "shell_task": {"command": "true"}},
        {"task_key": "c", "depends_on": [{"task_key": "b"}], "shell_task": {"command": "true"}},
    ]});
    let out = batuta()
        .arg("run")
        .arg(write_job(dir.path(), &def))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cycle"), "{err}");
    assert!(
        err.contains("a -> b -> c -> a")
            || err.contains("b -> c -> a -> b")
            || err.contains("c -> a -> b -> c"),
        "{err}"
    );
    assert!(!dir.path().join("ran").exists());

    let cases = [
        (
            json!([sh("x", "true"), sh("x", "true")]),
            "used by more than one task",
        ),
        (
            json!([{"task_key": "x", "depends_on": [{"task_key": "ghost"}], "shell_task": {"command": "true"}}]),
            "depends on \"ghost\", which is not a task",
        ),
        (
            json!([{"task_key": "x", "sql_task": {}}]),
            "sql_task is not supported locally",
        ),
        (
            json!([{"task_key": "w", "python_wheel_task": {"package_name": "p", "entry_point": "e"}}]),
            "python_wheel_task is not supported locally",
        ),
        (
            json!([{"task_key": "x", "teleport_task": {}}]),
            "unknown task type \"teleport_task\"",
        ),
        (json!([{"task_key": "x"}]), "has no task type"),
        (
            json!([{"task_key": "x", "shell_task": {"command": "echo {{job.naem}}"}}]),
            "not a dynamic value reference",
        ),
        (
            json!([{"task_key": "x", "shell_task": {"command": "echo {{job.parameters.nope}}"}}]),
            "does not declare",
        ),
        (
            json!([sh("a", "true"), {"task_key": "b", "shell_task": {"command": "echo {{tasks.a.values.v}}"}}]),
            "not upstream of it",
        ),
        (
            json!([sh("a", "true"), {"task_key": "b", "depends_on": [{"task_key": "a", "outcome": "true"}], "shell_task": {"command": "true"}}]),
            "only condition tasks have outcomes",
        ),
        (
            json!([{"task_key": "x", "run_if": "SOMETIMES", "shell_task": {"command": "true"}}]),
            "run_if \"SOMETIMES\"",
        ),
        (
            json!([{"task_key": "c", "condition_task": {"op": "ROUGHLY", "left": "1", "right": "2"}}]),
            "op \"ROUGHLY\"",
        ),
        (
            json!([{"task_key": "n", "notebook_task": {"notebook_path": "missing/nb"}}]),
            "not found",
        ),
        (json!([]), "no tasks"),
    ];
    for (tasks, want) in cases {
        let def = json!({"name": "bad", "tasks": tasks});
        let out = batuta()
            .arg("validate")
            .arg(write_job(dir.path(), &def))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{want}: {err}");
        assert!(err.contains(want), "expected {want:?} in {err}");
    }
    // Not JSON, not an object.
    fs::write(dir.path().join("job.json"), "{\"tasks\": [").unwrap();
    let out = batuta()
        .arg("validate")
        .arg(dir.path().join("job.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));
    // Unknown --param.
    let def = json!({"name": "p", "parameters": [{"name": "a", "default": "1"}], "tasks": [sh("x", "true")]});
    let out = batuta()
        .args(["run", "--param", "b=2"])
        .arg(write_job(dir.path(), &def))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("declares no parameter \"b\""));
}

#[test]
fn repair_reruns_failed_tasks_and_their_dependants() {
    let dir = tempfile::tempdir().unwrap();
    let def = json!({"name": "repairable", "tasks": [
        sh("extract", "echo x >> extract.count; printf '{\"n\": 5}' > \"$COURSEKIT_TASK_VALUES_DIR/extract.json\""),
        sh("other", "echo x >> other.count"),
        {"task_key": "transform", "depends_on": [{"task_key": "extract"}],
         "shell_task": {"command": "echo x >> transform.count; test -f fixed"}},
        {"task_key": "load", "depends_on": [{"task_key": "transform"}],
         "shell_task": {"command": "echo {{tasks.extract.values.n}} >> load.txt"}},
    ]});
    let job_file = write_job(dir.path(), &def);
    let record = dir.path().join("record.json");
    let out = batuta()
        .args(["run", "--quiet", "--record"])
        .arg(&record)
        .arg(&job_file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("transform") && stdout.contains("FAILED"),
        "{stdout}"
    );
    let rec: Value = serde_json::from_str(&fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(rec["state"]["result_state"], "FAILED");
    let states: BTreeMap<String, String> = rec["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["task_key"].as_str().unwrap().to_owned(),
                t["state"]["result_state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(states["transform"], "FAILED");
    assert_eq!(states["load"], "UPSTREAM_FAILED");

    fs::write(dir.path().join("fixed"), "").unwrap();
    let out = batuta()
        .args(["repair", "--quiet"])
        .arg(&record)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec: Value = serde_json::from_str(&fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(rec["state"]["result_state"], "SUCCESS");
    assert_eq!(rec["repair_count"], 1);
    assert_eq!(
        rec["repair_history"][1]["task_keys"],
        json!(["transform", "load"])
    );
    let count = |f: &str| {
        fs::read_to_string(dir.path().join(f))
            .unwrap()
            .lines()
            .count()
    };
    // Succeeded tasks are kept, not re-run; their values still reach the repaired tasks.
    assert_eq!(count("extract.count"), 1);
    assert_eq!(count("other.count"), 1);
    assert_eq!(count("transform.count"), 2);
    assert_eq!(
        fs::read_to_string(dir.path().join("load.txt")).unwrap(),
        "5\n"
    );
    // The transform task keeps both attempts across the repair.
    let transform = rec["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task_key"] == "transform")
        .unwrap();
    assert_eq!(transform["attempts"].as_array().unwrap().len(), 2);

    let out = batuta()
        .args(["repair", "--quiet"])
        .arg(&record)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to repair"));
}

#[test]
fn sigint_cancels_the_run_and_kills_running_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let def = json!({"name": "cancel", "tasks": [
        sh("long", "sleep 300 & echo $! > child.pid; wait"),
        {"task_key": "next", "depends_on": [{"task_key": "long"}], "shell_task": {"command": "touch next"}},
    ]});
    let job_file = write_job(dir.path(), &def);
    let record = dir.path().join("record.json");
    let mut child = batuta()
        .args(["run", "--quiet", "--record"])
        .arg(&record)
        .arg(&job_file)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = read_pid(&dir.path().join("child.pid"));
    // SAFETY: signalling a child process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(wait_dead(pid), "the task's child survived the cancel");
    let rec: Value = serde_json::from_str(&fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(rec["state"]["result_state"], "CANCELED");
    assert_eq!(rec["tasks"][0]["state"]["result_state"], "CANCELED");
    assert_eq!(rec["tasks"][1]["state"]["result_state"], "CANCELED");
    assert!(!dir.path().join("next").exists());
}

#[test]
fn max_concurrent_runs_refuses_a_second_run() {
    let dir = tempfile::tempdir().unwrap();
    let def = json!({"name": "single", "max_concurrent_runs": 1, "tasks": [sh("w", "touch started; sleep 3")]});
    let job_file = write_job(dir.path(), &def);
    let runs = dir.path().join("runs");
    let mut first = batuta()
        .args(["run", "--quiet", "--run-dir"])
        .arg(runs.join("one"))
        .arg(&job_file)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    read_pid_file_exists(&dir.path().join("started"));
    let out = batuta()
        .args(["run", "--quiet", "--run-dir"])
        .arg(runs.join("two"))
        .arg(&job_file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("MAXIMUM_CONCURRENT_RUNS_REACHED"));
    assert_eq!(first.wait().unwrap().code(), Some(0));
}

fn read_pid_file_exists(p: &Path) {
    let until = Instant::now() + Duration::from_secs(10);
    while !p.exists() {
        assert!(Instant::now() < until, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_job_timeout_stops_running_and_pending_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let j = job(
        dir.path(),
        json!({"name": "job-timeout", "timeout_seconds": 1, "tasks": [
            sh("slow", "sleep 30"),
            {"task_key": "after", "depends_on": [{"task_key": "slow"}], "run_if": "ALL_DONE",
             "shell_task": {"command": "touch after"}},
        ]}),
    );
    let started = Instant::now();
    let run = runner::run(&j, &settings(dir.path()), None).unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(run.result, ResultState::TimedOut);
    assert_eq!(result(&run, "slow"), ResultState::TimedOut);
    assert_eq!(result(&run, "after"), ResultState::TimedOut);
    assert!(!dir.path().join("after").exists());
}
