//! Reading model files safely: safetensors weights and JSON configs.
//!
//! A safetensors file is an 8-byte little-endian header length `N`, `N` bytes of JSON
//! naming every tensor with its dtype, shape and byte range, then the raw data. Every
//! number in that header comes from the file, so nothing is trusted before it is checked
//! against the file's real size: a header that claims a gigabyte makes a clear error,
//! not a gigabyte allocation. The `safetensors` crate then validates the header itself
//! (offsets contiguous, in range, matching dtype x shape).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

use crate::error::{Error, Result};

/// Largest header accepted (the `safetensors` crate's own limit).
const MAX_HEADER_BYTES: u64 = 100_000_000;
/// Largest JSON config read.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

fn format_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Read and parse a JSON file.
pub fn read_json(path: &Path) -> Result<Value> {
    let text = crate::tokenizer::read_text(path, MAX_CONFIG_BYTES)?;
    serde_json::from_str(&text).map_err(|e| format_err(path, format!("invalid JSON: {e}")))
}

/// The f32 tensors of one safetensors file, by name.
#[derive(Debug)]
pub struct Tensors {
    path: PathBuf,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    /// Tensors skipped because their dtype is not floating point, by name.
    other_dtypes: HashMap<String, Dtype>,
}

impl Tensors {
    /// Read every tensor of `path`; F32 is taken as is, F16 and BF16 are widened to
    /// f32, integer tensors (such as BERT's `position_ids` buffer) are skipped.
    pub fn read(path: &Path) -> Result<Self> {
        let mut file = std::fs::File::open(path).map_err(io_err(path))?;
        let file_len = file.metadata().map_err(io_err(path))?.len();
        let mut prefix = [0u8; 8];
        if file_len < 8 {
            return Err(format_err(
                path,
                format!(
                    "truncated safetensors file: {file_len} bytes, less than the 8-byte header length"
                ),
            ));
        }
        file.read_exact(&mut prefix).map_err(io_err(path))?;
        let header_len = u64::from_le_bytes(prefix);
        if header_len > MAX_HEADER_BYTES {
            return Err(format_err(
                path,
                format!(
                    "safetensors header claims {header_len} bytes, more than the {MAX_HEADER_BYTES} allowed"
                ),
            ));
        }
        if header_len > file_len - 8 {
            return Err(format_err(
                path,
                format!(
                    "truncated or corrupt safetensors file: header claims {header_len} bytes but the file has only {} after the length",
                    file_len - 8
                ),
            ));
        }
        // Both sizes are now bounded by the real file, so reading it whole is safe.
        let len = usize::try_from(file_len)
            .map_err(|_| format_err(path, "file too large for this platform"))?;
        let mut bytes = Vec::with_capacity(len);
        bytes.extend_from_slice(&prefix);
        file.read_to_end(&mut bytes).map_err(io_err(path))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| format_err(path, format!("invalid safetensors file: {e}")))?;
        let mut tensors = HashMap::new();
        let mut other_dtypes = HashMap::new();
        for (name, view) in st.tensors() {
            let data = view.data();
            let values: Vec<f32> = match view.dtype() {
                Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                Dtype::BF16 => data
                    .chunks_exact(2)
                    .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
                    .collect(),
                Dtype::F16 => data
                    .chunks_exact(2)
                    .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                    .collect(),
                other => {
                    other_dtypes.insert(name, other);
                    continue;
                }
            };
            tensors.insert(name, (view.shape().to_vec(), values));
        }
        Ok(Self {
            path: path.to_path_buf(),
            tensors,
            other_dtypes,
        })
    }

    /// The file the tensors came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a floating-point tensor called `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Take tensor `name` out, checking it has exactly `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let Some((got, data)) = self.tensors.remove(name) else {
            let message = match self.other_dtypes.get(name) {
                Some(dtype) => {
                    format!("tensor {name:?} has dtype {dtype:?}; expected F32, F16 or BF16")
                }
                None => format!("missing tensor {name:?} (floating point, shape {shape:?})"),
            };
            return Err(format_err(&self.path, message));
        };
        if got != shape {
            return Err(format_err(
                &self.path,
                format!("tensor {name:?} has shape {got:?}, the config implies {shape:?}"),
            ));
        }
        Ok(data)
    }
}

/// IEEE half to single precision (exact: every f16 is an f32).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: value = f * 2^-24.
            let v = f as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(format!("realizar-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn valid_file() -> Vec<u8> {
        let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header);
        b.extend_from_slice(&1.5f32.to_le_bytes());
        b.extend_from_slice(&(-2.0f32).to_le_bytes());
        b
    }

    #[test]
    fn reads_a_valid_file() {
        let p = tmp("valid.safetensors", &valid_file());
        let mut t = Tensors::read(&p).unwrap();
        assert_eq!(t.take("w", &[2]).unwrap(), [1.5, -2.0]);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn wrong_shape_and_missing_name_are_errors() {
        let p = tmp("shape.safetensors", &valid_file());
        let mut t = Tensors::read(&p).unwrap();
        assert!(
            t.take("v", &[2])
                .unwrap_err()
                .to_string()
                .contains("missing tensor")
        );
        assert!(
            t.take("w", &[3])
                .unwrap_err()
                .to_string()
                .contains("shape [2]")
        );
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn integer_dtype_is_named_in_the_error() {
        let header = br#"{"w":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}"#;
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header);
        b.extend_from_slice(&[0; 8]);
        let p = tmp("dtype.safetensors", &b);
        let mut t = Tensors::read(&p).unwrap();
        let e = t.take("w", &[2]).unwrap_err().to_string();
        assert!(e.contains("dtype I32"), "{e}");
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn truncated_data_is_an_error() {
        let mut b = valid_file();
        b.truncate(b.len() - 3);
        let p = tmp("trunc.safetensors", &b);
        let e = Tensors::read(&p).unwrap_err().to_string();
        assert!(e.contains("invalid safetensors"), "{e}");
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn tiny_file_is_an_error() {
        let p = tmp("tiny.safetensors", &[1, 2, 3]);
        assert!(
            Tensors::read(&p)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn huge_header_claim_is_refused_before_allocating() {
        let mut b = u64::MAX.to_le_bytes().to_vec();
        b.extend_from_slice(b"{}");
        let p = tmp("huge.safetensors", &b);
        assert!(
            Tensors::read(&p)
                .unwrap_err()
                .to_string()
                .contains("header claims")
        );
        let mut b = 1_000_000u64.to_le_bytes().to_vec();
        b.extend_from_slice(b"{}");
        std::fs::write(&p, &b).unwrap();
        assert!(
            Tensors::read(&p)
                .unwrap_err()
                .to_string()
                .contains("truncated or corrupt")
        );
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn garbage_header_is_an_error() {
        let mut b = 4u64.to_le_bytes().to_vec();
        b.extend_from_slice(b"\xff\xfe{x");
        let p = tmp("garbage.safetensors", &b);
        assert!(Tensors::read(&p).is_err());
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn f16_widening_is_exact() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
    }
}
