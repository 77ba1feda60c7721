//! External runs in Spark: a table or files a Spark cluster reads, reached through Spark Connect.
//! Registration reads the schema, the row count and a first sample (roles, summaries); every
//! request pushes its cell aggregation down (`spark::pushdown::CellQuery`) and folds the cells
//! that come back into the engine's prepared cells, exactly as an uploaded copy's would be made.
//!
//! Exactness, and where it ends:
//! - Slices by value, fixed edges, filters and conditions: Spark groups by the values (or by the
//!   bucket of every edge merged), and each group comes back as one row with its count, sliced by
//!   the same code as the rows themselves ([`CellFold::add_counted`]).
//! - Quantile and equal-width buckets need the column's order statistics, minimum and maximum:
//!   exact (`percentile_disc` at the ranks `quantile_sorted` reads, interpolated here as it does)
//!   for columns of at most [`EXACT_QUANTILE_VALUES`] present values; beyond, Spark's
//!   `approx_percentile` (rank error ~1/10,000 of the rows), said in the result's notes.
//! - Scores: grouped by the exact score when there are at most [`EXACT_SCORES`] distinct ones
//!   (every metric exact); beyond, on a grid of [`SCORE_BUCKETS`] buckets of width 1/n, where
//!   counts at thresholds on the grid are exact and the notes say so.
//! - Regression runs: grouped by the exact (label, prediction) pair, so every metric (the median
//!   absolute error too) is the uploaded copy's; a run with more than [`EXACT_SCORES`] distinct
//!   pairs (about) is refused with that reason rather than approximated.

use super::*;
use crate::eval::sliced::{CellFold, bucket_value, columns_needed, cuts_needing_values, push_down_columns};
use crate::eval::slicing::{Buckets, Cut};
use crate::ingest::dataset::Access;
use crate::spark::pushdown::{self, FileFormat};
use crate::spark::{CellQuery, Param, Remote, ScoreGrid, SliceColumn, Source, SparkClient, SparkError, SparkTable, Values};
use strata_app::model::{RegisterRun, RunSource, SparkField, SparkSource};

/// Scores are grouped exactly when a run has at most this many distinct ones (about).
pub const EXACT_SCORES: u64 = 2_000_000;
/// Otherwise: buckets of width 1/n on [0, 1].
pub const SCORE_BUCKETS: u32 = 10_000;
/// Exact quantile edges for a column of at most this many present values.
pub const EXACT_QUANTILE_VALUES: u64 = 5_000_000;

impl From<SparkError> for ServiceError {
    fn from(e: SparkError) -> Self {
        match e {
            SparkError::BadRemote(_) => ServiceError::BadRequest(e.to_string()),
            SparkError::Refused(_) => ServiceError::Forbidden(e.to_string()),
            SparkError::TableMissing { .. } | SparkError::ColumnMissing { .. } | SparkError::ColumnTypeChanged { .. } => ServiceError::Conflict(e.to_string()),
            _ => ServiceError::Model(e.to_string()),
        }
    }
}

/// What Spark reads for `src`, checked: one of a table and a path, a known format, and in team
/// mode a local path only under the admin's roots (a path with a scheme, `s3://…`, is Spark's
/// storage and its own credentials' business).
fn spark_source(src: &SparkSource, access: Option<&Access>) -> Result<Source, ServiceError> {
    match (&src.table, &src.path) {
        (Some(t), None) => {
            if src.format.is_some() {
                return Err(ServiceError::BadRequest("a Spark table has no format: give it with a path".into()));
            }
            Ok(Source::table(t)?)
        }
        (None, Some(p)) => {
            let format = match src.format.as_deref().unwrap_or("parquet") {
                "parquet" => FileFormat::Parquet,
                "delta" => FileFormat::Delta,
                "orc" => FileFormat::Orc,
                other => return Err(ServiceError::BadRequest(format!("'{other}' is not a format Strata reads through Spark (parquet, delta, orc)"))),
            };
            if p.trim().is_empty() || p.chars().any(char::is_control) {
                return Err(ServiceError::BadRequest("the Spark path is empty or holds control characters".into()));
            }
            let local = !p.contains("://") || p.starts_with("file://");
            if let (true, Some(Access::Roots(roots))) = (local, access) {
                let path = std::path::Path::new(p.strip_prefix("file://").unwrap_or(p));
                let inside = path.is_absolute()
                    && !path.components().any(|c| matches!(c, std::path::Component::ParentDir))
                    && roots.iter().any(|r| path.starts_with(r));
                if !inside {
                    return Err(ServiceError::Forbidden("in team mode Spark reads local paths only under the directories an admin allowed (--external-root)".into()));
                }
            }
            Ok(Source::Files { format, path: p.clone() })
        }
        _ => Err(ServiceError::BadRequest("a Spark source names either a \"table\" or a \"path\", not both".into())),
    }
}

/// The positive class as the cell query compares it, from the label's Spark type.
fn positive_of(label_type: &str) -> Param {
    match label_type.to_ascii_lowercase().as_str() {
        "boolean" => Param::Bool(true),
        "string" => Param::Text("1".into()),
        _ => Param::Number(1.0),
    }
}

impl AppState {
    async fn spark_connect(&self, remote: Remote) -> Result<SparkClient, ServiceError> {
        Ok(SparkClient::connect(&remote, &self.outbound, self.spark_options.clone()).await?)
    }

    /// An external run's Spark address with its token opened.
    async fn spark_remote(&self, id: &str, src: &SparkSource) -> Result<Remote, ServiceError> {
        let token = match self.store.source_secret(id).await? {
            Some(sealed) => Some(self.secrets.open(&sealed).map_err(|e| ServiceError::Model(e.to_string()))?),
            None => None,
        };
        Ok(Remote::parse(&src.remote)?.with_token(token))
    }

    /// A session on a Spark run's server once its source still is what was registered: the
    /// columns read (`expected`) kept their types (409 otherwise) and it has the same rows (409:
    /// register it again). The caller closes the session.
    async fn spark_checked(&self, detail: &RunDetail, src: &SparkSource, source: &Source, expected: &[(String, String)]) -> Result<SparkClient, ServiceError> {
        let remote = self.spark_remote(&detail.summary.id, src).await?;
        let spark = self.spark_connect(remote).await?;
        let checked = async {
            spark.check_schema(source, expected).await?;
            spark.row_count(source).await
        }
        .await;
        let refused = match checked {
            Ok(rows) if rows == detail.summary.rows => return Ok(spark),
            Ok(rows) => ServiceError::Conflict(format!(
                "{} has {rows} rows now but had {} when the run was registered: register it again as a new run",
                source.describe(),
                detail.summary.rows
            )),
            Err(e) => e.into(),
        };
        spark.close().await;
        Err(refused)
    }

    /// Registers a Spark table or path as a run: schema, row count and a sample of the first
    /// rows read through Spark Connect; the token (if any) sealed and kept apart.
    pub(crate) async fn register_spark(&self, reg: RegisterRun, src: SparkSource, access: Access) -> Result<String, ServiceError> {
        let source = spark_source(&src, Some(&access))?;
        let (remote_text, token) = Remote::parse(src.remote.trim())?.split_token();
        let remote = Remote::parse(&remote_text)?.with_token(token.clone());
        let spark = self.spark_connect(remote).await?;
        let answer = async {
            let schema = spark.schema(&source).await?;
            let rows = spark.row_count(&source).await?;
            let sample = spark.sql(&pushdown::sample_sql(&source, &schema, super::external::SAMPLE_ROWS as u32)).await?.to_polars()?;
            Ok::<_, SparkError>((schema, rows, sample))
        }
        .await;
        spark.close().await;
        let (schema, rows, sample) = answer?;
        let place = source.describe();
        let stored = SparkSource { remote: remote_text, schema: schema.iter().map(|(n, t)| SparkField { name: n.clone(), data_type: t.clone() }).collect(), ..src };
        let detail = self.describe_external(reg, sample, rows, &place, RunSource::Spark(stored)).await?;
        if detail.summary.task == Task::Multiclass {
            return Err(ServiceError::BadRequest(format!("{place}: the label has more than two classes; multiclass runs are not evaluated in Spark yet (binary classification and regression are)")));
        }
        let secret = token.map(|t| self.secrets.seal(&t)).transpose().map_err(|e| ServiceError::Model(e.to_string()))?;
        self.store.insert_run(&NewRun { detail: detail.clone(), parquet: vec![], attachments: vec![], source_secret: secret }).await?;
        Ok(detail.summary.id)
    }

    /// A Spark run's row sample (see `external::ROW_SAMPLE`): `TABLESAMPLE` at the share that
    /// keeps that many rows on average, `REPEATABLE` so every request (and a restarted server)
    /// reads the same rows, the answer bounded at twice as many. Every column Strata reads.
    pub(crate) async fn spark_rows(&self, detail: &RunDetail, src: SparkSource) -> Result<DataFrame, ServiceError> {
        use super::external::{ROW_SAMPLE, ROW_SAMPLE_SEED, spark_sample_percent};
        let source = spark_source(&src, None)?;
        let columns: Vec<(String, String)> = src.schema.iter().map(|f| (f.name.clone(), f.data_type.clone())).collect();
        let sql = pushdown::row_sample_sql(&source, &columns, spark_sample_percent(detail.summary.rows), ROW_SAMPLE_SEED, 2 * ROW_SAMPLE as u32)?;
        let spark = self.spark_checked(detail, &src, &source, &columns).await?;
        let answer = async { spark.sql(&sql).await?.to_polars() }.await;
        spark.close().await;
        Ok(answer?)
    }

    /// A Spark run's cells for `request`, pushed down (see the module docs); cached under `key`.
    /// Nothing is cached when Spark fails.
    pub(crate) async fn prepare_spark(&self, key: &str, detail: RunDetail, src: SparkSource, request: &MetricsRequest, task: Task) -> Result<Arc<Prepared>, ServiceError> {
        if task == Task::Multiclass {
            return Err(ServiceError::BadRequest("multiclass runs are not evaluated in Spark yet (binary classification and regression are)".into()));
        }
        let binary = task == Task::Binary;
        let source = spark_source(&src, None)?;
        let place = source.describe();
        let needed = columns_needed(request).map_err(request_error)?;
        let known: Vec<&str> = src.schema.iter().map(|f| f.name.as_str()).collect();
        if let Some(c) = needed.iter().find(|c| !known.contains(&c.as_str())) {
            let close = eval::names::closest(c, known.iter().copied());
            let hint = if close.is_empty() { format!("its columns: {}", known.join(", ")) } else { format!("did you mean {}?", close.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(" or ")) };
            return Err(ServiceError::BadRequest(format!("column '{c}' is not in the run's Spark source {place}; {hint}")));
        }
        let expected: Vec<(String, String)> = src.schema.iter().filter(|f| needed.contains(&f.name)).map(|f| (f.name.clone(), f.data_type.clone())).collect();
        let label_type = src.schema.iter().find(|f| f.name == request.label).map(|f| f.data_type.clone()).unwrap_or_default();
        let spark = self.spark_checked(&detail, &src, &source, &expected).await?;
        let pushed = async {
            let mut notes = Vec::new();
            let mut resolved = Vec::new();
            for (column, cut) in cuts_needing_values(request).map_err(request_error)? {
                let (buckets, note) = resolve_buckets(&spark, &source, &column, &cut).await?;
                notes.extend(note);
                resolved.push((column, cut, buckets));
            }
            let push = push_down_columns(request, &resolved).map_err(request_error)?;
            let distinct_query = if binary { pushdown::distinct_sql(&source, &request.model) } else { pushdown::pair_distinct_sql(&source, &request.label, &request.model) };
            let distinct = spark.sql(&distinct_query).await?;
            let distinct = distinct.require("d")?.values.f64_at(0).unwrap_or(0.0) as u64;
            let grid = if distinct <= EXACT_SCORES {
                ScoreGrid::Exact
            } else if !binary {
                return Err(ServiceError::BadRequest(format!(
                    "{place} has about {distinct} distinct (label, prediction) pairs: a regression run's metrics (the median absolute error among them) are computed from every distinct pair, and at most {EXACT_SCORES} are brought back from Spark; register a sample of the rows (or a coarser label) instead"
                )));
            } else {
                notes.push(format!(
                    "{place} has about {distinct} distinct scores: they were grouped into {SCORE_BUCKETS} buckets of width 1/{SCORE_BUCKETS}; counts and rates are exact at thresholds on multiples of 1/{SCORE_BUCKETS}, and AUC / average precision treat the scores of one bucket as ties"
                ));
                ScoreGrid::Buckets(SCORE_BUCKETS)
            };
            let query = CellQuery {
                source: source.clone(),
                label: request.label.clone(),
                score: request.model.clone(),
                weight: request.weight.clone(),
                positive: binary.then(|| positive_of(&label_type)),
                slices: push
                    .iter()
                    .map(|p| match &p.edges {
                        None => SliceColumn::Categorical(p.column.clone()),
                        Some(e) => SliceColumn::Numeric { column: p.column.clone(), edges: e.clone() },
                    })
                    .collect(),
                grid,
                by_weight: request.weight.is_some(),
            };
            let cells = spark.cells(&query).await?;
            Ok::<_, ServiceError>((cells, push, resolved, grid, notes))
        }
        .await;
        spark.close().await;
        let (cells, push, resolved, grid, notes) = pushed?;
        let (cache, key, request) = (self.prepared.clone(), key.to_string(), request.clone());
        self.work
            .run(move || -> Result<Arc<Prepared>, ServiceError> {
                let (frame, counts) = cells_as_rows(&cells, &push, &request, grid)?;
                let spec = super::external::batch_spec(&detail, &request, &needed, task);
                let ing = ingest::assemble(frame, &place, &spec)?;
                let mut fold = CellFold::new(&request, task, resolved).map_err(request_error)?;
                fold.add_counted(&ing.frame, &counts).map_err(request_error)?;
                let mut p = fold.finish().map_err(request_error)?;
                p.notes = notes;
                p.score_grid = match grid {
                    ScoreGrid::Buckets(n) => Some(n),
                    ScoreGrid::Exact => None,
                };
                let p = Arc::new(p);
                cache.insert(&key, p.clone());
                Ok(p)
            })
            .await?
    }
}

impl AppState {
    /// A Spark run's counts of the `wanted` columns for drift (and its label's as the cell query
    /// reads it, when `binary`), pushed down in two scans over the rows whose label and scores are
    /// present: the distinct values' estimates, then every column counted at once (`GROUPING
    /// SETS`). A column with more than [`super::drift::DRIFT_EXACT_VALUES`] distinct values (or
    /// past the answer's bound, largest first) is left out with a note. The schema and row count
    /// are checked first, as for the cells.
    pub(crate) async fn spark_counts(&self, detail: &RunDetail, src: SparkSource, wanted: &[super::drift::Wanted], binary: bool) -> Result<super::drift::RunCounts, ServiceError> {
        use super::drift::{DRIFT_EXACT_VALUES, RunCounts, too_many};
        use crate::eval::drift::{Counted, CountedNumbers, CountedTexts};
        use crate::spark::pushdown::CountColumn;
        /// The most values (all columns together) one answer brings back: a few tens of MB.
        const DRIFT_ANSWER_VALUES: u64 = 4_000_000;
        let source = spark_source(&src, None)?;
        let place = source.describe();
        let mut required: Vec<String> = vec![detail.label.clone()];
        required.extend(detail.summary.models.iter().cloned());
        let read: Vec<&str> = required.iter().map(String::as_str).chain(wanted.iter().map(|w| w.name.as_str())).collect();
        let expected: Vec<(String, String)> = src.schema.iter().filter(|f| read.contains(&f.name.as_str())).map(|f| (f.name.clone(), f.data_type.clone())).collect();
        let label_type = src.schema.iter().find(|f| f.name == detail.label).map(|f| f.data_type.clone()).unwrap_or_default();
        let spark = self.spark_checked(detail, &src, &source, &expected).await?;
        let answer = async {
            // Two scans whatever the number of columns: about how many distinct values each has,
            // then every column within the bounds counted at once (`GROUPING SETS`).
            let mut out = RunCounts::default();
            let all: Vec<CountColumn> = wanted.iter().map(|w| CountColumn { name: w.name.clone(), numeric: w.numeric() }).collect();
            let mut kept: Vec<CountColumn> = Vec::new();
            if !all.is_empty() {
                let d = spark.sql(&pushdown::distinct_counts_sql(&source, &all, &required)).await?;
                let mut estimates: Vec<(usize, u64)> = (0..all.len()).map(|i| (i, d.column(&format!("d{i}")).and_then(|c| c.values.f64_at(0)).unwrap_or(0.0) as u64)).collect();
                // Fewest values first, while the answer stays bounded.
                estimates.sort_by_key(|e| e.1);
                let mut total = 0u64;
                let mut keep = vec![false; all.len()];
                for (i, e) in estimates {
                    if e as usize <= DRIFT_EXACT_VALUES && total + e <= DRIFT_ANSWER_VALUES {
                        total += e;
                        keep[i] = true;
                    } else {
                        out.left_out.push(all[i].name.clone());
                        out.notes.push(too_many(&all[i].name, &place));
                    }
                }
                kept = all.iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| c.clone()).collect();
            }
            let label = binary.then(|| (detail.label.as_str(), positive_of(&label_type)));
            let with_label = label.is_some();
            if kept.is_empty() && !with_label {
                return Ok(out);
            }
            let t = spark.sql(&pushdown::value_counts_sql(&source, &kept, label, &required)?).await?;
            let k = kept.len() + usize::from(with_label);
            let (g, n) = (&t.require("g")?.values, &t.require("n")?.values);
            let mut numbers: Vec<Vec<(Option<f64>, u64)>> = vec![vec![]; k];
            let mut texts: Vec<CountedTexts> = vec![CountedTexts::default(); k];
            let values: Vec<&Values> = (0..k).map(|i| t.require(&format!("v{i}")).map(|c| &c.values)).collect::<Result<_, _>>()?;
            for row in 0..t.height() {
                let Some(bits) = g.f64_at(row).map(|x| x as u64) else { continue };
                let Some(i) = (0..k).find(|i| bits & (1u64 << (k - 1 - i)) == 0) else { continue };
                let rows = n.f64_at(row).unwrap_or(0.0) as u64;
                if i < kept.len() && !kept[i].numeric {
                    texts[i].add(values[i].text_at(row).as_deref(), rows);
                } else {
                    numbers[i].push((values[i].f64_at(row), rows));
                }
            }
            for (i, c) in kept.iter().enumerate() {
                let counted = if c.numeric { Counted::Numbers(CountedNumbers::from_pairs(std::mem::take(&mut numbers[i]))) } else { Counted::Texts(std::mem::take(&mut texts[i])) };
                if counted.distinct() > DRIFT_EXACT_VALUES {
                    out.left_out.push(c.name.clone());
                    out.notes.push(too_many(&c.name, &place));
                } else {
                    out.columns.insert(c.name.clone(), counted);
                }
            }
            if with_label {
                out.label = Some(CountedNumbers::from_pairs(std::mem::take(&mut numbers[k - 1])));
            }
            Ok::<_, SparkError>(out)
        }
        .await;
        spark.close().await;
        Ok(answer?)
    }
}

/// The buckets of a quantile or width cut from Spark: exact order statistics for a column of
/// moderate size, approximate quantiles (and a note) beyond.
async fn resolve_buckets(spark: &SparkClient, source: &Source, column: &str, cut: &Cut) -> Result<(Buckets, Option<String>), SparkError> {
    let t = spark.sql(&pushdown::summary_sql(source, column)).await?;
    let n = t.require("n")?.values.f64_at(0).unwrap_or(0.0) as u64;
    let (lo, hi) = (t.require("lo")?.values.f64_at(0), t.require("hi")?.values.f64_at(0));
    let Cut::Quantiles(k) = cut else {
        return Ok((Buckets::from_summary(cut, lo, hi, |_| f64::NAN), None));
    };
    if n == 0 {
        return Ok((Buckets::from_summary(cut, None, None, |_| f64::NAN), None));
    }
    let qs: Vec<f64> = (1..*k).map(|i| i as f64 / *k as f64).collect();
    if n <= EXACT_QUANTILE_VALUES {
        // The ranks `quantile_sorted` reads for each q: floor(q·(n−1)) and the next one.
        let mut ranks: Vec<u64> = Vec::new();
        for q in &qs {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let i = pos.floor() as u64;
            ranks.extend([i, i + 1].into_iter().filter(|r| *r < n));
        }
        ranks.sort_unstable();
        ranks.dedup();
        let t = spark.sql(&pushdown::order_stats_sql(source, column, &ranks, n)?).await?;
        let at = |r: u64| -> f64 {
            let i = ranks.iter().position(|x| *x == r).expect("asked rank");
            t.columns[i].values.f64_at(0).unwrap_or(f64::NAN)
        };
        let b = Buckets::from_summary(cut, lo, hi, |q| {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let (i, frac) = (pos.floor() as u64, pos.fract());
            if i + 1 < n { at(i) + frac * (at(i + 1) - at(i)) } else { at(i) }
        });
        return Ok((b, None));
    }
    let t = spark.sql(&pushdown::quantiles_sql(source, column, &qs, 10_000)?).await?;
    let values: Vec<f64> = t.columns.iter().map(|c| c.values.f64_at(0).unwrap_or(f64::NAN)).collect();
    let b = Buckets::from_summary(cut, lo, hi, |q| qs.iter().position(|x| *x == q).map_or(f64::NAN, |i| values[i]));
    let note = format!("'{column}' has {n} values: its {k} quantile buckets use Spark's approximate quantiles (rank error about 1/10,000 of the rows)");
    Ok((b, Some(note)))
}

/// The cells Spark sent as rows of the run's columns (a numeric bucket as a value inside it, a
/// score bucket as its lower edge), with each row's count.
fn cells_as_rows(t: &SparkTable, push: &[crate::eval::sliced::PushColumn], req: &MetricsRequest, grid: ScoreGrid) -> Result<(DataFrame, Vec<u64>), ServiceError> {
    let bad = |e: SparkError| ServiceError::Model(e.to_string());
    let n = t.height();
    let mut cols: Vec<Column> = Vec::with_capacity(push.len() + 3);
    let raw = |name: &str, as_name: &str| -> Result<Column, ServiceError> {
        let c = t.require(name).map_err(bad)?;
        let s = match &c.values {
            Values::Bool(v) => Series::new(as_name.into(), v),
            Values::Int(v) => Series::new(as_name.into(), v),
            Values::Float(v) => Series::new(as_name.into(), v),
            Values::Text(v) => Series::new(as_name.into(), v),
        };
        Ok(s.into())
    };
    for (i, p) in push.iter().enumerate() {
        let name = format!("slice_{i}");
        match &p.edges {
            None => cols.push(raw(&name, &p.column)?),
            Some(edges) => {
                let v = &t.require(&name).map_err(bad)?.values;
                let x: Vec<Option<f64>> = (0..n).map(|r| v.f64_at(r).map(|b| bucket_value(edges, b as usize))).collect();
                cols.push(Column::new(p.column.as_str().into(), x));
            }
        }
    }
    let score = &t.require("score").map_err(bad)?.values;
    let p: Vec<Option<f64>> = match grid {
        ScoreGrid::Exact => (0..n).map(|r| score.f64_at(r)).collect(),
        ScoreGrid::Buckets(k) => (0..n).map(|r| score.f64_at(r).map(|b| b / k as f64)).collect(),
    };
    cols.push(Column::new(req.model.as_str().into(), p));
    if !push.iter().any(|c| c.column == req.label) {
        cols.push(raw("label", &req.label)?);
    }
    if let Some(w) = &req.weight {
        cols.push(raw("weight", w)?);
    }
    let counts_col = &t.require("n").map_err(bad)?.values;
    let counts: Vec<u64> = (0..n).map(|r| counts_col.f64_at(r).unwrap_or(0.0) as u64).collect();
    let frame = DataFrame::new(n, cols).map_err(ServiceError::Polars)?;
    Ok((frame, counts))
}
