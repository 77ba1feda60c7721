//! Automatic slice discovery: find the subgroups (conjunctions of up to three feature conditions)
//! on which a model is significantly worse than on the rest of the data.
//!
//! # Outline
//! * **Items** ([`items`]): every categorical code; for an ordered (bucketed numeric) feature every
//!   contiguous bucket range except the one covering all buckets, plus the codes past the buckets
//!   (e.g. "(missing)") singly. A *slice* is a set of items of distinct features.
//! * **Statistics** ([`target`]): each row contributes a small additive vector, so the statistics of
//!   a slice are a sum over its rows and those of its complement are `total − slice`.
//! * **Search** ([`search`], [`pass`]): a level-wise (Apriori) lattice. At each level the candidates
//!   are grouped by feature set and every feature set costs ONE pass over the rows, which
//!   aggregates the statistic vectors per distinct code tuple; a candidate is then the sum over the
//!   tuples inside its (range) items. Feature sets run in parallel.
//! * **Pruning**: a candidate is skipped when an upper bound on the score of any slice inside all
//!   of its parents cannot reach the current k-th best reportable score (see [`target::Bounds`]).
//! * **Significance and reporting** ([`report`]): one-sided z-tests, Benjamini–Yekutieli q-values
//!   over every examined slice, a redundancy test against each parent, overlap grouping, and an
//!   optional holdout confirmation.

pub mod frame;
pub mod sliceline;
mod items;
mod pass;
mod report;
mod search;
mod target;
#[cfg(test)]
mod tests;

use std::fmt;

/// One candidate feature, already encoded by the caller.
#[derive(Clone, Debug)]
pub struct Feature {
    pub name: String,
    /// Per row, a code in 0..labels.len().
    pub codes: Vec<u32>,
    /// Display label of each code (e.g. "Female", "[25, 45)", "(missing)").
    pub labels: Vec<String>,
    /// Numeric features cut into ordered buckets: codes 0..buckets are in increasing order, and every
    /// contiguous range of buckets [lo..=hi] is an item too (so `age in [25, 45)` can be found), except
    /// the range covering all buckets. Codes >= buckets (e.g. the missing-value code) are plain items.
    /// `None` for categoricals: each code is an item.
    pub ordered_buckets: Option<u32>,
}

/// An item: feature index and an inclusive code range (lo == hi for a single code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Item {
    pub feature: u32,
    pub lo: u32,
    pub hi: u32,
}

/// What is measured per row, and which direction is worse.
#[derive(Clone, Debug)]
pub enum Target {
    /// value = Σ num / Σ den over the slice's rows (error rate: num = w·[wrong], den = w; FPR: num = w·[y=0 ∧ ŷ=1],
    /// den = w·[y=0]; FNR; precision num = w·[y=1 ∧ ŷ=1], den = w·[ŷ=1]; accuracy; mean per-row losses such as log
    /// loss, Brier, absolute error, squared error, residual). `sqrt`: report sqrt(value) (RMSE from squared errors).
    Ratio { num: Vec<f64>, den: Vec<f64>, sqrt: bool },
    /// AUC-ROC of the slice (labels 0/1, scores, weights). Not additive.
    Auc { y: Vec<bool>, score: Vec<f64>, w: Vec<f64> },
    /// Expected calibration error with ten equal-width score bins [0,0.1),…,[0.9,1] (bin = min(floor(10p), 9)):
    /// Σ_bins |Σ w·(p − y)| / Σ w. Not additive.
    Calibration { y: Vec<f64>, p: Vec<f64>, w: Vec<f64> },
}

impl Target {
    /// Number of rows the target describes (the length of its first vector).
    pub fn len(&self) -> usize {
        match self {
            Target::Ratio { num, .. } => num.len(),
            Target::Auc { y, .. } => y.len(),
            Target::Calibration { y, .. } => y.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which direction of the metric is worse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Worse {
    Higher,
    Lower,
    /// For signed metrics such as the mean residual: the gap is |slice| − |complement|.
    FartherFromZero,
}

/// How slices are ranked.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Scoring {
    /// Strata's default: rank by the lower confidence bound of the gap (slice vs complement, oriented so positive = worse).
    Gap,
    /// SliceLine's score α·((e_S/|S|)/ē − 1) − (1−α)·(n/|S| − 1), for Ratio targets whose den is the row weight (additive per-row errors) only.
    SliceLine { alpha: f64 },
}

/// Search parameters.
#[derive(Clone, Debug)]
pub struct Params {
    /// Largest number of items in a slice, 1..=3.
    pub max_level: usize,
    /// Rows (unweighted count) a slice needs.
    pub min_support: u64,
    /// Slices reported (at most).
    pub top_k: usize,
    /// Benjamini–Yekutieli level, e.g. 0.05.
    pub fdr: f64,
    /// Confidence level of the intervals, e.g. 0.95.
    pub ci: f64,
    pub scoring: Scoring,
    /// Search on a seeded half of the rows, confirm on the other half.
    pub holdout: bool,
    pub seed: u64,
    /// Bound on slices evaluated per level (bounded work per request); `truncated` reports if hit.
    pub max_candidates: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params { max_level: 3, min_support: 50, top_k: 10, fdr: 0.05, ci: 0.95, scoring: Scoring::Gap, holdout: false, seed: 0, max_candidates: 200_000 }
    }
}

/// A point estimate with its confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Estimate {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Estimate {
    pub(crate) const NAN: Estimate = Estimate { value: f64::NAN, lo: f64::NAN, hi: f64::NAN };
}

/// A reported slice.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Found {
    /// Sorted by feature.
    pub items: Vec<Item>,
    /// Rows in the slice (of the confirm half in holdout mode).
    pub count: u64,
    /// Σ weight of the slice; for Ratio targets Σ den (the row weight for per-row losses).
    pub weight: f64,
    /// The slice's metric with its CI.
    pub metric: Estimate,
    /// The rest of the rows.
    pub complement: Estimate,
    /// Oriented: positive = slice worse; CI of the gap.
    pub gap: Estimate,
    /// What it was ranked by (Gap: the gap's lower bound; SliceLine: its score), on the search rows.
    pub score: f64,
    /// One-sided test that the slice is worse than its complement.
    pub p_value: f64,
    /// Benjamini–Yekutieli adjusted over all `examined` (holdout: over the slices confirmed).
    pub q_value: f64,
    /// Largest one-sided p-value of "worse than the rest of this parent" over its parents (the
    /// (k−1)-subsets, and the slice with one bucket range widened by one bucket); `None` when it has none.
    pub parent_p: Option<f64>,
    /// `parent_p` adjusted by Benjamini–Yekutieli over every examined slice that has parents.
    pub parent_q: Option<f64>,
    /// Overlap group id (index of the group's first, best slice in the output).
    pub group: usize,
    /// Share of its rows inside the group leader's rows (1.0 for the leader).
    pub overlap: f64,
}

/// The result of a search.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Discovery {
    /// Slices evaluated with at least `min_support` rows (and a non-empty complement): the tests.
    pub examined: u64,
    /// `examined` per level.
    pub per_level: Vec<u64>,
    /// Candidates skipped because their score bound could not reach the top.
    pub pruned: u64,
    /// Some level hit `max_candidates`.
    pub truncated: bool,
    /// Metric over all rows (all rows of the data, also in holdout mode).
    pub overall: Estimate,
    pub rows: u64,
    pub slices: Vec<Found>,
    /// Size of the confirm half in holdout mode.
    pub holdout_rows: Option<u64>,
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum DiscoverError {
    /// A parameter is out of range.
    InvalidParams(String),
    /// A feature's or the target's vectors have the wrong length.
    LengthMismatch { what: String, expected: usize, got: usize },
    /// A code is not below the feature's number of labels, or the buckets exceed the labels.
    InvalidCode { feature: String, row: usize, code: u32 },
    /// Non-finite or out-of-range target values.
    InvalidTarget(String),
    /// `Scoring::SliceLine` needs a Ratio target with non-negative per-row errors, worse = Higher.
    SliceLineNeedsAdditive,
}

impl fmt::Display for DiscoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoverError::InvalidParams(s) => write!(f, "invalid parameters: {s}"),
            DiscoverError::LengthMismatch { what, expected, got } => write!(f, "{what} has {got} rows, expected {expected}"),
            DiscoverError::InvalidCode { feature, row, code } => write!(f, "feature {feature}: code {code} at row {row} has no label"),
            DiscoverError::InvalidTarget(s) => write!(f, "invalid target: {s}"),
            DiscoverError::SliceLineNeedsAdditive => {
                write!(f, "SliceLine scoring needs a Ratio target with non-negative per-row errors over row weights, worse = Higher")
            }
        }
    }
}

impl std::error::Error for DiscoverError {}

/// Find the slices on which the model is significantly worse. See the module docs for the method.
pub fn discover(features: &[Feature], target: &Target, worse: Worse, params: &Params) -> Result<Discovery, DiscoverError> {
    discover_tracked(features, target, worse, params, &crate::progress::Progress::new())
}

/// [`discover`] reporting each level's row passes into `progress` (100 steps a level) and
/// stopping early when it is cancelled (the partial answer is then meaningless: thrown away).
pub fn discover_tracked(features: &[Feature], target: &Target, worse: Worse, params: &Params, progress: &crate::progress::Progress) -> Result<Discovery, DiscoverError> {
    validate(features, target, worse, params)?;
    progress.stage("levels");
    report::run(features, target, worse, params, progress)
}

/// Rows of a slice (for linking and tests). Items naming a feature that does not exist select no row.
pub fn members(features: &[Feature], items: &[Item]) -> Vec<bool> {
    let n = features.first().map_or(0, |f| f.codes.len());
    let mut out = vec![true; n];
    for it in items {
        let Some(f) = features.get(it.feature as usize) else {
            return vec![false; n];
        };
        for (m, &c) in out.iter_mut().zip(&f.codes) {
            *m &= it.lo <= c && c <= it.hi;
        }
        // A feature shorter than the first selects nothing past its end.
        for m in out.iter_mut().skip(f.codes.len()) {
            *m = false;
        }
    }
    out
}

/// Reject requests the search cannot answer meaningfully, before any work.
fn validate(features: &[Feature], target: &Target, worse: Worse, p: &Params) -> Result<(), DiscoverError> {
    let bad = |s: &str| Err(DiscoverError::InvalidParams(s.to_string()));
    if !(1..=3).contains(&p.max_level) {
        return bad("max_level must be 1, 2 or 3");
    }
    if !(p.fdr > 0.0 && p.fdr < 1.0) {
        return bad("fdr must be in (0, 1)");
    }
    if !(p.ci > 0.0 && p.ci < 1.0) {
        return bad("ci must be in (0, 1)");
    }
    if let Scoring::SliceLine { alpha } = p.scoring
        && !(alpha > 0.0 && alpha <= 1.0)
    {
        return bad("SliceLine alpha must be in (0, 1]");
    }
    if features.len() >= u32::MAX as usize {
        return bad("too many features");
    }
    let n = target.len();
    for f in features {
        if f.codes.len() != n {
            return Err(DiscoverError::LengthMismatch { what: format!("feature {}", f.name), expected: n, got: f.codes.len() });
        }
        let k = f.labels.len();
        if let Some(b) = f.ordered_buckets
            && b as usize > k
        {
            return Err(DiscoverError::InvalidCode { feature: f.name.clone(), row: 0, code: b });
        }
        if let Some(row) = f.codes.iter().position(|&c| c as usize >= k) {
            return Err(DiscoverError::InvalidCode { feature: f.name.clone(), row, code: f.codes[row] });
        }
    }
    target::validate(target)?;
    if let Scoring::SliceLine { .. } = p.scoring {
        let additive = match target {
            Target::Ratio { num, .. } => worse == Worse::Higher && num.iter().all(|v| *v >= 0.0),
            _ => false,
        };
        if !additive {
            return Err(DiscoverError::SliceLineNeedsAdditive);
        }
    }
    Ok(())
}
