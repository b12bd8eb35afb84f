//! Writes the seed corpus of the GGUF fuzz target (`crates/realizar/fuzz`) with realizar's
//! own GGUF writer: small valid files covering every metadata value type (nested arrays
//! included), every tensor type the reader decodes, a non-default alignment, an empty
//! tensor table and a zero-length tensor.
//!
//! `cargo run -p realizar --example gguf_fuzz_seeds -- crates/realizar/fuzz/seeds/gguf`

use std::path::PathBuf;

use realizar::gguf::write::{TensorSpec, encode, write};
use realizar::gguf::{TensorType, Value, ValueType};
use trueno::quant::QuantKind;

fn meta(pairs: Vec<(&str, Value)>) -> Vec<(String, Value)> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn spec(name: &str, dims: &[usize], ty: TensorType) -> TensorSpec {
    TensorSpec {
        name: name.to_owned(),
        dims: dims.to_vec(),
        ty,
    }
}

/// Deterministic values in [-1, 1) for a tensor of `n` elements, encoded as `ty`.
fn data(ty: TensorType, n: usize, seed: u64) -> realizar::Result<Vec<u8>> {
    let mut rng = trueno::rng::Rng::new(seed);
    let x: Vec<f32> = (0..n).map(|_| rng.uniform() as f32 * 2.0 - 1.0).collect();
    encode(ty, &x)
}

fn seed(
    dir: &std::path::Path,
    name: &str,
    metadata: &[(String, Value)],
    tensors: &[TensorSpec],
) -> realizar::Result<()> {
    let mut out = Vec::new();
    write(&mut out, metadata, tensors, |i| {
        let t = &tensors[i];
        data(t.ty, t.dims.iter().product(), i as u64 + 1)
    })?;
    let path = dir.join(format!("{name}.gguf"));
    std::fs::write(&path, &out).map_err(|source| realizar::Error::Io { path, source })?;
    println!("{name}.gguf: {} bytes", out.len());
    Ok(())
}

fn main() -> realizar::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "crates/realizar/fuzz/seeds/gguf".into()),
    );
    std::fs::create_dir_all(&dir).map_err(|source| realizar::Error::Io {
        path: dir.clone(),
        source,
    })?;
    let q = TensorType::Quant;

    // Every scalar type, strings (empty, unicode), arrays of scalars, strings and arrays.
    let every_value = meta(vec![
        ("general.architecture", Value::String("llama".into())),
        ("u8", Value::U8(7)),
        ("i8", Value::I8(-7)),
        ("u16", Value::U16(700)),
        ("i16", Value::I16(-700)),
        ("u32", Value::U32(70_000)),
        ("i32", Value::I32(-70_000)),
        ("u64", Value::U64(1 << 40)),
        ("i64", Value::I64(-(1 << 40))),
        ("f32", Value::F32(1e5)),
        ("f64", Value::F64(-0.25)),
        ("bool", Value::Bool(true)),
        ("empty", Value::String(String::new())),
        ("unicode", Value::String("é 日本 🦀".into())),
        (
            "tokenizer.ggml.tokens",
            Value::Array(
                ValueType::String,
                ["a", "b", "Ġthe", "", "<|im_end|>"]
                    .map(|s| Value::String(s.into()))
                    .to_vec(),
            ),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(ValueType::I32, [1, 1, 1, 3, 3].map(Value::I32).to_vec()),
        ),
        (
            "nested",
            Value::Array(
                ValueType::Array,
                vec![
                    Value::Array(ValueType::U8, vec![Value::U8(1), Value::U8(2)]),
                    Value::Array(ValueType::F64, vec![]),
                ],
            ),
        ),
    ]);
    seed(
        &dir,
        "every-type",
        &every_value,
        &[
            spec("w.f32", &[16, 4], TensorType::F32),
            spec("w.f16", &[8, 3], TensorType::F16),
            spec("w.q8_0", &[32, 2], q(QuantKind::Q8_0)),
            spec("w.q4_0", &[64], q(QuantKind::Q4_0)),
            spec("w.q4_1", &[32, 1, 2], q(QuantKind::Q4_1)),
        ],
    )?;
    seed(
        &dir,
        "aligned-64",
        &meta(vec![("general.alignment", Value::U32(64))]),
        &[
            spec("a", &[3], TensorType::F32),
            spec("b", &[32, 1, 1, 2], q(QuantKind::Q8_0)),
        ],
    )?;
    seed(&dir, "metadata-only", &every_value[..4], &[])?;
    seed(
        &dir,
        "empty-tensor",
        &[],
        &[
            spec("none", &[0, 5], TensorType::F32),
            spec("one", &[1], TensorType::F16),
        ],
    )?;
    Ok(())
}
