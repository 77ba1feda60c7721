//! Residual analysis: where a model's errors are systematic rather than random.
//!
//! Residuals are `label − prediction` (regression) or `label − score` (binary classification, or
//! the deviance residual `sign(y − p)·sqrt(−2·log-likelihood)`). The statistics use every row;
//! the scatter charts get a seeded uniform sample (`sample` points), and the histogram, Q–Q plot
//! and binned means are computed on the server, so a 1M-row run never ships 1M points.
//! Statistics are unweighted (a residual's distribution is a property of the examples).
//! Definitions and their scipy/statsmodels references are in [`super::residual_stats`].

use std::collections::BTreeMap;

use polars::prelude::*;
use strata_app::model::{
    Autocorrelation, BinnedMean, BoxStats, ColumnKind, FeatureAssociation, FeatureResiduals, ResidualsResult, SliceBias, Task,
};

use super::residual_stats as st;
use super::stats::special;
use super::slicing::{Cut, SliceKey, SliceSpec, SpecError, assign, feature_codes};
use super::{EvalError, bh_adjust, f64_values};

/// What to analyse.
#[derive(Clone, Debug)]
pub struct ResidualsRequest {
    pub label: String,
    pub model: String,
    pub task: Task,
    /// `raw` or `deviance` (binary only).
    pub kind: String,
    /// Every feature column with its kind (numeric features get Spearman/Pearson, the others η).
    pub features: Vec<(String, ColumnKind)>,
    /// The feature to chart against the residuals; `None`: the one ranked first (the strongest
    /// association), so the chart opens on what the residuals depend on most.
    pub feature: Option<String>,
    /// A slicing spec for the bias-per-slice table (e.g. `sex` or `age:q5`).
    pub slice: Option<String>,
    /// The column that orders the rows (timestamp, else id), for the autocorrelation.
    pub order_by: Option<String>,
    pub bins: usize,
    pub sample: usize,
    pub nlags: usize,
    pub level: f64,
    pub alpha: f64,
    pub seed: u64,
    pub max_slices: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ResidualsError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error(transparent)]
    Polars(#[from] PolarsError),
}

/// Deviance residual of a binary example: sign(y − p)·sqrt(−2·[y·ln p + (1 − y)·ln(1 − p)]).
pub fn deviance_residual(y: f64, p: f64) -> f64 {
    let pc = p.clamp(1e-15, 1.0 - 1e-15);
    let ll = if y == 1.0 { pc.ln() } else { (1.0 - pc).ln() };
    (y - p).signum() * (-2.0 * ll).sqrt()
}

fn bins_of(x: &[f64], y: &[f64], bins: usize, level: f64) -> Vec<BinnedMean> {
    st::binned_mean(x, y, bins, level)
        .into_iter()
        .map(|b| BinnedMean {
            x_lo: b.x_lo,
            x_hi: b.x_hi,
            x_mean: b.x_mean,
            mean: b.mean,
            lo: Some(b.lo).filter(|v| v.is_finite()),
            hi: Some(b.hi).filter(|v| v.is_finite()),
            n: b.n as u64,
        })
        .collect()
}

/// Linear-interpolated quantile of sorted values.
fn q_sorted(v: &[f64], q: f64) -> f64 {
    super::stats::quantile_sorted(v, q)
}

/// The residuals against a numeric feature: binned means and a sample for the scatter.
fn numeric_view(name: &str, x: &[f64], r: &[f64], sample: &[usize], req: &ResidualsRequest) -> FeatureResiduals {
    let (xs, rs): (Vec<f64>, Vec<f64>) = x.iter().zip(r).filter(|(x, _)| x.is_finite()).map(|(x, r)| (*x, *r)).unzip();
    let (sx, sy) = sample.iter().filter(|i| x[**i].is_finite()).map(|i| (x[*i], r[*i])).unzip();
    FeatureResiduals { feature: name.into(), kind: "numeric".into(), bins: bins_of(&xs, &rs, req.bins, req.level), sample_x: sx, sample_y: sy, boxes: vec![] }
}

/// One box per category value (the 50 most frequent).
fn categorical_view(name: &str, codes: &[u32], labels: &[String], r: &[f64]) -> FeatureResiduals {
    let mut groups: Vec<Vec<f64>> = vec![Vec::new(); labels.len()];
    for (c, v) in codes.iter().zip(r) {
        groups[*c as usize].push(*v);
    }
    let mut order: Vec<usize> = (0..labels.len()).filter(|g| !groups[*g].is_empty()).collect();
    order.sort_by(|a, b| groups[*b].len().cmp(&groups[*a].len()).then(a.cmp(b)));
    order.truncate(50);
    order.sort_unstable();
    let boxes = order
        .into_iter()
        .map(|g| {
            let v = &mut groups[g];
            v.sort_by(f64::total_cmp);
            let (q1, median, q3) = (q_sorted(v, 0.25), q_sorted(v, 0.5), q_sorted(v, 0.75));
            let iqr = q3 - q1;
            let lower_fence = v.iter().copied().find(|x| *x >= q1 - 1.5 * iqr).unwrap_or(q1);
            let upper_fence = v.iter().rev().copied().find(|x| *x <= q3 + 1.5 * iqr).unwrap_or(q3);
            BoxStats { value: labels[g].clone(), n: v.len() as u64, mean: v.iter().sum::<f64>() / v.len() as f64, q1, median, q3, lower_fence, upper_fence }
        })
        .collect();
    FeatureResiduals { feature: name.into(), kind: "categorical".into(), bins: vec![], sample_x: vec![], sample_y: vec![], boxes }
}

/// Bias per slice: the mean residual, its t interval at `level`, the one-sample t test against 0
/// and Benjamini–Hochberg q-values across the slices (significant at `alpha`), from each slice's
/// residuals as (value, rows) — one row each from a run's rows, or an external run's cells (a
/// cell of n identical rows is its residual n times: the same sums).
pub fn slice_bias(spec: &str, keys: &[SliceKey], groups: &[Vec<(f64, u64)>], level: f64, alpha: f64) -> Vec<SliceBias> {
    let mut slices = Vec::new();
    for (key, g) in keys.iter().zip(groups) {
        let k: u64 = g.iter().map(|(_, n)| n).sum();
        if k == 0 {
            continue;
        }
        let m = g.iter().map(|(x, n)| x * *n as f64).sum::<f64>() / k as f64;
        let (mut lo, mut hi, mut p_value) = (None, None, None);
        if k >= 2 {
            let s = (g.iter().map(|(x, n)| (x - m).powi(2) * *n as f64).sum::<f64>() / (k - 1) as f64).sqrt();
            let se = s / (k as f64).sqrt();
            let tq = special::student_t_quantile(0.5 + level / 2.0, (k - 1) as f64);
            lo = Some(m - tq * se);
            hi = Some(m + tq * se);
            p_value = Some(if se > 0.0 { special::student_t_two_sided_p(m / se, (k - 1) as f64) } else if m == 0.0 { 1.0 } else { 0.0 });
        }
        slices.push(SliceBias { spec: spec.to_string(), key: key.iter().cloned().collect::<BTreeMap<_, _>>(), n: k, mean: m, lo, hi, p_value, q_value: None, significant: false });
    }
    let tested: Vec<usize> = (0..slices.len()).filter(|i| slices[*i].p_value.is_some()).collect();
    let qs = bh_adjust(&tested.iter().map(|i| slices[*i].p_value.unwrap_or(1.0)).collect::<Vec<_>>());
    for (i, q) in tested.into_iter().zip(qs) {
        slices[i].q_value = Some(q);
        slices[i].significant = q <= alpha;
    }
    slices
}

/// Bias per slice of the first slicing of `cells`' request ([`slice_bias`]) from its cells: every
/// row of an external run, not its sample. `None` when the cells' scores are grid buckets rather
/// than the rows' own scores (then the residuals would not be the rows').
pub fn bias_of_cells(cells: &super::sliced::Prepared, spec: &str, kind: &str, level: f64, alpha: f64) -> Option<Vec<SliceBias>> {
    if cells.score_grid.is_some() {
        return None;
    }
    let (keys, groups) = cells.slice_cells();
    let groups: Vec<Vec<(f64, u64)>> = groups
        .into_iter()
        .map(|g| {
            g.into_iter()
                .filter(|(y, p, _)| y.is_finite() && p.is_finite())
                .map(|(y, p, n)| (if kind == "deviance" { deviance_residual(y, p) } else { y - p }, n))
                .collect()
        })
        .collect();
    Some(slice_bias(spec, keys, &groups, level, alpha))
}

/// Runs the analysis. Pure: DataFrame in, plain structs out.
pub fn analyse(df: &DataFrame, req: &ResidualsRequest) -> Result<ResidualsResult, ResidualsError> {
    if req.task == Task::Multiclass {
        return Err(ResidualsError::Invalid("residuals need a regression or binary classification run (this one is multiclass)".into()));
    }
    match (req.kind.as_str(), req.task) {
        ("raw", _) | ("deviance", Task::Binary) => {}
        ("deviance", _) => return Err(ResidualsError::Invalid("deviance residuals are for binary classification".into())),
        (k, _) => return Err(ResidualsError::Invalid(format!("kind '{k}' is not one of raw, deviance"))),
    }
    if !(0.5..1.0).contains(&req.level) {
        return Err(ResidualsError::Invalid(format!("level must be in [0.5, 1), got {}", req.level)));
    }
    if !(2..=200).contains(&req.bins) || !(1..=400).contains(&req.nlags) || !(10..=50_000).contains(&req.sample) {
        return Err(ResidualsError::Invalid("bins is 2..=200, nlags 1..=400, sample 10..=50000".into()));
    }
    let y_all = f64_values(df, &req.label)?;
    let p_all = f64_values(df, &req.model)?;
    // Rows with a label and a prediction; every per-row vector below is over these rows.
    let keep: Vec<usize> = (0..df.height()).filter(|i| y_all[*i].is_finite() && p_all[*i].is_finite()).collect();
    let n = keep.len();
    if n < 3 {
        return Err(ResidualsError::Invalid(format!("{n} rows have both a label and a prediction; residuals need at least 3")));
    }
    let pred: Vec<f64> = keep.iter().map(|i| p_all[*i]).collect();
    let r: Vec<f64> = keep
        .iter()
        .map(|i| if req.kind == "deviance" { deviance_residual(y_all[*i], p_all[*i]) } else { y_all[*i] - p_all[*i] })
        .collect();
    let mean = r.iter().sum::<f64>() / n as f64;
    let sd = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let sample = super::sample_rows(n, req.sample, req.seed);
    let pick = |v: &[f64]| -> Vec<f64> { keep.iter().map(|i| v[*i]).collect() };

    let mut vs_prediction = numeric_view(&req.model, &pred, &r, &sample, req);
    vs_prediction.kind = "prediction".into();

    // Histogram over the middle 99.8% (the tails are counted in the end bins).
    let mut sorted = r.clone();
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) = (q_sorted(&sorted, 0.001), q_sorted(&sorted, 0.999));
    let nb = 40usize;
    let width = if hi > lo { (hi - lo) / nb as f64 } else { 1.0 };
    let hist_edges: Vec<f64> = (0..=nb).map(|i| lo + width * i as f64).collect();
    let mut hist_counts = vec![0.0; nb];
    for v in &r {
        let b = (((v - lo) / width).floor().max(0.0) as usize).min(nb - 1);
        hist_counts[b] += 1.0;
    }

    // Normal Q–Q: the line from all rows, at most 400 evenly spaced points for the chart.
    let qq = st::normal_qq(&sorted);
    let line = st::qq_line(&sorted);
    let step = (qq.len() as f64 / 400.0).max(1.0);
    let mut picks: Vec<usize> = (0..qq.len().min(400)).map(|i| ((i as f64 * step) as usize).min(qq.len() - 1)).collect();
    if let Some(&last) = picks.last() {
        if last != qq.len() - 1 {
            picks.push(qq.len() - 1);
        }
    }
    let (qq_theoretical, qq_ordered) = picks.iter().map(|i| qq[*i]).unzip();

    // Every feature's association with the residuals.
    let mut features = Vec::new();
    // The chart of one feature (numeric: binned means and a sample; otherwise boxes per value).
    let view_of = |name: &str, kind: ColumnKind| -> Result<FeatureResiduals, ResidualsError> {
        Ok(if kind == ColumnKind::Numeric {
            numeric_view(name, &pick(&f64_values(df, name)?), &r, &sample, req)
        } else {
            let (codes_all, labels) = feature_codes(df, name, name, &Cut::Values)?;
            let codes: Vec<u32> = keep.iter().map(|i| codes_all[*i]).collect();
            categorical_view(name, &codes, &labels, &r)
        })
    };
    for (name, kind) in &req.features {
        if df.column(name).is_err() {
            return Err(EvalError::NoColumn(name.clone()).into());
        }
        if *kind == ColumnKind::Numeric {
            let x = pick(&f64_values(df, name)?);
            let (xs, rs): (Vec<f64>, Vec<f64>) = x.iter().zip(&r).filter(|(x, _)| x.is_finite()).map(|(x, r)| (*x, *r)).unzip();
            if let Some(s) = st::spearman(&xs, &rs) {
                let pe = st::pearson(&xs, &rs);
                features.push(FeatureAssociation {
                    feature: name.clone(),
                    kind: "numeric".into(),
                    strength: s.r,
                    p_value: s.p_value,
                    pearson: pe.map(|c| c.r),
                    pearson_p_value: pe.map(|c| c.p_value),
                    method: "spearman".into(),
                    n: s.n as u64,
                    q_value: 1.0,
                    significant: false,
                });
            }
        } else {
            let (codes_all, _) = feature_codes(df, name, name, &Cut::Values)?;
            let codes: Vec<u32> = keep.iter().map(|i| codes_all[*i]).collect();
            if let Some(e) = st::correlation_ratio(&codes, &r) {
                features.push(FeatureAssociation {
                    feature: name.clone(),
                    kind: "categorical".into(),
                    strength: e.eta,
                    p_value: e.p_value,
                    pearson: None,
                    pearson_p_value: None,
                    method: "eta".into(),
                    n: e.n as u64,
                    q_value: 1.0,
                    significant: false,
                });
            }
        }
    }
    if let Some(f) = &req.feature {
        if !req.features.iter().any(|(n, _)| n == f) {
            return Err(ResidualsError::Invalid(format!("feature '{f}' is not a feature column of the run")));
        }
    }
    let qs = bh_adjust(&features.iter().map(|f| f.p_value).collect::<Vec<_>>());
    for (f, q) in features.iter_mut().zip(qs) {
        f.q_value = q;
        f.significant = q <= req.alpha;
    }
    features.sort_by(|a, b| b.strength.abs().total_cmp(&a.strength.abs()).then(a.p_value.total_cmp(&b.p_value)));
    let charted = req.feature.clone().or_else(|| features.first().map(|f| f.feature.clone()));
    let feature_view = match charted.and_then(|c| req.features.iter().find(|(n, _)| *n == c)) {
        Some((name, kind)) => Some(view_of(name, *kind)?),
        None => None,
    };

    // Autocorrelation in the run's order (stable: ties keep row order).
    let autocorrelation = match &req.order_by {
        Some(col) => {
            let c = df.column(col).map_err(|_| EvalError::NoColumn(col.clone()))?;
            let key = c.cast(&DataType::Float64).ok().map(|s| s.f64().map(|ca| ca.iter().map(|v| v.unwrap_or(f64::NAN)).collect::<Vec<f64>>())).and_then(Result::ok);
            let mut order: Vec<usize> = (0..n).collect();
            if let Some(key) = key {
                order.sort_by(|a, b| key[keep[*a]].total_cmp(&key[keep[*b]]));
            } else {
                let text = c.cast(&DataType::String)?;
                let ca = text.str()?;
                let vals: Vec<Option<&str>> = ca.iter().collect();
                order.sort_by(|a, b| vals[keep[*a]].cmp(&vals[keep[*b]]));
            }
            let ordered: Vec<f64> = order.iter().map(|i| r[*i]).collect();
            match (st::acf(&ordered, req.nlags.min(n - 1), req.level), st::durbin_watson(&ordered)) {
                (Some(a), Some(dw)) => Some(Autocorrelation {
                    order_by: col.clone(),
                    acf: a.values,
                    lo: a.lo,
                    hi: a.hi,
                    durbin_watson: dw,
                    reading: st::durbin_watson_reading(dw).to_string(),
                }),
                _ => None,
            }
        }
        None => None,
    };

    // Bias per slice: mean residual, t interval, one-sample t test against 0, BH across slices.
    let mut slices = Vec::new();
    if let Some(spec_text) = req.slice.as_deref().filter(|s| !s.trim().is_empty()) {
        let spec = SliceSpec::parse(spec_text)?;
        let a = assign(df, spec_text, &spec, req.max_slices)?;
        let mut groups: Vec<Vec<(f64, u64)>> = vec![Vec::new(); a.keys.len()];
        for (j, i) in keep.iter().enumerate() {
            if let Some(s) = a.slice_of_row.get(*i) {
                groups[s as usize].push((r[j], 1));
            }
        }
        slices = slice_bias(spec_text, &a.keys, &groups, req.level, req.alpha);
    }

    Ok(ResidualsResult {
        model: req.model.clone(),
        task: req.task.as_str().to_string(),
        kind: req.kind.clone(),
        n: n as u64,
        mean,
        sd,
        sampled: sample.len() as u64,
        vs_prediction,
        hist_edges,
        hist_counts,
        qq_theoretical,
        qq_ordered,
        qq_slope: line.map_or(f64::NAN, |l| l.slope),
        qq_intercept: line.map_or(f64::NAN, |l| l.intercept),
        qq_r: line.map_or(f64::NAN, |l| l.r),
        features,
        feature: feature_view,
        autocorrelation,
        slice_spec: req.slice.clone().filter(|s| !s.trim().is_empty()),
        slices,
        row_sample: None,
        slices_of_rows: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::rng::SplitMix;

    #[test]
    fn bh_matches_the_step_up_rule() {
        // p = 0.01, 0.04, 0.03, 0.2 (m = 4): p·m/rank = 0.04, 0.0533, 0.06, 0.2 in sorted order,
        // and the running minimum from the top makes rank 2 equal rank 3.
        let q = bh_adjust(&[0.01, 0.04, 0.03, 0.2]);
        assert!((q[0] - 0.04).abs() < 1e-12 && (q[3] - 0.2).abs() < 1e-12);
        assert!((q[1] - 0.04 * 4.0 / 3.0).abs() < 1e-12 && (q[2] - 0.04 * 4.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn deviance_residuals_follow_the_sign_of_the_error() {
        assert!(deviance_residual(1.0, 0.9) > 0.0 && deviance_residual(0.0, 0.9) < 0.0);
        assert!((deviance_residual(1.0, 0.5) - (2.0f64 * 2.0f64.ln()).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn finds_the_feature_the_residuals_depend_on() {
        let n = 2000;
        let mut rng = SplitMix(3);
        let u = |rng: &mut SplitMix| (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        let age: Vec<f64> = (0..n).map(|_| 20.0 + 50.0 * u(&mut rng)).collect();
        let noise: Vec<f64> = (0..n).map(|_| u(&mut rng)).collect();
        let group: Vec<&str> = (0..n).map(|i| if i % 2 == 0 { "a" } else { "b" }).collect();
        // The model misses an age effect; noise and group are unrelated to the error.
        let label: Vec<f64> = (0..n).map(|i| 10.0 + 0.1 * age[i] + noise[i] - 0.5).collect();
        let pred = vec![13.5; n];
        let df = df!("age" => &age, "noise" => &noise, "group" => &group, "label" => &label, "pred" => &pred, "t" => (0..n as i64).collect::<Vec<_>>()).unwrap();
        let req = ResidualsRequest {
            label: "label".into(),
            model: "pred".into(),
            task: Task::Regression,
            kind: "raw".into(),
            features: vec![("age".into(), ColumnKind::Numeric), ("noise".into(), ColumnKind::Numeric), ("group".into(), ColumnKind::Categorical)],
            feature: Some("group".into()),
            slice: Some("age:q4".into()),
            order_by: Some("t".into()),
            bins: 10,
            sample: 500,
            nlags: 20,
            level: 0.95,
            alpha: 0.05,
            seed: 1,
            max_slices: 100,
        };
        let out = analyse(&df, &req).unwrap();
        assert_eq!(out.features[0].feature, "age");
        assert!(out.features[0].significant && out.features[0].strength > 0.9);
        assert!(out.features.iter().filter(|f| f.feature != "age").all(|f| f.strength.abs() < 0.2));
        assert_eq!(out.sampled, 500);
        assert_eq!(out.feature.as_ref().unwrap().boxes.len(), 2);
        // The youngest and oldest quarters are biased (opposite signs), all flagged.
        assert_eq!(out.slices.len(), 4);
        assert!(out.slices.iter().filter(|s| s.significant).count() >= 2);
        assert!(out.slices.first().unwrap().mean < 0.0 && out.slices.last().unwrap().mean > 0.0);
        assert_eq!(out.hist_counts.iter().sum::<f64>(), n as f64);
        let ac = out.autocorrelation.unwrap();
        assert_eq!(ac.acf.len(), 21);
        assert!((ac.acf[0] - 1.0).abs() < 1e-12);
    }
}
