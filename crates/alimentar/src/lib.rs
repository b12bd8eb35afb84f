//! alimentar: loading tabular data into columns trueno can compute on.
//!
//! What a data platform hides behind `spark.read`: a file is opened by the field's own
//! readers (arrow-rs for CSV and Arrow IPC, the `parquet` crate for Parquet), its schema
//! is inferred or read from the file, only the requested columns are decoded
//! (projection), Parquet row groups whose statistics rule out a range predicate are
//! never read (pruning), and what remains arrives as Arrow record batches. A numeric
//! column then becomes the contiguous `&[f32]` / `&[f64]` a trueno kernel takes:
//! borrowed straight from Arrow's buffer when the file held it that way (one batch,
//! the right type, no nulls), copied once otherwise. Shuffles and splits are seeded.
//!
//! [`Dataset::write`] writes a table back (CSV, Parquet, Arrow IPC) through the same
//! libraries, atomically: a reader sees the old file or the new one, never half of one.
//!
//! Everything read from a file is checked before it is trusted: a truncated or
//! corrupt file, a schema that does not match, a missing column or a null where a
//! number is required is an [`Error`] naming the file and the column, never a panic.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchReader, UInt32Array};
use arrow_schema::{ArrowError, DataType, Schema, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::statistics::Statistics;

mod write;
pub use write::WriteOptions;

/// The formats alimentar reads, chosen by file extension unless given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
    /// The Arrow IPC file format (`.arrow`, `.feather` v2, `.ipc`).
    ArrowIpc,
}

impl Format {
    /// The format a path's extension names.
    pub fn from_path(path: &Path) -> Result<Format> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext.to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "parquet" | "pq" => Ok(Format::Parquet),
            "arrow" | "feather" | "ipc" => Ok(Format::ArrowIpc),
            _ => Err(Error::UnknownFormat(path.to_path_buf())),
        }
    }
}

/// Keep rows whose `column` lies in `[min, max]` (either bound optional; NaN and null
/// never match). Parquet row groups whose min/max statistics lie outside are skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub column: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// How to read a file.
#[derive(Debug, Clone)]
pub struct Options {
    /// Read only these columns, in this order (None: every column).
    pub columns: Option<Vec<String>>,
    /// Rows per record batch.
    pub batch_size: usize,
    /// Rows to keep (and, for Parquet, row groups to skip).
    pub filter: Option<Range>,
    /// CSV: the first line holds the column names.
    pub csv_header: bool,
    /// CSV: the field separator.
    pub csv_delimiter: u8,
    /// CSV: rows read to infer the schema (None: all of them).
    pub csv_infer_rows: Option<usize>,
    /// CSV: fields that mean null. Default: pyarrow's and pandas' markers (the empty
    /// field, `NA`, `N/A`, `NULL`, `null`, `NaN`, `nan`, `#N/A`, ...), so a file reads
    /// here as it reads there; `None` makes only the empty field null.
    pub csv_nulls: Option<String>,
    /// The schema the file must have (names and types), checked after projection.
    pub expect_schema: Option<SchemaRef>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            columns: None,
            batch_size: 8192,
            filter: None,
            csv_header: true,
            csv_delimiter: b',',
            csv_infer_rows: Some(10_000),
            csv_nulls: Some(PYARROW_NULLS.to_owned()),
            expect_schema: None,
        }
    }
}

/// pyarrow.csv's default `null_values` (also pandas' `na_values`), as one regex.
pub const PYARROW_NULLS: &str = r"^(|#N/A|#N/A N/A|#NA|-1\.#IND|-1\.#QNAN|-NaN|-nan|1\.#IND|1\.#QNAN|N/A|NA|NULL|NaN|n/a|nan|null)$";

/// What went wrong, with the file and column it concerns.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file could not be decoded (truncated, corrupt, not this format).
    Corrupt {
        path: PathBuf,
        reason: String,
    },
    UnknownFormat(PathBuf),
    MissingColumn {
        column: String,
        available: Vec<String>,
    },
    SchemaMismatch {
        expected: String,
        found: String,
    },
    /// A column of a type the operation cannot use.
    NotNumeric {
        column: String,
        data_type: DataType,
    },
    /// A numeric column with nulls asked for as a dense slice.
    Nulls {
        column: String,
        count: usize,
    },
    /// An argument out of its domain (batch size 0, a split fraction outside (0, 1)).
    Invalid(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Corrupt { path, reason } => {
                write!(
                    f,
                    "{}: not a readable file of its format: {reason}",
                    path.display()
                )
            }
            Error::UnknownFormat(path) => write!(
                f,
                "{}: unknown format (expected .csv, .parquet or .arrow/.feather/.ipc)",
                path.display()
            ),
            Error::MissingColumn { column, available } => {
                write!(f, "no column {column:?}; the columns are {available:?}")
            }
            Error::SchemaMismatch { expected, found } => {
                write!(f, "schema mismatch: expected {expected}, found {found}")
            }
            Error::NotNumeric { column, data_type } => {
                write!(f, "column {column:?} is {data_type}, not a number")
            }
            Error::Nulls { column, count } => write!(
                f,
                "column {column:?} has {count} nulls; fill or drop them before asking for a dense slice"
            ),
            Error::Invalid(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn corrupt(path: &Path, e: impl fmt::Display) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// A table in memory: a schema and its record batches.
#[derive(Debug, Clone)]
pub struct Dataset {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    /// Parquet row groups skipped by the filter's statistics, of all row groups.
    pub row_groups_pruned: usize,
    pub row_groups_total: usize,
}

impl Dataset {
    /// Read `path` in the format its extension names.
    pub fn open(path: impl AsRef<Path>, options: &Options) -> Result<Dataset> {
        let path = path.as_ref();
        Dataset::open_as(path, Format::from_path(path)?, options)
    }

    /// Read `path` as `format`.
    pub fn open_as(path: impl AsRef<Path>, format: Format, options: &Options) -> Result<Dataset> {
        let path = path.as_ref();
        if options.batch_size == 0 {
            return Err(Error::Invalid("batch_size must be at least 1".into()));
        }
        let file = File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // Decode the requested columns and the filter's; filter; then keep what was asked.
        let decode = options.columns.as_ref().map(|cols| {
            let mut cols = cols.clone();
            if let Some(r) = &options.filter
                && !cols.contains(&r.column)
            {
                cols.push(r.column.clone());
            }
            cols
        });
        let mut ds = match format {
            Format::Csv => read_csv(path, file, &decode, options)?,
            Format::Parquet => read_parquet(path, file, &decode, options)?,
            Format::ArrowIpc => read_ipc(path, file, &decode)?,
        };
        if let Some(range) = &options.filter {
            ds = ds.filter(range)?;
        }
        let ds = reorder(ds, &options.columns)?;
        if let Some(expected) = &options.expect_schema {
            check_schema(expected, &ds.schema)?;
        }
        Ok(ds)
    }

    /// A dataset of the given batches (all must have `schema`).
    pub fn from_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Dataset> {
        for b in &batches {
            check_schema(&schema, &b.schema())?;
        }
        Ok(Dataset {
            schema,
            batches,
            row_groups_pruned: 0,
            row_groups_total: 0,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    pub fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    fn index_of(&self, column: &str) -> Result<usize> {
        self.schema
            .index_of(column)
            .map_err(|_| Error::MissingColumn {
                column: column.to_owned(),
                available: self.column_names(),
            })
    }

    /// One column as a single Arrow array (concatenated across batches).
    pub fn column(&self, column: &str) -> Result<ArrayRef> {
        let i = self.index_of(column)?;
        let parts: Vec<&dyn Array> = self.batches.iter().map(|b| b.column(i).as_ref()).collect();
        if parts.is_empty() {
            return Ok(arrow_array::new_empty_array(
                self.schema.field(i).data_type(),
            ));
        }
        arrow_select::concat::concat(&parts).map_err(|e| Error::Invalid(e.to_string()))
    }

    /// A numeric column as contiguous f64: borrowed from Arrow's buffer when it is one
    /// batch of Float64 without nulls, otherwise converted once (ints, f32, several
    /// batches). Nulls are an error: trueno's kernels take dense slices.
    pub fn column_f64(&self, column: &str) -> Result<Cow<'_, [f64]>> {
        let i = self.index_of(column)?;
        dense(self, i, column, |a| {
            a.as_primitive_opt::<Float64Type>()
                .map(|p| p.values().as_ref())
        })
    }

    /// A numeric column as contiguous f32 (borrowed when the file stored Float32).
    pub fn column_f32(&self, column: &str) -> Result<Cow<'_, [f32]>> {
        let i = self.index_of(column)?;
        dense(self, i, column, |a| {
            a.as_primitive_opt::<Float32Type>()
                .map(|p| p.values().as_ref())
        })
    }

    /// Several numeric columns as one row-major f32 matrix (rows x columns), the
    /// layout trueno's matrix kernels and aprender's models take.
    pub fn matrix_f32(&self, columns: &[&str]) -> Result<Vec<f32>> {
        let cols: Vec<Cow<'_, [f32]>> = columns
            .iter()
            .map(|c| self.column_f32(c))
            .collect::<Result<_>>()?;
        let n = self.num_rows();
        let mut out = vec![0.0f32; n * cols.len()];
        for (j, col) in cols.iter().enumerate() {
            for (r, &v) in col.iter().enumerate() {
                out[r * cols.len() + j] = v;
            }
        }
        Ok(out)
    }

    /// The rows whose `range.column` lies in `[min, max]`.
    pub fn filter(&self, range: &Range) -> Result<Dataset> {
        let i = self.index_of(&range.column)?;
        let mut batches = Vec::with_capacity(self.batches.len());
        for b in &self.batches {
            let values = as_f64(b.column(i), &range.column)?;
            let mask: BooleanArray = values
                .iter()
                .map(|v| Some(v.is_some_and(|v| in_range(v, range))))
                .collect();
            batches.push(
                arrow_select::filter::filter_record_batch(b, &mask)
                    .map_err(|e| Error::Invalid(e.to_string()))?,
            );
        }
        Ok(Dataset {
            batches,
            ..self.clone()
        })
    }

    /// The rows in a seeded random order (one batch).
    pub fn shuffled(&self, seed: u64) -> Result<Dataset> {
        let mut order: Vec<u32> = (0..self.num_rows() as u32).collect();
        trueno::rng::Rng::new(seed).shuffle(&mut order);
        self.take(&order)
    }

    /// A seeded split into (train, test) with `round(test_fraction * rows)` test rows.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            return Err(Error::Invalid(format!(
                "test_fraction must lie strictly between 0 and 1, got {test_fraction}"
            )));
        }
        let n = self.num_rows();
        let mut order: Vec<u32> = (0..n as u32).collect();
        trueno::rng::Rng::new(seed).shuffle(&mut order);
        let n_test = ((n as f64) * test_fraction).round() as usize;
        let (test, train) = order.split_at(n_test);
        Ok((self.take(train)?, self.take(test)?))
    }

    /// Record batches of at most `size` rows (zero-copy slices of the loaded ones).
    pub fn rebatch(&self, size: usize) -> Result<Vec<RecordBatch>> {
        if size == 0 {
            return Err(Error::Invalid("batch size must be at least 1".into()));
        }
        let mut out = Vec::new();
        for b in &self.batches {
            let mut start = 0;
            while start < b.num_rows() {
                let len = size.min(b.num_rows() - start);
                out.push(b.slice(start, len));
                start += len;
            }
        }
        Ok(out)
    }

    fn take(&self, rows: &[u32]) -> Result<Dataset> {
        let indices = UInt32Array::from(rows.to_vec());
        let columns: Vec<ArrayRef> = (0..self.schema.fields().len())
            .map(|i| {
                let col = self.column(self.schema.field(i).name())?;
                arrow_select::take::take(col.as_ref(), &indices, None)
                    .map_err(|e| Error::Invalid(e.to_string()))
            })
            .collect::<Result<_>>()?;
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(Dataset {
            batches: vec![batch],
            ..self.clone()
        })
    }
}

fn in_range(v: f64, r: &Range) -> bool {
    !v.is_nan() && r.min.is_none_or(|lo| v >= lo) && r.max.is_none_or(|hi| v <= hi)
}

/// A numeric column cast to f64 (nulls kept as nulls).
fn as_f64(a: &ArrayRef, column: &str) -> Result<arrow_array::Float64Array> {
    if !a.data_type().is_numeric() {
        return Err(Error::NotNumeric {
            column: column.to_owned(),
            data_type: a.data_type().clone(),
        });
    }
    let c = cast_float(a, &DataType::Float64)
        .map_err(|e| Error::Invalid(format!("column {column:?}: {e}")))?;
    Ok(c.as_primitive::<Float64Type>().clone())
}

/// Numeric casts without the arrow-cast crate: every primitive numeric type to f32/f64.
fn cast_float(a: &ArrayRef, to: &DataType) -> std::result::Result<ArrayRef, ArrowError> {
    use arrow_array::types::*;
    macro_rules! to_float {
        ($($t:ty),*) => {
            $(
                if let Some(p) = a.as_primitive_opt::<$t>() {
                    return Ok(match to {
                        DataType::Float64 => Arc::new(p.unary::<_, Float64Type>(|v| v as f64)) as ArrayRef,
                        DataType::Float32 => Arc::new(p.unary::<_, Float32Type>(|v| v as f32)) as ArrayRef,
                        other => return Err(ArrowError::CastError(format!("to {other}"))),
                    });
                }
            )*
        };
    }
    to_float!(
        Int8Type,
        Int16Type,
        Int32Type,
        Int64Type,
        UInt8Type,
        UInt16Type,
        UInt32Type,
        UInt64Type,
        Float32Type,
        Float64Type
    );
    Err(ArrowError::CastError(format!("{} to {to}", a.data_type())))
}

fn dense<'a, T: Copy + FromF64 + 'static>(
    ds: &'a Dataset,
    i: usize,
    column: &str,
    borrow: impl Fn(&'a ArrayRef) -> Option<&'a [T]>,
) -> Result<Cow<'a, [T]>> {
    let nulls: usize = ds.batches.iter().map(|b| b.column(i).null_count()).sum();
    if nulls > 0 {
        return Err(Error::Nulls {
            column: column.to_owned(),
            count: nulls,
        });
    }
    let dt = ds.schema.field(i).data_type();
    if !dt.is_numeric() {
        return Err(Error::NotNumeric {
            column: column.to_owned(),
            data_type: dt.clone(),
        });
    }
    if let [only] = ds.batches.as_slice()
        && let Some(values) = borrow(only.column(i))
    {
        return Ok(Cow::Borrowed(values));
    }
    let mut out = Vec::with_capacity(ds.num_rows());
    for b in &ds.batches {
        let c = cast_float(b.column(i), &T::DATA_TYPE)
            .map_err(|e| Error::Invalid(format!("column {column:?}: {e}")))?;
        out.extend(T::values(&c));
    }
    Ok(Cow::Owned(out))
}

/// The two float types a column is handed to trueno as.
trait FromF64: Sized {
    const DATA_TYPE: DataType;
    fn values(a: &ArrayRef) -> Vec<Self>;
}

impl FromF64 for f64 {
    const DATA_TYPE: DataType = DataType::Float64;
    fn values(a: &ArrayRef) -> Vec<f64> {
        a.as_primitive::<Float64Type>().values().to_vec()
    }
}

impl FromF64 for f32 {
    const DATA_TYPE: DataType = DataType::Float32;
    fn values(a: &ArrayRef) -> Vec<f32> {
        a.as_primitive::<Float32Type>().values().to_vec()
    }
}

fn check_schema(expected: &Schema, found: &Schema) -> Result<()> {
    let shape = |s: &Schema| -> Vec<(String, DataType)> {
        s.fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    };
    if shape(expected) == shape(found) {
        return Ok(());
    }
    let show = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(Error::SchemaMismatch {
        expected: format!("[{}]", show(expected)),
        found: format!("[{}]", show(found)),
    })
}

/// Project a schema onto `columns` (indices in file order are what readers take).
fn projection(schema: &Schema, columns: &Option<Vec<String>>) -> Result<Option<Vec<usize>>> {
    let Some(columns) = columns else {
        return Ok(None);
    };
    let available = || schema.fields().iter().map(|f| f.name().clone()).collect();
    columns
        .iter()
        .map(|c| {
            schema.index_of(c).map_err(|_| Error::MissingColumn {
                column: c.clone(),
                available: available(),
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Reorder a projected dataset's columns into the order the caller asked for.
fn reorder(ds: Dataset, columns: &Option<Vec<String>>) -> Result<Dataset> {
    let Some(columns) = columns else {
        return Ok(ds);
    };
    let idx: Vec<usize> = columns
        .iter()
        .map(|c| ds.index_of(c))
        .collect::<Result<_>>()?;
    let schema = Arc::new(
        ds.schema
            .project(&idx)
            .map_err(|e| Error::Invalid(e.to_string()))?,
    );
    let batches = ds
        .batches
        .iter()
        .map(|b| b.project(&idx).map_err(|e| Error::Invalid(e.to_string())))
        .collect::<Result<_>>()?;
    Ok(Dataset {
        schema,
        batches,
        ..ds
    })
}

fn read_csv(
    path: &Path,
    mut file: File,
    columns: &Option<Vec<String>>,
    o: &Options,
) -> Result<Dataset> {
    use std::io::Seek;
    let mut format = arrow_csv::reader::Format::default()
        .with_header(o.csv_header)
        .with_delimiter(o.csv_delimiter);
    if let Some(nulls) = &o.csv_nulls {
        let re = regex::Regex::new(nulls)
            .map_err(|e| Error::Invalid(format!("csv_nulls is not a regex: {e}")))?;
        format = format.with_null_regex(re);
    }
    let (schema, _) = format
        .infer_schema(&mut file, o.csv_infer_rows)
        .map_err(|e| corrupt(path, e))?;
    file.rewind().map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let schema = Arc::new(schema);
    let proj = projection(&schema, columns)?;
    let mut builder = arrow_csv::ReaderBuilder::new(schema.clone())
        .with_format(format)
        .with_batch_size(o.batch_size);
    if let Some(p) = &proj {
        let mut sorted = p.clone();
        sorted.sort_unstable();
        builder = builder.with_projection(sorted);
    }
    let reader = builder.build(file).map_err(|e| corrupt(path, e))?;
    let batches: Vec<RecordBatch> = reader
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| corrupt(path, e))?;
    let out_schema = match &proj {
        Some(p) => {
            let mut sorted = p.clone();
            sorted.sort_unstable();
            Arc::new(schema.project(&sorted).map_err(|e| corrupt(path, e))?)
        }
        None => schema,
    };
    Ok(Dataset {
        schema: out_schema,
        batches,
        row_groups_pruned: 0,
        row_groups_total: 0,
    })
}

fn read_ipc(path: &Path, file: File, columns: &Option<Vec<String>>) -> Result<Dataset> {
    let probe =
        arrow_ipc::reader::FileReader::try_new(&file, None).map_err(|e| corrupt(path, e))?;
    let proj = projection(&probe.schema(), columns)?;
    drop(probe);
    let sorted = proj.map(|mut p| {
        p.sort_unstable();
        p
    });
    let reader =
        arrow_ipc::reader::FileReader::try_new(file, sorted).map_err(|e| corrupt(path, e))?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| corrupt(path, e))?;
    Ok(Dataset {
        schema,
        batches,
        row_groups_pruned: 0,
        row_groups_total: 0,
    })
}

/// Whether a row group's statistics for the filter column admit any row of the range.
fn row_group_may_match(stats: Option<&Statistics>, r: &Range) -> bool {
    let bounds = match stats {
        Some(Statistics::Int32(s)) => s
            .min_opt()
            .zip(s.max_opt())
            .map(|(a, b)| (f64::from(*a), f64::from(*b))),
        Some(Statistics::Int64(s)) => s
            .min_opt()
            .zip(s.max_opt())
            .map(|(a, b)| (*a as f64, *b as f64)),
        Some(Statistics::Float(s)) => s
            .min_opt()
            .zip(s.max_opt())
            .map(|(a, b)| (f64::from(*a), f64::from(*b))),
        Some(Statistics::Double(s)) => s.min_opt().zip(s.max_opt()).map(|(a, b)| (*a, *b)),
        _ => None,
    };
    // Without statistics (or with NaN bounds) the group must be read.
    let Some((lo, hi)) = bounds else { return true };
    if lo.is_nan() || hi.is_nan() {
        return true;
    }
    r.min.is_none_or(|m| hi >= m) && r.max.is_none_or(|m| lo <= m)
}

fn read_parquet(
    path: &Path,
    file: File,
    columns: &Option<Vec<String>>,
    o: &Options,
) -> Result<Dataset> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(path, e))?;
    let arrow_schema = builder.schema().clone();
    let proj = projection(&arrow_schema, columns)?;
    let meta = builder.metadata().clone();
    let total = meta.num_row_groups();
    let mut groups: Vec<usize> = (0..total).collect();
    if let Some(r) = &o.filter {
        let leaf = meta
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .position(|c| c.path().string() == r.column);
        if let Some(leaf) = leaf {
            groups.retain(|&g| row_group_may_match(meta.row_group(g).column(leaf).statistics(), r));
        }
    }
    let mut builder = builder
        .with_batch_size(o.batch_size)
        .with_row_groups(groups.clone());
    if let Some(p) = &proj {
        let mask = ProjectionMask::roots(builder.parquet_schema(), p.clone());
        builder = builder.with_projection(mask);
    }
    let reader = builder.build().map_err(|e| corrupt(path, e))?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| corrupt(path, e))?;
    Ok(Dataset {
        schema,
        batches,
        row_groups_pruned: total - groups.len(),
        row_groups_total: total,
    })
}

#[cfg(test)]
mod tests;
