//! Slice discovery (`/runs/{id}/discover`): the slices where a model is significantly worse than on
//! the rest of the rows, found by a lattice search and tested with false-discovery-rate control.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use utoipa::ToSchema;

/// A value with its confidence interval (always defined: a slice without a value is not reported).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct Ci {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
}

/// One found slice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct DiscoveredSlice {
    /// Feature → value; a bucketed numeric feature's value is its interval label (`[25, 45)`).
    pub key: BTreeMap<String, String>,
    /// The features in the order the slice was built (the key's order on the page).
    pub features: Vec<String>,
    pub count: u64,
    /// The slice's metric with its interval (Wilson for rates, as the slices view).
    pub metric: Ci,
    /// The metric on every other row.
    pub complement: Ci,
    /// Slice minus complement, oriented so that positive is worse, with its interval.
    pub gap: Ci,
    /// What the slice was ranked by (the gap's lower bound, or SliceLine's score).
    pub score: f64,
    /// One-sided test of "the slice is worse than its complement".
    pub p_value: f64,
    /// Benjamini–Yekutieli adjusted over every examined slice.
    pub q_value: f64,
    /// For a slice of two or three features: the largest p-value of "worse than the rest of its
    /// parent slice" over its parents (a child is shown only when it is worse than each parent).
    pub parent_p: Option<f64>,
    /// `parent_p` adjusted (Benjamini–Yekutieli) over every examined slice that has parents: the
    /// child is shown when this is at most the FDR.
    pub parent_q: Option<f64>,
    /// Index (in `slices`) of the best slice of this slice's overlap group (itself for a leader).
    pub group: usize,
    /// Share of this slice's rows inside its group leader's rows.
    pub overlap: f64,
    /// The rows as a filter (`sex=Female & age in [25, 45)`): what-if's slice filter, a baseline.
    pub filter: String,
    /// The slices view's spec that contains this slice as one of its rows (`sex,age:[25,45]`).
    pub spec: String,
}

/// The answer of `GET /api/v1/runs/{id}/discover`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct DiscoveryResult {
    pub task: super::Task,
    pub model: String,
    pub metric: String,
    /// The decision threshold (metrics at a threshold only).
    pub threshold: Option<f64>,
    /// `gap` (Strata's default) or `sliceline`.
    pub scoring: String,
    pub rows: u64,
    /// Slices tested (count at least `min_support`): the m of the Benjamini–Yekutieli correction.
    pub examined: u64,
    /// Slices tested at each level (1, 2, 3 features).
    pub per_level: Vec<u64>,
    /// Candidates skipped by the upper bound of their score.
    pub pruned: u64,
    /// The search stopped at the candidate limit of a level.
    pub truncated: bool,
    pub overall: Ci,
    pub features: Vec<String>,
    pub min_support: u64,
    pub max_level: usize,
    pub fdr: f64,
    /// Rows of the confirmation half in holdout mode.
    pub holdout_rows: Option<u64>,
    pub seconds: f64,
    /// Best first.
    pub slices: Vec<DiscoveredSlice>,
    /// An external run's search reads a sample of its rows (every count above is of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_sample: Option<super::RowSample>,
}

/// The discovery page: the result plus what its pickers offer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryView {
    pub result: DiscoveryResult,
    pub models: Vec<String>,
    /// Metrics the search supports for this run.
    pub metric_names: Vec<String>,
    /// Every feature column the search may use.
    pub feature_names: Vec<String>,
    pub project: Option<String>,
}

/// A slice a project keeps by name (saved from discovery, or written by hand): its rows as a
/// filter, tracked over the project's runs and usable in its gates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct NamedSlice {
    pub name: String,
    /// `sex=Female & age in [25, 45)`.
    pub filter: String,
    /// The metric it was found with, if it came from discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    pub created_at: String,
}
