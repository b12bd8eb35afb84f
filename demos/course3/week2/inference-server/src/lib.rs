//! Serving as a reusable step: realizar's own server (the code behind `realizar serve`)
//! started in-process on a loopback port, on a runtime thread of its own, serving a
//! model loaded from `pacha://ROOT/NAME@ALIAS` (verified by pacha before it is parsed);
//! and the MLflow `dataframe_split` payload the client scores with.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use course3_kit::data::FEATURES;
use course3_kit::http::Endpoint;
use realizar::server::{AppState, Background, ServedModel, ServerConfig, load_model};
use realizar::tabular::TabularModel;
use serde_json::{Value, json};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A running server; [`Server::stop`] shuts it down gracefully.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub name: String,
    /// The served model itself, for in-process predictions to compare with.
    pub model: Arc<TabularModel>,
    inner: Background,
}

impl Server {
    /// Load `uri` (a file or `pacha://...`) and serve it on 127.0.0.1 at a free port.
    pub fn start(uri: &str) -> Result<Server, Error> {
        let (model, name) = load_model(Path::new(uri))?;
        let ServedModel::Tabular(tabular) = &model else {
            return Err(format!("{uri} is not a tabular model").into());
        };
        let tabular = Arc::clone(tabular);
        let state = Arc::new(AppState::new(model, name.clone(), ServerConfig::default()));
        let server = Background::start(state)?;
        Ok(Server {
            addr: server.addr(),
            name,
            model: tabular,
            inner: server,
        })
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            host: self.addr.ip().to_string(),
            port: self.addr.port(),
            base_path: String::new(),
        }
    }

    /// Graceful shutdown: in-flight requests finish, then the runtime thread ends.
    pub fn stop(self) -> Result<(), Error> {
        Ok(self.inner.stop()?)
    }
}

/// `{"dataframe_split": {"columns": FEATURES, "data": rows}}` for row-major `x`.
pub fn dataframe_split(x: &[f64]) -> Value {
    let rows: Vec<&[f64]> = x.chunks_exact(FEATURES.len()).collect();
    json!({"dataframe_split": {"columns": FEATURES, "data": rows}})
}

/// POST a payload to `/invocations` and return its `predictions`, or the error body.
pub fn invoke(endpoint: &Endpoint, payload: &Value) -> Result<Vec<Value>, Error> {
    let r = endpoint.post_json("/invocations", &payload.to_string())?;
    if r.status != 200 {
        return Err(format!("/invocations answered {}: {}", r.status, r.body).into());
    }
    let v: Value = serde_json::from_str(&r.body)?;
    v.get("predictions")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| format!("no predictions list in {}", r.body).into())
}

/// The in-process answers of `model` for `x`, as the JSON the server returns.
pub fn local_predictions(model: &TabularModel, x: &[f64]) -> Result<Vec<Value>, Error> {
    let rows = x.len() / FEATURES.len();
    match model.predict(x, rows)? {
        realizar::tabular::Prediction::Classes(idx) => idx
            .into_iter()
            .map(|i| Ok(serde_json::to_value(&model.classes()[i])?))
            .collect(),
        realizar::tabular::Prediction::Values(v) => Ok(v.into_iter().map(Value::from).collect()),
    }
}

/// The `q` quantile (0..=1) of sorted samples, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
