//! `realizar serve`: the command line, parsed once here for every front end.
//!
//! The Rust binary (`src/bin/realizar.rs`) and the Python command (`realizar.cli`, via
//! the extension's `cli_main`) both hand their arguments to [`main`], so the options,
//! their defaults (from [`ServerConfig::default`]) and the help text have one source.

use std::path::PathBuf;

use super::{ModelSpec, ServeOptions, ServerConfig, run};

/// The help text; defaults are written from [`ServerConfig::default`] and
/// [`ServeOptions`]' own.
pub fn usage() -> String {
    let c = ServerConfig::default();
    format!(
        "usage: realizar serve --model [NAME=]PATH [--model [NAME=]PATH ...] [--host HOST]
                      [--port PORT] [--name NAME] [--max-batch N] [--max-body-bytes N]
                      [--timeout-secs S] [--threads N] [--llm-threads N] [--max-generations N]

  --model [NAME=]PATH  a model to serve, repeatable; its kind is read from the file:
                       a GGUF language model (/v1/chat/completions, /v1/completions),
                       a sentence-encoder directory (/v1/embeddings), a file written by
                       realizar.export_sklearn (/invocations), or pacha://ROOT/NAME@ALIAS
                       (a verified model from a pacha registry). NAME is what requests'
                       \"model\" says (default: the file stem / encoder name)
  --host HOST          address to bind (default {host})
  --port PORT          port to bind, 0 for any free port (default {port})
  --name NAME          name of the model when only one is served
  --max-batch N        most rows or texts per request (default {batch})
  --max-body-bytes N   largest request body (default {body})
  --timeout-secs S     per-request deadline, streamed generations excepted (default {timeout})
  --threads N          runtime worker threads, 0 = one per CPU (default 0)
  --llm-threads N      threads computing one generation (default {llm_threads})
  --max-generations N  generations computed at once, more wait (default {gens})",
        host = DEFAULT_HOST,
        port = DEFAULT_PORT,
        batch = c.max_batch,
        body = c.max_body_bytes,
        timeout = c.request_timeout.as_secs_f64(),
        llm_threads = DEFAULT_LLM_THREADS,
        gens = c.max_generations,
    )
}

pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_LLM_THREADS: usize = 1;

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Command {
    Help,
    Serve(ServeOptions),
}

/// `NAME=PATH` or `PATH`. A `pacha://` reference keeps its `=`-free form whole.
fn model_spec(value: &str) -> Result<ModelSpec, String> {
    if value.is_empty() {
        return Err("--model needs a path".into());
    }
    match value.split_once('=') {
        Some((name, path)) if !name.is_empty() && !name.contains('/') && !path.is_empty() => {
            Ok(ModelSpec {
                name: Some(name.to_owned()),
                path: PathBuf::from(path),
            })
        }
        Some((_, "")) => Err(format!("--model {value:?}: the path after = is empty")),
        _ => Ok(ModelSpec {
            name: None,
            path: PathBuf::from(value),
        }),
    }
}

/// Parse `serve ...` (the program name already removed).
pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("serve") => {}
        Some("-h" | "--help") | None => return Ok(Command::Help),
        Some(other) => return Err(format!("unknown command {other:?}")),
    }
    let mut config = ServerConfig::default();
    let mut models = Vec::new();
    let (mut host, mut port, mut name) = (DEFAULT_HOST.to_owned(), DEFAULT_PORT, None);
    let (mut threads, mut llm_threads) = (0usize, DEFAULT_LLM_THREADS);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(Command::Help);
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |what: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("{what} must be a whole number >= 0, got {value:?}"))
        };
        let positive = |what: &str| match num(what)? {
            0 => Err(format!("{what} must be at least 1, got 0")),
            n => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        };
        match flag.as_str() {
            "--model" => models.push(model_spec(value)?),
            "--host" => host.clone_from(value),
            "--port" => {
                port = value
                    .parse()
                    .map_err(|_| format!("--port must be 0..65535, got {value:?}"))?
            }
            "--name" => name = Some(value.clone()),
            "--max-batch" => config.max_batch = positive("--max-batch")?,
            "--max-body-bytes" => config.max_body_bytes = positive("--max-body-bytes")?,
            "--timeout-secs" => {
                let secs: f64 = value
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("--timeout-secs must be a number > 0, got {value:?}"))?;
                config.request_timeout = std::time::Duration::try_from_secs_f64(secs)
                    .map_err(|e| format!("--timeout-secs {value:?}: {e}"))?;
            }
            "--threads" => threads = num("--threads")? as usize,
            "--llm-threads" => llm_threads = positive("--llm-threads")?,
            "--max-generations" => config.max_generations = positive("--max-generations")?,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if models.is_empty() {
        return Err("--model is required".into());
    }
    if let Some(name) = name {
        match models.as_mut_slice() {
            [one] if one.name.is_none() => one.name = Some(name),
            _ => {
                return Err(
                    "--name names the only model; with several, write --model NAME=PATH".into(),
                );
            }
        }
    }
    Ok(Command::Serve(ServeOptions {
        models,
        host,
        port,
        config,
        threads,
        llm_threads,
    }))
}

/// The whole command: parse, print help or errors, serve. Returns the exit status
/// (0 served and shut down cleanly, 1 failed, 2 bad command line).
pub fn main(args: &[String]) -> i32 {
    match parse(args) {
        Ok(Command::Help) => {
            println!("{}", usage());
            0
        }
        Ok(Command::Serve(opts)) => match run(&opts) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("realizar: {e}");
                1
            }
        },
        Err(e) => {
            eprintln!("realizar: {e}\n{}", usage());
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn several_named_models() {
        let Command::Serve(o) = parse(&args(
            "serve --model chat=a.gguf --model embed=/m/dir --port 0 --llm-threads 2",
        ))
        .unwrap() else {
            panic!("serve")
        };
        assert_eq!(o.models.len(), 2);
        assert_eq!(o.models[0].name.as_deref(), Some("chat"));
        assert_eq!(o.models[1].path, PathBuf::from("/m/dir"));
        assert_eq!((o.port, o.llm_threads), (0, 2));
        assert_eq!(o.config.max_batch, ServerConfig::default().max_batch);
    }

    #[test]
    fn bad_command_lines() {
        for (line, want) in [
            ("serve", "--model is required"),
            ("serve --model", "needs a value"),
            ("serve --model a --port 70000", "0..65535"),
            ("serve --model a --llm-threads 0", "at least 1"),
            ("serve --model a --timeout-secs -1", "> 0"),
            (
                "serve --model a=x --model b=y --name z",
                "--name names the only model",
            ),
            ("serve --model a --frob 1", "unknown option"),
            ("launch", "unknown command"),
        ] {
            let e = parse(&args(line)).unwrap_err();
            assert!(e.contains(want), "{line}: {e}");
        }
        assert!(matches!(parse(&args("serve --help")), Ok(Command::Help)));
        let Command::Serve(o) =
            parse(&args("serve --model pacha:///r/fraud@champion --name f")).unwrap()
        else {
            panic!("serve")
        };
        assert_eq!(o.models[0].name.as_deref(), Some("f"));
        assert!(usage().contains("default 4096"));
    }
}
