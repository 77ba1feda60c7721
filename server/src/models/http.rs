//! Models behind an HTTP endpoint the user names, in three common serving formats:
//! the Open Inference Protocol (KServe v2: `POST {url}/v2/models/{model}/infer`), TensorFlow
//! Serving's REST API (`POST {url}/v1/models/{model}:predict`) and MLflow's scoring server
//! (`POST {url}/invocations`, `dataframe_split`). Requests are batched (1000 rows) with a timeout;
//! an endpoint that is down, slow or answers in another shape is a clear error. Every call goes
//! through the server's outbound guard (allow-list, no private addresses, no redirects, capped
//! answers).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::outbound::Outbound;

use super::{Batch, Model, ModelError, Values};

/// A named endpoint stored with a run (setting `endpoints`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Endpoint {
    /// The name predictions are reported under (e.g. `score_remote`).
    pub name: String,
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// `kserve-v2`, `tf-serving` or `mlflow`.
    pub protocol: String,
    /// The served model's name (KServe, TF Serving); ignored by MLflow.
    #[serde(default)]
    pub model: String,
    /// Columns sent as inputs (the run's features when empty).
    #[serde(default)]
    pub inputs: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// A bearer token sent as `Authorization: Bearer …`. Write-only: stored sealed with the
    /// server's key, never returned (an update without it keeps the stored one; `""` removes it).
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
    /// Whether a token is stored (set by the server in its answers).
    #[serde(default)]
    pub has_token: bool,
}

fn default_timeout() -> u64 {
    10_000
}

impl Endpoint {
    /// Checks the fields and the URL against the outbound rules; the message names the problem.
    pub fn validate(&self, outbound: &Outbound) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("an endpoint needs a name".into());
        }
        if !["kserve-v2", "tf-serving", "mlflow"].contains(&self.protocol.as_str()) {
            return Err(format!("endpoint '{}': protocol '{}' is not one of kserve-v2, tf-serving, mlflow", self.name, self.protocol));
        }
        outbound.check_url(&self.url).map_err(|e| format!("endpoint '{}': {e}", self.name))?;
        if self.protocol != "mlflow" && self.model.trim().is_empty() {
            return Err(format!("endpoint '{}': name the served model (model)", self.name));
        }
        if self.model == "." || self.model == ".." || self.model.chars().any(char::is_control) {
            return Err(format!("endpoint '{}': '{}' is not a model name", self.name, self.model.escape_debug()));
        }
        if !(1..=600_000).contains(&self.timeout_ms) {
            return Err(format!("endpoint '{}': timeout_ms is 1..=600000", self.name));
        }
        Ok(())
    }
}

/// A model served over HTTP.
pub struct HttpModel {
    endpoint: Endpoint,
    /// (column, numeric) sent for each example.
    columns: Vec<(String, bool)>,
    outbound: Arc<Outbound>,
}

const BATCH: usize = 1000;

impl HttpModel {
    /// `endpoint.token` is the opened token, if any.
    pub fn new(endpoint: Endpoint, columns: Vec<(String, bool)>, outbound: Arc<Outbound>) -> HttpModel {
        HttpModel { endpoint, columns, outbound }
    }

    /// The endpoint's URL for a protocol; the model name is one path segment (percent-encoded, so
    /// `/`, `?` or `#` in it cannot rewrite the path), the base URL's query and fragment dropped.
    fn url(&self) -> Result<String, String> {
        let e = &self.endpoint;
        let mut url = reqwest::Url::parse(e.url.trim()).map_err(|x| format!("not a URL ({x})"))?;
        url.set_query(None);
        url.set_fragment(None);
        {
            let mut path = url.path_segments_mut().map_err(|_| "the URL cannot take a path".to_string())?;
            path.pop_if_empty();
            match e.protocol.as_str() {
                "kserve-v2" => path.extend(["v2", "models", e.model.as_str(), "infer"]),
                "tf-serving" => path.extend(["v1", "models", format!("{}:predict", e.model).as_str()]),
                _ => path.push("invocations"),
            };
        }
        Ok(url.to_string())
    }

    fn value(&self, batch: &Batch, column: &str, i: usize) -> Value {
        match batch.columns.get(column) {
            Some(Values::Numeric(v)) => serde_json::Number::from_f64(v[i]).map(Value::Number).unwrap_or(Value::Null),
            Some(Values::Text(v)) => Value::String(v[i].clone()),
            None => Value::Null,
        }
    }

    fn body(&self, batch: &Batch, rows: std::ops::Range<usize>) -> Value {
        let n = rows.len();
        match self.endpoint.protocol.as_str() {
            "kserve-v2" => {
                let inputs: Vec<Value> = self
                    .columns
                    .iter()
                    .map(|(c, numeric)| {
                        let data: Vec<Value> = rows.clone().map(|i| self.value(batch, c, i)).collect();
                        json!({"name": c, "shape": [n, 1], "datatype": if *numeric { "FP64" } else { "BYTES" }, "data": data})
                    })
                    .collect();
                json!({"inputs": inputs})
            }
            "tf-serving" => {
                let instances: Vec<Value> = rows.map(|i| Value::Object(self.columns.iter().map(|(c, _)| (c.clone(), self.value(batch, c, i))).collect())).collect();
                json!({"instances": instances})
            }
            _ => {
                let data: Vec<Value> = rows.map(|i| Value::Array(self.columns.iter().map(|(c, _)| self.value(batch, c, i)).collect())).collect();
                let columns: Vec<&String> = self.columns.iter().map(|(c, _)| c).collect();
                json!({"dataframe_split": {"columns": columns, "data": data}})
            }
        }
    }

    /// The scores in an answer: a list of numbers, of [P(0), P(1)] pairs, or of objects with a
    /// `probability`/`score`/`prediction` field; KServe's `outputs[0].data` (flat, [N] or [N, 2]).
    fn parse(&self, answer: &Value, n: usize) -> Result<Vec<f64>, String> {
        let list = match self.endpoint.protocol.as_str() {
            "kserve-v2" => {
                let outputs = answer["outputs"].as_array().ok_or("no 'outputs' list")?;
                let out = outputs.iter().find(|o| o["name"] == "probability").or(outputs.first()).ok_or("'outputs' is empty")?;
                let data = out["data"].as_array().ok_or("outputs[0] has no 'data' list")?;
                let width = out["shape"].as_array().and_then(|s| s.get(1)).and_then(Value::as_u64).unwrap_or(1) as usize;
                let nums: Vec<f64> = data.iter().map(|v| v.as_f64().ok_or("a non-numeric value in 'data'")).collect::<Result<_, _>>()?;
                return match width {
                    1 if nums.len() == n => Ok(nums),
                    2 if nums.len() == 2 * n => Ok(nums.chunks(2).map(|c| c[1]).collect()),
                    _ => Err(format!("{} values of width {width} for {n} examples", nums.len())),
                };
            }
            "tf-serving" => answer["predictions"].as_array().ok_or("no 'predictions' list")?,
            _ => answer.get("predictions").and_then(Value::as_array).or(answer.as_array()).ok_or("neither a list nor a 'predictions' list")?,
        };
        if list.len() != n {
            return Err(format!("{} predictions for {n} examples", list.len()));
        }
        list.iter()
            .map(|p| match p {
                Value::Number(x) => x.as_f64().ok_or_else(|| "a prediction is not a number".to_string()),
                Value::Array(a) if a.len() == 1 => a[0].as_f64().ok_or_else(|| "a prediction is not a number".into()),
                Value::Array(a) if a.len() == 2 => a[1].as_f64().ok_or_else(|| "a prediction is not a number".into()),
                Value::Object(o) => ["probability", "score", "prediction", "predictions"]
                    .iter()
                    .find_map(|k| o.get(*k))
                    .and_then(|v| v.as_f64().or_else(|| v.as_array().and_then(|a| a.last()).and_then(Value::as_f64)))
                    .ok_or_else(|| "an object without a numeric probability/score/prediction".to_string()),
                _ => Err("a prediction that is not a number, a list or an object".to_string()),
            })
            .collect()
    }

    async fn predict_async(&self, batch: &Batch) -> Result<Vec<f64>, ModelError> {
        let e = &self.endpoint;
        let err = |why: String| ModelError::Run { model: e.name.clone(), why };
        let url = self.url().map_err(&err)?;
        let shown = crate::outbound::mask(&url);
        let headers: Vec<(&str, String)> = e.token.iter().map(|t| ("authorization", format!("Bearer {t}"))).collect();
        // One check, resolution and client for every batch of the call.
        let pinned = self.outbound.connect(&url, Duration::from_millis(e.timeout_ms)).await.map_err(|x| err(x.to_string()))?;
        let mut out = Vec::with_capacity(batch.rows);
        for start in (0..batch.rows).step_by(BATCH) {
            let rows = start..(start + BATCH).min(batch.rows);
            let n = rows.len();
            let body = serde_json::to_vec(&self.body(batch, rows)).map_err(|x| err(x.to_string()))?;
            let (_, bytes) = self.outbound.send(&pinned, body, &headers).await.map_err(|x| err(x.to_string()))?;
            let answer: Value = serde_json::from_slice(&bytes).map_err(|x| err(format!("{shown} answered with something that is not JSON ({x})")))?;
            out.extend(self.parse(&answer, n).map_err(|why| err(format!("{shown} answered in an unexpected shape: {why}")))?);
        }
        Ok(out)
    }
}

impl Model for HttpModel {
    fn name(&self) -> &str {
        &self.endpoint.name
    }

    fn input_names(&self) -> Vec<String> {
        self.columns.iter().map(|(c, _)| c.clone()).collect()
    }

    /// Runs the requests on the server's runtime; call it from a blocking task (as every caller does).
    fn predict(&self, batch: &Batch) -> Result<Vec<f64>, ModelError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| ModelError::Run { model: self.endpoint.name.clone(), why: "no async runtime to send requests from".into() })?;
        handle.block_on(self.predict_async(batch))
    }
}
