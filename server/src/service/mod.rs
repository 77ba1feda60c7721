//! The application's state and use cases: ingest a file, load a run, build a page's data.
//! HTTP handlers, server functions and the CLI all go through here.

use std::path::Path;
use std::sync::Arc;

use polars::prelude::*;
use strata_app::model::{
    AttachmentInfo, ClassScore, ExamplesPage, IngestSpec, RowSample, MetricsResult, Role, RunDetail, RunOverview, RunSummary, SliceView, Task,
};
use strata_app::server_fns::{Backend, BackendError};

use crate::charts;
use crate::eval;
use crate::eval::sliced::{BootstrapSize, MetricsRequest, Prepared, RequestError, bootstrap_size, compute_prepared_tracked, parse_thresholds, prepare};
use crate::ingest::{self, IngestError};
use crate::settings::Limits;
use crate::store::cache::{ByteLru, FrameCache};
use crate::store::{NewAttachment, NewRun, Store, StoreError};

pub mod columns;
pub mod discover;
pub mod drift;
pub mod export;
pub mod fairness;
pub mod residuals;
pub mod whatif;
pub mod models;
pub mod attack;
pub mod explain;
pub mod rules;
pub mod benchmark;
pub mod alerts;
pub mod projects;
pub mod params;
pub mod teams;
pub mod work;
pub mod jobs;
pub mod external;
pub mod spark_runs;

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No run with this id.
    #[error("no run with id '{0}'")]
    NotFound(String),
    /// Something other than a run is missing (the message says what).
    #[error("{0}")]
    Missing(String),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("engine")]
    Eval(#[from] eval::EvalError),
    #[error("polars")]
    Polars(#[from] PolarsError),
    #[error("background task failed: {0}")]
    Join(String),
    /// A model could not be loaded or run (the message says why: an unsupported operator, …).
    #[error("{0}")]
    Model(String),
    /// Every worker is busy and the queue is full: try again shortly.
    #[error("the server is busy: every worker is taken and the queue is full; try again in a few seconds")]
    Busy,
    /// The caller may not do this (the message says what it needs).
    #[error("{0}")]
    Forbidden(String),
    /// A name that is already taken.
    #[error("{0}")]
    Conflict(String),
    /// The work was cancelled (asked, or its client went away) before it finished.
    #[error("the work was cancelled before it finished")]
    Cancelled,
    /// The view needs the run's rows, and an external run's stay in its dataset.
    #[error("needs rows: not available for an external run yet")]
    NeedsRows,
}

/// An error and its sources, `outer: inner: …`, for the log (messages do not repeat their source).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        // Some errors (sqlx's) already print their source: do not say it twice.
        let part = s.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub cache: Arc<FrameCache>,
    /// The engine's prepared cells per (run, model, slicing), so a request that only changes
    /// thresholds, the confidence level or the bootstrap reuses them.
    pub prepared: Arc<ByteLru<Prepared>>,
    /// Finished analyses per (run, request): an identical repeat is answered without a worker.
    pub results: Arc<crate::store::cache::ResultCache>,
    /// Loaded models per (run, attachment): loading and optimising an ONNX file happens once.
    /// Bounded by bytes (an optimised ONNX plan is charged a few times its file size).
    pub models: Arc<crate::store::cache::ModelCache>,
    /// One lock per run or model being loaded, so concurrent cold requests load it once.
    loading: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    pub limits: Limits,
    /// Where uploads are spooled while they are checked.
    pub tmp_dir: std::path::PathBuf,
    /// Wakes the webhook outbox worker when an alert is raised.
    pub outbox_kick: Arc<tokio::sync::Notify>,
    /// The admin's rules for calls to model endpoints and webhooks.
    pub outbound: Arc<crate::outbound::Outbound>,
    /// Seals endpoint tokens and webhook secrets before they are stored.
    pub secrets: crate::secrets::SecretBox,
    /// CPU-heavy work runs here: a worker per core, a bounded queue.
    pub work: Arc<work::WorkQueue>,
    /// Names the server answers to besides its address (`STRATA_ALLOWED_HOSTS`).
    pub allowed_hosts: Vec<String>,
    /// Short jobs (a few predictions for what-if) get their own lane, so they never wait behind
    /// a first analysis of a large run.
    pub quick: Arc<work::WorkQueue>,
    /// Sign-in: team mode, session lifetimes, the sign-in rate limiter.
    pub auth: Arc<crate::auth::Auth>,
    /// Long requests their clients track (progress, cancel).
    pub jobs: Arc<jobs::Jobs>,
    /// The directories external datasets may be read from in team mode (canonical paths;
    /// `--external-root`).
    pub external_roots: Arc<Vec<std::path::PathBuf>>,
    /// Time and size limits of the Spark Connect calls of external runs in Spark.
    pub spark_options: crate::spark::SparkOptions,
}

impl AppState {
    /// Refuses a request whose model predictions would exceed the budget, before any is made:
    /// a 400 that gives the cost and how to shrink it.
    pub(crate) fn check_predictions(&self, cost: u64, what: &str, shrink: &str) -> Result<(), ServiceError> {
        let limit = self.limits.max_predictions;
        if cost <= limit {
            return Ok(());
        }
        Err(ServiceError::BadRequest(format!(
            "this {what} would make {cost} model predictions; the limit is {limit} (STRATA_MAX_PREDICTIONS): {shrink}"
        )))
    }
}

/// Removes every file in the upload spool directory (left by a crash: an upload's temporary
/// files are otherwise deleted when the request ends); returns how many. Call before serving.
pub fn clean_spool(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.filter_map(Result::ok).filter(|e| e.file_type().is_ok_and(|t| t.is_file())).filter(|e| std::fs::remove_file(e.path()).is_ok()).count()
}

/// A model file to store with a new run.
pub struct Attachment {
    pub name: String,
    pub media_type: String,
    pub model: Option<String>,
    pub content: Vec<u8>,
}

impl AppState {
    pub fn new(store: Store, cache_bytes: usize, limits: Limits, tmp_dir: std::path::PathBuf) -> Self {
        // Prepared cells take at most half the frames' budget on top of it.
        AppState {
            store,
            cache: Arc::new(FrameCache::new(cache_bytes)),
            prepared: Arc::new(ByteLru::new(cache_bytes / 2)),
            results: Arc::new(ByteLru::new(cache_bytes / 8)),
            models: Arc::new(ByteLru::new(cache_bytes / 4)),
            loading: Default::default(),
            tmp_dir,
            outbox_kick: Default::default(),
            outbound: Default::default(),
            secrets: crate::secrets::SecretBox::ephemeral(),
            work: Arc::new(work::WorkQueue::new(limits.workers, limits.max_queue)),
            quick: Arc::new(work::WorkQueue::new(limits.workers, limits.max_queue)),
            allowed_hosts: vec![],
            auth: Arc::new(crate::auth::Auth::new(Default::default())),
            jobs: Default::default(),
            external_roots: Default::default(),
            spark_options: crate::spark::SparkOptions { query_timeout: limits.spark_query_timeout, ..Default::default() },
            limits,
        }
    }

    /// The limits of Spark Connect calls (query time, answer size).
    pub fn with_spark_options(mut self, options: crate::spark::SparkOptions) -> Self {
        self.spark_options = options;
        self
    }

    /// The admin's outbound rules (the default allows no outbound call).
    pub fn with_outbound(mut self, outbound: crate::outbound::Outbound) -> Self {
        self.outbound = Arc::new(outbound);
        self
    }

    /// Names the server answers to besides its own address (a reverse proxy's name).
    pub fn with_allowed_hosts(mut self, hosts: Vec<String>) -> Self {
        self.allowed_hosts = hosts;
        self
    }

    /// How sign-in behaves (team mode forced, session lifetimes, cookies).
    pub fn with_auth(mut self, config: crate::auth::AuthConfig) -> Self {
        self.auth = Arc::new(crate::auth::Auth::new(config));
        self
    }

    /// The directories external datasets may be read from in team mode; each must exist (it is
    /// kept canonical, so a path is compared with where it really leads).
    pub fn with_external_roots(mut self, roots: &[std::path::PathBuf]) -> std::io::Result<Self> {
        let canon = roots.iter().map(std::fs::canonicalize).collect::<std::io::Result<Vec<_>>>()?;
        self.external_roots = Arc::new(canon);
        Ok(self)
    }

    /// The key that seals stored secrets (the default is a random key that dies with the process).
    pub fn with_secrets(mut self, secrets: crate::secrets::SecretBox) -> Self {
        self.secrets = secrets;
        self
    }

    /// Reads, validates and stores a file as a new run; returns its id. Nothing is stored unless
    /// every check passes, and the write itself is one transaction.
    pub async fn ingest(
        &self,
        path: &Path,
        file_name: &str,
        spec: IngestSpec,
        attachments: Vec<Attachment>,
    ) -> Result<String, ServiceError> {
        if spec.name.trim().is_empty() {
            return Err(ServiceError::BadRequest("the run needs a name (spec.name)".into()));
        }
        let mut spec = spec;
        spec.project = normalize_label("project", spec.project)?;
        spec.version = normalize_label("version", spec.version)?;
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if size > self.limits.max_upload_bytes {
            return Err(IngestError::TooLarge { file: file_name.into(), limit: self.limits.max_upload_bytes }.into());
        }
        self.check_models(&attachments).await?;
        let (path, file_name_owned, limits) = (path.to_path_buf(), file_name.to_string(), self.limits.ingest());
        let spec_for_task = spec.clone();
        // Parsing and Parquet encoding are CPU-bound: keep them off the async workers.
        let (run, frame) = self.work.run_tracked(move |progress| -> Result<(NewRun, DataFrame), ServiceError> {
            let ing = ingest::ingest_file_tracked(&path, &file_name_owned, &spec_for_task, &limits, progress)?;
            progress.stage("storing");
            let mut frame = ing.frame;
            let mut columns = eval::column_summaries(&frame, |c| ing.roles.role_of(c).unwrap_or(Role::Feature))?;
            for c in &mut columns {
                c.class_score = ing.roles.class_model_of(&c.name).map(|(model, class)| ClassScore { model: model.into(), class: class.into() });
            }
            let mut parquet = Vec::new();
            ParquetWriter::new(&mut parquet).with_compression(ParquetCompression::Lz4Raw).finish(&mut frame)?;
            let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
            let created_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            let run_time = ing.roles.timestamp.as_deref().and_then(|c| latest_time(&frame, c)).unwrap_or_else(|| created_at.clone());
            let detail = RunDetail {
                summary: RunSummary {
                    id,
                    name: spec_for_task.name.trim().to_string(),
                    task: ing.task,
                    models: ing.roles.scores.clone(),
                    rows: frame.height() as u64,
                    created_at,
                    tags: spec_for_task.tags.clone(),
                    source_file: file_name_owned.clone(),
                    project: spec_for_task.project.clone(),
                    version: spec_for_task.version.clone(),
                    run_time,
                    source: None,
                },
                label: ing.roles.label.clone(),
                columns,
                attachments: vec![],
            };
            Ok((NewRun { detail, parquet, attachments: vec![], source_secret: None }, frame))
        })
        .await??;
        let mut run = run;
        let mut attachments = attachments;
        bind_models(&spec.models, &run.detail.summary.models, &mut attachments)?;
        run.attachments = attachments
            .into_iter()
            .map(|a| NewAttachment {
                info: AttachmentInfo { name: a.name, media_type: a.media_type, bytes: a.content.len() as u64, model: a.model },
                content: a.content,
            })
            .collect();
        self.store.insert_run(&run).await?;
        let id = run.detail.summary.id.clone();
        self.cache.insert(&id, Arc::new(frame));
        Ok(id)
    }

    /// Refuses a broken or hostile model at upload, not at first use: each ONNX attachment must be
    /// within the size limit and parse and optimise in a worker within the time limit.
    async fn check_models(&self, attachments: &[Attachment]) -> Result<(), ServiceError> {
        let card = attachments.iter().find(|a| a.name == "models.json").and_then(|a| serde_json::from_slice::<serde_json::Value>(&a.content).ok());
        let columns: Vec<String> = card.and_then(|c| c["inputs"].as_array().map(|a| a.iter().filter_map(|i| i["name"].as_str().map(str::to_string)).collect())).unwrap_or_default();
        for a in attachments {
            if a.content.len() as u64 > self.limits.max_model_bytes {
                return Err(IngestError::TooLarge { file: a.name.clone(), limit: self.limits.max_model_bytes }.into());
            }
            if !(a.media_type == "application/onnx" || a.name.ends_with(".onnx")) {
                continue;
            }
            let (name, bytes, columns) = (a.name.clone(), a.content.clone(), columns.clone());
            let load = self.work.run(move || crate::models::onnx::OnnxModel::load(&name, &bytes, Some(columns)).map(|_| ()));
            match tokio::time::timeout(self.limits.model_check_timeout, load).await {
                Err(_) => {
                    return Err(ServiceError::BadRequest(format!(
                        "model {}: loading it took longer than {} s; not stored",
                        a.name,
                        self.limits.model_check_timeout.as_secs()
                    )));
                }
                Ok(r) => r?.map_err(|e| ServiceError::BadRequest(format!("{e}; the run was not stored")))?,
            }
        }
        Ok(())
    }

    /// A run's metadata; a trained benchmark model is listed among its models.
    pub async fn run_detail(&self, id: &str) -> Result<RunDetail, ServiceError> {
        let mut d = self.store.get_run(id).await?.ok_or_else(|| ServiceError::NotFound(id.to_string()))?;
        if self.store.get_setting(id, benchmark::KEY).await?.is_some() {
            d.summary.models.push(benchmark::COLUMN.to_string());
        }
        Ok(d)
    }

    /// The run's rows as a DataFrame, from the cache or the database (with the benchmark model's
    /// scores as a column when one was trained).
    pub async fn frame(&self, id: &str) -> Result<Arc<DataFrame>, ServiceError> {
        if let Some(f) = self.cache.get(id) {
            return Ok(f);
        }
        // The first cold request decodes; the others wait for it and then find it cached.
        self.one_at_a_time(&format!("frame\u{0}{id}"), self.load_frame(id)).await
    }

    /// Runs `load` for one key at a time: concurrent callers wait for the first and then (their
    /// own `load` checking its cache first) find its result.
    pub(crate) async fn one_at_a_time<T>(&self, key: &str, load: impl std::future::Future<Output = T>) -> T {
        let gate = self.loading.lock().unwrap_or_else(|p| p.into_inner()).entry(key.to_string()).or_default().clone();
        let _turn = gate.lock().await;
        let out = load.await;
        self.loading.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        out
    }

    async fn load_frame(&self, id: &str) -> Result<Arc<DataFrame>, ServiceError> {
        if let Some(f) = self.cache.get(id) {
            return Ok(f);
        }
        if let Some(d) = self.store.get_run(id).await? {
            if d.summary.source.is_some() {
                return Err(external::needs_rows());
            }
        }
        let bytes = self.store.load_run_data(id).await?.ok_or_else(|| ServiceError::NotFound(id.to_string()))?;
        let frame = self.work.run(move || crate::store::decode_frame(bytes))
            .await??;
        let frame = Arc::new(self.with_benchmark(id, frame).await?);
        self.cache.insert(id, frame.clone());
        Ok(frame)
    }

    /// Forgets everything cached about a run (its frame, prepared cells and loaded models).
    pub fn forget(&self, id: &str) {
        self.cache.remove(id);
        self.cache.remove_prefix(&format!("{id}\u{0}")); // an external run's row sample
        self.prepared.remove_prefix(&format!("{id}\u{0}"));
        self.results.remove_prefix(&format!("{id}\u{0}"));
        self.models.remove_prefix(&format!("{id}\u{0}"));
    }

    /// Deletes a run; its caches are emptied once the deletion is committed (a request that read
    /// the run before it could otherwise put it back while the delete was still in flight, or a
    /// failed delete would leave the run uncached but stored).
    pub async fn delete(&self, id: &str) -> Result<(), ServiceError> {
        let deleted = self.store.delete_run(id).await?;
        self.forget(id);
        if deleted { Ok(()) } else { Err(ServiceError::NotFound(id.to_string())) }
    }

    /// A finished analysis kept under `key` (which starts with the run id and a NUL).
    fn recall<T: Clone + 'static>(&self, key: &str) -> Option<T> {
        self.results.get(key).and_then(|c| c.get::<T>().cloned())
    }

    fn remember<T: serde::Serialize + Send + Sync + 'static>(&self, key: &str, value: T) {
        self.results.insert(key, Arc::new(crate::store::cache::Computed::new(value)));
    }

    pub async fn overview(&self, id: &str, model: Option<&str>) -> Result<RunOverview, ServiceError> {
        let detail = self.run_detail(id).await?;
        if detail.summary.source.is_some() {
            return self.external_overview(detail, model).await;
        }
        let frame = self.frame(id).await?;
        let s = &detail.summary;
        let chart_model = match model {
            Some(m) if s.models.iter().any(|x| x == m) => m.to_string(),
            Some(m) => return Err(ServiceError::BadRequest(format!("run {id} has no model '{m}' (models: {})", s.models.join(", ")))),
            None => s.models.first().cloned().unwrap_or_default(),
        };
        let weight = detail.columns.iter().find(|c| c.role == Role::Weight).map(|c| c.name.clone());
        let (label, task, models) = (detail.label.clone(), s.task, s.models.clone());
        let cm = chart_model.clone();
        let scores_of = {
            let d = detail.clone();
            move |m: &str| d.class_scores(m)
        };
        let key = format!("{id}\u{0}overview\u{0}{chart_model}");
        let (label_balance, headline, chart) = match self.recall(&key) {
            Some(done) => done,
            None => {
                let done = self
                    .work
                    .run(move || -> Result<_, ServiceError> {
                        let balance = eval::label_balance(&frame, &label, task)?;
                        let headline = eval::headline(&frame, &label, task, &models, weight.as_deref(), scores_of)?;
                        let dist = eval::score_distribution(&frame, &label, task, &cm, weight.as_deref(), 40)?;
                        Ok((balance, headline, charts::distribution_figure(&dist, task, &cm)))
                    })
                    .await??;
                self.remember(&key, done.clone());
                done
            }
        };
        let validation = self.store.latest_validation(id).await?;
        Ok(RunOverview { detail, label_balance, headline, chart_model, chart, validation })
    }

    pub async fn examples(&self, id: &str, offset: u64, limit: u64) -> Result<ExamplesPage, ServiceError> {
        let external::Rows { frame, sample } = self.rows(id).await?;
        let total = frame.height() as u64;
        let limit = limit.clamp(1, 1000);
        let (columns, rows) = json_rows(&frame.slice(offset.min(total) as i64, limit as usize));
        Ok(ExamplesPage { columns, rows, offset, limit, total, note: None, sample })
    }
}

/// Where a run's prepared cells for `request` are cached.
pub(crate) fn prepared_key(id: &str, task: Task, request: &MetricsRequest) -> String {
    format!("{id}\u{0}{task:?}\u{0}{}", request.prepare_key())
}

/// The result cache's key of a request on the cells of `prepared` (its [`prepared_key`]).
fn result_key(prepared: &str, request: &MetricsRequest) -> String {
    format!("{prepared}\u{0}{request:?}")
}

/// The latest value of a timestamp column as RFC 3339 (UTC), if it has any.
fn latest_time(frame: &DataFrame, column: &str) -> Option<String> {
    let c = frame.column(column).ok()?;
    let us = c.cast(&DataType::Int64).ok()?.i64().ok()?.max()?;
    chrono::DateTime::from_timestamp_micros(us).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// A project name or version label: trimmed, 1–64 characters of letters, digits, `-`, `_`, `.`
/// (they appear in URLs and file names); blank means none.
pub fn normalize_label(what: &str, value: Option<String>) -> Result<Option<String>, ServiceError> {
    let Some(v) = value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) else { return Ok(None) };
    if v.len() > 64 || !v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(ServiceError::BadRequest(format!("{what} '{v}' must be 1–64 letters, digits, '-', '_' or '.'")));
    }
    Ok(Some(v))
}

/// A (small) frame's column names and its rows as JSON values, for a page of examples.
pub(crate) fn json_rows(page: &DataFrame) -> (Vec<String>, Vec<Vec<serde_json::Value>>) {
    let columns: Vec<String> = page.get_column_names().iter().map(|s| s.to_string()).collect();
    let mut rows = vec![Vec::with_capacity(columns.len()); page.height()];
    for c in page.columns() {
        let s = c.as_materialized_series();
        for (i, row) in rows.iter_mut().enumerate() {
            row.push(any_to_json(s.get(i).unwrap_or(AnyValue::Null)));
        }
    }
    (columns, rows)
}

/// Largest number of slices one request may produce.
pub const MAX_SLICES: usize = 500;

/// The engine's request for a run from the metrics parameters: the defaults and every check of
/// `/metrics` and the slices page; every mistake is a 400 that names it.
pub fn metrics_request(detail: &RunDetail, p: params::MetricsParams) -> Result<MetricsRequest, ServiceError> {
    let bad = ServiceError::BadRequest;
    let models = &detail.summary.models;
    let model = match p.model {
        Some(m) if !models.contains(&m) => return Err(bad(format!("model '{m}' is not a score column of this run (models: {})", models.join(", ")))),
        Some(m) => m,
        None => models.first().cloned().unwrap_or_default(),
    };
    let specs: Vec<String> = p.slice.iter().flat_map(|v| v.split(';')).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
    if specs.len() > 10 {
        return Err(bad("at most 10 slice specs per request".into()));
    }
    let thresholds = match p.thresholds {
        Some(t) => parse_thresholds(&t).map_err(bad)?,
        None => vec![0.5],
    };
    if thresholds.is_empty() {
        return Err(bad("give at least one threshold".into()));
    }
    Ok(MetricsRequest {
        label: detail.label.clone(),
        class_scores: detail.class_scores(&model),
        model,
        weight: detail.columns.iter().find(|c| c.role == Role::Weight).map(|c| c.name.clone()),
        specs,
        thresholds,
        ci: p.ci.unwrap_or(0.95),
        bootstrap: p.bootstrap.unwrap_or(200),
        seed: p.seed.unwrap_or(0),
        baseline: p.baseline.unwrap_or_else(|| "overall".into()),
        min_size: p.min_size.unwrap_or(1),
        max_slices: MAX_SLICES,
        alpha: p.alpha.unwrap_or(0.05),
    })
}

impl AppState {
    /// Metrics per slice for a run (see `eval::sliced`).
    pub async fn metrics(&self, id: &str, query: &str) -> Result<MetricsResult, ServiceError> {
        let detail = self.run_detail(id).await?;
        let request = metrics_request(&detail, params::decode(query)?)?;
        self.compute_metrics(id, request, detail.summary.task).await
    }

    /// Whether `GET /metrics` with this query would be answered from the result cache, with no
    /// work (what spare workers computed ahead counts).
    pub async fn metrics_cached(&self, id: &str, query: &str) -> Result<bool, ServiceError> {
        let detail = self.run_detail(id).await?;
        let request = metrics_request(&detail, params::decode(query)?)?;
        Ok(self.results.get(&result_key(&prepared_key(id, detail.summary.task, &request), &request)).is_some())
    }

    /// Runs the engine on a run's cached frame, off the async workers.
    pub(crate) async fn compute_metrics(&self, id: &str, request: MetricsRequest, task: Task) -> Result<MetricsResult, ServiceError> {
        let key = prepared_key(id, task, &request);
        // An identical request answered before: no worker, no wait in the queue.
        let result_key = result_key(&key, &request);
        if let Some(done) = self.recall::<MetricsResult>(&result_key) {
            return Ok(done);
        }
        let source = match self.prepared.get(&key) {
            Some(p) => Ok(p),
            // An external run's cells come from its dataset, batch by batch; an uploaded run's
            // from its cached frame.
            None => match self.external_source(id).await? {
                Some(dataset) => Ok(self.external_cells(&key, dataset, &request, task).await?),
                None => Err(self.frame(id).await?),
            },
        };
        let result = self.work.run_tracked(self.metrics_job(key, source, request, task)).await?.map_err(request_error)?;
        self.remember(&result_key, result.clone());
        Ok(result)
    }

    /// The engine's work for a request: its prepared cells (prepared and kept if `source` is the
    /// run's frame), the bootstrap budget's check, the computation.
    fn metrics_job(&self, key: String, source: Result<Arc<Prepared>, Arc<DataFrame>>, request: MetricsRequest, task: Task) -> impl FnOnce(&crate::progress::Progress) -> Result<MetricsResult, RequestError> + Send + 'static {
        let prepared_cache = self.prepared.clone();
        let budget = self.limits.max_analysis_bytes;
        move |progress| {
            let prep = match source {
                Ok(p) => p,
                Err(frame) => {
                    let p = Arc::new(prepare(&frame, &request, task)?);
                    prepared_cache.insert(&key, p.clone());
                    p
                }
            };
            check_budget(bootstrap_size(&prep, &request), budget)?;
            compute_prepared_tracked(&prep, &request, progress)
        }
    }

    /// After a view of one model of an uploaded run: the same request for the run's other models
    /// (up to three), prepared and computed on spare workers only (see `WorkQueue::run_spare`)
    /// and kept in the caches, so that switching model is answered at once. A job that finds the
    /// workers busy, or that a request cancels, is tried again when they are idle (for up to ten
    /// seconds) unless a newer view made a newer guess; it never evicts anything: it prepares a
    /// model only while the cache has room for cells the size of this one's.
    pub(crate) fn warm_other_models(&self, id: &str, request: &MetricsRequest, task: Task, models: &[String]) {
        // Per-class score columns differ per model: only single-score models are guessed at.
        if !request.class_scores.is_empty() || self.cache.get(id).is_none() {
            return;
        }
        let Some(size) = self.prepared.get(&prepared_key(id, task, request)).map(|p| p.bytes()) else { return };
        let others: Vec<String> = models.iter().filter(|m| **m != request.model).take(3).cloned().collect();
        let (state, id, request) = (self.clone(), id.to_string(), request.clone());
        let guess = self.work.new_guess();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        tokio::spawn(async move {
            for model in others {
                let req = MetricsRequest { model, ..request.clone() };
                let key = prepared_key(&id, task, &req);
                let result_key = result_key(&key, &req);
                if state.results.get(&result_key).is_some() {
                    continue;
                }
                let source = match (state.prepared.get(&key), state.cache.get(&id)) {
                    (Some(p), _) => Ok(p),
                    (None, Some(frame)) if state.prepared.room() >= size => Err(frame),
                    _ => return,
                };
                let result = loop {
                    if !state.work.is_current_guess(guess) || std::time::Instant::now() > until {
                        return;
                    }
                    // A job per try (a refused one was dropped unrun); cells a cancelled try
                    // prepared are kept, so a retry starts from them.
                    let source = state.prepared.get(&key).map_or_else(|| source.clone(), Ok);
                    match state.work.run_spare(state.metrics_job(key.clone(), source, req.clone(), task)).await {
                        Ok(result) => break result,
                        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                    }
                };
                match result {
                    Ok(result) => state.remember(&result_key, result),
                    Err(_) => return,
                }
            }
        });
    }

    /// Runs the engine on a frame the caller made (e.g. a run's frame with its scores overridden by
    /// rules): nothing cached, the same bootstrap budget.
    pub(crate) async fn compute_metrics_on(&self, frame: DataFrame, request: MetricsRequest, task: Task) -> Result<MetricsResult, ServiceError> {
        let budget = self.limits.max_analysis_bytes;
        self.work
            .run_tracked(move |progress| {
                let prep = prepare(&frame, &request, task)?;
                check_budget(bootstrap_size(&prep, &request), budget)?;
                compute_prepared_tracked(&prep, &request, progress)
            })
            .await?
            .map_err(request_error)
    }

    /// The slices page: the metrics plus a chart of the chosen metric across slices.
    pub async fn slice_view(&self, id: &str, query: &str) -> Result<SliceView, ServiceError> {
        let detail = self.run_detail(id).await?;
        let (page, api) = params::split(query, params::SLICES_PAGE_KEYS);
        let page: params::SlicesPageParams = params::decode_pairs(&page)?;
        let mut api: params::MetricsParams = params::decode_pairs(&api)?;
        // No slicing in the URL: the project's gates' slices, so the page opens on what is judged.
        let gate_slices = self.gate_slices(detail.summary.project.as_deref()).await?;
        if api.slice.iter().all(|s| s.trim().is_empty()) {
            api.slice = gate_slices.clone();
        }
        let request = metrics_request(&detail, api)?;
        let task = detail.summary.task;
        let metric_names = strata_app::metrics::task_names(task, request.class_scores.len());
        let metric = page.metric.clone().unwrap_or_else(|| match task {
            Task::Binary => "fpr".into(),
            Task::Multiclass => "accuracy".into(),
            Task::Regression => "mae".into(),
        });
        if !metric_names.contains(&metric) {
            return Err(ServiceError::BadRequest(format!("unknown metric '{metric}' (one of: {})", metric_names.join(", "))));
        }
        let result = self.compute_metrics(id, request.clone(), task).await?;
        let threshold = strata_app::metrics::at_threshold(task, &metric).then(|| result.thresholds[0]);
        let chart = charts::slice_bars(&result, &metric, threshold);
        let columns = self.column_briefs(&detail).await?;
        self.warm_other_models(id, &request, task, &detail.summary.models);
        Ok(SliceView { result, models: detail.summary.models.clone(), metric, threshold, chart, metric_names, project: detail.summary.project.clone(), columns, gate_slices })
    }
}

/// Refuses, before any work, a request whose bootstrap would keep more than `budget` bytes, with its
/// cost and how to shrink it.
fn check_budget(size: BootstrapSize, budget: u64) -> Result<(), RequestError> {
    if size.bytes() <= budget {
        return Ok(());
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    Err(RequestError::Invalid(format!(
        "this request would keep {:.0} MiB of bootstrap values ({} replicates × {} slices × {} values per slice); the limit is {:.0} MiB (STRATA_MAX_ANALYSIS_MB): ask for fewer thresholds, fewer bootstrap replicates (bootstrap=) or coarser slices",
        mib(size.bytes()),
        size.replicates,
        size.slices,
        size.values_per_slice,
        mib(budget)
    )))
}

fn request_error(e: RequestError) -> ServiceError {
    match e {
        RequestError::Eval(e) => ServiceError::Eval(e),
        other => ServiceError::BadRequest(other.to_string()),
    }
}

pub(crate) fn any_to_json(v: AnyValue<'_>) -> serde_json::Value {
    use serde_json::Value;
    match v {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(b),
        AnyValue::String(s) => Value::String(s.to_string()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::Int64(x) => Value::from(x),
        AnyValue::Int32(x) => Value::from(x),
        AnyValue::UInt32(x) => Value::from(x),
        AnyValue::UInt64(x) => Value::from(x),
        AnyValue::Float64(x) => serde_json::Number::from_f64(x).map(Value::Number).unwrap_or(Value::Null),
        AnyValue::Float32(x) => serde_json::Number::from_f64(x as f64).map(Value::Number).unwrap_or(Value::Null),
        AnyValue::Datetime(us, _, _) => chrono::DateTime::from_timestamp_micros(us)
            .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()))
            .unwrap_or(Value::Null),
        other => Value::String(other.to_string()),
    }
}

impl From<ServiceError> for BackendError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound(_) | ServiceError::Missing(_) => BackendError::NotFound(e.to_string()),
            ServiceError::BadRequest(_) | ServiceError::Model(_) | ServiceError::Conflict(_) | ServiceError::Cancelled | ServiceError::NeedsRows => BackendError::BadRequest(e.to_string()),
            ServiceError::Forbidden(m) => BackendError::Forbidden(m),
            ServiceError::Ingest(ref i) if i.is_client_error() => BackendError::BadRequest(e.to_string()),
            ServiceError::Busy => BackendError::Unavailable(e.to_string(), 2),
            ServiceError::Store(ref s) if s.is_unavailable() => {
                tracing::warn!(error = %error_chain(&e), "page data: database unavailable");
                BackendError::Unavailable("the database is unavailable; try again shortly".into(), 5)
            }
            other => {
                tracing::error!(error = %error_chain(&other), "page data failed");
                BackendError::Internal
            }
        }
    }
}

#[async_trait::async_trait]
impl Backend for AppState {
    async fn list_runs(&self) -> Result<Vec<RunSummary>, BackendError> {
        Ok(self.store.list_runs().await.map_err(ServiceError::from)?)
    }
    async fn run_overview(&self, id: &str, model: Option<&str>) -> Result<RunOverview, BackendError> {
        Ok(self.overview(id, model).await?)
    }
    async fn examples(&self, id: &str, offset: u64, limit: u64) -> Result<ExamplesPage, BackendError> {
        if let Some(note) = self.sample_not_drawn(id).await? {
            return Ok(ExamplesPage { columns: vec![], rows: vec![], offset, limit, total: 0, note: Some(note), sample: None });
        }
        match AppState::examples(self, id, offset, limit).await {
            // The run page of an external run: a note where the rows would be, not an error.
            Err(ServiceError::NeedsRows) => Ok(ExamplesPage { columns: vec![], rows: vec![], offset, limit, total: 0, note: Some(ServiceError::NeedsRows.to_string()), sample: None }),
            other => Ok(other?),
        }
    }
    async fn slice_view(&self, id: &str, query: &str) -> Result<SliceView, BackendError> {
        Ok(AppState::slice_view(self, id, query).await?)
    }
    async fn residuals_view(&self, id: &str, query: &str) -> Result<strata_app::model::ResidualsView, BackendError> {
        Ok(AppState::residuals_view(self, id, query).await?)
    }
    async fn discovery_view(&self, id: &str, query: &str) -> Result<strata_app::model::DiscoveryView, BackendError> {
        Ok(AppState::discovery_view(self, id, query).await?)
    }
    async fn fairness_view(&self, run_ids: &[String], query: &str) -> Result<strata_app::model::FairnessView, BackendError> {
        Ok(AppState::fairness_view(self, run_ids, query).await?)
    }
    async fn whatif_view(&self, id: &str, query: &str) -> Result<strata_app::model::WhatIfView, BackendError> {
        Ok(AppState::whatif_view(self, id, query).await?)
    }
    async fn whatif_example(&self, id: &str, query: &str) -> Result<strata_app::model::WhatIfExample, BackendError> {
        Ok(AppState::whatif_example(self, id, query).await?)
    }
    async fn whatif_pdp(&self, id: &str, query: &str) -> Result<strata_app::model::WhatIfPdp, BackendError> {
        Ok(AppState::whatif_pdp(self, id, query).await?)
    }
    async fn save_whatif(&self, id: &str, name: &str, example: &str, edits: &str) -> Result<(), BackendError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(edits).map_err(|e| ServiceError::BadRequest(format!("edits: {e}")))?;
        let edits = pairs.into_iter().filter_map(|(k, v)| k.strip_prefix("set.").map(|k| (k.to_string(), v))).collect();
        AppState::save_whatif(self, id, name, example, edits).await?;
        Ok(())
    }
    async fn delete_whatif(&self, id: &str, name: &str) -> Result<(), BackendError> {
        AppState::delete_whatif(self, id, name).await?;
        Ok(())
    }
    async fn drift_view(&self, id: &str, query: &str) -> Result<strata_app::model::DriftView, BackendError> {
        Ok(AppState::drift_view(self, id, query).await?)
    }
    async fn train_benchmark(&self, id: &str) -> Result<String, BackendError> {
        let i = AppState::train_benchmark(self, id, 1.0, 20_000).await?;
        Ok(format!("Trained a {} model on {} rows ({} inputs): it is now the model '{}' on every page (reload to see it).", i.kind, i.trained_on, i.features, i.model))
    }
    async fn project_view(&self, project: &str, query: &str) -> Result<strata_app::model::ProjectView, BackendError> {
        Ok(AppState::project_view(self, project, query).await?)
    }
    async fn list_projects(&self) -> Result<Vec<strata_app::model::ProjectSummary>, BackendError> {
        Ok(self.store.list_projects().await.map_err(ServiceError::from)?)
    }
    async fn validate(&self, project: &str, id: &str) -> Result<strata_app::model::Validation, BackendError> {
        Ok(AppState::validate(self, project, id, None).await?)
    }
    async fn model_cards(&self, id: &str) -> Result<Vec<strata_app::model::ModelCard>, BackendError> {
        Ok(AppState::model_cards(self, id).await?)
    }
    async fn preview_rules(&self, project: &str, source: &str) -> Result<strata_app::model::RulesImpact, BackendError> {
        Ok(AppState::preview_rules(self, project, source).await?)
    }
    async fn save_rules(&self, project: &str, source: &str) -> Result<strata_app::model::RuleSetVersion, BackendError> {
        Ok(AppState::put_rules(self, project, source).await?)
    }
    async fn save_gates(&self, project: &str, gates: strata_app::model::GateSet) -> Result<strata_app::model::GateSetVersion, BackendError> {
        Ok(AppState::put_gates(self, project, gates).await?)
    }
    async fn named_slices(&self, project: &str) -> Result<Vec<strata_app::model::NamedSlice>, BackendError> {
        Ok(AppState::named_slices(self, project).await?)
    }
    async fn save_named_slice(&self, project: &str, name: &str, filter: &str, metric: Option<String>) -> Result<strata_app::model::NamedSlice, BackendError> {
        Ok(AppState::save_named_slice(self, project, name, filter, metric).await?)
    }
    async fn alerts_view(&self) -> Result<strata_app::model::AlertsView, BackendError> {
        Ok(AppState::alerts_view(self).await?)
    }
    async fn set_webhook(&self, url: &str) -> Result<String, BackendError> {
        // The page sets the URL only: attempts, backoff and secret stay as the API set them.
        let base = AppState::webhook(self).await?.unwrap_or(alerts::Webhook { url: String::new(), max_attempts: 4, backoff_ms: 1000, secret: None });
        let hook = (!url.trim().is_empty()).then(|| alerts::Webhook { url: url.trim().to_string(), ..base });
        Ok(match AppState::set_webhook(self, hook).await? {
            Some(h) => format!("Alerts will be posted to {}.", crate::outbound::mask(&h.url)),
            None => "No webhook: alerts are only listed here.".to_string(),
        })
    }
    async fn endpoint_briefs(&self, id: &str) -> Result<Vec<strata_app::model::EndpointBrief>, BackendError> {
        Ok(AppState::endpoint_briefs(self, id).await?)
    }
    async fn test_endpoint(&self, id: &str, name: &str) -> Result<strata_app::model::EndpointTest, BackendError> {
        Ok(AppState::test_endpoint(self, id, name, None, None).await?)
    }
    async fn review_state(&self, id: &str) -> Result<strata_app::model::ReviewState, BackendError> {
        Ok(AppState::review_state(self, id).await?)
    }
    async fn add_review(&self, id: &str, author: &str, review: strata_app::model::NewReview) -> Result<strata_app::model::Review, BackendError> {
        Ok(AppState::add_review(self, id, author, review).await?)
    }
    async fn create_share(&self, creator: &str, id: &str, share: strata_app::model::NewShare) -> Result<strata_app::model::CreatedShare, BackendError> {
        Ok(AppState::create_share(self, creator, Some(id), None, share).await?)
    }
    async fn create_project_share(&self, creator: &str, project: &str, share: strata_app::model::NewShare) -> Result<strata_app::model::CreatedShare, BackendError> {
        Ok(AppState::create_share(self, creator, None, Some(project), share).await?)
    }
    async fn run_shares(&self, id: &str) -> Result<Vec<strata_app::model::ShareInfo>, BackendError> {
        Ok(self.store.list_shares(Some(id), None, None).await.map_err(ServiceError::from)?)
    }
    async fn revoke_share(&self, sid: &str) -> Result<(), BackendError> {
        if !self.store.revoke_share(sid).await.map_err(ServiceError::from)? {
            return Err(BackendError::NotFound(format!("no share link '{sid}'")));
        }
        Ok(())
    }
    async fn admin_view(&self) -> Result<strata_app::model::AdminView, BackendError> {
        let users = self.store.list_users().await.map_err(ServiceError::from)?;
        let audit = self.store.audit_log(200, None).await.map_err(ServiceError::from)?;
        Ok(strata_app::model::AdminView { users, audit })
    }
    async fn add_user(&self, user: strata_app::model::NewUser) -> Result<strata_app::model::UserInfo, BackendError> {
        Ok(AppState::create_user(self, user).await?)
    }
    async fn set_user(&self, name: &str, patch: strata_app::model::UserPatch) -> Result<strata_app::model::UserInfo, BackendError> {
        Ok(AppState::update_user(self, name, patch).await?)
    }
    async fn account_view(&self, name: &str) -> Result<strata_app::model::AccountView, BackendError> {
        let a = self.store.account_by_name(name).await.map_err(ServiceError::from)?.ok_or_else(|| BackendError::NotFound(format!("no account named '{name}'")))?;
        let tokens = self.store.list_tokens(Some(&a.id)).await.map_err(ServiceError::from)?;
        let shares = self.store.list_shares(None, None, Some(name)).await.map_err(ServiceError::from)?;
        Ok(strata_app::model::AccountView { name: a.name, role: a.role, tokens, shares })
    }
    async fn create_personal_token(&self, name: &str, token: strata_app::model::NewToken) -> Result<strata_app::model::CreatedToken, BackendError> {
        let a = self.store.account_by_name(name).await.map_err(ServiceError::from)?.ok_or_else(|| BackendError::NotFound(format!("no account named '{name}'")))?;
        Ok(AppState::create_token(self, &a.id, &a.name, token).await?)
    }
    async fn delete_personal_token(&self, name: &str, token_id: &str) -> Result<(), BackendError> {
        let a = self.store.account_by_name(name).await.map_err(ServiceError::from)?.ok_or_else(|| BackendError::NotFound(format!("no account named '{name}'")))?;
        if !self.store.delete_token(token_id, Some(&a.id)).await.map_err(ServiceError::from)? {
            return Err(BackendError::NotFound(format!("no token '{token_id}' of yours")));
        }
        Ok(())
    }
    async fn sign_out_everywhere(&self, name: &str) -> Result<u64, BackendError> {
        let a = self.store.account_by_name(name).await.map_err(ServiceError::from)?.ok_or_else(|| BackendError::NotFound(format!("no account named '{name}'")))?;
        Ok(self.store.delete_sessions_of(&a.id).await.map_err(ServiceError::from)?)
    }
    fn sign_in_options(&self) -> strata_app::model::SignInOptions {
        strata_app::model::SignInOptions { oidc: self.auth.oidc.as_ref().map(|o| o.config.label.clone()) }
    }
    async fn save_limits(&self, id: &str, limits: &str) -> Result<String, BackendError> {
        let saved = AppState::save_limits(self, id, limits).await?;
        Ok(saved.iter().map(|(n, v)| format!("{n}:{v}")).collect::<Vec<_>>().join(","))
    }
}

/// Binds attached model files to the score columns they produce (`spec.models`: score column →
/// file name); a name that is not a score column, or a file that was not attached, is refused.
fn bind_models(binding: &std::collections::BTreeMap<String, String>, scores: &[String], attachments: &mut [Attachment]) -> Result<(), ServiceError> {
    for (score, file) in binding {
        if !scores.contains(score) {
            return Err(ServiceError::BadRequest(format!("models: '{score}' is not a score column of the run (score columns: {})", scores.join(", "))));
        }
        let names = attachments.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ");
        let Some(a) = attachments.iter_mut().find(|a| &a.name == file) else {
            return Err(ServiceError::BadRequest(format!("models: no model file '{file}' was attached (attached: {})", if names.is_empty() { "none" } else { names.as_str() })));
        };
        a.model = Some(score.clone());
    }
    Ok(())
}
