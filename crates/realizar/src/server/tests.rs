//! Handler tests: each request goes through the whole router (limits, middleware,
//! error bodies) with `tower::ServiceExt::oneshot`, no socket needed.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::*;

fn tabular_state(config: ServerConfig) -> Arc<AppState> {
    let model = TabularModel::from_bytes(&crate::tabular::tests::logistic_bytes()).unwrap();
    Arc::new(AppState::new(
        ServedModel::Tabular(Arc::new(model)),
        "logreg",
        config,
    ))
}

/// A stand-in encoder: embedding i of a text is (len, words, 1, 0, ...) normalised.
struct Fake;

impl Embedder for Fake {
    fn dim(&self) -> usize {
        4
    }
    fn model_name(&self) -> &str {
        "fake-encoder"
    }
    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace().count() + 2
    }
    fn encode(&self, texts: &[&str], _batch: usize, normalize: bool) -> crate::Result<Vec<f32>> {
        Ok(texts
            .iter()
            .flat_map(|t| {
                let v = [
                    t.len() as f32,
                    t.split_whitespace().count() as f32,
                    1.0,
                    0.0,
                ];
                let n = if normalize {
                    v.iter().map(|x| x * x).sum::<f32>().sqrt()
                } else {
                    1.0
                };
                v.map(|x| x / n)
            })
            .collect())
    }
}

fn embed_state() -> Arc<AppState> {
    Arc::new(AppState::new(
        ServedModel::Embeddings(Arc::new(Fake)),
        "fake-encoder",
        ServerConfig::default(),
    ))
}

async fn call(
    state: &Arc<AppState>,
    method: &str,
    uri: &str,
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap();
    let resp = router(Arc::clone(state)).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

#[tokio::test]
async fn invocations_answer_every_input_shape() {
    let state = tabular_state(ServerConfig::default());
    let want = json!({"predictions": ["yes", "no"]});
    for body in [
        json!({"instances": [[1.0, 0.0], [0.0, 1.0]]}),
        json!({"inputs": [[1, 0], [0, 1]]}),
        json!({"dataframe_split": {"columns": ["0", "1"], "data": [[1, 0], [0, 1]]}}),
        json!({"dataframe_records": [{"0": 1, "1": 0}, {"0": 0, "1": 1}]}),
    ] {
        let (status, v) = call(&state, "POST", "/invocations", body.to_string()).await;
        assert_eq!((status, &v), (StatusCode::OK, &want), "{body}");
    }
}

#[tokio::test]
async fn invocations_reject_bad_input_with_json() {
    let config = ServerConfig {
        max_body_bytes: 2048,
        max_batch: 3,
        ..ServerConfig::default()
    };
    let state = tabular_state(config);
    let big = json!({"instances": vec![json!([0.0, 0.0]); 4]}).to_string();
    let huge = format!("{{\"instances\": [{}]}}", vec!["[1.0, 2.0]"; 400].join(","));
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (
            "{not json".into(),
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            json!({"instances": [[1.0, 2.0, 3.0]]}).to_string(),
            StatusCode::BAD_REQUEST,
            "3 features",
        ),
        (
            json!({"instances": [[1.0, "a"]]}).to_string(),
            StatusCode::BAD_REQUEST,
            "expected a finite number",
        ),
        (
            json!({"rows": [[1.0, 2.0]]}).to_string(),
            StatusCode::BAD_REQUEST,
            "needs one of the keys",
        ),
        (
            big,
            StatusCode::PAYLOAD_TOO_LARGE,
            "exceeds the limit of 3 rows",
        ),
        (
            huge,
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than the limit of 2048 bytes",
        ),
    ];
    for (body, want_status, want) in cases {
        let (status, v) = call(&state, "POST", "/invocations", body.clone()).await;
        assert_eq!(status, want_status, "{v}");
        let message = v["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(want),
            "{message:?} should contain {want:?}"
        );
        assert!(v["error_code"].is_string(), "{v}");
    }
    assert_eq!(state.metrics().count("/invocations", 400), 4);
    assert_eq!(state.metrics().count("/invocations", 413), 2);
}

#[tokio::test]
async fn large_batches_leave_the_reactor_and_agree() {
    // inline_work = 0 forces spawn_blocking; the answer must not change.
    let state = tabular_state(ServerConfig {
        inline_work: 0,
        ..ServerConfig::default()
    });
    let (status, v) = call(
        &state,
        "POST",
        "/invocations",
        json!({"instances": [[1, 0], [0, 1]]}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v, json!({"predictions": ["yes", "no"]}));
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let state = tabular_state(ServerConfig::default());
    let (status, v) = call(&state, "GET", "/nope", Body::empty()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("/nope"),
        "{v}"
    );
    let (status, v) = call(&state, "GET", "/invocations", Body::empty()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(v["message"].as_str().unwrap().contains("GET"), "{v}");
    let (status, v) = call(
        &state,
        "POST",
        "/v1/embeddings",
        json!({"input": "x", "model": "m"}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "model_not_found", "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("logreg"),
        "{v}"
    );
    // The right name, the wrong kind of model.
    let (status, v) = call(
        &state,
        "POST",
        "/v1/embeddings",
        json!({"input": "x", "model": "logreg"}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tabular model"),
        "{v}"
    );
}

#[tokio::test]
async fn health_models_and_metrics() {
    let state = tabular_state(ServerConfig::default());
    let (status, v) = call(&state, "GET", "/health", Body::empty()).await;
    assert_eq!(
        (status, v),
        (
            StatusCode::OK,
            json!({"status": "ok", "model": "logreg", "kind": "tabular",
                   "models": [{"name": "logreg", "kind": "tabular"}]})
        )
    );
    let (_, v) = call(&state, "GET", "/v1/models", Body::empty()).await;
    assert_eq!(v["data"][0]["id"], "logreg");
    let (status, v) = call(&state, "GET", "/metrics", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    let text = v.as_str().unwrap();
    assert!(
        text.contains("realizar_requests_total{route=\"/health\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("realizar_request_duration_seconds_count{route=\"/v1/models\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn embeddings_float_and_base64() {
    let state = embed_state();
    let body = json!({"input": ["hello world", "a"], "model": "fake-encoder"}).to_string();
    let (status, v) = call(&state, "POST", "/v1/embeddings", body).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "fake-encoder");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 4 + 3, "total_tokens": 7})
    );
    let floats: Vec<f32> = v["data"][1]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(v["data"][1]["index"], 1);
    assert!((floats[0] - 1.0 / 3f32.sqrt()).abs() < 1e-6, "{floats:?}");

    let body =
        json!({"input": "a", "model": "fake-encoder", "encoding_format": "base64"}).to_string();
    let (_, v) = call(&state, "POST", "/v1/embeddings", body).await;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(decoded, floats);
}

#[tokio::test]
async fn embeddings_reject_bad_requests() {
    let state = embed_state();
    let cases = [
        (
            json!({"model": "fake-encoder"}),
            StatusCode::BAD_REQUEST,
            "missing required field 'input'",
        ),
        (
            json!({"input": [1, 2], "model": "fake-encoder"}),
            StatusCode::BAD_REQUEST,
            "token-id input",
        ),
        (
            json!({"input": "x", "model": "other"}),
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            json!({"input": "x", "model": "fake-encoder", "encoding_format": "int8"}),
            StatusCode::BAD_REQUEST,
            "encoding_format",
        ),
        (
            json!({"input": [], "model": "fake-encoder"}),
            StatusCode::BAD_REQUEST,
            "empty",
        ),
    ];
    for (body, want_status, want) in cases {
        let (status, v) = call(&state, "POST", "/v1/embeddings", body.to_string()).await;
        assert_eq!(status, want_status, "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(want),
            "{message:?} should contain {want:?}"
        );
    }
}

/// An encoder that takes longer than the server's deadline.
struct Slow;

impl Embedder for Slow {
    fn dim(&self) -> usize {
        2
    }
    fn model_name(&self) -> &str {
        "slow"
    }
    fn count_tokens(&self, _text: &str) -> usize {
        1
    }
    fn encode(&self, texts: &[&str], _batch: usize, _normalize: bool) -> crate::Result<Vec<f32>> {
        std::thread::sleep(Duration::from_millis(400));
        Ok(vec![0.0; texts.len() * 2])
    }
}

#[tokio::test]
async fn slow_inference_is_a_json_503_not_a_hang() {
    let config = ServerConfig {
        request_timeout: Duration::from_millis(50),
        ..ServerConfig::default()
    };
    let state = Arc::new(AppState::new(
        ServedModel::Embeddings(Arc::new(Slow)),
        "slow",
        config,
    ));
    let start = std::time::Instant::now();
    let body = json!({"input": "x", "model": "slow"}).to_string();
    let (status, v) = call(&state, "POST", "/v1/embeddings", body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than"),
        "{v}"
    );
    assert!(
        start.elapsed() < Duration::from_millis(350),
        "answered only after {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn csv_is_refused_with_415() {
    let state = tabular_state(ServerConfig::default());
    let req = Request::builder()
        .method("POST")
        .uri("/invocations")
        .header("content-type", "text/csv")
        .body(Body::from("a,b\n1,2\n"))
        .unwrap();
    let resp = router(Arc::clone(&state)).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(v["message"].as_str().unwrap().contains("CSV"), "{v}");
}

mod chat;
