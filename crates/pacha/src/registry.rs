//! The registry on disk, and the rules that keep it consistent.
//!
//! ```text
//! ROOT/pacha.json                      marker and layout version
//! ROOT/blobs/sha256/<hex>              artifacts, named by the SHA-256 of their bytes
//! ROOT/models/<name>/<version>.json    a signed manifest: artifact digest and size, card
//! ROOT/models/<name>/aliases.json      {"champion": 3, "challenger": 4}
//! ROOT/trusted_keys/<hex>.pub          public keys whose signatures are accepted
//! ROOT/tmp/                            temporary files (crash leftovers; gc removes them)
//! ROOT/.lock                           held by every writer: one writer at a time
//! ```
//!
//! Registering is ordered so that a crash at any point leaves a consistent registry:
//! the blob is published first, then the manifest that names it. A manifest is the
//! commit point: before it exists the version does not; after, its blob is in place.
//! A crash between the two leaves an unreferenced blob, which `gc` removes. Readers take
//! no lock: every file they read was published by a rename, so it is whole.
//!
//! Every load checks the manifest's signature against the trusted keys and the blob's
//! size and SHA-256 against the manifest, and refuses with the reason otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::fsio::{self, io_err};
use crate::keys::{self, from_hex, to_hex};
use crate::{Error, ErrorKind};

const LAYOUT: u64 = 1;
const MANIFEST: u64 = 1;
/// Largest manifest or alias file read (they are small; a huge one is not ours).
const MAX_META_BYTES: u64 = 16 * 1024 * 1024;

/// `name@alias`, `name@v3` / `name@3`, or `name` (the latest version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Latest,
    Version(u64),
    Alias(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    pub name: String,
    pub selector: Selector,
}

impl ModelRef {
    pub fn parse(s: &str) -> Result<ModelRef, Error> {
        let (name, sel) = match s.split_once('@') {
            Some((n, sel)) => (n, Some(sel)),
            None => (s, None),
        };
        check_name(name)?;
        let selector = match sel {
            None => Selector::Latest,
            Some(sel) => {
                let digits = sel.strip_prefix('v').unwrap_or(sel);
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    Selector::Version(digits.parse().map_err(|_| {
                        Error::new(ErrorKind::Invalid, format!("version {sel:?} is too large"))
                    })?)
                } else {
                    check_alias(sel)?;
                    Selector::Alias(sel.to_owned())
                }
            }
        };
        Ok(ModelRef {
            name: name.to_owned(),
            selector,
        })
    }
}

pub fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Invalid,
            format!(
                "model name {name:?} must be 1-128 letters, digits, '_', '.' or '-', not starting with '.'"
            ),
        ))
    }
}

pub fn check_alias(alias: &str) -> Result<(), Error> {
    let ok = !alias.is_empty()
        && alias.len() <= 64
        && alias.as_bytes()[0].is_ascii_lowercase()
        && alias
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Invalid,
            format!(
                "alias {alias:?} must start with a lowercase letter and hold only a-z, 0-9, '_' or '-' (at most 64)"
            ),
        ))
    }
}

/// The model card: what a version is and where it came from.
///
/// `metrics` must map names to finite numbers; `data_hash`, `run_id` (lineage to the
/// training run), `schema` (the model's signature: inputs and outputs) and any other
/// fields are kept as given and covered by the signature.
pub fn check_card(card: &Value) -> Result<(), Error> {
    let bad = |m: String| Err(Error::new(ErrorKind::Invalid, m));
    let Some(obj) = card.as_object() else {
        return bad(format!("a model card is a JSON object, got {card}"));
    };
    if let Some(m) = obj.get("metrics") {
        let Some(m) = m.as_object() else {
            return bad("card.metrics must be an object of numbers".into());
        };
        for (k, v) in m {
            if !v.as_f64().is_some_and(f64::is_finite) {
                return bad(format!("card.metrics.{k} must be a finite number, got {v}"));
            }
        }
    }
    for key in ["data_hash", "run_id", "description"] {
        if let Some(v) = obj.get(key)
            && !v.is_string()
        {
            return bad(format!("card.{key} must be a string, got {v}"));
        }
    }
    if let Some(s) = obj.get("schema")
        && !s.is_object()
    {
        return bad(format!("card.schema must be an object, got {s}"));
    }
    Ok(())
}

/// JSON with object keys sorted at every level: the bytes a signature covers.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn signed_bytes(manifest: &Value) -> Vec<u8> {
    let mut m = manifest.clone();
    if let Some(o) = m.as_object_mut() {
        o.remove("signature");
    }
    let mut bytes = b"pacha manifest v1\n".to_vec();
    bytes.extend(
        serde_json::to_string(&canonical(&m))
            .unwrap_or_default()
            .into_bytes(),
    );
    bytes
}

/// A version's manifest, read and parsed (not yet verified).
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub version: u64,
    pub sha256: String,
    pub size: u64,
    pub filename: String,
    pub card: Value,
    pub signed_by: String,
    pub signature: String,
    pub raw: Value,
}

impl Manifest {
    fn from_value(v: Value, at: &Path) -> Result<Manifest, Error> {
        let bad = |m: &str| {
            Error::new(
                ErrorKind::Tampered,
                format!("{}: manifest {m}", at.display()),
            )
        };
        if v.get("pacha_manifest").and_then(Value::as_u64) != Some(MANIFEST) {
            return Err(bad("has no pacha_manifest version 1"));
        }
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| bad(&format!("lacks {k}")))
        };
        let art = v.get("artifact").ok_or_else(|| bad("lacks artifact"))?;
        Ok(Manifest {
            name: s("name")?,
            version: v
                .get("version")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad("lacks version"))?,
            sha256: art
                .get("sha256")
                .and_then(Value::as_str)
                .filter(|h| h.len() == 64 && from_hex(h).is_some())
                .ok_or_else(|| bad("lacks a 64-hex artifact.sha256"))?
                .to_owned(),
            size: art
                .get("size")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad("lacks artifact.size"))?,
            filename: art
                .get("filename")
                .and_then(Value::as_str)
                .unwrap_or("artifact")
                .to_owned(),
            card: v.get("card").cloned().unwrap_or(Value::Null),
            signed_by: s("signed_by")?,
            signature: s("signature")?,
            raw: v,
        })
    }
}

/// A verified artifact: its bytes and the manifest they match.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub manifest: Manifest,
    pub bytes: Vec<u8>,
}

/// One model in the listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub versions: Vec<Manifest>,
    pub aliases: BTreeMap<String, u64>,
}

/// The outcome of `verify`: every problem found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifyReport {
    pub versions_ok: usize,
    pub problems: Vec<String>,
    /// Blobs no manifest names (a crashed register; `gc` removes them).
    pub unreferenced_blobs: usize,
    pub temp_files: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub bytes_freed: u64,
    pub temp_removed: usize,
}

#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
}

/// The writer lock, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct WriteLock {
    _file: File,
}

fn read_small(path: &Path) -> Result<Vec<u8>, Error> {
    let f = File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::new(
                ErrorKind::NotFound,
                format!("{} does not exist", path.display()),
            )
        } else {
            io_err(path, &e)
        }
    })?;
    let mut buf = Vec::new();
    f.take(MAX_META_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(path, &e))?;
    if buf.len() as u64 > MAX_META_BYTES {
        return Err(Error::new(
            ErrorKind::Tampered,
            format!(
                "{} is larger than any registry metadata file",
                path.display()
            ),
        ));
    }
    Ok(buf)
}

fn read_json(path: &Path) -> Result<Value, Error> {
    let bytes = read_small(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::new(
            ErrorKind::Tampered,
            format!("{} is not valid JSON: {e}", path.display()),
        )
    })
}

impl Registry {
    /// Create a registry at `root` (or open the one already there).
    pub fn init(root: &Path) -> Result<Registry, Error> {
        for d in ["blobs/sha256", "models", "trusted_keys", "tmp"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(|e| io_err(&p, &e))?;
        }
        let marker = root.join("pacha.json");
        if !marker.exists() {
            fsio::write_atomic(
                &root.join("tmp"),
                &marker,
                format!("{{\"pacha_registry\": {LAYOUT}}}\n").as_bytes(),
            )?;
        }
        Registry::open(root)
    }

    /// Open an existing registry.
    pub fn open(root: &Path) -> Result<Registry, Error> {
        let marker = root.join("pacha.json");
        let v = read_json(&marker).map_err(|e| {
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "{} is not a pacha registry ({e}); create one with `pacha init`",
                    root.display()
                ),
            )
        })?;
        if v.get("pacha_registry").and_then(Value::as_u64) != Some(LAYOUT) {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("{}: unknown registry layout {v}", marker.display()),
            ));
        }
        Ok(Registry {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn blob_path(&self, sha: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(sha)
    }

    fn model_dir(&self, name: &str) -> PathBuf {
        self.root.join("models").join(name)
    }

    /// Wait for, then hold, the writer lock.
    pub fn lock(&self) -> Result<WriteLock, Error> {
        let path = self.root.join(".lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path, &e))?;
        f.lock().map_err(|e| io_err(&path, &e))?;
        Ok(WriteLock { _file: f })
    }

    /// Trust signatures by `key`.
    pub fn trust(&self, key: &VerifyingKey) -> Result<(), Error> {
        let _lock = self.lock()?;
        let hex = to_hex(key.as_bytes());
        fsio::write_atomic(
            &self.tmp(),
            &self.root.join("trusted_keys").join(format!("{hex}.pub")),
            (hex.clone() + "\n").as_bytes(),
        )
    }

    pub fn trusted_keys(&self) -> Result<Vec<VerifyingKey>, Error> {
        let dir = self.root.join("trusted_keys");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(|e| io_err(&dir, &e))? {
            let p = e.map_err(|e| io_err(&dir, &e))?.path();
            if p.extension().is_some_and(|x| x == "pub") {
                let k = keys::read_public(&p)?;
                // The file's name is the key: a renamed file is not trusted.
                if p.file_stem().and_then(|s| s.to_str()) == Some(&to_hex(k.as_bytes())) {
                    out.push(k);
                }
            }
        }
        Ok(out)
    }

    fn versions_of(&self, name: &str) -> Result<Vec<u64>, Error> {
        let dir = self.model_dir(name);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir, &e)),
        };
        let mut out = Vec::new();
        for e in entries {
            let name = e.map_err(|e| io_err(&dir, &e))?.file_name();
            let name = name.to_string_lossy();
            if let Some(v) = name
                .strip_suffix(".json")
                .and_then(|s| s.parse::<u64>().ok())
            {
                out.push(v);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    fn aliases_of(&self, name: &str) -> Result<BTreeMap<String, u64>, Error> {
        let path = self.model_dir(name).join("aliases.json");
        let v = match read_json(&path) {
            Ok(v) => v,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(e),
        };
        let mut out = BTreeMap::new();
        for (k, n) in v.as_object().into_iter().flatten() {
            let n = n.as_u64().ok_or_else(|| {
                Error::new(
                    ErrorKind::Tampered,
                    format!("{}: alias {k} is not a version", path.display()),
                )
            })?;
            out.insert(k.clone(), n);
        }
        Ok(out)
    }

    /// Store `bytes` as the next version of `name`, signed by `key`.
    pub fn register(
        &self,
        name: &str,
        bytes: &[u8],
        filename: &str,
        card: &Value,
        key: &SigningKey,
    ) -> Result<u64, Error> {
        check_name(name)?;
        check_card(card)?;
        if filename.is_empty() || filename.contains('/') || filename.contains('\0') {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("artifact file name {filename:?} must be a plain file name"),
            ));
        }
        let public = key.verifying_key();
        if !self.trusted_keys()?.contains(&public) {
            return Err(Error::new(
                ErrorKind::Untrusted,
                format!(
                    "key {} is not trusted by this registry: run `pacha trust {} KEY.pub` first",
                    to_hex(public.as_bytes()),
                    self.root.display()
                ),
            ));
        }
        let sha = to_hex(&Sha256::digest(bytes));
        let _lock = self.lock()?;
        // 1. The blob (content addressed: an existing one is the same bytes).
        let blob = self.blob_path(&sha);
        if !blob.exists() {
            fsio::write_atomic(&self.tmp(), &blob, bytes)?;
        }
        // 2. The manifest, the commit point.
        let version = self.versions_of(name)?.last().copied().unwrap_or(0) + 1;
        let mut manifest = json!({
            "pacha_manifest": MANIFEST,
            "name": name,
            "version": version,
            "artifact": {"sha256": sha, "size": bytes.len(), "filename": filename},
            "card": card,
            "signed_by": to_hex(public.as_bytes()),
        });
        let sig = key.sign(&signed_bytes(&manifest));
        manifest["signature"] = json!(to_hex(&sig.to_bytes()));
        let text = serde_json::to_string_pretty(&manifest)
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        fsio::write_atomic(
            &self.tmp(),
            &self.model_dir(name).join(format!("{version}.json")),
            text.as_bytes(),
        )?;
        Ok(version)
    }

    fn manifest(&self, name: &str, version: u64) -> Result<Manifest, Error> {
        let path = self.model_dir(name).join(format!("{version}.json"));
        let m = Manifest::from_value(read_json(&path)?, &path)?;
        if m.name != name || m.version != version {
            return Err(Error::new(
                ErrorKind::Tampered,
                format!(
                    "{} claims to be {}@{}: it was moved or edited",
                    path.display(),
                    m.name,
                    m.version
                ),
            ));
        }
        Ok(m)
    }

    /// The signature of a manifest, checked against the trusted keys.
    fn check_signature(&self, m: &Manifest, trusted: &[VerifyingKey]) -> Result<(), Error> {
        let at = format!("{}@{}", m.name, m.version);
        let signer = keys::public_from_hex(&m.signed_by).map_err(|e| {
            Error::new(
                ErrorKind::Tampered,
                format!("{at}: signed_by is not a key ({e})"),
            )
        })?;
        if !trusted.contains(&signer) {
            return Err(Error::new(
                ErrorKind::Untrusted,
                format!(
                    "{at}: signed by {}, a key this registry does not trust",
                    m.signed_by
                ),
            ));
        }
        let sig = from_hex(&m.signature)
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .map(|b| Signature::from_bytes(&b))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::BadSignature,
                    format!("{at}: the signature is not 64 hex bytes"),
                )
            })?;
        signer.verify(&signed_bytes(&m.raw), &sig).map_err(|_| {
            Error::new(
                ErrorKind::BadSignature,
                format!("{at}: the signature does not match the manifest (its card or digest was changed, or it was signed by another key)"),
            )
        })
    }

    /// The artifact's bytes, checked against the manifest's size and digest.
    fn read_blob(&self, m: &Manifest) -> Result<Vec<u8>, Error> {
        let at = format!("{}@{}", m.name, m.version);
        let path = self.blob_path(&m.sha256);
        let f = File::open(&path).map_err(|e| {
            Error::new(
                ErrorKind::Tampered,
                format!("{at}: artifact {} is missing ({e})", path.display()),
            )
        })?;
        let mut bytes = Vec::new();
        f.take(m.size + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_err(&path, &e))?;
        let got = bytes.len() as u64;
        if got < m.size {
            return Err(Error::new(
                ErrorKind::Tampered,
                format!(
                    "{at}: artifact truncated: {got} bytes on disk, {} signed",
                    m.size
                ),
            ));
        }
        if got > m.size {
            return Err(Error::new(
                ErrorKind::Tampered,
                format!("{at}: artifact longer than the {} bytes signed", m.size),
            ));
        }
        let sha = to_hex(&Sha256::digest(&bytes));
        if sha != m.sha256 {
            return Err(Error::new(
                ErrorKind::Tampered,
                format!(
                    "{at}: artifact tampered: sha256 {sha} on disk, {} signed",
                    m.sha256
                ),
            ));
        }
        Ok(bytes)
    }

    /// The version a reference selects.
    pub fn resolve(&self, r: &ModelRef) -> Result<u64, Error> {
        let versions = self.versions_of(&r.name)?;
        if versions.is_empty() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no model named {:?}", r.name),
            ));
        }
        match &r.selector {
            Selector::Latest => Ok(*versions.last().unwrap_or(&0)),
            Selector::Version(v) if versions.contains(v) => Ok(*v),
            Selector::Version(v) => Err(Error::new(
                ErrorKind::NotFound,
                format!("{} has no version {v} (versions: {versions:?})", r.name),
            )),
            Selector::Alias(a) => self.aliases_of(&r.name)?.get(a).copied().ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("{} has no alias {a:?}", r.name),
                )
            }),
        }
    }

    /// Load and verify an artifact: signature, size and digest, or the reason it is refused.
    pub fn load(&self, reference: &str) -> Result<Loaded, Error> {
        let r = ModelRef::parse(reference)?;
        let version = self.resolve(&r)?;
        let manifest = self.manifest(&r.name, version)?;
        self.check_signature(&manifest, &self.trusted_keys()?)?;
        let bytes = self.read_blob(&manifest)?;
        Ok(Loaded { manifest, bytes })
    }

    /// Point `alias` at `name@version` (which must load).
    pub fn promote(&self, name: &str, version: u64, alias: &str) -> Result<Option<u64>, Error> {
        check_name(name)?;
        check_alias(alias)?;
        let _lock = self.lock()?;
        self.load(&format!("{name}@{version}"))?;
        let mut aliases = self.aliases_of(name)?;
        let before = aliases.insert(alias.to_owned(), version);
        let text = serde_json::to_string_pretty(&aliases)
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        fsio::write_atomic(
            &self.tmp(),
            &self.model_dir(name).join("aliases.json"),
            text.as_bytes(),
        )?;
        Ok(before)
    }

    pub fn names(&self) -> Result<Vec<String>, Error> {
        let dir = self.root.join("models");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(|e| io_err(&dir, &e))? {
            let e = e.map_err(|e| io_err(&dir, &e))?;
            if let Some(n) = e.file_name().to_str()
                && check_name(n).is_ok()
            {
                out.push(n.to_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every model with its versions' manifests (unverified: `verify` checks them).
    pub fn list(&self) -> Result<Vec<ModelInfo>, Error> {
        let mut out = Vec::new();
        for name in self.names()? {
            let mut versions = Vec::new();
            for v in self.versions_of(&name)? {
                versions.push(self.manifest(&name, v)?);
            }
            let aliases = self.aliases_of(&name)?;
            out.push(ModelInfo {
                name,
                versions,
                aliases,
            });
        }
        Ok(out)
    }

    fn referenced_blobs(&self) -> Result<BTreeSet<String>, Error> {
        let mut out = BTreeSet::new();
        for name in self.names()? {
            for v in self.versions_of(&name)? {
                // A manifest that cannot be read still protects what it might name.
                match self.manifest(&name, v) {
                    Ok(m) => {
                        out.insert(m.sha256);
                    }
                    Err(e) => {
                        return Err(Error::new(
                            e.kind,
                            format!("{e}; gc refuses to run on a registry it cannot read"),
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    fn blob_names(&self) -> Result<Vec<String>, Error> {
        let dir = self.root.join("blobs/sha256");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(|e| io_err(&dir, &e))? {
            let e = e.map_err(|e| io_err(&dir, &e))?;
            out.push(e.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }

    /// Check every version (signature, size, digest) and every alias.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        let trusted = self.trusted_keys()?;
        let mut report = VerifyReport::default();
        let mut referenced = BTreeSet::new();
        for name in self.names()? {
            let versions = self.versions_of(&name)?;
            for &v in &versions {
                let checked = self.manifest(&name, v).and_then(|m| {
                    referenced.insert(m.sha256.clone());
                    self.check_signature(&m, &trusted)?;
                    self.read_blob(&m)
                });
                match checked {
                    Ok(_) => report.versions_ok += 1,
                    Err(e) => report.problems.push(e.to_string()),
                }
            }
            match self.aliases_of(&name) {
                Ok(aliases) => {
                    for (a, v) in aliases {
                        if !versions.contains(&v) {
                            report.problems.push(format!(
                                "{name}@{a} points at version {v}, which does not exist"
                            ));
                        }
                    }
                }
                Err(e) => report.problems.push(e.to_string()),
            }
        }
        report.unreferenced_blobs = self
            .blob_names()?
            .iter()
            .filter(|b| !referenced.contains(*b))
            .count();
        let tmp = self.tmp();
        report.temp_files = fs::read_dir(&tmp).map_err(|e| io_err(&tmp, &e))?.count();
        Ok(report)
    }

    /// Remove blobs no manifest names and leftover temporary files.
    pub fn gc(&self) -> Result<GcReport, Error> {
        let _lock = self.lock()?;
        let referenced = self.referenced_blobs()?;
        let mut report = GcReport::default();
        for b in self.blob_names()? {
            if !referenced.contains(&b) {
                let p = self.blob_path(&b);
                report.bytes_freed += fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&p).map_err(|e| io_err(&p, &e))?;
                report.blobs_removed += 1;
            }
        }
        // Under the lock no writer is between creating and publishing a temporary file.
        let tmp = self.tmp();
        for e in fs::read_dir(&tmp).map_err(|e| io_err(&tmp, &e))? {
            let p = e.map_err(|e| io_err(&tmp, &e))?.path();
            fs::remove_file(&p).map_err(|e| io_err(&p, &e))?;
            report.temp_removed += 1;
        }
        fsio::sync_dir(&self.root.join("blobs/sha256"))?;
        Ok(report)
    }

    /// Write a verified artifact to `out` (for tools that read a file).
    pub fn export(&self, reference: &str, out: &Path) -> Result<Manifest, Error> {
        let loaded = self.load(reference)?;
        let mut f = File::create(out).map_err(|e| io_err(out, &e))?;
        f.write_all(&loaded.bytes).map_err(|e| io_err(out, &e))?;
        f.sync_all().map_err(|e| io_err(out, &e))?;
        Ok(loaded.manifest)
    }
}
