//! The `realizar._realizar` extension: thin wrappers over the `realizar` crate.

use pyo3::prelude::*;

mod aprender;
mod bpe;
mod encoder;
mod errors;
mod gguf;
mod llm;
mod precision;
mod rag;
mod server;
mod tabular;

#[pymodule]
fn _realizar(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__source_hash__", env!("SOURCE_FINGERPRINT"))?;
    m.add_submodule(&aprender::module(m.py())?)?;
    m.add_class::<tabular::TabularModel>()?;
    m.add_function(wrap_pyfunction!(server::cli_main, m)?)?;
    m.add_class::<encoder::Encoder>()?;
    m.add_class::<encoder::Tokenizer>()?;
    m.add_class::<encoder::Encoding>()?;
    llm::register(m)?;
    bpe::register(m)?;
    m.add_function(wrap_pyfunction!(gguf::quantize_gguf, m)?)?;
    rag::register(m)?;
    Ok(())
}
