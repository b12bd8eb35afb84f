//! Metadata filters: which rows a search may return, in the dictionary
//! syntax of Databricks Vector Search (standard endpoints).
//!
//! | key | value | keeps rows where |
//! |---|---|---|
//! | `"col"` | scalar | `col == value` |
//! | `"col"` | list | `col` is one of the values |
//! | `"col NOT"` | scalar or list | `col` is present and not equal to (not one of) the values |
//! | `"col <"`, `"col <="`, `"col >"`, `"col >="` | number or string | the comparison holds |
//! | `"col LIKE"` | string | `col` is a string containing the value (case-sensitive substring) |
//! | `"a OR b"` | list `[va, vb]` | `a == va` or `b == vb` |
//!
//! Several keys are combined with AND. A row without the column never
//! matches (as SQL's NULL). Numbers compare as f64 whatever their JSON type.

use serde_json::{Map, Value};

use crate::error::{Result, invalid};

/// A parsed filter; [`Filter::matches`] evaluates it on one row's metadata.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every row.
    All,
    Eq(String, Value),
    In(String, Vec<Value>),
    Not(String, Vec<Value>),
    Cmp(String, Cmp, Value),
    Like(String, String),
    Or(Vec<(String, Value)>),
    And(Vec<Filter>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
}

fn scalar(key: &str, v: &Value) -> Result<Value> {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(v.clone()),
        _ => Err(invalid(format!(
            "filter {key:?}: expected a string, number or boolean, got {v}"
        ))),
    }
}

fn scalars(key: &str, v: &Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(items) => items.iter().map(|x| scalar(key, x)).collect(),
        _ => Ok(vec![scalar(key, v)?]),
    }
}

impl Filter {
    /// Parse the Databricks dictionary form (a JSON object; `null` or `{}`
    /// is [`Filter::All`]).
    pub fn from_json(v: &Value) -> Result<Self> {
        let obj = match v {
            Value::Null => return Ok(Filter::All),
            Value::Object(o) => o,
            _ => return Err(invalid(format!("filters must be a dict, got {v}"))),
        };
        let mut parts = Vec::with_capacity(obj.len());
        for (key, val) in obj {
            parts.push(Self::one(key.trim(), val)?);
        }
        Ok(match parts.len() {
            0 => Filter::All,
            1 => parts.pop().unwrap_or(Filter::All),
            _ => Filter::And(parts),
        })
    }

    fn one(key: &str, val: &Value) -> Result<Self> {
        if key.contains(" OR ") {
            let cols: Vec<&str> = key.split(" OR ").map(str::trim).collect();
            let vals = match val {
                Value::Array(a) if a.len() == cols.len() => a,
                _ => {
                    return Err(invalid(format!(
                        "filter {key:?}: expected a list of {} values, got {val}",
                        cols.len()
                    )));
                }
            };
            let pairs = cols
                .iter()
                .zip(vals)
                .map(|(c, v)| Ok((col(c, key)?, scalar(key, v)?)))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Filter::Or(pairs));
        }
        let (name, op) = match key.rsplit_once(' ') {
            Some((n, op)) => (n.trim(), Some(op)),
            None => (key, None),
        };
        let name = col(name, key)?;
        Ok(match op {
            None => match val {
                Value::Array(_) => Filter::In(name, scalars(key, val)?),
                _ => Filter::Eq(name, scalar(key, val)?),
            },
            Some("NOT") => Filter::Not(name, scalars(key, val)?),
            Some("LIKE") => match val {
                Value::String(s) => Filter::Like(name, s.clone()),
                _ => return Err(invalid(format!("filter {key:?}: LIKE needs a string"))),
            },
            Some(op) => {
                let cmp = match op {
                    "<" => Cmp::Lt,
                    "<=" => Cmp::Le,
                    ">" => Cmp::Gt,
                    ">=" => Cmp::Ge,
                    _ => {
                        return Err(invalid(format!(
                            "filter {key:?}: unknown operator {op:?} (expected NOT, LIKE, <, <=, >, >= or \"a OR b\")"
                        )));
                    }
                };
                Filter::Cmp(name, cmp, scalar(key, val)?)
            }
        })
    }

    /// The column names the filter reads (to check them against a schema).
    pub fn columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_columns(&mut out);
        out.sort();
        out.dedup();
        out
    }

    fn collect_columns(&self, out: &mut Vec<String>) {
        match self {
            Filter::All => {}
            Filter::Eq(c, _)
            | Filter::In(c, _)
            | Filter::Not(c, _)
            | Filter::Cmp(c, _, _)
            | Filter::Like(c, _) => out.push(c.clone()),
            Filter::Or(p) => out.extend(p.iter().map(|(c, _)| c.clone())),
            Filter::And(fs) => fs.iter().for_each(|f| f.collect_columns(out)),
        }
    }

    /// Whether a row with this metadata passes.
    pub fn matches(&self, row: &Map<String, Value>) -> bool {
        match self {
            Filter::All => true,
            Filter::Eq(c, v) => row.get(c).is_some_and(|x| equal(x, v)),
            Filter::In(c, vs) => row.get(c).is_some_and(|x| vs.iter().any(|v| equal(x, v))),
            Filter::Not(c, vs) => row
                .get(c)
                .is_some_and(|x| !x.is_null() && !vs.iter().any(|v| equal(x, v))),
            Filter::Cmp(c, op, v) => row.get(c).is_some_and(|x| compare(x, *op, v)),
            Filter::Like(c, s) => row
                .get(c)
                .and_then(Value::as_str)
                .is_some_and(|x| x.contains(s.as_str())),
            Filter::Or(p) => p
                .iter()
                .any(|(c, v)| row.get(c).is_some_and(|x| equal(x, v))),
            Filter::And(fs) => fs.iter().all(|f| f.matches(row)),
        }
    }
}

fn col(name: &str, key: &str) -> Result<String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(invalid(format!("filter {key:?}: bad column name {name:?}")));
    }
    Ok(name.to_string())
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn compare(a: &Value, op: Cmp, b: &Value) -> bool {
    let ord = match (a, b) {
        (Value::Number(_), Value::Number(_)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(x, y)| x.partial_cmp(&y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    };
    ord.is_some_and(|o| match op {
        Cmp::Lt => o.is_lt(),
        Cmp::Le => o.is_le(),
        Cmp::Gt => o.is_gt(),
        Cmp::Ge => o.is_ge(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(o) => o,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn databricks_syntax() {
        let r = row(json!({"dept": "hr", "year": 2024, "score": 0.5, "title": "Leave policy"}));
        let yes = [
            json!({"dept": "hr"}),
            json!({"dept": ["it", "hr"]}),
            json!({"dept NOT": "it"}),
            json!({"year >=": 2024, "year <": 2025.0}),
            json!({"title LIKE": "policy"}),
            json!({"dept OR year": ["it", 2024]}),
            json!({}),
            Value::Null,
        ];
        for f in yes {
            assert!(Filter::from_json(&f).unwrap().matches(&r), "{f}");
        }
        let no = [
            json!({"dept": "it"}),
            json!({"dept NOT": ["hr"]}),
            json!({"year >": 2024}),
            json!({"missing": 1}),
            json!({"missing NOT": 1}),
            json!({"dept OR year": ["it", 2023]}),
            json!({"dept": "hr", "year": 1999}),
        ];
        for f in no {
            assert!(!Filter::from_json(&f).unwrap().matches(&r), "{f}");
        }
        let f = Filter::from_json(&json!({"b": 1, "a OR c": [1, 2]})).unwrap();
        assert_eq!(f.columns(), ["a", "b", "c"]);
    }

    #[test]
    fn bad_filters_are_errors() {
        for f in [
            json!([1]),
            json!({"a ~": 1}),
            json!({"a": {"b": 1}}),
            json!({"a OR b": [1]}),
            json!({"a LIKE": 3}),
            json!({" >": 3}),
        ] {
            assert!(Filter::from_json(&f).is_err(), "{f}");
        }
    }
}
