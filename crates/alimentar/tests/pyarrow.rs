//! alimentar reads what pyarrow reads: values and nulls of files pyarrow wrote
//! (tests/fixtures, made by make_fixtures.py with pyarrow 25.0.1) equal pyarrow's own
//! reading of them, recorded in expected.json.

use alimentar::{Dataset, Options, Range};
use arrow_array::Array;
use arrow_array::cast::AsArray;
use serde_json::Value;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap()
}

/// One column as JSON values the way make_fixtures.py wrote pyarrow's (NaN as "NaN").
fn as_json(ds: &Dataset, name: &str) -> Vec<Value> {
    let col = ds.column(name).unwrap();
    if let Some(s) = col.as_string_opt::<i32>() {
        return (0..s.len())
            .map(|i| {
                if s.is_null(i) {
                    Value::Null
                } else {
                    Value::from(s.value(i))
                }
            })
            .collect();
    }
    let f = ds.column(name).unwrap();
    let floats = arrow_array::Float64Array::from(
        (0..f.len())
            .map(|i| {
                if f.is_null(i) {
                    None
                } else {
                    Some(numeric_at(&f, i))
                }
            })
            .collect::<Vec<_>>(),
    );
    (0..floats.len())
        .map(|i| {
            if floats.is_null(i) {
                Value::Null
            } else if floats.value(i).is_nan() {
                Value::from("NaN")
            } else {
                Value::from(floats.value(i))
            }
        })
        .collect()
}

fn numeric_at(a: &arrow_array::ArrayRef, i: usize) -> f64 {
    use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
    if let Some(p) = a.as_primitive_opt::<Float64Type>() {
        p.value(i)
    } else if let Some(p) = a.as_primitive_opt::<Float32Type>() {
        f64::from(p.value(i))
    } else if let Some(p) = a.as_primitive_opt::<Int64Type>() {
        p.value(i) as f64
    } else if let Some(p) = a.as_primitive_opt::<Int32Type>() {
        f64::from(p.value(i))
    } else {
        panic!("unexpected type {}", a.data_type())
    }
}

fn same(got: &[Value], want: &[Value]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| match (g.as_f64(), w.as_f64()) {
                (Some(a), Some(b)) => a == b,
                _ => g == w,
            })
}

#[test]
fn every_format_reads_as_pyarrow_reads_it() {
    let want = expected();
    for (format, file) in [
        ("parquet", "pyarrow.parquet"),
        ("arrow", "pyarrow.arrow"),
        ("csv", "pyarrow.csv"),
    ] {
        let ds = Dataset::open(fixture(file), &Options::default()).unwrap();
        let w = &want[format];
        assert_eq!(
            ds.num_rows() as u64,
            w["rows"].as_u64().unwrap(),
            "{format}"
        );
        for (name, values) in w["columns"].as_object().unwrap() {
            let got = as_json(&ds, name);
            assert!(
                same(&got, values.as_array().unwrap()),
                "{format}.{name}: alimentar {:?}... vs pyarrow {:?}...",
                &got[..6],
                &values.as_array().unwrap()[..6]
            );
        }
    }
}

#[test]
fn parquet_statistics_prune_pyarrows_row_groups() {
    // Four row groups of 50 ids; ids 120..=130 live in the third only.
    let o = Options {
        columns: Some(vec!["merchant".into()]),
        filter: Some(Range {
            column: "id".into(),
            min: Some(120.0),
            max: Some(130.0),
        }),
        ..Options::default()
    };
    let ds = Dataset::open(fixture("pyarrow.parquet"), &o).unwrap();
    assert_eq!((ds.row_groups_pruned, ds.row_groups_total), (3, 4));
    assert_eq!(ds.num_rows(), 11);
    assert_eq!(ds.column_names(), ["merchant"]);
}
