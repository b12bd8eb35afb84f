//! The `realizar` binary end to end: `realizar serve --port 0` on a model file written
//! here, one MLflow request over a raw TCP socket, then SIGTERM and a clean exit.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use safetensors::Dtype;
use safetensors::tensor::TensorView;

/// A binary logistic regression, `score = x0 - x1`, classes `[10, 20]`, as a file.
fn model_file(dir: &std::path::Path) -> std::path::PathBuf {
    let coef: Vec<u8> = [1.0f64, -1.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let intercept: Vec<u8> = 0.0f64.to_le_bytes().to_vec();
    let tensors = vec![
        (
            "coef",
            TensorView::new(Dtype::F64, vec![1, 2], &coef).unwrap(),
        ),
        (
            "intercept",
            TensorView::new(Dtype::F64, vec![1], &intercept).unwrap(),
        ),
    ];
    let meta = r#"{"format": "realizar.tabular", "format_version": 1, "estimator": "LogisticRegression",
                   "task": "classification", "n_features": 2, "classes": [10, 20],
                   "kind": "linear", "output": "logistic"}"#;
    let info = std::collections::HashMap::from([("realizar.tabular".to_owned(), meta.to_owned())]);
    let path = dir.join("binary-test.safetensors");
    std::fs::write(&path, safetensors::serialize(tensors, Some(info)).unwrap()).unwrap();
    path
}

fn post(addr: &str, body: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "POST /invocations HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serve_answers_and_shuts_down_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("realizar-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = model_file(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_realizar"))
        .args(["serve", "--model", model.to_str().unwrap(), "--port", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_owned();
    assert!(line.contains("serving binary-test (tabular)"), "{line}");

    let ok = post(&addr, r#"{"instances": [[2.0, 1.0], [0.0, 3.0]]}"#);
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.ends_with(r#"{"predictions":[20,10]}"#), "{ok}");
    let bad = post(&addr, r#"{"instances": [[2.0]]}"#);
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    assert!(bad.contains("expects 2 features"), "{bad}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("shut down"), "{rest}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn missing_model_is_an_error_exit() {
    let out = Command::new(env!("CARGO_BIN_EXE_realizar"))
        .args(["serve", "--model", "/nonexistent/model.safetensors"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    let usage = Command::new(env!("CARGO_BIN_EXE_realizar"))
        .args(["serve", "--port", "x"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
}
