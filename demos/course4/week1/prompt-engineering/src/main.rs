//! Course 4 week 1, prompt engineering: templates rendered and run against realizar's
//! SmolLM2-135M-Instruct, served over the OpenAI API in this process (the `llm-serving`
//! step). The labelled support messages are the project's own (`data/support_tickets.py`,
//! read through `python`), the same the notebooks measure:
//!
//! - a template with a missing or unused variable is an error, not a prompt;
//! - routing messages to four queues, zero-shot versus few-shot (one worked example per
//!   queue as earlier chat turns), scored strictly on the answer's first word: few-shot
//!   must win;
//! - extraction into JSON with a stop sequence at `}`, each reply checked against the
//!   schema's rules (a product line of five names, a code `E` and two digits); the
//!   failure rate is printed, not asserted (it is what the lesson measures).
//!
//! `PE_N` sets how many labelled messages are used (default 6). Exits non-zero if a claim
//! fails.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, ExitCode};

use llm_serving::{CHAT, Error, Server, chat, check, content, model_paths};
use prompt_engineering::{TemplateError, render};
use serde_json::{Value, json};

const TASK: &str =
    "Queue for this message: returns, shipping, repair or privacy? One word.\n\n{text}";
const EXTRACT_SYSTEM: &str = "Reply with JSON only: {{\"product_line\": one of {lines}; \
                              \"error_code\": the code such as E01}}.";
const LINES: [&str; 5] = ["Sweep", "Breeze", "Ember", "Watch", "Clear"];

/// The labelled sets, as `support_tickets` generates them.
fn labelled() -> Result<Value, Error> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../data");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python".into());
    let code = "import json, sys\nsys.path.insert(0, sys.argv[1])\nimport support_tickets as t\n\
                ex, test = t.routing(seed=0)\n\
                print(json.dumps({'examples': ex, 'test': test, \
                'demos': t.error_reports(seed=99, n=3), 'reports': t.error_reports(seed=1, n=8)}))";
    let out = Command::new(&python)
        .args(["-c", code, data.to_str().ok_or("non-UTF-8 path")?])
        .output()
        .map_err(|e| format!("cannot run {python} (set PYTHON): {e}"))?;
    if !out.status.success() {
        return Err(format!("support_tickets: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn user(text: &str) -> Result<Value, TemplateError> {
    let content = render(TASK, &BTreeMap::from([("text", text)]))?;
    Ok(json!({"role": "user", "content": content}))
}

/// The queue named by the answer's first word (five letters decide, as in the notebook).
fn queue_of(answer: &str) -> Option<&'static str> {
    let word: String = answer
        .trim_start_matches(|c: char| !c.is_alphabetic())
        .chars()
        .take_while(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    if word.chars().count() < 5 {
        return None;
    }
    let stem: String = word.chars().take(5).collect();
    ["returns", "shipping", "repair", "privacy"]
        .into_iter()
        .find(|q| q.starts_with(&stem))
}

fn ask(
    addr: std::net::SocketAddr,
    messages: &[Value],
    max_tokens: u64,
    stop: Option<&str>,
) -> Result<String, Error> {
    let mut req =
        json!({"model": CHAT, "messages": messages, "max_tokens": max_tokens, "temperature": 0.0});
    if let Some(s) = stop {
        req["stop"] = json!([s]);
    }
    Ok(content(&chat(addr, &req)?)?.to_owned())
}

/// Whether a reply (stopped before its `}`) is an object the schema accepts.
fn schema_valid(reply: &str) -> bool {
    let Some(start) = reply.find('{') else {
        return false;
    };
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(&format!("{}}}", &reply[start..]))
    else {
        return false;
    };
    let line_ok = obj
        .get("product_line")
        .and_then(Value::as_str)
        .is_some_and(|l| LINES.contains(&l));
    let code_ok = obj
        .get("error_code")
        .and_then(Value::as_str)
        .is_some_and(|c| {
            c.len() == 3 && c.starts_with('E') && c[1..].bytes().all(|b| b.is_ascii_digit())
        });
    obj.len() == 2 && line_ok && code_ok
}

fn run() -> Result<(), Error> {
    let n: usize = std::env::var("PE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
        .max(1);
    let sets = labelled()?;
    let items = |k: &str| sets[k].as_array().cloned().unwrap_or_default();
    let (examples, test) = (items("examples"), items("test"));
    let test = &test[..n.min(test.len())];

    check(
        "a template with a missing variable is an error",
        render(TASK, &BTreeMap::new()) == Err(TemplateError::Missing("text".into())),
    )?;
    check(
        "a value no placeholder uses is an error",
        matches!(
            render(TASK, &BTreeMap::from([("text", "x"), ("txt", "y")])),
            Err(TemplateError::Unused(_))
        ),
    )?;

    let (gguf, minilm) = model_paths()?;
    let server = Server::start(&gguf, &minilm)?;
    let addr = server.addr;
    println!(
        "realizar serving {CHAT} on http://{addr}; {} labelled messages",
        test.len()
    );

    let mut shots = Vec::new();
    for e in &examples {
        shots.push(user(e["text"].as_str().unwrap_or(""))?);
        shots.push(json!({"role": "assistant", "content": e["label"]}));
    }
    let (mut zero_right, mut few_right) = (0, 0);
    for item in test {
        let (text, label) = (item["text"].as_str().unwrap_or(""), item["label"].as_str());
        let zero = ask(addr, &[user(text)?], 6, None)?;
        let mut few_messages = shots.clone();
        few_messages.push(user(text)?);
        let few = ask(addr, &few_messages, 6, None)?;
        zero_right += usize::from(queue_of(&zero) == label);
        few_right += usize::from(queue_of(&few) == label);
        println!(
            "{:<9} zero-shot {:<40} few-shot {few:?}",
            label.unwrap_or("?"),
            format!("{zero:?}")
        );
    }
    println!(
        "right: zero-shot {zero_right}/{}, few-shot {few_right}/{}",
        test.len(),
        test.len()
    );
    check(
        "few-shot beats zero-shot on the labelled messages",
        few_right > zero_right,
    )?;

    let lines = LINES.join(", ");
    let system = render(EXTRACT_SYSTEM, &BTreeMap::from([("lines", lines.as_str())]))?;
    let mut messages = vec![json!({"role": "system", "content": system})];
    for d in items("demos") {
        messages.push(json!({"role": "user", "content": d["text"]}));
        messages.push(json!({"role": "assistant", "content": d["label"].to_string()}));
    }
    let reports = items("reports");
    let reports = &reports[..(n.max(2) - 2).max(2).min(reports.len())];
    let mut valid = 0;
    for r in reports {
        let mut m = messages.clone();
        m.push(json!({"role": "user", "content": r["text"]}));
        let reply = ask(addr, &m, 24, Some("}"))?;
        let ok = schema_valid(&reply);
        valid += usize::from(ok);
        println!(
            "{:<64} -> {reply}}} {}",
            r["text"].as_str().unwrap_or(""),
            if ok { "valid" } else { "INVALID" }
        );
    }
    println!(
        "JSON valid against the schema's rules: {valid}/{} (failure rate {:.0} %)",
        reports.len(),
        100.0 * (1.0 - valid as f64 / reports.len() as f64)
    );
    server.stop()
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("prompt-engineering: {e}");
            ExitCode::FAILURE
        }
    }
}
