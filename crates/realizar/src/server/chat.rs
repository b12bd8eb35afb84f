//! OpenAI text generation: `POST /v1/chat/completions` and `POST /v1/completions`.
//!
//! A request is checked completely before any token is computed (messages, roles,
//! sampling values, `n`, the prompt's length against the context), and every refusal is
//! OpenAI's error body with a 4xx status, so the official client raises
//! `BadRequestError` / `NotFoundError`. Generation runs on tokio's blocking pool, at most
//! [`ServerConfig::max_generations`](super::ServerConfig) at a time, never on the
//! reactor: a decode step is milliseconds of matrix products. Tokens travel back over a
//! bounded channel; with `"stream": true` each becomes a server-sent event
//! `data: {chunk}` and the stream ends with `data: [DONE]`, as OpenAI sends them.
//!
//! A client that goes away stops its generation: its response body is dropped, the
//! channel closes, and the token callback returns false (a non-streaming request
//! cancels the same way through a guard its handler owns). The metrics count it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{ApiError, AppState, Dialect, ServedModel, json_body};
use crate::bpe::{BpeTokenizer, Utf8Stream};
use crate::chat_template::{ChatMessage, ChatTemplate};
use crate::llm::{FinishReason, GenerateOptions, Generation, Llm};

/// A model that generates text: what the completion routes serve. [`Llm`] is the real
/// one; the handler tests use a small stand-in.
pub trait Generator: Send + Sync {
    fn tokenizer(&self) -> &BpeTokenizer;
    /// The model's longest sequence, prompt and completion together.
    fn context_length(&self) -> usize;
    /// Generate; `on_token` returning false cancels.
    fn generate(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> crate::Result<Generation>;
}

impl Generator for Llm {
    fn tokenizer(&self) -> &BpeTokenizer {
        Llm::tokenizer(self)
    }
    fn context_length(&self) -> usize {
        Llm::context_length(self)
    }
    fn generate(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> crate::Result<Generation> {
        Llm::generate(self, prompt, opts, on_token)
    }
}

/// A generative model as served: the model and its compiled chat template.
pub struct TextModel {
    pub generator: Arc<dyn Generator>,
    /// None when the model carries no template: chat completions are refused.
    pub template: Option<ChatTemplate>,
}

impl std::fmt::Debug for TextModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextModel")
            .field("vocab", &self.generator.tokenizer().vocab_size())
            .field("context_length", &self.generator.context_length())
            .field("chat_template", &self.template.is_some())
            .finish()
    }
}

impl TextModel {
    /// Wrap a loaded [`Llm`], compiling its chat template (an invalid one is an error
    /// at load time).
    pub fn from_llm(llm: Llm) -> crate::Result<Self> {
        let template = match llm.chat_template() {
            Some(source) => {
                let tok = llm.tokenizer();
                let text =
                    |id: Option<u32>| id.and_then(|i| tok.token_text(i)).unwrap_or("").to_owned();
                Some(ChatTemplate::new(
                    source,
                    &text(tok.bos_id()),
                    &text(tok.eos_id()),
                )?)
            }
            None => None,
        };
        Ok(TextModel {
            generator: Arc::new(llm),
            template,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Chat,
    Completion,
}

/// A checked request.
#[derive(Debug)]
pub(crate) struct Request {
    model: String,
    prompt: Prompt,
    opts: GenerateOptions,
    /// max_tokens given by the client; otherwise the rest of the context.
    max_tokens: Option<usize>,
    stream: bool,
    include_usage: bool,
    /// `/v1/completions` `echo`: the prompt starts the returned text.
    echo: bool,
}

#[derive(Debug)]
enum Prompt {
    Messages(Vec<ChatMessage>),
    Text(String),
    Ids(Vec<u32>),
}

fn bad(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, Dialect::OpenAi, message).with_param(param)
}

fn number(obj: &Map<String, Value>, key: &str, lo: f64, hi: f64) -> Result<Option<f64>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if x.is_finite() && x >= lo && x <= hi {
                Ok(Some(x))
            } else {
                Err(bad(
                    key,
                    format!("'{key}' must be between {lo} and {hi}, got {n}"),
                ))
            }
        }
        Some(other) => Err(bad(key, format!("'{key}' must be a number, got {other}"))),
    }
}

fn integer(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(Value::Number(n)) if n.as_i64().is_some() => {
            Err(bad(key, format!("'{key}' must be >= 0, got {n}")))
        }
        Some(other) => Err(bad(key, format!("'{key}' must be an integer, got {other}"))),
    }
}

fn boolean(obj: &Map<String, Value>, key: &str) -> Result<bool, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(bad(
            key,
            format!("'{key}' must be true or false, got {other}"),
        )),
    }
}

/// A message's content: a string, or OpenAI's list of parts of which only text is
/// supported.
fn content(i: usize, v: Option<&Value>) -> Result<String, ApiError> {
    let param = format!("messages[{i}].content");
    match v {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (j, p) in parts.iter().enumerate() {
                match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text"), Some(Value::String(t))) => text.push_str(t),
                    (Some(kind), _) if kind != "text" => {
                        return Err(bad(
                            &param,
                            format!("{param}[{j}] is of type {kind:?}: only text is supported"),
                        ));
                    }
                    _ => {
                        return Err(bad(
                            &param,
                            format!("{param}[{j}] must be {{\"type\": \"text\", \"text\": ...}}"),
                        ));
                    }
                }
            }
            Ok(text)
        }
        Some(other) => Err(bad(
            &param,
            format!("{param} must be a string, got {other}"),
        )),
    }
}

impl Request {
    pub(crate) fn parse(body: &Value, kind: Kind) -> Result<Self, ApiError> {
        let Value::Object(obj) = body else {
            return Err(bad("", "the request body must be a JSON object"));
        };
        let model = match obj.get("model") {
            Some(Value::String(m)) => m.clone(),
            Some(_) => return Err(bad("model", "'model' must be a string")),
            None => return Err(bad("model", "missing required field 'model'")),
        };
        let prompt = match kind {
            Kind::Chat => {
                let Some(Value::Array(items)) = obj.get("messages") else {
                    return Err(bad(
                        "messages",
                        "'messages' must be a list of {\"role\", \"content\"} objects",
                    ));
                };
                if items.is_empty() {
                    return Err(bad("messages", "'messages' must not be empty"));
                }
                let messages = items
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let role = m.get("role").and_then(Value::as_str).ok_or_else(|| {
                            bad(
                                &format!("messages[{i}].role"),
                                format!("messages[{i}] needs a string 'role'"),
                            )
                        })?;
                        if !crate::chat_template::ROLES.contains(&role) {
                            return Err(bad(
                                &format!("messages[{i}].role"),
                                format!(
                                    "messages[{i}].role is {role:?}; expected one of {}",
                                    crate::chat_template::ROLES.join(", ")
                                ),
                            ));
                        }
                        Ok(ChatMessage::new(role, &content(i, m.get("content"))?))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Prompt::Messages(messages)
            }
            Kind::Completion => match obj.get("prompt") {
                Some(Value::String(s)) => Prompt::Text(s.clone()),
                Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => {
                    Prompt::Text(items[0].as_str().unwrap_or_default().to_owned())
                }
                Some(Value::Array(items))
                    if !items.is_empty() && items.iter().all(Value::is_u64) =>
                {
                    let ids = items
                        .iter()
                        .map(|v| v.as_u64().and_then(|x| u32::try_from(x).ok()))
                        .collect::<Option<Vec<u32>>>()
                        .ok_or_else(|| bad("prompt", "token ids must fit u32"))?;
                    Prompt::Ids(ids)
                }
                Some(Value::Array(_)) => {
                    return Err(bad(
                        "prompt",
                        "'prompt' must be a string, a list of one string, or a list of token ids \
                         (one prompt per request: n and batches of prompts are not supported)",
                    ));
                }
                Some(_) => return Err(bad("prompt", "'prompt' must be a string")),
                None => return Err(bad("prompt", "missing required field 'prompt'")),
            },
        };
        if let Some(n) = integer(obj, "n")?
            && n != 1
        {
            return Err(bad(
                "n",
                format!("'n' must be 1 (one choice per request), got {n}"),
            ));
        }
        if let Some(n) = integer(obj, "best_of")?
            && n != 1
        {
            return Err(bad("best_of", format!("'best_of' must be 1, got {n}")));
        }
        for key in ["presence_penalty", "frequency_penalty"] {
            if let Some(x) = number(obj, key, -2.0, 2.0)?
                && x != 0.0
            {
                return Err(bad(
                    key,
                    format!("'{key}' is not supported (only 0), got {x}"),
                ));
            }
        }
        if boolean(obj, "logprobs")? || obj.get("logprobs").is_some_and(Value::is_number) {
            return Err(bad("logprobs", "'logprobs' is not supported"));
        }
        let max_tokens = match kind {
            Kind::Chat => match integer(obj, "max_completion_tokens")? {
                Some(n) => Some(n),
                None => integer(obj, "max_tokens")?,
            },
            Kind::Completion => integer(obj, "max_tokens")?,
        };
        let defaults = GenerateOptions::default();
        // OpenAI's ranges: temperature 0..2, top_p 0..1 (0 means the single most likely
        // token here, as a nucleus of probability 0 keeps only the first).
        let temperature = number(obj, "temperature", 0.0, 2.0)?.map_or(
            // OpenAI samples at 1 by default.
            1.0,
            |t| t as f32,
        );
        let top_p = number(obj, "top_p", 0.0, 1.0)?.map_or(defaults.top_p, |p| p as f32);
        let (temperature, top_p) = if top_p == 0.0 {
            (0.0, 1.0)
        } else {
            (temperature, top_p)
        };
        let top_k = integer(obj, "top_k")?.map_or(defaults.top_k, |k| k as usize);
        let repetition_penalty = number(obj, "repetition_penalty", f64::MIN_POSITIVE, 100.0)?
            .map_or(defaults.repetition_penalty, |r| r as f32);
        let seed = match obj.get("seed") {
            None | Some(Value::Null) => {
                // No seed: a fresh one per request, as OpenAI samples.
                static SALT: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                nanos ^ SALT.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            }
            Some(Value::Number(n)) => match (n.as_u64(), n.as_i64()) {
                (Some(s), _) => s,
                (None, Some(s)) => s as u64,
                _ => return Err(bad("seed", format!("'seed' must be an integer, got {n}"))),
            },
            Some(other) => {
                return Err(bad(
                    "seed",
                    format!("'seed' must be an integer, got {other}"),
                ));
            }
        };
        let stop = match obj.get("stop") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => {
                if items.len() > 4 {
                    return Err(bad(
                        "stop",
                        format!("'stop' takes at most 4 sequences, got {}", items.len()),
                    ));
                }
                items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad("stop", "'stop' must be a string or a list of strings"))?
            }
            Some(_) => return Err(bad("stop", "'stop' must be a string or a list of strings")),
        };
        if stop.iter().any(String::is_empty) {
            return Err(bad("stop", "stop sequences must not be empty strings"));
        }
        let stream = boolean(obj, "stream")?;
        let include_usage = match obj.get("stream_options") {
            None | Some(Value::Null) => false,
            Some(Value::Object(o)) => boolean(o, "include_usage")?,
            Some(_) => return Err(bad("stream_options", "'stream_options' must be an object")),
        };
        let echo = kind == Kind::Completion && boolean(obj, "echo")?;
        let opts = GenerateOptions {
            max_tokens: 0,
            temperature,
            top_k,
            top_p,
            repetition_penalty,
            seed,
            stop_token_ids: Vec::new(),
            stop,
        };
        opts.validate().map_err(ApiError::from)?;
        Ok(Request {
            model,
            prompt,
            opts,
            max_tokens: max_tokens.map(|m| usize::try_from(m).unwrap_or(usize::MAX)),
            stream,
            include_usage,
            echo,
        })
    }
}

/// `chatcmpl-…` / `cmpl-…` ids: unique within the process and across restarts.
fn completion_id(kind: Kind) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let prefix = if kind == Kind::Chat {
        "chatcmpl"
    } else {
        "cmpl"
    };
    format!("{prefix}-{t:x}{n:04x}")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn finish_name(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Length => "length",
        // A cancelled request has no listener; `stop` keeps the document valid.
        FinishReason::Stop | FinishReason::Cancelled => "stop",
    }
}

fn usage(g: &Generation) -> Value {
    json!({
        "prompt_tokens": g.prompt_tokens,
        "completion_tokens": g.completion_tokens,
        "total_tokens": g.prompt_tokens + g.completion_tokens,
    })
}

/// Sets its flag when dropped: a handler future dropped because its client went away
/// tells the generation to stop.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What the generation thread sends back.
enum Event {
    Text(String),
    Done(crate::Result<Generation>),
}

/// Resolve the model, tokenize, check the context, and start generating on the
/// blocking pool. Returns the event stream and the prompt text (for `echo`).
async fn start(
    state: &Arc<AppState>,
    req: Request,
    kind: Kind,
    cancel: Arc<AtomicBool>,
) -> Result<(tokio::sync::mpsc::Receiver<Event>, String), ApiError> {
    let served = state.find(&req.model, Dialect::OpenAi)?;
    let ServedModel::Text(model) = &served.model else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Dialect::OpenAi,
            format!(
                "model {:?} is a {} model: it does not generate text",
                req.model,
                served.model.kind()
            ),
        )
        .with_param("model"));
    };
    let model = Arc::clone(model);
    let tok = model.generator.tokenizer();
    let (prompt_text, ids) = match &req.prompt {
        Prompt::Messages(messages) => {
            let template = model.template.as_ref().ok_or_else(|| {
                bad(
                    "messages",
                    format!(
                        "model {:?} has no chat template: use /v1/completions",
                        req.model
                    ),
                )
            })?;
            let text = template.render(messages, true).map_err(ApiError::from)?;
            let ids = tok.encode(&text, true, true);
            (text, ids)
        }
        Prompt::Text(text) => (text.clone(), tok.encode(text, true, true)),
        Prompt::Ids(ids) => {
            if let Some(&bad_id) = ids.iter().find(|&&i| i as usize >= tok.vocab_size()) {
                return Err(bad(
                    "prompt",
                    format!(
                        "token id {bad_id} is outside the vocabulary of {}",
                        tok.vocab_size()
                    ),
                ));
            }
            (tok.decode(ids), ids.clone())
        }
    };
    let ctx = model.generator.context_length();
    if ids.is_empty() {
        return Err(bad("prompt", "the prompt is empty: it has no tokens"));
    }
    if ids.len() >= ctx {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Dialect::OpenAi,
            format!(
                "this model's maximum context length is {ctx} tokens, but the prompt has {} \
                 tokens (at least one must be left to generate)",
                ids.len()
            ),
        )
        .with_param(if kind == Kind::Chat {
            "messages"
        } else {
            "prompt"
        })
        .with_code("context_length_exceeded"));
    }
    let room = ctx - ids.len();
    let mut opts = req.opts;
    opts.max_tokens = match req.max_tokens {
        Some(m) if m > room => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                Dialect::OpenAi,
                format!(
                    "this model's maximum context length is {ctx} tokens: the prompt's {} plus \
                     max_tokens {m} exceed it (at most {room})",
                    ids.len()
                ),
            )
            .with_param("max_tokens")
            .with_code("context_length_exceeded"));
        }
        Some(m) => m,
        None => room,
    };
    let permit = Arc::clone(&state.generations)
        .acquire_owned()
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Dialect::OpenAi,
                "server shutting down",
            )
        })?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(64);
    let st = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let tok = model.generator.tokenizer();
        let mut utf8 = Utf8Stream::new();
        let mut on_token = |id: u32| {
            if cancel.load(Ordering::Relaxed) {
                return false;
            }
            let text = match tok.token_bytes(id) {
                Some(b) => utf8.push(b),
                None => String::new(),
            };
            if text.is_empty() {
                return true;
            }
            tx.blocking_send(Event::Text(text)).is_ok()
        };
        let result = model.generator.generate(&ids, &opts, &mut on_token);
        if let Ok(g) = &result {
            st.metrics.record_generation(
                g.completion_tokens,
                g.finish_reason == FinishReason::Cancelled,
            );
            if g.finish_reason == FinishReason::Cancelled {
                eprintln!(
                    "realizar: generation cancelled after {} tokens (client went away)",
                    g.completion_tokens
                );
            }
        }
        let _ = tx.blocking_send(Event::Done(result));
    });
    Ok((rx, prompt_text))
}

pub(crate) async fn chat_completions(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    complete(state, body, Kind::Chat).await
}

pub(crate) async fn completions(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    complete(state, body, Kind::Completion).await
}

async fn complete(
    state: Arc<AppState>,
    body: Result<Bytes, BytesRejection>,
    kind: Kind,
) -> Response {
    let result = async {
        let body = json_body(body, Dialect::OpenAi, state.config.max_body_bytes)?;
        let req = Request::parse(&body, kind)?;
        let (stream, include_usage, echo) = (req.stream, req.include_usage, req.echo);
        let model = req.model.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        let guard = CancelOnDrop(Arc::clone(&cancel));
        let (rx, prompt) = start(&state, req, kind, cancel).await?;
        let id = completion_id(kind);
        let created = unix_now();
        let head = Head {
            id,
            created,
            model,
            kind,
        };
        if stream {
            Ok(sse(head, rx, guard, include_usage, echo.then_some(prompt)))
        } else {
            whole(head, rx, guard, echo.then_some(prompt)).await
        }
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

struct Head {
    id: String,
    created: u64,
    model: String,
    kind: Kind,
}

impl Head {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.kind, chunk) {
            (Kind::Chat, false) => "chat.completion",
            (Kind::Chat, true) => "chat.completion.chunk",
            (Kind::Completion, _) => "text_completion",
        }
    }

    fn document(&self, chunk: bool, choices: Value, usage: Option<Value>) -> Value {
        let mut doc = Map::new();
        doc.insert("id".into(), json!(self.id));
        doc.insert("object".into(), json!(self.object(chunk)));
        doc.insert("created".into(), json!(self.created));
        doc.insert("model".into(), json!(self.model));
        doc.insert("system_fingerprint".into(), Value::Null);
        doc.insert("choices".into(), choices);
        if let Some(u) = usage {
            doc.insert("usage".into(), u);
        }
        Value::Object(doc)
    }

    /// One streamed choice carrying `text` (and the finish reason on the last).
    fn delta(&self, text: Option<&str>, first: bool, finish: Option<&str>) -> Value {
        match self.kind {
            Kind::Chat => {
                let mut delta = Map::new();
                if first {
                    delta.insert("role".into(), json!("assistant"));
                }
                if let Some(t) = text {
                    delta.insert("content".into(), json!(t));
                }
                json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}])
            }
            Kind::Completion => {
                json!([{"index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": finish}])
            }
        }
    }
}

/// Non-streaming: wait for the whole generation, answer one document.
async fn whole(
    head: Head,
    mut rx: tokio::sync::mpsc::Receiver<Event>,
    guard: CancelOnDrop,
    echo: Option<String>,
) -> Result<Response, ApiError> {
    let generation = loop {
        match rx.recv().await {
            Some(Event::Text(_)) => {}
            Some(Event::Done(result)) => break result.map_err(ApiError::from)?,
            None => {
                return Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Dialect::OpenAi,
                    "generation ended without a result",
                ));
            }
        }
    };
    drop(guard);
    let finish = finish_name(generation.finish_reason);
    let choices = match head.kind {
        Kind::Chat => json!([{
            "index": 0,
            "message": {"role": "assistant", "content": generation.text, "refusal": null},
            "logprobs": null,
            "finish_reason": finish,
        }]),
        Kind::Completion => {
            let text = match echo {
                Some(p) => p + &generation.text,
                None => generation.text.clone(),
            };
            json!([{"index": 0, "text": text, "logprobs": null, "finish_reason": finish}])
        }
    };
    Ok(axum::Json(head.document(false, choices, Some(usage(&generation)))).into_response())
}

fn event(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// Streaming: one server-sent event per piece of text, the finish reason, the usage
/// when asked for, then `data: [DONE]`.
fn sse(
    head: Head,
    rx: tokio::sync::mpsc::Receiver<Event>,
    guard: CancelOnDrop,
    include_usage: bool,
    echo: Option<String>,
) -> Response {
    let stream = SseStream {
        head,
        rx,
        _guard: guard,
        include_usage,
        first: true,
        sent: String::new(),
        done: false,
        echo,
    };
    let mut resp = axum::body::Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The body of a streamed response. Dropping it (the client went away) drops the
/// receiver and the guard, which stops the generation.
struct SseStream {
    head: Head,
    rx: tokio::sync::mpsc::Receiver<Event>,
    _guard: CancelOnDrop,
    include_usage: bool,
    first: bool,
    /// Text sent so far.
    sent: String,
    done: bool,
    echo: Option<String>,
}

impl SseStream {
    fn chunk(&self, choices: Value) -> Bytes {
        // With include_usage, OpenAI writes "usage": null on every chunk but the last.
        event(
            &self
                .head
                .document(true, choices, self.include_usage.then_some(Value::Null)),
        )
    }

    fn on_event(&mut self, ev: Option<Event>) -> Vec<Bytes> {
        let mut out = Vec::new();
        match ev {
            Some(Event::Text(t)) => {
                self.sent.push_str(&t);
                out.push(self.chunk(self.head.delta(Some(&t), false, None)));
            }
            Some(Event::Done(Ok(g))) => {
                // Text the callback never saw (held back for a stop sequence, or the last
                // bytes of a character) is the rest of the final text.
                if let Some(rest) = g.text.strip_prefix(self.sent.as_str())
                    && !rest.is_empty()
                {
                    out.push(self.chunk(self.head.delta(Some(rest), false, None)));
                }
                let finish = finish_name(g.finish_reason);
                out.push(self.chunk(self.head.delta(None, false, Some(finish))));
                if self.include_usage {
                    out.push(event(&self.head.document(true, json!([]), Some(usage(&g)))));
                }
                out.push(Bytes::from_static(b"data: [DONE]\n\n"));
                self.done = true;
            }
            Some(Event::Done(Err(e))) => {
                // The status line is long gone: the error travels as an event, in
                // OpenAI's error shape, which the client raises.
                out.push(event(&super::error_body(&ApiError::from(e))));
                self.done = true;
            }
            None => self.done = true,
        }
        out
    }
}

impl futures_core::Stream for SseStream {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let mut out = Vec::new();
        if this.first {
            this.first = false;
            if this.head.kind == Kind::Chat {
                // OpenAI's first chunk carries the role and empty content.
                out.push(this.chunk(this.head.delta(Some(""), true, None)));
            }
            if let Some(prompt) = this.echo.take() {
                out.push(this.chunk(this.head.delta(Some(&prompt), false, None)));
            }
        }
        // Everything already waiting goes out in one write.
        while let Poll::Ready(ev) = this.rx.poll_recv(cx) {
            out.extend(this.on_event(ev));
            if this.done {
                break;
            }
        }
        if out.is_empty() {
            return Poll::Pending;
        }
        Poll::Ready(Some(Ok(out.concat().into())))
    }
}

/// The language model a request names, or the only one when it names none.
fn text_model(state: &AppState, body: &Value) -> Result<Arc<TextModel>, ApiError> {
    let served = match body.get("model") {
        Some(Value::String(name)) => state.find(name, Dialect::OpenAi)?,
        Some(_) => return Err(bad("model", "'model' must be a string")),
        None => {
            let mut text = state
                .models
                .iter()
                .filter(|m| matches!(m.model, ServedModel::Text(_)));
            match (text.next(), text.next()) {
                (Some(one), None) => one,
                (None, _) => return Err(bad("model", "this server serves no language model")),
                (Some(_), Some(_)) => {
                    return Err(bad(
                        "model",
                        "several language models are served: name one in 'model'",
                    ));
                }
            }
        }
    };
    match &served.model {
        ServedModel::Text(m) => Ok(Arc::clone(m)),
        other => Err(bad(
            "model",
            format!(
                "model {:?} is a {} model, not a language model",
                served.name,
                other.kind()
            ),
        )),
    }
}

/// `POST /tokenize` as llama.cpp's server answers it: `{"content": text,
/// "add_special": false, "parse_special": true}` -> `{"tokens": [ids]}`, with
/// `"with_pieces": true` each token's text (or its bytes when not UTF-8) as well.
pub(crate) async fn tokenize(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = (|| {
        let body = json_body(body, Dialect::OpenAi, state.config.max_body_bytes)?;
        let model = text_model(&state, &body)?;
        let Some(Value::Object(obj)) = Some(&body) else {
            return Err(bad("", "the request body must be a JSON object"));
        };
        let Some(Value::String(content)) = obj.get("content") else {
            return Err(bad("content", "'content' must be a string"));
        };
        let add_special = boolean(obj, "add_special")?;
        let parse_special = match obj.get("parse_special") {
            None | Some(Value::Null) => true,
            _ => boolean(obj, "parse_special")?,
        };
        let with_pieces = boolean(obj, "with_pieces")?;
        let tok = model.generator.tokenizer();
        let ids = tok.encode(content, add_special, parse_special);
        let tokens: Vec<Value> = if with_pieces {
            ids.iter()
                .map(|&id| {
                    let bytes = tok.token_bytes(id).unwrap_or_default();
                    let piece = match std::str::from_utf8(bytes) {
                        Ok(s) => json!(s),
                        Err(_) => json!(bytes),
                    };
                    json!({"id": id, "piece": piece})
                })
                .collect()
        } else {
            ids.iter().map(|&id| json!(id)).collect()
        };
        Ok(axum::Json(json!({"tokens": tokens})).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /detokenize`: `{"tokens": [ids]}` -> `{"content": text}`.
pub(crate) async fn detokenize(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = (|| {
        let body = json_body(body, Dialect::OpenAi, state.config.max_body_bytes)?;
        let model = text_model(&state, &body)?;
        let tok = model.generator.tokenizer();
        let Some(Value::Array(items)) = body.get("tokens") else {
            return Err(bad("tokens", "'tokens' must be a list of token ids"));
        };
        let ids = items
            .iter()
            .map(|v| {
                v.as_u64()
                    .and_then(|x| u32::try_from(x).ok())
                    .filter(|&x| (x as usize) < tok.vocab_size())
            })
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| {
                bad(
                    "tokens",
                    format!(
                        "'tokens' must hold ids below the vocabulary size {}",
                        tok.vocab_size()
                    ),
                )
            })?;
        Ok(axum::Json(json!({"content": tok.decode(&ids)})).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}
