//! Greedy generation from a GGUF model, with prefill and decode speed:
//! `cargo run --release -p realizar --example llm_generate -- MODEL.gguf "prompt" [threads] [max_tokens]`.

use std::time::Instant;

use realizar::llm::{GenerateOptions, Llm};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, prompt, rest @ ..] = args.as_slice() else {
        return Err("usage: llm_generate MODEL.gguf PROMPT [threads] [max_tokens]".into());
    };
    let threads = rest.first().map_or(Ok(1), |t| t.parse())?;
    let max_tokens = rest.get(1).map_or(Ok(64), |t| t.parse())?;
    let llm = Llm::load(path.as_ref(), threads)?;
    let ids = llm.tokenizer().encode(prompt, true, true);
    let t0 = Instant::now();
    let mut first = None;
    let opts = GenerateOptions {
        max_tokens,
        ..GenerateOptions::default()
    };
    let g = llm.generate(&ids, &opts, &mut |_| {
        first.get_or_insert_with(|| t0.elapsed());
        true
    })?;
    let total = t0.elapsed();
    let ttft = first.unwrap_or(total);
    println!("{}", g.text);
    println!("tokens: {:?}", g.tokens);
    let decode = g.tokens.len().saturating_sub(1) as f64 / (total - ttft).as_secs_f64();
    println!(
        "prompt {} tokens, first token after {:.1} ms ({:.0} prompt tokens/s), decode {:.1} tokens/s, finish {:?}",
        ids.len(),
        ttft.as_secs_f64() * 1e3,
        ids.len() as f64 / ttft.as_secs_f64(),
        decode,
        g.finish_reason
    );
    Ok(())
}
