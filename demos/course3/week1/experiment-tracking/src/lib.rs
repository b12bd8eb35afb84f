//! An MLflow tracking client over MLflow's REST API (`/api/2.0/mlflow/...`): the calls
//! `mlflow.set_experiment`, `start_run`, `log_params`/`log_metrics` (as one
//! `log-batch`), `set_tags`, `end_run` and `search_runs` make under the hood.
//! MLflow's error bodies (`{"error_code", "message"}`) come back as [`Error::Api`].

use std::time::{SystemTime, UNIX_EPOCH};

use course3_kit::http::Endpoint;
use serde_json::{Value, json};

#[derive(Debug)]
pub enum Error {
    /// The server answered with MLflow's error shape.
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// Transport or an answer that is not MLflow's.
    Protocol(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Api {
                status,
                code,
                message,
            } => write!(f, "MLflow {status} {code}: {message}"),
            Error::Protocol(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Milliseconds since the epoch, MLflow's timestamps.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// RFC 3986 percent-encoding of a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A metric value at a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub step: i64,
}

#[derive(Debug, Clone)]
pub struct Client {
    endpoint: Endpoint,
}

impl Client {
    pub fn new(tracking_uri: &str) -> Result<Client> {
        Ok(Client {
            endpoint: Endpoint::parse(tracking_uri).map_err(Error::Protocol)?,
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let body = body.map(Value::to_string);
        let r = self
            .endpoint
            .request(method, &format!("/api/2.0/mlflow/{path}"), body.as_deref())
            .map_err(Error::Protocol)?;
        let v: Value = serde_json::from_str(&r.body).map_err(|e| {
            Error::Protocol(format!(
                "{method} {path}: {} answer is not JSON ({e}): {:.200}",
                r.status, r.body
            ))
        })?;
        if r.status == 200 {
            return Ok(v);
        }
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Err(Error::Api {
            status: r.status,
            code: s("error_code"),
            message: s("message"),
        })
    }

    fn str_at(v: &Value, pointer: &str) -> Result<String> {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Protocol(format!("no {pointer} in {v}")))
    }

    pub fn create_experiment(&self, name: &str) -> Result<String> {
        let v = self.call("POST", "experiments/create", Some(&json!({"name": name})))?;
        Self::str_at(&v, "/experiment_id")
    }

    pub fn get_experiment(&self, id: &str) -> Result<Value> {
        let v = self.call(
            "GET",
            &format!("experiments/get?experiment_id={}", encode(id)),
            None,
        )?;
        v.get("experiment")
            .cloned()
            .ok_or_else(|| Error::Protocol(format!("no experiment in {v}")))
    }

    /// The experiment's id, or `None` when no experiment has that name.
    pub fn experiment_id_by_name(&self, name: &str) -> Result<Option<String>> {
        match self.call(
            "GET",
            &format!("experiments/get-by-name?experiment_name={}", encode(name)),
            None,
        ) {
            Ok(v) => Self::str_at(&v, "/experiment/experiment_id").map(Some),
            Err(Error::Api { code, .. }) if code == "RESOURCE_DOES_NOT_EXIST" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `mlflow.set_experiment`: the named experiment, created if missing.
    pub fn set_experiment(&self, name: &str) -> Result<String> {
        match self.experiment_id_by_name(name)? {
            Some(id) => Ok(id),
            None => self.create_experiment(name),
        }
    }

    pub fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        tags: &[(&str, &str)],
    ) -> Result<String> {
        let tags: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let body = json!({"experiment_id": experiment_id, "run_name": run_name,
                          "start_time": now_ms(), "tags": tags});
        let v = self.call("POST", "runs/create", Some(&body))?;
        Self::str_at(&v, "/run/info/run_id")
    }

    /// Params, metrics and tags in one request (MLflow allows up to 100 params,
    /// 1000 metrics and 100 tags a batch).
    pub fn log_batch(
        &self,
        run_id: &str,
        params: &[(&str, String)],
        metrics: &[Metric],
        tags: &[(&str, &str)],
    ) -> Result<()> {
        let ts = now_ms();
        let body = json!({
            "run_id": run_id,
            "params": params.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
            "metrics": metrics.iter().map(|m| json!({"key": m.key, "value": m.value, "step": m.step, "timestamp": ts})).collect::<Vec<_>>(),
            "tags": tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        });
        self.call("POST", "runs/log-batch", Some(&body)).map(drop)
    }

    /// End the run with `status` (`FINISHED`, `FAILED`, `KILLED`).
    pub fn update_run(&self, run_id: &str, status: &str) -> Result<()> {
        let body = json!({"run_id": run_id, "status": status, "end_time": now_ms()});
        self.call("POST", "runs/update", Some(&body)).map(drop)
    }

    pub fn get_run(&self, run_id: &str) -> Result<Value> {
        let v = self.call("GET", &format!("runs/get?run_id={}", encode(run_id)), None)?;
        v.get("run")
            .cloned()
            .ok_or_else(|| Error::Protocol(format!("no run in {v}")))
    }

    /// Every value a metric took, in step order.
    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>> {
        let v = self.call(
            "GET",
            &format!(
                "metrics/get-history?run_id={}&metric_key={}",
                encode(run_id),
                encode(key)
            ),
            None,
        )?;
        let mut out: Vec<Metric> = v
            .get("metrics")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|m| {
                        Some(Metric {
                            key: m.get("key")?.as_str()?.to_owned(),
                            value: m.get("value")?.as_f64()?,
                            step: m.get("step").and_then(Value::as_i64).unwrap_or(0),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by_key(|m| m.step);
        Ok(out)
    }

    /// `search_runs`: runs of `experiment_ids` matching `filter`, ordered by `order_by`.
    pub fn search_runs(
        &self,
        experiment_ids: &[&str],
        filter: &str,
        order_by: &[&str],
        max_results: u32,
    ) -> Result<Vec<Value>> {
        let body = json!({"experiment_ids": experiment_ids, "filter": filter,
                          "order_by": order_by, "max_results": max_results});
        let v = self.call("POST", "runs/search", Some(&body))?;
        Ok(v.get("runs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }
}

/// A run's param, metric or tag value by key, from `get_run`/`search_runs` JSON.
pub fn run_value<'a>(run: &'a Value, section: &str, key: &str) -> Option<&'a Value> {
    run.pointer(&format!("/data/{section}"))?
        .as_array()?
        .iter()
        .find(|e| e.get("key").and_then(Value::as_str) == Some(key))?
        .get("value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("a b/ü&="), "a%20b%2F%C3%BC%26%3D");
        assert_eq!(encode(""), "");
        assert_eq!(encode("run-1_x.~"), "run-1_x.~");
    }
}
