//! The drift page, `/drift` and `/stream-drift`.

use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use utoipa::ToSchema;

#[allow(unused_imports)]
use super::*;

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
    /// What was left out and why (a run whose rows stay in its dataset: columns with too many
    /// distinct values to count).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
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
