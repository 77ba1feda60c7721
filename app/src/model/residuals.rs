//! The residuals page and `/residuals`.

use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use utoipa::ToSchema;

#[allow(unused_imports)]
use super::*;

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
    /// An external run's analysis reads a sample of its rows (every statistic above is of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_sample: Option<super::RowSample>,
    /// `Some(rows)`: the bias by slice of an external run was computed from all its rows (their
    /// cells, counted where the rows are), not from the sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slices_of_rows: Option<u64>,
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
    /// The run's feature columns, for the slice picker.
    #[serde(default)]
    pub columns: Vec<ColumnBrief>,
}
