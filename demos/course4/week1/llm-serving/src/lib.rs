//! Serving a language model as a reusable step: realizar's own server (the code behind
//! `realizar serve`) started in-process on a loopback port with SmolLM2-135M-Instruct as
//! `chat` and all-MiniLM-L6-v2 as `embed`, and a small HTTP/1.1 client that reads a
//! response as it arrives, so a streamed answer's first event is timed when it comes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use realizar::server::{AppState, Background, Served, ServerConfig, load_model_with};
use serde_json::Value;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The names the two models are served under (what requests' `"model"` says).
pub const CHAT: &str = "chat";
pub const EMBED: &str = "embed";
/// Largest response a demo accepts.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(300);

/// (SmolLM2 GGUF file, MiniLM directory): `SMOLLM2_GGUF` and `MINILM_DIR`, else where
/// `realizar.models` of the `python` on PATH (`PYTHON` to choose one) finds the packages.
pub fn model_paths() -> Result<(PathBuf, PathBuf), Error> {
    if let (Some(l), Some(e)) = (
        std::env::var_os("SMOLLM2_GGUF"),
        std::env::var_os("MINILM_DIR"),
    ) {
        return Ok((l.into(), e.into()));
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python".into());
    let out = Command::new(&python)
        .args([
            "-c",
            "from realizar.models import default_llm_path, default_model_dir\n\
             print(default_llm_path()); print(default_model_dir())",
        ])
        .output()
        .map_err(|e| {
            format!("cannot run {python} (set PYTHON, or SMOLLM2_GGUF and MINILM_DIR): {e}")
        })?;
    if !out.status.success() {
        return Err(format!(
            "{python} could not find the models: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    let text = String::from_utf8(out.stdout)?;
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(l), Some(e)) => Ok((l.into(), e.into())),
        _ => Err(format!("realizar.models printed {text:?}").into()),
    }
}

/// A running server; [`Server::stop`] shuts it down gracefully.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    inner: Background,
}

impl Server {
    /// Load both models and serve them on 127.0.0.1 at a free port.
    pub fn start(gguf: &Path, minilm: &Path) -> Result<Server, Error> {
        let (chat, _) = load_model_with(gguf, 1)?;
        let (embed, _) = load_model_with(minilm, 1)?;
        let models = vec![
            Served {
                name: CHAT.into(),
                model: chat,
            },
            Served {
                name: EMBED.into(),
                model: embed,
            },
        ];
        let state = Arc::new(AppState::with_models(models, ServerConfig::default())?);
        let server = Background::start(state)?;
        Ok(Server {
            addr: server.addr(),
            inner: server,
        })
    }

    /// Graceful shutdown: in-flight requests finish, then the runtime thread ends.
    pub fn stop(self) -> Result<(), Error> {
        Ok(self.inner.stop()?)
    }
}

/// A response: status, body, and when its first body bytes and its end arrived.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub first_body_after: Option<Duration>,
    pub total: Duration,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Result<Value, Error> {
        Ok(serde_json::from_str(&self.body)
            .map_err(|e| format!("not JSON ({e}): {}", self.body))?)
    }
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Result<Reply, Error> {
    request(addr, "GET", path, None)
}

/// `POST path` with a JSON body.
pub fn post(addr: SocketAddr, path: &str, body: &Value) -> Result<Reply, Error> {
    request(addr, "POST", path, Some(&body.to_string()))
}

fn request(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Result<Reply, Error> {
    let start = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP status line: {line:?}"))?;
    let (mut chunked, mut length) = (false, None);
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if k.eq_ignore_ascii_case("content-length") {
                length = Some(
                    v.parse::<usize>()
                        .map_err(|_| format!("bad length {v:?}"))?,
                );
            }
        }
    }
    let mut out = Vec::new();
    let mut first = None;
    if chunked {
        // Each chunk is read as it arrives: a streamed answer's events are timed here.
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size_hex = line.trim_end().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                break;
            }
            if out.len() + size > MAX_RESPONSE {
                return Err(format!("response larger than {MAX_RESPONSE} bytes").into());
            }
            let mut chunk = vec![0u8; size];
            reader.read_exact(&mut chunk)?;
            first.get_or_insert_with(|| start.elapsed());
            out.extend_from_slice(&chunk);
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    } else {
        let n = length.unwrap_or(MAX_RESPONSE);
        if n > MAX_RESPONSE {
            return Err(format!("response larger than {MAX_RESPONSE} bytes").into());
        }
        reader.take(n as u64).read_to_end(&mut out)?;
        first = Some(start.elapsed());
    }
    Ok(Reply {
        status,
        body: String::from_utf8(out)?,
        first_body_after: first,
        total: start.elapsed(),
    })
}

/// The payloads of a server-sent event stream's `data:` lines, in order.
pub fn sse_data(body: &str) -> Vec<&str> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .collect()
}

/// The assistant's text of a chat completion response.
pub fn content(v: &Value) -> Result<&str, Error> {
    v.pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no choices[0].message.content in {v}").into())
}

/// A chat completion: the reply's JSON, or an error carrying a non-200 answer.
pub fn chat(addr: SocketAddr, request: &Value) -> Result<Value, Error> {
    let r = post(addr, "/v1/chat/completions", request)?;
    if r.status != 200 {
        return Err(format!("/v1/chat/completions answered {}: {}", r.status, r.body).into());
    }
    r.json()
}

/// Print a claim and whether it held; an error when it did not.
pub fn check(what: &str, ok: bool) -> Result<(), Error> {
    println!("  [{}] {what}", if ok { "ok" } else { "FAILED" });
    if ok {
        Ok(())
    } else {
        Err(format!("claim failed: {what}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::sse_data;

    #[test]
    fn sse_data_keeps_only_data_lines() {
        let body = "data: {\"a\":1}\n\n: comment\ndata: [DONE]\n\n";
        assert_eq!(sse_data(body), vec!["{\"a\":1}", "[DONE]"]);
        assert!(sse_data("").is_empty());
    }
}
