//! `realizar serve --model [NAME=]PATH ...`: serve language models (OpenAI chat and
//! completions), sentence encoders (OpenAI embeddings) and tabular models (MLflow
//! `/invocations`). The command line is parsed by `realizar::server::cli`, shared with
//! the Python `realizar` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = realizar::server::cli::main(&args);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
