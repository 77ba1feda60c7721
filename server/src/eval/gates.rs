//! Validation gates: judge a candidate run's sliced metrics against value bounds and against a
//! baseline run, slice by slice, the way TFMA's model validation "blesses" a model.
//!
//! Pure: two [`MetricsResult`]s (the candidate's, and the baseline's computed with the same
//! request) and a [`GateSet`] in, verdicts out. The caller computes the metrics with the specs and
//! thresholds [`requirements`] asks for.
//!
//! A change is judged in the metric's "worse" direction: down for metrics where higher is better
//! (AUC, TPR, accuracy, R², …), up for error rates and losses (FPR, log loss, MAE, …), and in
//! either direction (absolute change) for metrics with no better side (selection rate, mean
//! score, base rate) — and for the mean residual, whose size |bias| is what gets worse.
//! `significant_drop` combines the two runs' interval half-widths in quadrature (the runs are
//! independent samples, and the intervals are close to symmetric), which is an approximation
//! written down here and in the rule's text.

use std::collections::BTreeMap;

use strata_app::model::{Estimate, Gate, GateOutcome, GateSet, MetricsResult, SliceResult, SliceVerdict, Verdict};

use strata_app::metrics::{self as registry, Family};
pub use strata_app::metrics::{Direction, direction, worsening};

/// Is `metric` a name the engine can produce (per-class names like `recall[>50K]` included)?
fn known_metric(metric: &str) -> bool {
    registry::lookup(metric).is_some()
}

/// Does a run of `task` produce `metric` for a model with `scored_classes` per-class score
/// columns (0 for a model that only predicts)? (Checked when a run is validated: a gate on a
/// metric the run does not have would otherwise be skipped, and the run pass unjudged.)
pub fn metric_of_task(metric: &str, task: strata_app::model::Task, scored_classes: usize) -> bool {
    registry::of_task(task, metric, scored_classes)
}

/// Checks a gate set before it is stored; the message names the gate and the problem.
pub fn check(set: &GateSet) -> Result<(), String> {
    if set.gates.is_empty() {
        return Err("a gate set needs at least one gate".into());
    }
    if set.gates.len() > 100 {
        return Err("at most 100 gates".into());
    }
    if !(0.5..1.0).contains(&set.ci) {
        return Err(format!("ci must be in [0.5, 1), got {}", set.ci));
    }
    if !(0.0..=1.0).contains(&set.threshold) {
        return Err(format!("threshold must be in [0, 1], got {}", set.threshold));
    }
    for (i, g) in set.gates.iter().enumerate() {
        let which = format!("gate {} ({})", i + 1, g.metric);
        if let Some(d) = &g.discover {
            check_discover(g, d).map_err(|e| format!("{which}: {e}"))?;
            continue;
        }
        if !known_metric(&g.metric) {
            return Err(format!("{which}: unknown metric '{}'", g.metric));
        }
        if g.min.is_none() && g.max.is_none() && g.max_drop.is_none() && !g.significant_drop && g.max_gap_increase.is_none() {
            return Err(format!("{which}: give at least one of min, max, max_drop, significant_drop, max_gap_increase"));
        }
        if g.max_gap_increase.is_some() && is_overall(&g.slice) {
            return Err(format!("{which}: max_gap_increase needs a slicing spec (a gap is between slices), not 'overall'"));
        }
        if let Some(t) = g.threshold
            && !(0.0..=1.0).contains(&t)
        {
            return Err(format!("{which}: threshold must be in [0, 1], got {t}"));
        }
        for (name, v) in [("min", g.min), ("max", g.max), ("max_drop", g.max_drop), ("max_gap_increase", g.max_gap_increase)] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(format!("{which}: {name} must be a finite number"));
            }
        }
        if g.slice.trim().is_empty() {
            return Err(format!("{which}: empty slice (use 'overall')"));
        }
        // Quantile and equal-width buckets are cut from each run's own values, so a slice of the
        // candidate has no namesake in the baseline: per-slice changes need fixed edges.
        let relative_cut = g.slice.split(',').any(|f| f.split_once(':').is_some_and(|(_, cut)| cut.starts_with('q') || cut.starts_with('w')));
        if relative_cut && (g.max_drop.is_some() || g.significant_drop) {
            return Err(format!(
                "{which}: '{}' cuts buckets from each run's own values, so its slices cannot be compared with the baseline's; use fixed edges such as age:[18,30,45,65]",
                g.slice.trim()
            ));
        }
    }
    let (specs, _) = requirements(set);
    if specs.len() > 10 {
        return Err(format!("at most 10 different slicings in one gate set, got {}", specs.len()));
    }
    Ok(())
}

/// A discovery gate: a metric the search has, its bounds, and nothing of a fixed-slice gate.
fn check_discover(g: &Gate, d: &strata_app::model::DiscoverRule) -> Result<(), String> {
    use strata_app::model::Task;
    let supported = [Task::Binary, Task::Regression, Task::Multiclass].iter().any(|t| crate::eval::discover::frame::metric_names(*t).contains(&g.metric.as_str()));
    if !supported {
        return Err(format!("slice discovery has no metric '{}'", g.metric));
    }
    if !is_overall(&g.slice) || g.min.is_some() || g.max.is_some() || g.max_drop.is_some() || g.significant_drop || g.max_gap_increase.is_some() {
        return Err("a discovery gate has only discover {min_support, max_gap, level, fdr} (and a threshold): no slice, min, max or change bounds".into());
    }
    if d.min_support == 0 || !d.max_gap.is_finite() || d.max_gap < 0.0 {
        return Err("discover needs min_support >= 1 and a finite max_gap >= 0".into());
    }
    if d.level.is_some_and(|l| !(1..=3).contains(&l)) || d.fdr.is_some_and(|f| !(f > 0.0 && f < 1.0)) {
        return Err("discover's level is 1..=3 and its fdr in (0, 1)".into());
    }
    if let Some(t) = g.threshold
        && !(0.0..=1.0).contains(&t)
    {
        return Err(format!("threshold must be in [0, 1], got {t}"));
    }
    Ok(())
}

/// The verdict of a discovery gate from the slices the search found (best first): a significant
/// slice whose gap to the rest exceeds `max_gap` fails; the rule passes with none.
pub fn judge_discovered(g: &Gate, d: &strata_app::model::DiscoverRule, found: &strata_app::model::DiscoveryResult) -> GateOutcome {
    let fdr = d.fdr.unwrap_or(0.05);
    let rule = format!(
        "no slice of at least {} rows (up to {} features) has {} worse than the rest by more than {} (significant at FDR {} %; {} slices examined)",
        d.min_support,
        d.level.unwrap_or(3),
        g.metric,
        fmt(d.max_gap),
        fmt(fdr * 100.0),
        found.examined
    );
    let mut slices: Vec<SliceVerdict> = found
        .slices
        .iter()
        .filter(|s| s.gap.value > d.max_gap)
        .map(|s| SliceVerdict {
            slice: s.filter.clone(),
            count: s.count,
            value: Some(s.metric.value),
            lo: Some(s.metric.lo),
            hi: Some(s.metric.hi),
            baseline: Some(s.complement.value),
            verdict: Verdict::Fail,
            reason: format!("{} vs {} on the rest: gap {} > {} (q = {:.1e})", fmt(s.metric.value), fmt(s.complement.value), fmt(s.gap.value), fmt(d.max_gap), s.q_value),
        })
        .collect();
    let verdict = if slices.is_empty() { Verdict::Pass } else { Verdict::Fail };
    if slices.is_empty() {
        slices.push(SliceVerdict {
            slice: "every slice found".into(),
            count: found.rows,
            value: Some(found.overall.value),
            lo: Some(found.overall.lo),
            hi: Some(found.overall.hi),
            baseline: None,
            verdict: Verdict::Pass,
            reason: match found.slices.iter().map(|s| s.gap.value).reduce(f64::max) {
                Some(worst) => format!("largest significant gap {} ≤ {}", fmt(worst), fmt(d.max_gap)),
                None => "no significantly worse slice".into(),
            },
        });
    }
    GateOutcome { gate: g.clone(), rule, verdict, slices }
}

fn is_overall(spec: &str) -> bool {
    spec.trim().is_empty() || spec.trim() == "overall"
}

/// The slicing specs and thresholds the metrics must be computed with.
pub fn requirements(set: &GateSet) -> (Vec<String>, Vec<f64>) {
    let mut specs: Vec<String> = vec![];
    let mut thresholds: Vec<f64> = vec![set.threshold];
    for g in &set.gates {
        let s = g.slice.trim().to_string();
        if !is_overall(&s) && !specs.contains(&s) {
            specs.push(s);
        }
        let t = g.threshold.unwrap_or(set.threshold);
        if !thresholds.iter().any(|x| (x - t).abs() < 1e-12) {
            thresholds.push(t);
        }
    }
    // The engine walks thresholds in ascending order.
    thresholds.sort_by(f64::total_cmp);
    (specs, thresholds)
}

/// A slice's estimate of a metric (threshold-free, or at the threshold).
fn estimate<'a>(s: &'a SliceResult, metric: &str, threshold: f64) -> Option<&'a Estimate> {
    s.metrics.get(metric).or_else(|| s.at.iter().find(|a| (a.threshold - threshold).abs() < 1e-9).and_then(|a| a.metrics.get(metric)))
}

fn slices_of<'a>(r: &'a MetricsResult, spec: &str) -> Vec<&'a SliceResult> {
    if is_overall(spec) {
        r.slices.iter().filter(|s| s.key.is_empty()).collect()
    } else {
        r.slices.iter().filter(|s| s.spec == spec.trim() && !s.key.is_empty()).collect()
    }
}

fn fmt(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

/// The rule in words.
pub fn describe(g: &Gate, set: &GateSet) -> String {
    let at = if g.threshold.is_some() || !is_threshold_free(&g.metric) { format!("@{}", fmt(g.threshold.unwrap_or(set.threshold))) } else { String::new() };
    let name = format!("{}{at}", g.metric);
    let mut parts = vec![];
    if let Some(m) = g.min {
        parts.push(format!("{name} ≥ {}", fmt(m)));
    }
    if let Some(m) = g.max {
        parts.push(format!("{name} ≤ {}", fmt(m)));
    }
    if let Some(d) = g.max_drop {
        parts.push(format!("{name} may not get worse than the baseline by more than {}", fmt(d)));
    }
    if g.significant_drop {
        parts.push(format!("{name} may not be significantly worse than the baseline (at {}%)", fmt(set.ci * 100.0)));
    }
    let on = if is_overall(&g.slice) { "overall".to_string() } else { format!("on every {} slice", g.slice.trim()) };
    let mut text = if parts.is_empty() { String::new() } else { format!("{} {on}", parts.join("; ")) };
    if let Some(d) = g.max_gap_increase {
        let gap = format!("the {name} gap across {} slices may not grow by more than {}", g.slice.trim(), fmt(d));
        text = if text.is_empty() { gap } else { format!("{text}; {gap}") };
    }
    text
}

/// A metric some family reports without a threshold (gate texts show no `@t` for it).
fn is_threshold_free(metric: &str) -> bool {
    registry::METRICS.iter().any(|m| m.name == metric && m.family != Family::AtThreshold) || registry::find(Family::Multiclass, metric).is_some()
}

/// Judges every gate. `baseline` is the baseline run's result for the same request, if any.
pub fn evaluate(set: &GateSet, candidate: &MetricsResult, baseline: Option<&MetricsResult>) -> Vec<GateOutcome> {
    // Discovery gates are judged on the search's result (`judge_discovered`), by the caller.
    set.gates.iter().filter(|g| g.discover.is_none()).map(|g| evaluate_gate(g, set, candidate, baseline)).collect()
}

fn evaluate_gate(g: &Gate, set: &GateSet, candidate: &MetricsResult, baseline: Option<&MetricsResult>) -> GateOutcome {
    let t = g.threshold.unwrap_or(set.threshold);
    let base_slices: BTreeMap<&BTreeMap<String, String>, &SliceResult> =
        baseline.map(|b| slices_of(b, &g.slice).into_iter().map(|s| (&s.key, s)).collect()).unwrap_or_default();
    let wants_change = g.max_drop.is_some() || g.significant_drop;
    let per_slice = wants_change || g.min.is_some() || g.max.is_some();
    let mut verdicts = vec![];
    for s in slices_of(candidate, &g.slice).into_iter().filter(|_| per_slice) {
        let e = estimate(s, &g.metric, t);
        let (value, lo, hi) = (e.and_then(|e| e.value), e.and_then(|e| e.lo), e.and_then(|e| e.hi));
        // A baseline slice too small to judge is no baseline value.
        let b = base_slices.get(&s.key).copied().filter(|b| b.count >= set.min_size);
        let be = b.and_then(|b| estimate(b, &g.metric, t));
        let bvalue = be.and_then(|e| e.value);
        let mut v = SliceVerdict { slice: s.label(), count: s.count, value, lo, hi, baseline: bvalue, verdict: Verdict::Pass, reason: String::new() };
        if s.count < set.min_size {
            v.verdict = Verdict::Skipped;
            v.reason = format!("{} rows, fewer than min_size {}", s.count, set.min_size);
            verdicts.push(v);
            continue;
        }
        let Some(x) = value else {
            v.verdict = Verdict::Skipped;
            v.reason = "undefined on this slice".into();
            verdicts.push(v);
            continue;
        };
        let mut fails = vec![];
        let mut notes = vec![];
        if let Some(m) = g.min {
            if x < m { fails.push(format!("{} < {}", fmt(x), fmt(m))) } else { notes.push(format!("{} ≥ {}", fmt(x), fmt(m))) }
        }
        if let Some(m) = g.max {
            if x > m { fails.push(format!("{} > {}", fmt(x), fmt(m))) } else { notes.push(format!("{} ≤ {}", fmt(x), fmt(m))) }
        }
        if wants_change {
            match bvalue {
                None => notes.push("no baseline value to compare with".into()),
                Some(bx) => {
                    let worse = worsening(&g.metric, x, bx);
                    if let Some(d) = g.max_drop {
                        if worse > d + 1e-12 {
                            fails.push(format!("worse than the baseline {} by {} (allowed {})", fmt(bx), fmt(worse), fmt(d)));
                        } else {
                            notes.push(format!("change {} within {}", fmt(-worse), fmt(d)));
                        }
                    }
                    if g.significant_drop {
                        let hw = |e: Option<&Estimate>| e.and_then(|e| Some((e.hi? - e.lo?) / 2.0));
                        match (hw(e), hw(be)) {
                            (Some(a), Some(c)) => {
                                let allowed = (a * a + c * c).sqrt();
                                if worse > allowed + 1e-12 {
                                    fails.push(format!("significantly worse than the baseline {} (by {}, interval ±{})", fmt(bx), fmt(worse), fmt(allowed)));
                                } else {
                                    notes.push(format!("change {} within ±{}", fmt(-worse), fmt(allowed)));
                                }
                            }
                            _ => notes.push("no interval to judge significance".into()),
                        }
                    }
                }
            }
        }
        let only_change_without_baseline = g.min.is_none() && g.max.is_none() && bvalue.is_none();
        if !fails.is_empty() {
            v.verdict = Verdict::Fail;
            v.reason = fails.join("; ");
        } else if only_change_without_baseline && wants_change {
            v.verdict = Verdict::Skipped;
            v.reason = "no baseline value to compare with".into();
        } else {
            v.reason = notes.join("; ");
        }
        verdicts.push(v);
    }
    if let Some(allowed) = g.max_gap_increase {
        verdicts.push(gap_verdict(g, set, t, allowed, candidate, baseline));
    }
    let verdict = if verdicts.iter().any(|v| v.verdict == Verdict::Fail) {
        Verdict::Fail
    } else if verdicts.iter().any(|v| v.verdict == Verdict::Pass) {
        Verdict::Pass
    } else {
        Verdict::Skipped
    };
    GateOutcome { gate: g.clone(), rule: describe(g, set), verdict, slices: verdicts }
}

/// The spread (max − min) of a metric across a spec's slices of at least `min_size` rows.
fn gap(r: &MetricsResult, spec: &str, metric: &str, t: f64, min_size: u64) -> Option<(f64, u64)> {
    let values: Vec<(f64, u64)> = slices_of(r, spec)
        .into_iter()
        .filter(|s| s.count >= min_size)
        .filter_map(|s| estimate(s, metric, t).and_then(|e| e.value).map(|v| (v, s.count)))
        .collect();
    if values.len() < 2 {
        return None;
    }
    let max = values.iter().map(|v| v.0).fold(f64::NEG_INFINITY, f64::max);
    let min = values.iter().map(|v| v.0).fold(f64::INFINITY, f64::min);
    Some((max - min, values.iter().map(|v| v.1).sum()))
}

fn gap_verdict(g: &Gate, set: &GateSet, t: f64, allowed: f64, candidate: &MetricsResult, baseline: Option<&MetricsResult>) -> SliceVerdict {
    let c = gap(candidate, &g.slice, &g.metric, t, set.min_size);
    let b = baseline.and_then(|b| gap(b, &g.slice, &g.metric, t, set.min_size));
    let mut v = SliceVerdict {
        slice: format!("gap across {}", g.slice.trim()),
        count: c.map(|c| c.1).unwrap_or(0),
        value: c.map(|c| c.0),
        lo: None,
        hi: None,
        baseline: b.map(|b| b.0),
        verdict: Verdict::Skipped,
        reason: String::new(),
    };
    match (c, b) {
        (None, _) => v.reason = "fewer than two slices large enough to compare".into(),
        (Some(_), None) => v.reason = "no baseline gap to compare with".into(),
        (Some((cg, _)), Some((bg, _))) => {
            let grew = cg - bg;
            if grew > allowed + 1e-12 {
                v.verdict = Verdict::Fail;
                v.reason = format!("gap {} grew by {} from the baseline's {} (allowed {})", fmt(cg), fmt(grew), fmt(bg), fmt(allowed));
            } else {
                v.verdict = Verdict::Pass;
                v.reason = format!("gap {} vs the baseline's {} (change {} within {})", fmt(cg), fmt(bg), fmt(grew), fmt(allowed));
            }
        }
    }
    v
}

/// One line per failing slice, e.g. `auc_roc on race=Black: 0.712 < 0.8`.
pub fn failures(outcomes: &[GateOutcome], set: &GateSet) -> Vec<String> {
    let mut out = vec![];
    for o in outcomes {
        for s in o.slices.iter().filter(|s| s.verdict == Verdict::Fail) {
            let at = if is_threshold_free(&o.gate.metric) && o.gate.threshold.is_none() { String::new() } else { format!("@{}", fmt(o.gate.threshold.unwrap_or(set.threshold))) };
            out.push(format!("{}{at} on {}: {}", o.gate.metric, s.slice, s.reason));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_app::model::AtThreshold;

    fn est(v: f64, hw: f64) -> Estimate {
        Estimate { value: Some(v), lo: Some(v - hw), hi: Some(v + hw), method: "bootstrap".into() }
    }

    fn slice(spec: &str, key: &[(&str, &str)], count: u64, auc: f64, fpr: f64) -> SliceResult {
        SliceResult {
            spec: spec.into(),
            key: key.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            count,
            weight: count as f64,
            too_small: false,
            metrics: [("auc_roc".to_string(), est(auc, 0.02))].into_iter().collect(),
            at: vec![AtThreshold { threshold: 0.5, tp: 0.0, fp: 0.0, tn: 0.0, fn_: 0.0, metrics: [("fpr".to_string(), est(fpr, 0.01))].into_iter().collect() }],
            vs_baseline: Default::default(),
            confusion: None,
            bounds: Default::default(),
        }
    }

    fn result(black_auc: f64, black_fpr: f64) -> MetricsResult {
        MetricsResult {
            model: "m".into(),
            task: "binary".into(),
            thresholds: vec![0.5],
            ci: 0.95,
            bootstrap: 200,
            seed: 0,
            baseline: "overall".into(),
            slices: vec![
                slice("overall", &[], 1000, 0.88, 0.08),
                slice("race", &[("race", "White")], 800, 0.89, 0.08),
                slice("race", &[("race", "Black")], 150, black_auc, black_fpr),
                slice("race", &[("race", "Other")], 10, 0.5, 0.5),
            ],
            criteria: vec![],
            notes: vec![],
        }
    }

    fn set(gates: Vec<Gate>) -> GateSet {
        GateSet { model: None, baseline: None, threshold: 0.5, ci: 0.95, min_size: 30, gates, drift: false }
    }

    fn gate(metric: &str, slice: &str) -> Gate {
        Gate { metric: metric.into(), slice: slice.into(), threshold: None, min: None, max: None, max_drop: None, significant_drop: false, max_gap_increase: None, discover: None }
    }

    #[test]
    fn a_value_bound_fails_exactly_the_slice_below_it_and_skips_small_slices() {
        let s = set(vec![Gate { min: Some(0.85), ..gate("auc_roc", "race") }]);
        let out = evaluate(&s, &result(0.80, 0.08), None);
        let v: Vec<(&str, Verdict)> = out[0].slices.iter().map(|v| (v.slice.as_str(), v.verdict)).collect();
        assert_eq!(v, vec![("race=White", Verdict::Pass), ("race=Black", Verdict::Fail), ("race=Other", Verdict::Skipped)]);
        assert_eq!(out[0].verdict, Verdict::Fail);
        assert_eq!(failures(&out, &s), vec!["auc_roc on race=Black: 0.8 < 0.85".to_string()]);
        assert_eq!(out[0].rule, "auc_roc ≥ 0.85 on every race slice");
    }

    #[test]
    fn change_gates_compare_each_slice_with_the_same_slice_of_the_baseline() {
        let base = result(0.86, 0.08);
        let s = set(vec![Gate { max_drop: Some(0.02), ..gate("auc_roc", "race") }, Gate { significant_drop: true, ..gate("fpr", "race") }]);
        // Same run: everything passes.
        let same = evaluate(&s, &base, Some(&base));
        assert!(same.iter().all(|o| o.verdict == Verdict::Pass), "{same:?}");
        // Black's AUC drops by 0.05 (> 0.02) and its FPR rises by 0.04 (> √2·0.01).
        let worse = evaluate(&s, &result(0.81, 0.12), Some(&base));
        let f = failures(&worse, &s);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].starts_with("auc_roc on race=Black: worse than the baseline 0.86 by 0.05"), "{f:?}");
        assert!(f[1].starts_with("fpr@0.5 on race=Black: significantly worse"), "{f:?}");
        // A small FPR rise within the combined interval passes.
        let slight = evaluate(&s, &result(0.86, 0.09), Some(&base));
        assert_eq!(slight[1].verdict, Verdict::Pass);
        // No baseline: change-only gates are skipped, not passed.
        assert_eq!(evaluate(&s, &base, None)[0].verdict, Verdict::Skipped);
    }

    #[test]
    fn the_gap_rule_compares_spreads_across_large_enough_slices() {
        let s = set(vec![Gate { max_gap_increase: Some(0.02), ..gate("fpr", "race") }]);
        let out = evaluate(&s, &result(0.86, 0.12), Some(&result(0.86, 0.09)));
        let gap = out[0].slices.last().unwrap();
        assert_eq!(gap.slice, "gap across race");
        // Gap 0.04 (Other is too small and left out) vs 0.01: grew by 0.03 > 0.02.
        assert_eq!(gap.verdict, Verdict::Fail, "{gap:?}");
        assert!((gap.value.unwrap() - 0.04).abs() < 1e-12);
    }

    #[test]
    fn worse_goes_the_metric_s_way() {
        assert_eq!(worsening("auc_roc", 0.8, 0.9).signum(), 1.0);
        assert_eq!(worsening("fpr", 0.2, 0.1).signum(), 1.0);
        assert_eq!(worsening("fpr", 0.05, 0.1).signum(), -1.0);
        assert!((worsening("positive_rate", 0.2, 0.3) - 0.1).abs() < 1e-12);
        assert!((worsening("mean_residual", -0.3, 0.1) - 0.2).abs() < 1e-12);
        assert_eq!(direction("recall[>50K]"), Direction::Higher);
    }

    #[test]
    fn bad_gate_sets_are_refused_with_the_gate_named() {
        let e = check(&set(vec![gate("auc", "race")])).unwrap_err();
        assert!(e.contains("gate 1 (auc): unknown metric"), "{e}");
        let e = check(&set(vec![Gate { max_gap_increase: Some(0.1), ..gate("fpr", "overall") }])).unwrap_err();
        assert!(e.contains("needs a slicing spec"), "{e}");
        assert!(check(&set(vec![gate("fpr", "race")])).unwrap_err().contains("at least one of"));
        assert!(check(&set(vec![Gate { min: Some(0.1), ..gate("recall[>50K]", "overall") }])).is_ok());
        let e = check(&set(vec![Gate { max_drop: Some(0.1), ..gate("auc_roc", "age:q4") }])).unwrap_err();
        assert!(e.contains("use fixed edges"), "{e}");
        assert!(check(&set(vec![Gate { min: Some(0.1), ..gate("auc_roc", "age:q4") }])).is_ok());
        let many: Vec<Gate> = (0..11).map(|i| Gate { min: Some(0.1), ..gate("auc_roc", &format!("age:[{}]", 20 + i)) }).collect();
        assert!(check(&set(many)).unwrap_err().contains("at most 10 different slicings"));
        assert!(metric_of_task("auc_roc", strata_app::model::Task::Binary, 0) && !metric_of_task("auc_roc", strata_app::model::Task::Regression, 0));
        assert!(metric_of_task("recall[>50K]", strata_app::model::Task::Multiclass, 0) && !metric_of_task("precision", strata_app::model::Task::Multiclass, 0));
        // Top-k accuracy and log loss only for a model with per-class scores, k below the classes.
        assert!(metric_of_task("top_2_accuracy", strata_app::model::Task::Multiclass, 4) && metric_of_task("log_loss", strata_app::model::Task::Multiclass, 4));
        assert!(!metric_of_task("top_2_accuracy", strata_app::model::Task::Multiclass, 0) && !metric_of_task("top_5_accuracy", strata_app::model::Task::Multiclass, 4));
    }

    #[test]
    fn thresholds_come_sorted_and_a_tiny_baseline_slice_is_no_baseline() {
        let s = set(vec![Gate { threshold: Some(0.3), min: Some(0.1), ..gate("tpr", "race") }, gate_min("fpr", 0.9)]);
        assert_eq!(requirements(&s).1, vec![0.3, 0.5]);
        let mut base = result(0.86, 0.08);
        base.slices[2].count = 10; // Black: 10 rows in the baseline
        let c = set(vec![Gate { max_drop: Some(0.01), ..gate("auc_roc", "race") }]);
        let out = evaluate(&c, &result(0.70, 0.08), Some(&base));
        let black = out[0].slices.iter().find(|v| v.slice == "race=Black").unwrap();
        assert_eq!(black.verdict, Verdict::Skipped, "{black:?}");
    }

    fn gate_min(metric: &str, max: f64) -> Gate {
        Gate { max: Some(max), ..gate(metric, "overall") }
    }
}
