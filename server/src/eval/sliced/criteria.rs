//! Group-fairness criteria across a spec's slices (fairlearn's differences and ratios).

use super::*;

/// The fairness criteria and the confusion metric(s) each compares.
pub(super) const CRITERIA: [(&str, &[&str]); 5] = [
    ("demographic_parity", &["positive_rate"]),
    ("equal_opportunity", &["tpr"]),
    ("equalized_odds", &["tpr", "fpr"]),
    ("predictive_parity", &["precision"]),
    ("accuracy_parity", &["accuracy"]),
];

/// Difference (max − min) and ratio (min / max) of a metric across groups, as fairlearn's
/// `*_difference` / `*_ratio` with `method="between_groups"`; for several metrics (equalized odds)
/// the largest difference and the smallest ratio. Also the groups at the extremes of the first.
pub(super) fn spread(value: impl Fn(usize, usize) -> Option<f64>, groups: &[usize], slots: &[usize]) -> Option<(f64, f64, usize, usize)> {
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
pub(super) fn fairness_criteria(prep: &Prepared, req: &MetricsRequest, thresholds: &[f64], point: &[Vec<Vec<Option<f64>>>], replicates: &[Vec<f64>], offsets: &[Vec<usize>]) -> Vec<strata_app::model::CriteriaAt> {
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
