//! `realizar serve --model PATH [--host 127.0.0.1] [--port 8080]`: serve a tabular model
//! (MLflow `/invocations`) or a sentence-encoder directory (OpenAI `/v1/embeddings`).

use std::process::ExitCode;

use realizar::server::{ServeOptions, ServerConfig, run};

const USAGE: &str = "usage: realizar serve --model PATH [--host HOST] [--port PORT] [--name NAME]
                      [--max-batch N] [--max-body-bytes N] [--timeout-secs S] [--threads N]

  --model PATH        a file written by realizar.export_sklearn, or a sentence-encoder directory
  --host HOST         address to bind (default 127.0.0.1)
  --port PORT         port to bind, 0 for any free port (default 8080)
  --name NAME         model name reported by /v1/models (default: file stem / encoder name)
  --max-batch N       most rows or texts per request (default 4096)
  --max-body-bytes N  largest request body (default 8388608)
  --timeout-secs S    per-request deadline (default 30)
  --threads N         runtime worker threads, 0 = one per CPU (default 0)";

fn parse(args: &[String]) -> Result<ServeOptions, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("serve") => {}
        Some("-h" | "--help") | None => return Err(String::new()),
        Some(other) => return Err(format!("unknown command {other:?}")),
    }
    let mut config = ServerConfig::default();
    let (mut model, mut host, mut port, mut name, mut threads) =
        (None, "127.0.0.1".to_owned(), 8080u16, None, 0);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |what: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("{what} must be a number, got {value:?}"))
        };
        match flag.as_str() {
            "--model" => model = Some(value.into()),
            "--host" => host.clone_from(value),
            "--port" => {
                port = value
                    .parse()
                    .map_err(|_| format!("--port must be 0..65535, got {value:?}"))?
            }
            "--name" => name = Some(value.clone()),
            "--max-batch" => config.max_batch = num("--max-batch")? as usize,
            "--max-body-bytes" => config.max_body_bytes = num("--max-body-bytes")? as usize,
            "--timeout-secs" => {
                config.request_timeout = std::time::Duration::from_secs(num("--timeout-secs")?)
            }
            "--threads" => threads = num("--threads")? as usize,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    let model = model.ok_or("--model is required")?;
    Ok(ServeOptions {
        model,
        host,
        port,
        name,
        config,
        threads,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("realizar: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("realizar: {e}");
            ExitCode::FAILURE
        }
    }
}
