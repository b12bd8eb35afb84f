//! `realizar.rag`: thin bindings of the `trueno-rag` crate (chunking, BM25,
//! HNSW, fusion, metrics, groundedness).
//!
//! Conversions only: Python character offsets to and from the crate's byte
//! offsets, NumPy float32 arrays read in place (C-contiguous float32 is never
//! copied), dicts to JSON values. The GIL is released around every index
//! build and search.
#![allow(
    clippy::needless_pass_by_value,
    reason = "pyo3 extracts Python lists and paths into owned Vec/PathBuf arguments"
)]

use std::collections::HashMap;
use std::path::PathBuf;

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyFileNotFoundError, PyKeyError, PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::{Map, Value};
use trueno_rag::{Error, bm25, chunk, eval, filter::Filter, fusion, ground, hnsw};

fn err(e: Error) -> PyErr {
    match e {
        Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(io.to_string())
        }
        Error::Io(io) => PyOSError::new_err(io.to_string()),
        Error::UnknownLabel(l) => PyKeyError::new_err(format!("label {l} is not in the index")),
        e => PyValueError::new_err(e.to_string()),
    }
}

/// Byte offsets of every char start plus the length: char index <-> byte offset.
struct Offsets(Vec<usize>);

impl Offsets {
    fn new(text: &str) -> Self {
        Offsets(
            text.char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(text.len()))
                .collect(),
        )
    }
    fn char_of(&self, byte: usize) -> usize {
        self.0.binary_search(&byte).unwrap_or_else(|i| i)
    }
    fn byte_of(&self, ch: usize) -> PyResult<usize> {
        self.0.get(ch).copied().ok_or_else(|| {
            PyValueError::new_err(format!(
                "character offset {ch} is past the end of the text ({} characters)",
                self.0.len() - 1
            ))
        })
    }
}

/// A passage of a document: `text == source[start:end]` (character offsets).
#[pyclass(module = "realizar._realizar.rag", name = "Chunk", frozen, get_all)]
pub(crate) struct Chunk {
    start: usize,
    end: usize,
    text: String,
    headings: Vec<String>,
}

#[pymethods]
impl Chunk {
    /// The heading path (`A > B`) on its own line, then the text.
    fn contextual_text(&self) -> String {
        if self.headings.is_empty() {
            self.text.clone()
        } else {
            format!("{}\n{}", self.headings.join(" > "), self.text)
        }
    }
    fn __repr__(&self) -> String {
        format!(
            "Chunk(start={}, end={}, headings={:?}, text={:?})",
            self.start, self.end, self.headings, self.text
        )
    }
}

fn chunks_out(text: &str, r: trueno_rag::Result<Vec<chunk::Chunk>>) -> PyResult<Vec<Chunk>> {
    let off = Offsets::new(text);
    Ok(r.map_err(err)?
        .into_iter()
        .map(|c| Chunk {
            start: off.char_of(c.start),
            end: off.char_of(c.end),
            text: c.text,
            headings: c.headings,
        })
        .collect())
}

/// Windows of `size` characters advancing by `size - overlap`.
#[pyfunction]
#[pyo3(signature = (text, size, overlap=0))]
fn chunk_fixed(py: Python<'_>, text: &str, size: usize, overlap: usize) -> PyResult<Vec<Chunk>> {
    let r = py.detach(|| chunk::fixed_chars(text, size, overlap));
    chunks_out(text, r)
}

/// Windows of `size` tokens; `offsets` are the tokens' (start, end) character
/// offsets, e.g. a Hugging Face tokenizer's `encoding.offsets`.
#[pyfunction]
#[pyo3(signature = (text, offsets, size, overlap=0))]
fn chunk_tokens(
    py: Python<'_>,
    text: &str,
    offsets: Vec<(usize, usize)>,
    size: usize,
    overlap: usize,
) -> PyResult<Vec<Chunk>> {
    let off = Offsets::new(text);
    let spans = offsets
        .iter()
        .map(|&(s, e)| Ok((off.byte_of(s)?, off.byte_of(e)?)))
        .collect::<PyResult<Vec<_>>>()?;
    let r = py.detach(|| chunk::fixed_tokens(text, &spans, size, overlap));
    chunks_out(text, r)
}

/// Split on the coarsest separator that fits, pack pieces up to `size` characters.
#[pyfunction]
#[pyo3(signature = (text, size, separators=None))]
fn chunk_recursive(
    py: Python<'_>,
    text: &str,
    size: usize,
    separators: Option<Vec<String>>,
) -> PyResult<Vec<Chunk>> {
    let seps: Vec<String> = separators.unwrap_or_else(|| {
        chunk::DEFAULT_SEPARATORS
            .iter()
            .map(|s| (*s).to_string())
            .collect()
    });
    let r = py.detach(|| {
        let refs: Vec<&str> = seps.iter().map(String::as_str).collect();
        chunk::recursive(text, size, &refs)
    });
    chunks_out(text, r)
}

/// Whole sentences packed up to `size` characters.
#[pyfunction]
fn chunk_sentences(py: Python<'_>, text: &str, size: usize) -> PyResult<Vec<Chunk>> {
    let r = py.detach(|| chunk::sentences(text, size));
    chunks_out(text, r)
}

/// Markdown sections, each chunk carrying its heading path.
#[pyfunction]
fn chunk_markdown(py: Python<'_>, text: &str, size: usize) -> PyResult<Vec<Chunk>> {
    let r = py.detach(|| chunk::markdown(text, size));
    chunks_out(text, r)
}

/// Sentence (start, end) character offsets tiling `text`.
#[pyfunction]
fn sentence_spans(text: &str) -> Vec<(usize, usize)> {
    let off = Offsets::new(text);
    chunk::sentence_spans(text)
        .into_iter()
        .map(|(s, e)| (off.char_of(s), off.char_of(e)))
        .collect()
}

fn analyzer(stop_words: Option<&Bound<'_, PyAny>>) -> PyResult<bm25::Analyzer> {
    let Some(stop_words) = stop_words.filter(|s| !s.is_none()) else {
        return Ok(bm25::Analyzer::new());
    };
    if let Ok(b) = stop_words.extract::<bool>() {
        return Ok(if b {
            bm25::Analyzer::english()
        } else {
            bm25::Analyzer::new()
        });
    }
    let words: Vec<String> = stop_words
        .extract()
        .map_err(|_| PyTypeError::new_err("stop_words must be a bool, None or a list of str"))?;
    Ok(bm25::Analyzer::with_stop_words(
        words.iter().map(String::as_str),
    ))
}

/// The analyser's tokens: unicode word runs, lowercased, minus stop words
/// (`True` for the English list, or a list of words).
#[pyfunction]
#[pyo3(signature = (text, stop_words=None))]
fn analyze(text: &str, stop_words: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    Ok(analyzer(stop_words)?.tokens(text))
}

/// BM25 Okapi over an inverted index; scores equal `rank_bm25.BM25Okapi`.
#[pyclass(module = "realizar._realizar.rag", name = "BM25", frozen)]
pub(crate) struct Bm25 {
    inner: bm25::Bm25,
}

#[pymethods]
impl Bm25 {
    /// Index tokenised documents (`corpus`: a list of token lists).
    #[new]
    #[pyo3(signature = (corpus, k1=1.5, b=0.75, epsilon=0.25))]
    fn new(
        py: Python<'_>,
        corpus: Vec<Vec<String>>,
        k1: f64,
        b: f64,
        epsilon: f64,
    ) -> PyResult<Self> {
        let params = bm25::Bm25Params { k1, b, epsilon };
        let inner = py
            .detach(|| bm25::Bm25::new(&corpus, params))
            .map_err(err)?;
        Ok(Self { inner })
    }

    /// Analyse raw texts (see `analyze`) and index them.
    #[staticmethod]
    #[pyo3(signature = (texts, stop_words=None, k1=1.5, b=0.75, epsilon=0.25))]
    fn from_texts(
        py: Python<'_>,
        texts: Vec<String>,
        stop_words: Option<&Bound<'_, PyAny>>,
        k1: f64,
        b: f64,
        epsilon: f64,
    ) -> PyResult<Self> {
        let a = analyzer(stop_words)?;
        let params = bm25::Bm25Params { k1, b, epsilon };
        let inner = py
            .detach(|| bm25::Bm25::from_texts(&texts, &a, params))
            .map_err(err)?;
        Ok(Self { inner })
    }

    /// Score of every document for the query tokens (float64, document order).
    fn get_scores<'py>(&self, py: Python<'py>, query: Vec<String>) -> Bound<'py, PyArray1<f64>> {
        let s = py.detach(|| self.inner.scores(&query));
        PyArray1::from_vec(py, s)
    }

    /// The `k` best documents: (indices int64, scores float64), best first.
    fn top_k<'py>(
        &self,
        py: Python<'py>,
        query: Vec<String>,
        k: usize,
    ) -> (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f64>>) {
        let top = py.detach(|| self.inner.top_k(&query, k));
        let (i, s): (Vec<i64>, Vec<f64>) = top.into_iter().map(|(i, s)| (i as i64, s)).unzip();
        (PyArray1::from_vec(py, i), PyArray1::from_vec(py, s))
    }

    /// The idf of a term (0 if the corpus lacks it).
    fn idf(&self, term: &str) -> f64 {
        self.inner.idf(term)
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }
}

/// A float32 view of a 1-D or 2-D array as rows of `dim`, read in place when
/// C-contiguous.
fn rows<'a>(
    a: &'a PyReadonlyArrayDyn<'_, f32>,
    name: &str,
) -> PyResult<(std::borrow::Cow<'a, [f32]>, usize, usize)> {
    let shape = a.shape().to_vec();
    let (n, d) = match shape.as_slice() {
        [d] => (1, *d),
        [n, d] => (*n, *d),
        _ => {
            return Err(PyValueError::new_err(format!(
                "{name} must be 1-D or 2-D, got shape {shape:?}"
            )));
        }
    };
    let data = match a.as_slice() {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => std::borrow::Cow::Owned(a.as_array().iter().copied().collect()),
    };
    Ok((data, n, d))
}

fn f32_array<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<PyReadonlyArrayDyn<'py, f32>> {
    obj.extract::<PyReadonlyArrayDyn<'py, f32>>().map_err(|_| {
        let dtype = obj
            .getattr("dtype")
            .map_or_else(|_| obj.get_type().to_string(), |d| d.to_string());
        PyTypeError::new_err(format!(
            "{name} must be a float32 NumPy array, got {dtype} (use np.asarray(x, dtype=np.float32))"
        ))
    })
}

fn to_json(py: Python<'_>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    let s: String = py
        .import("json")?
        .call_method1("dumps", (obj,))
        .map_err(|e| PyTypeError::new_err(format!("{what} is not JSON-serialisable: {e}")))?
        .extract()?;
    serde_json::from_str(&s).map_err(|e| PyValueError::new_err(format!("{what}: {e}")))
}

fn parse_filter(py: Python<'_>, filters: Option<&Bound<'_, PyAny>>) -> PyResult<Filter> {
    match filters {
        None => Ok(Filter::All),
        Some(f) => {
            if !f.is_none() && !f.is_instance_of::<PyDict>() {
                return Err(PyTypeError::new_err(format!(
                    "filters must be a dict, got {}",
                    f.get_type()
                )));
            }
            Filter::from_json(&to_json(py, f, "filters")?).map_err(err)
        }
    }
}

fn metric(name: &str) -> PyResult<trueno::Metric> {
    name.parse()
        .map_err(|e: trueno::Error| PyValueError::new_err(e.to_string()))
}

/// An HNSW index over float32 vectors with integer labels and dict metadata.
#[pyclass(module = "realizar._realizar.rag", name = "HNSW")]
pub(crate) struct Hnsw {
    inner: hnsw::Hnsw,
}

type Hits<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>);

impl Hnsw {
    /// Run `one` per query row with the GIL released; pad 2-D results to `k`
    /// with label -1 and score NaN (a filter can leave fewer than k).
    fn batch<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        k: usize,
        one: impl Fn(&hnsw::Hnsw, &[f32]) -> trueno_rag::Result<Vec<(u64, f32)>> + Send + Sync,
    ) -> PyResult<Hits<'py>> {
        let arr = f32_array(queries, "queries")?;
        let one_d = arr.ndim() == 1;
        let (data, n, d) = rows(&arr, "queries")?;
        if d != self.inner.dim() {
            return Err(err(Error::Dimension {
                expected: self.inner.dim(),
                got: d,
            }));
        }
        let results = py
            .detach(|| {
                data.chunks_exact(d.max(1))
                    .take(n)
                    .map(|q| one(&self.inner, q))
                    .collect::<trueno_rag::Result<Vec<_>>>()
            })
            .map_err(err)?;
        if one_d {
            let r = &results[0];
            let labels: Vec<i64> = r.iter().map(|x| x.0 as i64).collect();
            let scores: Vec<f32> = r.iter().map(|x| x.1).collect();
            return Ok((
                PyArray1::from_vec(py, labels).into_any(),
                PyArray1::from_vec(py, scores).into_any(),
            ));
        }
        let width = k.min(self.inner.len());
        let mut labels = vec![-1i64; n * width];
        let mut scores = vec![f32::NAN; n * width];
        for (i, r) in results.iter().enumerate() {
            for (j, &(l, s)) in r.iter().take(width).enumerate() {
                labels[i * width + j] = l as i64;
                scores[i * width + j] = s;
            }
        }
        Ok((
            PyArray1::from_vec(py, labels)
                .reshape([n, width])?
                .into_any(),
            PyArray1::from_vec(py, scores)
                .reshape([n, width])?
                .into_any(),
        ))
    }
}

#[pymethods]
impl Hnsw {
    #[new]
    #[pyo3(signature = (dim, *, M=16, ef_construction=200, ef_search=64, seed=42, metric="cosine"))]
    #[allow(
        non_snake_case,
        reason = "M is the parameter's name in the paper, hnswlib and faiss"
    )]
    fn new(
        dim: usize,
        M: usize,
        ef_construction: usize,
        ef_search: usize,
        seed: u64,
        metric: &str,
    ) -> PyResult<Self> {
        let params = hnsw::HnswParams {
            m: M,
            ef_construction,
            ef_search,
            seed,
            metric: self::metric(metric)?,
        };
        Ok(Self {
            inner: hnsw::Hnsw::new(dim, params).map_err(err)?,
        })
    }

    /// Insert rows of `vectors` (n, dim) under `labels` (n ints >= 0), with
    /// optional `metadata` (n dicts). An existing label is replaced.
    #[pyo3(signature = (vectors, labels, metadata=None))]
    fn add(
        &mut self,
        py: Python<'_>,
        vectors: &Bound<'_, PyAny>,
        labels: Vec<u64>,
        metadata: Option<&Bound<'_, PyList>>,
    ) -> PyResult<()> {
        let arr = f32_array(vectors, "vectors")?;
        let (data, n, d) = rows(&arr, "vectors")?;
        if arr.ndim() != 2 {
            return Err(PyValueError::new_err("vectors must be 2-D (n, dim)"));
        }
        if d != self.inner.dim() {
            return Err(err(Error::Dimension {
                expected: self.inner.dim(),
                got: d,
            }));
        }
        if labels.len() != n {
            return Err(PyValueError::new_err(format!(
                "{n} vectors but {} labels",
                labels.len()
            )));
        }
        let mut metas: Vec<Map<String, Value>> = Vec::with_capacity(n);
        match metadata {
            Some(list) => {
                if list.len() != n {
                    return Err(PyValueError::new_err(format!(
                        "{n} vectors but {} metadata dicts",
                        list.len()
                    )));
                }
                for (i, item) in list.iter().enumerate() {
                    match to_json(py, &item, &format!("metadata[{i}]"))? {
                        Value::Object(o) => metas.push(o),
                        Value::Null => metas.push(Map::new()),
                        v => {
                            return Err(PyTypeError::new_err(format!(
                                "metadata[{i}] must be a dict, got {v}"
                            )));
                        }
                    }
                }
            }
            None => metas.resize(n, Map::new()),
        }
        let inner = &mut self.inner;
        py.detach(|| {
            for ((v, &l), m) in data.chunks_exact(d).zip(&labels).zip(metas) {
                inner.insert(l, v, m)?;
            }
            Ok(())
        })
        .map_err(err)
    }

    /// Tombstone a label (KeyError if absent).
    fn delete(&mut self, label: u64) -> PyResult<()> {
        self.inner.delete(label).map_err(err)
    }

    /// Approximate k nearest: (labels int64, scores float32); cosine / dot
    /// similarity or squared L2 distance. 2-D queries give (m, k) arrays
    /// padded with -1 / NaN when a filter leaves fewer than k.
    #[pyo3(signature = (queries, k=10, *, ef=None, filters=None))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        k: usize,
        ef: Option<usize>,
        filters: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Hits<'py>> {
        let f = parse_filter(py, filters)?;
        self.batch(py, queries, k, |h, q| h.search(q, k, ef, &f))
    }

    /// Exact k nearest (trueno's scan), same shapes as `search`.
    #[pyo3(signature = (queries, k=10, *, filters=None))]
    fn search_exact<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        k: usize,
        filters: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Hits<'py>> {
        let f = parse_filter(py, filters)?;
        self.batch(py, queries, k, |h, q| h.search_exact(q, k, &f))
    }

    /// The column names a filter dict reads (ValueError if malformed).
    #[staticmethod]
    fn filter_columns(py: Python<'_>, filters: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        Ok(parse_filter(py, Some(filters))?.columns())
    }

    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.save(&path)).map_err(err)
    }

    /// Load a saved index; a damaged, truncated or foreign file is a ValueError.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = py.detach(|| hnsw::Hnsw::load(&path)).map_err(err)?;
        Ok(Self { inner })
    }

    fn metadata<'py>(&self, py: Python<'py>, label: u64) -> PyResult<Bound<'py, PyAny>> {
        let m = self
            .inner
            .metadata(label)
            .ok_or_else(|| err(Error::UnknownLabel(label)))?;
        let s = serde_json::to_string(m).map_err(|e| PyValueError::new_err(e.to_string()))?;
        py.import("json")?.call_method1("loads", (s,))
    }

    fn __contains__(&self, label: u64) -> bool {
        self.inner.contains(label)
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    #[getter]
    fn ef_search(&self) -> usize {
        self.inner.params().ef_search
    }

    #[setter]
    fn set_ef_search(&mut self, ef: usize) -> PyResult<()> {
        self.inner.set_ef_search(ef).map_err(err)
    }

    /// Bytes of vectors, graph and labels.
    fn memory_bytes(&self) -> usize {
        self.inner.memory_bytes()
    }

    fn __repr__(&self) -> String {
        let p = self.inner.params();
        format!(
            "HNSW(dim={}, len={}, M={}, ef_construction={}, ef_search={}, metric={:?})",
            self.inner.dim(),
            self.inner.len(),
            p.m,
            p.ef_construction,
            p.ef_search,
            p.metric.name()
        )
    }
}

/// Weighted reciprocal rank fusion of ranked id lists: [(id, score)], best first.
#[pyfunction]
#[pyo3(signature = (lists, weights=None, k=60.0))]
fn rrf(lists: Vec<Vec<u64>>, weights: Option<Vec<f64>>, k: f64) -> PyResult<Vec<(u64, f64)>> {
    let w = weights.unwrap_or_else(|| vec![1.0; lists.len()]);
    fusion::rrf(&lists, &w, k).map_err(err)
}

#[pyfunction]
fn recall_at_k(retrieved: Vec<u64>, relevant: Vec<u64>, k: usize) -> PyResult<f64> {
    eval::recall_at_k(&retrieved, &relevant, k).map_err(err)
}

#[pyfunction]
fn precision_at_k(retrieved: Vec<u64>, relevant: Vec<u64>, k: usize) -> PyResult<f64> {
    eval::precision_at_k(&retrieved, &relevant, k).map_err(err)
}

#[pyfunction]
fn reciprocal_rank(retrieved: Vec<u64>, relevant: Vec<u64>) -> PyResult<f64> {
    eval::reciprocal_rank(&retrieved, &relevant).map_err(err)
}

/// nDCG@k with graded relevance `grades` {id: grade} (linear gain).
#[pyfunction]
fn ndcg_at_k(retrieved: Vec<u64>, grades: HashMap<u64, f64>, k: usize) -> PyResult<f64> {
    eval::ndcg_at_k(&retrieved, &grades, k).map_err(err)
}

/// Means over questions [(retrieved, relevant)]: recall, precision, mrr, ndcg at k.
#[pyfunction]
fn evaluate(
    py: Python<'_>,
    runs: Vec<(Vec<u64>, Vec<u64>)>,
    k: usize,
) -> PyResult<Bound<'_, PyDict>> {
    let s = eval::evaluate(&runs, k).map_err(err)?;
    let d = PyDict::new(py);
    d.set_item("recall", s.recall)?;
    d.set_item("precision", s.precision)?;
    d.set_item("mrr", s.mrr)?;
    d.set_item("ndcg", s.ndcg)?;
    d.set_item("questions", s.questions)?;
    d.set_item("k", k)?;
    Ok(d)
}

/// The claim sentences of an answer as (start, end) character offsets.
#[pyfunction]
fn claim_spans(answer: &str) -> Vec<(usize, usize)> {
    let off = Offsets::new(answer);
    ground::claim_spans(answer)
        .into_iter()
        .map(|(s, e)| (off.char_of(s), off.char_of(e)))
        .collect()
}

/// Judge each claim sentence of `answer` against `passages` (see the crate's
/// `ground` module for the method and its limits).
#[pyfunction]
#[allow(
    clippy::too_many_arguments,
    reason = "the Python signature: keyword-only thresholds"
)]
#[pyo3(signature = (answer, sentence_embeddings, passages, passage_embeddings, *, min_cosine=0.5, min_overlap=0.5, check_numbers=true))]
fn groundedness<'py>(
    py: Python<'py>,
    answer: &str,
    sentence_embeddings: &Bound<'py, PyAny>,
    passages: Vec<String>,
    passage_embeddings: &Bound<'py, PyAny>,
    min_cosine: f32,
    min_overlap: f64,
    check_numbers: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let sa = f32_array(sentence_embeddings, "sentence_embeddings")?;
    let pa = f32_array(passage_embeddings, "passage_embeddings")?;
    let (s, _, ds) = rows(&sa, "sentence_embeddings")?;
    let (p, _, dp) = rows(&pa, "passage_embeddings")?;
    let dim = if sa.len() == 0 { dp } else { ds };
    if !passages.is_empty() && ds != dp && sa.len() > 0 {
        return Err(PyValueError::new_err(format!(
            "sentence embeddings have dimension {ds}, passage embeddings {dp}"
        )));
    }
    let params = ground::GroundParams {
        min_cosine,
        min_overlap,
        check_numbers,
    };
    let g = py
        .detach(|| ground::groundedness(answer, &s, &passages, &p, dim, params))
        .map_err(err)?;
    let off = Offsets::new(answer);
    let d = PyDict::new(py);
    d.set_item("score", g.score)?;
    let list = PyList::empty(py);
    for x in g.sentences {
        let e = PyDict::new(py);
        e.set_item("start", off.char_of(x.start))?;
        e.set_item("end", off.char_of(x.end))?;
        e.set_item("sentence", x.sentence)?;
        e.set_item("passage", x.passage)?;
        e.set_item("cosine", x.cosine)?;
        e.set_item("overlap", x.overlap)?;
        e.set_item("numbers_ok", x.numbers_ok)?;
        e.set_item("supported", x.supported)?;
        list.append(e)?;
    }
    d.set_item("sentences", list)?;
    Ok(d)
}

/// Add the `rag` submodule to the extension module.
pub(crate) fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let m = PyModule::new(parent.py(), "rag")?;
    m.add_class::<Chunk>()?;
    m.add_class::<Bm25>()?;
    m.add_class::<Hnsw>()?;
    m.add_function(wrap_pyfunction!(chunk_fixed, &m)?)?;
    m.add_function(wrap_pyfunction!(chunk_tokens, &m)?)?;
    m.add_function(wrap_pyfunction!(chunk_recursive, &m)?)?;
    m.add_function(wrap_pyfunction!(chunk_sentences, &m)?)?;
    m.add_function(wrap_pyfunction!(chunk_markdown, &m)?)?;
    m.add_function(wrap_pyfunction!(sentence_spans, &m)?)?;
    m.add_function(wrap_pyfunction!(analyze, &m)?)?;
    m.add_function(wrap_pyfunction!(rrf, &m)?)?;
    m.add_function(wrap_pyfunction!(recall_at_k, &m)?)?;
    m.add_function(wrap_pyfunction!(precision_at_k, &m)?)?;
    m.add_function(wrap_pyfunction!(reciprocal_rank, &m)?)?;
    m.add_function(wrap_pyfunction!(ndcg_at_k, &m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, &m)?)?;
    m.add_function(wrap_pyfunction!(claim_spans, &m)?)?;
    m.add_function(wrap_pyfunction!(groundedness, &m)?)?;
    parent.add_submodule(&m)
}
