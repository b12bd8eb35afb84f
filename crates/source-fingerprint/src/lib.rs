//! Fingerprint of the Rust sources a Python extension is built from.
//!
//! A wheel's build script calls [`emit`]; the extension exposes the value as
//! `__source_hash__`, and the Python test suite recomputes it from the work
//! tree (`tests/python/fingerprint.py`, the same algorithm). If a kernel was
//! edited and the wheel in the test venv was not rebuilt, the two differ and
//! the suite fails: a stale wheel can never pass silently.
//!
//! Algorithm: 64-bit FNV-1a over, for every `*.rs` and `*.toml` file under the
//! given crate directories (skipping `target/` and `python/`) plus the
//! workspace `Cargo.toml` and `Cargo.lock`, sorted by their path relative to
//! the workspace root: the path in `/` form, a NUL byte, the bytes, a NUL byte.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if entry.file_type()?.is_dir() {
            if name != "target" && name != "python" {
                collect(&path, out)?;
            }
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("rs" | "toml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// The hashed files under `root`, keyed by their `/`-separated relative path, sorted.
fn hashed_files(root: &Path, crate_dirs: &[&str]) -> io::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for dir in crate_dirs {
        collect(&root.join(dir), &mut files)?;
    }
    for top in ["Cargo.toml", "Cargo.lock"] {
        let p = root.join(top);
        if p.exists() {
            files.push(p);
        }
    }
    let mut keyed: Vec<(String, PathBuf)> = files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap_or(&p);
            let key = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            (key, p)
        })
        .collect();
    keyed.sort();
    Ok(keyed)
}

/// Hash `crate_dirs` (relative to `root`) and the workspace manifest and lock.
pub fn fingerprint(root: &Path, crate_dirs: &[&str]) -> io::Result<String> {
    let keyed = hashed_files(root, crate_dirs)?;
    let mut h = FNV_OFFSET;
    for (key, path) in &keyed {
        h = fnv1a(h, key.as_bytes());
        h = fnv1a(h, &[0]);
        h = fnv1a(h, &fs::read(path)?);
        h = fnv1a(h, &[0]);
    }
    Ok(format!("{h:016x}"))
}

/// For build scripts: export `SOURCE_FINGERPRINT` to the crate being built and
/// ask cargo to re-run when any hashed input changes.
///
/// `manifest_dir` is the crate's own directory; the workspace root is two
/// levels up (`crates/<name>`).
pub fn emit(manifest_dir: &Path, crate_dirs: &[&str]) {
    let root = manifest_dir.join("../..");
    let root = root.canonicalize().unwrap_or(root);
    match fingerprint(&root, crate_dirs) {
        Ok(hash) => println!("cargo:rustc-env=SOURCE_FINGERPRINT={hash}"),
        Err(e) => panic!("cannot fingerprint sources under {}: {e}", root.display()),
    }
    // Re-run on exactly the hashed files, not on whole crate directories: a crate's
    // python/ folder gains __pycache__ whenever its sources are byte-compiled, which
    // must not relink the extension. New files are caught through their parent
    // folders (cargo scans a folder recursively), which never include python/.
    let files = hashed_files(&root, crate_dirs).unwrap_or_default();
    for (_, path) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    for dir in crate_dirs {
        let Ok(entries) = fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if entry.file_type().is_ok_and(|t| t.is_dir()) && name != "target" && name != "python" {
                println!("cargo:rerun-if-changed={}", entry.path().display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_published_vectors() {
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn an_edit_changes_the_fingerprint_and_ignored_dirs_do_not() {
        let root = std::env::temp_dir().join(format!("fp-test-{}", std::process::id()));
        let src = root.join("crates/k/src");
        fs::create_dir_all(&src).unwrap();
        fs::create_dir_all(root.join("crates/k/target")).unwrap();
        fs::write(src.join("lib.rs"), "pub fn k() -> u8 { 1 }").unwrap();
        let before = fingerprint(&root, &["crates/k"]).unwrap();
        fs::write(root.join("crates/k/target/junk.rs"), "ignored").unwrap();
        assert_eq!(before, fingerprint(&root, &["crates/k"]).unwrap());
        fs::write(src.join("lib.rs"), "pub fn k() -> u8 { 2 }").unwrap();
        assert_ne!(before, fingerprint(&root, &["crates/k"]).unwrap());
        fs::remove_dir_all(&root).unwrap();
    }

    /// The same tree and the same expected value as the Python twin's test
    /// (tests/python/test_wheels_fresh.py): both sides compute one hash.
    #[test]
    fn shared_fixture_has_the_agreed_value() {
        let root = std::env::temp_dir().join(format!("fp-fixture-{}", std::process::id()));
        for dir in ["crates/k/src", "crates/k/target", "crates/k/python"] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        fs::write(root.join("crates/k/src/lib.rs"), "pub fn k() -> u8 { 1 }\n").unwrap();
        fs::write(root.join("crates/k/src/a.rs"), "// é unicode\n").unwrap();
        fs::write(
            root.join("crates/k/Cargo.toml"),
            "[package]\nname = \"k\"\n",
        )
        .unwrap();
        fs::write(root.join("crates/k/target/x.rs"), "ignored").unwrap();
        fs::write(root.join("crates/k/python/y.rs"), "ignored").unwrap();
        fs::write(root.join("crates/k/README.md"), "ignored").unwrap();
        fs::write(root.join("Cargo.toml"), "[workspace]\n").unwrap();
        assert_eq!(
            fingerprint(&root, &["crates/k"]).unwrap(),
            "63f64dd5174155a1"
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
