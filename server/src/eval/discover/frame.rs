//! A run's frame → the search's inputs: features encoded as codes (categoricals by value, numeric
//! features cut at quantile edges whose ranges are items too), the metric as per-row terms; and a
//! found slice back into the filter and slices-view spec that select the same rows.

use polars::prelude::*;

use super::{Feature, Item, Target, Worse};
use crate::eval::slicing::{Cond, Cut, MISSING, feature_codes, range_label};
use crate::eval::sliced::clipped_neg_ln;
use crate::eval::{EvalError, f64_values, weights};
use strata_app::model::Task;

/// A numeric feature's cut: bucket `i` is `[edges[i-1], edges[i])` with open ends at ±inf; the
/// code after the last bucket is the missing values.
#[derive(Clone, Debug)]
pub struct Edges(pub Vec<f64>);

/// The encoded features, with the numeric ones' edges (`None` for a categorical).
pub struct Encoded {
    pub features: Vec<Feature>,
    pub edges: Vec<Option<Edges>>,
}

/// Encodes `columns` of the frame: categoricals (and booleans) by value, numeric columns with more
/// than `buckets` distinct values into `buckets` quantile buckets (inner edges at the k/`buckets`
/// quantiles, numpy's linear interpolation, as the slices view's `:q` cut), fewer distinct values
/// one bucket each (still ordered, so ranges of them are items).
pub fn encode(df: &DataFrame, columns: &[(String, bool)], buckets: usize) -> Result<Encoded, EvalError> {
    let mut features = Vec::with_capacity(columns.len());
    let mut all_edges = Vec::with_capacity(columns.len());
    for (name, numeric) in columns {
        if !numeric {
            let (codes, labels) = feature_codes(df, name, name, &Cut::Values).map_err(|e| EvalError::Request(e.to_string()))?;
            features.push(Feature { name: name.clone(), codes, labels, ordered_buckets: None });
            all_edges.push(None);
            continue;
        }
        let values = f64_values(df, name)?;
        let mut present: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        present.sort_by(f64::total_cmp);
        let mut distinct = present.clone();
        distinct.dedup();
        let mut edges: Vec<f64> = if distinct.len() <= buckets {
            distinct.iter().skip(1).copied().collect()
        } else {
            (1..buckets).map(|i| crate::eval::stats::quantile_sorted(&present, i as f64 / buckets as f64)).collect()
        };
        edges.dedup();
        if let Some(&min) = present.first() {
            edges.retain(|e| *e > min && e.is_finite());
        }
        let b = edges.len() + 1;
        let codes = values.iter().map(|x| if x.is_finite() { edges.partition_point(|e| *e <= *x) as u32 } else { b as u32 }).collect();
        let mut labels: Vec<String> = (0..b).map(|i| range_label(lo_of(&edges, i), hi_of(&edges, i))).collect();
        labels.push(MISSING.to_string());
        features.push(Feature { name: name.clone(), codes, labels, ordered_buckets: Some(b as u32) });
        all_edges.push(Some(Edges(edges)));
    }
    Ok(Encoded { features, edges: all_edges })
}

fn lo_of(edges: &[f64], i: usize) -> f64 {
    if i == 0 { f64::NEG_INFINITY } else { edges[i - 1] }
}

fn hi_of(edges: &[f64], i: usize) -> f64 {
    edges.get(i).copied().unwrap_or(f64::INFINITY)
}

impl Encoded {
    /// The condition an item stands for.
    pub fn cond(&self, item: &Item) -> Cond {
        let f = &self.features[item.feature as usize];
        match (&self.edges[item.feature as usize], f.ordered_buckets) {
            (Some(Edges(edges)), Some(b)) if item.lo < b => Cond::Range { column: f.name.clone(), lo: lo_of(edges, item.lo as usize), hi: hi_of(edges, item.hi as usize) },
            _ => Cond::Eq { column: f.name.clone(), value: f.labels[item.lo as usize].clone() },
        }
    }

    /// The filter selecting a slice's rows (`sex=Female & age in [25, 45)`), with full-precision
    /// numbers so that it selects exactly the rows the search counted.
    pub fn filter(&self, items: &[Item]) -> String {
        items
            .iter()
            .map(|it| match self.cond(it) {
                Cond::Eq { column, value } => format!("{column}={value}"),
                Cond::OneOf { column, values } => format!("{column} in {{{}}}", values.join(", ")),
                Cond::Range { column, lo, hi } => {
                    let end = |x: f64| if x.is_infinite() { if x > 0.0 { "inf".to_string() } else { "-inf".to_string() } } else { format!("{x}") };
                    format!("{column} in {}{}, {})", if lo.is_infinite() { "(" } else { "[" }, end(lo), end(hi))
                }
            })
            .collect::<Vec<_>>()
            .join(" & ")
    }

    /// The slices-view spec whose slices include this one (a cross of its features; a range cut at
    /// its own ends, so its bucket is exactly the range and keyed by the same label).
    pub fn spec(&self, items: &[Item]) -> String {
        items
            .iter()
            .map(|it| {
                let name = &self.features[it.feature as usize].name;
                match (self.cond(it), &self.edges[it.feature as usize]) {
                    (Cond::Range { lo, hi, .. }, _) => {
                        let ends: Vec<String> = [lo, hi].iter().filter(|x| x.is_finite()).map(|x| format!("{x}")).collect();
                        format!("{name}:[{}]", ends.join(","))
                    }
                    // A numeric feature's missing values: any cut has a (missing) bucket.
                    (Cond::Eq { .. }, Some(Edges(edges))) if !edges.is_empty() => format!("{name}:[{}]", edges.iter().map(|x| format!("{x}")).collect::<Vec<_>>().join(",")),
                    _ => name.clone(),
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Metrics the search supports for a task, the default first. `error_rate` (1 − accuracy) is the
/// search's own name for the share of wrong decisions; the others are the registry's.
pub fn metric_names(task: Task) -> &'static [&'static str] {
    match task {
        Task::Binary => &["error_rate", "accuracy", "fpr", "fnr", "tpr", "tnr", "precision", "fdr", "for", "log_loss", "brier_score", "expected_calibration_error", "auc_roc"],
        Task::Regression => &["mae", "mse", "rmse", "mean_residual"],
        Task::Multiclass => &["error_rate", "accuracy"],
    }
}

/// The per-row terms of `metric` for one model, and which direction is worse.
pub fn target(df: &DataFrame, task: Task, label: &str, model: &str, weight: Option<&str>, metric: &str, threshold: f64) -> Result<(Target, Worse), EvalError> {
    let w = weights(df, weight)?;
    let bad = || EvalError::Request(format!("slice discovery does not support metric '{metric}' for a {} run (one of: {})", task.as_str(), metric_names(task).join(", ")));
    if task == Task::Multiclass {
        let text = |name: &str| -> Result<Vec<Option<String>>, EvalError> {
            let c = df.column(name).map_err(|_| EvalError::NoColumn(name.to_string()))?;
            Ok(c.cast(&DataType::String)?.str()?.iter().map(|v| v.map(str::to_string)).collect())
        };
        let (y, p) = (text(label)?, text(model)?);
        let right: Vec<f64> = y.iter().zip(&p).map(|(a, b)| f64::from(a.is_some() && a == b)).collect();
        return match metric {
            "error_rate" => Ok((Target::Ratio { num: right.iter().zip(&w).map(|(r, w)| (1.0 - r) * w).collect(), den: w, sqrt: false }, Worse::Higher)),
            "accuracy" => Ok((Target::Ratio { num: right.iter().zip(&w).map(|(r, w)| r * w).collect(), den: w, sqrt: false }, Worse::Lower)),
            _ => Err(bad()),
        };
    }
    let (y, p) = (f64_values(df, label)?, f64_values(df, model)?);
    if task == Task::Regression {
        let per_row = |f: &dyn Fn(f64) -> f64| -> Vec<f64> { y.iter().zip(&p).zip(&w).map(|((y, p), w)| w * f(y - p)).collect() };
        return match metric {
            "mae" => Ok((Target::Ratio { num: per_row(&|r| r.abs()), den: w, sqrt: false }, Worse::Higher)),
            "mse" => Ok((Target::Ratio { num: per_row(&|r| r * r), den: w, sqrt: false }, Worse::Higher)),
            "rmse" => Ok((Target::Ratio { num: per_row(&|r| r * r), den: w, sqrt: true }, Worse::Higher)),
            "mean_residual" => Ok((Target::Ratio { num: per_row(&|r| r), den: w, sqrt: false }, Worse::FartherFromZero)),
            _ => Err(bad()),
        };
    }
    // Binary: ŷ = 1 when the score reaches the threshold (as the slices view counts).
    let pos: Vec<bool> = p.iter().map(|p| *p >= threshold).collect();
    let is1: Vec<bool> = y.iter().map(|y| *y == 1.0).collect();
    let ratio = |num: &dyn Fn(bool, bool) -> bool, den: &dyn Fn(bool, bool) -> bool| Target::Ratio {
        num: (0..w.len()).map(|i| if num(is1[i], pos[i]) { w[i] } else { 0.0 }).collect(),
        den: (0..w.len()).map(|i| if den(is1[i], pos[i]) { w[i] } else { 0.0 }).collect(),
        sqrt: false,
    };
    let all = |_: bool, _: bool| true;
    Ok(match metric {
        "error_rate" => (ratio(&|y, p| y != p, &all), Worse::Higher),
        "accuracy" => (ratio(&|y, p| y == p, &all), Worse::Lower),
        "fpr" => (ratio(&|y, p| !y && p, &|y, _| !y), Worse::Higher),
        "tnr" => (ratio(&|y, p| !y && !p, &|y, _| !y), Worse::Lower),
        "fnr" => (ratio(&|y, p| y && !p, &|y, _| y), Worse::Higher),
        "tpr" => (ratio(&|y, p| y && p, &|y, _| y), Worse::Lower),
        "precision" => (ratio(&|y, p| y && p, &|_, p| p), Worse::Lower),
        "fdr" => (ratio(&|y, p| !y && p, &|_, p| p), Worse::Higher),
        "for" => (ratio(&|y, p| y && !p, &|_, p| !p), Worse::Higher),
        "log_loss" => (
            Target::Ratio { num: (0..w.len()).map(|i| w[i] * clipped_neg_ln(if is1[i] { p[i] } else { 1.0 - p[i] })).collect(), den: w, sqrt: false },
            Worse::Higher,
        ),
        "brier_score" => (Target::Ratio { num: (0..w.len()).map(|i| w[i] * (y[i] - p[i]).powi(2)).collect(), den: w, sqrt: false }, Worse::Higher),
        "expected_calibration_error" => (Target::Calibration { y, p, w }, Worse::Higher),
        "auc_roc" => (Target::Auc { y: is1, score: p, w }, Worse::Lower),
        _ => return Err(bad()),
    })
}
