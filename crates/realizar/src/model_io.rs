//! Reading model files safely: safetensors weights and JSON configs.
//!
//! A safetensors file is an 8-byte little-endian header length `N`, `N` bytes of JSON
//! naming every tensor with its dtype, shape and byte range (`data_offsets`, relative to
//! the data section that follows the header), optionally a `__metadata__` object of
//! strings, then the raw data. Every number in that header comes from the file, so
//! [`SafeTensorsFile::parse`] trusts none of it: the header length is bounded by the file
//! (a header that claims a gigabyte is a clear error, not a gigabyte allocation), the
//! header must be UTF-8 JSON with no repeated names, each dtype must be known and each
//! shape's byte size must be computable without overflow and equal its byte range, and
//! the ranges, sorted, must tile the data section exactly: no overlap, no gap, nothing
//! past the end and nothing left over (the rule of the reference implementation, the
//! `safetensors` package, so a file this reader accepts, it accepts too). This is the
//! one safetensors reader of realizar: the encoders ([`Tensors`]) and the tabular models
//! both read through it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use safetensors::Dtype;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::Value;

use crate::error::{Error, Result};
use trueno::quant::f16_to_f32;

/// Largest header accepted (the `safetensors` crate's own limit).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;
/// Largest JSON config read.
const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// The header key that holds the free-form string metadata, not a tensor.
const METADATA_ENTRY: &str = "__metadata__";

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

/// Why bytes are not a valid safetensors file (the caller adds the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeTensorsError(pub String);

impl fmt::Display for SafeTensorsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SafeTensorsError {}

fn st_err<T>(message: impl Into<String>) -> Result<T, SafeTensorsError> {
    Err(SafeTensorsError(message.into()))
}

/// One tensor of a [`SafeTensorsFile`]: its dtype, shape and bytes (little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorView<'a> {
    pub dtype: Dtype,
    pub shape: &'a [usize],
    pub data: &'a [u8],
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    /// Absolute byte range in the file.
    start: usize,
    end: usize,
}

/// A tensor's header entry as written; extra keys are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    dtype: Dtype,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

/// The header's top-level object as (key, value) pairs in file order, keeping repeats
/// (a map would silently keep one of two tensors with the same name).
struct Pairs(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of tensor entries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = map.next_entry::<String, Value>()? {
                    out.push(kv);
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A validated safetensors file borrowed from its bytes: every tensor's view lies inside
/// the data section, and the views tile it without overlap.
#[derive(Debug, Clone)]
pub struct SafeTensorsFile<'a> {
    bytes: &'a [u8],
    /// Tensors in header order.
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    metadata: HashMap<String, String>,
    header_len: usize,
}

/// Bytes of `n` elements of `dtype`, or `None` on overflow or a partial byte (the
/// sub-byte float formats pack several elements per byte).
fn byte_size(dtype: Dtype, shape: &[usize]) -> Option<usize> {
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
    let bits = n.checked_mul(dtype.bitsize())?;
    bits.is_multiple_of(8).then_some(bits / 8)
}

impl<'a> SafeTensorsFile<'a> {
    /// Parse and validate the whole file `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, SafeTensorsError> {
        let Some((prefix, rest)) = bytes.split_first_chunk::<8>() else {
            return st_err(format!(
                "truncated safetensors file: {} bytes, less than the 8-byte header length",
                bytes.len()
            ));
        };
        let claimed = u64::from_le_bytes(*prefix);
        if claimed > MAX_HEADER_BYTES {
            return st_err(format!(
                "safetensors header claims {claimed} bytes, more than the {MAX_HEADER_BYTES} allowed"
            ));
        }
        // Bounded by MAX_HEADER_BYTES, so it fits any usize of 32 bits or more.
        let header_len = claimed as usize;
        if header_len > rest.len() {
            return st_err(format!(
                "truncated or corrupt safetensors file: header claims {header_len} bytes but the file has only {} after the length",
                rest.len()
            ));
        }
        let (header, data) = rest.split_at(header_len);
        let header = std::str::from_utf8(header)
            .map_err(|e| SafeTensorsError(format!("safetensors header is not UTF-8: {e}")))?;
        let Pairs(pairs) = serde_json::from_str(header)
            .map_err(|e| SafeTensorsError(format!("safetensors header is not valid JSON: {e}")))?;
        let data_start = 8 + header_len;

        let mut entries = Vec::with_capacity(pairs.len());
        let mut index = HashMap::with_capacity(pairs.len());
        let mut metadata = None;
        for (name, value) in pairs {
            if name == METADATA_ENTRY {
                if metadata.is_some() {
                    return st_err("safetensors header has two __metadata__ entries");
                }
                let m: HashMap<String, String> = serde_json::from_value(value).map_err(|e| {
                    SafeTensorsError(format!(
                        "safetensors __metadata__ must map strings to strings: {e}"
                    ))
                })?;
                metadata = Some(m);
                continue;
            }
            let raw: RawEntry = serde_json::from_value(value)
                .map_err(|e| SafeTensorsError(format!("tensor {name:?}: invalid entry: {e}")))?;
            let shape = raw
                .shape
                .iter()
                .map(|&d| usize::try_from(d).ok())
                .collect::<Option<Vec<usize>>>();
            let Some(shape) = shape else {
                return st_err(format!(
                    "tensor {name:?}: shape {:?} is too large",
                    raw.shape
                ));
            };
            let Some(size) = byte_size(raw.dtype, &shape) else {
                return st_err(format!(
                    "tensor {name:?}: shape {shape:?} of {:?} overflows or is not a whole number of bytes",
                    raw.dtype
                ));
            };
            let [s, e] = raw.data_offsets;
            let range = usize::try_from(s).ok().zip(usize::try_from(e).ok());
            let Some((s, e)) = range.filter(|(s, e)| s <= e && *e <= data.len()) else {
                return st_err(format!(
                    "tensor {name:?}: data_offsets [{s}, {e}) do not lie inside the {}-byte data section",
                    data.len()
                ));
            };
            if e - s != size {
                return st_err(format!(
                    "tensor {name:?}: data_offsets [{s}, {e}) hold {} bytes, {:?} of shape {shape:?} needs {size}",
                    e - s,
                    raw.dtype
                ));
            }
            if index.insert(name.clone(), entries.len()).is_some() {
                return st_err(format!("tensor {name:?} appears twice in the header"));
            }
            entries.push(Entry {
                name,
                dtype: raw.dtype,
                shape,
                start: data_start + s,
                end: data_start + e,
            });
        }

        // The ranges, in order, must tile the data section: each starts where the
        // previous ended, and the last ends with the file.
        let mut order: Vec<&Entry> = entries.iter().collect();
        order.sort_by_key(|t| (t.start, t.end));
        let mut at = data_start;
        for t in order {
            if t.start < at {
                return st_err(format!(
                    "tensor {:?}: bytes [{}, {}) overlap the previous tensor (which ends at {at})",
                    t.name, t.start, t.end
                ));
            }
            if t.start > at {
                return st_err(format!(
                    "tensor {:?} starts at byte {}, leaving a gap after byte {at}",
                    t.name, t.start
                ));
            }
            at = t.end;
        }
        if at != bytes.len() {
            return st_err(format!(
                "safetensors data section is {} bytes but its tensors cover only {}",
                data.len(),
                at - data_start
            ));
        }
        Ok(SafeTensorsFile {
            bytes,
            entries,
            index,
            metadata: metadata.unwrap_or_default(),
            header_len,
        })
    }

    /// The `__metadata__` strings (empty if the file has none).
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// Length of the JSON header in bytes.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file holds no tensors.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn view<'s>(&'s self, e: &'s Entry) -> TensorView<'s> {
        TensorView {
            dtype: e.dtype,
            shape: &e.shape,
            data: &self.bytes[e.start..e.end],
        }
    }

    /// A tensor by name.
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>, SafeTensorsError> {
        match self.index.get(name) {
            Some(&i) => Ok(self.view(&self.entries[i])),
            None => st_err(format!("missing tensor {name:?}")),
        }
    }

    /// Every tensor with its name, in header order.
    pub fn tensors(&self) -> impl Iterator<Item = (&str, TensorView<'_>)> {
        self.entries.iter().map(|e| (e.name.as_str(), self.view(e)))
    }
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
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        let st = SafeTensorsFile::parse(&bytes)
            .map_err(|e| format_err(path, format!("invalid safetensors file: {e}")))?;
        let mut tensors = HashMap::new();
        let mut other_dtypes = HashMap::new();
        for (name, view) in st.tensors() {
            let data = view.data;
            let values: Vec<f32> = match view.dtype {
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
                    other_dtypes.insert(name.to_owned(), other);
                    continue;
                }
            };
            tensors.insert(name.to_owned(), (view.shape.to_vec(), values));
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
        assert!(e.contains("invalid safetensors file"), "{e}");
        assert!(e.contains("do not lie inside"), "{e}");
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

    /// A file from a header text and data bytes, the length prefix computed.
    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(data);
        b
    }

    fn parse_err(bytes: &[u8]) -> String {
        SafeTensorsFile::parse(bytes).unwrap_err().0
    }

    #[test]
    fn views_metadata_and_empty_tensors() {
        let b = file(
            r#"{"__metadata__":{"k":"v é"},"b":{"dtype":"I64","shape":[1],"data_offsets":[2,10]},
               "z":{"dtype":"F32","shape":[0,3],"data_offsets":[2,2]},
               "a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}   "#,
            &[1, 2, 7, 0, 0, 0, 0, 0, 0, 0],
        );
        let st = SafeTensorsFile::parse(&b).unwrap();
        assert_eq!(st.metadata()["k"], "v é");
        assert_eq!(st.len(), 3);
        let names: Vec<&str> = st.tensors().map(|(n, _)| n).collect();
        assert_eq!(names, ["b", "z", "a"]);
        let a = st.tensor("a").unwrap();
        assert_eq!(
            (a.dtype, a.shape, a.data),
            (Dtype::U8, &[2usize][..], &[1u8, 2][..])
        );
        assert_eq!(st.tensor("b").unwrap().data, &7i64.to_le_bytes());
        assert!(st.tensor("z").unwrap().data.is_empty());
        assert!(st.tensor("y").unwrap_err().0.contains("missing tensor"));
        // No tensors at all is a valid (empty) file.
        assert!(SafeTensorsFile::parse(&file("{}", &[])).unwrap().is_empty());
    }

    #[test]
    fn truncated_files() {
        assert!(parse_err(&[]).contains("truncated"));
        assert!(parse_err(&[5, 0, 0]).contains("truncated"));
        let b = file(
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            &[0; 8],
        );
        for cut in [8, 20, b.len() - 8, b.len() - 1] {
            assert!(SafeTensorsFile::parse(&b[..cut]).is_err(), "cut at {cut}");
        }
        assert!(parse_err(&b[..b.len() - 1]).contains("do not lie inside"));
        assert!(parse_err(&b[..9]).contains("header claims"));
    }

    #[test]
    fn huge_header_length_is_refused_without_allocating() {
        for claim in [u64::MAX, 1 << 63, MAX_HEADER_BYTES + 1] {
            let mut b = claim.to_le_bytes().to_vec();
            b.extend_from_slice(b"{}");
            assert!(parse_err(&b).contains("more than the"), "{claim}");
        }
        let mut b = MAX_HEADER_BYTES.to_le_bytes().to_vec();
        b.extend_from_slice(b"{}");
        assert!(parse_err(&b).contains("truncated or corrupt"));
    }

    #[test]
    fn non_utf8_and_non_json_headers() {
        let mut b = 4u64.to_le_bytes().to_vec();
        b.extend_from_slice(b"\xff\xfe{}");
        assert!(parse_err(&b).contains("not UTF-8"));
        for h in [
            "",
            "[]",
            "{",
            r#"{"w":1}"#,
            r#"{"__metadata__":{"k":1}}"#,
            "null",
        ] {
            assert!(SafeTensorsFile::parse(&file(h, &[])).is_err(), "{h:?}");
        }
        let e = parse_err(&file(
            r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}}"#,
            &[0; 4],
        ));
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn lying_offsets_are_refused() {
        let cases = [
            // Past the end of the data section.
            (
                r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#,
                "do not lie inside",
            ),
            // Reversed.
            (
                r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
                "do not lie inside",
            ),
            // Beyond u64 / usize.
            (
                r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}}"#,
                "do not lie inside",
            ),
            (
                r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}}"#,
                "invalid entry",
            ),
            // Range length disagrees with dtype x shape.
            (
                r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                "needs 12",
            ),
            (
                r#"{"w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}"#,
                "needs 16",
            ),
            // A gap before the tensor, and bytes no tensor claims.
            (
                r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                "gap",
            ),
            (
                r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                "cover only 4",
            ),
        ];
        for (h, want) in cases {
            let e = parse_err(&file(h, &[0; 8]));
            assert!(e.contains(want), "{h}: {e}");
        }
    }

    #[test]
    fn overlapping_and_repeated_tensors_are_refused() {
        let e = parse_err(&file(
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                "b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            &[0; 12],
        ));
        assert!(e.contains("overlap"), "{e}");
        let e = parse_err(&file(
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},
                "a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            &[0; 8],
        ));
        assert!(e.contains("appears twice"), "{e}");
        let e = parse_err(&file(r#"{"__metadata__":{},"__metadata__":{}}"#, &[]));
        assert!(e.contains("two __metadata__"), "{e}");
    }

    #[test]
    fn wrong_dtype_and_overflowing_shapes_are_refused() {
        for dtype in ["F31", "f32", "", "Q4_0"] {
            let h = format!(r#"{{"w":{{"dtype":"{dtype}","shape":[1],"data_offsets":[0,4]}}}}"#);
            let e = parse_err(&file(&h, &[0; 4]));
            assert!(e.contains("invalid entry"), "{dtype}: {e}");
        }
        let h = r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#;
        assert!(parse_err(&file(h, &[])).contains("overflows"));
        let h = r#"{"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}}"#;
        assert!(parse_err(&file(h, &[])).contains("overflows"));
        // Three 4-bit values are one and a half bytes.
        let h = r#"{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#;
        assert!(parse_err(&file(h, &[0; 2])).contains("whole number of bytes"));
        // The encoder loader names an integer tensor's dtype when asked for floats.
        let h = r#"{"w":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#;
        let p = tmp("int.safetensors", &file(h, &[0; 4]));
        let e = Tensors::read(&p)
            .unwrap()
            .take("w", &[1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("dtype I32"), "{e}");
        std::fs::remove_file(p).unwrap();
    }

    use proptest::prelude::*;
    use safetensors::tensor::TensorView as RefView;

    const DTYPES: [Dtype; 8] = [
        Dtype::U8,
        Dtype::I16,
        Dtype::F16,
        Dtype::BF16,
        Dtype::F32,
        Dtype::I32,
        Dtype::F64,
        Dtype::I64,
    ];

    /// Tensors as (name, dtype, shape, bytes), written by the `safetensors` crate.
    fn reference_file(
        tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)],
        meta: Option<HashMap<String, String>>,
    ) -> Vec<u8> {
        let views: Vec<(String, RefView<'_>)> = tensors
            .iter()
            .map(|(n, d, s, b)| (n.clone(), RefView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize(views, meta).unwrap()
    }

    fn arb_tensors() -> impl Strategy<Value = Vec<(String, Dtype, Vec<usize>, Vec<u8>)>> {
        let one = (
            "[a-zé._0-9]{1,6}",
            0..DTYPES.len(),
            proptest::collection::vec(0usize..4, 0..4),
            any::<u64>(),
        )
            .prop_map(|(name, d, shape, seed)| {
                let dtype = DTYPES[d];
                let n: usize = shape.iter().product::<usize>() * dtype.bitsize() / 8;
                let mut rng = trueno::rng::Rng::new(seed);
                let bytes = (0..n).map(|_| (rng.uniform() * 256.0) as u8).collect();
                (name, dtype, shape, bytes)
            });
        proptest::collection::vec(one, 0..6).prop_map(|mut v| {
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v.dedup_by(|a, b| a.0 == b.0);
            v
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Files the `safetensors` crate writes read back exactly: every dtype, shape
        /// (scalars and empty tensors included), byte and metadata string.
        #[test]
        fn reads_what_the_reference_writes(
            tensors in arb_tensors(),
            // Never an empty map: safetensors 0.8.0 writes `{},"__metadata__":{}}` (not
            // JSON, which it then cannot read back itself) for no tensors and empty metadata.
            meta in proptest::option::of(proptest::collection::hash_map("[a-z.]{1,8}", "\\PC{0,8}", 1..3)),
        ) {
            let bytes = reference_file(&tensors, meta.clone());
            let st = SafeTensorsFile::parse(&bytes).unwrap();
            prop_assert_eq!(st.len(), tensors.len());
            prop_assert_eq!(st.metadata(), &meta.unwrap_or_default());
            for (name, dtype, shape, data) in &tensors {
                let v = st.tensor(name).unwrap();
                prop_assert_eq!((v.dtype, v.shape, v.data), (*dtype, &shape[..], &data[..]));
            }
        }

        /// Differential check on corrupted files: whatever this reader accepts, the
        /// reference accepts too, with the same tensors; nothing panics.
        #[test]
        fn corrupted_files_are_refused_or_agree_with_the_reference(
            tensors in arb_tensors(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = reference_file(&tensors, None);
            for (i, b) in &edits {
                let i = i.index(bytes.len());
                bytes[i] = *b;
            }
            let bytes = &bytes[..cut.index(bytes.len() + 1)];
            if let Ok(st) = SafeTensorsFile::parse(bytes) {
                let reference = safetensors::SafeTensors::deserialize(bytes);
                prop_assert!(reference.is_ok(), "accepted, the reference refuses: {:?}", reference.err());
                let reference = reference.unwrap();
                prop_assert_eq!(reference.len(), st.len());
                for (name, v) in st.tensors() {
                    let r = reference.tensor(name).unwrap();
                    prop_assert_eq!((r.dtype(), r.shape(), r.data()), (v.dtype, v.shape, v.data));
                }
            }
        }
    }
}
