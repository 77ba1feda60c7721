//! External runs: a Parquet dataset registered as a run (its schema, row count, roles and column
//! summaries; never its rows), and its cells prepared by reading the dataset batch by batch.

use super::*;
use crate::eval::sliced::{CellFold, EdgePass, columns_needed, cuts_needing_values};
use crate::ingest::dataset::{Access, Dataset, DatasetError};
use strata_app::model::{RegisterRun, RunSource};

/// Rows (whole row groups, from the first files) that registration infers the task, the roles and
/// the column summaries from.
pub const SAMPLE_ROWS: usize = 100_000;

/// The rows a view that needs them (the what-if tool, partial dependence, attacks, residuals,
/// the run page's examples) reads of an external run: a uniform sample of at most this many,
/// drawn where the rows live, with [`ROW_SAMPLE_SEED`].
pub const ROW_SAMPLE: usize = 100_000;
/// The run page draws an external run's sample to show its rows only up to this many rows
/// (beyond, it shows them once a row view drew it).
pub const SAMPLE_ON_SIGHT: u64 = 1_000_000;
/// The row sample's seed (Spark's `REPEATABLE` takes a positive integer).
pub const ROW_SAMPLE_SEED: u32 = 1;

/// The rows a view reads: every row of an uploaded run, a sample of an external run's.
pub struct Rows {
    pub frame: Arc<DataFrame>,
    pub sample: Option<RowSample>,
}

/// The dataset at `path`, once it still has the rows it had when the run was registered (409:
/// register it again).
fn unchanged(path: &str, access: &Access, detail: &RunDetail) -> Result<Dataset, ServiceError> {
    let ds = Dataset::open(path, access)?;
    if ds.rows != detail.summary.rows {
        return Err(ServiceError::Conflict(format!(
            "the dataset at {path} has {} rows now but had {} when the run was registered: register it again as a new run",
            ds.rows, detail.summary.rows
        )));
    }
    Ok(ds)
}

/// How an external run's rows are typed: as an upload of them would be, with the roles the run
/// was registered with.
pub(crate) fn row_spec(detail: &RunDetail) -> IngestSpec {
    let role = |r: Role| Some(detail.columns.iter().find(|c| c.role == r).map(|c| c.name.clone()).unwrap_or_default());
    IngestSpec {
        name: detail.summary.name.clone(),
        label: Some(detail.label.clone()),
        scores: Some(detail.summary.models.clone()),
        weight: role(Role::Weight),
        id: role(Role::Id),
        timestamp: role(Role::Timestamp),
        task: Some(detail.summary.task),
        ..Default::default()
    }
}

/// What a page says of an external run's sample of `rows` rows.
fn described_sample(detail: &RunDetail, rows: usize) -> RowSample {
    let all = rows as u64 >= detail.summary.rows;
    let method = match (&detail.summary.source, all) {
        (Some(RunSource::Spark(_)), true) => "read by Spark".to_string(),
        (Some(RunSource::Spark(_)), false) => format!(
            "drawn by Spark: TABLESAMPLE ({} PERCENT) REPEATABLE ({ROW_SAMPLE_SEED})",
            crate::spark::pushdown::percent_literal(spark_sample_percent(detail.summary.rows)).unwrap_or_default()
        ),
        (_, true) => "read from its Parquet files".to_string(),
        (_, false) => "drawn from its Parquet files: a simple random sample of the row positions".to_string(),
    };
    RowSample { rows: rows as u64, of: detail.summary.rows, seed: u64::from(ROW_SAMPLE_SEED), method }
}

/// The share of a Spark run's rows its sample keeps, in percent: [`ROW_SAMPLE`] rows on average.
pub(crate) fn spark_sample_percent(rows: u64) -> f64 {
    if rows as usize <= ROW_SAMPLE { 100.0 } else { 100.0 * ROW_SAMPLE as f64 / rows as f64 }
}

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

    /// The rows a view reads (see [`Rows`]): an uploaded run's frame, or the sample of an
    /// external run's rows, drawn once (by Spark, or from the Parquet files) and cached like a
    /// frame. Nothing is cached when drawing fails.
    pub async fn rows(&self, id: &str) -> Result<Rows, ServiceError> {
        if let Some(frame) = self.cache.get(id) {
            return Ok(Rows { frame, sample: None });
        }
        let Some(detail) = self.external_source(id).await? else {
            return Ok(Rows { frame: self.frame(id).await?, sample: None });
        };
        let key = format!("{id}\u{0}rows");
        let frame = match self.cache.get(&key) {
            Some(f) => f,
            None => self.one_at_a_time(&key, self.draw_rows(&key, &detail)).await?,
        };
        Ok(Rows { sample: Some(described_sample(&detail, frame.height())), frame })
    }

    /// Why the run page shows no rows yet: a large external run whose sample is not drawn (drawing
    /// it scans the whole dataset, which a glance at the run page should not start).
    pub(crate) async fn sample_not_drawn(&self, id: &str) -> Result<Option<String>, ServiceError> {
        let Some(detail) = self.external_source(id).await? else { return Ok(None) };
        if detail.summary.rows <= SAMPLE_ON_SIGHT || self.cache.get(&format!("{id}\u{0}rows")).is_some() {
            return Ok(None);
        }
        Ok(Some(format!(
            "the views that need rows — the what-if tool, partial dependence, attacks, residuals — read a uniform sample of {} of them, drawn when the first of those views opens; this table shows that sample afterwards",
            strata_app::model::grouped(ROW_SAMPLE as u64)
        )))
    }

    async fn draw_rows(&self, key: &str, detail: &RunDetail) -> Result<Arc<DataFrame>, ServiceError> {
        if let Some(f) = self.cache.get(key) {
            return Ok(f); // drawn by the request this one waited for
        }
        let raw = match detail.summary.source.clone() {
            Some(RunSource::Spark(src)) => self.spark_rows(detail, src).await?,
            Some(RunSource::Parquet(path)) => {
                let access = self.external_access().await;
                let d = detail.clone();
                self.work.run(move || parquet_rows(&path, &access, &d)).await??
            }
            None => return Err(needs_rows()),
        };
        let (place, spec) = (detail.summary.source_file.clone(), row_spec(detail));
        let frame = Arc::new(self.work.run(move || ingest::assemble(raw, &place, &spec).map(|i| i.frame)).await??);
        self.cache.insert(key, frame.clone());
        Ok(frame)
    }

    /// An external run's metadata, `None` for an uploaded run.
    pub(crate) async fn external_source(&self, id: &str) -> Result<Option<RunDetail>, ServiceError> {
        let d = self.store.get_run(id).await?.ok_or_else(|| ServiceError::NotFound(id.to_string()))?;
        Ok(d.summary.source.is_some().then_some(d))
    }

    /// An external run's cells for `request` (cached under `key`, see `prepared_key`): from the
    /// cache, or prepared once however many requests ask at the same time.
    pub(crate) async fn external_cells(&self, key: &str, detail: RunDetail, request: &MetricsRequest, task: Task) -> Result<Arc<Prepared>, ServiceError> {
        match self.prepared.get(key) {
            Some(p) => Ok(p),
            None => self.one_at_a_time(&format!("prepare\u{0}{key}"), self.prepare_external(key, detail, request, task)).await,
        }
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
                let ds = unchanged(&path, &access, &detail)?;
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
                let ds = unchanged(&path, &access, &detail)?;
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

    /// The run page of an external run: headline metrics from its cells, and for a binary run the
    /// score distribution and the label balance from the chart model's headline cells (every row,
    /// counted where the rows are: the same chart as an uploaded copy's). Other tasks' charts are
    /// histograms of their own, not pushed down yet.
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
        let request = eval::headline_request(&detail.label, s.task, &chart_model, weight.as_deref(), vec![]);
        let cells = self.external_cells(&super::prepared_key(&s.id, s.task, &request), detail.clone(), &request, s.task).await?;
        let (chart, label_balance) = if let Some((per_class, rows)) = cells.binary_distribution(OVERVIEW_BINS) {
            let chart = charts::distribution_figure(&eval::binary_distribution(per_class), s.task, &chart_model);
            (chart, binary_balance(&detail, rows))
        } else if let Some(points) = cells.regression_points() {
            let chart = charts::distribution_figure(&eval::regression_distribution(&points, &detail.label, &chart_model, OVERVIEW_BINS), s.task, &chart_model);
            let labels = eval::drift::CountedNumbers::from_pairs(points.iter().map(|(_, y, _, n)| (Some(*y), *n)));
            (chart, eval::label_histogram(&labels))
        } else {
            let title = "Score distribution: not computed for an external run of this task yet (binary and regression runs have it)";
            (serde_json::json!({"data": [], "layout": {"title": {"text": title}}}).to_string(), vec![])
        };
        let validation = self.store.latest_validation(&s.id).await?;
        Ok(RunOverview { detail, label_balance, headline, chart_model, chart, validation })
    }
}

/// Bins of the overview's score distribution (as an uploaded run's).
const OVERVIEW_BINS: usize = 40;

/// A binary label's classes with their row counts, most frequent first, each class written as the
/// label's own values are (`1`, `1.0`, `true`: read off the label's summary), as an uploaded run's
/// label balance lists them.
fn binary_balance(detail: &RunDetail, rows: [u64; 2]) -> Vec<strata_app::model::ValueCount> {
    let shown = detail.columns.iter().find(|c| c.name == detail.label).map(|c| c.top_values.clone()).unwrap_or_default();
    let name = |class: usize| shown.iter().map(|v| v.value.clone()).find(|v| v.parse::<f64>().ok() == Some(class as f64)).unwrap_or_else(|| class.to_string());
    let mut out: Vec<strata_app::model::ValueCount> = (0..2).filter(|c| rows[*c] > 0).map(|c| strata_app::model::ValueCount { value: name(c), count: rows[c] }).collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    out
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

/// A Parquet run's sample: [`ROW_SAMPLE`] row positions drawn uniformly from all of them
/// (`eval::sample_rows`, [`ROW_SAMPLE_SEED`]), read batch by batch (one row group in memory at a
/// time), every column, as the files type them.
fn parquet_rows(path: &str, access: &Access, detail: &RunDetail) -> Result<DataFrame, ServiceError> {
    let ds = unchanged(path, access, detail)?;
    let picks = eval::sample_rows(ds.rows as usize, ROW_SAMPLE, u64::from(ROW_SAMPLE_SEED));
    let (mut parts, mut offset, mut next): (Vec<DataFrame>, usize, usize) = (vec![], 0, 0);
    ds.for_each_batch(&ds.column_names(), |batch| {
        let (first, end) = (next, offset + batch.height());
        while next < picks.len() && picks[next] < end {
            next += 1;
        }
        if next > first {
            let local: Vec<usize> = picks[first..next].iter().map(|p| p - offset).collect();
            parts.push(eval::take_rows(&batch, &local)?);
        }
        offset = end;
        Ok::<_, ServiceError>(next < picks.len())
    })?;
    let mut it = parts.into_iter();
    let mut out = it.next().ok_or_else(|| ServiceError::BadRequest(format!("the dataset at {path} has no rows")))?;
    for p in it {
        out.vstack_mut(&p)?;
    }
    Ok(out)
}
