//! Wire types shared by the server, the JSON API and the browser: plain data, no behaviour.
//! This file holds the runs' own types (columns, roles, uploads, errors); the pages' types are in
//! the submodule of the same name as the page, all re-exported here.

mod access;
mod columns;
mod discover;
mod drift;
mod fairness;
mod projects;
mod residuals;
mod slices;
mod whatif;

pub use access::*;
pub use columns::*;
pub use discover::*;
pub use drift::*;
pub use fairness::*;
pub use projects::*;
pub use residuals::*;
pub use slices::*;
pub use whatif::*;

use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use utoipa::ToSchema;

/// What kind of prediction problem a run's label describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Label in {0, 1} (or false/true); each score is P(label = 1).
    Binary,
    /// Label is one of a few classes (strings or integers); scores are predicted classes.
    Multiclass,
    /// Label is a real number; each score is a predicted value.
    Regression,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Binary => "binary",
            Task::Multiclass => "multiclass",
            Task::Regression => "regression",
        }
    }
}

/// The part a column plays in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Feature,
    Label,
    Score,
    Prediction,
    Id,
    Timestamp,
    Weight,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Feature,
        Role::Label,
        Role::Score,
        Role::Prediction,
        Role::Id,
        Role::Timestamp,
        Role::Weight,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Feature => "feature",
            Role::Label => "label",
            Role::Score => "score",
            Role::Prediction => "prediction",
            Role::Id => "id",
            Role::Timestamp => "timestamp",
            Role::Weight => "weight",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// How a column's values are treated when slicing and summarising.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Numeric,
    Categorical,
    Boolean,
    Timestamp,
}

/// A column of a stored run with its role, type and summary statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ColumnInfo {
    pub name: String,
    pub role: Role,
    pub kind: ColumnKind,
    /// Missing (null) values.
    pub missing: u64,
    /// Distinct non-missing values (exact).
    pub distinct: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    /// The most frequent values of a categorical column, most frequent first (at most 10).
    pub top_values: Vec<ValueCount>,
    /// A multiclass model's per-class score column: the model (its predicted-class column) and
    /// the class this column scores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_score: Option<ClassScore>,
}

/// Which model and class a per-class score column belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ClassScore {
    pub model: String,
    pub class: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ValueCount {
    pub value: String,
    pub count: u64,
}

/// One row of the runs list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct RunSummary {
    pub id: String,
    pub name: String,
    pub task: Task,
    /// The score (model) columns: one per model.
    pub models: Vec<String>,
    pub rows: u64,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub tags: Vec<String>,
    pub source_file: String,
    /// The project (a model's evaluation history) the run belongs to, if any.
    #[serde(default)]
    pub project: Option<String>,
    /// The model version / release the run evaluates, e.g. `v12`.
    #[serde(default)]
    pub version: Option<String>,
    /// The time the run stands for (RFC 3339, UTC): its timestamp column's latest value, else
    /// the upload time. Runs of a project are ordered by it.
    #[serde(default)]
    pub run_time: String,
    /// Where an external run's rows live (read when a view needs them, never stored); `None` for
    /// an uploaded run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<RunSource>,
}

/// Where an external run's rows live: `{"parquet": "/data/preds/"}` or
/// `{"spark": {"remote": "sc://host:15002", "table": "db.preds"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RunSource {
    /// A local or mounted Parquet dataset: a file, a directory (read recursively, hive
    /// partitions as columns) or a glob (`/data/preds/*.parquet`).
    Parquet(String),
    /// A table, or files, read by a Spark cluster through Spark Connect.
    Spark(SparkSource),
}

/// A Spark table or path reached through Spark Connect. Exactly one of `table` and `path`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SparkSource {
    /// `sc://host:15002` (Spark Connect's address and parameters). A `;token=…` in a
    /// registration is taken out, sealed and kept apart: a stored or listed source never holds it.
    pub remote: String,
    /// A catalog table or view: `db.preds`, `catalog.db.preds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Files Spark reads (its path syntax: `/data/preds/`, `s3://bucket/preds/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The files' format with `path`: `parquet` (default), `delta` or `orc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Set by the server: the (column, Spark type) pairs seen at registration, to tell a table
    /// that changed under the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema: Vec<SparkField>,
}

/// A column of a Spark table and its type as Spark names it (`bigint`, `string`, `double`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SparkField {
    pub name: String,
    pub data_type: String,
}

impl RunSource {
    /// A short mark for the pages, e.g. `Parquet: /data/preds/`.
    pub fn mark(&self) -> String {
        match self {
            RunSource::Parquet(p) => format!("Parquet: {p}"),
            RunSource::Spark(s) => match (&s.table, &s.path) {
                (Some(t), _) => format!("Spark: {t} at {}", s.remote),
                (None, Some(p)) => format!("Spark: {} {p} at {}", s.format.as_deref().unwrap_or("parquet"), s.remote),
                (None, None) => format!("Spark at {}", s.remote),
            },
        }
    }
}

/// The body of `POST /api/v1/runs` (JSON) that registers an external run: its source and the
/// columns' roles (inferred from the names when absent, as for an upload). The rows stay where
/// they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterRun {
    /// The run's name; default: the path's last part.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub scores: Option<Vec<String>>,
    /// The id column.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub weight: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    pub source: Option<RunSource>,
}

/// An ONNX (or other) model file stored with a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct AttachmentInfo {
    pub name: String,
    pub media_type: String,
    pub bytes: u64,
    /// The score column this model produces, when known.
    pub model: Option<String>,
}

/// Everything stored about a run except its rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct RunDetail {
    #[serde(flatten)]
    pub summary: RunSummary,
    pub label: String,
    pub columns: Vec<ColumnInfo>,
    pub attachments: Vec<AttachmentInfo>,
}

impl RunDetail {
    /// A multiclass model's per-class score columns as (class, column); empty for other models.
    pub fn class_scores(&self, model: &str) -> Vec<(String, String)> {
        self.columns
            .iter()
            .filter_map(|c| c.class_score.as_ref().filter(|s| s.model == model).map(|s| (s.class.clone(), c.name.clone())))
            .collect()
    }
}

/// One headline number of one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct MetricValue {
    /// snake_case metric name, e.g. `auc_roc`.
    pub name: String,
    /// `None` when undefined on this data (e.g. AUC with one class only).
    pub value: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ModelHeadline {
    pub model: String,
    pub metrics: Vec<MetricValue>,
}

/// The run overview page's data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct RunOverview {
    pub detail: RunDetail,
    /// Label balance: value -> count (binary and multiclass), or for regression a histogram:
    /// `[a, b)` -> rows, equal-width bins between the label's minimum and maximum.
    pub label_balance: Vec<ValueCount>,
    pub headline: Vec<ModelHeadline>,
    /// The model whose distribution the chart shows.
    pub chart_model: String,
    /// A Plotly figure as JSON (rendered by `/charts.js`).
    pub chart: String,
    /// The run's newest validation against its project's gates, if it was validated.
    #[serde(default)]
    pub validation: Option<Validation>,
}

/// A page of a run's rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ExamplesPage {
    pub columns: Vec<String>,
    #[cfg_attr(feature = "ssr", schema(value_type = Vec<Vec<Object>>))]
    pub rows: Vec<Vec<serde_json::Value>>,
    pub offset: u64,
    pub limit: u64,
    pub total: u64,
    /// Why there are no rows to show (an external run's rows stay in its dataset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The rows are a sample of an external run's (see [`RowSample`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<RowSample>,
}

/// The rows a view of an external run reads: a uniform random sample drawn with a fixed seed
/// where the rows live (the same rows on every request), never the whole dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct RowSample {
    /// Rows in the sample.
    pub rows: u64,
    /// Rows of the run.
    pub of: u64,
    pub seed: u64,
    /// Where and how it was read, e.g. `drawn by Spark: TABLESAMPLE (2 PERCENT) REPEATABLE (1)`.
    pub method: String,
}

impl RowSample {
    /// The sentence a page shows above what it computed from the sample.
    pub fn sentence(&self) -> String {
        if self.rows >= self.of {
            return format!("Computed on all {} rows of this external run ({}).", grouped(self.of), self.method);
        }
        let share = 100.0 * self.rows as f64 / self.of.max(1) as f64;
        format!(
            "Computed on a uniform sample of {} of the run's {} rows ({}%, seed {}; {}): an external run's rows stay where they are.",
            grouped(self.rows),
            grouped(self.of),
            if share >= 1.0 { format!("{share:.0}") } else { format!("{share:.2}") },
            self.seed,
            self.method
        )
    }
}

/// `1234567` as `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How to read an uploaded file: every field but `name` is optional and inferred.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct IngestSpec {
    pub name: String,
    pub label: Option<String>,
    pub scores: Option<Vec<String>>,
    pub prediction: Option<String>,
    pub id: Option<String>,
    pub timestamp: Option<String>,
    pub weight: Option<String>,
    /// Columns to treat as categorical even when they hold numbers.
    pub categorical: Vec<String>,
    /// Columns to leave out of the run entirely.
    pub ignore: Vec<String>,
    pub tags: Vec<String>,
    /// Force the task instead of inferring it from the label.
    pub task: Option<Task>,
    /// CSV delimiter; sniffed from the header line when absent.
    pub delimiter: Option<char>,
    /// The project the run joins (letters, digits, `-`, `_`, `.`).
    #[serde(default)]
    pub project: Option<String>,
    /// The model version the run evaluates.
    #[serde(default)]
    pub version: Option<String>,
    /// Which score column each attached model file produces (`{"score_gbt": "model_gbt.onnx"}`).
    /// A file not named here is matched by its name (`model_gbt.onnx` ↔ `score_gbt`), else called
    /// by its stem (`candidate.onnx` → `candidate`).
    pub models: std::collections::BTreeMap<String, String>,
}

/// The answer of the preview endpoint: what Strata would make of a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct Preview {
    pub format: String,
    pub columns: Vec<PreviewColumn>,
    /// The first rows, as text.
    pub rows: Vec<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct PreviewColumn {
    pub name: String,
    pub kind: ColumnKind,
    pub role: Role,
}

/// The body of every API error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ApiError {
    pub error: String,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub detail: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct Created {
    pub id: String,
}

/// Where a tracked job stands (`GET /api/v1/jobs/{job}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    /// Cancel was asked; the work stops at its next check.
    Cancelling,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    /// Whether the job has ended (nothing more will change).
    pub fn ended(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed | JobState::Cancelled)
    }
}

/// The progress of a long request (an upload's ingest, an analysis), as its starter sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct JobStatus {
    /// The id the client chose for it.
    pub job: String,
    pub state: JobState,
    /// What the work is doing now (`reading`, `bootstrap`, `grid`…); empty before it starts.
    pub stage: String,
    /// Steps done of `total` (grid points, replicates, levels, bytes read…); `total` is 0 until known.
    pub done: u64,
    pub total: u64,
    /// Rows read so far (ingest).
    pub rows: u64,
    pub elapsed_ms: u64,
    /// Seconds left at the rate so far, while running and once a step is done.
    pub eta_seconds: Option<f64>,
}
