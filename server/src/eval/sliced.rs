//! Metrics per slice, at many thresholds, with confidence intervals and baseline comparisons.
//!
//! Binary metrics come from mergeable sufficient statistics (TFMA's combiners): per slice, the
//! weight of positives and negatives in each "threshold bucket" (how many of the sorted thresholds a
//! score reaches), so one pass over the rows serves every threshold and every slice, and partial
//! results of row chunks merge by addition. AUC-ROC and average precision are exact (tied scores
//! handled as scikit-learn does) from one sort shared by all slices. Intervals: Wilson for rates,
//! a seeded Poisson bootstrap (TFMA's method) for everything; baseline gaps get a bootstrap z-test
//! and Benjamini–Hochberg control across the request's slices.

use std::collections::BTreeMap;

use polars::prelude::*;
use strata_app::metrics::{self as registry, Confusion, Family, Finish, Interval, top_k_name};
use strata_app::model::{AtThreshold, Comparison, Estimate, MetricsResult, SliceResult, Task};

use super::rng::SplitMix;
use super::slicing::{SliceKey, SliceSpec, SpecError, assign};
use super::stats::{normal_quantile, two_sided_p, wilson};
use super::{EvalError, f64_values, weights};

// Which metrics exist, their order, directions, intervals and confusion-matrix finishes: the
// registry `strata_app::metrics`. This file computes their sufficient statistics.

/// What to compute.
#[derive(Clone, Debug)]
pub struct MetricsRequest {
    pub label: String,
    pub model: String,
    /// A multiclass model's per-class score columns, (class, column): they add top-k accuracy
    /// and log loss. Empty for a model that only predicts a class.
    pub class_scores: Vec<(String, String)>,
    pub weight: Option<String>,
    /// Slice spec texts (parsed here); the overall slice is always included.
    pub specs: Vec<String>,
    pub thresholds: Vec<f64>,
    /// Confidence level, e.g. 0.95.
    pub ci: f64,
    /// Bootstrap replicates (0 = none: Wilson intervals only, no p-values).
    pub bootstrap: usize,
    pub seed: u64,
    /// `overall` or a filter spec such as `sex=Female`.
    pub baseline: String,
    pub min_size: u64,
    pub max_slices: usize,
    /// False-discovery rate for flagging gaps.
    pub alpha: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Eval(#[from] EvalError),
}

/// Parses `0.3,0.5,0.7` or a grid `start:stop:step` (inclusive) into sorted unique thresholds.
pub fn parse_thresholds(text: &str) -> Result<Vec<f64>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let nums: Vec<&str> = part.split(':').collect();
        match nums.as_slice() {
            [one] => out.push(one.parse::<f64>().map_err(|_| format!("threshold '{one}' is not a number"))?),
            [a, b, s] => {
                let (a, b, s) = (a.parse::<f64>(), b.parse::<f64>(), s.parse::<f64>());
                let (Ok(a), Ok(b), Ok(s)) = (a, b, s) else { return Err(format!("grid '{part}' is start:stop:step")) };
                if s <= 0.0 || b < a {
                    return Err(format!("grid '{part}' needs start <= stop and step > 0"));
                }
                let n = ((b - a) / s + 1e-9).floor() as usize;
                if n > 1000 {
                    return Err(format!("grid '{part}' has more than 1001 thresholds"));
                }
                out.extend((0..=n).map(|i| ((a + s * i as f64) * 1e9).round() / 1e9));
            }
            _ => return Err(format!("'{part}' is neither a threshold nor a start:stop:step grid")),
        }
    }
    for t in &out {
        if !(0.0..=1.0).contains(t) {
            return Err(format!("threshold {t} is outside [0, 1]"));
        }
    }
    out.sort_by(f64::total_cmp);
    out.dedup();
    if out.len() > 1001 {
        return Err("at most 1001 thresholds".into());
    }
    Ok(out)
}

/// Mergeable statistics of one slice for binary classification.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BinaryStats {
    /// Weight of positives / negatives whose score reaches exactly `k` thresholds.
    pub pos: Vec<f64>,
    pub neg: Vec<f64>,
    pub count: u64,
    pub weight: f64,
    pub weight_sq: f64,
    pub sum_y: f64,
    pub sum_p: f64,
    pub sum_log_loss: f64,
    pub sum_brier: f64,
    /// Ten calibration bins: (weight, Σw·p, Σw·y).
    pub calibration: [(f64, f64, f64); 10],
}

impl BinaryStats {
    pub fn new(thresholds: usize) -> Self {
        BinaryStats { pos: vec![0.0; thresholds + 1], neg: vec![0.0; thresholds + 1], ..Default::default() }
    }

    /// Adds one example that reaches `k` thresholds.
    pub fn add(&mut self, k: usize, y: f64, p: f64, w: f64) {
        self.add_terms(k, y, p, w, 1, row_log_loss(y, p), calibration_bin(p));
    }

    /// Adds `rows` identical examples of total weight `w` whose log loss and calibration bin were
    /// computed once (they do not change between bootstrap replicates, only the weight does).
    #[inline(always)]
    fn add_terms(&mut self, k: usize, y: f64, p: f64, w: f64, rows: u64, log_loss: f64, bin: u8) {
        if y == 1.0 { self.pos[k] += w } else { self.neg[k] += w }
        self.count += rows;
        self.weight += w;
        self.weight_sq += w * w;
        self.sum_y += w * y;
        self.sum_p += w * p;
        self.sum_log_loss += w * log_loss;
        self.sum_brier += w * (p - y) * (p - y);
        let c = &mut self.calibration[bin as usize];
        c.0 += w;
        c.1 += w * p;
        c.2 += w * y;
    }

    /// Adds another accumulator's statistics (the results of another chunk of rows).
    pub fn merge(&mut self, o: &BinaryStats) {
        for (a, b) in self.pos.iter_mut().zip(&o.pos) { *a += b }
        for (a, b) in self.neg.iter_mut().zip(&o.neg) { *a += b }
        self.count += o.count;
        self.weight += o.weight;
        self.weight_sq += o.weight_sq;
        self.sum_y += o.sum_y;
        self.sum_p += o.sum_p;
        self.sum_log_loss += o.sum_log_loss;
        self.sum_brier += o.sum_brier;
        for (a, b) in self.calibration.iter_mut().zip(&o.calibration) {
            a.0 += b.0;
            a.1 += b.1;
            a.2 += b.2;
        }
    }

    /// (tp, fp, tn, fn) at threshold index `j` (scores >= thresholds[j] are positive).
    pub fn confusion(&self, j: usize) -> (f64, f64, f64, f64) {
        let tp: f64 = self.pos[j + 1..].iter().sum();
        let fp: f64 = self.neg[j + 1..].iter().sum();
        let p: f64 = self.pos.iter().sum();
        let n: f64 = self.neg.iter().sum();
        (tp, fp, n - fp, p - tp)
    }

    /// (tp, fp, tn, fn) at every threshold, from running sums (one walk, not one per threshold).
    pub fn confusions(&self) -> Vec<(f64, f64, f64, f64)> {
        let t = self.pos.len() - 1;
        let (p, n): (f64, f64) = (self.pos.iter().sum(), self.neg.iter().sum());
        let mut out = vec![(0.0, 0.0, 0.0, 0.0); t];
        let (mut tp, mut fp) = (0.0, 0.0);
        for j in (0..t).rev() {
            tp += self.pos[j + 1];
            fp += self.neg[j + 1];
            out[j] = (tp, fp, n - fp, p - tp);
        }
        out
    }

    pub fn scalar_metrics(&self) -> BTreeMap<&'static str, Option<f64>> {
        let r = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        let ece = (self.weight > 0.0).then(|| self.calibration.iter().map(|(_, sp, sy)| (sp - sy).abs()).sum::<f64>() / self.weight);
        BTreeMap::from([
            ("log_loss", r(self.sum_log_loss, self.weight)),
            ("brier_score", r(self.sum_brier, self.weight)),
            ("mean_score", r(self.sum_p, self.weight)),
            ("base_rate", r(self.sum_y, self.weight)),
            ("expected_calibration_error", ece),
        ])
    }
}

/// A binary row's log loss before weighting (kept per cell: a logarithm costs more than the
/// 8 bytes; the Brier term is recomputed, it is one multiplication). As scikit-learn computes it:
/// the probability of the true class, `p` or `1 - p`, clipped to [ε, 1 − ε] (ε the float64
/// machine epsilon), so a score of exactly 0 or 1 costs −ln ε ≈ 36.04 when wrong.
fn row_log_loss(y: f64, p: f64) -> f64 {
    clipped_neg_ln(if y == 1.0 { p } else { 1.0 - p })
}

/// −ln of a probability clipped to [ε, 1 − ε], ε = `f64::EPSILON` (scikit-learn's `log_loss`).
pub(crate) fn clipped_neg_ln(p: f64) -> f64 {
    -p.clamp(f64::EPSILON, 1.0 - f64::EPSILON).ln()
}

/// The calibration bin (of ten) of a score.
#[inline]
fn calibration_bin(p: f64) -> u8 {
    ((p * 10.0) as usize).min(9) as u8
}

/// Slice ids of the cells in one spec, `u32::MAX` for a cell in none of the spec's slices (a
/// filter's non-matching rows): 4 bytes a cell where `Option<u32>` takes 8.
#[derive(Clone, Debug, Default)]
struct SliceIds(Vec<u32>);

impl SliceIds {
    const NONE: u32 = u32::MAX;

    fn with_capacity(n: usize) -> Self {
        SliceIds(Vec::with_capacity(n))
    }

    #[inline]
    fn get(&self, i: usize) -> Option<u32> {
        let s = self.0[i];
        if s == Self::NONE { None } else { Some(s) }
    }

    fn push(&mut self, s: Option<u32>) {
        self.0.push(s.unwrap_or(Self::NONE));
    }

    /// Every cell is in one of the spec's slices.
    fn covers_all(&self) -> bool {
        !self.0.contains(&Self::NONE)
    }

    fn iter(&self) -> impl Iterator<Item = Option<u32>> + '_ {
        self.0.iter().map(|s| (*s != Self::NONE).then_some(*s))
    }
}

/// The confusion-matrix metrics by name, as scikit-learn defines them (undefined = `None`).
pub fn confusion_metrics(tp: f64, fp: f64, tn: f64, fn_: f64) -> BTreeMap<&'static str, Option<f64>> {
    let c = Confusion { tp, fp, tn, fn_ };
    registry::confusion_metrics().map(|m| m.name).zip(registry::confusion_values(&c)).collect()
}

/// The trials (denominator) of a rate at a threshold, for its Wilson interval; `None` for a
/// metric that is not a rate.
fn rate_trials(name: &str, c: &Confusion) -> Option<f64> {
    match registry::find(Family::AtThreshold, name)?.finish {
        Finish::Confusion { trials: Some(trials), .. } => Some(trials(c)),
        _ => None,
    }
}


/// Per slice: the binary statistics plus the exact ranking metrics.
#[derive(Clone, Debug)]
struct SlicePass {
    stats: BinaryStats,
    auc: Option<f64>,
    ap: Option<f64>,
}

/// A request's rows reduced to what the metrics need, built once per (run, model, slicing) and
/// cached between requests: moving the threshold slider or changing the confidence level reuses it.
///
/// Rows with the same score, label, weight and slice in every spec are exchangeable, so they
/// become one *cell* with a multiplicity `m`. A Poisson(1) bootstrap weight per row sums, over the
/// m rows of a cell, to one Poisson(m) draw, so resampling cells is exactly the per-row Poisson
/// bootstrap, at a fraction of the cost when rows repeat (tree-model scores, resampled data) and at
/// the same cost when they do not. Cells are sorted by score, descending, so every pass (threshold
/// counts, exact AUC and average precision with ties closed together) is one sequential walk.
pub struct Prepared {
    task: Task,
    /// Spec texts: overall first, the request's, then the baseline filter (if not overall).
    texts: Vec<String>,
    keys: Vec<Vec<SliceKey>>,
    base_index: usize,
    baseline_is_overall: bool,
    classes: Vec<String>,
    y: Vec<f64>,
    p: Vec<f64>,
    w: Vec<f64>,
    mult: Vec<u32>,
    /// Per spec, per cell: the cell's slice.
    slice_of_cell: Vec<SliceIds>,
    /// Binary: each cell's log loss (unweighted) and calibration bin.
    log_loss: Vec<f64>,
    bins: Vec<u8>,
    /// Multiclass with per-class scores: per cell, the true class's log loss and rank.
    class_terms: Vec<ClassTerms>,
    /// Per spec, per slice: (rows, Σw, Σw²).
    counts: Vec<Vec<(u64, f64, f64)>>,
    rows: usize,
    /// The last binned cells built for the bootstrap, with the thresholds and budget they were
    /// built for (a repeated request, e.g. a new confidence level, reuses them).
    binned_cache: std::sync::Mutex<Option<BinnedCells>>,
}

/// Binned cells (see [`Prepared::binned`]) and what they were built for.
struct BinnedCells {
    thresholds: Vec<u64>,
    budget: usize,
    cells: std::sync::Arc<(Prepared, Vec<u16>)>,
}

impl Prepared {
    /// Rows of the run.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Distinct (score, label, weight, slices) cells.
    pub fn cells(&self) -> usize {
        self.y.len()
    }

    /// Approximate heap size, for the cache's byte budget.
    pub fn bytes(&self) -> usize {
        let per_cell = 3 * 8 + 4 + if self.log_loss.is_empty() { 0 } else { 9 } + if self.class_terms.is_empty() { 0 } else { 16 } + self.slice_of_cell.len() * 4;
        let keys: usize = self.keys.iter().flatten().flatten().map(|(a, b)| a.len() + b.len() + 48).sum();
        // Plus binned cells for the bootstrap (at most about the budget, when built).
        let binned = if self.task == Task::Binary && self.cells() > BOOTSTRAP_CELL_BUDGET { 2 * BOOTSTRAP_CELL_BUDGET * (per_cell + 2) } else { 0 };
        self.cells() * per_cell + keys + binned + 1024
    }
}

/// Most cells a binary request's bootstrap replicates walk over; beyond it they walk binned cells
/// (see [`Prepared::binned`]).
pub const BOOTSTRAP_CELL_BUDGET: usize = 1 << 15;

impl Prepared {
    /// Cells for the bootstrap of a binary request when there are more than `budget`: the cells
    /// grouped by (slice in every spec, label, threshold interval, calibration bin, score bin),
    /// the score bins being equal-count quantiles of the run's scores, as many as keep the groups
    /// near `budget` (at least 256, at most 10,000; TFMA bins scores into 10,000 buckets for AUC).
    /// A group of m rows of total weight W becomes one cell of multiplicity m, weight W/m, the
    /// mean score and the mean loss terms.
    ///
    /// What stays exact: every confusion count at the requested thresholds (a group never straddles
    /// one) and the base rate, so their replicates have exactly the per-row Poisson bootstrap's
    /// distribution when the rows are unweighted (with weights, a group's rows are taken to weigh
    /// the same, W/m). Sums of per-row terms (log loss, Brier score, mean score, calibration) keep
    /// their point value but lose the spread within a group, which is small in a narrow score bin
    /// of one label. AUC and average precision order rows of one score bin by their groups' mean
    /// scores, so their replicates are shifted by (exact value − binned value) in
    /// `compute_prepared`. Returns `None` when the exact cells fit the budget; else the binned
    /// cells and each one's threshold index (kept, not recomputed from the mean score, which
    /// rounding could move across a threshold that a group's scores sit on).
    fn binned(&self, thresholds: &[f64], budget: usize) -> Option<(Prepared, Vec<u16>)> {
        if self.task != Task::Binary || self.cells() <= budget {
            return None;
        }
        let n = self.cells();
        let specs = self.slice_of_cell.len();
        // A cell's slice in every spec as one number (mixed radix, checked above to fit in 128
        // bits), with the label in the lowest digit.
        let radix = self.keys.iter().try_fold(2u128, |acc, k| acc.checked_mul(k.len() as u128 + 1));
        if radix.is_none() {
            return None; // too many slicings to number in 128 bits: keep the exact cells
        }
        let tuple = |i: usize| -> u128 {
            let mut t: u128 = 0;
            for (sc, keys) in self.slice_of_cell.iter().zip(&self.keys) {
                t = t * (keys.len() as u128 + 1) + sc.get(i).map_or(0, |s| s as u128 + 1);
            }
            t * 2 + u128::from(self.y[i] == 1.0)
        };
        let tuples: Vec<u128> = (0..n).map(tuple).collect();
        // Distinct (slices, label) combinations set the number of score bins (counted on an
        // evenly spaced sample: it only sizes the bins).
        let mut combos: Vec<u128> = tuples.iter().step_by((n / 65_536).max(1)).copied().collect();
        combos.sort_unstable();
        combos.dedup();
        let bins = (budget / combos.len().max(1)).clamp(256, 10_000) as u64;
        let total: u64 = self.mult.iter().map(|m| *m as u64).sum();
        #[derive(Default)]
        struct Group { m: u64, w: f64, wp: f64, wll: f64, y: f64, k: u16, bin: u8, slices: Vec<Option<u32>> }
        let mut groups: Vec<Group> = Vec::new();
        let mut open: std::collections::HashMap<(u128, u16, u8), usize, super::FastHashBuilder> = Default::default();
        let (mut seen, mut current_bin) = (0u64, u64::MAX);
        for i in 0..n {
            let score_bin = (seen * bins / total.max(1)).min(bins - 1);
            seen += self.mult[i] as u64;
            if score_bin != current_bin {
                open.clear();
                current_bin = score_bin;
            }
            let k = thresholds.partition_point(|t| *t <= self.p[i]) as u16;
            let key = (tuples[i], k, self.bins[i]);
            let g = *open.entry(key).or_insert_with(|| {
                groups.push(Group { y: self.y[i], k, bin: self.bins[i], slices: (0..specs).map(|a| self.slice_of_cell[a].get(i)).collect(), ..Default::default() });
                groups.len() - 1
            });
            let (m, w) = (self.mult[i] as u64, self.w[i] * self.mult[i] as f64);
            let g = &mut groups[g];
            g.m += m;
            g.w += w;
            g.wp += w * self.p[i];
            g.wll += w * self.log_loss[i];
        }
        // Back into score order (descending), as every pass expects.
        let mean_p = |g: &Group| if g.w > 0.0 { g.wp / g.w } else { 0.0 };
        groups.sort_by(|a, b| mean_p(b).total_cmp(&mean_p(a)));
        let mut out = Prepared {
            task: self.task,
            texts: self.texts.clone(),
            keys: self.keys.clone(),
            base_index: self.base_index,
            baseline_is_overall: self.baseline_is_overall,
            classes: vec![],
            y: Vec::with_capacity(groups.len()),
            p: Vec::with_capacity(groups.len()),
            w: Vec::with_capacity(groups.len()),
            mult: Vec::with_capacity(groups.len()),
            slice_of_cell: vec![SliceIds::with_capacity(groups.len()); specs],
            log_loss: Vec::with_capacity(groups.len()),
            bins: Vec::with_capacity(groups.len()),
            class_terms: vec![],
            counts: self.counts.clone(),
            rows: self.rows,
            binned_cache: Default::default(),
        };
        for g in &groups {
            let safe = |x: f64| if g.w > 0.0 { x / g.w } else { 0.0 };
            out.y.push(g.y);
            out.p.push(mean_p(g));
            out.w.push(g.w / g.m.max(1) as f64);
            out.mult.push(g.m.min(u32::MAX as u64) as u32);
            for (a, s) in g.slices.iter().enumerate() {
                out.slice_of_cell[a].push(*s);
            }
            out.log_loss.push(safe(g.wll));
            out.bins.push(g.bin);
        }
        Some((out, groups.iter().map(|g| g.k).collect()))
    }
}

impl Prepared {
    /// [`Prepared::binned`], reusing the last result when the thresholds and budget are the same.
    fn binned_cached(&self, thresholds: &[f64], budget: usize) -> Option<std::sync::Arc<(Prepared, Vec<u16>)>> {
        let bits: Vec<u64> = thresholds.iter().map(|t| t.to_bits()).collect();
        let mut cache = self.binned_cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.as_ref().filter(|c| c.thresholds == bits && c.budget == budget) {
            return Some(c.cells.clone());
        }
        let cells = std::sync::Arc::new(self.binned(thresholds, budget)?);
        *cache = Some(BinnedCells { thresholds: bits, budget, cells: cells.clone() });
        Some(cells)
    }
}

impl MetricsRequest {
    /// The fields `prepare` reads: requests with equal keys (on the same run) share a `Prepared`.
    pub fn prepare_key(&self) -> String {
        format!("{}\u{1f}{}\u{1f}{:?}\u{1f}{:?}\u{1f}{}\u{1f}{}\u{1f}{}", self.label, self.model, self.class_scores, self.weight, self.specs.join("\u{1e}"), self.baseline, self.max_slices)
    }
}

/// Slices the run and compresses its rows into sorted cells (see [`Prepared`]).
pub fn prepare(df: &DataFrame, req: &MetricsRequest, task: Task) -> Result<Prepared, RequestError> {
    let mut texts: Vec<String> = vec!["overall".into()];
    texts.extend(req.specs.iter().filter(|s| s.trim() != "overall").cloned());
    let baseline_is_overall = req.baseline.trim().is_empty() || req.baseline == "overall";
    let base_spec = SliceSpec::parse(&req.baseline)?;
    if !baseline_is_overall && !matches!(base_spec, SliceSpec::Filter { .. }) {
        return Err(RequestError::Invalid(format!("baseline '{}' must be 'overall' or a filter such as sex=Female", req.baseline)));
    }
    let mut assignments = Vec::with_capacity(texts.len() + 1);
    for t in &texts {
        assignments.push(assign(df, t, &SliceSpec::parse(t)?, req.max_slices)?);
    }
    let base_index = if baseline_is_overall {
        0
    } else {
        assignments.push(assign(df, &req.baseline, &base_spec, req.max_slices)?);
        texts.push(req.baseline.clone());
        assignments.len() - 1
    };
    let total_slices: usize = assignments.iter().map(|a| a.keys.len()).sum();
    if total_slices > req.max_slices {
        return Err(RequestError::Invalid(format!("the request makes {total_slices} slices, more than the limit of {}", req.max_slices)));
    }
    // Multiclass: labels and predicted classes become class codes (as f64) over the classes of
    // the whole run, so every slice reports the same keys.
    let (y, p, classes) = if task == Task::Multiclass {
        class_codes(df, &req.label, &req.model, &req.class_scores)?
    } else {
        (f64_values(df, &req.label)?, f64_values(df, &req.model)?, vec![])
    };
    if classes.len() > 100 {
        return Err(RequestError::Invalid(format!("{} classes: multiclass metrics support at most 100", classes.len())));
    }
    let w = weights(df, req.weight.as_deref())?;
    let n = y.len();
    let row_class_terms = if task == Task::Multiclass && !req.class_scores.is_empty() { class_terms(df, &req.class_scores, &classes, &y)? } else { vec![] };

    // One number per row for its slices in every spec (mixed radix; densified if it would overflow).
    let mut tuple = vec![0u64; n];
    let mut space: u64 = 1;
    for a in &assignments {
        if a.keys.len() == 1 && a.slice_of_row.iter().all(Option::is_some) {
            continue; // every row in the one slice: nothing to tell rows apart
        }
        let r = a.keys.len() as u64 + 1;
        if space.checked_mul(r).is_none() {
            let mut dense: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
            for t in tuple.iter_mut() {
                let next = dense.len() as u64;
                *t = *dense.entry(*t).or_insert(next);
            }
            space = dense.len() as u64;
        }
        for (t, s) in tuple.iter_mut().zip(&a.slice_of_row) {
            *t = *t * r + s.map_or(0, |s| s as u64 + 1);
        }
        space *= r;
    }
    // Cells: rows in chunks (in parallel), each chunk's cells sorted, then the chunks' cells merged.
    let cells = {
        let rows = RowData { y: &y, p: &p, w: &w, tuple: &tuple, class_terms: &row_class_terms, slices: assignments.iter().map(|a| a.slice_of_row.as_slice()).collect() };
        if n <= PREPARE_BLOCK_ROWS {
            // One block: no need to copy the rows out.
            chunk_cells(&rows, 0..n)
        } else {
            let blocks = partition_rows(&rows, PREPARE_BLOCK_ROWS);
            // The per-row arrays are done with (the blocks hold copies): free them.
            drop(rows);
            drop((y, p, w, tuple, row_class_terms));
            for a in assignments.iter_mut() {
                a.slice_of_row = Vec::new();
            }
            cells_of_blocks(blocks, assignments.len())
        }
    };
    let Cells { y: cy, p: cp, w: cw, mult, slices: slice_of_cell, class_terms: cell_class_terms, .. } = cells;
    let counts = slice_of_cell
        .iter()
        .zip(&assignments)
        .map(|(sc, a)| {
            let mut c = vec![(0u64, 0.0, 0.0); a.keys.len()];
            for (i, s) in sc.iter().enumerate() {
                if let Some(s) = s {
                    let (m, wi) = (mult[i] as f64, cw[i]);
                    let e = &mut c[s as usize];
                    e.0 += mult[i] as u64;
                    e.1 += wi * m;
                    e.2 += wi * wi * m;
                }
            }
            c
        })
        .collect();
    let log_loss = if task == Task::Binary { cy.iter().zip(&cp).map(|(y, p)| row_log_loss(*y, *p)).collect() } else { vec![] };
    let bins = if task == Task::Binary { cp.iter().map(|p| calibration_bin(*p)).collect() } else { vec![] };
    Ok(Prepared {
        task,
        texts,
        keys: assignments.into_iter().map(|a| a.keys).collect(),
        base_index,
        baseline_is_overall,
        classes,
        y: cy,
        p: cp,
        w: cw,
        mult,
        slice_of_cell,
        log_loss,
        bins,
        class_terms: cell_class_terms,
        counts,
        rows: n,
        binned_cache: Default::default(),
    })
}

/// Rows per block of `prepare` (see [`partition_rows`]): a block's arrays stay in the caches while
/// its rows are sorted and compressed; blocks run in parallel.
const PREPARE_BLOCK_ROWS: usize = 1 << 18;

/// The per-row inputs of the cells.
struct RowData<'a> {
    y: &'a [f64],
    p: &'a [f64],
    w: &'a [f64],
    /// The row's slice in every spec as one number.
    tuple: &'a [u64],
    /// Multiclass with per-class scores, else empty.
    class_terms: &'a [ClassTerms],
    /// Per spec, each row's slice.
    slices: Vec<&'a [Option<u32>]>,
}

/// Cells in canonical order: score descending, then (slices, label, weight, class terms)
/// ascending; equal rows are one cell with their count.
#[derive(Default)]
struct Cells {
    y: Vec<f64>,
    p: Vec<f64>,
    w: Vec<f64>,
    mult: Vec<u32>,
    tuple: Vec<u64>,
    slices: Vec<SliceIds>,
    class_terms: Vec<ClassTerms>,
}

impl Cells {
    fn new(specs: usize) -> Self {
        Cells { slices: vec![SliceIds::default(); specs], ..Default::default() }
    }

    /// Room for `n` cells (growing by doubling would leave up to half of each array unused).
    fn with_capacity(specs: usize, n: usize, class_terms: bool) -> Self {
        Cells {
            y: Vec::with_capacity(n),
            p: Vec::with_capacity(n),
            w: Vec::with_capacity(n),
            mult: Vec::with_capacity(n),
            tuple: Vec::with_capacity(n),
            slices: vec![SliceIds::with_capacity(n); specs],
            class_terms: Vec::with_capacity(if class_terms { n } else { 0 }),
        }
    }

    fn shrink_to_fit(&mut self) {
        self.y.shrink_to_fit();
        self.p.shrink_to_fit();
        self.w.shrink_to_fit();
        self.mult.shrink_to_fit();
        self.tuple.shrink_to_fit();
        for s in &mut self.slices {
            s.0.shrink_to_fit();
        }
        self.class_terms.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.y.len()
    }

}

/// The cells of all rows (the result does not depend on `block` or on the threads).
#[cfg(test)]
fn build_cells(rows: &RowData, block: usize) -> Cells {
    cells_of_blocks(partition_rows(rows, block), rows.slices.len())
}

/// Rows of one score range, copied out of the run's arrays so that sorting and compressing them
/// touches only memory of their own (at 10M rows the run's arrays are far larger than the caches,
/// and visiting their rows in score order would miss the cache on every row).
struct RowBlock {
    y: Vec<f64>,
    p: Vec<f64>,
    w: Vec<f64>,
    tuple: Vec<u64>,
    class_terms: Vec<ClassTerms>,
    slices: Vec<Vec<Option<u32>>>,
}

impl RowBlock {
    fn with_capacity(n: usize, specs: usize, class_terms: bool) -> Self {
        RowBlock {
            y: Vec::with_capacity(n),
            p: Vec::with_capacity(n),
            w: Vec::with_capacity(n),
            tuple: Vec::with_capacity(n),
            class_terms: Vec::with_capacity(if class_terms { n } else { 0 }),
            slices: vec![Vec::with_capacity(n); specs],
        }
    }

    fn rows(&self) -> RowData<'_> {
        RowData { y: &self.y, p: &self.p, w: &self.w, tuple: &self.tuple, class_terms: &self.class_terms, slices: self.slices.iter().map(Vec::as_slice).collect() }
    }
}

/// Splits the rows into blocks of consecutive score ranges, highest scores first, of about
/// `target` rows each (by the top 20 bits of the sort key: one pass to count, one to copy; equal
/// scores always share a block, and a block holds more than `target` rows only when one score
/// range does).
fn partition_rows(rows: &RowData, target: usize) -> Vec<RowBlock> {
    const BITS: u32 = 20;
    let n = rows.y.len();
    let prefix = |i: usize| (descending_key(rows.p[i]) >> (64 - BITS)) as usize;
    let mut hist = vec![0u32; 1 << BITS];
    for i in 0..n {
        hist[prefix(i)] += 1;
    }
    let mut block_of = vec![0u32; 1 << BITS];
    let mut sizes = vec![0usize];
    for (pfx, &c) in hist.iter().enumerate() {
        let last = sizes.len() - 1;
        if sizes[last] > 0 && sizes[last] + c as usize > target {
            sizes.push(0);
        }
        let last = sizes.len() - 1;
        block_of[pfx] = last as u32;
        sizes[last] += c as usize;
    }
    let specs = rows.slices.len();
    let mut blocks: Vec<RowBlock> = sizes.iter().map(|&s| RowBlock::with_capacity(s, specs, !rows.class_terms.is_empty())).collect();
    let block: Vec<u32> = (0..n).map(|i| block_of[prefix(i)]).collect();
    // One array at a time, so each pass writes to one stream per block (a pass writing every array
    // at once would keep more streams open than the write buffers hold).
    fn scatter<T: Copy>(block: &[u32], from: &[T], blocks: &mut [RowBlock], to: impl Fn(&mut RowBlock) -> &mut Vec<T>) {
        for (b, v) in block.iter().zip(from) {
            to(&mut blocks[*b as usize]).push(*v);
        }
    }
    scatter(&block, rows.y, &mut blocks, |b| &mut b.y);
    scatter(&block, rows.p, &mut blocks, |b| &mut b.p);
    scatter(&block, rows.w, &mut blocks, |b| &mut b.w);
    scatter(&block, rows.tuple, &mut blocks, |b| &mut b.tuple);
    scatter(&block, rows.class_terms, &mut blocks, |b| &mut b.class_terms);
    for (a, from) in rows.slices.iter().enumerate() {
        scatter(&block, from, &mut blocks, |b| &mut b.slices[a]);
    }
    blocks
}

/// The cells of all blocks: each block compressed on its own (in parallel), the results simply
/// concatenated, since blocks are disjoint score ranges in score order.
fn cells_of_blocks(blocks: Vec<RowBlock>, specs: usize) -> Cells {
    let threads = std::thread::available_parallelism().map(|t| t.get()).unwrap_or(1).clamp(1, 8).min(blocks.len().max(1));
    // Threads take the next block as they finish one (blocks differ in size); each block is freed
    // as soon as its cells are made.
    let queue: Vec<std::sync::Mutex<Option<RowBlock>>> = blocks.into_iter().map(|b| std::sync::Mutex::new(Some(b))).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut parts: Vec<(usize, Cells)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (queue, next) = (&queue, &next);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(slot) = queue.get(i) else { break };
                        let Some(b) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() else { continue };
                        mine.push((i, chunk_cells(&b.rows(), 0..b.y.len())));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    parts.sort_by_key(|(i, _)| *i);
    if parts.len() == 1 {
        return parts.pop().map(|(_, c)| c).unwrap_or_else(|| Cells::new(specs));
    }
    let total = parts.iter().map(|(_, c)| c.len()).sum();
    let mut out = Cells::with_capacity(specs, total, parts.iter().any(|(_, c)| !c.class_terms.is_empty()));
    for (_, c) in parts {
        out.append(c);
    }
    out
}

impl Cells {
    /// A cell's place in the canonical order as integers: (score descending, slices, label,
    /// weight, class-term rank, log loss), floats mapped so that integer order is `total_cmp`'s.
    #[cfg(test)]
    fn key(&self, i: usize) -> (u64, u64, u64, u64, u16, u64) {
        let ascending = |x: f64| !descending_key(x);
        let ct = self.class_terms.get(i).copied().unwrap_or_default();
        (descending_key(self.p[i]), self.tuple[i], ascending(self.y[i]), ascending(self.w[i]), ct.rank, ascending(ct.log_loss))
    }

    fn append(&mut self, o: Cells) {
        let Cells { y, p, w, mult, tuple, slices, class_terms } = o;
        self.y.extend(y);
        self.p.extend(p);
        self.w.extend(w);
        self.mult.extend(mult);
        self.tuple.extend(tuple);
        for (to, from) in self.slices.iter_mut().zip(slices) {
            to.0.extend(from.0);
        }
        self.class_terms.extend(class_terms);
    }
}

/// The cells of rows `range`: sorted by score (a radix sort: linear in the rows); each run of
/// equal scores becomes cells ordered by (slices, label, weight, class terms): short runs by
/// sorting their rows, long ones (repeated scores) by counting equal rows in a hash map and
/// sorting only the distinct ones, so the work stays linear in the rows.
fn chunk_cells(rows: &RowData, range: std::ops::Range<usize>) -> Cells {
    let RowData { y, p, w, tuple, class_terms, slices } = rows;
    let ct = |r: usize| class_terms.get(r).copied().unwrap_or_default();
    let base = range.start;
    let (keys, mut order) = radix_sort(p[range.clone()].iter().map(|x| descending_key(*x)).collect());
    for o in order.iter_mut() {
        *o += base as u32;
    }
    let cmp = |a: usize, b: usize| {
        tuple[a].cmp(&tuple[b]).then(y[a].total_cmp(&y[b])).then(w[a].total_cmp(&w[b])).then(ct(a).rank.cmp(&ct(b).rank)).then(ct(a).log_loss.total_cmp(&ct(b).log_loss))
    };
    let same = |a: usize, b: usize| tuple[a] == tuple[b] && y[a].to_bits() == y[b].to_bits() && w[a].to_bits() == w[b].to_bits() && ct(a).same(&ct(b));
    let row_key = |r: usize| (tuple[r], y[r].to_bits(), w[r].to_bits(), ct(r).rank, ct(r).log_loss.to_bits());
    // Grown as cells come (repeated scores make few) and shrunk at the end.
    let mut out = Cells::new(slices.len());
    let mut emit = |r: usize, m: u32| {
        out.y.push(y[r]);
        out.p.push(p[r]);
        out.w.push(w[r]);
        out.mult.push(m);
        out.tuple.push(tuple[r]);
        for (sc, s) in out.slices.iter_mut().zip(slices) {
            sc.push(s[r]);
        }
        if !class_terms.is_empty() {
            out.class_terms.push(class_terms[r]);
        }
    };
    let mut groups: std::collections::HashMap<(u64, u64, u64, u16, u64), (usize, u32), super::FastHashBuilder> = Default::default();
    let mut distinct: Vec<(usize, u32)> = Vec::new();
    let n = order.len();
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && keys[end] == keys[start] {
            end += 1;
        }
        let run = &mut order[start..end];
        if run.len() <= 32 {
            run.sort_unstable_by(|a, b| cmp(*a as usize, *b as usize));
            let mut i = 0;
            while i < run.len() {
                let r = run[i] as usize;
                let mut j = i + 1;
                while j < run.len() && same(r, run[j] as usize) {
                    j += 1;
                }
                emit(r, (j - i) as u32);
                i = j;
            }
        } else {
            groups.clear();
            for &r in run.iter() {
                groups.entry(row_key(r as usize)).or_insert((r as usize, 0)).1 += 1;
            }
            distinct.clear();
            distinct.extend(groups.values().copied());
            distinct.sort_unstable_by(|a, b| cmp(a.0, b.0));
            for &(r, m) in &distinct {
                emit(r, m);
            }
        }
        start = end;
    }
    out.shrink_to_fit();
    out
}

/// For scores in descending order (as cells are), how many thresholds each reaches
/// (`thresholds.partition_point(|t| t <= score)`), in one merge walk instead of a search each.
fn threshold_counts(scores: &[f64], thresholds: &[f64]) -> Vec<u16> {
    let mut k = thresholds.len();
    scores
        .iter()
        .map(|x| {
            if x.is_nan() {
                return 0; // reaches no threshold (and NaNs sit at the ends of the order)
            }
            while k > 0 && thresholds[k - 1] > *x {
                k -= 1;
            }
            k as u16
        })
        .collect()
}

/// A key whose ascending order is `f64::total_cmp`'s descending order.
fn descending_key(x: f64) -> u64 {
    let b = x.to_bits();
    let ascending = if b >> 63 == 1 { !b } else { b | (1 << 63) };
    !ascending
}

/// Sorts keys ascending by LSD radix (8 bits a pass, passes where every key has the same byte
/// skipped); returns the sorted keys and the original position of each.
fn radix_sort(mut keys: Vec<u64>) -> (Vec<u64>, Vec<u32>) {
    let n = keys.len();
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let (mut keys_tmp, mut idx_tmp) = (vec![0u64; n], vec![0u32; n]);
    for shift in (0..64).step_by(8) {
        let mut counts = [0usize; 256];
        for k in &keys {
            counts[((k >> shift) & 0xff) as usize] += 1;
        }
        if counts.contains(&n) {
            continue;
        }
        let mut offsets = [0usize; 256];
        let mut sum = 0;
        for (o, c) in offsets.iter_mut().zip(&counts) {
            *o = sum;
            sum += c;
        }
        for (k, i) in keys.iter().zip(&idx) {
            let b = ((k >> shift) & 0xff) as usize;
            keys_tmp[offsets[b]] = *k;
            idx_tmp[offsets[b]] = *i;
            offsets[b] += 1;
        }
        std::mem::swap(&mut keys, &mut keys_tmp);
        std::mem::swap(&mut idx, &mut idx_tmp);
    }
    (keys, idx)
}

/// One pass over the cells for one spec with the given effective weights (cells are sorted by
/// score, descending, so tied scores are closed together, as scikit-learn does).
fn binary_pass(prep: &Prepared, spec: usize, k_of_cell: &[u16], w: &[f64], thresholds: usize) -> Vec<SlicePass> {
    let (y, p, slice_of_cell) = (&prep.y, &prep.p, &prep.slice_of_cell[spec]);
    let n_slices = prep.keys[spec].len();
    let mut stats = vec![BinaryStats::new(thresholds); n_slices];
    let (mut tp, mut fp, mut area, mut ap) = (vec![0.0; n_slices], vec![0.0; n_slices], vec![0.0; n_slices], vec![0.0; n_slices]);
    let (mut tp0, mut fp0) = (vec![0.0; n_slices], vec![0.0; n_slices]);
    let mut touched: Vec<usize> = Vec::new();
    let mut is_touched = vec![false; n_slices];
    let n = y.len();
    let mut i = 0;
    while i < n {
        let score = p[i];
        while i < n && p[i].to_bits() == score.to_bits() {
            let r = i;
            i += 1;
            let Some(s) = slice_of_cell.get(r) else { continue };
            let (s, wr) = (s as usize, w[r]);
            if wr <= 0.0 || !y[r].is_finite() || !p[r].is_finite() {
                continue;
            }
            stats[s].add_terms(k_of_cell[r] as usize, y[r], p[r], wr, prep.mult[r] as u64, prep.log_loss[r], prep.bins[r]);
            if !is_touched[s] {
                is_touched[s] = true;
                touched.push(s);
                tp0[s] = tp[s];
                fp0[s] = fp[s];
            }
            if y[r] == 1.0 { tp[s] += wr } else { fp[s] += wr }
        }
        for &s in &touched {
            area[s] += (fp[s] - fp0[s]) * (tp[s] + tp0[s]) / 2.0;
            let dtp = tp[s] - tp0[s];
            if dtp > 0.0 {
                ap[s] += dtp * tp[s] / (tp[s] + fp[s]);
            }
            is_touched[s] = false;
        }
        touched.clear();
    }
    stats
        .into_iter()
        .enumerate()
        .map(|(s, st)| {
            let (pos, neg) = (tp[s], fp[s]);
            SlicePass { stats: st, auc: (pos > 0.0 && neg > 0.0).then(|| area[s] / (pos * neg)), ap: (pos > 0.0).then(|| ap[s] / pos) }
        })
        .collect()
}

/// Every spec's slice passes. The overall slice (spec 0) is not walked in full when another
/// spec's slices cover every cell (a feature slicing: missing values are a slice too): its
/// statistics are those slices' merged, and only its ranking metrics need a (light) walk.
fn binary_passes(prep: &Prepared, k_of_cell: &[u16], w: &[f64], thresholds: usize) -> Vec<Vec<SlicePass>> {
    let specs = prep.keys.len();
    let covering = (1..specs).find(|a| prep.slice_of_cell[*a].covers_all());
    let mut out: Vec<Vec<SlicePass>> = Vec::with_capacity(specs);
    out.push(Vec::new());
    for a in 1..specs {
        out.push(binary_pass(prep, a, k_of_cell, w, thresholds));
    }
    out[0] = match covering {
        Some(c) => {
            let mut stats = BinaryStats::new(thresholds);
            for sp in &out[c] {
                stats.merge(&sp.stats);
            }
            let (auc, ap) = ranking_pass(prep, w);
            vec![SlicePass { stats, auc, ap }]
        }
        None => binary_pass(prep, 0, k_of_cell, w, thresholds),
    };
    out
}

/// Exact AUC and average precision over all cells (ties closed together, as in `binary_pass`).
fn ranking_pass(prep: &Prepared, w: &[f64]) -> (Option<f64>, Option<f64>) {
    let (y, p) = (&prep.y, &prep.p);
    let (mut tp, mut fp, mut area, mut ap) = (0.0, 0.0, 0.0, 0.0);
    let n = y.len();
    let mut i = 0;
    while i < n {
        let score = p[i];
        let (tp0, fp0) = (tp, fp);
        while i < n && p[i].to_bits() == score.to_bits() {
            let r = i;
            i += 1;
            if w[r] <= 0.0 || !y[r].is_finite() || !p[r].is_finite() {
                continue;
            }
            if y[r] == 1.0 { tp += w[r] } else { fp += w[r] }
        }
        area += (fp - fp0) * (tp + tp0) / 2.0;
        let dtp = tp - tp0;
        if dtp > 0.0 {
            ap += dtp * tp / (tp + fp);
        }
    }
    ((tp > 0.0 && fp > 0.0).then(|| area / (tp * fp)), (tp > 0.0).then(|| ap / tp))
}

/// Per threshold, the flat vectors hold the confusion metrics (registry order) and then these counts.
const COUNT_NAMES: [&str; 4] = ["tp", "fp", "tn", "fn"];

/// The flat value vectors' layout: the threshold-free binary metrics, then per threshold the
/// confusion metrics and the counts, each in registry order.
struct BinaryLayout {
    scalars: usize,
    confusion: usize,
}

impl BinaryLayout {
    fn get() -> BinaryLayout {
        BinaryLayout { scalars: registry::of_family(Family::Binary).count(), confusion: registry::confusion_metrics().count() }
    }

    fn per_threshold(&self) -> usize {
        self.confusion + COUNT_NAMES.len()
    }

    /// Where threshold `j`'s values start.
    fn at(&self, j: usize) -> usize {
        self.scalars + j * self.per_threshold()
    }

    /// Where threshold `j`'s (tp, fp, tn, fn) start.
    fn counts_at(&self, j: usize) -> usize {
        self.at(j) + self.confusion
    }

    /// Where confusion metric `name` is at threshold `j`.
    fn metric_at(&self, j: usize, name: &str) -> Option<usize> {
        registry::confusion_metrics().position(|m| m.name == name).map(|i| self.at(j) + i)
    }
}

/// A metric's place in the flat value vectors.
struct MetricSlot {
    /// `auc_roc`, `fpr@0.5`: the key in `vs_baseline`.
    key: String,
    base: &'static str,
    /// Index of the threshold, for threshold metrics.
    at: Option<usize>,
}

fn binary_slots(thresholds: &[f64]) -> Vec<MetricSlot> {
    let mut out: Vec<MetricSlot> = registry::names(Family::Binary).map(|n| MetricSlot { key: n.to_string(), base: n, at: None }).collect();
    for (j, t) in thresholds.iter().enumerate() {
        out.extend(registry::names(Family::AtThreshold).chain(COUNT_NAMES).map(|n| MetricSlot { key: format!("{n}@{t}"), base: n, at: Some(j) }));
    }
    out
}

/// Every metric of one slice pass, in the order of `binary_slots`.
fn flat_binary(sp: &SlicePass, thresholds: usize) -> Vec<Option<f64>> {
    let layout = BinaryLayout::get();
    let mut v = Vec::with_capacity(layout.at(thresholds));
    let s = sp.stats.scalar_metrics();
    v.extend(registry::names(Family::Binary).map(|n| match n {
        "auc_roc" => sp.auc,
        "auc_pr" => sp.ap,
        other => s.get(other).copied().flatten(),
    }));
    for (tp, fp, tn, fn_) in sp.stats.confusions() {
        v.extend(registry::confusion_values(&Confusion { tp, fp, tn, fn_ }));
        v.extend([Some(tp), Some(fp), Some(tn), Some(fn_)]);
    }
    v
}

/// Percentile interval of bootstrap values (NaN-free), or (None, None).
fn percentile_interval(vals: &mut [f64], level: f64) -> (Option<f64>, Option<f64>) {
    if vals.len() < 2 {
        return (None, None);
    }
    let a = (1.0 - level) / 2.0;
    (Some(select_quantile(vals, a)), Some(select_quantile(vals, 1.0 - a)))
}

/// The `q` quantile with linear interpolation (numpy's default), by selection instead of a sort.
fn select_quantile(vals: &mut [f64], q: f64) -> f64 {
    let pos = q * (vals.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let (_, lo_v, rest) = vals.select_nth_unstable_by(lo, f64::total_cmp);
    let lo_v = *lo_v;
    let frac = pos - lo as f64;
    if frac == 0.0 || rest.is_empty() {
        return lo_v;
    }
    let hi_v = rest.iter().copied().fold(f64::INFINITY, f64::min);
    lo_v + (hi_v - lo_v) * frac
}

/// Computes a metrics request on a run's DataFrame. Pure: DataFrame in, plain structs out.
pub fn compute(df: &DataFrame, req: &MetricsRequest, task: Task) -> Result<MetricsResult, RequestError> {
    compute_prepared(&prepare(df, req, task)?, req)
}

/// Computes a metrics request on prepared cells (see [`Prepared`]); `req` must have the
/// `prepare_key` the cells were prepared with.
pub fn compute_prepared(prep: &Prepared, req: &MetricsRequest) -> Result<MetricsResult, RequestError> {
    compute_with_budget(prep, req, BOOTSTRAP_CELL_BUDGET)
}

/// [`compute_prepared`] with the bootstrap's cell budget as a parameter (tests set it small).
fn compute_with_budget(prep: &Prepared, req: &MetricsRequest, budget: usize) -> Result<MetricsResult, RequestError> {
    let layout = BinaryLayout::get();
    if !(0.5..1.0).contains(&req.ci) {
        return Err(RequestError::Invalid(format!("ci must be in [0.5, 1), got {}", req.ci)));
    }
    if req.bootstrap > 2000 {
        return Err(RequestError::Invalid("bootstrap may be at most 2000 replicates".into()));
    }
    let task = prep.task;
    let binary = task == Task::Binary;
    let z = normal_quantile(0.5 + req.ci / 2.0);
    let thresholds = if binary { req.thresholds.clone() } else { vec![] };
    if thresholds.windows(2).any(|w| w[0] >= w[1]) {
        return Err(RequestError::Invalid("thresholds must be distinct and in ascending order".into()));
    }
    let k_of = |prep: &Prepared| -> Vec<u16> { if binary { threshold_counts(&prep.p, &thresholds) } else { vec![] } };
    let specs = prep.keys.len();

    // Flat metric values per (spec, slice), in the order of `slots`.
    let run_pass = |prep: &Prepared, k_of_cell: &[u16], w: &[f64]| -> Vec<Vec<Vec<Option<f64>>>> {
        if task == Task::Binary {
            return binary_passes(prep, k_of_cell, w, thresholds.len()).iter().map(|slices| slices.iter().map(|sp| flat_binary(sp, thresholds.len())).collect()).collect();
        }
        (0..specs)
            .map(|a| match task {
                Task::Regression => regression_pass(prep, a, w).into_iter().map(|m| m.into_values().collect()).collect(),
                _ => multiclass_pass(prep, a, w).into_iter().map(|(m, _)| m.into_values().collect()).collect(),
            })
            .collect()
    };
    let point_weights = |prep: &Prepared| -> Vec<f64> { prep.w.iter().zip(&prep.mult).map(|(w, m)| w * *m as f64).collect() };
    let k_of_cell = k_of(prep);
    let point = run_pass(prep, &k_of_cell, &point_weights(prep));
    // Replicates walk binned cells when a binary request has too many (see `Prepared::binned`),
    // and are then shifted by (exact − binned) point value, metric by metric.
    let binned = if req.bootstrap > 0 { prep.binned_cached(&thresholds, budget) } else { None };
    let (boot_prep, boot_k) = match binned.as_deref() {
        Some((b, k)) => (b, k.clone()),
        None => (prep, k_of_cell.clone()),
    };
    let shift: Option<Vec<Vec<Vec<f64>>>> = binned.as_deref().map(|(b, _)| {
        let coarse = run_pass(b, &boot_k, &point_weights(b));
        point
            .iter()
            .zip(&coarse)
            .map(|(pa, ca)| pa.iter().zip(ca).map(|(ps, cs)| ps.iter().zip(cs).map(|(x, y)| match (x, y) { (Some(x), Some(y)) => x - y, _ => 0.0 }).collect()).collect())
            .collect()
    });
    let boot_method = if binned.is_some() { "bootstrap_binned" } else { "bootstrap" };
    let slots: Vec<MetricSlot> = match task {
        Task::Binary => binary_slots(&thresholds),
        // The regression pass's map iterates its names sorted.
        Task::Regression => registry::names(Family::Regression).collect::<std::collections::BTreeSet<_>>().into_iter().map(|n| MetricSlot { key: n.into(), base: n, at: None }).collect(),
        Task::Multiclass => multiclass_keys(prep)
            .into_iter()
            .map(|n| MetricSlot { base: registry::names(Family::Multiclass).find(|m| *m == n).unwrap_or(""), key: n, at: None })
            .collect(),
    };

    // Replicate b draws its cells' multiplicities from its own generator (seed, b), so the numbers
    // do not depend on how the replicates are spread over threads.
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8).min(req.bootstrap.max(1));
    let mut replicates: Vec<Vec<f64>> = Vec::with_capacity(req.bootstrap);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (run_pass, boot_k, shift) = (&run_pass, &boot_k, &shift);
                scope.spawn(move || {
                    let mut wb = vec![0.0; boot_prep.w.len()];
                    let mut out = Vec::new();
                    for b in (t..req.bootstrap).step_by(threads) {
                        let mut rng = SplitMix(req.seed ^ (b as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
                        for ((o, wi), m) in wb.iter_mut().zip(&boot_prep.w).zip(&boot_prep.mult) {
                            *o = wi * rng.poisson(*m as f64);
                        }
                        let mut values = run_pass(boot_prep, boot_k, &wb);
                        if let Some(shift) = shift {
                            for (va, sa) in values.iter_mut().zip(shift) {
                                for (vs, ss) in va.iter_mut().zip(sa) {
                                    for (v, d) in vs.iter_mut().zip(ss) {
                                        if let Some(v) = v {
                                            *v += d;
                                        }
                                    }
                                }
                            }
                        }
                        // Stored flat, NaN for undefined: half the bytes of `Option<f64>`.
                        let flat: Vec<f64> = values.iter().flatten().flatten().map(|v| v.unwrap_or(f64::NAN)).collect();
                        out.push((b, flat));
                    }
                    out
                })
            })
            .collect();
        let mut all: Vec<(usize, Vec<f64>)> = handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect();
        all.sort_by_key(|(b, _)| *b);
        replicates.extend(all.into_iter().map(|(_, f)| f));
    });

    let w_point = point_weights(prep);
    let confusions: Vec<Vec<Vec<Vec<f64>>>> =
        if task == Task::Multiclass { (0..specs).map(|a| multiclass_pass(prep, a, &w_point).into_iter().map(|(_, c)| c).collect()).collect() } else { vec![] };
    let base_index = prep.base_index;
    let base = &point[base_index][0];
    let mut slices = Vec::new();
    let mut tests: Vec<(usize, usize, f64)> = Vec::new(); // (slice index, slot, p) for BH
    let mut boot: Vec<f64> = Vec::with_capacity(req.bootstrap);
    // Replicate values of one slice laid out metric by metric (`[slot * nb + b]`, NaN when
    // undefined), so the interval and the test of each metric read contiguous memory.
    let nb = replicates.len();
    // Where each (spec, slice)'s values start in a flat replicate (replicates have the point's shape).
    let offsets: Vec<Vec<usize>> = {
        let mut at = 0;
        point.iter().map(|slices| slices.iter().map(|v| { let o = at; at += v.len(); o }).collect()).collect()
    };
    let transpose = |ai: usize, si: usize, out: &mut Vec<f64>| {
        out.clear();
        out.resize(slots.len() * nb, f64::NAN);
        let (o, len) = (offsets[ai][si], point[ai][si].len());
        for (b, r) in replicates.iter().enumerate() {
            for (mi, v) in r[o..o + len].iter().enumerate() {
                out[mi * nb + b] = *v;
            }
        }
    };
    let (mut reps, mut base_reps) = (Vec::new(), Vec::new());
    transpose(base_index, 0, &mut base_reps);
    for (ai, keys) in prep.keys.iter().enumerate() {
        if ai == base_index && !prep.baseline_is_overall {
            // The baseline slice is listed like the others only if a spec produced it.
            continue;
        }
        for (si, key) in keys.iter().enumerate() {
            let (count, weight, weight_sq) = prep.counts[ai][si];
            let n_per_w = if weight_sq > 0.0 { weight / weight_sq } else { 1.0 };
            let flat = &point[ai][si];
            let counts_at = |j: usize| {
                let o = layout.counts_at(j);
                let g = |i: usize| flat[o + i].unwrap_or(0.0);
                Confusion { tp: g(0), fp: g(1), tn: g(2), fn_: g(3) }
            };
            let mut metrics = BTreeMap::new();
            let mut at: Vec<AtThreshold> = thresholds
                .iter()
                .enumerate()
                .map(|(j, t)| {
                    let Confusion { tp, fp, tn, fn_ } = counts_at(j);
                    AtThreshold { threshold: *t, tp, fp, tn, fn_, metrics: BTreeMap::new() }
                })
                .collect();
            let too_small = count < req.min_size.max(1);
            transpose(ai, si, &mut reps);
            let mut vs = BTreeMap::new();
            for (mi, (slot, value)) in slots.iter().zip(flat).enumerate() {
                if slot.at.is_some() && COUNT_NAMES.contains(&slot.base) {
                    continue;
                }
                let family = match (task, slot.at) {
                    (Task::Binary, Some(_)) => Family::AtThreshold,
                    (Task::Binary, None) => Family::Binary,
                    (Task::Multiclass, _) => Family::Multiclass,
                    (Task::Regression, _) => Family::Regression,
                };
                let wilson_interval = registry::find(family, slot.base).is_some_and(|m| m.interval == Interval::Wilson);
                let (lo, hi, method) = if wilson_interval {
                    match value {
                        Some(v) => {
                            // A rate at a threshold counts its own trials; a threshold-free one the slice's weight.
                            let den = slot.at.and_then(|j| rate_trials(slot.base, &counts_at(j))).unwrap_or(weight);
                            let (lo, hi) = wilson(*v, den * n_per_w, z);
                            (Some(lo).filter(|x| x.is_finite()), Some(hi).filter(|x| x.is_finite()), "wilson")
                        }
                        None => (None, None, "wilson"),
                    }
                } else if req.bootstrap > 0 {
                    boot.clear();
                    boot.extend(reps[mi * nb..(mi + 1) * nb].iter().copied().filter(|v| v.is_finite()));
                    let (lo, hi) = percentile_interval(&mut boot, req.ci);
                    (lo, hi, boot_method)
                } else {
                    (None, None, "none")
                };
                let est = Estimate { value: *value, lo, hi, method: method.to_string() };
                // Baseline comparison, from the same bootstrap resamples (they share weights).
                let base_v = base[mi];
                let diff = match (value, base_v) { (Some(a), Some(b)) => Some(a - b), _ => None };
                let ratio = match (value, base_v) { (Some(a), Some(b)) if b != 0.0 => Some(a / b), _ => None };
                let mut p_value = None;
                if !too_small && req.bootstrap > 1 {
                    if let Some(d) = diff {
                        let (mut k, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
                        for (a, b) in reps[mi * nb..(mi + 1) * nb].iter().zip(&base_reps[mi * nb..(mi + 1) * nb]) {
                            if a.is_finite() && b.is_finite() {
                                // Welford's running mean and variance of the replicate differences.
                                k += 1.0;
                                let x = a - b;
                                let delta = x - mean;
                                mean += delta / k;
                                m2 += delta * (x - mean);
                            }
                        }
                        if k > 1.0 {
                            let sd = (m2 / (k - 1.0)).sqrt();
                            p_value = Some(if sd > 0.0 { two_sided_p(d / sd) } else if d == 0.0 { 1.0 } else { 0.0 });
                        }
                    }
                }
                match slot.at {
                    Some(j) => {
                        at[j].metrics.insert(slot.base.to_string(), est);
                    }
                    None => {
                        metrics.insert(slot.key.clone(), est);
                    }
                }
                let is_overall_slice = ai == 0;
                if !is_overall_slice || !prep.baseline_is_overall {
                    if let Some(pv) = p_value {
                        tests.push((slices.len(), mi, pv));
                    }
                    vs.insert(slot.key.clone(), Comparison { diff, ratio, p_value, q_value: None, significant: false });
                }
            }
            slices.push(SliceResult {
                spec: prep.texts[ai].clone(),
                key: key.iter().cloned().collect(),
                count,
                weight,
                too_small,
                metrics,
                at,
                vs_baseline: vs,
                confusion: confusions.get(ai).map(|c| strata_app::model::ConfusionMatrix { classes: prep.classes.clone(), counts: c[si].clone() }),
            });
        }
    }
    // Benjamini–Hochberg per metric across slices.
    let mut by_metric: BTreeMap<usize, Vec<(usize, f64)>> = BTreeMap::new();
    for (si, mi, pv) in tests {
        by_metric.entry(mi).or_default().push((si, pv));
    }
    for (mi, ps) in by_metric {
        let qs = super::bh_adjust(&ps.iter().map(|(_, p)| *p).collect::<Vec<_>>());
        for ((si, _), q) in ps.iter().zip(qs) {
            if let Some(c) = slices[*si].vs_baseline.get_mut(&slots[mi].key) {
                c.q_value = Some(q);
                c.significant = q <= req.alpha;
            }
        }
    }
    let criteria = if binary { fairness_criteria(prep, req, &thresholds, &point, &replicates, &offsets) } else { vec![] };
    Ok(MetricsResult {
        criteria,
        model: req.model.clone(),
        task: task.as_str().to_string(),
        thresholds,
        ci: req.ci,
        bootstrap: req.bootstrap,
        seed: req.seed,
        baseline: if prep.baseline_is_overall { "overall".into() } else { req.baseline.clone() },
        slices,
    })
}

/// The fairness criteria and the confusion metric(s) each compares.
const CRITERIA: [(&str, &[&str]); 5] = [
    ("demographic_parity", &["positive_rate"]),
    ("equal_opportunity", &["tpr"]),
    ("equalized_odds", &["tpr", "fpr"]),
    ("predictive_parity", &["precision"]),
    ("accuracy_parity", &["accuracy"]),
];

/// Difference (max − min) and ratio (min / max) of a metric across groups, as fairlearn's
/// `*_difference` / `*_ratio` with `method="between_groups"`; for several metrics (equalized odds)
/// the largest difference and the smallest ratio. Also the groups at the extremes of the first.
fn spread(value: impl Fn(usize, usize) -> Option<f64>, groups: &[usize], slots: &[usize]) -> Option<(f64, f64, usize, usize)> {
    let mut diff = f64::NEG_INFINITY;
    let mut ratio = f64::INFINITY;
    let mut extremes = None;
    for &slot in slots {
        // (position in `groups`, value) of the lowest (first of ties) and the highest (last of
        // ties, as `Iterator::max_by`) defined value.
        let (mut lo, mut hi, mut defined): (Option<(usize, f64)>, Option<(usize, f64)>, usize) = (None, None, 0);
        for (k, g) in groups.iter().enumerate() {
            let Some(v) = value(*g, slot) else { continue };
            defined += 1;
            if lo.is_none_or(|(_, l)| v.total_cmp(&l).is_lt()) {
                lo = Some((k, v));
            }
            if hi.is_none_or(|(_, h)| v.total_cmp(&h).is_ge()) {
                hi = Some((k, v));
            }
        }
        let (Some(lo), Some(hi)) = (lo, hi) else { return None };
        if defined < 2 {
            return None;
        }
        diff = diff.max(hi.1 - lo.1);
        ratio = ratio.min(if hi.1 > 0.0 { lo.1 / hi.1 } else { 1.0 });
        extremes.get_or_insert((lo.0, hi.0));
    }
    extremes.map(|(l, h)| (diff, ratio, l, h))
}

/// Group-fairness criteria per spec and threshold, over the spec's slices with at least
/// `min_size` rows; intervals are bootstrap percentiles of the same criteria on each replicate.
/// `replicates` are flat, NaN for undefined; `offsets[spec][slice]` is where a slice's values start.
fn fairness_criteria(prep: &Prepared, req: &MetricsRequest, thresholds: &[f64], point: &[Vec<Vec<Option<f64>>>], replicates: &[Vec<f64>], offsets: &[Vec<usize>]) -> Vec<strata_app::model::CriteriaAt> {
    use strata_app::model::{CriteriaAt, Criterion};
    let layout = BinaryLayout::get();
    let slot = |j: usize, m: &str| layout.metric_at(j, m).unwrap_or(layout.at(j));
    let label = |ai: usize, g: usize| prep.keys[ai][g].iter().map(|(c, v)| format!("{c}={v}")).collect::<Vec<_>>().join(", ");
    let mut out = Vec::new();
    for ai in 1..prep.keys.len() {
        if ai == prep.base_index && !prep.baseline_is_overall {
            continue;
        }
        let groups: Vec<usize> = (0..prep.keys[ai].len()).filter(|g| prep.counts[ai][*g].0 >= req.min_size.max(1)).collect();
        if groups.len() < 2 {
            continue;
        }
        for (j, t) in thresholds.iter().enumerate() {
            let mut criteria = Vec::new();
            for (name, metrics) in CRITERIA {
                let slots: Vec<usize> = metrics.iter().map(|m| slot(j, m)).collect();
                let Some((d, r, lo, hi)) = spread(|g, m| point[ai][g][m], &groups, &slots) else { continue };
                let in_replicate = |rep: &Vec<f64>| {
                    spread(|g, m| Some(rep[offsets[ai][g] + m]).filter(|v| !v.is_nan()), &groups, &slots)
                };
                let (mut ds, mut rs): (Vec<f64>, Vec<f64>) = replicates.iter().filter_map(in_replicate).map(|(d, r, _, _)| (d, r)).unzip();
                let (dlo, dhi) = percentile_interval(&mut ds, req.ci);
                let (rlo, rhi) = percentile_interval(&mut rs, req.ci);
                let method = if req.bootstrap > 1 { "bootstrap" } else { "none" }.to_string();
                criteria.push(Criterion {
                    name: name.to_string(),
                    metric: metrics.join("+"),
                    difference: Estimate { value: Some(d), lo: dlo, hi: dhi, method: method.clone() },
                    ratio: Estimate { value: Some(r), lo: rlo, hi: rhi, method },
                    lowest: label(ai, groups[lo]),
                    highest: label(ai, groups[hi]),
                });
            }
            out.push(CriteriaAt { spec: prep.texts[ai].clone(), threshold: *t, groups: groups.len(), criteria });
        }
    }
    out
}

/// Regression metrics per slice for one weighting of the cells.
fn regression_pass(prep: &Prepared, spec: usize, w: &[f64]) -> Vec<BTreeMap<String, Option<f64>>> {
    let (y, p, slice_of_cell) = (&prep.y, &prep.p, &prep.slice_of_cell[spec]);
    let n = prep.keys[spec].len();
    #[derive(Clone, Default)]
    struct S { w: f64, res: f64, abs: f64, sq: f64, wy: f64, wy2: f64, ape: f64, w_ape: f64, abs_vals: Vec<(f64, f64)> }
    let mut s = vec![S::default(); n];
    for i in 0..y.len() {
        let Some(k) = slice_of_cell.get(i) else { continue };
        if w[i] <= 0.0 || !y[i].is_finite() || !p[i].is_finite() {
            continue;
        }
        let e = &mut s[k as usize];
        let r = y[i] - p[i];
        e.w += w[i];
        e.res += w[i] * r;
        e.abs += w[i] * r.abs();
        e.sq += w[i] * r * r;
        e.wy += w[i] * y[i];
        e.wy2 += w[i] * y[i] * y[i];
        if y[i] != 0.0 {
            e.ape += w[i] * (r / y[i]).abs();
            e.w_ape += w[i];
        }
        e.abs_vals.push((r.abs(), w[i]));
    }
    s.into_iter()
        .map(|mut e| {
            let r = |a: f64, b: f64| (b > 0.0).then(|| a / b);
            let ss_tot = e.wy2 - e.wy * e.wy / e.w.max(f64::MIN_POSITIVE);
            e.abs_vals.sort_by(|a, b| a.0.total_cmp(&b.0));
            // Weighted median (lower median for even totals, as numpy's median on repeated rows).
            let median = (e.w > 0.0).then(|| {
                let half = e.w / 2.0;
                let mut acc = 0.0;
                let mut out = f64::NAN;
                for (i, (v, wi)) in e.abs_vals.iter().enumerate() {
                    acc += wi;
                    if acc > half {
                        out = *v;
                        break;
                    }
                    if acc == half {
                        out = (v + e.abs_vals.get(i + 1).map(|x| x.0).unwrap_or(*v)) / 2.0;
                        break;
                    }
                }
                out
            });
            BTreeMap::from([
                ("mae".to_string(), r(e.abs, e.w)),
                ("mse".to_string(), r(e.sq, e.w)),
                ("rmse".to_string(), r(e.sq, e.w).map(f64::sqrt)),
                ("r2".to_string(), (ss_tot > 0.0).then(|| 1.0 - e.sq / ss_tot)),
                ("mean_residual".to_string(), r(e.res, e.w)),
                ("median_absolute_error".to_string(), median),
                ("mape".to_string(), r(e.ape, e.w_ape)),
            ])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, seed: u64) -> Vec<(f64, f64, f64)> {
        let mut r = SplitMix(seed);
        (0..n)
            .map(|_| {
                let p = (r.next() >> 11) as f64 / (1u64 << 53) as f64;
                let y = if (r.next() >> 11) as f64 / ((1u64 << 53) as f64) < p { 1.0 } else { 0.0 };
                (y, (p * 20.0).round() / 20.0, 1.0 + (r.next() % 3) as f64)
            })
            .collect()
    }

    fn stats_of(rs: &[(f64, f64, f64)], thresholds: &[f64]) -> BinaryStats {
        let mut s = BinaryStats::new(thresholds.len());
        for (y, p, w) in rs {
            s.add(thresholds.partition_point(|t| t <= p), *y, *p, *w);
        }
        s
    }

    #[test]
    fn merging_chunk_accumulators_equals_one_pass() {
        let t = [0.2, 0.5, 0.8];
        for seed in 0..20 {
            let rs = rows(500, seed);
            let cut = (seed as usize * 37) % 500;
            let mut a = stats_of(&rs[..cut], &t);
            a.merge(&stats_of(&rs[cut..], &t));
            let whole = stats_of(&rs, &t);
            assert_eq!(a.count, whole.count);
            assert_eq!(a.pos, whole.pos);
            assert_eq!(a.neg, whole.neg);
            assert!((a.sum_log_loss - whole.sum_log_loss).abs() < 1e-9);
        }
    }

    #[test]
    fn rates_are_proportions_and_complements_add_up() {
        let t = [0.1, 0.35, 0.5, 0.9];
        for seed in 0..20 {
            let s = stats_of(&rows(300, seed), &t);
            for j in 0..t.len() {
                let (tp, fp, tn, fn_) = s.confusion(j);
                let m = confusion_metrics(tp, fp, tn, fn_);
                for (name, v) in &m {
                    if let Some(v) = v {
                        if *name != "mcc" {
                            assert!((0.0..=1.0).contains(v), "{name} = {v}");
                        }
                    }
                }
                assert!((m["tpr"].unwrap() + m["fnr"].unwrap() - 1.0).abs() < 1e-12);
                assert!((m["fpr"].unwrap() + m["tnr"].unwrap() - 1.0).abs() < 1e-12);
            }
        }
    }

    proptest::proptest! {
        /// Accumulators of any two chunks merge into the accumulator of the whole, and every rate
        /// at every threshold is a proportion with TPR + FNR = 1.
        #[test]
        fn merge_equals_one_pass_and_rates_are_proportions(
            rows in proptest::collection::vec((0u8..2, 0u32..=100, 1u32..4), 1..300),
            cut_at in 0usize..300,
        ) {
            let rs: Vec<(f64, f64, f64)> = rows.iter().map(|(y, p, w)| (*y as f64, *p as f64 / 100.0, *w as f64)).collect();
            let t = [0.0, 0.25, 0.5, 0.75, 1.0];
            let cut = cut_at.min(rs.len());
            let mut merged = stats_of(&rs[..cut], &t);
            merged.merge(&stats_of(&rs[cut..], &t));
            let whole = stats_of(&rs, &t);
            proptest::prop_assert_eq!(&merged.pos, &whole.pos);
            proptest::prop_assert_eq!(&merged.neg, &whole.neg);
            proptest::prop_assert_eq!(merged.count, whole.count);
            proptest::prop_assert!((merged.sum_log_loss - whole.sum_log_loss).abs() < 1e-6);
            for j in 0..t.len() {
                let (tp, fp, tn, fn_) = whole.confusion(j);
                let m = confusion_metrics(tp, fp, tn, fn_);
                for (name, v) in &m {
                    if let (Some(v), false) = (v, *name == "mcc") {
                        proptest::prop_assert!((0.0..=1.0).contains(v), "{} = {}", name, v);
                    }
                }
                if let (Some(a), Some(b)) = (m["tpr"], m["fnr"]) {
                    proptest::prop_assert!((a + b - 1.0).abs() < 1e-12);
                }
            }
        }
    }

    fn frame(rs: &[(f64, f64, f64)], group: impl Fn(usize) -> &'static str) -> DataFrame {
        df!(
            "label" => rs.iter().map(|r| r.0).collect::<Vec<f64>>(),
            "score" => rs.iter().map(|r| r.1).collect::<Vec<f64>>(),
            "w" => rs.iter().map(|r| r.2).collect::<Vec<f64>>(),
            "g" => (0..rs.len()).map(group).collect::<Vec<&str>>(),
        )
        .unwrap()
    }

    fn request(bootstrap: usize) -> MetricsRequest {
        MetricsRequest {
            label: "label".into(),
            model: "score".into(),
            class_scores: vec![],
            weight: Some("w".into()),
            specs: vec!["g".into()],
            thresholds: vec![0.25, 0.5, 0.75],
            ci: 0.9,
            bootstrap,
            seed: 7,
            baseline: "overall".into(),
            min_size: 1,
            max_slices: 100,
            alpha: 0.05,
        }
    }

    #[test]
    fn the_binned_bootstrap_keeps_points_exact_and_intervals_close_to_the_exact_bootstrap() {
        // 40,000 unweighted rows with distinct scores in two groups: 40,000 exact cells, binned
        // to about 2,000 for the replicates.
        let mut r = SplitMix(11);
        let rs: Vec<(f64, f64, f64)> = (0..40_000)
            .map(|_| {
                let p = (r.next() >> 11) as f64 / (1u64 << 53) as f64;
                let y = if (r.next() >> 11) as f64 / ((1u64 << 53) as f64) < 0.15 + 0.7 * p { 1.0 } else { 0.0 };
                (y, p, 1.0)
            })
            .collect();
        let df = frame(&rs, |i| if i % 3 == 0 { "a" } else { "b" });
        let mut req = request(1000);
        req.weight = None;
        let prep = prepare(&df, &req, Task::Binary).unwrap();
        assert_eq!(prep.cells(), 40_000);
        let exact = compute_with_budget(&prep, &req, usize::MAX).unwrap();
        let binned = compute_with_budget(&prep, &req, 2_000).unwrap();
        let (bp, k) = prep.binned(&req.thresholds, 2_000).unwrap();
        assert!(bp.cells() < 8_000 && bp.cells() > 1_000, "{} binned cells", bp.cells());
        assert_eq!(k.len(), bp.cells());
        let mut compared = 0;
        for (e, b) in exact.slices.iter().zip(&binned.slices) {
            let pairs = e.metrics.iter().map(|(n, x)| (n.clone(), x, &b.metrics[n])).chain(
                e.at.iter().zip(&b.at).flat_map(|(ea, ba)| ea.metrics.iter().map(move |(n, x)| (format!("{n}@{}", ea.threshold), x, &ba.metrics[n]))),
            );
            for (name, x, y) in pairs {
                assert_eq!(x.value.map(|v| (v * 1e9).round()), y.value.map(|v| (v * 1e9).round()), "{name}: the point value does not change");
                if x.method != "bootstrap" {
                    assert_eq!(x.method, y.method);
                    continue;
                }
                assert_eq!(y.method, "bootstrap_binned");
                let (Some(lo), Some(hi), Some(blo), Some(bhi)) = (x.lo, x.hi, y.lo, y.hi) else { continue };
                let width = hi - lo;
                // Different draws (other cells) → Monte-Carlo noise of 1,000 replicates' 5% and
                // 95% quantiles; anything systematic would show as much more.
                assert!((blo - lo).abs() <= 0.15 * width && (bhi - hi).abs() <= 0.15 * width, "{} {name}: exact [{lo}, {hi}], binned [{blo}, {bhi}]", e.label());
                compared += 1;
            }
        }
        assert!(compared >= 30, "{compared} bootstrap intervals compared");
        // The baseline comparison's p-values come from the same (shifted) replicates.
        let pe = exact.slices[1].vs_baseline["auc_roc"].p_value.unwrap();
        let pb = binned.slices[1].vs_baseline["auc_roc"].p_value.unwrap();
        assert!((pe - pb).abs() < 0.2, "{pe} vs {pb}");
    }

    #[test]
    fn the_overall_slice_merged_from_a_covering_spec_equals_its_own_pass() {
        let rs = rows(3000, 17);
        let df = frame(&rs, |i| ["a", "b", "c"][i % 3]);
        let req = request(0);
        let prep = prepare(&df, &req, Task::Binary).unwrap();
        let k: Vec<u16> = prep.p.iter().map(|x| req.thresholds.partition_point(|t| t <= x) as u16).collect();
        let w: Vec<f64> = prep.w.iter().zip(&prep.mult).map(|(w, m)| w * *m as f64).collect();
        let merged = &binary_passes(&prep, &k, &w, req.thresholds.len())[0][0];
        let direct = &binary_pass(&prep, 0, &k, &w, req.thresholds.len())[0];
        let (a, b) = (flat_binary(merged, req.thresholds.len()), flat_binary(direct, req.thresholds.len()));
        for (x, y) in a.iter().zip(&b) {
            match (x, y) {
                (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{x} vs {y}"),
                _ => assert_eq!(x, y),
            }
        }
        assert_eq!(merged.stats.count, direct.stats.count);
    }

    #[test]
    fn threshold_counts_equal_a_search_per_score() {
        let mut r = SplitMix(23);
        let mut xs: Vec<f64> = (0..2000).map(|_| r.uniform() * 1.2 - 0.1).collect();
        xs.extend([0.0, -0.0, 0.5, 0.5, 1.0, f64::NAN]);
        xs.sort_by(|a, b| b.total_cmp(a));
        let ts = parse_thresholds("0:1:0.05").unwrap();
        let want: Vec<u16> = xs.iter().map(|x| ts.partition_point(|t| t <= x) as u16).collect();
        assert_eq!(threshold_counts(&xs, &ts), want);
    }

    #[test]
    fn the_radix_sort_orders_scores_as_total_cmp_descending() {
        let mut r = SplitMix(5);
        let mut xs: Vec<f64> = (0..5000).map(|_| ((r.next() >> 11) as f64 / (1u64 << 53) as f64 - 0.3) * 10f64.powi((r.next() % 7) as i32 - 3)).collect();
        xs.extend([0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1.0, 1.0, 0.5, 0.5, f64::MIN_POSITIVE]);
        let (keys, order) = radix_sort(xs.iter().map(|x| descending_key(*x)).collect());
        assert!(keys.windows(2).all(|w| w[0] <= w[1]));
        let sorted: Vec<u64> = order.iter().map(|i| xs[*i as usize].to_bits()).collect();
        let mut want = xs.clone();
        want.sort_by(|a, b| b.total_cmp(a));
        assert_eq!(sorted, want.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    }

    #[test]
    fn permuting_rows_changes_nothing_not_even_the_bootstrap() {
        let rs = rows(400, 3);
        let mut order: Vec<usize> = (0..rs.len()).collect();
        let mut r = SplitMix(9);
        for i in (1..order.len()).rev() {
            order.swap(i, (r.next() % (i as u64 + 1)) as usize);
        }
        let group = |i: usize| if i % 3 == 0 { "a" } else { "b" };
        let df1 = frame(&rs, group);
        let shuffled: Vec<(f64, f64, f64)> = order.iter().map(|i| rs[*i]).collect();
        let df2 = frame(&shuffled, |j| group(order[j]));
        let r1 = compute(&df1, &request(40), Task::Binary).unwrap();
        let r2 = compute(&df2, &request(40), Task::Binary).unwrap();
        // Cells are ordered by their values, not by row position, so even the resamples agree.
        assert_eq!(serde_json::to_string(&r1).unwrap(), serde_json::to_string(&r2).unwrap());
    }

    #[test]
    fn repeated_rows_become_one_cell_and_metrics_do_not_change() {
        let rs = rows(300, 5);
        let repeated: Vec<(f64, f64, f64)> = rs.iter().cycle().take(rs.len() * 4).copied().collect();
        let df = frame(&repeated, |i| if i % 2 == 0 { "a" } else { "b" });
        let prep = prepare(&df, &request(0), Task::Binary).unwrap();
        assert_eq!(prep.rows(), 1200);
        assert!(prep.cells() <= 600, "{} cells", prep.cells());
        let got = compute_prepared(&prep, &request(0)).unwrap();
        let overall = &got.slices[0];
        assert_eq!(overall.count, 1200);
        // Four copies of a row weigh what the row weighs at four times its weight.
        let heavier: Vec<(f64, f64, f64)> = rs.iter().map(|(y, p, w)| (*y, *p, 4.0 * w)).collect();
        let reference = compute(&frame(&heavier, |i| if i % 2 == 0 { "a" } else { "b" }), &request(0), Task::Binary).unwrap();
        let reference = &reference.slices[0];
        assert!((overall.metrics["auc_roc"].value.unwrap() - reference.metrics["auc_roc"].value.unwrap()).abs() < 1e-12);
        assert!((overall.metrics["log_loss"].value.unwrap() - reference.metrics["log_loss"].value.unwrap()).abs() < 1e-12);
        assert!((overall.at[1].metrics["accuracy"].value.unwrap() - reference.at[1].metrics["accuracy"].value.unwrap()).abs() < 1e-12);
    }


    /// Chunked, parallel cell building gives exactly the cells of one pass over all rows, for
    /// short runs of equal scores (sorted) and long ones (counted in a hash map) alike.
    #[test]
    fn cells_do_not_depend_on_chunks() {
        let mut r = SplitMix(5);
        let n = 5_000;
        // Scores from a small set (long runs) and distinct ones (short runs); two slicings, one
        // a filter that leaves rows out.
        let p: Vec<f64> = (0..n).map(|i| if i % 3 == 0 { (r.next() % 7) as f64 / 7.0 } else { r.uniform() }).collect();
        let y: Vec<f64> = (0..n).map(|_| (r.next() % 2) as f64).collect();
        let w: Vec<f64> = (0..n).map(|_| if r.next() % 4 == 0 { 2.0 } else { 1.0 }).collect();
        let a: Vec<Option<u32>> = (0..n).map(|_| Some((r.next() % 3) as u32)).collect();
        let b: Vec<Option<u32>> = (0..n).map(|_| (r.next() % 2 == 0).then_some(0)).collect();
        let tuple: Vec<u64> = a.iter().zip(&b).map(|(a, b)| a.map_or(0, |s| s as u64 + 1) * 2 + b.map_or(0, |s| s as u64 + 1)).collect();
        let rows = RowData { y: &y, p: &p, w: &w, tuple: &tuple, class_terms: &[], slices: vec![&a, &b] };
        let one = build_cells(&rows, n);
        assert!(one.len() < n && one.mult.iter().map(|m| *m as usize).sum::<usize>() == n);
        // `prepare`'s path for small runs: the rows compressed in place, as one block.
        let direct = chunk_cells(&rows, 0..n);
        assert_eq!((&direct.p, &direct.mult, &direct.tuple), (&one.p, &one.mult, &one.tuple));
        for chunk in [1, 7, 100, 1024] {
            let c = build_cells(&rows, chunk);
            assert_eq!((&c.y, &c.p, &c.w, &c.mult, &c.tuple), (&one.y, &one.p, &one.w, &one.mult, &one.tuple), "chunk {chunk}");
            for (x, y) in c.slices.iter().zip(&one.slices) {
                assert_eq!(x.0, y.0, "chunk {chunk}");
            }
        }
        // Canonical order: scores descending, then slices, label, weight ascending, no two equal.
        for i in 1..one.len() {
            assert!(one.key(i - 1) < one.key(i), "cells {} and {i}", i - 1);
        }
        // Multiclass rows also tell cells apart by their class terms.
        let terms: Vec<ClassTerms> = (0..n).map(|_| ClassTerms { log_loss: (r.next() % 3) as f64 / 4.0, rank: (r.next() % 2) as u16 }).collect();
        let rows = RowData { class_terms: &terms, ..rows };
        let one = build_cells(&rows, n);
        assert_eq!(one.class_terms.len(), one.len());
        for chunk in [3, 333] {
            let c = build_cells(&rows, chunk);
            assert_eq!((&c.mult, &c.tuple, &c.p), (&one.mult, &one.tuple, &one.p), "chunk {chunk}");
            assert!(c.class_terms.iter().zip(&one.class_terms).all(|(a, b)| a.same(b)));
        }
    }

}

/// The keys `multiclass_pass` reports, sorted as its maps iterate.
fn multiclass_keys(prep: &Prepared) -> Vec<String> {
    let mut keys: std::collections::BTreeSet<String> = registry::names(Family::Multiclass).map(str::to_string).collect();
    for c in &prep.classes {
        keys.extend([format!("precision[{c}]"), format!("recall[{c}]"), format!("f1[{c}]")]);
    }
    if !prep.class_terms.is_empty() {
        keys.insert("log_loss".into());
        keys.extend(registry::top_ks(prep.classes.len()).into_iter().map(top_k_name));
    }
    keys.into_iter().collect()
}

/// What a row's per-class scores tell about its true class.
#[derive(Clone, Copy, Debug)]
struct ClassTerms {
    /// −ln of the true class's score (scores normalised to sum to 1, clipped to [ε, 1 − ε] as
    /// scikit-learn's `log_loss` does); NaN when the row has no usable scores.
    log_loss: f64,
    /// How many classes rank above the true class: scores strictly higher, and equal scores of
    /// classes sorted after it (scikit-learn's `top_k_accuracy_score` breaks ties that way).
    /// The row is a top-k hit when `rank < k`.
    rank: u16,
}

impl Default for ClassTerms {
    fn default() -> Self {
        ClassTerms { log_loss: f64::NAN, rank: u16::MAX }
    }
}

impl ClassTerms {
    fn same(&self, o: &ClassTerms) -> bool {
        self.rank == o.rank && self.log_loss.to_bits() == o.log_loss.to_bits()
    }
}

/// Per row, the [`ClassTerms`] of its true class (`y`, a code into `classes`).
fn class_terms(df: &DataFrame, class_scores: &[(String, String)], classes: &[String], y: &[f64]) -> Result<Vec<ClassTerms>, RequestError> {
    // Score columns in class order; a class without a column cannot be a top-k hit.
    let mut columns: Vec<Option<Vec<f64>>> = vec![None; classes.len()];
    for (class, col) in class_scores {
        let i = classes.iter().position(|c| c == class).ok_or_else(|| RequestError::Invalid(format!("class '{class}' of column '{col}' is not a class of the run")))?;
        columns[i] = Some(f64_values(df, col)?);
    }
    let scored: Vec<(usize, &Vec<f64>)> = columns.iter().enumerate().filter_map(|(i, c)| c.as_ref().map(|c| (i, c))).collect();
    Ok((0..y.len())
        .map(|r| {
            let t = y[r];
            let Some(Some(own)) = (t.is_finite()).then(|| columns[t as usize].as_ref()) else { return ClassTerms::default() };
            let (t, st) = (t as usize, own[r]);
            let mut rank = 0u16;
            for (j, c) in &scored {
                let sj = c[r];
                if sj > st || (sj == st && *j > t) {
                    rank += 1;
                }
            }
            // As scikit-learn >= 1.5: the true class's probability clipped, not renormalised.
            ClassTerms { log_loss: if st.is_finite() { clipped_neg_ln(st) } else { f64::NAN }, rank }
        })
        .collect())
}

/// Class codes of the label and of the predicted class, over the sorted union of their values.
fn class_codes(df: &DataFrame, label: &str, model: &str, class_scores: &[(String, String)]) -> Result<(Vec<f64>, Vec<f64>, Vec<String>), RequestError> {
    let text = |name: &str| -> Result<Vec<Option<String>>, RequestError> {
        let c = df.column(name).map_err(|_| EvalError::NoColumn(name.to_string()))?;
        let s = c.cast(&DataType::String).map_err(EvalError::from)?;
        Ok(s.str().map_err(EvalError::from)?.iter().map(|v| v.map(str::to_string)).collect())
    };
    let (yl, pl) = (text(label)?, text(model)?);
    let scored = class_scores.iter().map(|(c, _)| c.clone());
    // Sorted as ingest sorts them (integer class codes numerically), so per-class columns line up.
    let classes = crate::ingest::sorted_classes(yl.iter().chain(&pl).flatten().cloned().chain(scored));
    let index: std::collections::HashMap<&str, f64> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as f64)).collect();
    let code = |v: &Option<String>| v.as_deref().and_then(|c| index.get(c).copied()).unwrap_or(f64::NAN);
    let y = yl.iter().map(code).collect();
    let p = pl.iter().map(code).collect();
    Ok((y, p, classes))
}

/// Multiclass metrics per slice as scikit-learn defines them (averages over the classes present in
/// the slice's labels or predictions; an undefined precision or recall counts as 0), plus the
/// slice's confusion matrix (rows: true class, columns: predicted class).
fn multiclass_pass(prep: &Prepared, spec: usize, w: &[f64]) -> Vec<(BTreeMap<String, Option<f64>>, Vec<Vec<f64>>)> {
    let (y, p, classes) = (&prep.y, &prep.p, &prep.classes);
    let k = classes.len();
    let slices = prep.keys[spec].len();
    let mut cm = vec![vec![vec![0.0; k]; k]; slices];
    // Per slice, from per-class scores: (Σw, Σw·log loss) and Σw of rows of each rank.
    let scored = !prep.class_terms.is_empty();
    let mut loss = vec![(0.0, 0.0); if scored { slices } else { 0 }];
    let mut by_rank = vec![vec![0.0; k]; if scored { slices } else { 0 }];
    for i in 0..y.len() {
        let Some(s) = prep.slice_of_cell[spec].get(i) else { continue };
        if w[i] <= 0.0 || !y[i].is_finite() || !p[i].is_finite() {
            continue;
        }
        cm[s as usize][y[i] as usize][p[i] as usize] += w[i];
        if scored {
            let t = prep.class_terms[i];
            if t.log_loss.is_finite() {
                let l = &mut loss[s as usize];
                l.0 += w[i];
                l.1 += w[i] * t.log_loss;
            }
            if let Some(b) = by_rank[s as usize].get_mut(t.rank as usize) {
                *b += w[i];
            }
        }
    }
    cm.into_iter()
        .enumerate()
        .map(|(si, m)| {
            let total: f64 = m.iter().flatten().sum();
            let correct: f64 = (0..k).map(|c| m[c][c]).sum();
            let support: Vec<f64> = (0..k).map(|c| m[c].iter().sum()).collect();
            let predicted: Vec<f64> = (0..k).map(|c| m.iter().map(|row| row[c]).sum()).collect();
            let present: Vec<usize> = (0..k).filter(|c| support[*c] > 0.0 || predicted[*c] > 0.0).collect();
            let prec = |c: usize| if predicted[c] > 0.0 { m[c][c] / predicted[c] } else { 0.0 };
            let rec = |c: usize| if support[c] > 0.0 { m[c][c] / support[c] } else { 0.0 };
            let f1 = |c: usize| { let (pr, re) = (prec(c), rec(c)); if pr + re > 0.0 { 2.0 * pr * re / (pr + re) } else { 0.0 } };
            let n = present.len() as f64;
            let macro_avg = |f: &dyn Fn(usize) -> f64| (n > 0.0).then(|| present.iter().map(|c| f(*c)).sum::<f64>() / n);
            let weighted_avg = |f: &dyn Fn(usize) -> f64| (total > 0.0).then(|| present.iter().map(|c| f(*c) * support[*c]).sum::<f64>() / total);
            let mut out = BTreeMap::from([
                ("accuracy".to_string(), (total > 0.0).then(|| correct / total)),
                ("micro_f1".to_string(), (total > 0.0).then(|| correct / total)),
                ("macro_precision".to_string(), macro_avg(&prec)),
                ("macro_recall".to_string(), macro_avg(&rec)),
                ("macro_f1".to_string(), macro_avg(&f1)),
                ("weighted_precision".to_string(), weighted_avg(&prec)),
                ("weighted_recall".to_string(), weighted_avg(&rec)),
                ("weighted_f1".to_string(), weighted_avg(&f1)),
            ]);
            for (c, name) in classes.iter().enumerate() {
                let here = support[c] > 0.0 || predicted[c] > 0.0;
                out.insert(format!("precision[{name}]"), (here && predicted[c] > 0.0).then(|| prec(c)));
                out.insert(format!("recall[{name}]"), (here && support[c] > 0.0).then(|| rec(c)));
                out.insert(format!("f1[{name}]"), here.then(|| f1(c)));
            }
            if scored {
                let (lw, lsum) = loss[si];
                out.insert("log_loss".into(), (lw > 0.0).then(|| lsum / lw));
                for kk in registry::top_ks(k) {
                    let hits: f64 = by_rank[si][..kk].iter().sum();
                    out.insert(top_k_name(kk), (total > 0.0).then(|| hits / total));
                }
            }
            (out, m)
        })
        .collect()
}
