//! The metrics engine: Polars in, plain structs out. Imports no web, database or UI crate.
//!
//! This first part computes what the run overview needs: column summaries, the label balance,
//! headline metrics per model and binned score distributions. Every metric is weighted when the
//! run has a weight column.

pub mod detectors;
pub mod discover;
pub mod drift;
pub mod fairness;
pub mod gates;
pub(crate) mod names;
pub mod stats;
pub mod residual_stats;
pub mod residuals;
pub mod rng;
pub mod rules;
pub mod sliced;
pub mod slicing;
pub mod whatif;

use polars::prelude::*;
use strata_app::model::{ColumnInfo, ColumnKind, MetricValue, MetricsResult, ModelHeadline, Role, Task, ValueCount};


/// The engine's error: a column the request names is missing or of the wrong type.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Polars(#[from] PolarsError),
    #[error("column '{0}' is not in the run")]
    NoColumn(String),
    /// A request the engine refused (a model column of the wrong kind, …).
    #[error("{0}")]
    Request(String),
}

/// Benjamini–Hochberg adjusted p-values (same order as the input).
pub fn bh_adjust(ps: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..ps.len()).collect();
    idx.sort_by(|a, b| ps[*a].total_cmp(&ps[*b]));
    let m = ps.len() as f64;
    let mut out = vec![1.0; ps.len()];
    let mut q_min = 1.0f64;
    for (rank, &i) in idx.iter().enumerate().rev() {
        q_min = q_min.min(ps[i] * m / (rank + 1) as f64);
        out[i] = q_min;
    }
    out
}

/// The rows `rows` of a frame, in that order.
pub fn take_rows(df: &DataFrame, rows: &[usize]) -> Result<DataFrame, PolarsError> {
    let idx = IdxCa::from_vec("idx".into(), rows.iter().map(|r| *r as IdxSize).collect());
    df.take(&idx)
}

/// Indices of a seeded uniform sample of `k` of `n` rows (all rows if `n <= k`), in row order.
pub fn sample_rows(n: usize, k: usize, seed: u64) -> Vec<usize> {
    if n <= k {
        return (0..n).collect();
    }
    partial_shuffle(n, k, seed, n <= DENSE_SAMPLE_RANGE)
}

/// The first `k` of a partial Fisher–Yates shuffle of `0..n`, sorted: in place when `dense`, else
/// over a map of the positions moved so far (k entries at most, not n: a 100,000-row sample of a
/// 100M-row dataset) — the same draws, so the same rows either way.
fn partial_shuffle(n: usize, k: usize, seed: u64, dense: bool) -> Vec<usize> {
    let mut rng = rng::SplitMix(seed);
    let mut out = if dense {
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..k {
            let j = i + (rng.next() % (n - i) as u64) as usize;
            idx.swap(i, j);
        }
        idx.truncate(k);
        idx
    } else {
        let mut moved: std::collections::HashMap<usize, usize> = std::collections::HashMap::with_capacity(2 * k);
        let mut out = Vec::with_capacity(k);
        for i in 0..k {
            let j = i + (rng.next() % (n - i) as u64) as usize;
            let (at_i, at_j) = (moved.get(&i).copied().unwrap_or(i), moved.get(&j).copied().unwrap_or(j));
            moved.insert(j, at_i);
            out.push(at_j);
        }
        out
    };
    out.sort_unstable();
    out
}

/// [`sample_rows`] shuffles a vector of the whole range up to this many rows.
const DENSE_SAMPLE_RANGE: usize = 4_000_000;

/// The column as `f64`s (nulls as NaN).
pub fn f64_values(df: &DataFrame, name: &str) -> Result<Vec<f64>, EvalError> {
    let c = df.column(name).map_err(|_| EvalError::NoColumn(name.to_string()))?;
    let c = c.cast(&DataType::Float64)?;
    Ok(c.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// Weights of a run: the weight column, or all ones.
pub fn weights(df: &DataFrame, weight: Option<&str>) -> Result<Vec<f64>, EvalError> {
    match weight {
        Some(w) => f64_values(df, w),
        None => Ok(vec![1.0; df.height()]),
    }
}

/// Summary statistics of every column, with its role.
pub fn column_summaries(df: &DataFrame, role_of: impl Fn(&str) -> Role) -> Result<Vec<ColumnInfo>, EvalError> {
    let mut out = Vec::with_capacity(df.width());
    for c in df.columns() {
        let s = c.as_materialized_series();
        let kind = crate::ingest::kind_of(s.dtype());
        let missing = s.null_count() as u64;
        let distinct = s.drop_nulls().n_unique()? as u64;
        let (mut min, mut max, mut mean) = (None, None, None);
        let mut top_values = Vec::new();
        match kind {
            ColumnKind::Numeric | ColumnKind::Boolean => {
                let f = s.cast(&DataType::Float64)?;
                let ca = f.f64()?;
                min = ca.min();
                max = ca.max();
                mean = ca.mean();
            }
            ColumnKind::Timestamp => {
                let i = s.to_physical_repr().cast(&DataType::Float64)?;
                let ca = i.f64()?;
                min = ca.min();
                max = ca.max();
            }
            ColumnKind::Categorical => {}
        }
        let role = role_of(c.name());
        if role != Role::Id && (matches!(kind, ColumnKind::Categorical | ColumnKind::Boolean) || (distinct <= 20 && kind == ColumnKind::Numeric)) {
            top_values = value_counts(s, 10)?;
        }
        out.push(ColumnInfo {
            name: c.name().to_string(),
            role,
            kind,
            missing,
            distinct,
            min,
            max,
            mean,
            top_values,
            class_score: None,
        });
    }
    Ok(out)
}

/// The `k` most frequent non-missing values, most frequent first (ties by value).
pub fn value_counts(s: &Series, k: usize) -> Result<Vec<ValueCount>, EvalError> {
    let text = s.cast(&DataType::String)?;
    let mut counts: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for v in text.str()?.iter().flatten() {
        *counts.entry(v).or_default() += 1;
    }
    let mut v: Vec<ValueCount> = counts.into_iter().map(|(value, count)| ValueCount { value: value.to_string(), count }).collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    v.truncate(k);
    Ok(v)
}

/// Class counts (binary, multiclass), or for regression a histogram of the label: rows per
/// equal-width bin between its minimum and maximum (`LABEL_BINS` bins, the last closed), so a
/// regression run's label is not listed as if its values were classes.
pub fn label_balance(df: &DataFrame, label: &str, task: Task) -> Result<Vec<ValueCount>, EvalError> {
    let s = df.column(label).map_err(|_| EvalError::NoColumn(label.to_string()))?.as_materialized_series().clone();
    match task {
        Task::Binary | Task::Multiclass => value_counts(&s, 50),
        Task::Regression => Ok(label_histogram(&drift::CountedNumbers::of(&f64_values(df, label)?))),
    }
}

/// Bins of a regression label's histogram.
pub const LABEL_BINS: usize = 12;

/// A regression label's histogram ([`LABEL_BINS`] equal bins from its least to its greatest
/// value, rows per bin) from its values' counts: the label balance of an uploaded run (counted
/// from its column) and of an external one (from its cells).
pub fn label_histogram(values: &drift::CountedNumbers) -> Vec<ValueCount> {
    let (Some(lo), Some(hi)) = (values.values.first().map(|v| v.0), values.values.last().map(|v| v.0)) else { return vec![] };
    if hi <= lo {
        return vec![ValueCount { value: format!("[{}, {}]", fmt_num(lo), fmt_num(hi)), count: values.present() }];
    }
    let width = (hi - lo) / LABEL_BINS as f64;
    let mut counts = [0u64; LABEL_BINS];
    for (x, n) in &values.values {
        counts[(((x - lo) / width) as usize).min(LABEL_BINS - 1)] += n;
    }
    counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (a, b) = (lo + width * i as f64, if i + 1 == LABEL_BINS { hi } else { lo + width * (i + 1) as f64 });
            let close = if i + 1 == LABEL_BINS { "]" } else { ")" };
            ValueCount { value: format!("[{}, {}{close}", fmt_num(a), fmt_num(b)), count: *c }
        })
        .collect()
}

fn fmt_num(x: f64) -> String {
    if x.abs() >= 100.0 { format!("{x:.0}") } else { format!("{x:.4}") }
}

/// Headline metrics per model ([`strata_app::metrics::headline_names`]): the slice engine's
/// overall slice, so the run page shows the slices page's numbers (binary accuracy at 0.5).
/// `class_scores(model)` gives a multiclass model's per-class score columns, as (class, column).
pub fn headline(
    df: &DataFrame,
    label: &str,
    task: Task,
    models: &[String],
    weight: Option<&str>,
    class_scores: impl Fn(&str) -> Vec<(String, String)>,
) -> Result<Vec<ModelHeadline>, EvalError> {
    // Every model gets the same columns: the per-class ones when any model has per-class scores.
    let scored = task == Task::Multiclass && models.iter().any(|m| !class_scores(m).is_empty());
    let mut out = Vec::with_capacity(models.len());
    for m in models {
        let req = headline_request(label, task, m, weight, if task == Task::Multiclass { class_scores(m) } else { vec![] });
        let overall = sliced::compute(df, &req, task).map_err(|e| match e {
            sliced::RequestError::Eval(e) => e,
            other => EvalError::Request(other.to_string()),
        })?;
        out.push(headline_of(m, task, scored, &overall));
    }
    Ok(out)
}

/// The threshold of the headline metrics that need one.
pub const HEADLINE_THRESHOLD: f64 = 0.5;

/// The engine request behind one model's headline metrics: the overall slice, no bootstrap.
pub fn headline_request(label: &str, task: Task, model: &str, weight: Option<&str>, class_scores: Vec<(String, String)>) -> sliced::MetricsRequest {
    sliced::MetricsRequest {
        label: label.to_string(),
        model: model.to_string(),
        class_scores,
        weight: weight.map(str::to_string),
        specs: vec![],
        thresholds: if task == Task::Binary { vec![HEADLINE_THRESHOLD] } else { vec![] },
        ci: 0.95,
        bootstrap: 0,
        seed: 0,
        baseline: "overall".into(),
        min_size: 1,
        max_slices: 1,
        alpha: 0.05,
    }
}

/// One model's headline metrics from the engine's answer to [`headline_request`]; `scored`: any
/// model of the run has per-class scores (every model then gets the same columns).
pub fn headline_of(model: &str, task: Task, scored: bool, result: &MetricsResult) -> ModelHeadline {
    let names = strata_app::metrics::headline_names(task, scored);
    let overall = result.slices.first();
    let metrics = names
        .iter()
        .map(|name| {
            let at = strata_app::metrics::at_threshold(task, name).then_some(HEADLINE_THRESHOLD);
            mv(name, overall.and_then(|s| s.estimate(name, at)).and_then(|e| e.value))
        })
        .collect();
    ModelHeadline { model: model.to_string(), metrics }
}

fn mv(name: &str, value: Option<f64>) -> MetricValue {
    MetricValue { name: name.to_string(), value }
}

/// A weighted histogram: `bins` equal-width bins over `[lo, hi]`; values outside are clamped.
pub fn histogram(values: &[f64], w: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let mut h = vec![0.0; bins];
    let width = (hi - lo) / bins as f64;
    for (x, wi) in values.iter().zip(w) {
        if !x.is_finite() || width <= 0.0 {
            continue;
        }
        h[bin_index(*x, lo, width, bins)] += wi;
    }
    h
}

/// The bin of `x` among `bins` bins of `width` from `lo` (values beyond either end in the end bins).
pub fn bin_index(x: f64, lo: f64, width: f64, bins: usize) -> usize {
    (((x - lo) / width).floor() as isize).clamp(0, bins as isize - 1) as usize
}

/// A binary run's score distribution from each class's histogram on [0, 1] (label 0, label 1).
pub fn binary_distribution(per_class: [Vec<f64>; 2]) -> Distribution {
    let bins = per_class[0].len();
    let width = 1.0 / bins.max(1) as f64;
    let series = per_class.into_iter().enumerate().map(|(class, h)| (format!("label = {class}"), h)).collect();
    Distribution { edges: (0..bins).map(|i| i as f64 * width).collect(), width, series, classes: vec![] }
}

/// Per label group, the binned distribution of one model's scores (binary: by class; regression:
/// predictions next to labels) — what the overview chart draws.
#[derive(Clone, Debug, PartialEq)]
pub struct Distribution {
    /// Left edges of the bins.
    pub edges: Vec<f64>,
    pub width: f64,
    /// (series name, weight per bin).
    pub series: Vec<(String, Vec<f64>)>,
    /// Multiclass: the class of each bin (bins are then classes, not ranges).
    pub classes: Vec<String>,
}

pub fn score_distribution(df: &DataFrame, label: &str, task: Task, model: &str, weight: Option<&str>, bins: usize) -> Result<Distribution, EvalError> {
    let w = weights(df, weight)?;
    if task == Task::Multiclass {
        // Classes, not numbers: how often each class is the label and the prediction.
        let text = |name: &str| -> Result<Vec<Option<String>>, EvalError> {
            let c = df.column(name).map_err(|_| EvalError::NoColumn(name.to_string()))?.cast(&DataType::String)?;
            Ok(c.str()?.iter().map(|v| v.map(str::to_string)).collect())
        };
        let (y, p) = (text(label)?, text(model)?);
        let classes = crate::ingest::sorted_classes(y.iter().chain(&p).flatten().cloned());
        let index: std::collections::HashMap<&str, usize> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
        let count = |v: &[Option<String>]| {
            let mut out = vec![0.0; classes.len()];
            for (c, wi) in v.iter().zip(&w) {
                if let Some(i) = c.as_deref().and_then(|c| index.get(c)) {
                    out[*i] += wi;
                }
            }
            out
        };
        let series = vec![(format!("{model} (predicted)"), count(&p)), (format!("{label} (true)"), count(&y))];
        return Ok(Distribution { edges: (0..classes.len()).map(|i| i as f64 - 0.5).collect(), width: 1.0, series, classes });
    }
    let p = f64_values(df, model)?;
    match task {
        Task::Binary => {
            let y = f64_values(df, label)?;
            let of_class = |class: f64| {
                let (v, ww): (Vec<f64>, Vec<f64>) = p.iter().zip(&y).zip(&w).filter(|((_, yi), _)| **yi == class).map(|((pi, _), wi)| (*pi, *wi)).unzip();
                histogram(&v, &ww, 0.0, 1.0, bins)
            };
            Ok(binary_distribution([of_class(0.0), of_class(1.0)]))
        }
        _ => {
            // Regression (and class codes): predictions and labels on common bins.
            let y = f64_values(df, label)?;
            let points: Vec<(f64, f64, f64, u64)> = p.iter().zip(&y).zip(&w).map(|((p, y), w)| (*p, *y, *w, 1)).collect();
            Ok(regression_distribution(&points, label, model, bins))
        }
    }
}

/// Predictions and labels of a regression run on common bins, from (prediction, label, weight,
/// rows) points — an uploaded run's rows (one each) or an external run's cells: `bins` equal bins
/// between the 0.5% and 99.5% quantiles of all predictions and labels together (a long tail does
/// not squeeze every bar into one bin; values beyond fall in the end bins), Σ weights per bin.
pub fn regression_distribution(points: &[(f64, f64, f64, u64)], label: &str, model: &str, bins: usize) -> Distribution {
    let all = drift::CountedNumbers::from_pairs(points.iter().flat_map(|(p, y, _, n)| [(Some(*p), *n), (Some(*y), *n)]));
    let lo = all.quantile(0.005);
    let hi = all.quantile(0.995).max(lo + 1e-9);
    let width = (hi - lo) / bins as f64;
    let (mut hp, mut hy) = (vec![0.0; bins], vec![0.0; bins]);
    if width > 0.0 {
        for (p, y, w, n) in points {
            let w = w * *n as f64;
            if p.is_finite() {
                hp[bin_index(*p, lo, width, bins)] += w;
            }
            if y.is_finite() {
                hy[bin_index(*y, lo, width, bins)] += w;
            }
        }
    }
    Distribution {
        edges: (0..bins).map(|i| lo + i as f64 * width).collect(),
        width,
        series: vec![(format!("{model} (prediction)"), hp), (format!("{label} (label)"), hy)],
        classes: vec![],
    }
}

/// The hasher of the engine's internal maps (slice values, cell keys): foldhash, several times
/// faster than the default SipHash. Its keys come from uploaded files, so it is seeded at random
/// per process (a fixed-seed hash such as FxHash lets a crafted file make every key collide and
/// a request quadratic). Nothing depends on the maps' iteration order: every result is sorted.
pub(crate) type FastHashBuilder = foldhash::fast::RandomState;

/// Values per part when a pass over `n` values is split among the cores (at most 8): at least
/// 65,536, so small inputs stay on one thread.
pub(crate) fn core_step(n: usize) -> usize {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).clamp(1, 8);
    n.div_ceil(threads).max(1 << 16)
}

/// `f(range)` for consecutive ranges of `0..n` (see [`core_step`]), each on its own thread; the
/// results in order.
pub(crate) fn par_ranges<R: Send>(n: usize, f: impl Fn(std::ops::Range<usize>) -> R + Sync) -> Vec<R> {
    let step = core_step(n);
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = (0..n).step_by(step).map(|from| scope.spawn(move || f(from..(from + step).min(n)))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}

/// `f(start, part)` for consecutive parts of `values` (see [`core_step`]; `start`: the part's first
/// index), each on its own thread.
pub(crate) fn par_parts<T: Send>(values: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    let step = core_step(values.len());
    std::thread::scope(|scope| {
        let f = &f;
        for (k, part) in values.chunks_mut(step).enumerate() {
            scope.spawn(move || f(k * step, part));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_of_a_large_range_draws_the_rows_a_small_range_would() {
        for (n, k, seed) in [(1_000, 100, 0), (50_000, 49_999, 7), (10, 3, 1)] {
            let (dense, sparse) = (partial_shuffle(n, k, seed, true), partial_shuffle(n, k, seed, false));
            assert_eq!(dense, sparse, "n={n} k={k} seed={seed}");
            assert_eq!(sparse.len(), k);
            assert!(sparse.windows(2).all(|w| w[0] < w[1]), "sorted, no row twice");
        }
        let big = sample_rows(100_000_000, 1_000, 3);
        assert_eq!((big.len(), *big.last().unwrap() < 100_000_000), (1_000, true));
        assert!(big.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_regression_label_is_a_histogram_not_classes() {
        let h = label_histogram(&drift::CountedNumbers::of(&[0.0, 1.0, 1.0, 6.0, 12.0, f64::NAN]));
        assert_eq!(h.len(), LABEL_BINS);
        assert_eq!(h.iter().map(|b| b.count).sum::<u64>(), 5, "every finite value once");
        assert_eq!((h[0].value.as_str(), h[0].count), ("[0.0000, 1.0000)", 1));
        assert_eq!((h[1].value.as_str(), h[1].count), ("[1.0000, 2.0000)", 2));
        assert_eq!((h[11].value.as_str(), h[11].count), ("[11.0000, 12.0000]", 1), "the maximum is in the closed last bin");
        assert_eq!(label_histogram(&drift::CountedNumbers::of(&[3.0, 3.0])).len(), 1);
        assert!(label_histogram(&drift::CountedNumbers::of(&[])).is_empty());
    }
}
