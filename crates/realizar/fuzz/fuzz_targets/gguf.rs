//! Fuzz target: arbitrary bytes through the whole GGUF read path.
//!
//! Parses the header, metadata and tensor table, then looks every metadata key and
//! tensor up again through the index, takes each tensor's byte view and decodes it to
//! f32 (dequantising block formats). Any panic, abort, out-of-bounds view or allocation
//! past libFuzzer's `-malloc_limit_mb` is a bug in the reader.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use realizar::gguf::{Gguf, GgufFile};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::parse(data) else {
        return;
    };
    for (key, value) in &file.metadata {
        assert!(file.get(key).is_some(), "metadata key {key:?} not indexed");
        let _ = (
            value.as_u64(),
            value.as_f64(),
            value.as_str(),
            value.as_bool(),
        );
        let _ = value.as_array().map(<[_]>::len);
    }
    let g = Gguf {
        path: PathBuf::from("fuzz.gguf"),
        file,
        bytes: data.to_vec(),
    };
    for t in &g.file.tensors {
        let end = t
            .start
            .checked_add(t.len)
            .expect("validated range overflows");
        assert!(end <= data.len(), "tensor {:?} past the end", t.name);
        assert!(t.start >= g.file.data_start);
        let (info, raw) = g.tensor(&t.name).expect("listed tensor is found");
        assert_eq!(raw.len(), info.len);
        // A tensor the table accepted always decodes: its byte length was derived
        // from its type and shape.
        let v = g.tensor_f32(&t.name).expect("a validated tensor decodes");
        assert_eq!(v.len(), t.n_elements());
    }
    let _ = (
        g.meta_usize("general.alignment"),
        g.meta_f64("general.alignment"),
    );
});
