//! Writing the realizar tabular file from Rust: the inverse of `format::parse`, for
//! models trained in Rust (aprender) rather than exported from scikit-learn.
//!
//! The bytes are parsed back with the same reader before anything touches the disk, so a
//! writer bug can never leave a file that `realizar serve` refuses; the file itself is
//! written to a temporary sibling and renamed into place, so a crash never leaves half a
//! model under the final name.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use safetensors::Dtype;
use safetensors::tensor::TensorView;

use super::format::{METADATA_KEY, Metadata, parse};
use crate::error::{Error, Result};

/// One tensor of a model file: floats are stored as F64, indices as I64 (the dtypes
/// `docs/realizar-format.md` names).
#[derive(Debug, Clone, PartialEq)]
pub enum Tensor {
    F64 { shape: Vec<usize>, data: Vec<f64> },
    I64(Vec<i64>),
}

/// Serialise a model (metadata document plus named tensors) to the bytes of a realizar
/// tabular file, and check that the reader accepts them.
pub fn to_bytes(meta: &Metadata, tensors: &[(&str, Tensor)]) -> Result<Vec<u8>> {
    let bad = |message: String| Error::Format {
        path: Default::default(),
        message,
    };
    let raw: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| match t {
            Tensor::F64 { shape, data } => (
                *name,
                Dtype::F64,
                shape.clone(),
                data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            Tensor::I64(v) => (
                *name,
                Dtype::I64,
                vec![v.len()],
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
        })
        .collect();
    let views = raw
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.to_string(), v))
                .map_err(|e| bad(format!("tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let doc = serde_json::to_string(meta).map_err(|e| bad(format!("metadata: {e}")))?;
    let info = HashMap::from([(METADATA_KEY.to_owned(), doc)]);
    let bytes =
        safetensors::serialize(views, Some(info)).map_err(|e| bad(format!("safetensors: {e}")))?;
    parse(&bytes)?;
    Ok(bytes)
}

/// Write a model file atomically: temporary sibling, fsync, rename.
pub fn save(path: &Path, meta: &Metadata, tensors: &[(&str, Tensor)]) -> Result<()> {
    let bytes = to_bytes(meta, tensors).map_err(|e| match e {
        Error::Format { message, .. } => Error::Format {
            path: path.to_owned(),
            message,
        },
        other => other,
    })?;
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "path has no file name",
        ))
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}
