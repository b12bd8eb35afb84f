//! GGUF: the single-file model format of llama.cpp, read and validated.
//!
//! A GGUF file is a little-endian header (`GGUF`, version, tensor count,
//! metadata count), a list of typed key/value metadata (scalars, strings and
//! possibly nested arrays), a table of tensor descriptions (name, shape,
//! element type, offset), and then the tensor data, each tensor starting at a
//! multiple of `general.alignment` (default 32) from the aligned start of the
//! data section.
//!
//! Everything in the file is untrusted. Every count, length, shape and offset
//! is checked against the bytes that remain before anything is allocated: a
//! string length or array count that would need more bytes than the file has
//! left is an error, so a lying header cannot make the reader reserve 2^60
//! elements. Shapes are multiplied with overflow checks, and every tensor's
//! byte range must lie inside the file. Failures are [`GgufError`] values
//! naming the byte offset and what was wrong; the parser never panics (a
//! property test mutates and truncates a real file to check that).
//!
//! Block-quantised element types (Q8_0, Q4_0, Q4_1) are decoded by
//! [`trueno::quant`], the one home of those formats.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use trueno::quant::QuantKind;

pub mod write;

/// The four bytes every GGUF file starts with.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// Alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: usize = 32;
/// GGML tensors have at most four dimensions.
pub const MAX_DIMS: usize = 4;
/// Arrays of arrays deeper than this are refused (no real file nests at all).
const MAX_ARRAY_DEPTH: usize = 8;

/// Why a GGUF file could not be read: where in the file, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufError {
    /// Byte offset at which the problem was found.
    pub offset: usize,
    pub message: String,
}

impl std::fmt::Display for GgufError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for GgufError {}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    /// Element type code and the elements (all of that type).
    Array(ValueType, Vec<Value>),
}

/// GGUF value type codes (`gguf_type` in ggml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    fn from_code(code: u32) -> Option<ValueType> {
        Some(match code {
            0 => ValueType::U8,
            1 => ValueType::I8,
            2 => ValueType::U16,
            3 => ValueType::I16,
            4 => ValueType::U32,
            5 => ValueType::I32,
            6 => ValueType::F32,
            7 => ValueType::Bool,
            8 => ValueType::String,
            9 => ValueType::Array,
            10 => ValueType::U64,
            11 => ValueType::I64,
            12 => ValueType::F64,
            _ => return None,
        })
    }

    /// The fewest bytes one value of this type occupies (a string is at least
    /// its 8-byte length, an array at least its 4-byte type and 8-byte count).
    fn min_size(self) -> usize {
        match self {
            ValueType::U8 | ValueType::I8 | ValueType::Bool => 1,
            ValueType::U16 | ValueType::I16 => 2,
            ValueType::U32 | ValueType::I32 | ValueType::F32 => 4,
            ValueType::U64 | ValueType::I64 | ValueType::F64 | ValueType::String => 8,
            ValueType::Array => 12,
        }
    }
}

impl Value {
    /// The value as an unsigned integer, if it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, if it is a float or an integer.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v as f64),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(_, v) => Some(v),
            _ => None,
        }
    }
}

/// Element type of a tensor (`ggml_type`); the ones realizar can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorType {
    F32,
    F16,
    Quant(QuantKind),
}

impl TensorType {
    fn from_code(code: u32) -> Option<TensorType> {
        Some(match code {
            0 => TensorType::F32,
            1 => TensorType::F16,
            2 => TensorType::Quant(QuantKind::Q4_0),
            3 => TensorType::Quant(QuantKind::Q4_1),
            8 => TensorType::Quant(QuantKind::Q8_0),
            _ => return None,
        })
    }

    /// Elements per block and bytes per block.
    pub fn block(self) -> (usize, usize) {
        match self {
            TensorType::F32 => (1, 4),
            TensorType::F16 => (1, 2),
            TensorType::Quant(k) => (k.block_len(), k.block_bytes()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TensorType::F32 => "F32",
            TensorType::F16 => "F16",
            TensorType::Quant(k) => k.name(),
        }
    }
}

/// One entry of the tensor table, validated against the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// GGML order: `dims[0]` is the contiguous (innermost) dimension.
    pub dims: Vec<usize>,
    pub ty: TensorType,
    /// Offset relative to the start of the data section (as stored).
    pub offset: usize,
    /// Absolute byte range of the data in the file.
    pub start: usize,
    pub len: usize,
}

impl TensorInfo {
    pub fn n_elements(&self) -> usize {
        self.dims.iter().product()
    }
}

/// A parsed GGUF file: metadata in file order, the tensor table, and where
/// the data section starts. The bytes themselves are held by the caller
/// (or by [`Gguf`]).
#[derive(Debug, Clone)]
pub struct GgufFile {
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: usize,
    pub data_start: usize,
    meta_index: HashMap<String, usize>,
    tensor_index: HashMap<String, usize>,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, GgufError> {
        Err(GgufError {
            offset: self.pos,
            message: message.into(),
        })
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return self.err(format!(
                "truncated: {what} needs {n} bytes, {} remain",
                self.remaining()
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count that is about to size an allocation of elements at least
    /// `min_size` bytes each: refused unless the file could hold them all.
    fn count(&mut self, what: &str, min_size: usize) -> Result<usize, GgufError> {
        let at = self.pos;
        let n = self.u64(what)?;
        let fits = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(min_size).map(|b| (n, b)));
        match fits {
            Some((n, bytes)) if bytes <= self.remaining() => Ok(n),
            _ => Err(GgufError {
                offset: at,
                message: format!(
                    "{what} is {n}, but only {} bytes remain (at least {min_size} per element)",
                    self.remaining()
                ),
            }),
        }
    }

    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let len = self.count(what, 1)?;
        let at = self.pos;
        let raw = self.take(len, what)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(GgufError {
                offset: at,
                message: format!("{what} is not valid UTF-8: {e}"),
            }),
        }
    }

    fn value_type(&mut self, what: &str) -> Result<ValueType, GgufError> {
        let at = self.pos;
        let code = self.u32(what)?;
        ValueType::from_code(code).ok_or_else(|| GgufError {
            offset: at,
            message: format!("unknown metadata value type {code} for {what}"),
        })
    }

    fn value(&mut self, ty: ValueType, depth: usize) -> Result<Value, GgufError> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>("u8")?[0]),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array("i8")?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array("u16")?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array("i16")?)),
            ValueType::U32 => Value::U32(self.u32("u32")?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array("i32")?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array("f32")?)),
            ValueType::U64 => Value::U64(self.u64("u64")?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array("i64")?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array("f64")?)),
            ValueType::Bool => {
                let at = self.pos;
                match self.array::<1>("bool")?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    b => {
                        return Err(GgufError {
                            offset: at,
                            message: format!("bool byte is {b}, expected 0 or 1"),
                        });
                    }
                }
            }
            ValueType::String => Value::String(self.string("string length")?),
            ValueType::Array => {
                if depth >= MAX_ARRAY_DEPTH {
                    return self.err(format!("arrays nested deeper than {MAX_ARRAY_DEPTH}"));
                }
                let elem = self.value_type("array element type")?;
                let n = self.count("array length", elem.min_size())?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(elem, depth + 1)?);
                }
                Value::Array(elem, items)
            }
        })
    }
}

impl GgufFile {
    /// Parse and validate the header, metadata and tensor table of `bytes`
    /// (the whole file: tensor ranges are checked against its length).
    pub fn parse(bytes: &[u8]) -> Result<GgufFile, GgufError> {
        let mut c = Cursor { bytes, pos: 0 };
        if c.take(4, "magic")? != MAGIC {
            return Err(GgufError {
                offset: 0,
                message: "not a GGUF file (magic is not \"GGUF\")".into(),
            });
        }
        let version = c.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(GgufError {
                offset: 4,
                message: format!("GGUF version {version} is not supported (2 and 3 are)"),
            });
        }
        // A tensor entry is at least a name length, n_dims, type and offset.
        let n_tensors = c.u64("tensor count")?;
        let n_kv = c.count("metadata count", 8 + 4)?;

        let mut metadata = Vec::with_capacity(n_kv);
        let mut meta_index = HashMap::with_capacity(n_kv);
        for _ in 0..n_kv {
            let at = c.pos;
            let key = c.string("metadata key length")?;
            let ty = c.value_type(&key)?;
            let v = c.value(ty, 0)?;
            if meta_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(GgufError {
                    offset: at,
                    message: format!("duplicate metadata key {key:?}"),
                });
            }
            metadata.push((key, v));
        }

        let alignment = match meta_index.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(&i) => match metadata[i].1 {
                Value::U32(a) if a != 0 && a.is_power_of_two() => a as usize,
                ref other => {
                    return c.err(format!(
                        "general.alignment must be a power-of-two u32, got {other:?}"
                    ));
                }
            },
        };

        let min_entry = 8 + 4 + 4 + 8;
        let n_tensors = match usize::try_from(n_tensors) {
            Ok(n) if n.checked_mul(min_entry).is_some_and(|b| b <= c.remaining()) => n,
            _ => {
                return c.err(format!(
                    "tensor count is {n_tensors}, but only {} bytes remain",
                    c.remaining()
                ));
            }
        };
        let mut raw = Vec::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let at = c.pos;
            let name = c.string("tensor name length")?;
            let n_dims = c.u32("tensor dimension count")? as usize;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return c.err(format!(
                    "tensor {name:?} has {n_dims} dimensions (1..={MAX_DIMS} allowed)"
                ));
            }
            let mut dims = Vec::with_capacity(n_dims);
            for _ in 0..n_dims {
                let d = c.u64("tensor dimension")?;
                match usize::try_from(d) {
                    Ok(d) => dims.push(d),
                    Err(_) => return c.err(format!("tensor {name:?} dimension {d} is too large")),
                }
            }
            let code = c.u32("tensor type")?;
            let Some(ty) = TensorType::from_code(code) else {
                return c.err(format!(
                    "tensor {name:?} has ggml type {code}, which realizar does not decode \
                     (F32, F16, Q4_0, Q4_1, Q8_0 are supported)"
                ));
            };
            let offset = c.u64("tensor offset")?;
            raw.push((at, name, dims, ty, offset));
        }

        let data_start = c.pos.div_ceil(alignment) * alignment;
        if data_start > bytes.len() && n_tensors > 0 {
            return c.err("file ends before its tensor data section");
        }
        let mut tensors = Vec::with_capacity(raw.len());
        let mut tensor_index = HashMap::with_capacity(raw.len());
        for (at, name, dims, ty, offset) in raw {
            let fail = |message: String| {
                Err(GgufError {
                    offset: at,
                    message: format!("tensor {name:?}: {message}"),
                })
            };
            let (blk, blk_bytes) = ty.block();
            if dims[0] % blk != 0 {
                return fail(format!(
                    "first dimension {} is not a multiple of the {}-element {} block",
                    dims[0],
                    blk,
                    ty.name()
                ));
            }
            let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let len = n.and_then(|n| (n / blk).checked_mul(blk_bytes));
            let Some(len) = len else {
                return fail(format!("shape {dims:?} overflows"));
            };
            let Ok(offset) = usize::try_from(offset) else {
                return fail(format!("offset {offset} is too large"));
            };
            if offset % alignment != 0 {
                return fail(format!("offset {offset} is not a multiple of {alignment}"));
            }
            let start = data_start.checked_add(offset);
            let end = start.and_then(|s| s.checked_add(len));
            let (Some(start), Some(end)) = (start, end) else {
                return fail(format!("offset {offset} + size {len} overflows"));
            };
            if end > bytes.len() {
                return fail(format!(
                    "data [{start}, {end}) lies past the end of the file ({} bytes)",
                    bytes.len()
                ));
            }
            if tensor_index.insert(name.clone(), tensors.len()).is_some() {
                return fail("duplicate tensor name".into());
            }
            tensors.push(TensorInfo {
                name,
                dims,
                ty,
                offset,
                start,
                len,
            });
        }
        Ok(GgufFile {
            version,
            metadata,
            tensors,
            alignment,
            data_start,
            meta_index,
            tensor_index,
        })
    }

    /// A metadata value by key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.meta_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// A tensor description by name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }
}

/// A GGUF file read into memory together with its parsed table.
#[derive(Debug)]
pub struct Gguf {
    pub path: PathBuf,
    pub file: GgufFile,
    pub bytes: Vec<u8>,
}

impl Gguf {
    /// Read and validate `path`.
    pub fn open(path: &Path) -> crate::Result<Gguf> {
        let bytes = std::fs::read(path).map_err(|source| crate::Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let file = GgufFile::parse(&bytes).map_err(|e| crate::Error::Format {
            path: path.to_owned(),
            message: format!("invalid GGUF file {e}"),
        })?;
        Ok(Gguf {
            path: path.to_owned(),
            file,
            bytes,
        })
    }

    fn format_err(&self, message: String) -> crate::Error {
        crate::Error::Format {
            path: self.path.clone(),
            message,
        }
    }

    /// The tensor's description and raw bytes, or a format error naming it.
    pub fn tensor(&self, name: &str) -> crate::Result<(&TensorInfo, &[u8])> {
        let t = self
            .file
            .tensor(name)
            .ok_or_else(|| self.format_err(format!("tensor {name:?} is missing")))?;
        Ok((t, &self.bytes[t.start..t.start + t.len]))
    }

    /// The tensor decoded to f32 (dequantised if block-quantised), GGML order.
    pub fn tensor_f32(&self, name: &str) -> crate::Result<Vec<f32>> {
        let (t, raw) = self.tensor(name)?;
        decode_f32(t.ty, raw, t.n_elements()).map_err(|e| self.format_err(format!("{name}: {e}")))
    }

    /// A required metadata value.
    pub fn meta(&self, key: &str) -> crate::Result<&Value> {
        self.file
            .get(key)
            .ok_or_else(|| self.format_err(format!("metadata key {key:?} is missing")))
    }

    /// A required non-negative integer metadata value.
    pub fn meta_usize(&self, key: &str) -> crate::Result<usize> {
        let v = self.meta(key)?;
        v.as_u64()
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| {
                self.format_err(format!("{key} must be a non-negative integer, got {v:?}"))
            })
    }

    /// A required numeric metadata value.
    pub fn meta_f64(&self, key: &str) -> crate::Result<f64> {
        let v = self.meta(key)?;
        v.as_f64()
            .ok_or_else(|| self.format_err(format!("{key} must be a number, got {v:?}")))
    }
}

/// Decode `n` elements of type `ty` stored in `raw` to f32.
pub fn decode_f32(ty: TensorType, raw: &[u8], n: usize) -> Result<Vec<f32>, trueno::Error> {
    let mut out = vec![0f32; n];
    match ty {
        TensorType::F32 => {
            if raw.len() != 4 * n {
                return Err(trueno::Error::LengthMismatch {
                    left: raw.len(),
                    right: 4 * n,
                });
            }
            for (o, b) in out.iter_mut().zip(raw.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        TensorType::F16 => {
            if raw.len() != 2 * n {
                return Err(trueno::Error::LengthMismatch {
                    left: raw.len(),
                    right: 2 * n,
                });
            }
            for (o, b) in out.iter_mut().zip(raw.chunks_exact(2)) {
                *o = trueno::quant::f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
            }
        }
        TensorType::Quant(k) => trueno::quant::dequantize(k, raw, &mut out)?,
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Writes GGUF files for tests, so the parser is exercised on files whose
    /// every byte is known.
    #[derive(Default)]
    pub(crate) struct Writer {
        kv: Vec<u8>,
        n_kv: u64,
        tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
    }

    impl Writer {
        fn key(&mut self, k: &str, ty: u32) {
            self.kv.extend((k.len() as u64).to_le_bytes());
            self.kv.extend(k.as_bytes());
            self.kv.extend(ty.to_le_bytes());
            self.n_kv += 1;
        }
        pub(crate) fn u32(&mut self, k: &str, v: u32) -> &mut Self {
            self.key(k, 4);
            self.kv.extend(v.to_le_bytes());
            self
        }
        pub(crate) fn f32(&mut self, k: &str, v: f32) -> &mut Self {
            self.key(k, 6);
            self.kv.extend(v.to_le_bytes());
            self
        }
        pub(crate) fn str(&mut self, k: &str, v: &str) -> &mut Self {
            self.key(k, 8);
            self.kv.extend((v.len() as u64).to_le_bytes());
            self.kv.extend(v.as_bytes());
            self
        }
        pub(crate) fn bool(&mut self, k: &str, v: bool) -> &mut Self {
            self.key(k, 7);
            self.kv.push(v as u8);
            self
        }
        pub(crate) fn strs(&mut self, k: &str, v: &[&str]) -> &mut Self {
            self.key(k, 9);
            self.kv.extend(8u32.to_le_bytes());
            self.kv.extend((v.len() as u64).to_le_bytes());
            for s in v {
                self.kv.extend((s.len() as u64).to_le_bytes());
                self.kv.extend(s.as_bytes());
            }
            self
        }
        pub(crate) fn i32s(&mut self, k: &str, v: &[i32]) -> &mut Self {
            self.key(k, 9);
            self.kv.extend(5u32.to_le_bytes());
            self.kv.extend((v.len() as u64).to_le_bytes());
            for x in v {
                self.kv.extend(x.to_le_bytes());
            }
            self
        }
        pub(crate) fn tensor(
            &mut self,
            name: &str,
            dims: &[u64],
            ty: u32,
            data: Vec<u8>,
        ) -> &mut Self {
            self.tensors.push((name.into(), dims.to_vec(), ty, data));
            self
        }
        pub(crate) fn finish(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend(MAGIC);
            out.extend(3u32.to_le_bytes());
            out.extend((self.tensors.len() as u64).to_le_bytes());
            out.extend(self.n_kv.to_le_bytes());
            out.extend(&self.kv);
            let mut offset = 0u64;
            let mut offsets = Vec::new();
            for (name, dims, ty, data) in &self.tensors {
                out.extend((name.len() as u64).to_le_bytes());
                out.extend(name.as_bytes());
                out.extend((dims.len() as u32).to_le_bytes());
                for d in dims {
                    out.extend(d.to_le_bytes());
                }
                out.extend(ty.to_le_bytes());
                out.extend(offset.to_le_bytes());
                offsets.push(offset);
                offset = (offset + data.len() as u64).div_ceil(32) * 32;
            }
            while out.len() % 32 != 0 {
                out.push(0);
            }
            let base = out.len();
            for ((_, _, _, data), off) in self.tensors.iter().zip(offsets) {
                out.resize(base + off as usize, 0);
                out.extend(data);
            }
            out
        }
    }

    fn sample() -> Vec<u8> {
        let f32s: Vec<u8> = (0..64)
            .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
            .collect();
        let x: Vec<f32> = (0..64).map(|i| (i as f32 - 20.0) * 0.1).collect();
        let q8 = trueno::quant::quantize(QuantKind::Q8_0, &x).unwrap();
        let q41 = trueno::quant::quantize(QuantKind::Q4_1, &x).unwrap();
        Writer::default()
            .str("general.architecture", "llama")
            .u32("llama.block_count", 2)
            .f32("llama.rope.freq_base", 1e5)
            .bool("tokenizer.ggml.add_bos_token", false)
            .strs("tokenizer.ggml.tokens", &["a", "b", "é", ""])
            .i32s("tokenizer.ggml.token_type", &[1, 1, 1, 3])
            .tensor("w.f32", &[16, 4], 0, f32s)
            .tensor("w.q8", &[32, 2], 8, q8)
            .tensor("w.q41", &[64], 3, q41)
            .finish()
    }

    #[test]
    fn reads_what_the_writer_wrote() {
        let bytes = sample();
        let f = GgufFile::parse(&bytes).unwrap();
        assert_eq!(f.version, 3);
        assert_eq!(
            f.get("general.architecture").unwrap().as_str(),
            Some("llama")
        );
        assert_eq!(f.get("llama.block_count").unwrap().as_u64(), Some(2));
        assert_eq!(f.get("llama.rope.freq_base").unwrap().as_f64(), Some(1e5));
        assert_eq!(
            f.get("tokenizer.ggml.add_bos_token").unwrap().as_bool(),
            Some(false)
        );
        let toks = f.get("tokenizer.ggml.tokens").unwrap().as_array().unwrap();
        assert_eq!(toks[2].as_str(), Some("é"));
        assert_eq!(toks[3].as_str(), Some(""));
        let t = f.tensor("w.f32").unwrap();
        assert_eq!((t.dims.clone(), t.len), (vec![16, 4], 256));
        let v = decode_f32(t.ty, &bytes[t.start..t.start + t.len], 64).unwrap();
        assert_eq!(v[3], 1.5);
        let t = f.tensor("w.q41").unwrap();
        assert_eq!(t.len, 2 * 20);
        assert_eq!(t.start % 32, 0);
    }

    #[test]
    fn lying_counts_are_refused_before_allocating() {
        let mut bytes = sample();
        // Metadata count 2^60.
        bytes[16..24].copy_from_slice(&(1u64 << 60).to_le_bytes());
        let e = GgufFile::parse(&bytes).unwrap_err();
        assert!(e.message.contains("metadata count"), "{e}");

        // Array length 2^60 inside the tokens array.
        let bytes = sample();
        let pos = bytes
            .windows(b"tokenizer.ggml.tokens".len())
            .position(|w| w == b"tokenizer.ggml.tokens")
            .unwrap()
            + b"tokenizer.ggml.tokens".len()
            + 8;
        let mut lying = bytes.clone();
        lying[pos..pos + 8].copy_from_slice(&(1u64 << 60).to_le_bytes());
        let e = GgufFile::parse(&lying).unwrap_err();
        assert!(e.message.contains("array length"), "{e}");
        // u64::MAX string length.
        let mut lying = bytes;
        lying[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(GgufFile::parse(&lying).is_err());
    }

    #[test]
    fn bad_headers_and_truncation() {
        let bytes = sample();
        assert!(
            GgufFile::parse(b"")
                .unwrap_err()
                .message
                .contains("truncated")
        );
        assert!(
            GgufFile::parse(b"GGML\x03\0\0\0")
                .unwrap_err()
                .message
                .contains("magic")
        );
        let mut v1 = bytes.clone();
        v1[4] = 1;
        assert!(
            GgufFile::parse(&v1)
                .unwrap_err()
                .message
                .contains("version")
        );
        for cut in [10, 40, bytes.len() / 2, bytes.len() - 1] {
            assert!(GgufFile::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    /// The fuzz target's seed corpus (written by `examples/gguf_fuzz_seeds.rs` with
    /// realizar's own writer) stays valid: a seed the reader refuses would seed nothing.
    #[test]
    fn fuzz_seeds_parse_and_decode() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/gguf");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let f = GgufFile::parse(&bytes).unwrap();
            for t in &f.tensors {
                let v = decode_f32(t.ty, &bytes[t.start..t.start + t.len], t.n_elements());
                assert_eq!(v.unwrap().len(), t.n_elements());
            }
            n += 1;
        }
        assert!(n >= 4, "{n} seeds in {}", dir.display());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn mutated_or_truncated_files_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            cut in any::<prop::sample::Index>(),
            big in any::<prop::sample::Index>(),
        ) {
            let mut bytes = sample();
            for (i, b) in &edits {
                let i = i.index(bytes.len());
                bytes[i] = *b;
            }
            // Sometimes plant a huge u64 (a lying count or offset).
            if edits.len() % 3 == 0 && bytes.len() > 8 {
                let i = big.index(bytes.len() - 8);
                bytes[i..i + 8].copy_from_slice(&(u64::MAX >> (edits.len() % 5)).to_le_bytes());
            }
            let n = cut.index(bytes.len() + 1);
            if let Ok(f) = GgufFile::parse(&bytes[..n]) {
                for t in &f.tensors {
                    prop_assert!(t.start + t.len <= n);
                    let _ = decode_f32(t.ty, &bytes[t.start..t.start + t.len], t.n_elements());
                }
            }
        }
    }
}
