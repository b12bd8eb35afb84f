//! Signing keys: Ed25519 (RFC 8032) through ed25519-dalek. A key file holds the
//! 32-byte seed as hex; its public half (32 bytes, hex) is what a registry trusts.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::fsio::io_err;
use crate::{Error, ErrorKind};

pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

fn fixed32(s: &str, what: &str) -> Result<[u8; 32], Error> {
    from_hex(s)
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| Error::new(ErrorKind::Invalid, format!("{what} must be 64 hex digits")))
}

pub fn public_from_hex(s: &str) -> Result<VerifyingKey, Error> {
    VerifyingKey::from_bytes(&fixed32(s, "a public key")?).map_err(|e| {
        Error::new(
            ErrorKind::Invalid,
            format!("not an Ed25519 public key: {e}"),
        )
    })
}

/// A new key from the operating system's random source.
pub fn generate() -> Result<SigningKey, Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| Error::new(ErrorKind::Io, format!("no randomness for a key: {e}")))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Write the secret seed to `path` (mode 0600, refusing to overwrite) and the public
/// key to `path.pub`.
pub fn write_keypair(key: &SigningKey, path: &Path) -> Result<(), Error> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err(path, &e))?;
    writeln!(f, "{}", to_hex(&key.to_bytes())).map_err(|e| io_err(path, &e))?;
    let public = path.with_extension("pub");
    fs::write(&public, to_hex(key.verifying_key().as_bytes()) + "\n")
        .map_err(|e| io_err(&public, &e))
}

pub fn read_secret(path: &Path) -> Result<SigningKey, Error> {
    let text = fs::read_to_string(path).map_err(|e| io_err(path, &e))?;
    Ok(SigningKey::from_bytes(&fixed32(
        &text,
        &format!("the key file {}", path.display()),
    )?))
}

pub fn read_public(path: &Path) -> Result<VerifyingKey, Error> {
    let text = fs::read_to_string(path).map_err(|e| io_err(path, &e))?;
    public_from_hex(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(to_hex(&[0, 1, 0xab, 0xff]), "0001abff");
        assert_eq!(from_hex("0001ABff"), Some(vec![0, 1, 0xab, 0xff]));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("é0"), None);
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 section 7.1, TEST 1: the empty message.
        let sk = SigningKey::from_bytes(
            &fixed32(
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "seed",
            )
            .unwrap(),
        );
        assert_eq!(
            to_hex(sk.verifying_key().as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        use ed25519_dalek::Signer;
        assert_eq!(
            to_hex(&sk.sign(b"").to_bytes()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }
}
