//! External runs: a Parquet dataset registered as a run (its schema, row count, roles and column
//! summaries; never its rows), and its cells prepared by reading the dataset batch by batch.

use super::*;
use crate::eval::sliced::{CellFold, EdgePass, columns_needed, cuts_needing_values};
use crate::ingest::dataset::{Access, Dataset, DatasetError};
use strata_app::model::{RegisterRun, RunSource};

/// Rows (whole row groups, from the first files) that registration infers the task, the roles and
/// the column summaries from.
pub const SAMPLE_ROWS: usize = 100_000;

/// The answer of a view that needs the rows themselves on an external run.
pub(crate) fn needs_rows() -> ServiceError {
    ServiceError::NeedsRows
}

impl From<DatasetError> for ServiceError {
    fn from(e: DatasetError) -> Self {
        match e {
            DatasetError::Forbidden(m) => ServiceError::Forbidden(m),
            DatasetError::NotFound(m) => ServiceError::Missing(m),
            DatasetError::Invalid(m) => ServiceError::BadRequest(m),
            DatasetError::Ingest(i) => ServiceError::Ingest(i),
        }
    }
}

impl AppState {
    /// Where external datasets may be read from now: anywhere in the open single-user mode, under
    /// the admin's `--external-root` directories in team mode (and nowhere if the mode cannot be
    /// told).
    pub async fn external_access(&self) -> Access {
        let team = self.auth.team_mode(self).await.unwrap_or(true);
        if team { Access::Roots(self.external_roots.to_vec()) } else { Access::Open }
    }

    /// Registers an external run: reads the dataset's footers (schema, row count) and a sample of
    /// its first rows (task, roles, column summaries, checked as an upload's), stores the metadata
    /// and the source; returns the run's id. A Spark source: see `spark_runs`.
    pub async fn register_external(&self, reg: RegisterRun, access: Access) -> Result<String, ServiceError> {
        let path = match reg.source.clone() {
            Some(RunSource::Parquet(path)) => path,
            Some(RunSource::Spark(src)) => return self.register_spark(reg, src, access).await,
            None => return Err(ServiceError::BadRequest("an external run needs a source: {\"parquet\": \"/path/to/a/file, directory or glob\"} or {\"spark\": {\"remote\": \"sc://host:15002\", \"table\": \"db.preds\"}}".into())),
        };
        let (sample, rows) = self
            .work
            .run({
                let path = path.clone();
                move || -> Result<(DataFrame, u64), ServiceError> {
                    let ds = Dataset::open(&path, &access)?;
                    Ok((ds.sample(SAMPLE_ROWS)?, ds.rows))
                }
            })
            .await??;
        let detail = self.describe_external(reg, sample, rows, &path, RunSource::Parquet(path.clone())).await?;
        if detail.summary.task == Task::Multiclass {
            return Err(ServiceError::BadRequest(format!("{path}: the label has more than two classes; multiclass external runs are not supported yet")));
        }
        self.store.insert_run(&NewRun { detail: detail.clone(), parquet: vec![], attachments: vec![], source_secret: None }).await?;
        Ok(detail.summary.id)
    }

    /// An external run's metadata from a sample of its first rows (task, roles, column summaries,
    /// checked as an upload's) and its row count; `place` names the source in messages and is
    /// the default name.
    pub(crate) async fn describe_external(&self, reg: RegisterRun, sample: DataFrame, rows: u64, place: &str, source: RunSource) -> Result<RunDetail, ServiceError> {
        let project = normalize_label("project", reg.project.clone())?;
        let version = normalize_label("version", reg.version.clone())?;
        let place = place.to_string();
        let name = reg.name.clone().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).unwrap_or_else(|| {
            std::path::Path::new(place.trim_end_matches('/')).file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| place.clone())
        });
        self.work
            .run(move || -> Result<RunDetail, ServiceError> {
                let spec = IngestSpec {
                    name: name.clone(),
                    label: reg.label,
                    scores: reg.scores,
                    id: reg.id,
                    timestamp: reg.timestamp,
                    weight: reg.weight,
                    tags: reg.tags.clone(),
                    project: project.clone(),
                    version: version.clone(),
                    ..Default::default()
                };
                let ing = ingest::assemble(sample, &place, &spec)?;
                let columns = eval::column_summaries(&ing.frame, |c| ing.roles.role_of(c).unwrap_or(Role::Feature))?;
                let created_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
                Ok(RunDetail {
                    summary: RunSummary {
                        id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
                        name,
                        task: ing.task,
                        models: ing.roles.scores.clone(),
                        rows,
                        created_at: created_at.clone(),
                        tags: reg.tags,
                        source_file: place,
                        project,
                        version,
                        run_time: created_at,
                        source: Some(source),
                    },
                    label: ing.roles.label.clone(),
                    columns,
                    attachments: vec![],
                })
            })
            .await?
    }

    /// An external run's metadata, `None` for an uploaded run.
    pub(crate) async fn external_source(&self, id: &str) -> Result<Option<RunDetail>, ServiceError> {
        let d = self.store.get_run(id).await?.ok_or_else(|| ServiceError::NotFound(id.to_string()))?;
        Ok(d.summary.source.is_some().then_some(d))
    }

    /// An external run's cells for `request`, read from its dataset batch by batch (a first pass
    /// over the quantile- or width-bucketed columns, then one over the columns the request needs)
    /// and cached under `key` like an uploaded run's. Nothing is cached when reading fails.
    pub(crate) async fn prepare_external(&self, key: &str, detail: RunDetail, request: &MetricsRequest, task: Task) -> Result<Arc<Prepared>, ServiceError> {
        if let Some(p) = self.prepared.get(key) {
            return Ok(p); // a concurrent request made them while this one waited
        }
        let path = match detail.summary.source.clone() {
            Some(RunSource::Parquet(path)) => path,
            Some(RunSource::Spark(src)) => return self.prepare_spark(key, detail, src, request, task).await,
            None => return Err(needs_rows()),
        };
        let access = self.external_access().await;
        let (cache, key, request) = (self.prepared.clone(), key.to_string(), request.clone());
        self.work
            .run(move || -> Result<Arc<Prepared>, ServiceError> {
                let ds = Dataset::open(&path, &access)?;
                if ds.rows != detail.summary.rows {
                    return Err(ServiceError::Conflict(format!(
                        "the dataset at {path} has {} rows now but had {} when the run was registered: register it again as a new run",
                        ds.rows, detail.summary.rows
                    )));
                }
                let needed = columns_needed(&request).map_err(request_error)?;
                let known = ds.column_names();
                if let Some(c) = needed.iter().find(|c| !known.contains(c)) {
                    let close = eval::names::closest(c, known.iter().map(String::as_str));
                    let hint = if close.is_empty() { format!("its columns: {}", known.join(", ")) } else { format!("did you mean {}?", close.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(" or ")) };
                    return Err(ServiceError::BadRequest(format!("column '{c}' is not in the run's dataset at {path}; {hint}")));
                }
                let cuts = cuts_needing_values(&request).map_err(request_error)?;
                let resolved = if cuts.is_empty() {
                    vec![]
                } else {
                    let mut pass = EdgePass::new(cuts);
                    ds.for_each_batch(&pass.columns(), |b| {
                        pass.add(&b).map_err(request_error)?;
                        Ok::<_, ServiceError>(true)
                    })?;
                    pass.finish()
                };
                let mut fold = CellFold::new(&request, task, resolved).map_err(request_error)?;
                let spec = batch_spec(&detail, &request, &needed, task);
                ds.for_each_batch(&needed, |raw| {
                    if raw.height() == 0 {
                        return Ok(true);
                    }
                    let ing = ingest::assemble(raw, &path, &spec)?;
                    fold.add(&ing.frame).map_err(request_error)?;
                    Ok::<_, ServiceError>(true)
                })?;
                let p = Arc::new(fold.finish().map_err(request_error)?);
                cache.insert(&key, p.clone());
                Ok(p)
            })
            .await?
    }

    /// A Parquet run's counts of the `wanted` columns for drift (and its label's, when `binary`),
    /// read batch by batch and typed as an upload would be (`ingest::assemble`).
    pub(crate) async fn parquet_counts(&self, detail: &RunDetail, path: String, wanted: &[super::drift::Wanted], binary: bool) -> Result<super::drift::RunCounts, ServiceError> {
        let access = self.external_access().await;
        let (detail, wanted) = (detail.clone(), wanted.to_vec());
        self.work
            .run(move || -> Result<super::drift::RunCounts, ServiceError> {
                let ds = Dataset::open(&path, &access)?;
                if ds.rows != detail.summary.rows {
                    return Err(ServiceError::Conflict(format!(
                        "the dataset at {path} has {} rows now but had {} when the run was registered: register it again as a new run",
                        ds.rows, detail.summary.rows
                    )));
                }
                // The label and the scores are read too: ingest checks them in every batch.
                let mut read: Vec<String> = vec![detail.label.clone()];
                read.extend(detail.summary.models.iter().cloned());
                for w in &wanted {
                    if !read.contains(&w.name) {
                        read.push(w.name.clone());
                    }
                }
                let spec = IngestSpec {
                    name: detail.summary.name.clone(),
                    label: Some(detail.label.clone()),
                    scores: Some(detail.summary.models.clone()),
                    weight: Some(String::new()),
                    id: Some(String::new()),
                    timestamp: Some(String::new()),
                    task: Some(detail.summary.task),
                    ..Default::default()
                };
                let label = binary.then_some(detail.label.as_str());
                let mut counts = super::drift::RunCounts::default();
                ds.for_each_batch(&read, |raw| {
                    if raw.height() == 0 {
                        return Ok(true);
                    }
                    let ing = ingest::assemble(raw, &path, &spec)?;
                    counts.add_batch(&ing.frame, &wanted, label, &path)?;
                    Ok::<_, ServiceError>(true)
                })?;
                Ok(counts)
            })
            .await?
    }

    /// The run page of an external run: headline metrics from its cells; the score distribution
    /// and label balance need rows (later: pushed down as histograms).
    pub(crate) async fn external_overview(&self, detail: RunDetail, model: Option<&str>) -> Result<RunOverview, ServiceError> {
        let s = &detail.summary;
        let chart_model = match model {
            Some(m) if s.models.iter().any(|x| x == m) => m.to_string(),
            Some(m) => return Err(ServiceError::BadRequest(format!("run {} has no model '{m}' (models: {})", s.id, s.models.join(", ")))),
            None => s.models.first().cloned().unwrap_or_default(),
        };
        let weight = detail.columns.iter().find(|c| c.role == Role::Weight).map(|c| c.name.clone());
        let mut headline = Vec::with_capacity(s.models.len());
        for m in &s.models {
            let req = eval::headline_request(&detail.label, s.task, m, weight.as_deref(), vec![]);
            let result = self.compute_metrics(&s.id, req, s.task).await?;
            headline.push(eval::headline_of(m, s.task, false, &result));
        }
        let chart = serde_json::json!({"data": [], "layout": {"title": {"text": "Score distribution: needs rows, not available for an external run yet"}}}).to_string();
        let validation = self.store.latest_validation(&s.id).await?;
        Ok(RunOverview { detail, label_balance: vec![], headline, chart_model, chart, validation })
    }
}

/// How each batch of an external run is checked and typed: the run's roles, limited to the
/// columns read, and its task (so every batch gets the same).
pub(super) fn batch_spec(detail: &RunDetail, request: &MetricsRequest, read: &[String], task: Task) -> IngestSpec {
    let role_column = |role: Role| detail.columns.iter().find(|c| c.role == role).map(|c| c.name.clone()).filter(|c| read.contains(c)).unwrap_or_default();
    IngestSpec {
        name: detail.summary.name.clone(),
        label: Some(request.label.clone()),
        scores: Some(vec![request.model.clone()]),
        weight: Some(request.weight.clone().unwrap_or_default()),
        id: Some(role_column(Role::Id)),
        timestamp: Some(role_column(Role::Timestamp)),
        task: Some(task),
        ..Default::default()
    }
}
