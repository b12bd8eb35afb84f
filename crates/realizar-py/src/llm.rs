//! `realizar.LLM`: a GGUF language model, thin over `realizar::llm`.
//!
//! Arguments are checked here (types, ranges) and the crate's
//! `GenerateOptions::validate` has the last word; every computation runs
//! with the GIL released. Chat rendering lives in Python (`realizar.llm`),
//! over `realizar::chat_template`.
#![allow(
    clippy::needless_pass_by_value,
    reason = "pyo3 extracts paths and callables into owned PathBuf / Py arguments"
)]

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use realizar::chat_template::{ChatMessage, ChatTemplate};
use realizar::llm::{FinishReason, GenerateOptions, Llm};

use crate::errors::to_py_err;
use crate::precision::{lowp_path_name, precision_of, warn_if_reference};

/// A loaded language model.
#[pyclass(module = "realizar._realizar", name = "LLM", frozen)]
pub(crate) struct PyLlm {
    inner: Arc<Llm>,
    template: Option<ChatTemplate>,
}

/// The outcome of one generation.
#[pyclass(module = "realizar._realizar", name = "Generation", frozen, get_all)]
pub(crate) struct PyGeneration {
    text: String,
    tokens: Vec<u32>,
    finish_reason: String,
    prompt_tokens: usize,
    completion_tokens: usize,
}

#[pymethods]
impl PyGeneration {
    fn __repr__(&self) -> String {
        format!(
            "Generation(text={:?}, finish_reason={:?}, prompt_tokens={}, completion_tokens={})",
            self.text, self.finish_reason, self.prompt_tokens, self.completion_tokens
        )
    }
}

pub(crate) fn ids_of(ids: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
    let seq = ids.try_iter().map_err(|_| {
        PyTypeError::new_err("ids must be a sequence of non-negative int token ids")
    })?;
    let mut out = Vec::new();
    for (i, item) in seq.enumerate() {
        let item = item?;
        let v: i64 = item.extract().map_err(|_| {
            PyTypeError::new_err(format!("ids[{i}] must be int, got {}", item.get_type()))
        })?;
        let v = u32::try_from(v)
            .map_err(|_| PyValueError::new_err(format!("ids[{i}] = {v} is not a token id")))?;
        out.push(v);
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)] // the OpenAI sampling knobs, one keyword each
fn options(
    max_tokens: i64,
    temperature: f64,
    top_k: i64,
    top_p: f64,
    repetition_penalty: f64,
    seed: Option<u64>,
    stop: Option<&Bound<'_, PyAny>>,
    stop_token_ids: Option<Vec<u32>>,
) -> PyResult<GenerateOptions> {
    let max_tokens = usize::try_from(max_tokens)
        .map_err(|_| PyValueError::new_err(format!("max_tokens must be >= 0, got {max_tokens}")))?;
    let top_k = usize::try_from(top_k)
        .map_err(|_| PyValueError::new_err(format!("top_k must be >= 0, got {top_k}")))?;
    let stop = match stop {
        None => Vec::new(),
        Some(s) => {
            if let Ok(one) = s.extract::<String>() {
                vec![one]
            } else {
                s.extract::<Vec<String>>()
                    .map_err(|_| PyTypeError::new_err("stop must be a str or a list of str"))?
            }
        }
    };
    let opts = GenerateOptions {
        max_tokens,
        temperature: temperature as f32,
        top_k,
        top_p: top_p as f32,
        repetition_penalty: repetition_penalty as f32,
        seed: seed.unwrap_or(0),
        stop_token_ids: stop_token_ids.unwrap_or_default(),
        stop,
    };
    opts.validate().map_err(|e| to_py_err(&e))?;
    Ok(opts)
}

fn finish_name(f: FinishReason) -> String {
    f.as_str().to_owned()
}

#[pymethods]
impl PyLlm {
    /// Load a GGUF model file; `threads` threads compute each matrix product.
    /// `prefill_precision="bf16"` or `"int8"` runs prefill's weight products through
    /// `trueno::lowp` (weights converted once, here; decode unchanged); the default
    /// `"f32"` is never lowered. A CPU without the instruction set runs lowp's reference
    /// path, and a `RuntimeWarning` says so.
    #[staticmethod]
    #[pyo3(signature = (path, *, threads=1, prefill_precision="f32"))]
    fn load(
        py: Python<'_>,
        path: PathBuf,
        threads: i64,
        prefill_precision: &str,
    ) -> PyResult<Self> {
        let threads = usize::try_from(threads)
            .ok()
            .filter(|&t| t >= 1)
            .ok_or_else(|| PyValueError::new_err(format!("threads must be >= 1, got {threads}")))?;
        let precision = precision_of("prefill_precision", prefill_precision)?;
        let inner = py
            .detach(|| Llm::load(&path, threads)?.with_prefill_precision(precision))
            .map_err(|e| to_py_err(&e))?;
        warn_if_reference(py, precision)?;
        let tok = inner.tokenizer();
        let text_of = |id: Option<u32>| id.and_then(|i| tok.token_text(i)).unwrap_or("").to_owned();
        let template = match inner.chat_template() {
            Some(src) => Some(
                ChatTemplate::new(src, &text_of(tok.bos_id()), &text_of(tok.eos_id()))
                    .map_err(|e| to_py_err(&e))?,
            ),
            None => None,
        };
        Ok(PyLlm {
            inner: Arc::new(inner),
            template,
        })
    }

    /// The arithmetic of prefill's weight products: "f32" (default), "bf16" or "int8".
    #[getter]
    fn prefill_precision(&self) -> &'static str {
        self.inner.prefill_precision().name()
    }

    /// The `trueno::lowp` kernel prefill's weight products run on ("amx_bf16",
    /// "amx_int8", "avx512_bf16", "avx512_vnni" or "reference"); None with prefill precision "f32".
    #[getter]
    fn prefill_lowp_path(&self) -> PyResult<Option<&'static str>> {
        lowp_path_name(self.inner.prefill_precision())
    }

    /// `general.name` of the file.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_owned()
    }

    #[getter]
    fn context_length(&self) -> usize {
        self.inner.context_length()
    }

    #[getter]
    fn vocab_size(&self) -> usize {
        self.inner.tokenizer().vocab_size()
    }

    #[getter]
    fn eos_token_id(&self) -> Option<u32> {
        self.inner.tokenizer().eos_id()
    }

    /// The model's own byte-level BPE tokenizer (shares the loaded model).
    #[getter]
    fn tokenizer(&self) -> crate::bpe::PyBpe {
        crate::bpe::PyBpe::of_model(Arc::clone(&self.inner))
    }

    #[getter]
    fn chat_template(&self) -> Option<String> {
        self.inner.chat_template().map(str::to_owned)
    }

    /// Token ids of `text` (`add_special`: the model's BOS if it wants one;
    /// `parse_special`: `<|im_start|>` and friends become their ids).
    #[pyo3(signature = (text, *, add_special=true, parse_special=true))]
    fn tokenize(
        &self,
        py: Python<'_>,
        text: &Bound<'_, PyAny>,
        add_special: bool,
        parse_special: bool,
    ) -> PyResult<Vec<u32>> {
        let text: String = text.extract().map_err(|_| {
            PyTypeError::new_err(format!("text must be str, got {}", text.get_type()))
        })?;
        Ok(py.detach(|| {
            self.inner
                .tokenizer()
                .encode(&text, add_special, parse_special)
        }))
    }

    /// Text of token ids.
    fn detokenize(&self, ids: &Bound<'_, PyAny>) -> PyResult<String> {
        let ids = ids_of(ids)?;
        let v = self.inner.tokenizer().vocab_size();
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= v) {
            return Err(PyValueError::new_err(format!(
                "token id {bad} is outside the vocabulary of {v}"
            )));
        }
        Ok(self.inner.tokenizer().decode(&ids))
    }

    /// Raw bytes of one token (for UTF-8-safe streaming).
    fn token_bytes<'py>(
        &self,
        py: Python<'py>,
        id: u32,
    ) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        self.inner
            .tokenizer()
            .token_bytes(id)
            .map(|b| pyo3::types::PyBytes::new(py, b))
            .ok_or_else(|| PyValueError::new_err(format!("token id {id} is not in the vocabulary")))
    }

    /// Logits of every position, a float32 array of shape (len(ids), vocab).
    fn logits<'py>(&self, py: Python<'py>, ids: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let ids = ids_of(ids)?;
        let vocab = self.inner.config().vocab;
        let inner = Arc::clone(&self.inner);
        let flat = py
            .detach(move || inner.logits(&ids))
            .map_err(|e| to_py_err(&e))?;
        let n = flat.len() / vocab;
        let arr = PyArray1::from_vec(py, flat);
        Ok(arr.reshape([n, vocab])?.into_any())
    }

    /// Generate from token ids. `on_token(id) -> bool|None` (optional) is
    /// called with each token as it is produced, with the GIL; returning
    /// False cancels. Returns a `Generation`.
    #[pyo3(signature = (ids, *, max_tokens=128, temperature=0.0, top_k=0, top_p=1.0,
        repetition_penalty=1.0, seed=None, stop=None, stop_token_ids=None, on_token=None))]
    #[allow(clippy::too_many_arguments)]
    fn generate_ids(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        max_tokens: i64,
        temperature: f64,
        top_k: i64,
        top_p: f64,
        repetition_penalty: f64,
        seed: Option<u64>,
        stop: Option<&Bound<'_, PyAny>>,
        stop_token_ids: Option<Vec<u32>>,
        on_token: Option<Py<PyAny>>,
    ) -> PyResult<PyGeneration> {
        let ids = ids_of(ids)?;
        let opts = options(
            max_tokens,
            temperature,
            top_k,
            top_p,
            repetition_penalty,
            seed,
            stop,
            stop_token_ids,
        )?;
        let inner = Arc::clone(&self.inner);
        let mut callback_err: Option<PyErr> = None;
        let g = py
            .detach(|| {
                inner.generate(&ids, &opts, &mut |t| match &on_token {
                    None => true,
                    Some(f) => Python::attach(|py| match f.call1(py, (t,)) {
                        Ok(r) => r.is_none(py) || r.is_truthy(py).unwrap_or(true),
                        Err(e) => {
                            callback_err = Some(e);
                            false
                        }
                    }),
                })
            })
            .map_err(|e| to_py_err(&e))?;
        if let Some(e) = callback_err {
            return Err(e);
        }
        Ok(PyGeneration {
            text: g.text,
            tokens: g.tokens,
            finish_reason: finish_name(g.finish_reason),
            prompt_tokens: g.prompt_tokens,
            completion_tokens: g.completion_tokens,
        })
    }

    /// The prompt text for a conversation, rendered with the model's own
    /// chat template (`messages`: a list of {"role", "content"} dicts).
    #[pyo3(signature = (messages, *, add_generation_prompt=true))]
    fn apply_chat_template(
        &self,
        messages: &Bound<'_, PyAny>,
        add_generation_prompt: bool,
    ) -> PyResult<String> {
        let Some(t) = &self.template else {
            return Err(PyValueError::new_err(
                "this model file has no chat template",
            ));
        };
        let items = messages.try_iter().map_err(|_| {
            PyTypeError::new_err("messages must be a list of {'role': str, 'content': str} dicts")
        })?;
        let mut msgs = Vec::new();
        for (i, m) in items.enumerate() {
            let m = m?;
            let field = |k: &str| -> PyResult<String> {
                let v = m.get_item(k).map_err(|_| {
                    PyTypeError::new_err(format!("messages[{i}] must be a dict with a {k:?} key"))
                })?;
                v.extract()
                    .map_err(|_| PyTypeError::new_err(format!("messages[{i}][{k:?}] must be str")))
            };
            msgs.push(ChatMessage::new(&field("role")?, &field("content")?));
        }
        t.render(&msgs, add_generation_prompt)
            .map_err(|e| to_py_err(&e))
    }

    fn __repr__(&self) -> String {
        format!(
            "LLM(name={:?}, context_length={}, threads={}, prefill_precision={:?})",
            self.inner.name(),
            self.inner.context_length(),
            self.inner.threads(),
            self.inner.prefill_precision().name()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLlm>()?;
    m.add_class::<PyGeneration>()?;
    Ok(())
}
