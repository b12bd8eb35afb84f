//! Round trips through the field's writers, projection, pruning, dense columns, and
//! files that lie: every prefix of a valid file is read without a panic.

use super::*;
use arrow_array::{Float32Array, Float64Array, Int64Array, StringArray};
use arrow_schema::Field;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use proptest::prelude::*;
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alimentar-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// 1000 rows: id 0..1000, amount = id * 0.5 (f64), score (f32), a name, a nullable x.
fn table() -> (SchemaRef, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("score", DataType::Float32, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("x", DataType::Float64, true),
    ]));
    let n = 1000i64;
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..n)),
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| i as f64 * 0.5),
            )),
            Arc::new(Float32Array::from_iter_values(
                (0..n).map(|i| (i % 7) as f32),
            )),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("naïve {i} ✓")),
            )),
            Arc::new(Float64Array::from_iter(
                (0..n).map(|i| (i % 10 != 0).then_some(i as f64)),
            )),
        ],
    )
    .unwrap();
    (schema, batch)
}

fn write_parquet(path: &Path, row_group: usize) {
    let (schema, batch) = table();
    let props = WriterProperties::builder()
        .set_max_row_group_size(row_group)
        .build();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn write_ipc(path: &Path) {
    let (schema, batch) = table();
    let mut w =
        arrow_ipc::writer::FileWriter::try_new(File::create(path).unwrap(), &schema).unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
}

fn write_csv(path: &Path) {
    let (_, batch) = table();
    let mut w = arrow_csv::Writer::new(File::create(path).unwrap());
    w.write(&batch).unwrap();
}

#[test]
fn every_format_round_trips_values_and_nulls() {
    let (_, want) = table();
    let parquet: fn(&Path) = |p| write_parquet(p, 128);
    for (name, write) in [
        ("t.parquet", parquet),
        ("t.arrow", write_ipc as fn(&Path)),
        ("t.csv", write_csv),
    ] {
        let path = scratch(name);
        write(&path);
        let ds = Dataset::open(&path, &Options::default()).unwrap();
        assert_eq!(ds.num_rows(), 1000, "{name}");
        assert_eq!(
            ds.column_f64("amount").unwrap().as_ref(),
            want.column(1)
                .as_primitive::<Float64Type>()
                .values()
                .as_ref()
        );
        let x = ds.column("x").unwrap();
        assert_eq!(x.null_count(), 100, "{name}: nulls survive");
        let names = ds.column("name").unwrap();
        assert_eq!(
            names.as_string::<i32>().value(7),
            "naïve 7 ✓",
            "{name}: unicode"
        );
        assert!(matches!(
            ds.column_f64("x"),
            Err(Error::Nulls { count: 100, .. })
        ));
        assert!(matches!(
            ds.column_f64("name"),
            Err(Error::NotNumeric { .. })
        ));
        assert!(matches!(
            ds.column("nope"),
            Err(Error::MissingColumn { .. })
        ));
    }
}

#[test]
fn a_float_column_of_one_batch_is_borrowed_not_copied() {
    let path = scratch("borrow.arrow");
    write_ipc(&path);
    let o = Options {
        batch_size: 1 << 20,
        ..Options::default()
    };
    let ds = Dataset::open(&path, &o).unwrap();
    assert_eq!(ds.batches().len(), 1);
    assert!(matches!(ds.column_f64("amount").unwrap(), Cow::Borrowed(_)));
    assert!(matches!(ds.column_f32("score").unwrap(), Cow::Borrowed(_)));
    // Another type is converted once.
    let ids = ds.column_f32("id").unwrap();
    assert!(matches!(ids, Cow::Owned(_)));
    assert_eq!(ids[999], 999.0);
}

#[test]
fn projection_keeps_the_asked_order_and_pruning_skips_row_groups() {
    let path = scratch("prune.parquet");
    write_parquet(&path, 100); // ten row groups of 100 ids each
    let o = Options {
        columns: Some(vec!["amount".into(), "id".into()]),
        filter: Some(Range {
            column: "id".into(),
            min: Some(250.0),
            max: Some(349.0),
        }),
        ..Options::default()
    };
    let ds = Dataset::open(&path, &o).unwrap();
    assert_eq!(ds.column_names(), ["amount", "id"]);
    assert_eq!((ds.row_groups_pruned, ds.row_groups_total), (8, 10));
    let ids = ds.column_f64("id").unwrap();
    assert_eq!(ids.first().copied(), Some(250.0));
    assert_eq!(ids.len(), 100);
    // The filter column may be left out of the projection.
    let o = Options {
        columns: Some(vec!["score".into()]),
        ..o
    };
    let ds = Dataset::open(&path, &o).unwrap();
    assert_eq!(ds.column_names(), ["score"]);
    assert_eq!(ds.num_rows(), 100);
    // Same answer from CSV, which has no statistics to prune with.
    let csv = scratch("prune.csv");
    write_csv(&csv);
    let ds = Dataset::open(&csv, &o).unwrap();
    assert_eq!((ds.num_rows(), ds.row_groups_pruned), (100, 0));
}

#[test]
fn schema_expectations_and_bad_arguments_are_errors() {
    let path = scratch("schema.arrow");
    write_ipc(&path);
    let expect = Arc::new(Schema::new(vec![Field::new("id", DataType::Int32, false)]));
    let o = Options {
        columns: Some(vec!["id".into()]),
        expect_schema: Some(expect),
        ..Options::default()
    };
    let err = Dataset::open(&path, &o).unwrap_err().to_string();
    assert!(
        err.contains("expected [id: Int32], found [id: Int64]"),
        "{err}"
    );
    let o = Options {
        batch_size: 0,
        ..Options::default()
    };
    assert!(matches!(Dataset::open(&path, &o), Err(Error::Invalid(_))));
    assert!(matches!(
        Dataset::open("data.xlsx", &Options::default()),
        Err(Error::UnknownFormat(_))
    ));
    assert!(matches!(
        Dataset::open(scratch("missing.csv"), &Options::default()),
        Err(Error::Io { .. })
    ));
    let ds = Dataset::open(&path, &Options::default()).unwrap();
    assert!(ds.split(0.0, 1).is_err());
    assert!(ds.split(f64::NAN, 1).is_err());
}

#[test]
fn shuffle_and_split_are_seeded_permutations() {
    let path = scratch("shuffle.arrow");
    write_ipc(&path);
    let ds = Dataset::open(&path, &Options::default()).unwrap();
    let a = ds
        .shuffled(7)
        .unwrap()
        .column_f64("amount")
        .unwrap()
        .into_owned();
    let b = ds
        .shuffled(7)
        .unwrap()
        .column_f64("amount")
        .unwrap()
        .into_owned();
    assert_eq!(a, b);
    assert_ne!(a, ds.column_f64("amount").unwrap().into_owned());
    let mut sorted = a.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(sorted, ds.column_f64("amount").unwrap().into_owned());
    let (train, test) = ds.split(0.25, 3).unwrap();
    assert_eq!((train.num_rows(), test.num_rows()), (750, 250));
    let mut ids: Vec<f64> = train
        .column_f64("id")
        .unwrap()
        .iter()
        .chain(test.column_f64("id").unwrap().iter())
        .copied()
        .collect();
    ids.sort_by(f64::total_cmp);
    assert_eq!(ids, (0..1000).map(f64::from).collect::<Vec<_>>());
    // Rows stay whole: amount is still id / 2 after the shuffle.
    let (id, amount) = (
        test.column_f64("id").unwrap(),
        test.column_f64("amount").unwrap(),
    );
    assert!(id.iter().zip(amount.iter()).all(|(i, a)| *a == i * 0.5));
    let batches = ds.rebatch(300).unwrap();
    assert_eq!(
        batches
            .iter()
            .map(RecordBatch::num_rows)
            .collect::<Vec<_>>(),
        [300, 300, 300, 100]
    );
    let m = ds.matrix_f32(&["id", "score"]).unwrap();
    assert_eq!(&m[2 * 9..2 * 9 + 2], &[9.0, 2.0]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// A truncated or bit-flipped file is an error or (for a flip in a value) a clean
    /// read; it never panics and never allocates what the file claims unchecked.
    #[test]
    fn truncated_and_corrupted_files_never_panic(cut in 0.0f64..1.0, flip in any::<Option<(usize, u8)>>(), fmt in 0usize..3) {
        let (name, writer): (&str, fn(&Path)) = match fmt {
            0 => ("c.parquet", |p: &Path| write_parquet(p, 128)),
            1 => ("c.arrow", write_ipc),
            _ => ("c.csv", write_csv),
        };
        let good = scratch(&format!("good-{name}"));
        writer(&good);
        let mut bytes = std::fs::read(&good).unwrap();
        bytes.truncate((bytes.len() as f64 * cut) as usize);
        if let Some((at, bit)) = flip && !bytes.is_empty() {
            let at = at % bytes.len();
            bytes[at] ^= 1 << (bit % 8);
        }
        let bad = scratch(&format!("bad-{}-{name}", std::process::id()));
        std::fs::write(&bad, &bytes).unwrap();
        let _ = Dataset::open(&bad, &Options::default());
    }
}
