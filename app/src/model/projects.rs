//! Projects, gates, validations and alerts.

use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use utoipa::ToSchema;

#[allow(unused_imports)]
use super::*;

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
    /// Judged by slice discovery instead of a fixed slicing: no slice the search finds is worse
    /// than the rest of the rows by more than `max_gap` ("no slice of at least 500 rows has FNR
    /// more than 0.1 above the rest"). `slice` stays `overall`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discover: Option<DiscoverRule>,
}

/// The search behind a discovery gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct DiscoverRule {
    /// Rows a slice needs to be judged.
    pub min_support: u64,
    /// Largest allowed gap (slice worse than the rest by this much fails, when significant).
    pub max_gap: f64,
    /// Features a slice may combine, 1..=3 (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<usize>,
    /// False-discovery rate of "significant" (default 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fdr: Option<f64>,
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
    /// The version of the project's rules applied to the decisions, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_version: Option<i64>,
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
    /// The run's human sign-off as it stands now (not stored with the verdict).
    #[serde(default)]
    pub review: Option<ReviewBrief>,
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
    /// The configured webhook, masked to its scheme, host and port (the path may be a credential).
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
    /// The project's newest rules (model assertions).
    #[serde(default)]
    pub rules: Option<RuleSetVersion>,
    /// The newest run's feature columns, for the slice picker.
    #[serde(default)]
    pub columns: Vec<ColumnBrief>,
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

/// A stored version of a project's rules (model assertions: business rules that override the
/// model's decisions or flag rows), as text in Strata's rule language.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct RuleSetVersion {
    pub project: String,
    pub version: i64,
    pub created_at: String,
    pub source: String,
}

/// What one rule did on a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct RuleImpact {
    /// Its line in the rule text.
    pub line: u64,
    /// The rule, normalised (`age < 18 => decision = 0`).
    pub rule: String,
    /// Rows its condition matched.
    pub touched: u64,
    /// Touched rows an earlier rule had already decided (or flagged alike); of those, decided otherwise.
    pub shadowed: u64,
    pub conflicts: u64,
    /// Rows whose decision this rule changed (touched, not shadowed, and the model had decided otherwise).
    pub changed: u64,
    /// The first touched rows' ids (at most 10).
    pub examples: Vec<String>,
}

/// A run's metrics, fairness criteria and gates without and with a project's rules, side by side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct RulesImpact {
    pub run: String,
    pub model: String,
    pub threshold: f64,
    /// The stored version applied (`None`: unsaved text from the request).
    pub version: Option<i64>,
    pub rows: u64,
    pub rules: Vec<RuleImpact>,
    /// Rows whose decision at the threshold differs with the rules; rows with a flag.
    pub decisions_changed: u64,
    pub flagged: u64,
    /// Rows per flag label.
    #[cfg_attr(feature = "ssr", schema(value_type = Vec<Vec<Object>>))]
    pub flags: Vec<(String, u64)>,
    pub without: MetricsResult,
    pub with: MetricsResult,
    /// The project's gates (values only) judged on both, when the project has gates.
    pub gates_without: Option<Vec<GateOutcome>>,
    pub gates_with: Option<Vec<GateOutcome>>,
}
