//! The slices page and `/metrics`: estimates with intervals, per-threshold counts, baseline gaps.

use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use utoipa::ToSchema;

#[allow(unused_imports)]
use super::*;

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
    /// Binary runs whose scores were grouped into buckets (an external run in Spark with many
    /// distinct scores): the least and greatest value `auc_roc` and `auc_pr` can take, whatever
    /// the order of the scores inside a bucket (the value treats them as ties).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub bounds: std::collections::BTreeMap<String, Bounds>,
}

/// The range a metric can take given what was grouped away.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct Bounds {
    pub lower: f64,
    pub upper: f64,
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
    /// How the numbers were made when it is not plain (an external run's approximate buckets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
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
    /// The run's feature columns, for the slice pickers.
    #[serde(default)]
    pub columns: Vec<ColumnBrief>,
    /// The slice specs of the project's gates (the default slicing when the URL names none).
    #[serde(default)]
    pub gate_slices: Vec<String>,
}
