//! The fairness page, `/fairness` and `/compare`.

use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use utoipa::ToSchema;

#[allow(unused_imports)]
use super::*;

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
    /// The first run's feature columns, for the group pickers.
    #[serde(default)]
    pub columns: Vec<ColumnBrief>,
}
