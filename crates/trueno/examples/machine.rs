//! Print this machine as trueno measures it (the JSON `trueno.machine()` returns).
//!
//! `cargo run --release -p trueno --example machine [-- --refresh]`: the cached probe,
//! or a fresh one with `--refresh` (written back to the cache file).

fn main() {
    let refresh = std::env::args().any(|a| a == "--refresh");
    let (m, origin) = trueno::machine::machine(refresh);
    eprintln!("{origin:?}");
    println!("{}", m.to_json());
}
