//! `realizar.BpeTokenizer`: a byte-level BPE tokenizer, thin over `realizar::bpe`.
//!
//! One class for both origins: a GGUF model's own tokenizer (`LLM.tokenizer`, shared with
//! the loaded model, not copied) and one trained from text (`BpeTokenizer.train`, the
//! crate's `bpe::train`). Training and encoding run with the GIL released.

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use realizar::bpe::{BpeTokenizer, TrainOptions};
use realizar::llm::Llm;

use crate::encoder::texts_of;
use crate::errors::to_py_err;
use crate::llm::ids_of;

enum Source {
    Trained(Box<BpeTokenizer>),
    Model(Arc<Llm>),
}

/// A byte-level BPE tokenizer (GPT-2 / SmolLM2 style).
#[pyclass(module = "realizar._realizar", name = "BpeTokenizer", frozen)]
pub(crate) struct PyBpe {
    source: Source,
}

impl PyBpe {
    pub(crate) fn of_model(llm: Arc<Llm>) -> Self {
        PyBpe {
            source: Source::Model(llm),
        }
    }

    fn tok(&self) -> &BpeTokenizer {
        match &self.source {
            Source::Trained(t) => t,
            Source::Model(m) => m.tokenizer(),
        }
    }

    fn checked_ids(&self, ids: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
        let ids = ids_of(ids)?;
        let v = self.tok().vocab_size();
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= v) {
            return Err(PyValueError::new_err(format!(
                "token id {bad} is outside the vocabulary of {v}"
            )));
        }
        Ok(ids)
    }
}

#[pymethods]
impl PyBpe {
    /// Learn a vocabulary from `texts` with Hugging Face `BpeTrainer`'s algorithm.
    #[staticmethod]
    #[pyo3(signature = (texts, *, vocab_size, min_frequency=0, special_tokens=None,
        pre_tokenizer="smollm"))]
    fn train(
        py: Python<'_>,
        texts: &Bound<'_, PyAny>,
        vocab_size: i64,
        min_frequency: i64,
        special_tokens: Option<&Bound<'_, PyAny>>,
        pre_tokenizer: &str,
    ) -> PyResult<Self> {
        let texts = texts_of(texts)?;
        let vocab_size = usize::try_from(vocab_size).map_err(|_| {
            PyValueError::new_err(format!("vocab_size must be >= 0, got {vocab_size}"))
        })?;
        let min_frequency = u64::try_from(min_frequency).map_err(|_| {
            PyValueError::new_err(format!("min_frequency must be >= 0, got {min_frequency}"))
        })?;
        let special_tokens = match special_tokens {
            None => Vec::new(),
            Some(s) => texts_of(s).map_err(|e| {
                PyTypeError::new_err(format!(
                    "special_tokens: {}",
                    e.value(py)
                        .str()
                        .map_or_else(|_| "?".into(), |s| s.to_string())
                ))
            })?,
        };
        let opts = TrainOptions {
            vocab_size,
            min_frequency,
            special_tokens,
            pre: pre_tokenizer.to_owned(),
        };
        let tok = py
            .detach(|| {
                realizar::bpe::train(texts.iter().map(String::as_str), &opts)
                    .and_then(BpeTokenizer::new)
            })
            .map_err(|e| to_py_err(&e))?;
        Ok(PyBpe {
            source: Source::Trained(Box::new(tok)),
        })
    }

    /// Token ids of `text` (`add_special`: the BOS the model asks for, if any;
    /// `parse_special`: special tokens written in the text become their ids).
    #[pyo3(signature = (text, *, add_special=true, parse_special=true))]
    fn encode(
        &self,
        py: Python<'_>,
        text: &Bound<'_, PyAny>,
        add_special: bool,
        parse_special: bool,
    ) -> PyResult<Vec<u32>> {
        let text: String = text.extract().map_err(|_| {
            PyTypeError::new_err(format!("text must be str, got {}", text.get_type()))
        })?;
        Ok(py.detach(|| self.tok().encode(&text, add_special, parse_special)))
    }

    /// Text of token ids.
    fn decode(&self, ids: &Bound<'_, PyAny>) -> PyResult<String> {
        let ids = self.checked_ids(ids)?;
        Ok(self.tok().decode(&ids))
    }

    /// The raw bytes of one token (part of a UTF-8 character, possibly).
    fn token_bytes<'py>(&self, py: Python<'py>, id: i64) -> PyResult<Bound<'py, PyBytes>> {
        u32::try_from(id)
            .ok()
            .and_then(|id| self.tok().token_bytes(id))
            .map(|b| PyBytes::new(py, b))
            .ok_or_else(|| PyValueError::new_err(format!("token id {id} is not in the vocabulary")))
    }

    /// The token's text in the byte-level alphabet (a space is `Ġ`), or None.
    fn id_to_token(&self, id: i64) -> Option<String> {
        u32::try_from(id)
            .ok()
            .and_then(|id| self.tok().token_text(id))
            .map(str::to_owned)
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tok().token_to_id(token)
    }

    /// Whether the id is a control token (`<|im_end|>`, ...).
    fn is_special(&self, id: i64) -> bool {
        u32::try_from(id).is_ok_and(|id| self.tok().is_control(id))
    }

    #[getter]
    fn vocab_size(&self) -> usize {
        self.tok().vocab_size()
    }

    /// Every token text by id.
    #[getter]
    fn tokens(&self) -> Vec<String> {
        self.tok().tokens().to_vec()
    }

    /// The merges in rank order, `(left, right)` token texts.
    #[getter]
    fn merges(&self) -> Vec<(String, String)> {
        self.tok()
            .merges()
            .into_iter()
            .map(|(l, r)| (l.to_owned(), r.to_owned()))
            .collect()
    }

    /// Texts of the tokens matched whole in text (control and user-defined), by id.
    #[getter]
    fn special_tokens(&self) -> Vec<String> {
        let tok = self.tok();
        tok.special_ids()
            .into_iter()
            .filter_map(|id| tok.token_text(id).map(str::to_owned))
            .collect()
    }

    fn __len__(&self) -> usize {
        self.tok().vocab_size()
    }

    fn __repr__(&self) -> String {
        let origin = match &self.source {
            Source::Trained(_) => "trained".to_owned(),
            Source::Model(m) => format!("model {:?}", m.name()),
        };
        format!(
            "BpeTokenizer(vocab_size={}, merges={}, {origin})",
            self.tok().vocab_size(),
            self.tok().merges().len()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBpe>()
}
