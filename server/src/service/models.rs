//! The models a run can call — attached ONNX files, HTTP endpoints, the benchmark model — found
//! by name and loaded once (then cached): one registry for what-if, attacks, fairness flip rates
//! and predictions.

use std::sync::Arc;

use strata_app::model::{AttachedModel, ColumnKind, EndpointBrief, EndpointTest, EndpointTestRow, Role, RunDetail};

use super::{AppState, ServiceError};
use crate::models::http::{Endpoint, HttpModel};
use crate::models::onnx::OnnxModel;
use crate::models::{Model, ModelError};
use crate::store::cache::LoadedModel;

impl From<ModelError> for ServiceError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::MissingInput { .. } | ModelError::WrongType { .. } => ServiceError::BadRequest(e.to_string()),
            other => ServiceError::Model(other.to_string()),
        }
    }
}

/// The models a run can call: (score column, attachment name) for each ONNX attachment. An
/// attachment without a declared score column is matched by name (`model_gbt.onnx` ↔ `score_gbt`
/// or `prediction_gbt`), else called by its file stem.
pub fn attached_models(detail: &RunDetail) -> Vec<(String, String)> {
    detail
        .attachments
        .iter()
        .filter(|a| a.media_type == "application/onnx" || a.name.ends_with(".onnx"))
        .map(|a| {
            let stem = a.name.trim_end_matches(".onnx");
            let suffix = stem.strip_prefix("model_").unwrap_or(stem);
            let score = a.model.clone().or_else(|| detail.summary.models.iter().find(|m| m.rsplit_once('_').map(|(_, s)| s) == Some(suffix)).cloned()).unwrap_or_else(|| stem.to_string());
            (score, a.name.clone())
        })
        .collect()
}

pub(crate) fn is_numeric(detail: &RunDetail, name: &str) -> bool {
    detail.columns.iter().any(|c| c.name == name && matches!(c.kind, ColumnKind::Numeric | ColumnKind::Boolean))
}

pub(crate) fn feature_columns(detail: &RunDetail) -> Vec<(String, ColumnKind)> {
    detail.columns.iter().filter(|c| c.role == Role::Feature).map(|c| (c.name.clone(), c.kind)).collect()
}

/// The setting key of a run's HTTP endpoints.
pub const ENDPOINTS_KEY: &str = "endpoints";

/// An endpoint as stored: its token sealed with the server's key.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredEndpoint {
    #[serde(flatten)]
    endpoint: Endpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_sealed: Option<String>,
    /// The extra headers (a JSON object), sealed like the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    headers_sealed: Option<String>,
}

impl AppState {
    /// The HTTP endpoints stored with a run, as the API shows them (tokens left out).
    pub async fn endpoints(&self, id: &str) -> Result<Vec<Endpoint>, ServiceError> {
        Ok(self.stored_endpoints(id).await?.into_iter().map(|s| s.endpoint).collect())
    }

    async fn stored_endpoints(&self, id: &str) -> Result<Vec<StoredEndpoint>, ServiceError> {
        Ok(match self.store.get_setting(id, ENDPOINTS_KEY).await? {
            Some(text) => {
                let mut list: Vec<StoredEndpoint> = serde_json::from_str(&text).map_err(|e| ServiceError::Model(format!("stored endpoints are unreadable: {e}")))?;
                for s in &mut list {
                    s.endpoint.token = None;
                    s.endpoint.has_token = s.token_sealed.is_some();
                    s.endpoint.headers = None;
                    if s.headers_sealed.is_none() {
                        s.endpoint.header_names.clear();
                    }
                }
                list
            }
            None => vec![],
        })
    }

    /// Replaces a run's HTTP endpoints (validated); returns them as the API shows them. A token
    /// is sealed before it is stored; an endpoint sent without one keeps its stored token.
    pub async fn save_endpoints(&self, id: &str, endpoints: &[Endpoint]) -> Result<Vec<Endpoint>, ServiceError> {
        for e in endpoints {
            e.validate(&self.outbound).map_err(ServiceError::BadRequest)?;
        }
        let before = self.stored_endpoints(id).await?;
        let mut stored = Vec::with_capacity(endpoints.len());
        let seal = |text: &str| self.secrets.seal(text).map_err(|x| ServiceError::Model(x.to_string()));
        for e in endpoints {
            let previous = before.iter().find(|b| b.endpoint.name == e.name);
            let token_sealed = match e.token.as_deref() {
                Some("") => None,
                Some(t) => Some(seal(t)?),
                None => previous.and_then(|b| b.token_sealed.clone()),
            };
            let (headers_sealed, header_names) = match &e.headers {
                Some(h) if h.is_empty() => (None, vec![]),
                Some(h) => (Some(seal(&serde_json::to_string(h).map_err(|x| ServiceError::BadRequest(x.to_string()))?)?), h.keys().cloned().collect()),
                None => previous.map(|b| (b.headers_sealed.clone(), b.endpoint.header_names.clone())).unwrap_or_default(),
            };
            let endpoint = Endpoint { token: None, has_token: token_sealed.is_some(), headers: None, header_names, ..e.clone() };
            stored.push(StoredEndpoint { endpoint, token_sealed, headers_sealed });
        }
        let text = serde_json::to_string(&stored).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
        if !self.store.put_setting(id, ENDPOINTS_KEY, &text).await? {
            return Err(ServiceError::NotFound(id.to_string()));
        }
        self.models.remove_prefix(&format!("{id}\u{0}endpoint:"));
        self.results.remove_prefix(&super::attack::analysis_key(id));
        Ok(stored.into_iter().map(|s| s.endpoint).collect())
    }

    /// Every model a run can call: attached ONNX files, then named HTTP endpoints, as
    /// (name, source) where source is the attachment or `endpoint:NAME`.
    pub async fn callable_models(&self, id: &str, detail: &RunDetail) -> Result<Vec<(String, String)>, ServiceError> {
        let mut out = attached_models(detail);
        out.extend(self.endpoints(id).await?.into_iter().map(|e| (e.name.clone(), format!("endpoint:{}", e.name))));
        if detail.summary.models.iter().any(|m| m == super::benchmark::COLUMN) {
            out.push((super::benchmark::COLUMN.to_string(), "benchmark".to_string()));
        }
        Ok(out)
    }

    /// The model behind a run's score column or endpoint name (loaded once, then cached).
    pub async fn model(&self, id: &str, detail: &RunDetail, score: &str) -> Result<Arc<dyn Model>, ServiceError> {
        let attached = self.callable_models(id, detail).await?;
        let Some((_, file)) = attached.iter().find(|(s, _)| s == score) else {
            return Err(ServiceError::BadRequest(format!(
                "no model file is attached for '{score}' (attached: {})",
                if attached.is_empty() { "none".to_string() } else { attached.iter().map(|(s, f)| format!("{s} ← {f}")).collect::<Vec<_>>().join(", ") }
            )));
        };
        let key = format!("{id}\u{0}{file}");
        if let Some(m) = self.models.get(&key) {
            return Ok(m.model.clone());
        }
        if file == "benchmark" {
            return self.benchmark_model(id).await?.ok_or_else(|| ServiceError::Missing(format!("run {id} has no benchmark model")));
        }
        if let Some(name) = file.strip_prefix("endpoint:") {
            return self.endpoint_model(id, detail, name).await;
        }
        // Concurrent first calls (a page's several requests) load the file once.
        self.one_at_a_time(&format!("model\u{0}{key}"), self.load_onnx(id, file, score, &key)).await
    }

    /// The model behind a run's HTTP endpoint (its secrets opened; built once, then cached).
    pub async fn endpoint_model(&self, id: &str, detail: &RunDetail, name: &str) -> Result<Arc<dyn Model>, ServiceError> {
        let key = format!("{id}\u{0}endpoint:{name}");
        if let Some(m) = self.models.get(&key) {
            return Ok(m.model.clone());
        }
        let stored = self.stored_endpoints(id).await?.into_iter().find(|e| e.endpoint.name == name).ok_or_else(|| ServiceError::NotFound(format!("endpoint '{name}' of run {id}")))?;
        let mut endpoint = stored.endpoint;
        endpoint.token = stored.token_sealed.as_deref().map(|t| self.secrets.open(t)).transpose().map_err(|e| ServiceError::Model(format!("endpoint '{name}': {e}")))?;
        let headers = stored.headers_sealed.as_deref().map(|t| self.secrets.open(t)).transpose().map_err(|e| ServiceError::Model(format!("endpoint '{name}': {e}")))?;
        endpoint.headers = headers.map(|h| serde_json::from_str(&h)).transpose().map_err(|e| ServiceError::Model(format!("endpoint '{name}': stored headers are unreadable ({e})")))?;
        let features: Vec<String> = if endpoint.inputs.is_empty() { feature_columns(detail).into_iter().map(|(n, _)| n).collect() } else { endpoint.inputs.clone() };
        let columns = features.into_iter().map(|c| { let numeric = is_numeric(detail, &c); (c, numeric) }).collect();
        let classification = detail.summary.task != strata_app::model::Task::Regression;
        let model: Arc<dyn Model> = Arc::new(HttpModel::new(endpoint, columns, classification, self.outbound.clone()));
        self.models.insert(&key, Arc::new(LoadedModel { model: model.clone(), bytes: 64 << 10 }));
        Ok(model)
    }

    /// The endpoints as the pages list them.
    pub async fn endpoint_briefs(&self, id: &str) -> Result<Vec<EndpointBrief>, ServiceError> {
        Ok(self
            .endpoints(id)
            .await?
            .into_iter()
            .map(|e| EndpointBrief { url: crate::outbound::mask(&e.url), layout: e.layout().to_string(), output: e.output.clone(), name: e.name, protocol: e.protocol, model: e.model })
            .collect())
    }

    /// "Test endpoint": predicts the run's first `rows` rows (1..=1000, default 100) through the
    /// endpoint and compares them with a stored score column (`compare`, else the run's column of
    /// the endpoint's name), so a wrong layout or output shows before anyone trusts a what-if
    /// answer. A failed prediction is an answer too (`error`, naming the setting to change).
    pub async fn test_endpoint(&self, id: &str, name: &str, rows: Option<usize>, compare: Option<&str>) -> Result<EndpointTest, ServiceError> {
        let detail = self.run_detail(id).await?;
        if !self.endpoints(id).await?.iter().any(|e| e.name == name) {
            return Err(ServiceError::NotFound(format!("endpoint '{name}' of run {id}")));
        }
        let compared_with = match compare {
            Some(c) if detail.summary.models.iter().any(|m| m == c) => Some(c.to_string()),
            Some(c) => return Err(ServiceError::BadRequest(format!("'{c}' is not a score column of the run (score columns: {})", detail.summary.models.join(", ")))),
            None => detail.summary.models.iter().find(|m| *m == name).cloned(),
        };
        let model = self.endpoint_model(id, &detail, name).await;
        self.compare_with_scores(id, name, model, rows, compared_with).await
    }

    /// Predicts the run's first `rows` rows (1..=1000, default 100) with `model` and compares them
    /// with the stored score column `compared_with`: largest and mean difference, the worst row,
    /// the first rows; a model that cannot predict gives `error`.
    async fn compare_with_scores(&self, id: &str, name: &str, model: Result<Arc<dyn Model>, ServiceError>, rows: Option<usize>, compared_with: Option<String>) -> Result<EndpointTest, ServiceError> {
        let frame = self.rows(id).await?.frame;
        let n = rows.unwrap_or(100).clamp(1, 1000).min(frame.height());
        let head = frame.head(Some(n));
        let stored: Vec<Option<f64>> = match &compared_with {
            Some(c) => head.column(c)?.cast(&polars::prelude::DataType::Float64)?.f64()?.iter().collect(),
            None => vec![None; n],
        };
        let batch = Arc::new(crate::models::Batch::from_frame(&head)?);
        let started = std::time::Instant::now();
        let predicted = match model {
            Ok(model) => self.work.run(move || model.predict(&batch)).await?,
            Err(e) => Err(ModelError::Run { model: name.to_string(), why: e.to_string() }),
        };
        let millis = started.elapsed().as_millis() as u64;
        let mut out = EndpointTest { endpoint: name.to_string(), rows: n, compared_with, max_abs_diff: None, mean_abs_diff: None, worst: None, first: vec![], agrees: None, error: None, millis };
        let predicted = match predicted {
            Ok(p) => p,
            Err(e) => {
                out.error = Some(e.to_string());
                return Ok(out);
            }
        };
        let all: Vec<EndpointTestRow> = predicted.iter().zip(&stored).enumerate().map(|(row, (p, s))| EndpointTestRow { row, stored: *s, predicted: *p }).collect();
        let diffs: Vec<(usize, f64)> = all.iter().filter_map(|r| r.stored.map(|s| (r.row, (s - r.predicted).abs()))).collect();
        if out.compared_with.is_some() && !diffs.is_empty() {
            // NaN (a missing prediction) counts as the largest difference.
            let (worst, max) = diffs.iter().copied().fold((0, -1.0f64), |(wi, wm), (i, d)| if d.is_nan() || d > wm { (i, if d.is_nan() { f64::INFINITY } else { d }) } else { (wi, wm) });
            out.max_abs_diff = Some(max);
            out.mean_abs_diff = Some(diffs.iter().map(|(_, d)| *d).sum::<f64>() / diffs.len() as f64);
            out.worst = Some(all[worst].clone());
            out.agrees = Some(max <= 1e-6);
        }
        out.first = all.into_iter().take(10).collect();
        Ok(out)
    }

    /// Attaches an ONNX model file to an existing run (replacing a file of the same name), bound
    /// to the score column `score` when given. It is loaded first (a model that does not load is
    /// refused, nothing stored), then its predictions of the first rows are compared with the bound
    /// score column: a mismatch is reported in `check`, not refused (the file may be a newer model).
    pub async fn attach_model(&self, id: &str, file: &str, content: Vec<u8>, score: Option<String>) -> Result<AttachedModel, ServiceError> {
        let detail = self.run_detail(id).await?;
        if let Some(s) = &score {
            if !detail.summary.models.contains(s) {
                return Err(ServiceError::BadRequest(format!("'{s}' is not a score column of the run (score columns: {})", detail.summary.models.join(", "))));
            }
        }
        if !file.ends_with(".onnx") || file == "models.json" {
            return Err(ServiceError::BadRequest(format!("'{file}': a model file is an ONNX file named *.onnx")));
        }
        if content.len() as u64 > self.limits.max_model_bytes {
            return Err(crate::ingest::IngestError::TooLarge { file: file.to_string(), limit: self.limits.max_model_bytes }.into());
        }
        let called = score.clone().unwrap_or_else(|| file.trim_end_matches(".onnx").to_string());
        let matrix = self.matrix_columns(id).await?;
        let (name, bytes) = (called.clone(), content.clone());
        let load = self.work.run(move || OnnxModel::load(&name, &bytes, matrix));
        let model: Arc<dyn Model> = match tokio::time::timeout(self.limits.model_check_timeout, load).await {
            Err(_) => return Err(ServiceError::BadRequest(format!("model {file}: loading it took longer than {} s; not stored", self.limits.model_check_timeout.as_secs()))),
            Ok(r) => Arc::new(r?.map_err(|e| ServiceError::BadRequest(format!("{e}; not stored")))?),
        };
        let info = strata_app::model::AttachmentInfo { name: file.to_string(), media_type: "application/onnx".into(), bytes: content.len() as u64, model: score.clone() };
        if !self.store.put_attachment(id, &crate::store::NewAttachment { info, content }).await? {
            return Err(ServiceError::NotFound(id.to_string()));
        }
        self.models.remove_prefix(&format!("{id}\u{0}"));
        self.results.remove_prefix(&super::attack::analysis_key(id));
        let check = self.compare_with_scores(id, &called, Ok(model), None, score.clone()).await?;
        Ok(AttachedModel { name: file.to_string(), model: score, called, check })
    }

    /// The model card of every ONNX file attached to a run (read and loaded once per request).
    pub async fn model_cards(&self, id: &str) -> Result<Vec<strata_app::model::ModelCard>, ServiceError> {
        let detail = self.run_detail(id).await?;
        let matrix = self.matrix_columns(id).await?;
        let mut cards = Vec::new();
        for (called, file) in attached_models(&detail) {
            let Some((_, bytes)) = self.store.get_attachment(id, &file).await? else { continue };
            let columns = matrix.clone();
            let mut card = self.quick.run(move || crate::models::onnx::card(&bytes, columns)).await?.map_err(ServiceError::BadRequest)?;
            card.model = detail.attachments.iter().find(|a| a.name == file).and_then(|a| a.model.clone()).or_else(|| detail.summary.models.contains(&called).then(|| called.clone()));
            card.file = file;
            card.called = called;
            cards.push(card);
        }
        Ok(cards)
    }

    /// The columns of a model's single `[N, k]` input, from the run's `models.json`, if any.
    async fn matrix_columns(&self, id: &str) -> Result<Option<Vec<String>>, ServiceError> {
        let card = self.store.get_attachment(id, "models.json").await?.and_then(|(_, b)| serde_json::from_slice::<serde_json::Value>(&b).ok());
        Ok(card.and_then(|c| c["inputs"].as_array().map(|a| a.iter().filter_map(|i| i["name"].as_str().map(str::to_string)).collect::<Vec<_>>())))
    }

    async fn load_onnx(&self, id: &str, file: &str, score: &str, key: &str) -> Result<Arc<dyn Model>, ServiceError> {
        if let Some(m) = self.models.get(key) {
            return Ok(m.model.clone());
        }
        let (_, bytes) = self.store.get_attachment(id, file).await?.ok_or_else(|| ServiceError::Missing(format!("run {id} has no model '{file}'")))?;
        // A single [N, k] input needs its columns named: from the run's models.json, if any.
        let matrix = self.matrix_columns(id).await?;
        let name = score.to_string();
        // An optimised plan holds the weights and its buffers: charge it four times the file.
        let bytes_charged = bytes.len().saturating_mul(4).max(64 << 10);
        // Loading is short (tenths of a second) and what-if edits wait for it: the quick lane.
        let model: Arc<dyn Model> = self.quick.run(move || OnnxModel::load(&name, &bytes, matrix))
            .await?
            .map(|m| Arc::new(m) as Arc<dyn Model>)?;
        self.models.insert(key, Arc::new(LoadedModel { model: model.clone(), bytes: bytes_charged }));
        Ok(model)
    }
}
