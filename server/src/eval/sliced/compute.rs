//! The request on prepared cells: point values, the seeded Poisson bootstrap, intervals, baseline
//! gaps with Benjamini–Hochberg control.

use super::*;

/// Percentile interval of bootstrap values (NaN-free), or (None, None).
pub(super) fn percentile_interval(vals: &mut [f64], level: f64) -> (Option<f64>, Option<f64>) {
    if vals.len() < 2 {
        return (None, None);
    }
    let a = (1.0 - level) / 2.0;
    (Some(select_quantile(vals, a)), Some(select_quantile(vals, 1.0 - a)))
}

/// The `q` quantile with linear interpolation (numpy's default), by selection instead of a sort.
pub(super) fn select_quantile(vals: &mut [f64], q: f64) -> f64 {
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

/// The size of a request's bootstrap before it runs: replicates × slices × values per slice (each
/// kept as one `f64`). The slices are known once the run is prepared; nothing else is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootstrapSize {
    pub replicates: u64,
    pub slices: u64,
    pub values_per_slice: u64,
}

impl BootstrapSize {
    pub fn bytes(&self) -> u64 {
        self.replicates.saturating_mul(self.slices).saturating_mul(self.values_per_slice).saturating_mul(8)
    }
}

/// See [`BootstrapSize`].
pub fn bootstrap_size(prep: &Prepared, req: &MetricsRequest) -> BootstrapSize {
    let values_per_slice = match prep.task {
        Task::Binary => BinaryLayout::get().at(req.thresholds.len()) as u64,
        Task::Regression => registry::names(Family::Regression).count() as u64,
        Task::Multiclass => multiclass_keys(prep).len() as u64,
    };
    BootstrapSize { replicates: req.bootstrap as u64, slices: prep.keys.iter().map(|k| k.len() as u64).sum(), values_per_slice }
}

/// Computes a metrics request on a run's DataFrame. Pure: DataFrame in, plain structs out.
pub fn compute(df: &DataFrame, req: &MetricsRequest, task: Task) -> Result<MetricsResult, RequestError> {
    compute_prepared(&prepare(df, req, task)?, req)
}

/// Computes a metrics request on prepared cells (see [`Prepared`]); `req` must have the
/// `prepare_key` the cells were prepared with.
pub fn compute_prepared(prep: &Prepared, req: &MetricsRequest) -> Result<MetricsResult, RequestError> {
    compute_with_budget(prep, req, BOOTSTRAP_CELL_BUDGET, &crate::progress::Progress::new())
}

/// [`compute_prepared`] reporting bootstrap replicates into `progress`; the replicates stop when
/// it is cancelled (the answer is then incomplete: the caller throws it away).
pub fn compute_prepared_tracked(prep: &Prepared, req: &MetricsRequest, progress: &crate::progress::Progress) -> Result<MetricsResult, RequestError> {
    compute_with_budget(prep, req, BOOTSTRAP_CELL_BUDGET, progress)
}

/// [`compute_prepared`] with the bootstrap's cell budget as a parameter (tests set it small).
pub(super) fn compute_with_budget(prep: &Prepared, req: &MetricsRequest, budget: usize, progress: &crate::progress::Progress) -> Result<MetricsResult, RequestError> {
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
    let specs = prep.keys.len();

    // Flat metric values per (spec, slice), in the order of `slots` (binary: `binary_point`).
    let run_pass = |prep: &Prepared, w: &[f64]| -> Vec<Vec<Vec<Option<f64>>>> {
        (0..specs)
            .map(|a| match task {
                Task::Regression => regression_pass(prep, a, w).into_iter().map(|m| m.into_values().collect()).collect(),
                _ => multiclass_pass(prep, a, w).into_iter().map(|(m, _)| m.into_values().collect()).collect(),
            })
            .collect()
    };
    let point_weights = |prep: &Prepared| -> Vec<f64> { prep.w.iter().zip(&prep.mult).map(|(w, m)| w * *m as f64).collect() };
    let k_of_cell = if binary { threshold_counts(&prep.p, &thresholds) } else { vec![] };
    let point = if binary { binary_point(prep, &k_of_cell, thresholds.len()) } else { run_pass(prep, &point_weights(prep)) };
    let slots: Vec<MetricSlot> = match task {
        Task::Binary => binary_slots(&thresholds),
        // The regression pass's map iterates its names sorted.
        Task::Regression => registry::names(Family::Regression).collect::<std::collections::BTreeSet<_>>().into_iter().map(|n| MetricSlot { key: n.into(), base: n, at: None }).collect(),
        Task::Multiclass => multiclass_keys(prep)
            .into_iter()
            .map(|n| MetricSlot { base: registry::names(Family::Multiclass).find(|m| *m == n).unwrap_or(""), key: n, at: None })
            .collect(),
    };
    // Per slot, from the registry once: `Some(trials)` for a Wilson interval (the trials of a rate
    // at a threshold; `None` inside for a threshold-free rate, whose trials are the slice's weight).
    let slot_intervals: Vec<Option<Option<fn(&Confusion) -> f64>>> = slots
        .iter()
        .map(|slot| {
            let family = match (task, slot.at) {
                (Task::Binary, Some(_)) => Family::AtThreshold,
                (Task::Binary, None) => Family::Binary,
                (Task::Multiclass, _) => Family::Multiclass,
                (Task::Regression, _) => Family::Regression,
            };
            let def = registry::find(family, slot.base).filter(|m| m.interval == Interval::Wilson)?;
            Some(match def.finish {
                Finish::Confusion { trials, .. } => trials,
                Finish::Engine => None,
            })
        })
        .collect();

    progress.stage("bootstrap");
    // Binary: the threshold-free part is kept with the cells, the counts at these thresholds are
    // drawn per request (see `boot`; over binned cells when there are more than the budget).
    let (replicates, binned) = if binary && req.bootstrap > 0 {
        binary_replicates(prep, req, &thresholds, &k_of_cell, budget, progress)
    } else {
        (other_replicates(prep, req, &|w: &[f64]| run_pass(prep, w), progress), false)
    };
    let boot_method = if binned { "bootstrap_binned" } else { "bootstrap" };

    let confusions: Vec<Vec<Vec<Vec<f64>>>> = if task == Task::Multiclass {
        let w_point = point_weights(prep);
        (0..specs).map(|a| multiclass_pass(prep, a, &w_point).into_iter().map(|(_, c)| c).collect()).collect()
    } else {
        vec![]
    };
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
    // Scores grouped into buckets: how far the ranking metrics could move within them.
    let ties = (binary && prep.score_grid.is_some()).then(|| tie_bounds(prep));
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
                let (lo, hi, method) = if let Some(trials) = slot_intervals[mi] {
                    match value {
                        Some(v) => {
                            // A rate at a threshold counts its own trials; a threshold-free one the slice's weight.
                            let den = match (slot.at, trials) {
                                (Some(j), Some(trials)) => trials(&counts_at(j)),
                                _ => weight,
                            };
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
                bounds: ties.as_ref().map(|t| t[ai][si].named()).unwrap_or_default(),
            });
        }
    }
    // Benjamini–Hochberg per metric across slices.
    let mut by_metric: BTreeMap<usize, Vec<(usize, f64)>> = BTreeMap::new();
    for (si, mi, pv) in tests {
        by_metric.entry(mi).or_default().push((si, pv));
    }
    for (mi, ps) in by_metric {
        let qs = crate::eval::bh_adjust(&ps.iter().map(|(_, p)| *p).collect::<Vec<_>>());
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
        notes: prep.notes.clone(),
    })
}

/// Bootstrap replicates of a regression or multiclass request: replicate b draws its cells'
/// multiplicities from its own generator (seed, b), so the numbers do not depend on how the
/// replicates are spread over threads. Flat per replicate, NaN for undefined.
fn other_replicates(prep: &Prepared, req: &MetricsRequest, pass: &(dyn Fn(&[f64]) -> Vec<Vec<Vec<Option<f64>>>> + Sync), progress: &crate::progress::Progress) -> Vec<Vec<f64>> {
    progress.add_total(req.bootstrap as u64);
    on_cores(req.bootstrap, progress, || vec![0.0; prep.w.len()], |b, wb| {
        let mut rng = replicate_rng(req.seed, b);
        for ((o, wi), m) in wb.iter_mut().zip(&prep.w).zip(&prep.mult) {
            *o = wi * rng.poisson(*m as f64);
        }
        // Stored flat, NaN for undefined: half the bytes of `Option<f64>`.
        pass(wb).iter().flatten().flatten().map(|v| v.unwrap_or(f64::NAN)).collect()
    })
}
