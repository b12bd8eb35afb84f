//! alimentar's side of the throughput benchmark against pyarrow
//! (`crates/alimentar/bench/throughput.py`, `nox -s bench-alimentar`).
//!
//! `throughput read FILE REPS` reads FILE (format by extension) REPS times;
//! `throughput write FILE OUT REPS` reads FILE once, then writes it to OUT REPS times.
//! Prints one JSON object: rows, and the seconds of each repetition, timed in-process
//! (no process start-up) as the Python side times pyarrow.

use std::time::Instant;

use alimentar::{Dataset, Options, WriteOptions};

fn main() -> std::process::ExitCode {
    match run() {
        Ok(json) => {
            println!("{json}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("throughput: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn reps(arg: Option<&String>) -> Result<usize, String> {
    arg.and_then(|s| s.parse().ok())
        .filter(|&n: &usize| n >= 1)
        .ok_or_else(|| "REPS must be an integer >= 1".to_owned())
}

fn run() -> Result<String, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = Options::default();
    let mut seconds = Vec::new();
    let rows;
    match args.first().map(String::as_str) {
        Some("read") if args.len() == 3 => {
            let n = reps(args.get(2))?;
            let mut last = 0;
            for _ in 0..n {
                let t = Instant::now();
                let ds = Dataset::open(&args[1], &options).map_err(|e| e.to_string())?;
                seconds.push(t.elapsed().as_secs_f64());
                last = ds.num_rows();
            }
            rows = last;
        }
        Some("write") if args.len() == 4 => {
            let n = reps(args.get(3))?;
            let ds = Dataset::open(&args[1], &options).map_err(|e| e.to_string())?;
            for _ in 0..n {
                let t = Instant::now();
                ds.write(&args[2], &WriteOptions::default())
                    .map_err(|e| e.to_string())?;
                seconds.push(t.elapsed().as_secs_f64());
            }
            rows = ds.num_rows();
        }
        _ => {
            return Err("usage: throughput read FILE REPS | throughput write FILE OUT REPS".into());
        }
    }
    let list: Vec<String> = seconds.iter().map(|s| format!("{s:.9}")).collect();
    Ok(format!(
        "{{\"rows\": {rows}, \"seconds\": [{}]}}",
        list.join(", ")
    ))
}
