//! Wire types shared by the server, the JSON API and the browser: plain data, no behaviour.

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
    /// Label balance: value -> count (binary and multiclass), or quantiles for regression.
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

/// A metric's value with its confidence interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct Estimate {
    pub value: Option<f64>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    /// `wilson`, `bootstrap`, `bootstrap_binned` (replicates over score-binned cells, for binary
    /// runs with more than 32,768 distinct cells; see the engine's `Prepared::binned`), or `none`.
    pub method: String,
}

/// Confusion counts (weighted) and metrics at one threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct AtThreshold {
    pub threshold: f64,
    pub tp: f64,
    pub fp: f64,
    pub tn: f64,
    #[serde(rename = "fn")]
    pub fn_: f64,
    #[serde(flatten)]
    pub metrics: std::collections::BTreeMap<String, Estimate>,
}

/// A slice's gap to the baseline for one metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct Comparison {
    pub diff: Option<f64>,
    pub ratio: Option<f64>,
    /// Two-sided bootstrap z-test of `diff = 0`.
    pub p_value: Option<f64>,
    /// Benjamini–Hochberg adjusted p-value across the request's slices.
    pub q_value: Option<f64>,
    /// `q_value <= alpha`.
    pub significant: bool,
}

/// One slice's metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct SliceResult {
    pub spec: String,
    pub key: std::collections::BTreeMap<String, String>,
    pub count: u64,
    pub weight: f64,
    /// Smaller than the request's minimum size: reported, but not tested.
    pub too_small: bool,
    pub metrics: std::collections::BTreeMap<String, Estimate>,
    pub at: Vec<AtThreshold>,
    /// Keys: a metric name, or `name@threshold` for metrics at a threshold.
    pub vs_baseline: std::collections::BTreeMap<String, Comparison>,
    /// Multiclass runs: the slice's confusion matrix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confusion: Option<ConfusionMatrix>,
}

/// Weighted counts: `counts[true class][predicted class]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ConfusionMatrix {
    pub classes: Vec<String>,
    pub counts: Vec<Vec<f64>>,
}

/// The answer of a metrics request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct MetricsResult {
    pub model: String,
    pub task: String,
    pub thresholds: Vec<f64>,
    pub ci: f64,
    pub bootstrap: usize,
    pub seed: u64,
    pub baseline: String,
    pub slices: Vec<SliceResult>,
    /// Binary runs: group-fairness criteria across the slices of each spec, per threshold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub criteria: Vec<CriteriaAt>,
}

/// A fairness criterion across a spec's groups: the largest difference (max − min) and the
/// smallest ratio (min / max) of one metric, as fairlearn defines them, with bootstrap intervals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct Criterion {
    /// `demographic_parity`, `equal_opportunity`, `equalized_odds`, `predictive_parity`,
    /// `accuracy_parity`.
    pub name: String,
    /// The metric compared (`positive_rate`, `tpr`, `tpr+fpr`, `precision`, `accuracy`).
    pub metric: String,
    pub difference: Estimate,
    pub ratio: Estimate,
    /// The groups with the lowest and highest value (for the difference).
    pub lowest: String,
    pub highest: String,
}

/// The criteria of one spec at one threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct CriteriaAt {
    pub spec: String,
    pub threshold: f64,
    /// Groups compared (slices at least `min_size` rows with the metric defined).
    pub groups: usize,
    pub criteria: Vec<Criterion>,
}

impl SliceResult {
    /// `sex=Female, race=White` (spec order), or `overall`.
    pub fn label(&self) -> String {
        if self.key.is_empty() {
            return "overall".to_string();
        }
        let order: Vec<&str> = self.spec.split(',').map(|p| p.split(':').next().unwrap_or(p).trim()).collect();
        let mut parts: Vec<String> = order.iter().filter_map(|c| self.key.get(*c).map(|v| format!("{c}={v}"))).collect();
        if parts.is_empty() {
            parts = self.key.iter().map(|(c, v)| format!("{c}={v}")).collect();
        }
        parts.join(", ")
    }

    /// The estimate of `metric` (a threshold-free name) or of `metric` at `threshold`.
    pub fn estimate(&self, metric: &str, threshold: Option<f64>) -> Option<&Estimate> {
        match threshold {
            Some(t) => self.at.iter().find(|a| a.threshold == t).and_then(|a| a.metrics.get(metric)),
            None => self.metrics.get(metric),
        }
    }
}

/// The slices page's data: the engine's result and the chart of the chosen metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SliceView {
    pub result: MetricsResult,
    pub models: Vec<String>,
    pub metric: String,
    /// The threshold the chosen metric is shown at (threshold metrics only).
    pub threshold: Option<f64>,
    pub chart: String,
    /// Metric names offered by the picker.
    pub metric_names: Vec<String>,
    /// The run's project, for the "over time" link.
    #[serde(default)]
    pub project: Option<String>,
}

/// A two-sided association test of one feature with the residuals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct FeatureAssociation {
    pub feature: String,
    /// `numeric` or `categorical`.
    pub kind: String,
    /// Numeric: Spearman's ρ (ranked by |ρ|); categorical: the correlation ratio η.
    pub strength: f64,
    pub p_value: f64,
    /// Numeric only: Pearson's r and its p-value.
    pub pearson: Option<f64>,
    pub pearson_p_value: Option<f64>,
    /// `spearman` or `eta` (one-way ANOVA F test).
    pub method: String,
    pub n: u64,
    /// Benjamini–Hochberg adjusted p-value across the features, and whether it is ≤ alpha.
    pub q_value: f64,
    pub significant: bool,
}

/// Mean of y in one bin of x, with a t interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct BinnedMean {
    pub x_lo: f64,
    pub x_hi: f64,
    pub x_mean: f64,
    pub mean: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    pub n: u64,
}

/// Residual summary of one categorical value (a box plot's numbers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct BoxStats {
    pub value: String,
    pub n: u64,
    pub mean: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    /// Tukey whiskers: the most extreme values within 1.5 IQR of the box.
    pub lower_fence: f64,
    pub upper_fence: f64,
}

/// The residuals against one feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct FeatureResiduals {
    pub feature: String,
    pub kind: String,
    /// Numeric: equal-count bins of the feature with the mean residual ± CI.
    pub bins: Vec<BinnedMean>,
    /// Numeric: a uniform sample of (feature, residual) points for the scatter.
    pub sample_x: Vec<f64>,
    pub sample_y: Vec<f64>,
    /// Categorical: one box per value (at most 50 most frequent).
    pub boxes: Vec<BoxStats>,
}

/// Autocorrelation of the residuals in the run's order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct Autocorrelation {
    /// The column the rows were ordered by (timestamp or id).
    pub order_by: String,
    /// Lags 0..=nlags.
    pub acf: Vec<f64>,
    /// Bartlett's confidence band around each value.
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
    pub durbin_watson: f64,
    pub reading: String,
}

/// Mean residual (bias) of one slice with its interval and a test against zero.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct SliceBias {
    pub spec: String,
    pub key: std::collections::BTreeMap<String, String>,
    pub n: u64,
    pub mean: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    pub p_value: Option<f64>,
    pub q_value: Option<f64>,
    pub significant: bool,
}

/// The residual analysis of one model on one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ResidualsResult {
    pub model: String,
    pub task: String,
    /// `raw` (label − prediction; label − score for binary) or `deviance` (binary only).
    pub kind: String,
    pub n: u64,
    pub mean: f64,
    pub sd: f64,
    /// How many points the scatter charts carry (a uniform sample; the statistics use every row).
    pub sampled: u64,
    /// Residual vs prediction: binned means and a sample.
    pub vs_prediction: FeatureResiduals,
    /// Histogram of the residuals.
    pub hist_edges: Vec<f64>,
    pub hist_counts: Vec<f64>,
    /// Normal Q–Q: theoretical quantiles and ordered residuals (at most 400 evenly spaced points),
    /// with the least-squares line.
    pub qq_theoretical: Vec<f64>,
    pub qq_ordered: Vec<f64>,
    pub qq_slope: f64,
    pub qq_intercept: f64,
    pub qq_r: f64,
    /// Every feature's association with the residuals, strongest first.
    pub features: Vec<FeatureAssociation>,
    /// The residuals against the chosen feature.
    pub feature: Option<FeatureResiduals>,
    pub autocorrelation: Option<Autocorrelation>,
    /// Mean residual per slice of the chosen slicing.
    pub slice_spec: Option<String>,
    pub slices: Vec<SliceBias>,
}

/// The residuals page's data: the analysis plus its charts as Plotly JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResidualsView {
    pub result: ResidualsResult,
    pub models: Vec<String>,
    /// Features offered by the picker.
    pub feature_names: Vec<String>,
    pub chart_vs_prediction: String,
    pub chart_feature: Option<String>,
    pub chart_hist: String,
    pub chart_qq: String,
    pub chart_acf: Option<String>,
    pub chart_slices: Option<String>,
}

/// One model of one run in a fairness view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct FairnessEntry {
    pub run_id: String,
    pub run_name: String,
    /// RFC 3339 upload time (orders runs in the over-time chart).
    pub created_at: String,
    pub model: String,
    pub result: MetricsResult,
}

/// A limit a fairness criterion must meet, and the verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct CriterionCheck {
    /// `demographic_parity`, `disparate_impact` (the four-fifths rule on the selection-rate
    /// ratio), `equal_opportunity`, `equalized_odds`, `predictive_parity`, `accuracy_parity`.
    pub name: String,
    /// `difference <= limit`, or `ratio >= limit` for `disparate_impact`.
    pub limit: f64,
    pub value: Option<f64>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    /// `pass`, `fail`, or `uncertain` (the interval straddles the limit).
    pub verdict: String,
    /// The groups at the extremes.
    pub lowest: String,
    pub highest: String,
}

/// The summary card of one model at one threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct FairnessCard {
    pub entry: usize,
    pub threshold: f64,
    pub groups: usize,
    pub checks: Vec<CriterionCheck>,
}

/// Per-group thresholds that equalise a criterion with the least loss of accuracy (a what-if,
/// computed on this run's own rows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ThresholdSuggestion {
    /// `equal_opportunity` (TPR) or `demographic_parity` (selection rate).
    pub criterion: String,
    pub metric: String,
    /// (group, threshold, the group's metric at it).
    #[cfg_attr(feature = "ssr", schema(value_type = Vec<Vec<Object>>))]
    pub groups: Vec<(String, f64, f64)>,
    /// The gap (max − min) and overall accuracy with the suggested thresholds ...
    pub gap: f64,
    pub accuracy: f64,
    /// ... and with the single threshold the view starts at.
    pub base_threshold: f64,
    pub base_gap: f64,
    pub base_accuracy: f64,
}

/// The fairness page's data (also the compare page's, with several runs or models).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct FairnessView {
    pub entries: Vec<FairnessEntry>,
    /// The sensitive feature(s): a slice spec such as `race` or `sex,race`.
    pub feature: String,
    pub thresholds: Vec<f64>,
    pub metrics: Vec<String>,
    pub baseline: String,
    pub min_size: u64,
    pub cards: Vec<FairnessCard>,
    /// (metric, Plotly JSON) per chosen metric.
    #[cfg_attr(feature = "ssr", schema(value_type = Vec<Vec<String>>))]
    pub charts: Vec<(String, String)>,
    /// Per-group TPR / FPR / selection rate over the whole threshold range (first entry).
    pub tradeoff_chart: Option<String>,
    pub suggestion: Option<ThresholdSuggestion>,
    /// A group's metric across runs, when several runs are compared.
    pub over_time_chart: Option<String>,
    /// Counterfactual flip rates (`flip=1`, single feature, a model attached to the first run).
    pub flip: Option<FlipRates>,
    /// Why flip rates are not available, when asked for and not computed.
    pub flip_note: Option<String>,
    /// Options for the pickers.
    pub models: Vec<String>,
    pub features: Vec<String>,
    pub metric_names: Vec<String>,
    /// Limits in force (from the URL, else stored with the run, else the defaults).
    #[cfg_attr(feature = "ssr", schema(value_type = Vec<Vec<Object>>))]
    pub limits: Vec<(String, f64)>,
    pub limits_stored: bool,
}

/// One feature of the selected example in the what-if editor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct EditableFeature {
    pub name: String,
    /// `numeric` or `categorical`.
    pub kind: String,
    pub original: String,
    /// The value in force: the edit from the URL, else the original.
    pub value: String,
    pub edited: bool,
    /// Categorical: observed values to choose from. Numeric: (min, max) for the slider.
    pub options: Vec<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A model's score for the original and the edited example, with decisions at the threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct WhatIfPrediction {
    pub model: String,
    /// The score stored in the run for this example.
    pub stored: Option<f64>,
    /// The model's score for the original features and for the edited ones.
    pub original: f64,
    pub edited: f64,
    pub decision_original: Option<bool>,
    pub decision_edited: Option<bool>,
}

/// The most similar example on the other side of the threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct Counterfactual {
    pub example: String,
    pub row: u64,
    pub distance: f64,
    pub score: f64,
    /// (feature, this example's value, the counterfactual's value) where they differ.
    #[cfg_attr(feature = "ssr", schema(value_type = Vec<Vec<String>>))]
    pub differences: Vec<(String, String, String)>,
}

/// Partial dependence with ICE curves for one feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct PartialDependence {
    pub model: String,
    pub feature: String,
    pub kind: String,
    /// Grid values (numbers as text for numeric features).
    pub grid: Vec<String>,
    pub mean: Vec<f64>,
    /// One curve per sampled example (at most 60 are returned; `sample` were used for the mean).
    pub ice: Vec<Vec<f64>>,
    pub sample: u64,
    /// The selected example's own curve ("what if only this feature changed").
    pub example: Option<Vec<f64>>,
}

/// The what-if page's data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WhatIfView {
    pub run_name: String,
    pub task: String,
    pub threshold: f64,
    /// Models that can be called (attached ONNX files), by score column.
    pub models: Vec<String>,
    /// Browser: the filtered page of rows.
    pub filter: String,
    pub browser: ExamplesPage,
    /// The id of each browser row (the id column, or the row number).
    pub browser_ids: Vec<String>,
    pub scatter_chart: String,
    pub example: Option<String>,
    pub features: Vec<EditableFeature>,
    pub predictions: Vec<WhatIfPrediction>,
    pub counterfactual: Option<Counterfactual>,
    pub pdp: Option<PartialDependence>,
    pub pdp_chart: Option<String>,
    pub feature_names: Vec<String>,
    /// A random attack (`attack_noise=` given), per slice of `attack_slice`.
    pub attack: Option<AttackResult>,
    /// Edited examples saved with the run.
    pub saved: Vec<SavedWhatIf>,
}

/// Counterfactual flip rates of one group (Fairness Indicators' flip counts): how often the
/// decision changes when only the sensitive attribute is set to another group's value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct FlipGroup {
    pub group: String,
    /// Examples of the group in the sample.
    pub n: u64,
    /// Share whose decision flips for at least one other value.
    pub any_flip: f64,
    /// Positive → negative and negative → positive flips (share of the group, any other value).
    pub to_negative: f64,
    pub to_positive: f64,
    /// Per other value: the share whose decision flips when set to it.
    #[cfg_attr(feature = "ssr", schema(value_type = Vec<Vec<Object>>))]
    pub by_value: Vec<(String, f64)>,
}

/// Flip rates of a model for a sensitive feature at a threshold, on a sample of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct FlipRates {
    pub model: String,
    pub feature: String,
    pub threshold: f64,
    pub sample: u64,
    pub groups: Vec<FlipGroup>,
}

/// Robustness of one slice under random perturbations of the inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct AttackSlice {
    pub slice: String,
    pub n: u64,
    /// Binary: share of decisions that flip. Regression: share whose prediction moves by more
    /// than 10% of the label's standard deviation.
    pub flip_rate: f64,
    /// Binary: accuracy at the threshold before and after; regression: MAE before and after.
    pub before: f64,
    pub after: f64,
    /// Mean absolute change of the score.
    pub mean_abs_change: f64,
}

/// The result of a random attack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct AttackResult {
    pub model: String,
    /// Gaussian noise on numeric features, in units of each feature's standard deviation.
    pub noise: f64,
    /// Probability that a categorical feature is swapped for another observed value.
    pub swap: f64,
    pub threshold: f64,
    pub sample: u64,
    pub seed: u64,
    /// The whole sample first, then one entry per slice of `slice`.
    pub slices: Vec<AttackSlice>,
}

/// An edited example saved with a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct SavedWhatIf {
    pub name: String,
    /// The id of the example it starts from.
    pub example: String,
    /// Feature → edited value.
    pub edits: std::collections::BTreeMap<String, String>,
    /// RFC 3339 UTC.
    pub saved_at: String,
}

/// One feature's shift between a reference run and the current run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct FeatureDrift {
    pub feature: String,
    /// `numeric`, `categorical`, `score` (a model column) or `label`.
    pub kind: String,
    pub n_reference: u64,
    pub n_current: u64,
    /// Population stability index over the bins (shares floored at 1e-4).
    pub psi: f64,
    /// Jensen–Shannon distance (base 2, in [0, 1]) and Hellinger distance over the bins.
    pub js_distance: f64,
    pub hellinger: f64,
    /// `ks` (two-sample Kolmogorov–Smirnov, asymptotic) or `chi2` (contingency, no correction).
    pub test: String,
    pub statistic: f64,
    pub p_value: f64,
    /// Benjamini–Hochberg adjusted over the features of the request.
    pub q_value: f64,
    /// PSI ≥ 0.1 and q ≤ 0.05: a shift that is both practically and statistically real.
    pub drifted: bool,
    /// Bin labels and each run's share per bin (for the overlaid histograms).
    pub bins: Vec<String>,
    pub reference_share: Vec<f64>,
    pub current_share: Vec<f64>,
}

/// Drift of every feature, the scores and the label between two runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct DriftResult {
    pub reference: String,
    pub current: String,
    /// Features ranked by PSI, then the model columns both runs have, then the label.
    pub features: Vec<FeatureDrift>,
    /// Label prior shift (binary): base rates and a two-proportion z-test.
    pub base_rate_reference: Option<f64>,
    pub base_rate_current: Option<f64>,
    pub base_rate_p_value: Option<f64>,
    pub seconds: f64,
}

/// The drift page's data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftView {
    pub result: Option<DriftResult>,
    /// Runs that can serve as the reference: (id, name).
    pub runs: Vec<(String, String)>,
    pub chart: Option<String>,
    pub chart_feature: Option<String>,
    /// Binary runs: the concept-drift detectors over this run's own stream (no reference needed).
    #[serde(default)]
    pub stream: Option<StreamDrift>,
    /// Why there is no stream analysis (e.g. no timestamp or id to order the rows by).
    #[serde(default)]
    pub stream_note: Option<String>,
}

/// A detection in a run's stream: the row position (in time order) and its timestamp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct StreamPoint {
    pub index: u64,
    pub at: String,
}

/// Concept drift within one run: detectors over its examples in time order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct StreamDrift {
    pub model: String,
    pub order_by: String,
    pub threshold: f64,
    pub n: u64,
    /// DDM on the error stream: where a warning zone starts, and drifts.
    pub ddm_warnings: Vec<StreamPoint>,
    pub ddm_drifts: Vec<StreamPoint>,
    /// MD3 on the scores (no labels needed): drifts.
    pub md3_drifts: Vec<StreamPoint>,
    /// ADWIN on the error stream: where the window was cut.
    #[serde(default)]
    pub adwin_drifts: Vec<StreamPoint>,
    /// Linear Four Rates on the decisions: where a warning zone starts, and drifts.
    #[serde(default)]
    pub lfr_warnings: Vec<StreamPoint>,
    #[serde(default)]
    pub lfr_drifts: Vec<StreamPoint>,
    /// Plotly figure JSON: the error rate per block with every detector's points marked.
    #[serde(default)]
    pub chart: String,
    /// Error rate per consecutive block of `block` rows (for a chart).
    pub block: u64,
    pub error_rate: Vec<f64>,
}

/// A project's validation gates: what a run must satisfy to be accepted (TFMA's "blessing").
/// Stored versioned: every save is a new version, and each validation names the version used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct GateSet {
    /// The score column judged; default: the run's first model.
    #[serde(default)]
    pub model: Option<String>,
    /// The baseline of change gates: a run id, or `previous` (the project's newest run before
    /// the candidate, by run time; the default). Change gates are skipped without one.
    #[serde(default)]
    pub baseline: Option<String>,
    /// Threshold for metrics at a threshold when a gate names none.
    #[serde(default = "half")]
    pub threshold: f64,
    /// Confidence level of the intervals (and of `significant_drop`).
    #[serde(default = "ci95")]
    pub ci: f64,
    /// Slices with fewer rows are reported but not judged.
    #[serde(default = "thirty")]
    pub min_size: u64,
    pub gates: Vec<Gate>,
    /// Feature drift against the baseline is checked too and raises a drift alert.
    #[serde(default = "yes")]
    pub drift: bool,
}

fn half() -> f64 {
    0.5
}
fn ci95() -> f64 {
    0.95
}
fn thirty() -> u64 {
    30
}
fn yes() -> bool {
    true
}
fn overall() -> String {
    "overall".into()
}

/// One rule. `slice` is `overall` or a slicing spec (`sex`, `sex,race`, `age:q4`); a rule on a
/// spec is judged on every slice of it. Value bounds (`min`, `max`) apply to the candidate;
/// `max_drop` and `significant_drop` compare each slice with the same slice of the baseline
/// run ("worse" means lower for metrics where higher is better, and higher otherwise);
/// `max_gap_increase` compares the spread (max − min) across the spec's slices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct Gate {
    pub metric: String,
    #[serde(default = "overall")]
    pub slice: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Largest allowed worsening against the baseline, per slice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_drop: Option<f64>,
    /// Fail a slice that is significantly worse than the baseline's: the interval of the
    /// difference (both runs' intervals combined in quadrature) lies wholly on the worse side.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub significant_drop: bool,
    /// Largest allowed growth of the gap (max − min across the spec's slices) against the baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gap_increase: Option<f64>,
}

/// A stored version of a project's gates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct GateSetVersion {
    pub project: String,
    pub version: i64,
    pub created_at: String,
    pub gates: GateSet,
}

/// `pass`, `fail`, or `skipped` (too small, undefined, or nothing to compare with).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Skipped,
}

/// A gate's verdict on one slice (or, for a gap rule, on the spread across slices).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct SliceVerdict {
    /// `overall`, `race=Black`, or `gap across race`.
    pub slice: String,
    pub count: u64,
    pub value: Option<f64>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    /// The baseline run's value of the same slice.
    pub baseline: Option<f64>,
    pub verdict: Verdict,
    /// Why, in words: `0.712 < 0.80`, `dropped 0.091 (allowed 0.02)`.
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct GateOutcome {
    pub gate: Gate,
    /// The rule in words, e.g. `auc_roc ≥ 0.8 on every race slice`.
    pub rule: String,
    pub verdict: Verdict,
    pub slices: Vec<SliceVerdict>,
}

/// A run judged against its project's gates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct Validation {
    pub id: String,
    pub project: String,
    pub run_id: String,
    pub gates_version: i64,
    pub model: String,
    /// The baseline run of change gates, when there was one.
    pub baseline_run: Option<String>,
    pub passed: bool,
    pub created_at: String,
    pub outcomes: Vec<GateOutcome>,
    /// One line per failing slice: `auc_roc on race=Black: 0.712 < 0.8`.
    pub failures: Vec<String>,
    /// Features whose distribution drifted from the baseline's (when drift is checked).
    #[serde(default)]
    pub drifted_features: Vec<String>,
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A gate failure or a drift alarm, recorded on a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct Alert {
    pub id: String,
    pub run_id: Option<String>,
    pub project: Option<String>,
    /// `gate` or `drift`.
    pub kind: String,
    pub summary: String,
    pub created_at: String,
    pub deliveries: Vec<Delivery>,
}

/// One attempt to deliver an alert to the webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct Delivery {
    pub attempt: i64,
    pub url: String,
    /// The HTTP status of the answer; none when there was no answer.
    pub status: Option<i64>,
    pub error: Option<String>,
    pub at: String,
}

/// The `/alerts` page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct AlertsView {
    pub alerts: Vec<Alert>,
    /// The configured webhook URL, if any.
    pub webhook: Option<String>,
}

/// One point of a metric over time: a run (or a period of a run's rows) and a slice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct TimePoint {
    /// RFC 3339 (per run) or the period's first day (per week / day).
    pub time: String,
    pub run_id: String,
    pub version: Option<String>,
    pub slice: String,
    pub count: u64,
    pub value: Option<f64>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
}

/// The `/projects/{p}` page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ProjectView {
    pub project: String,
    /// The project's runs, oldest first.
    pub runs: Vec<RunSummary>,
    /// The newest validation of each run, by run id.
    pub validations: std::collections::BTreeMap<String, ValidationBrief>,
    pub models: Vec<String>,
    pub model: String,
    pub metric: String,
    pub metric_names: Vec<String>,
    pub slice: String,
    pub threshold: f64,
    /// `run`, `week` or `day`.
    pub by: String,
    pub points: Vec<TimePoint>,
    /// Plotly figure JSON.
    pub chart: String,
    pub gates: Option<GateSetVersion>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ValidationBrief {
    pub passed: bool,
    pub gates_version: i64,
    pub failures: usize,
    pub created_at: String,
}

/// A project in the list of projects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ProjectSummary {
    pub project: String,
    pub runs: u64,
    pub latest_run_time: String,
}
