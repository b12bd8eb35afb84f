//! Writing a [`Dataset`] back to CSV, Parquet or Arrow IPC, through the same libraries
//! that read them (arrow-csv, the `parquet` crate's `ArrowWriter`, arrow-ipc).
//!
//! What a pipeline's last step must guarantee: a reader never sees half a file. Every
//! write goes to a temporary file beside the target, is flushed and fsynced, and only
//! then renamed over the target (and the directory fsynced), so a crash or an error
//! leaves either the old file or the new one, never a torn mix, and no temporary file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::{Dataset, Error, Format, Result};

/// How to write a file.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Parquet: rows per row group (the unit that statistics, and so pruning, cover).
    pub row_group_size: usize,
    /// Parquet: snappy (pyarrow's default) or none.
    pub compress: bool,
    /// CSV: write a header line of column names.
    pub csv_header: bool,
    /// CSV: the field separator.
    pub csv_delimiter: u8,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            // pyarrow's default row group (1 Mi rows) would make one group of most
            // course files, and nothing to prune; 64 Ki rows keeps groups prunable.
            row_group_size: 64 * 1024,
            compress: true,
            csv_header: true,
            csv_delimiter: b',',
        }
    }
}

impl Dataset {
    /// Write to `path` in the format its extension names (atomically: see the module doc).
    pub fn write(&self, path: impl AsRef<Path>, options: &WriteOptions) -> Result<()> {
        let path = path.as_ref();
        self.write_as(path, Format::from_path(path)?, options)
    }

    /// Write to `path` as `format`.
    pub fn write_as(
        &self,
        path: impl AsRef<Path>,
        format: Format,
        options: &WriteOptions,
    ) -> Result<()> {
        let path = path.as_ref();
        if options.row_group_size == 0 {
            return Err(Error::Invalid("row_group_size must be at least 1".into()));
        }
        let tmp = temp_path(path)?;
        let written = File::create(&tmp)
            .map_err(|source| io(&tmp, source))
            .and_then(|file| self.encode(path, file, format, options));
        let done = written.and_then(|file| {
            file.sync_all().map_err(|source| io(&tmp, source))?;
            drop(file);
            std::fs::rename(&tmp, path).map_err(|source| io(path, source))
        });
        if let Err(e) = done {
            // Nothing half-written stays behind; the error says what failed.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(path);
        Ok(())
    }

    fn encode(
        &self,
        path: &Path,
        file: File,
        format: Format,
        options: &WriteOptions,
    ) -> Result<File> {
        let failed = |e: &dyn std::fmt::Display| Error::Invalid(format!("{}: {e}", path.display()));
        match format {
            Format::Parquet => {
                let props = WriterProperties::builder()
                    .set_max_row_group_size(options.row_group_size)
                    .set_compression(if options.compress {
                        Compression::SNAPPY
                    } else {
                        Compression::UNCOMPRESSED
                    })
                    .build();
                let mut w =
                    parquet::arrow::ArrowWriter::try_new(file, self.schema().clone(), Some(props))
                        .map_err(|e| failed(&e))?;
                for b in self.batches() {
                    w.write(b).map_err(|e| failed(&e))?;
                }
                w.into_inner().map_err(|e| failed(&e))
            }
            Format::ArrowIpc => {
                let mut w = arrow_ipc::writer::FileWriter::try_new(file, self.schema())
                    .map_err(|e| failed(&e))?;
                for b in self.batches() {
                    w.write(b).map_err(|e| failed(&e))?;
                }
                w.finish().map_err(|e| failed(&e))?;
                w.into_inner().map_err(|e| failed(&e))
            }
            Format::Csv => {
                let mut w = arrow_csv::WriterBuilder::new()
                    .with_header(options.csv_header)
                    .with_delimiter(options.csv_delimiter)
                    .build(BufWriter::new(file));
                if self.batches().is_empty() && options.csv_header {
                    // arrow-csv writes the header with the first batch; an empty table
                    // still gets its column names.
                    let empty = arrow_array::RecordBatch::new_empty(self.schema().clone());
                    w.write(&empty).map_err(|e| failed(&e))?;
                }
                for b in self.batches() {
                    w.write(b).map_err(|e| failed(&e))?;
                }
                let mut buf = w.into_inner();
                buf.flush().map_err(|source| io(path, source))?;
                buf.into_inner()
                    .map_err(|e| io(path, std::io::Error::other(e.to_string())))
            }
        }
    }
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `.<name>.<pid>.tmp` in the target's directory, so the rename stays on one filesystem.
fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Invalid(format!("{}: not a file path", path.display())))?;
    Ok(path.with_file_name(format!(".{name}.{}.tmp", std::process::id())))
}

/// Make the rename durable; best effort (not every filesystem lets a directory be opened).
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};
    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("alimentar-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    /// Values that trip writers: NaN, infinities, huge magnitudes, nulls, unicode,
    /// a delimiter and a quote inside a string, and two batches of odd lengths.
    fn awkward() -> Dataset {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("x", DataType::Float64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = |ids: Vec<i64>, xs: Vec<Option<f64>>, ss: Vec<Option<&str>>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids)) as ArrayRef,
                    Arc::new(Float64Array::from(xs)),
                    Arc::new(StringArray::from(ss)),
                ],
            )
            .unwrap()
        };
        let a = batch(
            vec![i64::MIN, 0, 1],
            vec![Some(f64::NAN), None, Some(1e308)],
            vec![Some("naïve, \"quoted\""), None, Some("日本語 ✓")],
        );
        let b = batch(
            vec![i64::MAX, 7],
            vec![Some(f64::INFINITY), Some(-5e-324)],
            vec![Some(""), Some("line\nbreak")],
        );
        Dataset::from_batches(schema, vec![a, b]).unwrap()
    }

    fn same(a: &Dataset, b: &Dataset) {
        assert_eq!(a.num_rows(), b.num_rows());
        let (ia, ib) = (a.column("id").unwrap(), b.column("id").unwrap());
        assert_eq!(
            ia.as_primitive::<Int64Type>().values(),
            ib.as_primitive::<Int64Type>().values()
        );
        let (xa, xb) = (a.column("x").unwrap(), b.column("x").unwrap());
        let (xa, xb) = (
            xa.as_primitive::<Float64Type>(),
            xb.as_primitive::<Float64Type>(),
        );
        for i in 0..xa.len() {
            assert_eq!(xa.is_null(i), xb.is_null(i), "row {i}");
            // Bit-equal: NaN stays NaN, the subnormal and the huge value survive.
            // (A null slot's value is unspecified.)
            if xa.is_valid(i) {
                assert_eq!(xa.value(i).to_bits(), xb.value(i).to_bits(), "row {i}");
            }
        }
        let (sa, sb) = (a.column("s").unwrap(), b.column("s").unwrap());
        let (sa, sb) = (sa.as_string::<i32>(), sb.as_string::<i32>());
        for i in 0..sa.len() {
            assert_eq!(sa.is_valid(i), sb.is_valid(i), "row {i}");
            if sa.is_valid(i) {
                assert_eq!(sa.value(i), sb.value(i), "row {i}");
            }
        }
    }

    use arrow_array::Array;

    #[test]
    fn parquet_and_ipc_round_trip_bit_for_bit() {
        let ds = awkward();
        for name in ["t.parquet", "t.arrow"] {
            let path = scratch(name);
            ds.write(&path, &WriteOptions::default()).unwrap();
            same(&ds, &Dataset::open(&path, &Options::default()).unwrap());
        }
    }

    #[test]
    fn csv_round_trips_quoting_unicode_and_nulls() {
        // CSV has no NaN/null distinction of its own: the reader's null markers decide.
        // With only the empty field as null, every value but the null and "" comes back.
        let ds = awkward();
        let path = scratch("t.csv");
        ds.write(&path, &WriteOptions::default()).unwrap();
        let back = Dataset::open(
            &path,
            &Options {
                csv_nulls: None,
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(back.num_rows(), 5);
        let s = back.column("s").unwrap();
        let s = s.as_string::<i32>();
        assert_eq!(s.value(0), "naïve, \"quoted\"");
        assert_eq!(s.value(2), "日本語 ✓");
        assert_eq!(s.value(4), "line\nbreak");
        let x = back.column("x").unwrap();
        let x = x.as_primitive::<Float64Type>();
        assert!(x.value(0).is_nan());
        assert!(x.is_null(1));
        assert_eq!(x.value(2), 1e308);
        assert_eq!(x.value(3), f64::INFINITY);
        assert_eq!(x.value(4), -5e-324);
    }

    #[test]
    fn row_groups_follow_the_option_and_prune() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..1001)) as ArrayRef],
        )
        .unwrap();
        let ds = Dataset::from_batches(schema, vec![batch]).unwrap();
        let path = scratch("groups.parquet");
        let options = WriteOptions {
            row_group_size: 100,
            ..WriteOptions::default()
        };
        ds.write(&path, &options).unwrap();
        let read = Dataset::open(
            &path,
            &Options {
                filter: Some(crate::Range {
                    column: "v".into(),
                    min: Some(950.0),
                    max: None,
                }),
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(read.row_groups_total, 11);
        assert_eq!(read.row_groups_pruned, 9);
        assert_eq!(read.num_rows(), 51);
    }

    #[test]
    fn an_empty_table_writes_a_readable_file() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Float64, true)]));
        let ds = Dataset::from_batches(schema, vec![]).unwrap();
        for name in ["e.parquet", "e.arrow", "e.csv"] {
            let path = scratch(name);
            ds.write(&path, &WriteOptions::default()).unwrap();
            assert!(std::fs::metadata(&path).unwrap().len() > 0, "{name}");
        }
        let back = Dataset::open(scratch("e.parquet"), &Options::default()).unwrap();
        assert_eq!(back.num_rows(), 0);
        assert_eq!(back.column_names(), ["v"]);
        let csv = std::fs::read_to_string(scratch("e.csv")).unwrap();
        assert_eq!(csv, "v\n");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temporary() {
        let path = scratch("keep.parquet");
        std::fs::write(&path, b"old bytes").unwrap();
        // Bad options fail before anything is created.
        let bad = WriteOptions {
            row_group_size: 0,
            ..WriteOptions::default()
        };
        assert!(matches!(
            awkward().write(&path, &bad),
            Err(Error::Invalid(_))
        ));
        // A target whose directory is missing: an Io error naming the temporary path.
        let missing = scratch("no/such/dir/t.parquet");
        let err = awkward()
            .write(&missing, &WriteOptions::default())
            .unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(err.to_string().contains("t.parquet"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old bytes");
        // An extension alimentar does not know is refused up front.
        assert!(matches!(
            awkward().write(scratch("t.xlsx"), &WriteOptions::default()),
            Err(Error::UnknownFormat(_))
        ));
        let dir = path.parent().unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_rewrite_replaces_the_file_whole() {
        let path = scratch("replace.arrow");
        awkward().write(&path, &WriteOptions::default()).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "only",
            DataType::Int64,
            false,
        )]));
        let one = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![42])) as ArrayRef],
        )
        .unwrap();
        Dataset::from_batches(schema, vec![one])
            .unwrap()
            .write(&path, &WriteOptions::default())
            .unwrap();
        let back = Dataset::open(&path, &Options::default()).unwrap();
        assert_eq!(back.column_names(), ["only"]);
        assert_eq!(back.num_rows(), 1);
    }
}
