//! The HTTP server: OpenAI-compatible text generation and embeddings, and the MLflow
//! scoring protocol, on axum and tokio. One server serves several models, each under a
//! name (`realizar serve --model chat=SmolLM2.gguf --model embed=all-MiniLM-L6-v2/`);
//! OpenAI requests pick theirs with `"model"`.
//!
//! | route | answers |
//! |---|---|
//! | `POST /v1/chat/completions` | OpenAI chat, streamed (SSE) or not (a GGUF language model) |
//! | `POST /v1/completions` | OpenAI text completion, streamed or not |
//! | `POST /v1/embeddings` | OpenAI embeddings (when serving a sentence encoder) |
//! | `POST /tokenize`, `POST /detokenize` | a language model's token ids, as llama.cpp's server |
//! | `POST /invocations` | MLflow scoring protocol (when serving a tabular model) |
//! | `GET /health` | `{"status": "ok", ...}` |
//! | `GET /v1/models` | every served model, OpenAI list format |
//! | `GET /metrics` | Prometheus text: requests by route and status, latency histogram |
//!
//! The model is loaded once and shared read-only through an `Arc`: requests never take a
//! lock. Inference is CPU-bound, so a request whose estimated work is above
//! [`ServerConfig::inline_work`] multiply-adds or node visits runs on tokio's blocking
//! pool; a small tabular batch (a few microseconds of work) runs inline, because handing
//! it to another thread would cost more than computing it and would add latency.
//! Text generation always runs on the blocking pool (see [`chat`]).
//! Every error is a JSON body with a 4xx/5xx status saying what was wrong: an
//! [`ApiError`], built from a typed [`crate::Error`] or by the request checks, never
//! by reading an error's text.

pub mod chat;
pub mod cli;
mod mlflow;
mod openai;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tower_http::timeout::TimeoutLayer;

use crate::metrics::{Metrics, route_label};
use crate::tabular::{Prediction, TabularModel};

pub use chat::{Generator, TextModel};
pub use openai::Embedder;

/// Limits and tuning of a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most rows (tabular) or texts (embeddings) in one request.
    pub max_batch: usize,
    /// Longest a request may take before it is answered with an error.
    pub request_timeout: Duration,
    /// Work (multiply-adds or tree-node visits) above which inference leaves the reactor.
    pub inline_work: usize,
    /// Batch size the encoder runs its forward passes with.
    pub encode_batch: usize,
    /// Text generations computed at once; more requests wait for a slot.
    pub max_generations: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            max_batch: 4096,
            request_timeout: Duration::from_secs(30),
            // Measured: a 100-tree forest costs about 3 ns per unit (4 us a row), so this is
            // at most about 60 us on the reactor, a few times the cost of a thread hand-off.
            inline_work: 20_000,
            encode_batch: 32,
            max_generations: 8,
        }
    }
}

/// What a server serves.
#[derive(Clone)]
pub enum ServedModel {
    /// A scikit-learn model exported with `realizar.export_sklearn`.
    Tabular(Arc<TabularModel>),
    /// A sentence encoder behind `/v1/embeddings`.
    Embeddings(Arc<dyn Embedder>),
    /// A language model behind `/v1/chat/completions` and `/v1/completions`.
    Text(Arc<TextModel>),
}

impl std::fmt::Debug for ServedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServedModel::Tabular(m) => write!(f, "Tabular({})", m.estimator()),
            ServedModel::Embeddings(e) => write!(f, "Embeddings({})", e.model_name()),
            ServedModel::Text(m) => write!(f, "{m:?}"),
        }
    }
}

impl ServedModel {
    fn kind(&self) -> &'static str {
        match self {
            ServedModel::Tabular(_) => "tabular",
            ServedModel::Embeddings(_) => "embeddings",
            ServedModel::Text(_) => "llm",
        }
    }
}

/// One model of a server and the name requests use for it.
#[derive(Debug, Clone)]
pub struct Served {
    pub name: String,
    pub model: ServedModel,
}

/// Shared, read-only state of every request.
#[derive(Debug)]
pub struct AppState {
    models: Vec<Served>,
    config: ServerConfig,
    metrics: Metrics,
    /// Slots for concurrent text generations.
    generations: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// State for serving `model` under `name`.
    pub fn new(model: ServedModel, name: impl Into<String>, config: ServerConfig) -> Self {
        let served = Served {
            name: name.into(),
            model,
        };
        Self::build(vec![served], config)
    }

    /// State for serving several models; their names must differ.
    pub fn with_models(models: Vec<Served>, config: ServerConfig) -> crate::Result<Self> {
        if models.is_empty() {
            return Err(crate::Error::InvalidInput("no model to serve".into()));
        }
        for (i, m) in models.iter().enumerate() {
            if models[..i].iter().any(|o| o.name == m.name) {
                return Err(crate::Error::InvalidInput(format!(
                    "two models are named {:?}: name them with --model NAME=PATH",
                    m.name
                )));
            }
        }
        Ok(Self::build(models, config))
    }

    fn build(models: Vec<Served>, config: ServerConfig) -> Self {
        let slots = config.max_generations.max(1);
        Self {
            models,
            config,
            metrics: Metrics::default(),
            generations: Arc::new(tokio::sync::Semaphore::new(slots)),
        }
    }

    /// The served models, in the order given.
    pub fn models(&self) -> &[Served] {
        &self.models
    }

    /// The model a request names; 404 in OpenAI's shape when there is none.
    fn find(&self, name: &str, dialect: Dialect) -> Result<&Served, ApiError> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
            ApiError::new(
                StatusCode::NOT_FOUND,
                dialect,
                format!("model {name:?} not found: this server serves {names:?}"),
            )
            .with_param("model")
            .with_code("model_not_found")
        })
    }

    /// The first model of a kind (for routes whose requests name no model).
    fn first(&self, kind: &str) -> Option<&Served> {
        self.models.iter().find(|m| m.model.kind() == kind)
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// Which error body a route speaks: OpenAI's `{"error": {...}}` or MLflow's
/// `{"error_code": ..., "message": ...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    OpenAi,
    Mlflow,
}

/// An error answer: a status and what to tell the client, in the route's dialect.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    dialect: Dialect,
    /// OpenAI's `param`: the request field at fault.
    param: Option<String>,
    /// OpenAI's `code` (`context_length_exceeded`, `model_not_found`, ...).
    code: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, dialect: Dialect, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            dialect,
            param: None,
            code: None,
        }
    }

    fn with_param(mut self, param: &str) -> Self {
        self.param = (!param.is_empty()).then(|| param.to_owned());
        self
    }

    fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    fn in_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }
}

/// A model error as an answer: the variant decides the status, never the text. Bad
/// input is the client's (400); a file or kernel failure is the server's (500).
impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        use crate::Error as E;
        let d = Dialect::OpenAi;
        match &e {
            E::InvalidInput(_) => ApiError::new(StatusCode::BAD_REQUEST, d, e.to_string()),
            E::ContextLength { .. } => ApiError::new(StatusCode::BAD_REQUEST, d, e.to_string())
                .with_code("context_length_exceeded"),
            E::Io { .. } | E::Format { .. } | E::Kernel(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, d, e.to_string())
            }
        }
    }
}

fn error_body(e: &ApiError) -> Value {
    let (status, message) = (e.status, e.message.as_str());
    match e.dialect {
        Dialect::OpenAi => {
            let kind = match status {
                s if s.is_server_error() => "server_error",
                StatusCode::NOT_FOUND => "not_found_error",
                _ => "invalid_request_error",
            };
            let code = match e.code {
                Some(c) => json!(c),
                None => Value::Null,
            };
            json!({"error": {"message": message, "type": kind, "param": e.param, "code": code}})
        }
        Dialect::Mlflow => {
            let code = match status {
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "BAD_REQUEST",
                StatusCode::PAYLOAD_TOO_LARGE => "RESOURCE_LIMIT_EXCEEDED",
                StatusCode::NOT_FOUND => "ENDPOINT_NOT_FOUND",
                s if s.is_server_error() => "INTERNAL_ERROR",
                _ => "INVALID_PARAMETER_VALUE",
            };
            json!({"error_code": code, "message": message})
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(error_body(&self))).into_response()
    }
}

/// Read a JSON body, turning every way it can be wrong into a JSON 4xx.
fn json_body(
    body: Result<Bytes, BytesRejection>,
    dialect: Dialect,
    limit: usize,
) -> Result<Value, ApiError> {
    let bytes = body.map_err(|e| {
        let status = e.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("request body is larger than the limit of {limit} bytes")
        } else {
            format!("cannot read the request body: {e}")
        };
        ApiError::new(status, dialect, message)
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            dialect,
            format!("malformed JSON in the request body: {e}"),
        )
    })
}

/// Run CPU-bound work inline when it is small, else on the blocking pool, with a deadline.
async fn compute<T, F>(
    state: &Arc<AppState>,
    work: usize,
    dialect: Dialect,
    f: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
{
    if work <= state.config.inline_work {
        return f(state);
    }
    let st = Arc::clone(state);
    let task = tokio::task::spawn_blocking(move || f(&st));
    match tokio::time::timeout(state.config.request_timeout, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            dialect,
            format!("inference failed: {join}"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            dialect,
            format!(
                "inference took longer than {:?}",
                state.config.request_timeout
            ),
        )),
    }
}

async fn invocations(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let d = Dialect::Mlflow;
    let result = async {
        // MLflow's protocol names no model: this is the server's tabular model.
        let Some(ServedModel::Tabular(model)) = state.first("tabular").map(|m| &m.model) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                d,
                "this server serves no tabular model: POST /v1/embeddings or \
                 /v1/chat/completions instead",
            ));
        };
        let model = Arc::clone(model);
        // MLflow also takes CSV; say so plainly rather than "malformed JSON".
        let content_type = headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes);
        if content_type.is_some_and(|t| t.starts_with(b"text/csv")) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                d,
                "CSV input is not supported: send application/json (dataframe_split, \
                 dataframe_records, instances or inputs)",
            ));
        }
        let body = json_body(body, d, state.config.max_body_bytes)?;
        let names = model.metadata().feature_names.as_deref();
        let schema = mlflow::Schema {
            n_features: model.n_features(),
            feature_names: names,
            max_rows: state.config.max_batch,
        };
        let matrix = schema
            .parse(&body)
            .map_err(|mlflow::BadInput(message, why)| {
                let status = match why {
                    mlflow::Rejection::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                    mlflow::Rejection::Malformed => StatusCode::BAD_REQUEST,
                };
                ApiError::new(status, d, message)
            })?;
        let work = matrix.rows.saturating_mul(model.cost_per_row());
        let predictions = compute(&state, work, d, move |_| {
            let out = model
                .predict(&matrix.data, matrix.rows)
                .map_err(|e| ApiError::from(e).in_dialect(d))?;
            Ok(match out {
                Prediction::Classes(idx) => {
                    let classes = model.classes();
                    Value::Array(
                        idx.into_iter()
                            .map(|i| serde_json::to_value(&classes[i]).unwrap_or(Value::Null))
                            .collect(),
                    )
                }
                Prediction::Values(v) if model.n_outputs() == 1 => json!(v),
                Prediction::Values(v) => json!(v.chunks(model.n_outputs()).collect::<Vec<_>>()),
            })
        })
        .await?;
        Ok(axum::Json(json!({ "predictions": predictions })))
    }
    .await;
    result.into_response()
}

async fn embeddings(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let d = Dialect::OpenAi;
    let result = async {
        let body = json_body(body, d, state.config.max_body_bytes)?;
        let name = match body.get("model") {
            Some(Value::String(m)) => m.clone(),
            Some(_) => {
                return Err(
                    ApiError::new(StatusCode::BAD_REQUEST, d, "'model' must be a string")
                        .with_param("model"),
                );
            }
            None => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    d,
                    "missing required field 'model'",
                )
                .with_param("model"));
            }
        };
        let served = state.find(&name, d)?;
        let ServedModel::Embeddings(encoder) = &served.model else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                d,
                format!(
                    "model {name:?} is a {} model, not an embeddings model",
                    served.model.kind()
                ),
            )
            .with_param("model"));
        };
        let encoder = Arc::clone(encoder);
        let req =
            openai::EmbeddingRequest::parse(&body, &name, encoder.dim(), state.config.max_batch)
                .map_err(|(status, message)| ApiError::new(status, d, message))?;
        // A transformer forward pass is always too much work for the reactor.
        let work = usize::MAX;
        let batch = state.config.encode_batch;
        let reply = compute(&state, work, d, move |_| {
            openai::embed(encoder.as_ref(), &req, &name, batch).map_err(ApiError::from)
        })
        .await?;
        Ok(axum::Json(reply))
    }
    .await;
    result.into_response()
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let models: Vec<Value> = state
        .models
        .iter()
        .map(|m| json!({"name": m.name, "kind": m.model.kind()}))
        .collect();
    // "model" and "kind" name the first model, as a one-model server always did.
    let first = &state.models[0];
    axum::Json(json!({
        "status": "ok",
        "model": first.name,
        "kind": first.model.kind(),
        "models": models,
    }))
    .into_response()
}

async fn models(State(state): State<Arc<AppState>>) -> Response {
    let data: Vec<Value> = state
        .models
        .iter()
        .map(|m| {
            json!({
                "id": m.name,
                "object": "model",
                "created": 0,
                "owned_by": "realizar",
                "kind": m.model.kind(),
            })
        })
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut resp = state.metrics.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// Count and time every request, and give any non-JSON error (unknown route, wrong
/// method, timeout) a JSON body like the handlers' own errors.
async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = route_label(req.uri().path());
    let dialect = if route == "/invocations" {
        Dialect::Mlflow
    } else {
        Dialect::OpenAi
    };
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let message = match status {
            StatusCode::NOT_FOUND => format!("no route {method} {path}"),
            StatusCode::METHOD_NOT_ALLOWED => format!("method {method} is not allowed on {path}"),
            StatusCode::REQUEST_TIMEOUT => {
                format!(
                    "the request was not answered within {:?}",
                    state.config.request_timeout
                )
            }
            s => s.canonical_reason().unwrap_or("error").to_owned(),
        };
        resp = ApiError::new(status, dialect, message).into_response();
    }
    state
        .metrics
        .record(route, status.as_u16(), start.elapsed());
    resp
}

/// The router with every route, limit and middleware.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    // Inference has its own deadline (answered 503 by `compute`); this outer one, a
    // second later, bounds everything else, such as a client trickling its body (408).
    let timeout = state.config.request_timeout + Duration::from_secs(1);
    Router::new()
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/completions", post(chat::completions))
        .route("/tokenize", post(chat::tokenize))
        .route("/detokenize", post(chat::detokenize))
        .route("/invocations", post(invocations))
        .route("/health", get(health))
        .route("/ping", get(health))
        .route("/v1/models", get(models))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), observe))
        .with_state(state)
}

/// Load what `path` names: a GGUF language model, a tabular model file, or an
/// encoder directory. Returns the model and the name it is served under.
///
/// `pacha://ROOT/NAME@ALIAS` (or `@v3`, or no `@` for the latest version) names a
/// tabular model in a pacha registry: its signature, size and SHA-256 are verified by
/// pacha before the bytes are parsed, and it is served under its registered name.
pub fn load_model(path: &Path) -> crate::Result<(ServedModel, String)> {
    load_model_with(path, cli::DEFAULT_LLM_THREADS)
}

/// [`load_model`], a language model computing each generation on `llm_threads` threads.
pub fn load_model_with(path: &Path, llm_threads: usize) -> crate::Result<(ServedModel, String)> {
    if let Some(uri) = path.to_str().filter(|s| s.starts_with(PACHA_SCHEME)) {
        return load_from_pacha(uri);
    }
    if path.is_dir() {
        return openai::load_encoder(path).map(|(e, name)| (ServedModel::Embeddings(e), name));
    }
    let stem = path
        .file_stem()
        .map_or_else(|| "model".to_owned(), |s| s.to_string_lossy().into_owned());
    if is_gguf(path)? {
        let llm = crate::llm::Llm::load(path, llm_threads)?;
        let model = TextModel::from_llm(llm)?;
        return Ok((ServedModel::Text(Arc::new(model)), stem));
    }
    let model = TabularModel::load(path)?;
    Ok((ServedModel::Tabular(Arc::new(model)), stem))
}

/// Whether the file starts with GGUF's magic.
fn is_gguf(path: &Path) -> crate::Result<bool> {
    use std::io::Read as _;
    let io = |source| crate::Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(io)?;
    match f.read_exact(&mut magic) {
        Ok(()) => Ok(&magic == b"GGUF"),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(io(e)),
    }
}

/// The prefix of a model reference into a pacha registry.
pub const PACHA_SCHEME: &str = "pacha://";

fn load_from_pacha(uri: &str) -> crate::Result<(ServedModel, String)> {
    let bad = |message: String| crate::Error::Format {
        path: uri.into(),
        message,
    };
    let (root, reference) = uri[PACHA_SCHEME.len()..]
        .rsplit_once('/')
        .filter(|(root, reference)| !root.is_empty() && !reference.is_empty())
        .ok_or_else(|| bad("expected pacha://ROOT/NAME@ALIAS".to_owned()))?;
    let loaded = pacha::Registry::open(Path::new(root))
        .and_then(|registry| registry.load(reference))
        .map_err(|e| bad(format!("refused by the registry: {e}")))?;
    let model = TabularModel::from_bytes(&loaded.bytes).map_err(|e| match e {
        crate::Error::Format { message, .. } => bad(message),
        other => other,
    })?;
    Ok((ServedModel::Tabular(Arc::new(model)), loaded.manifest.name))
}

/// Resolves when the process receives SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Serve `state` on `listener` until `shutdown` resolves, then finish in-flight requests.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A server running inside another program: `state` served on 127.0.0.1 at a free port by a
/// runtime on its own thread, for programs that embed it (the course demos, tests).
/// [`Background::stop`] shuts it down gracefully; dropping it closes the stop channel, which
/// shuts it down too, without waiting.
#[derive(Debug)]
pub struct Background {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Background {
    /// Bind a free loopback port and start serving `state` there.
    pub fn start(state: Arc<AppState>) -> std::io::Result<Background> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(serve_on(listener, state, async {
                let _ = stopped.await;
            }))
        });
        Ok(Background {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Graceful shutdown: in-flight requests finish, then the runtime thread ends.
    pub fn stop(mut self) -> std::io::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(std::io::Error::other("the server thread panicked")),
            None => Ok(()),
        }
    }
}

/// One `--model [NAME=]PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// Name requests use; defaults to the file stem or the encoder's name.
    pub name: Option<String>,
    pub path: std::path::PathBuf,
}

/// Options of `realizar serve` (parsed by [`cli::parse`]).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub models: Vec<ModelSpec>,
    pub host: String,
    pub port: u16,
    pub config: ServerConfig,
    /// Worker threads of the runtime; 0 means one per CPU.
    pub threads: usize,
    /// Threads computing one text generation.
    pub llm_threads: usize,
}

/// Load the models, bind, print the address to stderr and serve until SIGINT/SIGTERM.
/// This is the whole of `realizar serve`, for the binary and for the Python wheel.
pub fn run(opts: &ServeOptions) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut models = Vec::with_capacity(opts.models.len());
    for spec in &opts.models {
        let (model, default_name) = load_model_with(&spec.path, opts.llm_threads)?;
        let name = spec.name.clone().unwrap_or(default_name);
        models.push(Served { name, model });
    }
    let state = Arc::new(AppState::with_models(models, opts.config.clone())?);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if opts.threads > 0 {
        builder.worker_threads(opts.threads);
    }
    let runtime = builder.enable_all().build()?;
    runtime.block_on(async {
        let addr: SocketAddr = tokio::net::lookup_host((opts.host.as_str(), opts.port))
            .await?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("cannot resolve host {:?}", opts.host)))?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let names: Vec<String> = state
            .models()
            .iter()
            .map(|m| format!("{} ({})", m.name, m.model.kind()))
            .collect();
        eprintln!("realizar: serving {} on http://{local}", names.join(", "));
        serve_on(listener, state, shutdown_signal()).await?;
        eprintln!("realizar: shut down");
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    })
}

#[cfg(test)]
mod tests;
