//! Fairness on top of the sliced metrics: criteria checked against limits, and per-group
//! thresholds that equalise a criterion (a what-if, never applied to anything).

use strata_app::model::{CriteriaAt, CriterionCheck, MetricsResult, SliceResult, ThresholdSuggestion};

/// The criteria a card checks, with the default limit of each: differences at most 0.1 (0.05
/// for accuracy), and the four-fifths rule (selection-rate ratio at least 0.8).
pub const DEFAULT_LIMITS: [(&str, f64); 6] = [
    ("demographic_parity", 0.1),
    ("disparate_impact", 0.8),
    ("equal_opportunity", 0.1),
    ("equalized_odds", 0.1),
    ("predictive_parity", 0.1),
    ("accuracy_parity", 0.05),
];

/// Parses `name:value,name:value` over the defaults; unknown names or values out of [0, 1] fail.
pub fn parse_limits(text: &str, base: &[(String, f64)]) -> Result<Vec<(String, f64)>, String> {
    let mut out = base.to_vec();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once(':').ok_or_else(|| format!("limit '{part}' is name:value, e.g. demographic_parity:0.1"))?;
        let v: f64 = value.trim().parse().map_err(|_| format!("limit '{part}': '{value}' is not a number"))?;
        if !(0.0..=1.0).contains(&v) {
            return Err(format!("limit '{part}' must be in [0, 1]"));
        }
        let slot = out.iter_mut().find(|(n, _)| n == name.trim()).ok_or_else(|| {
            format!("unknown criterion '{}' (one of: {})", name.trim(), DEFAULT_LIMITS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))
        })?;
        slot.1 = v;
    }
    Ok(out)
}

/// The defaults as owned pairs.
pub fn default_limits() -> Vec<(String, f64)> {
    DEFAULT_LIMITS.iter().map(|(n, v)| (n.to_string(), *v)).collect()
}

/// Checks one threshold's criteria against the limits. A difference passes when it is at most
/// its limit, a ratio (`disparate_impact`) when at least; `uncertain` when the interval straddles
/// the limit, so a pass or fail that noise could flip is not reported as settled.
pub fn check(c: &CriteriaAt, limits: &[(String, f64)]) -> Vec<CriterionCheck> {
    limits
        .iter()
        .filter_map(|(name, limit)| {
            let (source, ratio) = if name == "disparate_impact" { ("demographic_parity", true) } else { (name.as_str(), false) };
            let cr = c.criteria.iter().find(|x| x.name == source)?;
            let e = if ratio { &cr.ratio } else { &cr.difference };
            let v = e.value?;
            let ok = |x: f64| if ratio { x >= *limit } else { x <= *limit };
            let verdict = match (e.lo, e.hi) {
                (Some(lo), Some(hi)) if ok(lo) != ok(hi) => "uncertain",
                _ if ok(v) => "pass",
                _ => "fail",
            };
            Some(CriterionCheck {
                name: name.clone(),
                limit: *limit,
                value: Some(v),
                lo: e.lo,
                hi: e.hi,
                verdict: verdict.to_string(),
                lowest: cr.lowest.clone(),
                highest: cr.highest.clone(),
            })
        })
        .collect()
}

/// Per-group thresholds that bring `metric` (`tpr` for equal opportunity, `positive_rate` for
/// demographic parity) of the spec's groups together with the highest overall accuracy.
///
/// `grid` is a result over a fine threshold grid (e.g. `0:1:0.01`) without bootstrap. For every
/// target value τ on a 0.005 grid, each group takes the threshold whose metric is closest to τ;
/// among the targets whose gap (max − min) is within `tolerance`, the one with the best accuracy
/// wins (without one, the smallest gap). Like fairlearn's ThresholdOptimizer without its
/// randomisation, and like it optimistic: it is fitted on the rows it is judged on.
pub fn suggest_thresholds(grid: &MetricsResult, spec: &str, criterion: &str, min_size: u64, base_threshold: f64, tolerance: f64) -> Option<ThresholdSuggestion> {
    let metric = match criterion {
        "equal_opportunity" => "tpr",
        "demographic_parity" => "positive_rate",
        _ => return None,
    };
    let groups: Vec<&SliceResult> = grid.slices.iter().filter(|s| s.spec == spec && s.count >= min_size.max(1)).collect();
    if groups.len() < 2 || grid.thresholds.is_empty() {
        return None;
    }
    let total: f64 = groups.iter().map(|g| g.weight).sum();
    let value = |g: &SliceResult, j: usize| g.at[j].metrics.get(metric).and_then(|e| e.value);
    let correct = |g: &SliceResult, j: usize| g.at[j].tp + g.at[j].tn;
    let evaluate = |choice: &[usize]| -> Option<(f64, f64)> {
        let vals: Vec<f64> = groups.iter().zip(choice).map(|(g, j)| value(g, *j)).collect::<Option<Vec<f64>>>()?;
        let gap = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max) - vals.iter().copied().fold(f64::INFINITY, f64::min);
        let acc = groups.iter().zip(choice).map(|(g, j)| correct(g, *j)).sum::<f64>() / total;
        Some((gap, acc))
    };
    let base_j = grid.thresholds.iter().enumerate().min_by(|a, b| (a.1 - base_threshold).abs().total_cmp(&(b.1 - base_threshold).abs()))?.0;
    let (base_gap, base_accuracy) = evaluate(&vec![base_j; groups.len()])?;
    let mut best: Option<(bool, f64, f64, Vec<usize>)> = None; // (within tolerance, gap, accuracy, choice)
    for step in 0..=200 {
        let tau = step as f64 * 0.005;
        let choice: Option<Vec<usize>> = groups
            .iter()
            .map(|g| {
                (0..grid.thresholds.len())
                    .filter_map(|j| value(g, j).map(|v| (j, (v - tau).abs(), correct(g, j))))
                    .min_by(|a, b| a.1.total_cmp(&b.1).then(b.2.total_cmp(&a.2)))
                    .map(|(j, _, _)| j)
            })
            .collect();
        let Some(choice) = choice else { continue };
        let Some((gap, acc)) = evaluate(&choice) else { continue };
        let within = gap <= tolerance;
        let better = match &best {
            None => true,
            Some((bw, bg, ba, _)) => match (within, *bw) {
                (true, false) => true,
                (false, true) => false,
                (true, true) => acc > *ba,
                (false, false) => gap < *bg,
            },
        };
        if better {
            best = Some((within, gap, acc, choice));
        }
    }
    let (_, gap, accuracy, choice) = best?;
    Some(ThresholdSuggestion {
        criterion: criterion.to_string(),
        metric: metric.to_string(),
        groups: groups.iter().zip(&choice).map(|(g, j)| (g.label(), grid.thresholds[*j], value(g, *j).unwrap_or(f64::NAN))).collect(),
        gap,
        accuracy,
        base_threshold: grid.thresholds[base_j],
        base_gap,
        base_accuracy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;
    use strata_app::model::Task;

    use crate::eval::sliced::{MetricsRequest, compute, parse_thresholds};

    /// Group b's scores are shifted down: one threshold gives it a much lower TPR.
    fn frame() -> DataFrame {
        let n = 4000;
        let mut s = crate::eval::rng::SplitMix(5);
        let u = |s: &mut crate::eval::rng::SplitMix| (s.next() >> 11) as f64 / (1u64 << 53) as f64;
        let (mut y, mut p, mut g) = (vec![], vec![], vec![]);
        for i in 0..n {
            let label = if u(&mut s) < 0.4 { 1.0 } else { 0.0 };
            let b = i % 2 == 1;
            let score = (0.25 + 0.5 * label + 0.3 * (u(&mut s) - 0.5) - if b { 0.2 } else { 0.0 }).clamp(0.0, 1.0);
            y.push(label);
            p.push(score);
            g.push(if b { "b" } else { "a" });
        }
        df!("label" => y, "score" => p, "g" => g).unwrap()
    }

    fn req(thresholds: &str, bootstrap: usize) -> MetricsRequest {
        MetricsRequest {
            label: "label".into(),
            model: "score".into(),
            class_scores: vec![],
            weight: None,
            specs: vec!["g".into()],
            thresholds: parse_thresholds(thresholds).unwrap(),
            ci: 0.95,
            bootstrap,
            seed: 3,
            baseline: "overall".into(),
            min_size: 1,
            max_slices: 100,
            alpha: 0.05,
        }
    }

    #[test]
    fn criteria_fail_on_a_shifted_group_and_suggested_thresholds_close_the_gap() {
        let df = frame();
        let r = compute(&df, &req("0.5", 100), Task::Binary).unwrap();
        let at = &r.criteria[0];
        assert_eq!((at.spec.as_str(), at.groups), ("g", 2));
        let checks = check(at, &default_limits());
        let eo = checks.iter().find(|c| c.name == "equal_opportunity").unwrap();
        assert_eq!(eo.verdict, "fail", "{eo:?}");
        assert_eq!((eo.lowest.as_str(), eo.highest.as_str()), ("g=b", "g=a"));
        assert!(eo.lo.unwrap() <= eo.value.unwrap() && eo.value.unwrap() <= eo.hi.unwrap());
        let grid = compute(&df, &req("0:1:0.01", 0), Task::Binary).unwrap();
        let s = suggest_thresholds(&grid, "g", "equal_opportunity", 1, 0.5, 0.02).unwrap();
        assert!(s.base_gap > 0.3 && s.gap <= 0.02, "{s:?}");
        let (ta, tb) = (s.groups[0].1, s.groups[1].1);
        assert!(tb < ta, "group b gets the lower threshold: {s:?}");
        assert!(s.accuracy > s.base_accuracy - 0.05);
    }

    #[test]
    fn limits_parse_and_refuse_nonsense() {
        let l = parse_limits("demographic_parity:0.05, disparate_impact:0.9", &default_limits()).unwrap();
        assert_eq!(l[0], ("demographic_parity".to_string(), 0.05));
        assert_eq!(l[1], ("disparate_impact".to_string(), 0.9));
        assert!(parse_limits("nope:0.1", &default_limits()).unwrap_err().contains("unknown criterion"));
        assert!(parse_limits("equal_opportunity:2", &default_limits()).is_err());
    }
}
