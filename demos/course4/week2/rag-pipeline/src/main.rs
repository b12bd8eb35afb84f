//! Course 4, week 2: a retrieval-augmented generation pipeline from scratch.
//!
//! chunk -> embed -> index -> retrieve -> fuse -> evaluate -> generate -> judge, each step
//! one call into the project's crates: trueno-rag cuts the documents (markdown sections,
//! recursive splitting for plain text), indexes them twice (BM25 and HNSW), fuses the two
//! rankings by reciprocal rank fusion and computes recall@5, MRR and nDCG on the knowledge
//! base's labelled questions; realizar embeds with all-MiniLM-L6-v2 and answers with
//! SmolLM2-135M-Instruct; trueno-rag's judge scores each answer's groundedness.
//!
//! The corpus is the one the Python lessons use: `data/knowledge_base.py` (deterministic,
//! no dependencies) writes its documents, passages and questions to a directory, which this
//! program reads. Labels name passages (markdown sections), so each chunk is mapped back to
//! the passage its first byte falls in; a ranked list of chunks becomes a ranked list of
//! passages, duplicates dropped. The models ship in PyPI packages; their paths come from
//! `realizar.models` (the one home of those defaults) through the Python interpreter.
//!
//! Environment: `PYTHON` (default `python`), `KB_DIR` (a directory `knowledge_base.py`
//! wrote; default: written to a temporary directory), `MINILM_DIR`, `SMOLLM2_GGUF` (model
//! paths), `RAG_LINES` (product lines in the corpus besides the policies, default `Breeze`,
//! `all` for every line), `RAG_QUESTIONS` (questions answered by the model, default 6).
//!
//! It asserts what it shows and exits non-zero when a claim does not hold: HNSW finds what
//! exact search finds, vectors beat BM25 on paraphrased questions, fusion beats both on
//! exact names and codes, and answers with retrieval state the labelled figure and are
//! grounded more often than answers without it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use realizar::chat_template::{ChatMessage, ChatTemplate};
use realizar::encoder::SentenceEncoder;
use realizar::llm::{GenerateOptions, Llm};
use serde_json::Value;
use trueno_rag::bm25::{Analyzer, Bm25, Bm25Params};
use trueno_rag::chunk;
use trueno_rag::eval;
use trueno_rag::filter::Filter;
use trueno_rag::fusion::rrf;
use trueno_rag::ground::{self, GroundParams};
use trueno_rag::hnsw::{Hnsw, HnswParams};

type Res<T> = Result<T, Box<dyn std::error::Error>>;
/// One question's ranked passages and the passages that answer it.
type Run = (Vec<u64>, Vec<u64>);

const CHUNK_CHARS: usize = 1000;
const DEPTH: usize = 50;
const K: usize = 5;
const MAX_TOKENS: usize = 24;
const SYSTEM: &str = "Answer the question using only the sources. \
                      Answer in one short sentence and cite the source like [1].";

fn check(ok: bool, claim: impl Into<String>) -> Res<()> {
    if ok {
        Ok(())
    } else {
        Err(format!("claim does not hold: {}", claim.into()).into())
    }
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python".into())
}

/// Run the interpreter; its stdout, or an error carrying its stderr.
fn run_python(args: &[&str]) -> Res<String> {
    let out = Command::new(python())
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {} (set PYTHON): {e}", python()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {args:?} failed: {}",
            python(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../..")
}

/// The knowledge base's directory; one this program wrote is removed when it ends.
struct KnowledgeBase {
    dir: PathBuf,
    owned: bool,
}

impl Drop for KnowledgeBase {
    fn drop(&mut self) {
        if self.owned {
            // Best effort: a leftover temporary directory is not worth failing the run.
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `KB_DIR`, or a temporary directory written now by the Python generator.
fn knowledge_base() -> Res<KnowledgeBase> {
    if let Ok(dir) = std::env::var("KB_DIR") {
        return Ok(KnowledgeBase {
            dir: dir.into(),
            owned: false,
        });
    }
    let dir = std::env::temp_dir().join(format!("rag-pipeline-kb-{}", std::process::id()));
    let kb = KnowledgeBase {
        dir: dir.clone(),
        owned: true,
    };
    let generator = project_root().join("data/knowledge_base.py");
    let generator = generator.to_str().ok_or("non-UTF-8 project path")?;
    let dir_arg = dir.to_str().ok_or("non-UTF-8 temporary path")?;
    run_python(&[generator, dir_arg])?;
    Ok(kb)
}

/// (MiniLM directory, SmolLM2 GGUF file): from the environment, else `realizar.models`.
fn model_paths() -> Res<(PathBuf, PathBuf)> {
    let (enc, llm) = (std::env::var("MINILM_DIR"), std::env::var("SMOLLM2_GGUF"));
    if let (Ok(e), Ok(l)) = (&enc, &llm) {
        return Ok((e.into(), l.into()));
    }
    let out = run_python(&[
        "-c",
        "from realizar.models import default_llm_path, default_model_dir\n\
         print(default_model_dir()); print(default_llm_path())",
    ])?;
    let mut lines = out.lines();
    let found_enc = lines.next().ok_or("realizar.models printed nothing")?;
    let found_llm = lines.next().ok_or("realizar.models printed one line")?;
    Ok((
        enc.map_or_else(|_| found_enc.into(), PathBuf::from),
        llm.map_or_else(|_| found_llm.into(), PathBuf::from),
    ))
}

fn read_json(path: &Path) -> Res<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?)
}

fn field<'a>(v: &'a Value, key: &str) -> Res<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("record without a string {key:?}: {v}").into())
}

fn index_field(v: &Value, key: &str) -> Res<usize> {
    let n = v
        .get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("record without an integer {key:?}: {v}"))?;
    Ok(usize::try_from(n)?)
}

struct Doc {
    title: String,
    text: String,
    /// (passage index, byte start, byte end) of the document's labelled passages.
    passages: Vec<(usize, usize, usize)>,
}

struct Question {
    text: String,
    answer: String,
    kind: String,
    relevant: Vec<u64>,
}

struct Chunked {
    text: String,
    passage: u64,
}

/// A ranked list of chunks as a ranked list of passages, each passage at its best rank.
fn to_passages(chunks: impl IntoIterator<Item = u64>, corpus: &[Chunked]) -> Vec<u64> {
    let mut seen = HashSet::new();
    chunks
        .into_iter()
        .map(|c| corpus[c as usize].passage)
        .filter(|p| seen.insert(*p))
        .collect()
}

/// Every number of the labelled answer, and at least half its other content words.
fn states_gold(answer: &str, gold: &str, analyzer: &Analyzer) -> bool {
    let words: HashSet<String> = analyzer.tokens(answer).into_iter().collect();
    let (numbers, others): (Vec<String>, Vec<String>) = analyzer
        .tokens(gold)
        .into_iter()
        .partition(|w| w.chars().any(|c| c.is_ascii_digit()));
    let found = others.iter().filter(|w| words.contains(*w)).count();
    numbers.iter().all(|n| words.contains(n)) && 2 * found >= others.len()
}

fn main() -> Res<()> {
    let lines_wanted = std::env::var("RAG_LINES").unwrap_or_else(|_| "Breeze".into());
    let n_questions: usize = std::env::var("RAG_QUESTIONS")
        .unwrap_or_else(|_| "6".into())
        .parse()
        .map_err(|e| format!("RAG_QUESTIONS: {e}"))?;
    if n_questions == 0 {
        return Err("RAG_QUESTIONS must be at least 1".into());
    }
    let kb_dir = knowledge_base()?;
    let kb = kb_dir.dir.as_path();
    let (minilm, gguf) = model_paths()?;

    // The corpus: policies plus the chosen product lines' documents.
    let meta = read_json(&kb.join("documents.json"))?;
    let mut docs: BTreeMap<String, Doc> = BTreeMap::new();
    for d in meta.as_array().ok_or("documents.json is not a list")? {
        let line = d.get("line").and_then(Value::as_str);
        let keep = match line {
            None => true,
            Some(l) => lines_wanted == "all" || lines_wanted.split(',').any(|w| w.trim() == l),
        };
        if keep {
            let id = field(d, "doc_id")?;
            let path = kb
                .join("docs")
                .join(format!("{id}.{}", field(d, "format")?));
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let title = field(d, "title")?.to_owned();
            docs.insert(
                id.to_owned(),
                Doc {
                    title,
                    text,
                    passages: Vec::new(),
                },
            );
        }
    }
    check(
        docs.len() > 9,
        format!("RAG_LINES={lines_wanted:?} selects product documents"),
    )?;
    let mut passage_ids: Vec<String> = Vec::new();
    for line in std::fs::read_to_string(kb.join("passages.jsonl"))?.lines() {
        let p: Value = serde_json::from_str(line)?;
        let Some(doc) = docs.get_mut(field(&p, "doc_id")?) else {
            continue;
        };
        // The generator counts characters (Python str indices); chunks count bytes.
        let bytes: Vec<usize> = doc
            .text
            .char_indices()
            .map(|(b, _)| b)
            .chain([doc.text.len()])
            .collect();
        let (s, e) = (index_field(&p, "start")?, index_field(&p, "end")?);
        if s > e || e >= bytes.len() {
            return Err(format!("passage {p} lies outside its document").into());
        }
        doc.passages.push((passage_ids.len(), bytes[s], bytes[e]));
        passage_ids.push(field(&p, "passage_id")?.to_owned());
    }
    let row_of: HashMap<&str, u64> = passage_ids
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i as u64))
        .collect();
    let mut questions = Vec::new();
    for q in read_json(&kb.join("questions.json"))?
        .as_array()
        .ok_or("questions.json is not a list")?
    {
        let ids: Vec<&str> = q
            .get("passage_ids")
            .and_then(Value::as_array)
            .ok_or("a question without passage_ids")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if let Some(relevant) = ids.iter().map(|p| row_of.get(p).copied()).collect() {
            questions.push(Question {
                text: field(q, "question")?.to_owned(),
                answer: field(q, "answer")?.to_owned(),
                kind: field(q, "kind")?.to_owned(),
                relevant,
            });
        }
    }

    // 1. Chunk: markdown by section (long sections split recursively), plain text
    //    recursively; each chunk keeps its heading path for embedding.
    let t = Instant::now();
    let mut corpus: Vec<Chunked> = Vec::new();
    let mut title_of_chunk: Vec<&str> = Vec::new();
    for (id, doc) in &docs {
        let chunks = if id.starts_with("support-") {
            chunk::recursive(&doc.text, CHUNK_CHARS, chunk::DEFAULT_SEPARATORS)?
        } else {
            chunk::markdown(&doc.text, CHUNK_CHARS)?
        };
        for c in chunks {
            let Some(&(p, _, _)) = doc
                .passages
                .iter()
                .find(|(_, s, e)| (*s..*e).contains(&c.start))
            else {
                return Err(format!("a chunk of {id} at byte {} has no passage", c.start).into());
            };
            corpus.push(Chunked {
                text: c.contextual_text(),
                passage: p as u64,
            });
            title_of_chunk.push(&doc.title);
        }
    }
    println!(
        "chunked {} documents ({} labelled passages) into {} chunks of at most {CHUNK_CHARS} \
         characters in {:.3} s; {} questions answerable from this corpus",
        docs.len(),
        passage_ids.len(),
        corpus.len(),
        t.elapsed().as_secs_f64(),
        questions.len()
    );

    // 2. Embed with MiniLM.
    let encoder = SentenceEncoder::load(&minilm)?;
    let dim = encoder.dim();
    let t = Instant::now();
    let texts: Vec<&str> = corpus.iter().map(|c| c.text.as_str()).collect();
    let chunk_vectors = encoder.encode(&texts, 32, true)?;
    let question_texts: Vec<&str> = questions.iter().map(|q| q.text.as_str()).collect();
    let question_vectors = encoder.encode(&question_texts, 32, true)?;
    println!(
        "embedded {} chunks and {} questions ({dim} dimensions) in {:.1} s",
        corpus.len(),
        questions.len(),
        t.elapsed().as_secs_f64()
    );

    // 3. Index twice: BM25 over the analysed text, HNSW over the vectors.
    let analyzer = Analyzer::english();
    let t = Instant::now();
    let bm25 = Bm25::from_texts(&texts, &analyzer, Bm25Params::default())?;
    let mut hnsw = Hnsw::new(dim, HnswParams::default())?;
    for (i, v) in chunk_vectors.chunks_exact(dim).enumerate() {
        hnsw.insert(i as u64, v, serde_json::Map::new())?;
    }
    println!(
        "indexed: BM25 and HNSW (M=16) in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // 4. Retrieve with each retriever, fuse, and measure on the labels.
    let mut runs: BTreeMap<(&str, &str), Vec<Run>> = BTreeMap::new();
    let (mut agree, mut total) = (0usize, 0usize);
    let mut hybrid_top: Vec<Vec<u64>> = Vec::new();
    for (q, qv) in questions.iter().zip(question_vectors.chunks_exact(dim)) {
        let lexical: Vec<u64> = bm25
            .top_k(&analyzer.tokens(&q.text), DEPTH)
            .into_iter()
            .map(|(i, _)| i as u64)
            .collect();
        let semantic: Vec<u64> = hnsw
            .search(qv, DEPTH, None, &Filter::All)?
            .into_iter()
            .map(|(l, _)| l)
            .collect();
        let exact: HashSet<u64> = hnsw
            .search_exact(qv, 10, &Filter::All)?
            .into_iter()
            .map(|(l, _)| l)
            .collect();
        agree += semantic
            .iter()
            .take(10)
            .filter(|l| exact.contains(l))
            .count();
        total += exact.len();
        let fused: Vec<u64> = rrf(&[lexical.clone(), semantic.clone()], &[1.0, 1.0], 60.0)?
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        hybrid_top.push(fused.clone());
        for (name, list) in [("bm25", lexical), ("vectors", semantic), ("hybrid", fused)] {
            let ranked = to_passages(list, &corpus);
            for kind in [q.kind.as_str(), "all"] {
                runs.entry((name, kind))
                    .or_default()
                    .push((ranked.clone(), q.relevant.clone()));
            }
        }
    }
    let hnsw_recall = agree as f64 / total.max(1) as f64;
    println!("HNSW recall@10 against exact search: {hnsw_recall:.3}");
    println!("\nretriever  kind      questions  recall@{K}  MRR    nDCG@{K}");
    let mut mrr: HashMap<(&str, &str), f64> = HashMap::new();
    for ((name, kind), r) in &runs {
        let s = eval::evaluate(r, K)?;
        println!(
            "{name:<9}  {kind:<8}  {:>9}  {:>8.3}  {:.3}  {:.3}",
            s.questions, s.recall, s.mrr, s.ndcg
        );
        mrr.insert((*name, *kind), s.mrr);
    }
    check(
        hnsw_recall >= 0.95,
        format!("HNSW recall@10 {hnsw_recall:.3} >= 0.95"),
    )?;
    check(
        mrr[&("vectors", "semantic")] > mrr[&("bm25", "semantic")],
        "vectors beat BM25 on paraphrased questions",
    )?;
    check(
        mrr[&("hybrid", "lexical")] > mrr[&("bm25", "lexical")].max(mrr[&("vectors", "lexical")]),
        "fusion beats both retrievers on exact names, codes and numbers",
    )?;

    // 5. Generate with and without the top chunk, and judge the answers.
    let llm = Llm::load(&gguf, 1)?;
    let tok = llm.tokenizer();
    let text_of = |id: Option<u32>| id.and_then(|i| tok.token_text(i)).unwrap_or("").to_owned();
    let template = ChatTemplate::new(
        llm.chat_template()
            .ok_or("the GGUF file has no chat template")?,
        &text_of(tok.bos_id()),
        &text_of(tok.eos_id()),
    )?;
    let answer = |messages: &[ChatMessage]| -> Res<String> {
        let prompt = template.render(messages, true)?;
        let ids = tok.encode(&prompt, true, true);
        let opts = GenerateOptions {
            max_tokens: MAX_TOKENS,
            ..GenerateOptions::default()
        };
        Ok(llm.generate(&ids, &opts, &mut |_| true)?.text)
    };
    let judge = |text: &str, passage: &str| -> Res<f64> {
        let claims: Vec<&str> = ground::claim_spans(text)
            .into_iter()
            .map(|(s, e)| &text[s..e])
            .collect();
        let claim_vectors = encoder.encode(&claims, 32, true)?;
        let passage_vector = encoder.encode(&[passage], 1, true)?;
        let g = ground::groundedness(
            text,
            &claim_vectors,
            &[passage],
            &passage_vector,
            dim,
            GroundParams::default(),
        )?;
        Ok(g.score)
    };
    // Questions whose labelled answer the question itself does not give away.
    let askable: Vec<usize> = (0..questions.len())
        .filter(|&i| {
            let q = &questions[i];
            !q.text.to_lowercase().contains(&q.answer.to_lowercase())
        })
        .collect();
    let step = (askable.len() / n_questions.max(1)).max(1);
    let t = Instant::now();
    let (mut gold, mut base_gold, mut grounded, mut base_grounded) = (0, 0, 0.0, 0.0);
    let asked: Vec<usize> = askable
        .iter()
        .step_by(step)
        .take(n_questions)
        .copied()
        .collect();
    for &i in &asked {
        let q = &questions[i];
        let top = *hybrid_top[i].first().ok_or("no passage retrieved")? as usize;
        let source = format!("[1] ({}) {}", title_of_chunk[top], corpus[top].text.trim());
        let user = format!("Sources:\n{source}\n\nQuestion: {}", q.text);
        let with = answer(&[
            ChatMessage::new("system", SYSTEM),
            ChatMessage::new("user", &user),
        ])?;
        let without = answer(&[ChatMessage::new("user", &q.text)])?;
        let (g_with, g_without) = (
            judge(&with, &corpus[top].text)?,
            judge(&without, &corpus[top].text)?,
        );
        gold += usize::from(states_gold(&with, &q.answer, &analyzer));
        base_gold += usize::from(states_gold(&without, &q.answer, &analyzer));
        grounded += g_with;
        base_grounded += g_without;
        println!(
            "\nQ: {}\n  gold: {}\n  with retrieval ({g_with:.2} grounded): {}\n  without ({g_without:.2}): {}",
            q.text,
            q.answer,
            with.trim(),
            without.trim()
        );
    }
    let n = asked.len().max(1) as f64;
    println!(
        "\n{} questions answered in {:.1} s: states the labelled fact {gold}/{} with retrieval, \
         {base_gold}/{} without; mean groundedness {:.2} with, {:.2} without",
        asked.len(),
        t.elapsed().as_secs_f64(),
        asked.len(),
        asked.len(),
        grounded / n,
        base_grounded / n
    );
    check(
        gold > base_gold,
        "retrieval-augmented answers state the labelled fact more often",
    )?;
    check(
        grounded > base_grounded,
        "retrieval-augmented answers are better grounded",
    )?;
    println!("\nall claims hold");
    Ok(())
}
