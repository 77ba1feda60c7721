//! The what-if page: edits, predictions, counterfactuals, partial dependence, flips, attacks.

use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use utoipa::ToSchema;

#[allow(unused_imports)]
use super::*;

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
    /// An external run's examples are drawn from a sample of its rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_sample: Option<super::RowSample>,
}

/// The what-if page's data apart from the selected example: the browser, the scatter, the
/// saved examples and the attacks. Choosing an example fetches [`WhatIfExample`] alone, so the
/// browser and the scatter stay as they are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WhatIfView {
    pub run_name: String,
    pub task: String,
    pub threshold: f64,
    /// The score column the page is on: `model=`, else the run's first score column (the same
    /// default as the overview and the slices page).
    pub model: String,
    /// Every score column of the run (the model picker's choices).
    pub score_columns: Vec<String>,
    /// Models that can be called (attached ONNX files, endpoints), by score column.
    pub models: Vec<String>,
    /// Browser: the filtered page of rows.
    pub filter: String,
    pub browser: ExamplesPage,
    /// Why the slice filter selects no row, when a value it names occurs in no row (`no value
    /// 'Femal' in sex; did you mean 'Female'?`).
    #[serde(default)]
    pub slice_hint: Option<String>,
    /// The id of each browser row (the id column, or the row number).
    pub browser_ids: Vec<String>,
    pub scatter_chart: String,
    /// The scatter's x axis: `x=`, else the first numeric feature.
    pub scatter_x: String,
    pub feature_names: Vec<String>,
    /// The feature columns as the filter and attack pickers show them.
    #[serde(default)]
    pub columns: Vec<ColumnBrief>,
    /// A random attack (`attack_noise=` given), per slice of `attack_slice`.
    pub attack: Option<AttackResult>,
    /// An adversarial search (`adv=1`), per slice of `adv_slice`.
    #[serde(default)]
    pub adversarial: Option<AdversarialResult>,
    /// Permutation importance (`importance=<metric>`).
    #[serde(default)]
    pub importance: Option<FeatureImportance>,
    /// Edited examples saved with the run.
    pub saved: Vec<SavedWhatIf>,
}

/// The selected example of the what-if page (`example=`, edited by `set.*`): its features, every
/// callable model's score before and after the edits, the nearest counterfactual.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WhatIfExample {
    pub example: String,
    pub features: Vec<EditableFeature>,
    pub predictions: Vec<WhatIfPrediction>,
    pub counterfactual: Option<Counterfactual>,
    /// SHAP attributions of the (edited) example (`explain=kernel|tree`).
    #[serde(default)]
    pub attributions: Option<Attributions>,
}

/// Partial dependence on the what-if page (`pdp=<feature>`), with the selected example's ICE line
/// when one is selected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WhatIfPdp {
    pub pdp: PartialDependence,
    /// The Plotly figure.
    pub chart: String,
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

/// A model endpoint as the pages list it (secrets never leave the server).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct EndpointBrief {
    pub name: String,
    pub protocol: String,
    /// Scheme, host and port only.
    pub url: String,
    pub model: String,
    /// The request layout in force.
    pub layout: String,
    pub output: Option<String>,
}

/// One row of an endpoint test: the run's stored score and the endpoint's prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct EndpointTestRow {
    /// The row's position in the run (0-based).
    pub row: usize,
    pub stored: Option<f64>,
    pub predicted: f64,
}

/// What "test endpoint" found: the run's first rows predicted through the endpoint and compared
/// with a stored score column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct EndpointTest {
    pub endpoint: String,
    /// Rows sent.
    pub rows: usize,
    /// The score column compared with (the endpoint's own name when the run has it), if any.
    pub compared_with: Option<String>,
    /// Largest and mean |stored − predicted| over the rows.
    pub max_abs_diff: Option<f64>,
    pub mean_abs_diff: Option<f64>,
    /// The row of the largest difference.
    pub worst: Option<EndpointTestRow>,
    /// The first rows, for a look.
    pub first: Vec<EndpointTestRow>,
    /// Whether every prediction equals the stored score within 1e-6.
    pub agrees: Option<bool>,
    /// Why the endpoint could not predict, with the setting to change (then nothing else is set).
    pub error: Option<String>,
    pub millis: u64,
}

/// A model file attached to a run after its upload, and what checking it found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct AttachedModel {
    /// The file's name, under which it is stored (an existing file of that name is replaced).
    pub name: String,
    /// The score column it produces, when bound.
    pub model: Option<String>,
    /// The name it is called by (`predict`, PDP, attacks): the score column, else the file's stem.
    pub called: String,
    /// Its predictions of the run's first rows against the stored score column.
    pub check: EndpointTest,
}

/// One feature's permutation importance: the drop of the score when its values are shuffled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ImportanceRow {
    pub feature: String,
    /// Mean drop over the repeats (higher = the model relies on it more; losses are negated).
    pub mean: f64,
    pub sd: f64,
    /// 95% t interval of the mean drop.
    pub lo: f64,
    pub hi: f64,
    /// The drop of each repeat.
    pub drops: Vec<f64>,
}

/// Permutation feature importance of a model on a sample of a run, overall and per slice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct FeatureImportance {
    pub model: String,
    pub metric: String,
    pub repeats: u64,
    pub sample: u64,
    pub seed: u64,
    /// The sample's score before any permutation (a loss negated).
    pub baseline: f64,
    /// Most important first.
    pub features: Vec<ImportanceRow>,
    /// The same per slice of `slice` (`"sex=Female"` → rows), when asked.
    pub slices: Vec<SliceImportance>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct SliceImportance {
    pub slice: String,
    pub n: u64,
    pub baseline: f64,
    pub features: Vec<ImportanceRow>,
}

/// Adversarial search on one slice: how many examples flip within the radius, how far they sit
/// from a flip, and how a random search of the same budget does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct AdversarialSlice {
    pub slice: String,
    pub n: u64,
    /// Share of the slice's examples whose decision the search flipped within `max_radius`.
    pub flipped: f64,
    /// The same share for random changes with as many model calls per example.
    pub random_flipped: f64,
    /// Robustness radius of the flipped examples (distance of the flip): 10th percentile, median, 90th.
    pub radius_p10: Option<f64>,
    pub radius_median: Option<f64>,
    pub radius_p90: Option<f64>,
    /// Median distance of the random search's flips (farther than the search's when it works).
    pub random_radius_median: Option<f64>,
}

/// One feature changed by an adversarial example.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct AdversarialChange {
    pub feature: String,
    pub from: String,
    pub to: String,
}

/// An example and the smallest flip the search found for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct AdversarialExample {
    /// The example's id (open it in the what-if editor with the changes as edits).
    pub id: String,
    pub before: f64,
    pub after: f64,
    pub radius: f64,
    pub changes: Vec<AdversarialChange>,
}

/// How often the search's flips change a feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct FeatureUse {
    pub feature: String,
    /// Share of the flipped examples whose flip changes this feature.
    pub share: f64,
}

/// The result of an adversarial search (`POST /api/v1/runs/{id}/adversarial`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct AdversarialResult {
    pub model: String,
    pub threshold: f64,
    pub sample: u64,
    pub seed: u64,
    /// Distance: Σ |Δx| / sd over numeric features + 1 per changed categorical feature.
    pub max_radius: f64,
    pub max_steps: u64,
    /// Features the search could not change.
    pub immutable: Vec<String>,
    /// Model calls (rows predicted) per example, mean; the random search got as many.
    pub queries_per_example: f64,
    /// Wall time of the search and of the random baseline.
    pub search_ms: u64,
    pub random_ms: u64,
    /// The whole sample first, then one entry per slice of `slice`.
    pub slices: Vec<AdversarialSlice>,
    /// Most used first.
    pub features: Vec<FeatureUse>,
    /// The flipped examples nearest to a flip (at most 20), smallest radius first.
    pub examples: Vec<AdversarialExample>,
}

/// One feature's share of a prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct AttributionValue {
    pub feature: String,
    /// The example's value (after the what-if edits).
    pub value: String,
    /// Its SHAP value: the features' values sum to `prediction − base`.
    pub attribution: f64,
}

/// SHAP attributions of one example's prediction (`GET /api/v1/runs/{id}/attributions`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct Attributions {
    pub model: String,
    pub example: String,
    /// `kernel` (KernelSHAP through the model) or `tree` (exact TreeSHAP of the ensemble's trees).
    pub method: String,
    /// What is explained: `score` (the model's output) or `margin` (a tree ensemble's raw sum
    /// before its post-transform: log-odds for a logistic one).
    pub output: String,
    /// The mean output over the background rows.
    pub base: f64,
    pub prediction: f64,
    /// Largest |attribution| first.
    pub values: Vec<AttributionValue>,
    /// Every coalition was evaluated (or TreeSHAP): exact Shapley values of the background game.
    pub exact: bool,
    pub coalitions: u64,
    /// Rows the model predicted.
    pub predictions: u64,
    pub background: u64,
    pub samples: u64,
    pub seed: u64,
    pub elapsed_ms: u64,
}

/// One input or output of a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct TensorInfo {
    pub name: String,
    /// `float`, `string`, `int64`, … or `sequence or map` for a ZipMap output.
    pub dtype: String,
    /// Dimensions; `N` (or the file's name for it) for the batch.
    pub shape: Vec<String>,
}

/// What an attached ONNX file is: its inputs and outputs, operators, opsets and exporter, which
/// output Strata reads, and what Strata had to rewrite to run it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ModelCard {
    pub file: String,
    /// The score column it is bound to, if any; the name it is called by.
    pub model: Option<String>,
    pub called: String,
    pub bytes: u64,
    /// `skl2onnx 1.20.0`, …
    pub producer: String,
    /// (domain, version): `ai.onnx` 17, `ai.onnx.ml` 3.
    #[cfg_attr(feature = "ssr", schema(value_type = Vec<Vec<Object>>))]
    pub opsets: Vec<(String, i64)>,
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
    /// Operators and how often each occurs (`ai.onnx.ml.TreeEnsembleClassifier` × 1).
    #[cfg_attr(feature = "ssr", schema(value_type = Vec<Vec<Object>>))]
    pub operators: Vec<(String, u64)>,
    /// `ai.onnx.ml` operators rewritten into standard ones at load time.
    pub rewritten: Vec<String>,
    /// Loads and runs in Strata; else why not.
    pub loads: bool,
    pub error: Option<String>,
    /// The output read as the score, when it loads.
    pub score_output: Option<String>,
    /// Exact TreeSHAP is available (a bare tree ensemble over one `[N, k]` input).
    pub tree_shap: bool,
}
