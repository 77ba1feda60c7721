//! Models behind an HTTP endpoint the user names, in three common serving formats:
//! the Open Inference Protocol (KServe v2: `POST {url}/v2/models/{model}/infer`), TensorFlow
//! Serving's REST API (`POST {url}/v1/models/{model}:predict`) and MLflow's scoring server
//! (`POST {url}/invocations`), each with the request layouts real servers expect (MLServer's `pd`
//! content type, one `[N, k]` tensor, the server's metadata; rows or columns; split or records).
//! Requests are batched (1000 rows by default) with a timeout;
//! an endpoint that is down, slow or answers in another shape is a clear error. Every call goes
//! through the server's outbound guard (allow-list, no private addresses, no redirects, capped
//! answers).

use std::collections::BTreeMap;
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
    /// A model version (`/v2/models/{m}/versions/{v}/infer`, `/v1/models/{m}/versions/{v}:predict`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// Columns sent as inputs, in this order (the run's features when empty).
    #[serde(default)]
    pub inputs: Vec<String>,
    /// How examples are laid out in a request. KServe v2: `pd` (one tensor per column with the
    /// request parameter `content_type: "pd"`, the tabular convention of MLServer and KServe's
    /// runtimes; the default), `columns` (one tensor per column, nothing else), `tensor` (one
    /// `[N, k]` FP64 tensor, numeric inputs in `inputs` order) or `metadata` (the server's
    /// `GET /v2/models/{m}` names the inputs, their types and shapes). TF Serving: `instances`
    /// (rows, the default) or `columns` (`inputs` by name). MLflow: `split` (`dataframe_split`,
    /// the default) or `records` (`dataframe_records`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    /// The output holding the score: requested by name (KServe `outputs`) and read by name. When
    /// unset, an output named predict_proba / probability / probabilities / output_probability,
    /// else the only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// For a `[N, C]` probability output: the column of the positive class (label 1). When unset,
    /// column 1 of two (scikit-learn orders classes, so `[P(0), P(1)]`); more columns need it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_column: Option<usize>,
    /// Examples per request (1..=100000).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// A bearer token sent as `Authorization: Bearer …`. Write-only: stored sealed with the
    /// server's key, never returned (an update without it keeps the stored one; `""` removes it).
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
    /// Whether a token is stored (set by the server in its answers).
    #[serde(default)]
    pub has_token: bool,
    /// Extra request headers (an API key header, a tenant). Write-only like the token: sealed,
    /// never returned (an update without it keeps the stored ones; `{}` removes them).
    #[serde(default, skip_serializing)]
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    pub headers: Option<BTreeMap<String, String>>,
    /// The names of the stored extra headers (set by the server in its answers).
    #[serde(default)]
    pub header_names: Vec<String>,
}

fn default_timeout() -> u64 {
    10_000
}

fn default_batch() -> usize {
    1000
}

/// The layouts each protocol accepts; the first is the default.
pub fn layouts(protocol: &str) -> &'static [&'static str] {
    match protocol {
        "kserve-v2" => &["pd", "columns", "tensor", "metadata"],
        "tf-serving" => &["instances", "columns"],
        "mlflow" => &["split", "records"],
        _ => &[],
    }
}

/// Output names that hold probabilities in the common servers and exporters.
const PROBABILITY_OUTPUTS: [&str; 5] = ["predict_proba", "probability", "probabilities", "output_probability", "probs"];

/// Headers an endpoint may not set: the ones the transport owns.
const RESERVED_HEADERS: [&str; 8] = ["host", "content-length", "content-type", "transfer-encoding", "connection", "authorization", "cookie", "te"];

impl Endpoint {
    /// Checks the fields and the URL against the outbound rules; the message names the problem.
    pub fn validate(&self, outbound: &Outbound) -> Result<(), String> {
        let name = &self.name;
        if name.trim().is_empty() {
            return Err("an endpoint needs a name".into());
        }
        if !["kserve-v2", "tf-serving", "mlflow"].contains(&self.protocol.as_str()) {
            return Err(format!("endpoint '{name}': protocol '{}' is not one of kserve-v2, tf-serving, mlflow", self.protocol));
        }
        outbound.check_url(&self.url).map_err(|e| format!("endpoint '{name}': {e}"))?;
        if self.protocol != "mlflow" && self.model.trim().is_empty() {
            return Err(format!("endpoint '{name}': name the served model (model)"));
        }
        for (field, v) in [("model", Some(&self.model)), ("model_version", self.model_version.as_ref()), ("output", self.output.as_ref())] {
            if let Some(v) = v {
                if v == "." || v == ".." || v.chars().any(char::is_control) || (field != "model" && v.trim().is_empty()) {
                    return Err(format!("endpoint '{name}': '{}' is not a valid {field}", v.escape_debug()));
                }
            }
        }
        if let Some(layout) = &self.layout {
            let ok = layouts(&self.protocol);
            if !ok.contains(&layout.as_str()) {
                return Err(format!("endpoint '{name}': layout '{}' is not one of {} for {}", layout.escape_debug(), ok.join(", "), self.protocol));
            }
        }
        if !(1..=100_000).contains(&self.batch_size) {
            return Err(format!("endpoint '{name}': batch_size is 1..=100000"));
        }
        if !(1..=600_000).contains(&self.timeout_ms) {
            return Err(format!("endpoint '{name}': timeout_ms is 1..=600000"));
        }
        for (k, v) in self.headers.iter().flatten() {
            let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if k.is_empty() || !k.chars().all(token_char) || RESERVED_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                return Err(format!("endpoint '{name}': '{}' is not a header an endpoint may set", k.escape_debug()));
            }
            if v.chars().any(|c| c.is_control() && c != '\t') || v.len() > 4096 {
                return Err(format!("endpoint '{name}': the value of header '{k}' holds control characters or is too long"));
            }
        }
        if self.headers.as_ref().is_some_and(|h| h.len() > 16) {
            return Err(format!("endpoint '{name}': at most 16 extra headers"));
        }
        Ok(())
    }

    /// The layout in force (the protocol's default when unset).
    pub fn layout(&self) -> &str {
        self.layout.as_deref().unwrap_or_else(|| layouts(&self.protocol).first().copied().unwrap_or(""))
    }
}

/// One input of a KServe v2 model, as its metadata describes it.
#[derive(Clone, Debug, Deserialize)]
struct TensorMeta {
    name: String,
    datatype: String,
    #[serde(default)]
    shape: Vec<i64>,
}

/// How the columns go into a KServe v2 request once the layout is settled.
#[derive(Clone, Debug)]
enum V2Inputs {
    /// One tensor per column: (input name, column, datatype).
    Columns { tensors: Vec<(String, String, String)>, pd: bool },
    /// One `[N, k]` tensor of the columns, in order.
    Matrix { name: String, datatype: String },
}

/// A model served over HTTP.
pub struct HttpModel {
    endpoint: Endpoint,
    /// (column, numeric) sent for each example.
    columns: Vec<(String, bool)>,
    /// Whether the run is a classification: a label output is then an error, not a score.
    classification: bool,
    outbound: Arc<Outbound>,
    /// KServe's inputs, settled on the first call (the metadata layout reads the server once).
    v2: tokio::sync::OnceCell<V2Inputs>,
}

/// The setting to change when an answer cannot be read, named in errors.
fn hint(protocol: &str) -> &'static str {
    match protocol {
        "kserve-v2" => "check the endpoint's layout (pd, columns, tensor, metadata), output and positive_column",
        "tf-serving" => "check the endpoint's layout (instances, columns), output and positive_column",
        _ => "check the endpoint's layout (split, records), output and positive_column",
    }
}

impl HttpModel {
    /// `endpoint.token` and `endpoint.headers` are the opened secrets, if any.
    pub fn new(endpoint: Endpoint, columns: Vec<(String, bool)>, classification: bool, outbound: Arc<Outbound>) -> HttpModel {
        HttpModel { endpoint, columns, classification, outbound, v2: tokio::sync::OnceCell::new() }
    }

    /// The endpoint's URL for a protocol (`metadata`: KServe's model metadata); the model name
    /// and version are single path segments (percent-encoded, so `/`, `?` or `#` in them cannot
    /// rewrite the path), the base URL's query and fragment dropped.
    fn url(&self, metadata: bool) -> Result<String, String> {
        let e = &self.endpoint;
        let mut url = reqwest::Url::parse(e.url.trim()).map_err(|x| format!("not a URL ({x})"))?;
        url.set_query(None);
        url.set_fragment(None);
        {
            let mut path = url.path_segments_mut().map_err(|_| "the URL cannot take a path".to_string())?;
            path.pop_if_empty();
            match e.protocol.as_str() {
                "kserve-v2" => {
                    path.extend(["v2", "models", e.model.as_str()]);
                    if let Some(v) = &e.model_version {
                        path.extend(["versions", v.as_str()]);
                    }
                    if !metadata {
                        path.push("infer");
                    }
                }
                "tf-serving" => {
                    path.extend(["v1", "models"]);
                    match &e.model_version {
                        Some(v) => path.extend([e.model.as_str(), "versions", format!("{v}:predict").as_str()]),
                        None => path.push(format!("{}:predict", e.model).as_str()),
                    };
                }
                _ => {
                    path.push("invocations");
                }
            };
        }
        Ok(url.to_string())
    }

    fn headers(&self) -> Vec<(&str, String)> {
        let e = &self.endpoint;
        let mut h: Vec<(&str, String)> = e.token.iter().map(|t| ("authorization", format!("Bearer {t}"))).collect();
        h.extend(e.headers.iter().flatten().map(|(k, v)| (k.as_str(), v.clone())));
        h
    }

    fn value(&self, batch: &Batch, column: &str, i: usize) -> Value {
        match batch.columns.get(column) {
            Some(Values::Numeric(v)) => serde_json::Number::from_f64(v[i]).map(Value::Number).unwrap_or(Value::Null),
            Some(Values::Text(v)) => Value::String(v[i].clone()),
            None => Value::Null,
        }
    }

    /// KServe's inputs for the layout; `metadata` asks the server once.
    async fn v2_inputs(&self) -> Result<V2Inputs, String> {
        let e = &self.endpoint;
        let per_column = |pd: bool| V2Inputs::Columns { tensors: self.columns.iter().map(|(c, numeric)| (c.clone(), c.clone(), if *numeric { "FP64" } else { "BYTES" }.to_string())).collect(), pd };
        match e.layout() {
            "columns" => Ok(per_column(false)),
            "tensor" => {
                if let Some((c, _)) = self.columns.iter().find(|(_, numeric)| !numeric) {
                    return Err(format!("layout 'tensor' sends numbers only, and input '{c}' holds text: use layout pd, or list numeric inputs"));
                }
                Ok(V2Inputs::Matrix { name: "input-0".into(), datatype: "FP64".into() })
            }
            "metadata" => {
                let url = self.url(true)?;
                let (_, bytes) = self.outbound.get(&url, &self.headers(), Duration::from_millis(e.timeout_ms)).await.map_err(|x| format!("reading the model's metadata: {x}"))?;
                #[derive(Deserialize)]
                struct Meta {
                    #[serde(default)]
                    inputs: Vec<TensorMeta>,
                }
                let meta: Meta = serde_json::from_slice(&bytes).map_err(|x| format!("the model's metadata is not what the Open Inference Protocol describes ({x})"))?;
                match meta.inputs.as_slice() {
                    [] => Err("the server's metadata lists no inputs (MLServer's scikit-learn runtime does not): use layout pd or tensor".into()),
                    [one] if one.shape.len() == 2 && one.shape[1] as usize == self.columns.len() && self.columns.len() > 1 => {
                        Ok(V2Inputs::Matrix { name: one.name.clone(), datatype: one.datatype.clone() })
                    }
                    many => {
                        let mut tensors = Vec::with_capacity(many.len());
                        for m in many {
                            if !self.columns.iter().any(|(c, _)| *c == m.name) {
                                return Err(format!("the model's input '{}' has no column of that name among the endpoint's inputs ({})", m.name, self.columns.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join(", ")));
                            }
                            tensors.push((m.name.clone(), m.name.clone(), m.datatype.clone()));
                        }
                        Ok(V2Inputs::Columns { tensors, pd: false })
                    }
                }
            }
            _ => Ok(per_column(true)),
        }
    }

    fn v2_value(&self, batch: &Batch, column: &str, i: usize, datatype: &str) -> Value {
        let v = self.value(batch, column, i);
        match (datatype, &v) {
            (d, Value::Number(n)) if d.starts_with("INT") || d.starts_with("UINT") => n.as_f64().map(|x| json!(x as i64)).unwrap_or(v),
            ("BOOL", Value::Number(n)) => json!(n.as_f64().unwrap_or(0.0) != 0.0),
            ("BYTES", Value::Number(n)) => Value::String(n.to_string()),
            _ => v,
        }
    }

    fn body(&self, batch: &Batch, rows: std::ops::Range<usize>, v2: Option<&V2Inputs>) -> Value {
        let n = rows.len();
        let e = &self.endpoint;
        match e.protocol.as_str() {
            "kserve-v2" => {
                let mut body = match v2 {
                    Some(V2Inputs::Matrix { name, datatype }) => {
                        let data: Vec<Value> = rows.clone().flat_map(|i| self.columns.iter().map(move |(c, _)| self.v2_value(batch, c, i, datatype))).collect();
                        json!({"inputs": [{"name": name, "shape": [n, self.columns.len()], "datatype": datatype, "data": data}]})
                    }
                    Some(V2Inputs::Columns { tensors, pd }) => {
                        let inputs: Vec<Value> = tensors
                            .iter()
                            .map(|(name, c, datatype)| {
                                let data: Vec<Value> = rows.clone().map(|i| self.v2_value(batch, c, i, datatype)).collect();
                                json!({"name": name, "shape": [n, 1], "datatype": datatype, "data": data})
                            })
                            .collect();
                        if *pd { json!({"parameters": {"content_type": "pd"}, "inputs": inputs}) } else { json!({"inputs": inputs}) }
                    }
                    None => json!({"inputs": []}),
                };
                if let Some(o) = &e.output {
                    body["outputs"] = json!([{"name": o}]);
                }
                body
            }
            "tf-serving" if e.layout() == "columns" => {
                let inputs: serde_json::Map<String, Value> = self.columns.iter().map(|(c, _)| (c.clone(), Value::Array(rows.clone().map(|i| self.value(batch, c, i)).collect()))).collect();
                json!({"inputs": inputs})
            }
            "tf-serving" => {
                let instances: Vec<Value> = rows.map(|i| Value::Object(self.columns.iter().map(|(c, _)| (c.clone(), self.value(batch, c, i))).collect())).collect();
                json!({"instances": instances})
            }
            _ if e.layout() == "records" => {
                let records: Vec<Value> = rows.map(|i| Value::Object(self.columns.iter().map(|(c, _)| (c.clone(), self.value(batch, c, i))).collect())).collect();
                json!({"dataframe_records": records})
            }
            _ => {
                let data: Vec<Value> = rows.map(|i| Value::Array(self.columns.iter().map(|(c, _)| self.value(batch, c, i)).collect())).collect();
                let columns: Vec<&String> = self.columns.iter().map(|(c, _)| c).collect();
                json!({"dataframe_split": {"columns": columns, "data": data}})
            }
        }
    }

    /// The column of a `[N, C]` probability output that is the positive class.
    fn positive(&self, width: usize) -> Result<usize, String> {
        match (self.endpoint.positive_column, width) {
            (Some(c), w) if c < w => Ok(c),
            (Some(c), w) => Err(format!("positive_column is {c} but the output has {w} columns")),
            (None, 2) => Ok(1),
            (None, w) => Err(format!("the output has {w} columns per example: set positive_column to the positive class's column")),
        }
    }

    /// A one-number-per-example output of a classification: refused when it holds class labels
    /// (an integer datatype, or JSON integers 0 and 1 — a probability is written as a float, `1.0`).
    fn not_labels(&self, output: &str, datatype: &str, values: &[Value]) -> Result<(), String> {
        if !self.classification {
            return Ok(());
        }
        let integer_type = datatype.starts_with("INT") || datatype.starts_with("UINT") || datatype == "BOOL";
        let integers = !values.is_empty() && values.iter().all(|v| v.as_u64().is_some_and(|x| x <= 1) || v.is_boolean());
        if integer_type || integers {
            return Err(format!(
                "output '{output}' holds class labels, not probabilities: set the endpoint's output to the probability output (MLServer's scikit-learn runtime: predict_proba, or predict_fn: predict_proba in its model settings; MLflow: save with pyfunc_predict_fn=\"predict_proba\")"
            ));
        }
        Ok(())
    }

    /// The scores in a KServe v2 answer: the chosen output, `[N]`, `[N, 1]` or `[N, C]`.
    fn parse_v2(&self, answer: &Value, n: usize) -> Result<Vec<f64>, String> {
        let outputs = answer["outputs"].as_array().ok_or("no 'outputs' list")?;
        if outputs.is_empty() {
            return Err("'outputs' is empty".into());
        }
        let names: Vec<&str> = outputs.iter().filter_map(|o| o["name"].as_str()).collect();
        let out = match &self.endpoint.output {
            Some(want) => outputs.iter().find(|o| o["name"] == want.as_str()).ok_or_else(|| format!("no output '{want}' in the answer (outputs: {})", names.join(", ")))?,
            None => match outputs.iter().find(|o| o["name"].as_str().is_some_and(|x| PROBABILITY_OUTPUTS.contains(&x))) {
                Some(o) => o,
                None if outputs.len() == 1 => &outputs[0],
                None => return Err(format!("the answer has outputs {}: set the endpoint's output to the one holding the score", names.join(", "))),
            },
        };
        let name = out["name"].as_str().unwrap_or("");
        let datatype = out["datatype"].as_str().unwrap_or("");
        let data = out["data"].as_array().ok_or_else(|| format!("output '{name}' has no 'data' list"))?;
        let nums: Vec<f64> = data.iter().map(|v| v.as_f64().ok_or_else(|| format!("output '{name}' holds values that are not numbers ({datatype}): it is not a score"))).collect::<Result<_, _>>()?;
        let shape: Vec<u64> = out["shape"].as_array().map(|s| s.iter().filter_map(Value::as_u64).collect()).unwrap_or_default();
        let width = if shape.len() >= 2 { shape[1] as usize } else { 1 };
        if width == 0 || nums.len() != n * width {
            return Err(format!("output '{name}' has {} values of width {width} for {n} examples", nums.len()));
        }
        if width == 1 {
            self.not_labels(name, datatype, data)?;
            return Ok(nums);
        }
        let col = self.positive(width)?;
        Ok(nums.chunks(width).map(|c| c[col]).collect())
    }

    /// The scores in a TF Serving or MLflow answer: a list of numbers, of per-class lists, or of
    /// objects (per-class columns, or a probability/score/prediction field).
    fn parse_rows(&self, answer: &Value, n: usize) -> Result<Vec<f64>, String> {
        let e = &self.endpoint;
        let pick = |v: &Value| -> Option<Value> {
            match (&e.output, v) {
                (Some(o), Value::Object(m)) => m.get(o).cloned(),
                (_, v) => Some(v.clone()),
            }
        };
        let list: Vec<Value> = match answer {
            Value::Array(a) => a.clone(),
            Value::Object(m) => {
                let key = ["predictions", "outputs"].into_iter().find(|k| m.contains_key(*k)).ok_or("neither a list nor a 'predictions' / 'outputs' member")?;
                match pick(&m[key]).ok_or_else(|| format!("no output '{}' in the answer", e.output.as_deref().unwrap_or("")))? {
                    Value::Array(a) => a,
                    Value::Object(cols) => {
                        // Columnar answers: {"outputs": {"name": [...]}} — one output, or the chosen one.
                        let names: Vec<&String> = cols.keys().collect();
                        let chosen = cols.iter().find(|(k, _)| PROBABILITY_OUTPUTS.contains(&k.as_str())).or(if cols.len() == 1 { cols.iter().next() } else { None });
                        let (_, v) = chosen.ok_or_else(|| format!("the answer has outputs {}: set the endpoint's output", names.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")))?;
                        v.as_array().cloned().ok_or("an output that is not a list")?
                    }
                    _ => return Err("'predictions' is not a list".into()),
                }
            }
            _ => return Err("neither a list nor an object".into()),
        };
        if list.len() != n {
            return Err(format!("{} predictions for {n} examples", list.len()));
        }
        let mut out = Vec::with_capacity(n);
        let mut labels_only = true;
        let mut flat = Vec::new();
        for p in &list {
            let p = if e.output.is_some() && p.is_object() { pick(p).ok_or_else(|| format!("a prediction without '{}'", e.output.as_deref().unwrap_or("")))? } else { p.clone() };
            let x = match &p {
                Value::Number(x) => {
                    flat.push(p.clone());
                    x.as_f64().ok_or("a prediction is not a number")?
                }
                Value::Array(a) if a.len() == 1 => {
                    flat.push(a[0].clone());
                    a[0].as_f64().ok_or("a prediction is not a number")?
                }
                Value::Array(a) => {
                    labels_only = false;
                    a[self.positive(a.len())?].as_f64().ok_or("a probability is not a number")?
                }
                Value::Object(o) => {
                    labels_only = false;
                    // Rows of per-class columns ({"0": 0.8, "1": 0.2}), or a named field.
                    if let Some(v) = ["1", "1.0", "true", "True"].iter().find_map(|k| o.get(*k)) {
                        v.as_f64().ok_or("a probability is not a number")?
                    } else {
                        ["probability", "score", "prediction", "predictions"]
                            .iter()
                            .find_map(|k| o.get(*k))
                            .and_then(|v| match v {
                                Value::Array(a) if a.len() > 1 => self.positive(a.len()).ok().and_then(|c| a[c].as_f64()),
                                Value::Array(a) => a.first().and_then(Value::as_f64),
                                v => v.as_f64(),
                            })
                            .ok_or("an object without a numeric probability/score/prediction (set output, or positive_column)")?
                    }
                }
                _ => return Err("a prediction that is not a number, a list or an object".into()),
            };
            out.push(x);
        }
        if labels_only {
            self.not_labels(e.output.as_deref().unwrap_or("predictions"), "", &flat)?;
        }
        Ok(out)
    }

    fn parse(&self, answer: &Value, n: usize) -> Result<Vec<f64>, String> {
        if self.endpoint.protocol == "kserve-v2" { self.parse_v2(answer, n) } else { self.parse_rows(answer, n) }
    }

    async fn predict_async(&self, batch: &Batch) -> Result<Vec<f64>, ModelError> {
        let e = &self.endpoint;
        let err = |why: String| ModelError::Run { model: e.name.clone(), why };
        let url = self.url(false).map_err(&err)?;
        let shown = crate::outbound::mask(&url);
        let headers = self.headers();
        let v2 = if e.protocol == "kserve-v2" { Some(self.v2.get_or_try_init(|| self.v2_inputs()).await.map_err(&err)?) } else { None };
        // One check, resolution and client for every batch of the call.
        let pinned = self.outbound.connect(&url, Duration::from_millis(e.timeout_ms)).await.map_err(|x| err(x.to_string()))?;
        let mut out = Vec::with_capacity(batch.rows);
        for start in (0..batch.rows).step_by(e.batch_size.max(1)) {
            let rows = start..(start + e.batch_size.max(1)).min(batch.rows);
            let n = rows.len();
            let body = serde_json::to_vec(&self.body(batch, rows, v2)).map_err(|x| err(x.to_string()))?;
            let (_, bytes) = self.outbound.send(&pinned, body, &headers).await.map_err(|x| match x.status() {
                Some(400 | 404 | 415 | 422 | 500) => err(format!("{x}: {}", hint(&e.protocol))),
                _ => err(x.to_string()),
            })?;
            let answer: Value = serde_json::from_slice(&bytes).map_err(|x| err(format!("{shown} answered with something that is not JSON ({x})")))?;
            out.extend(self.parse(&answer, n).map_err(|why| err(format!("{shown} answered in an unexpected shape: {why} ({})", hint(&e.protocol))))?);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn model(protocol: &str, patch: Value) -> HttpModel {
        let mut e = json!({"name": "m", "url": "http://127.0.0.1:9", "protocol": protocol, "model": "m"});
        e.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        let endpoint: Endpoint = serde_json::from_value(e).unwrap();
        HttpModel::new(endpoint, vec![("age".into(), true), ("sex".into(), false)], true, Arc::new(Outbound::default()))
    }

    #[test]
    fn kserve_outputs_are_chosen_by_name_and_the_positive_column() {
        let answer = json!({"outputs": [
            {"name": "predict", "shape": [2], "datatype": "INT64", "data": [0, 1]},
            {"name": "predict_proba", "shape": [2, 2], "datatype": "FP64", "data": [0.8, 0.2, 0.3, 0.7]},
        ]});
        assert_eq!(model("kserve-v2", json!({})).parse(&answer, 2).unwrap(), vec![0.2, 0.7]);
        assert_eq!(model("kserve-v2", json!({"positive_column": 0})).parse(&answer, 2).unwrap(), vec![0.8, 0.3]);
        let labels = model("kserve-v2", json!({"output": "predict"})).parse(&answer, 2).unwrap_err();
        assert!(labels.contains("holds class labels"), "{labels}");
        let missing = model("kserve-v2", json!({"output": "probs"})).parse(&answer, 2).unwrap_err();
        assert!(missing.contains("no output 'probs'") && missing.contains("predict_proba"), "{missing}");
        let three = json!({"outputs": [{"name": "p", "shape": [1, 3], "datatype": "FP32", "data": [0.2, 0.5, 0.3]}]});
        assert!(model("kserve-v2", json!({})).parse(&three, 1).unwrap_err().contains("set positive_column"));
        assert_eq!(model("kserve-v2", json!({"positive_column": 2})).parse(&three, 1).unwrap(), vec![0.3]);
        let two = json!({"outputs": [{"name": "a", "data": [0.1]}, {"name": "b", "data": [0.2]}]});
        assert!(model("kserve-v2", json!({})).parse(&two, 1).unwrap_err().contains("set the endpoint's output"));
    }

    #[test]
    fn row_answers_of_every_shape() {
        let m = model("mlflow", json!({}));
        assert_eq!(m.parse(&json!([0.25, 0.5]), 2).unwrap(), vec![0.25, 0.5]);
        assert_eq!(m.parse(&json!({"predictions": [[0.9, 0.1], [0.4, 0.6]]}), 2).unwrap(), vec![0.1, 0.6]);
        // Rows of per-class columns, as a pandas frame of predict_proba is written.
        assert_eq!(m.parse(&json!({"predictions": [{"0": 0.7, "1": 0.3}]}), 1).unwrap(), vec![0.3]);
        // Integer 0/1 predictions are labels; 0.0 and 1.0 are probabilities.
        assert!(m.parse(&json!({"predictions": [0, 1, 1]}), 3).unwrap_err().contains("holds class labels"));
        assert_eq!(m.parse(&json!({"predictions": [0.0, 1.0]}), 2).unwrap(), vec![0.0, 1.0]);
        assert!(m.parse(&json!([0.1]), 2).unwrap_err().contains("1 predictions for 2 examples"));
        // TF Serving columnar answers.
        let tf = model("tf-serving", json!({"layout": "columns"}));
        assert_eq!(tf.parse(&json!({"outputs": [[0.2, 0.8]]}), 1).unwrap(), vec![0.8]);
        assert_eq!(tf.parse(&json!({"outputs": {"probabilities": [[0.6, 0.4]], "classes": [[0, 1]]}}), 1).unwrap(), vec![0.4]);
        let named = model("tf-serving", json!({"output": "score"}));
        assert_eq!(named.parse(&json!({"predictions": [{"score": 0.3, "label": 1}]}), 1).unwrap(), vec![0.3]);
    }

    #[test]
    fn urls_and_bodies_follow_the_layout() {
        assert_eq!(model("kserve-v2", json!({"model_version": "3"})).url(false).unwrap(), "http://127.0.0.1:9/v2/models/m/versions/3/infer");
        assert_eq!(model("kserve-v2", json!({})).url(true).unwrap(), "http://127.0.0.1:9/v2/models/m");
        assert_eq!(model("tf-serving", json!({"model_version": "2"})).url(false).unwrap(), "http://127.0.0.1:9/v1/models/m/versions/2:predict");
        let batch = Batch { rows: 2, columns: [("age".to_string(), Values::Numeric(vec![30.0, f64::NAN])), ("sex".to_string(), Values::Text(vec!["F".into(), "M".into()]))].into() };
        let m = model("kserve-v2", json!({"output": "predict_proba"}));
        let pd = V2Inputs::Columns { tensors: vec![("age".into(), "age".into(), "FP64".into()), ("sex".into(), "sex".into(), "BYTES".into())], pd: true };
        let body = m.body(&batch, 0..2, Some(&pd));
        assert_eq!(body["parameters"], json!({"content_type": "pd"}));
        assert_eq!(body["inputs"][0], json!({"name": "age", "shape": [2, 1], "datatype": "FP64", "data": [30.0, null]}));
        assert_eq!(body["outputs"], json!([{"name": "predict_proba"}]));
        let matrix = V2Inputs::Matrix { name: "input-0".into(), datatype: "INT64".into() };
        let one = Batch { rows: 1, columns: [("age".to_string(), Values::Numeric(vec![30.0])), ("sex".to_string(), Values::Numeric(vec![1.0]))].into() };
        assert_eq!(m.body(&one, 0..1, Some(&matrix))["inputs"][0], json!({"name": "input-0", "shape": [1, 2], "datatype": "INT64", "data": [30, 1]}));
        let records = model("mlflow", json!({"layout": "records"})).body(&batch, 0..1, None);
        assert_eq!(records, json!({"dataframe_records": [{"age": 30.0, "sex": "F"}]}));
        let columns = model("tf-serving", json!({"layout": "columns"})).body(&batch, 0..2, None);
        assert_eq!(columns, json!({"inputs": {"age": [30.0, null], "sex": ["F", "M"]}}));
    }

    #[test]
    fn settings_are_checked() {
        let outbound = Outbound::new("127.0.0.1", true, 1 << 20).unwrap();
        let check = |patch: Value| model("kserve-v2", patch).endpoint.validate(&outbound);
        assert!(check(json!({})).is_ok());
        assert!(check(json!({"layout": "records"})).unwrap_err().contains("pd, columns, tensor, metadata"));
        assert!(check(json!({"batch_size": 0})).unwrap_err().contains("batch_size"));
        assert!(check(json!({"headers": {"Host": "evil"}})).unwrap_err().contains("not a header"));
        assert!(check(json!({"headers": {"x-key": "a\r\nb"}})).unwrap_err().contains("control characters"));
        assert!(check(json!({"model_version": ".."})).unwrap_err().contains("model_version"));
        assert!(check(json!({"headers": {"x-api-key": "k"}})).is_ok());
    }
}
