//! The `pacha` command. Exit status 0 on success, 1 when a check fails (verify finds
//! problems, a load is refused), 2 for bad usage or input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pacha::keys;
use pacha::registry::ModelRef;
use pacha::{Error, ErrorKind, Registry};
use serde_json::{Value, json};

const USAGE: &str = "usage:
  pacha keygen KEYFILE                         new Ed25519 key: KEYFILE (secret, 0600), KEYFILE.pub
  pacha init ROOT                              create a registry
  pacha trust ROOT KEYFILE.pub                 accept signatures by this key
  pacha register ROOT NAME ARTIFACT --key KEYFILE [--card CARD.json] [--metric K=V]...
                 [--data-hash H] [--run-id ID] [--alias A]
  pacha list ROOT
  pacha promote ROOT NAME VERSION ALIAS        e.g. pacha promote reg fraud 3 champion
  pacha verify ROOT [NAME@ALIAS]               check every version (or load one)
  pacha export ROOT NAME@ALIAS OUT             write a verified artifact to OUT
  pacha gc ROOT                                remove unreferenced blobs and temp files";

fn usage(msg: &str) -> Error {
    Error::new(ErrorKind::Invalid, msg.to_owned())
}

fn run(args: &[String]) -> Result<ExitCode, Error> {
    let pos: Vec<&str> = args.iter().map(String::as_str).collect();
    match pos.as_slice() {
        ["keygen", path] => {
            let key = keys::generate()?;
            keys::write_keypair(&key, Path::new(path))?;
            println!("{}", keys::to_hex(key.verifying_key().as_bytes()));
            Ok(ExitCode::SUCCESS)
        }
        ["init", root] => {
            Registry::init(Path::new(root))?;
            println!("registry ready at {root}");
            Ok(ExitCode::SUCCESS)
        }
        ["trust", root, public] => {
            let key = keys::read_public(Path::new(public))?;
            Registry::open(Path::new(root))?.trust(&key)?;
            println!("trusting {}", keys::to_hex(key.as_bytes()));
            Ok(ExitCode::SUCCESS)
        }
        ["register", root, name, artifact, rest @ ..] => register(root, name, artifact, rest),
        ["list", root] => {
            let reg = Registry::open(Path::new(root))?;
            for m in reg.list()? {
                println!("{}", m.name);
                for v in &m.versions {
                    let aliases: Vec<&str> = m
                        .aliases
                        .iter()
                        .filter(|(_, n)| **n == v.version)
                        .map(|(a, _)| a.as_str())
                        .collect();
                    let metrics = v
                        .card
                        .get("metrics")
                        .map(Value::to_string)
                        .unwrap_or_default();
                    println!(
                        "  v{:<4} {}  {:>10} B  {:<20} {}",
                        v.version,
                        &v.sha256[..12],
                        v.size,
                        aliases.join(","),
                        metrics
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ["promote", root, name, version, alias] => {
            let version: u64 = version
                .trim_start_matches('v')
                .parse()
                .map_err(|_| usage(&format!("VERSION must be a number, got {version:?}")))?;
            let before = Registry::open(Path::new(root))?.promote(name, version, alias)?;
            match before {
                Some(b) if b != version => println!("{name}@{alias}: v{b} -> v{version}"),
                _ => println!("{name}@{alias}: v{version}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        ["verify", root] => {
            let report = Registry::open(Path::new(root))?.verify()?;
            for p in &report.problems {
                println!("REFUSED {p}");
            }
            println!(
                "{} versions verified, {} problems, {} unreferenced blobs, {} temp files",
                report.versions_ok,
                report.problems.len(),
                report.unreferenced_blobs,
                report.temp_files
            );
            Ok(if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        ["verify", root, reference] => {
            let loaded = Registry::open(Path::new(root))?.load(reference)?;
            let m = &loaded.manifest;
            println!(
                "{}@{} ok: sha256 {} ({} bytes), signed by {}",
                m.name, m.version, m.sha256, m.size, m.signed_by
            );
            Ok(ExitCode::SUCCESS)
        }
        ["export", root, reference, out] => {
            let m = Registry::open(Path::new(root))?.export(reference, Path::new(out))?;
            println!("{}@{} -> {out}", m.name, m.version);
            Ok(ExitCode::SUCCESS)
        }
        ["gc", root] => {
            let r = Registry::open(Path::new(root))?.gc()?;
            println!(
                "removed {} blobs ({} bytes) and {} temp files",
                r.blobs_removed, r.bytes_freed, r.temp_removed
            );
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(usage("")),
    }
}

fn register(root: &str, name: &str, artifact: &str, rest: &[&str]) -> Result<ExitCode, Error> {
    let mut key: Option<PathBuf> = None;
    let mut card = json!({});
    let mut metrics = serde_json::Map::new();
    let mut alias = None;
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| usage(&format!("{flag} needs a value")))?;
        match *flag {
            "--key" => key = Some(PathBuf::from(value)),
            "--card" => {
                let text = std::fs::read_to_string(value)
                    .map_err(|e| usage(&format!("cannot read card {value}: {e}")))?;
                card = serde_json::from_str(&text)
                    .map_err(|e| usage(&format!("card {value} is not JSON: {e}")))?;
            }
            "--metric" => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| usage(&format!("--metric takes NAME=NUMBER, got {value:?}")))?;
                let v: f64 = v
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite())
                    .ok_or_else(|| usage(&format!("metric {k}: {v:?} is not a finite number")))?;
                metrics.insert(k.to_owned(), json!(v));
            }
            "--data-hash" => card["data_hash"] = json!(value),
            "--run-id" => card["run_id"] = json!(value),
            "--alias" => alias = Some((*value).to_owned()),
            other => return Err(usage(&format!("unknown option {other:?}"))),
        }
    }
    if !card.is_object() {
        return Err(usage("the card must be a JSON object"));
    }
    if !metrics.is_empty() {
        let entry = card
            .as_object_mut()
            .map(|o| o.entry("metrics").or_insert_with(|| json!({})));
        if let Some(Value::Object(m)) = entry {
            m.extend(metrics);
        }
    }
    let key = keys::read_secret(&key.ok_or_else(|| usage("register needs --key KEYFILE"))?)?;
    let bytes =
        std::fs::read(artifact).map_err(|e| usage(&format!("cannot read {artifact}: {e}")))?;
    let filename = Path::new(artifact)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("artifact");
    let reg = Registry::open(Path::new(root))?;
    let version = reg.register(name, &bytes, filename, &card, &key)?;
    println!("{name}@{version}");
    if let Some(a) = alias {
        ModelRef::parse(&format!("{name}@{a}"))?;
        reg.promote(name, version, &a)?;
        println!("{name}@{a}: v{version}");
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args[0] == "-h" || args[0] == "--help" {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            if e.message.is_empty() {
                eprintln!("{USAGE}");
            } else {
                eprintln!("pacha: {e}");
            }
            match e.kind {
                ErrorKind::Invalid => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}
