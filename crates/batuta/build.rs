//! Embed the fingerprint of the Rust sources this binary is built from (`batuta --source-hash`),
//! so the Python suite can tell a stale installed wheel from a current one.
fn main() {
    let dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    source_fingerprint::emit(&dir, &["crates/batuta"]);
}
