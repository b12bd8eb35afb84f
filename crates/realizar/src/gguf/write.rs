//! Writing GGUF: the inverse of the reader, and re-quantising a model file to another type.
//!
//! A file is written in one pass: the header, the metadata, the tensor table (each
//! tensor's offset computed up front from its type and shape), then each tensor's bytes at
//! the next multiple of the alignment. [`requantize`] uses that to turn a model into
//! another element type one tensor at a time (decode to f32, encode with
//! [`trueno::quant::quantize`], ggml's own quantisers), so a 135M-parameter model never
//! needs more than one tensor in f32 at once, and measures what each tensor lost. The file
//! appears under its name only when it is complete (written beside it, then renamed).

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use trueno::quant::{QuantKind, f32_to_f16};

use super::{DEFAULT_ALIGNMENT, Gguf, MAGIC, MAX_DIMS, TensorType, Value, ValueType, decode_f32};
use crate::error::{Error, Result};

/// The GGUF version written (the one llama.cpp writes).
pub const VERSION: u32 = 3;

fn bad(m: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("GGUF writer: {m}"))
}

fn type_code(ty: TensorType) -> u32 {
    match ty {
        TensorType::F32 => 0,
        TensorType::F16 => 1,
        TensorType::Quant(QuantKind::Q4_0) => 2,
        TensorType::Quant(QuantKind::Q4_1) => 3,
        TensorType::Quant(QuantKind::Q8_0) => 8,
    }
}

fn value_code(ty: ValueType) -> u32 {
    match ty {
        ValueType::U8 => 0,
        ValueType::I8 => 1,
        ValueType::U16 => 2,
        ValueType::I16 => 3,
        ValueType::U32 => 4,
        ValueType::I32 => 5,
        ValueType::F32 => 6,
        ValueType::Bool => 7,
        ValueType::String => 8,
        ValueType::Array => 9,
        ValueType::U64 => 10,
        ValueType::I64 => 11,
        ValueType::F64 => 12,
    }
}

fn value_type(v: &Value) -> ValueType {
    match v {
        Value::U8(_) => ValueType::U8,
        Value::I8(_) => ValueType::I8,
        Value::U16(_) => ValueType::U16,
        Value::I16(_) => ValueType::I16,
        Value::U32(_) => ValueType::U32,
        Value::I32(_) => ValueType::I32,
        Value::U64(_) => ValueType::U64,
        Value::I64(_) => ValueType::I64,
        Value::F32(_) => ValueType::F32,
        Value::F64(_) => ValueType::F64,
        Value::Bool(_) => ValueType::Bool,
        Value::String(_) => ValueType::String,
        Value::Array(..) => ValueType::Array,
    }
}

/// Element type from its ggml name (`F32`, `F16`, `Q8_0`, `Q4_0`, `Q4_1`).
pub fn tensor_type_from_name(name: &str) -> Result<TensorType> {
    Ok(match name.to_ascii_uppercase().as_str() {
        "F32" => TensorType::F32,
        "F16" => TensorType::F16,
        "Q8_0" => TensorType::Quant(QuantKind::Q8_0),
        "Q4_0" => TensorType::Quant(QuantKind::Q4_0),
        "Q4_1" => TensorType::Quant(QuantKind::Q4_1),
        _ => {
            return Err(bad(format!(
                "unknown tensor type {name:?} (choose F32, F16, Q8_0, Q4_0 or Q4_1)"
            )));
        }
    })
}

/// `general.file_type` (llama.cpp's `llama_ftype`) of a model whose matrices are `ty`.
fn file_type(ty: TensorType) -> u32 {
    match ty {
        TensorType::F32 => 0,
        TensorType::F16 => 1,
        TensorType::Quant(QuantKind::Q4_0) => 2,
        TensorType::Quant(QuantKind::Q4_1) => 3,
        TensorType::Quant(QuantKind::Q8_0) => 7,
    }
}

/// Bytes of a tensor of `n` elements of type `ty`; an error if `dims[0]` (the contiguous
/// dimension) is not a whole number of blocks.
pub fn tensor_bytes(ty: TensorType, dims: &[usize]) -> Result<usize> {
    if dims.is_empty() || dims.len() > MAX_DIMS {
        return Err(bad(format!(
            "a tensor has 1 to {MAX_DIMS} dimensions, not {}",
            dims.len()
        )));
    }
    let (block, bytes) = ty.block();
    if !dims[0].is_multiple_of(block) {
        return Err(bad(format!(
            "a {} row holds whole blocks of {block}; dims[0] = {} is not a multiple",
            ty.name(),
            dims[0]
        )));
    }
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|n| (n / block).checked_mul(bytes))
        .ok_or_else(|| bad(format!("shape {dims:?} overflows")))
}

/// What the tensor table says about one tensor.
#[derive(Debug, Clone)]
pub struct TensorSpec {
    pub name: String,
    /// GGML order: `dims[0]` is contiguous.
    pub dims: Vec<usize>,
    pub ty: TensorType,
}

fn put_string(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    out.write_all(&(s.len() as u64).to_le_bytes())?;
    out.write_all(s.as_bytes())
}

fn put_value(out: &mut impl Write, v: &Value) -> std::io::Result<()> {
    match v {
        Value::U8(x) => out.write_all(&[*x]),
        Value::I8(x) => out.write_all(&x.to_le_bytes()),
        Value::U16(x) => out.write_all(&x.to_le_bytes()),
        Value::I16(x) => out.write_all(&x.to_le_bytes()),
        Value::U32(x) => out.write_all(&x.to_le_bytes()),
        Value::I32(x) => out.write_all(&x.to_le_bytes()),
        Value::U64(x) => out.write_all(&x.to_le_bytes()),
        Value::I64(x) => out.write_all(&x.to_le_bytes()),
        Value::F32(x) => out.write_all(&x.to_le_bytes()),
        Value::F64(x) => out.write_all(&x.to_le_bytes()),
        Value::Bool(x) => out.write_all(&[u8::from(*x)]),
        Value::String(s) => put_string(out, s),
        Value::Array(ty, items) => {
            out.write_all(&value_code(*ty).to_le_bytes())?;
            out.write_all(&(items.len() as u64).to_le_bytes())?;
            items.iter().try_for_each(|i| put_value(out, i))
        }
    }
}

fn check_value(key: &str, v: &Value) -> Result<()> {
    if let Value::Array(ty, items) = v {
        if let Some(i) = items.iter().position(|i| value_type(i) != *ty) {
            return Err(bad(format!(
                "metadata {key:?}: array of {ty:?} holds a {:?} at index {i}",
                value_type(&items[i])
            )));
        }
        items.iter().try_for_each(|i| check_value(key, i))?;
    }
    Ok(())
}

/// Writes a GGUF file: the header and tensor table for `tensors`, then calls `data(i)` for
/// each tensor's bytes in order (checked against its type and shape). Metadata keys must
/// be unique; `general.alignment`, if present, sets the alignment (else 32).
pub fn write(
    out: &mut impl Write,
    metadata: &[(String, Value)],
    tensors: &[TensorSpec],
    mut data: impl FnMut(usize) -> Result<Vec<u8>>,
) -> Result<u64> {
    let io = |e: std::io::Error| bad(format!("write failed: {e}"));
    let mut keys = HashSet::new();
    let mut alignment = DEFAULT_ALIGNMENT;
    for (k, v) in metadata {
        if !keys.insert(k.as_str()) {
            return Err(bad(format!("metadata key {k:?} appears twice")));
        }
        check_value(k, v)?;
        if k == "general.alignment" {
            alignment = match v {
                Value::U32(a) if *a != 0 && a.is_power_of_two() => *a as usize,
                other => {
                    return Err(bad(format!(
                        "general.alignment must be a power-of-two u32, got {other:?}"
                    )));
                }
            };
        }
    }
    let mut names = HashSet::new();
    let mut sizes = Vec::with_capacity(tensors.len());
    for t in tensors {
        if !names.insert(t.name.as_str()) {
            return Err(bad(format!("tensor {:?} appears twice", t.name)));
        }
        sizes.push(tensor_bytes(t.ty, &t.dims)?);
    }
    let pad = |n: usize| n.div_ceil(alignment) * alignment - n;
    let mut header = Vec::new();
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    header.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata {
        put_string(&mut header, k).map_err(io)?;
        header.extend_from_slice(&value_code(value_type(v)).to_le_bytes());
        put_value(&mut header, v).map_err(io)?;
    }
    let mut offset = 0usize;
    for (t, &size) in tensors.iter().zip(&sizes) {
        put_string(&mut header, &t.name).map_err(io)?;
        header.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for &d in &t.dims {
            header.extend_from_slice(&(d as u64).to_le_bytes());
        }
        header.extend_from_slice(&type_code(t.ty).to_le_bytes());
        header.extend_from_slice(&(offset as u64).to_le_bytes());
        offset += size + pad(size);
    }
    header.resize(header.len() + pad(header.len()), 0);
    out.write_all(&header).map_err(io)?;
    let mut written = header.len() as u64;
    for (i, (t, &size)) in tensors.iter().zip(&sizes).enumerate() {
        let bytes = data(i)?;
        if bytes.len() != size {
            return Err(bad(format!(
                "tensor {:?}: {} bytes given, {} {} {:?} needs {size}",
                t.name,
                bytes.len(),
                t.ty.name(),
                "of shape",
                t.dims
            )));
        }
        out.write_all(&bytes).map_err(io)?;
        out.write_all(&vec![0u8; pad(size)]).map_err(io)?;
        written += (size + pad(size)) as u64;
    }
    out.flush().map_err(io)?;
    Ok(written)
}

/// What re-quantising did to one tensor, measured against the source's own values.
#[derive(Debug, Clone)]
pub struct TensorReport {
    pub name: String,
    pub dims: Vec<usize>,
    pub from: TensorType,
    pub to: TensorType,
    pub bytes: usize,
    /// Root mean square of the source values.
    pub rms: f64,
    /// Root mean square and largest absolute difference, new against source.
    pub rmse: f64,
    pub max_abs_err: f64,
}

/// `x` encoded as tensor data of type `ty` (little-endian F32/F16, or ggml blocks).
pub fn encode(ty: TensorType, x: &[f32]) -> Result<Vec<u8>> {
    Ok(match ty {
        TensorType::F32 => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        TensorType::F16 => x
            .iter()
            .flat_map(|&v| f32_to_f16(v).to_le_bytes())
            .collect(),
        TensorType::Quant(kind) => trueno::quant::quantize(kind, x)?,
    })
}

/// Writes `src` to `dst` with every matrix (2-D or more tensor) in type `to`; vectors
/// (norm weights) stay f32, as llama.cpp's quantiser keeps them. Each matrix is decoded to
/// f32 and encoded again, so the values are the source's as they dequantise; the report
/// says, per tensor, how far the new values are from them. `general.file_type` is updated;
/// every other metadata entry is copied.
///
/// `per_tensor` names tensors that take another type (llama.cpp's quantiser has the same
/// for the token embedding and the output, e.g. a Q4_1 model whose embedding stays Q8_0);
/// a name that is not a tensor of `src` is an error, not ignored.
pub fn requantize(
    src: &Gguf,
    dst: &Path,
    to: TensorType,
    per_tensor: &[(String, TensorType)],
) -> Result<Vec<TensorReport>> {
    for (name, _) in per_tensor {
        if src.file.tensor(name).is_none() {
            return Err(bad(format!(
                "{name:?} is not a tensor of {}",
                src.path.display()
            )));
        }
    }
    let plan: Vec<TensorSpec> = src
        .file
        .tensors
        .iter()
        .map(|t| TensorSpec {
            name: t.name.clone(),
            dims: t.dims.clone(),
            ty: match per_tensor.iter().rev().find(|(n, _)| *n == t.name) {
                Some(&(_, ty)) => ty,
                None if t.dims.len() >= 2 => to,
                None => TensorType::F32,
            },
        })
        .collect();
    // Every planned type must fit its tensor's shape before anything is written.
    for t in &plan {
        tensor_bytes(t.ty, &t.dims).map_err(|e| bad(format!("tensor {:?}: {e}", t.name)))?;
    }
    let metadata: Vec<(String, Value)> = src
        .file
        .metadata
        .iter()
        .map(|(k, v)| match (k.as_str(), v) {
            ("general.file_type", Value::U32(_)) => (k.clone(), Value::U32(file_type(to))),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    let tmp = dst.with_extension("gguf.partial");
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    let file = File::create(&tmp).map_err(io(&tmp))?;
    let mut out = BufWriter::new(file);
    let mut reports = Vec::with_capacity(plan.len());
    let result = write(&mut out, &metadata, &plan, |i| {
        let spec = &plan[i];
        let (info, _) = src.tensor(&spec.name)?;
        let x = src.tensor_f32(&spec.name)?;
        let bytes = encode(spec.ty, &x)?;
        let back = decode_f32(spec.ty, &bytes, x.len())?;
        let (mut se, mut max, mut ss) = (0f64, 0f64, 0f64);
        for (&a, &b) in x.iter().zip(&back) {
            let d = f64::from(a) - f64::from(b);
            se += d * d;
            ss += f64::from(a) * f64::from(a);
            max = max.max(d.abs());
        }
        let n = x.len().max(1) as f64;
        reports.push(TensorReport {
            name: spec.name.clone(),
            dims: spec.dims.clone(),
            from: info.ty,
            to: spec.ty,
            bytes: bytes.len(),
            rms: (ss / n).sqrt(),
            rmse: (se / n).sqrt(),
            max_abs_err: max,
        });
        Ok(bytes)
    });
    drop(out);
    match result {
        Ok(_) => {
            std::fs::rename(&tmp, dst).map_err(io(dst))?;
            Ok(reports)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::GgufFile;
    use super::*;

    fn meta() -> Vec<(String, Value)> {
        vec![
            ("general.name".into(), Value::String("tiny ü".into())),
            ("general.file_type".into(), Value::U32(0)),
            (
                "tokenizer.ggml.tokens".into(),
                Value::Array(
                    ValueType::String,
                    vec![Value::String("a".into()), Value::String("Ġb".into())],
                ),
            ),
            (
                "nested".into(),
                Value::Array(
                    ValueType::Array,
                    vec![Value::Array(ValueType::I32, vec![Value::I32(-1)])],
                ),
            ),
            ("f".into(), Value::F64(0.5)),
            ("b".into(), Value::Bool(true)),
        ]
    }

    #[test]
    fn a_written_file_reads_back_equal() {
        let x: Vec<f32> = (0..64 * 3).map(|i| (i as f32 * 0.37).sin()).collect();
        let tensors = vec![
            TensorSpec {
                name: "m".into(),
                dims: vec![64, 3],
                ty: TensorType::Quant(QuantKind::Q8_0),
            },
            TensorSpec {
                name: "v".into(),
                dims: vec![5],
                ty: TensorType::F32,
            },
        ];
        let q = trueno::quant::quantize(QuantKind::Q8_0, &x).unwrap();
        let v: Vec<u8> = [1f32, 2., 3., 4., 5.]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        let mut buf = Vec::new();
        let n = write(&mut buf, &meta(), &tensors, |i| {
            Ok(if i == 0 { q.clone() } else { v.clone() })
        })
        .unwrap();
        assert_eq!(n as usize, buf.len());
        let f = GgufFile::parse(&buf).unwrap();
        assert_eq!(f.version, VERSION);
        assert_eq!(f.metadata, meta());
        let m = f.tensor("m").unwrap();
        assert_eq!(m.dims, [64, 3]);
        assert_eq!(&buf[m.start..m.start + m.len], q.as_slice());
        assert_eq!(m.start % DEFAULT_ALIGNMENT, 0);
        let t = f.tensor("v").unwrap();
        assert_eq!(&buf[t.start..t.start + t.len], v.as_slice());
    }

    #[test]
    fn bad_input_is_an_error() {
        let spec = |dims: Vec<usize>, ty| TensorSpec {
            name: "t".into(),
            dims,
            ty,
        };
        let mut sink = Vec::new();
        let q8 = TensorType::Quant(QuantKind::Q8_0);
        // A row that is not whole blocks, no dimensions, too many dimensions.
        for dims in [vec![33], vec![], vec![32, 1, 1, 1, 1]] {
            assert!(write(&mut sink, &[], &[spec(dims, q8)], |_| Ok(vec![])).is_err());
        }
        // Wrong byte count for the shape.
        assert!(write(&mut sink, &[], &[spec(vec![32], q8)], |_| Ok(vec![0; 33])).is_err());
        // Duplicate names and keys, a mixed array, a bad alignment.
        let two = [
            spec(vec![4], TensorType::F32),
            spec(vec![4], TensorType::F32),
        ];
        assert!(write(&mut sink, &[], &two, |_| Ok(vec![0; 16])).is_err());
        let dup = [
            ("k".to_string(), Value::U8(1)),
            ("k".to_string(), Value::U8(2)),
        ];
        assert!(write(&mut sink, &dup, &[], |_| Ok(vec![])).is_err());
        let mixed = [(
            "k".to_string(),
            Value::Array(ValueType::U8, vec![Value::U8(1), Value::I8(2)]),
        )];
        assert!(write(&mut sink, &mixed, &[], |_| Ok(vec![])).is_err());
        let align = [("general.alignment".to_string(), Value::U32(24))];
        assert!(write(&mut sink, &align, &[], |_| Ok(vec![])).is_err());
        assert!(tensor_type_from_name("Q5_K").is_err());
        assert_eq!(tensor_type_from_name("q4_1").unwrap().name(), "Q4_1");
    }

    #[test]
    fn a_larger_alignment_is_honoured() {
        let align = [("general.alignment".to_string(), Value::U32(64))];
        let t = [TensorSpec {
            name: "v".into(),
            dims: vec![3],
            ty: TensorType::F32,
        }];
        let mut buf = Vec::new();
        write(&mut buf, &align, &t, |_| Ok(vec![0; 12])).unwrap();
        let f = GgufFile::parse(&buf).unwrap();
        assert_eq!(f.alignment, 64);
        assert_eq!(f.tensor("v").unwrap().start % 64, 0);
    }

    #[test]
    fn requantize_measures_and_is_idempotent_on_its_own_format() {
        let dir = std::env::temp_dir().join(format!("realizar-requant-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src_path = dir.join("src.gguf");
        let x: Vec<f32> = (0..64 * 4)
            .map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.4)
            .collect();
        let q41 = trueno::quant::quantize(QuantKind::Q4_1, &x).unwrap();
        let norm: Vec<u8> = [0.5f32; 8].iter().flat_map(|f| f.to_le_bytes()).collect();
        let tensors = [
            TensorSpec {
                name: "w".into(),
                dims: vec![64, 4],
                ty: TensorType::Quant(QuantKind::Q4_1),
            },
            TensorSpec {
                name: "norm".into(),
                dims: vec![8],
                ty: TensorType::F32,
            },
        ];
        let meta = [("general.file_type".to_string(), Value::U32(3))];
        let mut file = File::create(&src_path).unwrap();
        write(&mut file, &meta, &tensors, |i| {
            Ok(if i == 0 { q41.clone() } else { norm.clone() })
        })
        .unwrap();
        let src = Gguf::open(&src_path).unwrap();

        let same = dir.join("q41.gguf");
        let r = requantize(&src, &same, TensorType::Quant(QuantKind::Q4_1), &[]).unwrap();
        assert_eq!(r[0].rmse, 0.0, "Q4_1 values re-encode to themselves");
        let out = Gguf::open(&same).unwrap();
        assert_eq!(out.tensor("w").unwrap().1, q41.as_slice());
        assert_eq!(out.tensor("norm").unwrap().1, norm.as_slice());

        let f32_path = dir.join("f32.gguf");
        let r = requantize(&src, &f32_path, TensorType::F32, &[]).unwrap();
        assert!(r.iter().all(|t| t.rmse == 0.0));
        let out = Gguf::open(&f32_path).unwrap();
        assert_eq!(out.meta("general.file_type").unwrap(), &Value::U32(0));
        assert_eq!(out.tensor_f32("w").unwrap(), src.tensor_f32("w").unwrap());

        let q8 = dir.join("q8.gguf");
        let r = requantize(&src, &q8, TensorType::Quant(QuantKind::Q8_0), &[]).unwrap();
        assert!(r[0].rmse > 0.0 && r[0].rmse < 0.01 * r[0].rms.max(1e-9) + 0.01);
        assert!(r[0].max_abs_err >= r[0].rmse);
        assert_eq!(r[1].to, TensorType::F32);

        // Per-tensor types: the matrix stays F16 in an otherwise Q8_0 file.
        let mixed = dir.join("mixed.gguf");
        let over = [("w".to_string(), TensorType::F16)];
        let r = requantize(&src, &mixed, TensorType::Quant(QuantKind::Q8_0), &over).unwrap();
        assert_eq!(r[0].to, TensorType::F16);
        let out = Gguf::open(&mixed).unwrap();
        assert_eq!(out.file.tensor("w").unwrap().ty, TensorType::F16);
        assert_eq!(out.meta("general.file_type").unwrap(), &Value::U32(7));
        let typo = [("w_typo".to_string(), TensorType::F16)];
        let e = requantize(&src, &mixed, TensorType::F32, &typo).unwrap_err();
        assert!(e.to_string().contains("w_typo"), "{e}");
        // An 8-element vector cannot hold a 32-element block: refused before writing.
        let misfit = [("norm".to_string(), TensorType::Quant(QuantKind::Q8_0))];
        let bad_path = dir.join("misfit.gguf");
        let e = requantize(&src, &bad_path, TensorType::F32, &misfit).unwrap_err();
        assert!(e.to_string().contains("norm"), "{e}");
        assert!(!bad_path.exists() && !bad_path.with_extension("gguf.partial").exists());

        let nowhere = dir.join("missing").join("x.gguf");
        assert!(requantize(&src, &nowhere, TensorType::F32, &[]).is_err());
        assert!(!nowhere.with_extension("gguf.partial").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
