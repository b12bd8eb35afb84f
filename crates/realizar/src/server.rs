//! The HTTP server: an OpenAI-compatible embeddings endpoint and the MLflow scoring
//! protocol, on axum and tokio.
//!
//! | route | answers |
//! |---|---|
//! | `POST /v1/embeddings` | OpenAI embeddings (when serving a sentence encoder) |
//! | `POST /invocations` | MLflow scoring protocol (when serving a tabular model) |
//! | `GET /health` | `{"status": "ok", ...}` |
//! | `GET /v1/models` | the served model, OpenAI list format |
//! | `GET /metrics` | Prometheus text: requests by route and status, latency histogram |
//!
//! The model is loaded once and shared read-only through an `Arc`: requests never take a
//! lock. Inference is CPU-bound, so a request whose estimated work is above
//! [`ServerConfig::inline_work`] multiply-adds or node visits runs on tokio's blocking
//! pool; a small tabular batch (a few microseconds of work) runs inline, because handing
//! it to another thread would cost more than computing it and would add latency.
//! Every error is a JSON body with a 4xx/5xx status saying what was wrong.

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
}

impl std::fmt::Debug for ServedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServedModel::Tabular(m) => write!(f, "Tabular({})", m.estimator()),
            ServedModel::Embeddings(e) => write!(f, "Embeddings({})", e.model_name()),
        }
    }
}

impl ServedModel {
    fn kind(&self) -> &'static str {
        match self {
            ServedModel::Tabular(_) => "tabular",
            ServedModel::Embeddings(_) => "embeddings",
        }
    }
}

/// Shared, read-only state of every request.
#[derive(Debug)]
pub struct AppState {
    model: ServedModel,
    name: String,
    config: ServerConfig,
    metrics: Metrics,
}

impl AppState {
    /// State for serving `model` under `name`.
    pub fn new(model: ServedModel, name: impl Into<String>, config: ServerConfig) -> Self {
        Self {
            model,
            name: name.into(),
            config,
            metrics: Metrics::default(),
        }
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

/// An error answer.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
    dialect: Dialect,
}

impl ApiError {
    fn new(status: StatusCode, dialect: Dialect, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            dialect,
        }
    }
}

fn error_body(status: StatusCode, dialect: Dialect, message: &str) -> Value {
    match dialect {
        Dialect::OpenAi => {
            let kind = if status.is_server_error() {
                "server_error"
            } else {
                "invalid_request_error"
            };
            json!({"error": {"message": message, "type": kind, "param": null, "code": status.as_u16()}})
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
        (
            self.status,
            axum::Json(error_body(self.status, self.dialect, &self.message)),
        )
            .into_response()
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
        let ServedModel::Tabular(model) = &state.model else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                d,
                "this server serves an embeddings model: POST /v1/embeddings instead",
            ));
        };
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
        let matrix = schema.parse(&body).map_err(|e| {
            let status = if e.0.contains("exceeds the limit") {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            ApiError::new(status, d, e.0)
        })?;
        let work = matrix.rows.saturating_mul(model.cost_per_row());
        let predictions = compute(&state, work, d, move |st| {
            let ServedModel::Tabular(model) = &st.model else {
                unreachable!("checked above")
            };
            let out = model
                .predict(&matrix.data, matrix.rows)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, d, e.to_string()))?;
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
        let ServedModel::Embeddings(encoder) = &state.model else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                d,
                "this server serves a tabular model: POST /invocations instead",
            ));
        };
        let body = json_body(body, d, state.config.max_body_bytes)?;
        let req = openai::EmbeddingRequest::parse(
            &body,
            &state.name,
            encoder.dim(),
            state.config.max_batch,
        )
        .map_err(|(status, message)| ApiError::new(status, d, message))?;
        // A transformer forward pass is always too much work for the reactor.
        let work = usize::MAX;
        let batch = state.config.encode_batch;
        let reply = compute(&state, work, d, move |st| {
            let ServedModel::Embeddings(encoder) = &st.model else {
                unreachable!("checked above")
            };
            openai::embed(encoder.as_ref(), &req, &st.name, batch)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, d, e.to_string()))
        })
        .await?;
        Ok(axum::Json(reply))
    }
    .await;
    result.into_response()
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(json!({"status": "ok", "model": state.name, "kind": state.model.kind()}))
        .into_response()
}

async fn models(State(state): State<Arc<AppState>>) -> Response {
    let owned_by = "realizar";
    axum::Json(json!({
        "object": "list",
        "data": [{"id": state.name, "object": "model", "created": 0, "owned_by": owned_by}],
    }))
    .into_response()
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

/// Load what `path` names: a tabular model file, or (with an embedder loader) an
/// encoder directory. Returns the model and the name it is served under.
///
/// `pacha://ROOT/NAME@ALIAS` (or `@v3`, or no `@` for the latest version) names a
/// tabular model in a pacha registry: its signature, size and SHA-256 are verified by
/// pacha before the bytes are parsed, and it is served under its registered name.
pub fn load_model(path: &Path) -> crate::Result<(ServedModel, String)> {
    if let Some(uri) = path.to_str().filter(|s| s.starts_with(PACHA_SCHEME)) {
        return load_from_pacha(uri);
    }
    if path.is_dir() {
        return openai::load_encoder(path).map(|(e, name)| (ServedModel::Embeddings(e), name));
    }
    let model = TabularModel::load(path)?;
    let name = path
        .file_stem()
        .map_or_else(|| "model".to_owned(), |s| s.to_string_lossy().into_owned());
    Ok((ServedModel::Tabular(Arc::new(model)), name))
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

/// Options of `realizar serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub model: std::path::PathBuf,
    pub host: String,
    pub port: u16,
    /// Name the model is served under; defaults to the file stem or encoder name.
    pub name: Option<String>,
    pub config: ServerConfig,
    /// Worker threads of the runtime; 0 means one per CPU.
    pub threads: usize,
}

/// Load the model, bind, print the address to stderr and serve until SIGINT/SIGTERM.
/// This is the whole of `realizar serve`, for the binary and for the Python wheel.
pub fn run(opts: &ServeOptions) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (model, default_name) = load_model(&opts.model)?;
    let name = opts.name.clone().unwrap_or(default_name);
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
        eprintln!(
            "realizar: serving {name} ({}) on http://{local}",
            model.kind()
        );
        let state = Arc::new(AppState::new(model, name, opts.config.clone()));
        serve_on(listener, state, shutdown_signal()).await?;
        eprintln!("realizar: shut down");
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    })
}

#[cfg(test)]
mod tests;
