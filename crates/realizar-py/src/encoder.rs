//! `realizar.Encoder` and `realizar.Tokenizer`: the sentence encoder and its WordPiece
//! tokenizer, thin over `realizar::encoder` and `realizar::tokenizer`.

use std::path::PathBuf;

use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};
use realizar::encoder::SentenceEncoder;
use realizar::tokenizer::{Encoding as RsEncoding, WordPiece};

use crate::errors::to_py_err;
use crate::precision::{lowp_path_name, precision_of, warn_if_reference};

/// A list or tuple of `str`, with a `TypeError` naming the first offending type.
pub(crate) fn texts_of(texts: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if texts.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "texts must be a list of str, got a single str; wrap it in a list: [text]",
        ));
    }
    let seq = texts.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "texts must be a list of str, got {}",
            texts
                .get_type()
                .name()
                .map_or_else(|_| "?".into(), |n| n.to_string())
        ))
    })?;
    let mut out = Vec::new();
    for (i, item) in seq.enumerate() {
        let item = item?;
        let s = item.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "texts[{i}] must be str, got {}",
                item.get_type()
                    .name()
                    .map_or_else(|_| "?".into(), |n| n.to_string())
            ))
        })?;
        out.push(s.to_str()?.to_owned());
    }
    Ok(out)
}

/// A list of token-id lists (the model checks ids and lengths), with a `TypeError`
/// naming the first value that is not a sequence or not an int, and a `ValueError` for an
/// int that cannot be a token id (negative or past `u32`).
fn ids_of(ids: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u32>>> {
    let type_name = |o: &Bound<'_, PyAny>| {
        o.get_type()
            .name()
            .map_or_else(|_| "?".into(), |n| n.to_string())
    };
    let not_a_list = |o: &Bound<'_, PyAny>, what: &str| {
        PyTypeError::new_err(format!(
            "{what} must be a list of {}, got {}",
            if what == "ids" { "lists of int" } else { "int" },
            type_name(o)
        ))
    };
    if ids.is_instance_of::<PyString>() {
        return Err(not_a_list(ids, "ids"));
    }
    let rows = ids.try_iter().map_err(|_| not_a_list(ids, "ids"))?;
    let mut out = Vec::new();
    for (i, row) in rows.enumerate() {
        let row = row?;
        let what = format!("ids[{i}]");
        if row.is_instance_of::<PyString>() {
            return Err(not_a_list(&row, &what));
        }
        let items = row.try_iter().map_err(|_| not_a_list(&row, &what))?;
        let mut r = Vec::new();
        for (j, item) in items.enumerate() {
            let item = item?;
            let out_of_range = || {
                PyValueError::new_err(format!(
                    "ids[{i}][{j}] = {} is not a token id (0 <= id < 2**32)",
                    item.repr().map_or_else(|_| "?".into(), |r| r.to_string())
                ))
            };
            let v: u32 = match item.extract::<i64>() {
                Ok(v) => u32::try_from(v).map_err(|_| out_of_range())?,
                // An int too large for i64 is a bad value, anything else a bad type.
                Err(_) if item.call_method0("__index__").is_ok() => return Err(out_of_range()),
                Err(_) => {
                    return Err(PyTypeError::new_err(format!(
                        "ids[{i}][{j}] must be an int token id, got {}",
                        type_name(&item)
                    )));
                }
            };
            r.push(v);
        }
        out.push(r);
    }
    Ok(out)
}

/// The packaged all-MiniLM-L6-v2 directory, located by `realizar.models` in Python.
fn default_dir(py: Python<'_>) -> PyResult<PathBuf> {
    py.import("realizar.models")?
        .call_method0("default_model_dir")?
        .extract()
}

/// The name the packaged default model is reported under.
const DEFAULT_MODEL_NAME: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// A sentence encoder (BERT + mean pooling) loaded from a model directory.
#[pyclass(module = "realizar._realizar", name = "Encoder", frozen)]
pub(crate) struct Encoder {
    inner: SentenceEncoder,
}

#[pymethods]
impl Encoder {
    /// Load a sentence-transformers directory; `None` is the packaged all-MiniLM-L6-v2.
    /// `precision="bf16"` or `"int8"` opts the weight matmuls into `trueno::lowp` (weights
    /// converted once, here); the default `"f32"` is never lowered. A CPU without the
    /// instruction set runs lowp's reference path, and a `RuntimeWarning` says so.
    #[staticmethod]
    #[pyo3(signature = (dir=None, *, threads=1, model_name=None, precision="f32"))]
    fn load(
        py: Python<'_>,
        dir: Option<PathBuf>,
        threads: usize,
        model_name: Option<String>,
        precision: &str,
    ) -> PyResult<Self> {
        let precision = precision_of("precision", precision)?;
        let (dir, default_name) = match dir {
            Some(d) => (d, None),
            None => (default_dir(py)?, Some(DEFAULT_MODEL_NAME.to_owned())),
        };
        let mut inner = py
            .detach(|| SentenceEncoder::load(&dir)?.with_precision(precision))
            .map_err(|e| to_py_err(&e))?
            .with_threads(threads);
        if let Some(name) = model_name.or(default_name) {
            inner = inner.with_model_name(name);
        }
        warn_if_reference(py, precision)?;
        Ok(Self { inner })
    }

    /// Embeddings of `texts`, float32 of shape (len(texts), dim).
    #[pyo3(signature = (texts, batch_size=32, normalize=true))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        batch_size: usize,
        normalize: bool,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let texts = texts_of(texts)?;
        let n = texts.len();
        let out = py
            .detach(|| {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                self.inner.encode(&refs, batch_size, normalize)
            })
            .map_err(|e| to_py_err(&e))?;
        PyArray1::from_vec(py, out).reshape([n, self.inner.dim()])
    }

    /// Embeddings of already tokenised texts (each `[CLS] ... [SEP]`, unpadded, e.g.
    /// `tokenizer.encode(text).ids`), float32 of shape (len(ids), dim): the forward pass
    /// without the tokenizer.
    #[pyo3(signature = (ids, batch_size=32, normalize=true))]
    fn encode_ids<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        batch_size: usize,
        normalize: bool,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let ids = ids_of(ids)?;
        let n = ids.len();
        let out = py
            .detach(|| self.inner.encode_ids(&ids, batch_size, normalize))
            .map_err(|e| to_py_err(&e))?;
        PyArray1::from_vec(py, out).reshape([n, self.inner.dim()])
    }

    /// Tokens the model sees for `text` ([CLS] and [SEP] included, after truncation).
    fn count_tokens(&self, text: &str) -> usize {
        self.inner.count_tokens(text)
    }

    /// Embedding width.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// The model's name.
    #[getter]
    fn model_name(&self) -> &str {
        self.inner.model_name()
    }

    /// Longest input in tokens; longer texts are truncated.
    #[getter]
    fn max_seq_length(&self) -> usize {
        self.inner.max_seq_length()
    }

    /// Threads the matmuls use.
    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }

    /// The arithmetic of the weight matmuls: "f32" (default), "bf16" or "int8".
    #[getter]
    fn precision(&self) -> &'static str {
        self.inner.precision().name()
    }

    /// The `trueno::lowp` kernel the weight matmuls run on ("amx_bf16", "amx_int8",
    /// "avx512_bf16", "avx512_vnni" or "reference"); None with precision "f32".
    #[getter]
    fn lowp_path(&self) -> PyResult<Option<&'static str>> {
        lowp_path_name(self.inner.precision())
    }

    /// The encoder's tokenizer.
    #[getter]
    fn tokenizer(&self) -> Tokenizer {
        Tokenizer {
            inner: self.inner.tokenizer().clone(),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Encoder(model_name={:?}, dim={}, max_seq_length={}, threads={}, precision={:?})",
            self.inner.model_name(),
            self.inner.dim(),
            self.inner.max_seq_length(),
            self.inner.threads(),
            self.inner.precision().name()
        )
    }
}

/// The ids of one text: `ids`, `attention_mask`, `type_ids` (lists of int).
#[pyclass(module = "realizar._realizar", name = "Encoding", frozen, get_all)]
pub(crate) struct Encoding {
    ids: Vec<u32>,
    attention_mask: Vec<u32>,
    type_ids: Vec<u32>,
}

impl From<RsEncoding> for Encoding {
    fn from(e: RsEncoding) -> Self {
        Self {
            ids: e.ids,
            attention_mask: e.attention_mask,
            type_ids: e.type_ids,
        }
    }
}

#[pymethods]
impl Encoding {
    fn __len__(&self) -> usize {
        self.ids.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Encoding(ids={:?}, attention_mask={:?})",
            self.ids, self.attention_mask
        )
    }
}

/// BERT's WordPiece tokenizer loaded from a model directory.
#[pyclass(module = "realizar._realizar", name = "Tokenizer", frozen)]
pub(crate) struct Tokenizer {
    inner: WordPiece,
}

#[pymethods]
impl Tokenizer {
    /// Load `tokenizer.json` (or `vocab.txt`) from a model directory; `None` is the
    /// packaged all-MiniLM-L6-v2.
    #[staticmethod]
    #[pyo3(signature = (dir=None, *, max_length=None))]
    fn load(py: Python<'_>, dir: Option<PathBuf>, max_length: Option<usize>) -> PyResult<Self> {
        let dir = match dir {
            Some(d) => d,
            None => default_dir(py)?,
        };
        let mut inner = py
            .detach(|| WordPiece::load(&dir))
            .map_err(|e| to_py_err(&e))?;
        if let Some(n) = max_length {
            inner = inner.with_max_length(n).map_err(|e| to_py_err(&e))?;
        }
        Ok(Self { inner })
    }

    /// `[CLS] ... [SEP]` ids of one text, truncated to `max_length`, unpadded.
    fn encode(&self, text: &Bound<'_, PyAny>) -> PyResult<Encoding> {
        let s = text.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "text must be str, got {}",
                text.get_type()
                    .name()
                    .map_or_else(|_| "?".into(), |n| n.to_string())
            ))
        })?;
        Ok(self.inner.encode(s.to_str()?).into())
    }

    /// Encodings of every text, padded with [PAD] (mask 0) to the longest.
    fn encode_batch<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let texts = texts_of(texts)?;
        let encodings = py.detach(|| {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            self.inner.encode_batch(&refs)
        });
        PyList::new(py, encodings.into_iter().map(Encoding::from))
    }

    /// Word-piece strings of `text` (no [CLS]/[SEP], no truncation).
    fn tokenize(&self, text: &str) -> Vec<String> {
        self.inner.tokenize(text)
    }

    /// The token of `id`, or None.
    fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id).map(str::to_owned)
    }

    /// The id of `token`, or None.
    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Longest encoding, [CLS] and [SEP] included.
    #[getter]
    fn max_length(&self) -> usize {
        self.inner.max_length()
    }

    /// Entries in the vocabulary.
    #[getter]
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }

    fn __repr__(&self) -> String {
        format!(
            "Tokenizer(vocab_size={}, max_length={})",
            self.inner.vocab_size(),
            self.inner.max_length()
        )
    }
}
