//! Embed the fingerprint of the Rust sources this wheel is built from.
fn main() {
    let dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    source_fingerprint::emit(
        &dir,
        &[
            "crates/trueno",
            "crates/realizar",
            "crates/realizar-py",
            "crates/trueno-rag",
            "crates/pacha",
            "crates/aprender",
        ],
    );
}
