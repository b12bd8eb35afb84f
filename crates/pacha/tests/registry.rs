//! The registry against its promises: round trips, every kind of tampering refused with
//! its reason, writers killed with SIGKILL at random instants, concurrent writers.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use pacha::registry::{ModelRef, Selector};
use pacha::{ErrorKind, Registry, keys};
use proptest::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn registry(dir: &Path) -> Registry {
    let reg = Registry::init(dir).unwrap();
    reg.trust(&key(1).verifying_key()).unwrap();
    reg
}

fn card() -> serde_json::Value {
    json!({
        "metrics": {"auc": 0.93, "precision_at_recall_0.8": 0.41},
        "data_hash": "sha256:abc",
        "run_id": "run-7",
        "schema": {"inputs": [{"name": "amount", "type": "double"}], "outputs": [{"type": "double"}]},
    })
}

#[test]
fn register_load_promote_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(dir.path());
    let v1 = reg
        .register("fraud", b"model one", "m.json", &card(), &key(1))
        .unwrap();
    let v2 = reg
        .register("fraud", b"model two", "m.json", &card(), &key(1))
        .unwrap();
    assert_eq!((v1, v2), (1, 2));
    assert_eq!(reg.promote("fraud", 1, "champion").unwrap(), None);
    reg.promote("fraud", 2, "challenger").unwrap();
    let champ = reg.load("fraud@champion").unwrap();
    assert_eq!(champ.bytes, b"model one");
    assert_eq!(champ.manifest.card, card());
    assert_eq!(
        champ.manifest.sha256,
        keys::to_hex(&Sha256::digest(b"model one"))
    );
    assert_eq!(reg.load("fraud").unwrap().bytes, b"model two");
    assert_eq!(reg.load("fraud@v2").unwrap().bytes, b"model two");
    assert_eq!(reg.load("fraud@challenger").unwrap().manifest.version, 2);
    assert_eq!(reg.promote("fraud", 2, "champion").unwrap(), Some(1));
    assert_eq!(reg.load("fraud@champion").unwrap().manifest.version, 2);
    // Same bytes again: a new version, one blob.
    reg.register("fraud", b"model one", "m.json", &card(), &key(1))
        .unwrap();
    assert_eq!(
        fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .count(),
        2
    );
    let report = reg.verify().unwrap();
    assert_eq!((report.versions_ok, report.problems.len()), (3, 0));
}

#[test]
fn bad_input_is_an_error_value() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(dir.path());
    let kind = |r: Result<u64, pacha::Error>| r.unwrap_err().kind;
    assert_eq!(
        kind(reg.register("", b"x", "f", &card(), &key(1))),
        ErrorKind::Invalid
    );
    assert_eq!(
        kind(reg.register("../up", b"x", "f", &card(), &key(1))),
        ErrorKind::Invalid
    );
    assert_eq!(
        kind(reg.register("m", b"x", "a/b", &card(), &key(1))),
        ErrorKind::Invalid
    );
    assert_eq!(
        kind(reg.register(
            "m",
            b"x",
            "f",
            &json!({"metrics": {"auc": "high"}}),
            &key(1)
        )),
        ErrorKind::Invalid
    );
    assert_eq!(
        kind(reg.register("m", b"x", "f", &json!([1]), &key(1))),
        ErrorKind::Invalid
    );
    assert_eq!(
        kind(reg.register("m", b"x", "f", &card(), &key(2))),
        ErrorKind::Untrusted
    );
    reg.register("m", b"x", "f", &card(), &key(1)).unwrap();
    assert_eq!(
        reg.promote("m", 9, "champion").unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        reg.promote("m", 1, "Champion").unwrap_err().kind,
        ErrorKind::Invalid
    );
    assert_eq!(reg.load("m@nope").unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(reg.load("ghost").unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(
        ModelRef::parse("m@v12").unwrap().selector,
        Selector::Version(12)
    );
    assert!(Registry::open(&dir.path().join("nowhere")).is_err());
}

fn one_version(dir: &Path, bytes: &[u8]) -> (Registry, std::path::PathBuf, std::path::PathBuf) {
    let reg = registry(dir);
    reg.register("m", bytes, "model.bin", &card(), &key(1))
        .unwrap();
    let blob = dir
        .join("blobs/sha256")
        .join(keys::to_hex(&Sha256::digest(bytes)));
    let manifest = dir.join("models/m/1.json");
    (reg, blob, manifest)
}

#[test]
fn tampered_truncated_and_wrongly_signed_artifacts_are_refused_with_the_reason() {
    let bytes = vec![7u8; 1000];
    // A flipped byte.
    let dir = tempfile::tempdir().unwrap();
    let (reg, blob, _) = one_version(dir.path(), &bytes);
    let mut b = fs::read(&blob).unwrap();
    b[500] ^= 1;
    fs::write(&blob, &b).unwrap();
    let e = reg.load("m@1").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tampered);
    assert!(e.message.contains("artifact tampered: sha256"), "{e}");
    // Truncated.
    fs::write(&blob, &bytes[..999]).unwrap();
    let e = reg.load("m@1").unwrap_err();
    assert!(
        e.message
            .contains("truncated: 999 bytes on disk, 1000 signed"),
        "{e}"
    );
    // Missing.
    fs::remove_file(&blob).unwrap();
    assert!(reg.load("m@1").unwrap_err().message.contains("missing"));
    assert_eq!(reg.verify().unwrap().problems.len(), 1);

    // A card edited after signing.
    let dir = tempfile::tempdir().unwrap();
    let (reg, _, manifest) = one_version(dir.path(), &bytes);
    let text = fs::read_to_string(&manifest)
        .unwrap()
        .replace("0.93", "0.99");
    fs::write(&manifest, text).unwrap();
    let e = reg.load("m@1").unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadSignature, "{e}");

    // Re-signed by a key the registry does not trust.
    let dir = tempfile::tempdir().unwrap();
    let (reg, _, manifest) = one_version(dir.path(), &bytes);
    let other = tempfile::tempdir().unwrap();
    let reg2 = Registry::init(other.path()).unwrap();
    reg2.trust(&key(9).verifying_key()).unwrap();
    reg2.register("m", &bytes, "model.bin", &card(), &key(9))
        .unwrap();
    fs::copy(other.path().join("models/m/1.json"), &manifest).unwrap();
    let e = reg.load("m@1").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Untrusted, "{e}");
    // ... and claiming the trusted key without its signature.
    let forged = fs::read_to_string(&manifest).unwrap().replace(
        &keys::to_hex(key(9).verifying_key().as_bytes()),
        &keys::to_hex(key(1).verifying_key().as_bytes()),
    );
    fs::write(&manifest, forged).unwrap();
    assert_eq!(reg.load("m@1").unwrap_err().kind, ErrorKind::BadSignature);

    // A manifest moved to another version number.
    let dir = tempfile::tempdir().unwrap();
    let (reg, _, manifest) = one_version(dir.path(), &bytes);
    reg.register("m", b"two", "model.bin", &card(), &key(1))
        .unwrap();
    fs::copy(&manifest, dir.path().join("models/m/2.json")).unwrap();
    assert!(
        reg.load("m@2")
            .unwrap_err()
            .message
            .contains("claims to be m@1")
    );
    // Not JSON at all.
    fs::write(&manifest, b"\xff\xfe garbage").unwrap();
    assert_eq!(reg.load("m@1").unwrap_err().kind, ErrorKind::Tampered);
}

#[test]
fn gc_removes_only_unreferenced_blobs_and_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let reg = registry(dir.path());
    reg.register("m", b"kept", "f", &card(), &key(1)).unwrap();
    // What a writer killed between blob and manifest leaves behind.
    let orphan = dir
        .path()
        .join("blobs/sha256")
        .join(keys::to_hex(&Sha256::digest(b"orphan")));
    fs::write(&orphan, b"orphan").unwrap();
    fs::write(dir.path().join("tmp/write.1.1.tmp"), b"half").unwrap();
    let before = reg.verify().unwrap();
    assert_eq!(
        (
            before.unreferenced_blobs,
            before.temp_files,
            before.problems.len()
        ),
        (1, 1, 0)
    );
    let r = reg.gc().unwrap();
    assert_eq!((r.blobs_removed, r.bytes_freed, r.temp_removed), (1, 6, 1));
    assert!(!orphan.exists());
    assert_eq!(reg.load("m").unwrap().bytes, b"kept");
    assert_eq!(reg.gc().unwrap(), pacha::registry::GcReport::default());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_bytes_round_trip_and_any_flip_is_caught(bytes in proptest::collection::vec(any::<u8>(), 0..4096),
                                                   at in any::<usize>(), bit in 0u8..8) {
        let dir = tempfile::tempdir().unwrap();
        let (reg, blob, _) = one_version(dir.path(), &bytes);
        prop_assert_eq!(&reg.load("m").unwrap().bytes, &bytes);
        if !bytes.is_empty() {
            let mut b = bytes.clone();
            b[at % bytes.len()] ^= 1 << bit;
            fs::write(&blob, &b).unwrap();
            prop_assert_eq!(reg.load("m").unwrap_err().kind, ErrorKind::Tampered);
        }
    }

    #[test]
    fn refs_parse_or_refuse_without_panicking(s in "\\PC{0,40}") {
        let _ = ModelRef::parse(&s);
    }
}

#[test]
fn concurrent_writer_threads_get_distinct_versions() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Arc::new(registry(dir.path()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let reg = Arc::clone(&reg);
            std::thread::spawn(move || {
                (0..5)
                    .map(|i| {
                        let bytes = format!("thread {t} model {i}");
                        reg.register("shared", bytes.as_bytes(), "f", &card(), &key(1))
                            .unwrap()
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let versions: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let unique: BTreeSet<u64> = versions.iter().copied().collect();
    assert_eq!(unique, (1..=40).collect());
    let report = reg.verify().unwrap();
    assert_eq!((report.versions_ok, report.problems.len()), (40, 0));
}

fn pacha() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pacha"))
}

fn cli_setup(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("reg");
    let keyfile = dir.join("signer.key");
    assert!(
        pacha()
            .arg("keygen")
            .arg(&keyfile)
            .status()
            .unwrap()
            .success()
    );
    assert!(pacha().arg("init").arg(&root).status().unwrap().success());
    assert!(
        pacha()
            .arg("trust")
            .arg(&root)
            .arg(keyfile.with_extension("pub"))
            .status()
            .unwrap()
            .success()
    );
    keyfile
}

#[test]
fn concurrent_writer_processes_get_distinct_versions() {
    let dir = tempfile::tempdir().unwrap();
    let keyfile = cli_setup(dir.path());
    let root = dir.path().join("reg");
    let children: Vec<_> = (0..6)
        .map(|i| {
            let art = dir.path().join(format!("a{i}.bin"));
            fs::write(&art, vec![i as u8; 200_000]).unwrap();
            pacha()
                .arg("register")
                .arg(&root)
                .arg("m")
                .arg(&art)
                .arg("--key")
                .arg(&keyfile)
                .args(["--metric", "auc=0.5"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut got = BTreeSet::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        got.insert(String::from_utf8(out.stdout).unwrap().trim().to_owned());
    }
    assert_eq!(got, (1..=6).map(|v| format!("m@{v}")).collect());
    let out = pacha().arg("verify").arg(&root).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_writer_killed_at_random_instants_leaves_a_consistent_registry() {
    let dir = tempfile::tempdir().unwrap();
    let keyfile = cli_setup(dir.path());
    let root = dir.path().join("reg");
    // Big enough that a kill often lands mid-write.
    let art = dir.path().join("big.bin");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = vec![0u8; 6 << 20];
    for b in bytes.iter_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
    fs::write(&art, &bytes).unwrap();
    // One uninterrupted register calibrates the kill instants: uniform over its duration.
    let t0 = std::time::Instant::now();
    let ok = pacha()
        .arg("register")
        .arg(&root)
        .arg("m")
        .arg(&art)
        .arg("--key")
        .arg(&keyfile)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let full_ms = (t0.elapsed().as_millis() as u64).max(2);
    let mut completed = 1;
    let mut interrupted_mid_write = 0;
    let mut last_leftovers = 0;
    for round in 1..=12u64 {
        // Vary the artifact so each round writes a new blob.
        let mut b = fs::read(&art).unwrap();
        b[0] = round as u8;
        fs::write(&art, &b).unwrap();
        let mut child = pacha()
            .arg("register")
            .arg(&root)
            .arg("m")
            .arg(&art)
            .arg("--key")
            .arg(&keyfile)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % (full_ms + full_ms / 5)));
        // SAFETY: signalling a child this test started.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        if child.wait().unwrap().success() {
            completed += 1;
        }
        // After every kill: every version that exists verifies.
        let out = pacha().arg("verify").arg(&root).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "round {round}: {text}");
        // "N versions verified, 0 problems, B unreferenced blobs, T temp files"
        let numbers: Vec<u64> = text
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        let leftovers = numbers[2] + numbers[3];
        if leftovers > last_leftovers {
            interrupted_mid_write += 1;
        }
        last_leftovers = leftovers;
    }
    eprintln!(
        "crash test: {completed} of 13 writers finished, {interrupted_mid_write} kills left partial writes (one register: {full_ms} ms)"
    );
    let reg = Registry::open(&root).unwrap();
    let versions = reg.list().unwrap().first().map_or(0, |m| m.versions.len());
    assert!(
        versions >= completed,
        "{versions} versions, {completed} writers finished"
    );
    reg.gc().unwrap();
    let after = reg.verify().unwrap();
    assert_eq!(
        (
            after.problems.len(),
            after.unreferenced_blobs,
            after.temp_files
        ),
        (0, 0, 0)
    );
    assert_eq!(
        fs::read_dir(root.join("blobs/sha256")).unwrap().count(),
        versions,
        "one blob per version after gc"
    );
}
