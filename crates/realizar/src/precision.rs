//! The reduced-precision opt-in of realizar's models: what runs, and why it may be slow.
//!
//! The sentence encoder's weight matmuls ([`crate::encoder::SentenceEncoder::with_precision`])
//! and the LLM's prefill products ([`crate::llm::Llm::with_prefill_precision`]) can run in
//! bf16 or int8 through `trueno::lowp`, weights converted once at load. The default is
//! always f32; nothing is lowered unless asked for. On a CPU (or a trueno backend) without
//! the instruction set, `trueno::lowp` computes the same arithmetic on its portable
//! reference path, much more slowly: [`fallback_note`] says so in words, so a binding can
//! warn rather than fall back silently.

use trueno::lowp::{Path, Precision};

use crate::Result;

/// The `trueno::lowp` kernel a product in `precision` runs on under the active backend;
/// `None` for f32 (that is `trueno::matmul`'s, not a reduced-precision path).
pub fn lowp_path(precision: Precision) -> Result<Option<Path>> {
    match precision {
        Precision::F32 => Ok(None),
        p => Ok(Some(trueno::lowp::path(p)?)),
    }
}

/// Why `precision` runs on the portable reference path, or `None` when it runs on its
/// SIMD kernel (or is f32). Names the missing CPU features or the backend that rules the
/// kernel out.
pub fn fallback_note(precision: Precision) -> Result<Option<String>> {
    let Some(path) = lowp_path(precision)? else {
        return Ok(None);
    };
    if path != Path::Reference {
        return Ok(None);
    }
    let simd = match precision {
        Precision::Bf16 => Path::Avx512Bf16,
        _ => Path::Avx512Vnni,
    };
    let missing = simd.missing_features();
    let why = if missing.is_empty() {
        format!(
            "the active trueno backend is {:?} (the {} kernel needs \"avx512\")",
            trueno::backend::active()?.name(),
            simd.name()
        )
    } else {
        format!(
            "this CPU lacks {} (needed by the {} kernel)",
            missing.join(", "),
            simd.name()
        )
    };
    Ok(Some(format!(
        "precision {:?} runs on trueno::lowp's portable reference path: {why}; the arithmetic \
         is the same, the speed much lower",
        precision.name()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_has_no_path_and_no_note() {
        assert_eq!(lowp_path(Precision::F32).unwrap(), None);
        assert_eq!(fallback_note(Precision::F32).unwrap(), None);
    }

    #[test]
    fn the_note_matches_the_path() {
        for p in [Precision::Bf16, Precision::Int8] {
            let path = lowp_path(p).unwrap().unwrap();
            assert!(path.computes(p));
            let note = fallback_note(p).unwrap();
            assert_eq!(note.is_some(), path == Path::Reference, "{p:?} {path:?}");
            if let Some(n) = note {
                assert!(n.contains(p.name()) && n.contains("reference"), "{n}");
            }
        }
    }
}
