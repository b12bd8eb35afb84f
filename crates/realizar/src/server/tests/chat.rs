//! The completion routes on a stand-in generator (a byte-level vocabulary that spells
//! out a fixed script): request checks, OpenAI's documents and SSE framing, cancellation
//! when the response is dropped, concurrent streams. The real model behind the same
//! routes is tested with the official client in tests/python/test_realizar_llm_server.py.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::super::*;
use crate::bpe::{BpeConfig, BpeTokenizer};
use crate::chat_template::ChatTemplate;
use crate::llm::{FinishReason, GenerateOptions, Generation};

const SCRIPT: &str = "Héllo 😀 world. ";

struct Script {
    tok: BpeTokenizer,
    ctx: usize,
    delay: Duration,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

fn script(ctx: usize, delay: Duration) -> Script {
    let mut tokens: Vec<String> = (0u8..=255)
        .map(|b| {
            let mut s = String::new();
            s.push(crate::bpe::byte_char(b));
            s
        })
        .collect();
    tokens.push("<|im_start|>".into());
    tokens.push("<|im_end|>".into());
    let mut types = vec![1; 256];
    types.extend([3, 3]);
    let tok = BpeTokenizer::new(BpeConfig {
        tokens,
        merges: vec![],
        token_types: types,
        bos: None,
        eos: Some(257),
        pad: None,
        unk: None,
        add_bos: false,
        pre: "smollm".into(),
    })
    .unwrap();
    Script {
        tok,
        ctx,
        delay,
        running: AtomicUsize::new(0),
        max_running: AtomicUsize::new(0),
    }
}

impl Generator for Script {
    fn tokenizer(&self) -> &BpeTokenizer {
        &self.tok
    }
    fn context_length(&self) -> usize {
        self.ctx
    }
    fn generate(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> crate::Result<Generation> {
        opts.validate()?;
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let bytes = SCRIPT.as_bytes();
        let start = (opts.seed as usize) % 3;
        let mut tokens = Vec::new();
        let mut finish = FinishReason::Length;
        for i in 0..opts.max_tokens {
            std::thread::sleep(self.delay);
            let id = u32::from(bytes[(start + i) % bytes.len()]);
            tokens.push(id);
            if !on_token(id) {
                finish = FinishReason::Cancelled;
                break;
            }
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(Generation {
            text: self.tok.decode(&tokens),
            completion_tokens: tokens.len(),
            tokens,
            finish_reason: finish,
            prompt_tokens: prompt.len(),
        })
    }
}

const TEMPLATE: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

fn state_with(generator: Arc<Script>, config: ServerConfig) -> Arc<AppState> {
    let text = TextModel {
        generator,
        template: Some(ChatTemplate::new(TEMPLATE, "", "<|im_end|>").unwrap()),
    };
    let served = vec![
        Served {
            name: "chat".into(),
            model: ServedModel::Text(Arc::new(text)),
        },
        Served {
            name: "fake-encoder".into(),
            model: ServedModel::Embeddings(Arc::new(super::Fake)),
        },
    ];
    Arc::new(AppState::with_models(served, config).unwrap())
}

fn state() -> Arc<AppState> {
    state_with(
        Arc::new(script(64, Duration::ZERO)),
        ServerConfig::default(),
    )
}

async fn post(state: &Arc<AppState>, path: &str, body: Value) -> (StatusCode, Value, String) {
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = router(Arc::clone(state)).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, v, text)
}

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

#[tokio::test]
async fn chat_document_and_usage() {
    let st = state();
    let (status, v, _) = post(
        &st,
        "/v1/chat/completions",
        json!({"model": "chat", "messages": user("hi"), "max_tokens": 5, "seed": 0}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "Héll");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    // "<|im_start|>" (1, parsed as special) + "user\nhi" (7) + "<|im_end|>" + "\n" +
    // "<|im_start|>" + "assistant\n" (10).
    let prompt = 1 + 7 + 1 + 1 + 1 + 10;
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": prompt, "completion_tokens": 5, "total_tokens": prompt + 5})
    );
}

#[tokio::test]
async fn completions_document_and_echo() {
    let st = state();
    let (status, v, _) = post(
        &st,
        "/v1/completions",
        json!({"model": "chat", "prompt": "ab", "max_tokens": 3, "seed": 1, "echo": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], "abél");
    assert_eq!(v["usage"]["prompt_tokens"], 2);
}

/// The `data:` payloads of an SSE body, in order.
fn events(body: &str) -> Vec<String> {
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").expect("data: line").to_owned())
        .collect()
}

#[tokio::test]
async fn chat_stream_is_openai_sse() {
    let st = state();
    let (status, _, body) = post(
        &st,
        "/v1/chat/completions",
        json!({"model": "chat", "messages": user("hi"), "max_tokens": 9, "stream": true,
               "stream_options": {"include_usage": true}, "seed": 0}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let ev = events(&body);
    assert_eq!(ev.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = ev[..ev.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    // 9 bytes: "Héllo " is 7 bytes, then the emoji's first 2 of 4 bytes, which a
    // stream never shows half of: the final text ends with U+FFFD from the decode.
    assert!(text.starts_with("Héllo "), "{text:?}");
    // Every chunk is valid text; none splits a character.
    let n = chunks.len();
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks[n - 1]["choices"], json!([]));
    assert_eq!(chunks[n - 1]["usage"]["completion_tokens"], 9);
    assert!(chunks[..n - 1].iter().all(|c| c["usage"].is_null()));
}

#[tokio::test]
async fn bad_requests_are_openai_errors() {
    let st = state();
    let cases = [
        (
            json!({"model": "chat", "messages": []}),
            400,
            "must not be empty",
            "messages",
        ),
        (
            json!({"model": "chat", "messages": [{"role": "wizard", "content": "x"}]}),
            400,
            "wizard",
            "messages[0].role",
        ),
        (
            json!({"model": "nope", "messages": user("x")}),
            404,
            "not found",
            "model",
        ),
        (
            json!({"model": "fake-encoder", "messages": user("x")}),
            400,
            "embeddings model",
            "model",
        ),
        (
            json!({"model": "chat", "messages": user("x"), "temperature": 3}),
            400,
            "temperature",
            "temperature",
        ),
        (
            json!({"model": "chat", "messages": user("x"), "temperature": -0.5}),
            400,
            "temperature",
            "temperature",
        ),
        (
            json!({"model": "chat", "messages": user("x"), "top_p": 1.5}),
            400,
            "top_p",
            "top_p",
        ),
        (
            json!({"model": "chat", "messages": user("x"), "n": 2}),
            400,
            "'n' must be 1",
            "n",
        ),
        (
            json!({"model": "chat", "messages": user("x"), "max_tokens": -1}),
            400,
            "max_tokens",
            "max_tokens",
        ),
        (
            json!({"model": "chat", "messages": user("x"), "stop": ["a", ""]}),
            400,
            "stop",
            "stop",
        ),
        (
            json!({"model": "chat", "messages": user("x"), "max_tokens": 1000}),
            400,
            "context length",
            "max_tokens",
        ),
        (
            json!({"model": "chat", "messages": user(&"x".repeat(100))}),
            400,
            "context length",
            "messages",
        ),
        (
            json!({"model": "chat", "prompt": "x"}),
            400,
            "messages",
            "messages",
        ),
        (
            json!({"model": "chat", "prompt": ["a", "b"]}),
            400,
            "one prompt",
            "prompt",
        ),
        (json!({"messages": user("x")}), 400, "model", "model"),
    ];
    for (body, status, needle, param) in cases {
        let path = if body.get("prompt").is_some()
            && body.get("messages").is_none()
            && body["model"] == "chat"
            && body["prompt"].is_array()
        {
            "/v1/completions"
        } else {
            "/v1/chat/completions"
        };
        let (s, v, _) = post(&st, path, body.clone()).await;
        assert_eq!(s.as_u16(), status, "{body}: {v}");
        let e = &v["error"];
        assert!(
            e["message"].as_str().unwrap().contains(needle),
            "{body}: {v}"
        );
        assert_eq!(e["param"], param, "{body}: {v}");
        assert!(e["type"].is_string() && e.get("code").is_some(), "{v}");
    }
    // Malformed JSON.
    let req = Request::builder()
        .method("POST")
        .uri("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from("{\"model\": "))
        .unwrap();
    let resp = router(Arc::clone(&st)).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let (_, v, _) = post(
        &st,
        "/v1/chat/completions",
        json!({"model": "chat", "messages": user(&"x".repeat(100))}),
    )
    .await;
    assert_eq!(v["error"]["code"], "context_length_exceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stream_cancels_generation() {
    let generator = Arc::new(script(100_000, Duration::from_millis(2)));
    let st = state_with(Arc::clone(&generator), ServerConfig::default());
    let req = Request::builder()
        .method("POST")
        .uri("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"model": "chat", "messages": user("hi"), "max_tokens": 50_000, "stream": true})
                .to_string(),
        ))
        .unwrap();
    let resp = router(Arc::clone(&st)).oneshot(req).await.unwrap();
    let mut body = resp.into_body().into_data_stream();
    use futures_core::Stream as _;
    let first = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_next(cx)).await;
    assert!(first.is_some());
    drop(body);
    // The generation notices within a token or two.
    for _ in 0..500 {
        if st.metrics().generations_cancelled() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(st.metrics().generations_cancelled(), 1);
    assert_eq!(generator.running.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_generations_overlap() {
    let generator = Arc::new(script(1000, Duration::from_millis(5)));
    let st = state_with(Arc::clone(&generator), ServerConfig::default());
    let one = || {
        let st = Arc::clone(&st);
        tokio::spawn(async move {
            post(
                &st,
                "/v1/chat/completions",
                json!({"model": "chat", "messages": user("hi"), "max_tokens": 40, "stream": true}),
            )
            .await
        })
    };
    let (a, b) = (one(), one());
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    assert_eq!(generator.max_running.load(Ordering::SeqCst), 2);
    // While generations run, the reactor still answers.
    let (s, _, _) = post(
        &st,
        "/v1/embeddings",
        json!({"model": "fake-encoder", "input": "x"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}
