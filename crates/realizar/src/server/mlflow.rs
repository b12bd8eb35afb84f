//! The MLflow scoring protocol: turning a `POST /invocations` JSON body into a matrix.
//!
//! MLflow accepts four shapes of input (see "Deploy MLflow models", *Local REST API*):
//! `dataframe_split` (`{"columns": [...], "data": [[...], ...]}`), `dataframe_records`
//! (`[{"col": value, ...}, ...]`), and the TF-serving style `instances` / `inputs`
//! (a list of rows, a list of records, or for `inputs` a dict of columns). Columns are
//! matched to the model's features by name when the model was fitted with names, by
//! integer position (`"0"`, `"1"`, ... as pandas writes them) or else in the given order.

use serde_json::{Map, Value};

/// The keys of a scoring request that carry input.
pub(crate) const INPUT_KEYS: [&str; 4] = [
    "dataframe_split",
    "dataframe_records",
    "instances",
    "inputs",
];

/// A rejected request: what was wrong, and whether it was only too big (413) rather
/// than malformed (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadInput(pub(crate) String, pub(crate) Rejection);

/// Why a request is refused, which is what decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    Malformed,
    TooLarge,
}

fn bad<T>(message: impl Into<String>) -> Result<T, BadInput> {
    Err(BadInput(message.into(), Rejection::Malformed))
}

/// Where the model's features sit among the request's columns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schema<'a> {
    pub(crate) n_features: usize,
    pub(crate) feature_names: Option<&'a [String]>,
    pub(crate) max_rows: usize,
}

/// A dense row-major float64 matrix built from a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Matrix {
    pub(crate) data: Vec<f64>,
    pub(crate) rows: usize,
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn number(v: &Value, row: usize, col: &dyn std::fmt::Display) -> Result<f64, BadInput> {
    match v.as_f64() {
        Some(x) if x.is_finite() => Ok(x),
        _ => bad(format!(
            "row {row}, column {col}: expected a finite number, got {}",
            describe(v)
        )),
    }
}

impl Schema<'_> {
    fn check_rows(&self, rows: usize) -> Result<(), BadInput> {
        if rows > self.max_rows {
            return Err(BadInput(
                format!(
                    "batch of {rows} rows exceeds the limit of {} rows per request",
                    self.max_rows
                ),
                Rejection::TooLarge,
            ));
        }
        Ok(())
    }

    fn count_mismatch<T>(&self, got: usize, what: &str) -> Result<T, BadInput> {
        bad(format!(
            "{what} has {got} features, but the model expects {} features",
            self.n_features
        ))
    }

    /// For each model feature, the index of the request column that holds it.
    fn positions(&self, columns: &[&str]) -> Result<Vec<usize>, BadInput> {
        if let Some(names) = self.feature_names {
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                match columns.iter().position(|c| c == name) {
                    Some(p) => out.push(p),
                    None => {
                        return bad(format!(
                            "missing column {name:?}: the model expects columns {names:?}"
                        ));
                    }
                }
            }
            if columns.len() != names.len() {
                let extra: Vec<_> = columns
                    .iter()
                    .filter(|c| !names.iter().any(|n| n == *c))
                    .collect();
                return bad(format!(
                    "unexpected columns {extra:?}: the model expects columns {names:?}"
                ));
            }
            return Ok(out);
        }
        if columns.len() != self.n_features {
            return self.count_mismatch(columns.len(), "the input");
        }
        // Columns named 0..n-1 (a DataFrame built from an array) are positions.
        let mut by_index: Vec<Option<usize>> = vec![None; self.n_features];
        for (p, c) in columns.iter().enumerate() {
            match c.parse::<usize>() {
                Ok(i) if i < self.n_features && by_index[i].is_none() => by_index[i] = Some(p),
                _ => return Ok((0..self.n_features).collect()),
            }
        }
        Ok(by_index
            .into_iter()
            .map(|p| p.expect("a permutation of 0..n"))
            .collect())
    }

    fn rows_matrix(&self, rows: &[Value], columns: Option<&[&str]>) -> Result<Matrix, BadInput> {
        self.check_rows(rows.len())?;
        let positions = match columns {
            Some(c) => self.positions(c)?,
            None => (0..self.n_features).collect(),
        };
        let width = columns.map_or(self.n_features, <[&str]>::len);
        let mut data = Vec::with_capacity(rows.len() * self.n_features);
        for (r, row) in rows.iter().enumerate() {
            let Value::Array(values) = row else {
                return bad(format!(
                    "row {r}: expected a list of numbers, got {}",
                    describe(row)
                ));
            };
            if values.len() != width {
                return self.count_mismatch(values.len(), &format!("row {r}"));
            }
            for &p in &positions {
                let name: &dyn std::fmt::Display = &p;
                data.push(number(&values[p], r, name)?);
            }
        }
        Ok(Matrix {
            data,
            rows: rows.len(),
        })
    }

    fn records_matrix(&self, records: &[Value]) -> Result<Matrix, BadInput> {
        self.check_rows(records.len())?;
        let Some(first) = records.first() else {
            return Ok(Matrix {
                data: Vec::new(),
                rows: 0,
            });
        };
        let Value::Object(first) = first else {
            return bad(format!(
                "record 0: expected an object of column: value, got {}",
                describe(first)
            ));
        };
        let columns: Vec<&str> = first.keys().map(String::as_str).collect();
        let positions = self.positions(&columns)?;
        let mut data = Vec::with_capacity(records.len() * self.n_features);
        for (r, rec) in records.iter().enumerate() {
            let Value::Object(rec) = rec else {
                return bad(format!(
                    "record {r}: expected an object of column: value, got {}",
                    describe(rec)
                ));
            };
            for &p in &positions {
                let col = columns[p];
                let Some(v) = rec.get(col) else {
                    return bad(format!("record {r}: missing column {col:?}"));
                };
                data.push(number(v, r, &format!("{col:?}"))?);
            }
            if rec.len() != columns.len() {
                return bad(format!(
                    "record {r} has {} columns, record 0 has {}",
                    rec.len(),
                    columns.len()
                ));
            }
        }
        Ok(Matrix {
            data,
            rows: records.len(),
        })
    }

    fn columns_matrix(&self, cols: &Map<String, Value>) -> Result<Matrix, BadInput> {
        let columns: Vec<&str> = cols.keys().map(String::as_str).collect();
        let positions = self.positions(&columns)?;
        let mut lists = Vec::with_capacity(columns.len());
        for (name, v) in cols {
            let Value::Array(values) = v else {
                return bad(format!(
                    "column {name:?}: expected a list of values, got {}",
                    describe(v)
                ));
            };
            lists.push(values);
        }
        let rows = lists.first().map_or(0, |l| l.len());
        self.check_rows(rows)?;
        if let Some((name, l)) = columns.iter().zip(&lists).find(|(_, l)| l.len() != rows) {
            return bad(format!(
                "column {name:?} has {} values, the first column has {rows}",
                l.len()
            ));
        }
        let nf = self.n_features;
        let mut data = vec![0.0; rows * nf];
        for (j, &p) in positions.iter().enumerate() {
            for (r, v) in lists[p].iter().enumerate() {
                data[r * nf + j] = number(v, r, &format!("{:?}", columns[p]))?;
            }
        }
        Ok(Matrix { data, rows })
    }

    /// Parse a scoring request body.
    pub(crate) fn parse(&self, body: &Value) -> Result<Matrix, BadInput> {
        let Value::Object(obj) = body else {
            return bad(format!(
                "the request body must be a JSON object with one of the keys {INPUT_KEYS:?}, got {}",
                describe(body)
            ));
        };
        let present: Vec<&str> = INPUT_KEYS
            .iter()
            .copied()
            .filter(|k| obj.contains_key(*k))
            .collect();
        let key = match present[..] {
            [key] => key,
            [] => {
                let keys: Vec<&String> = obj.keys().collect();
                return bad(format!(
                    "the request needs one of the keys {INPUT_KEYS:?}; it has {keys:?}"
                ));
            }
            _ => {
                return bad(format!(
                    "the request has several input keys {present:?}: send exactly one"
                ));
            }
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !INPUT_KEYS.contains(&k.as_str()) && *k != "params")
        {
            return bad(format!(
                "unknown key {k:?}: a request has one of {INPUT_KEYS:?} and optionally \"params\""
            ));
        }
        let v = &obj[key];
        match (key, v) {
            ("dataframe_split", Value::Object(split)) => {
                let Some(data) = split.get("data") else {
                    return bad("dataframe_split needs a \"data\" list of rows");
                };
                let Value::Array(rows) = data else {
                    return bad(format!(
                        "dataframe_split.data must be a list of rows, got {}",
                        describe(data)
                    ));
                };
                match split.get("columns") {
                    None => self.rows_matrix(rows, None),
                    Some(Value::Array(cols)) => {
                        let names: Vec<&str> = cols
                            .iter()
                            .map(|c| match c {
                                Value::String(s) => Ok(s.as_str()),
                                other => bad(format!(
                                    "dataframe_split.columns must be strings, got {}",
                                    describe(other)
                                )),
                            })
                            .collect::<Result<_, _>>()?;
                        self.rows_matrix(rows, Some(&names))
                    }
                    Some(other) => bad(format!(
                        "dataframe_split.columns must be a list, got {}",
                        describe(other)
                    )),
                }
            }
            ("dataframe_records", Value::Array(records)) => self.records_matrix(records),
            ("instances" | "inputs", Value::Array(items)) => match items.first() {
                Some(Value::Object(_)) => self.records_matrix(items),
                Some(Value::Array(_)) | None => self.rows_matrix(items, None),
                Some(other) => bad(format!(
                    "{key} must be a list of rows (lists of numbers) or records, but its first item is {}",
                    describe(other)
                )),
            },
            ("inputs", Value::Object(cols)) => self.columns_matrix(cols),
            (_, other) => bad(format!("{key} has the wrong type: got {}", describe(other))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NO_NAMES: Schema<'static> = Schema {
        n_features: 3,
        feature_names: None,
        max_rows: 4,
    };

    fn parse(s: &Schema<'_>, v: &Value) -> Result<Matrix, BadInput> {
        s.parse(v)
    }

    #[test]
    fn all_four_shapes_give_the_same_matrix() {
        let want = Matrix {
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            rows: 2,
        };
        let s = NO_NAMES;
        assert_eq!(
            parse(&s, &json!({"instances": [[1, 2, 3], [4, 5, 6]]})).unwrap(),
            want
        );
        assert_eq!(
            parse(&s, &json!({"inputs": [[1, 2, 3], [4, 5, 6.0]]})).unwrap(),
            want
        );
        assert_eq!(
            parse(
                &s,
                &json!({"dataframe_split": {"data": [[1, 2, 3], [4, 5, 6]]}})
            )
            .unwrap(),
            want
        );
        // pandas column labels of an array-built frame are positions, in any order.
        let split = json!({"dataframe_split": {"columns": ["2", "0", "1"], "data": [[3, 1, 2], [6, 4, 5]]}});
        assert_eq!(parse(&s, &split).unwrap(), want);
        let records =
            json!({"dataframe_records": [{"0": 1, "1": 2, "2": 3}, {"2": 6, "1": 5, "0": 4}]});
        assert_eq!(parse(&s, &records).unwrap(), want);
        assert_eq!(
            parse(
                &s,
                &json!({"inputs": {"a": [1, 4], "b": [2, 5], "c": [3, 6]}})
            )
            .unwrap(),
            want
        );
    }

    #[test]
    fn named_features_are_matched_by_name() {
        let names = ["x".to_string(), "y".to_string(), "z".to_string()];
        let s = Schema {
            n_features: 3,
            feature_names: Some(&names),
            max_rows: 10,
        };
        let m = parse(
            &s,
            &json!({"dataframe_records": [{"z": 3, "x": 1, "y": 2}]}),
        )
        .unwrap();
        assert_eq!(m.data, vec![1.0, 2.0, 3.0]);
        let e = parse(
            &s,
            &json!({"dataframe_records": [{"x": 1, "y": 2, "w": 3}]}),
        )
        .unwrap_err();
        assert!(e.0.contains("missing column \"z\""), "{e:?}");
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let s = NO_NAMES;
        let cases = [
            (json!([1, 2, 3]), "must be a JSON object"),
            (json!({"data": [[1, 2, 3]]}), "needs one of the keys"),
            (
                json!({"instances": [[1, 2]]}),
                "row 0 has 2 features, but the model expects 3",
            ),
            (
                json!({"instances": [[1, 2, "x"]]}),
                "row 0, column 2: expected a finite number, got a string",
            ),
            (json!({"instances": [[1, 2, null]]}), "got null"),
            (
                json!({"instances": [[1, 2, 3]], "inputs": [[1, 2, 3]]}),
                "several input keys",
            ),
            (
                json!({"instances": vec![json!([0, 0, 0]); 5]}),
                "batch of 5 rows exceeds the limit of 4",
            ),
            (json!({"instances": "abc"}), "wrong type"),
            (json!({"instances": [1, 2, 3]}), "first item is a number"),
            (
                json!({"dataframe_split": {"columns": ["a"], "data": [[1]]}}),
                "the input has 1 features",
            ),
            (
                json!({"dataframe_records": [{"0": 1, "1": 2, "2": 3}, {"0": 1}]}),
                "record 1: missing column",
            ),
            (
                json!({"instances": [[1, 2, 3]], "extra": 1}),
                "unknown key \"extra\"",
            ),
        ];
        for (body, want) in cases {
            let e = parse(&s, &body).unwrap_err();
            assert!(e.0.contains(want), "{body}: {e:?} should contain {want:?}");
        }
    }
}
