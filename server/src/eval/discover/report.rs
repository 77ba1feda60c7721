//! From the search's pool to the reported slices: multiplicity adjustment, the reporting rule,
//! exact statistics, overlap groups, and holdout confirmation.
//!
//! * **q-values**: Benjamini–Yekutieli (valid under any dependence — overlapping slices are
//!   strongly dependent): q_(i) = min_{j≥i} m·c(m)/j · p_(j), c(m) = Σ_{k≤m} 1/k, with m = every
//!   examined slice, reported or not. Pruned candidates are not tests (they were never evaluated);
//!   they could not have ranked in the top anyway.
//! * **Redundancy**: `parent_p` is adjusted the same way over every examined slice that has parents
//!   (`parent_q`). Adjusting matters: a real bad slice has dozens of sub-slices, and at an
//!   unadjusted 5 % a few of them would pass by chance and, being its noisiest parts, outrank it.
//! * **Reporting rule**: Gap scoring reports pool slices with q ≤ fdr and parent_q ≤ fdr;
//!   SliceLine scoring reports its top-k with score > 0 (as SliceLine does), with their q-values.
//! * **Exact values**: the reported count, metric, complement and gap are recomputed from the
//!   slice's rows (`members`), slice and complement summed separately; the AUC is exact there. The
//!   p-value and score are the search's (binned for AUC) so that they match the BY family.
//! * **Holdout**: rows are split by a seeded hash of the row index; the search, pruning and ranking
//!   run on one half, and the top_k eligible slices are re-tested on the other: metric, CI, p and
//!   parent_p come from the confirm half, and BY runs over the number of slices taken to
//!   confirmation (the search half's selection is independent of the confirm half's noise).

use super::items::{key_len, lattice_parents, widened};
use super::search::{self, Rec};
use super::target::{Prepared, Side, sliceline};
use super::{Discovery, Estimate, Feature, Found, Params, Scoring, Target, Worse, members};
use crate::eval::rng::SplitMix;

/// Entries kept in the search pool: more than top_k, as some are dropped by the adjusted tests.
fn pool_size(top_k: usize) -> usize {
    top_k.saturating_mul(3).saturating_add(10)
}

pub(super) fn run(features: &[Feature], target: &Target, worse: Worse, params: &Params, progress: &crate::progress::Progress) -> Result<Discovery, super::DiscoverError> {
    let full = Prepared::new(target, worse, params.scoring, params.ci, params.min_support);
    let all = vec![true; target.len()];
    let overall = full.estimate(&full.exact_side(&all, true));
    if params.holdout {
        return Ok(holdout(features, target, worse, params, overall, progress));
    }
    let out = search::run(features, &full, params, pool_size(params.top_k), progress);
    let q = ByLookup::new(&out.all_p);
    let pq = ByLookup::new(&out.all_parent_p);
    let mut found = Vec::new();
    let mut masks = Vec::new();
    for rec in &out.pool {
        if found.len() >= params.top_k {
            break;
        }
        let (q, parent_q) = (q.get(rec.p), rec.parent_p.map(|p| pq.get(p)));
        if !keep(params, rec.score, q, parent_q) {
            continue;
        }
        let mask = members(features, &rec.key[..key_len(&rec.key)]);
        let (s, c) = (full.exact_side(&mask, true), full.exact_side(&mask, false));
        found.push(make_found(&full, rec, &s, &c, rec.p, q, rec.parent_p, parent_q));
        masks.push(mask);
    }
    group(&mut found, &masks);
    Ok(Discovery {
        examined: out.examined,
        per_level: out.per_level,
        pruned: out.pruned,
        truncated: out.truncated,
        overall,
        rows: target.len() as u64,
        slices: found,
        holdout_rows: None,
    })
}

/// The reporting rule (see the module docs).
fn keep(params: &Params, score: f64, q: f64, parent_q: Option<f64>) -> bool {
    match params.scoring {
        Scoring::Gap => q <= params.fdr && parent_q.is_none_or(|p| p <= params.fdr),
        Scoring::SliceLine { .. } => score > 0.0,
    }
}

#[allow(clippy::too_many_arguments)]
fn make_found(prep: &Prepared, rec: &Rec, s: &Side, c: &Side, p: f64, q: f64, parent_p: Option<f64>, parent_q: Option<f64>) -> Found {
    let cmp = prep.compare(s, c);
    Found {
        items: rec.key[..key_len(&rec.key)].to_vec(),
        count: s.count.round() as u64,
        weight: s.weight,
        metric: prep.estimate(s),
        complement: prep.estimate(c),
        gap: Estimate { value: cmp.gap, lo: cmp.lcb, hi: cmp.ucb },
        score: rec.score,
        p_value: p,
        q_value: q,
        parent_p,
        parent_q,
        group: 0,
        overlap: 1.0,
    }
}

/// Benjamini–Yekutieli q-values of a family of p-values, looked up by p-value.
pub(super) struct ByLookup {
    sorted: Vec<f64>,
    q: Vec<f64>,
}

impl ByLookup {
    pub(super) fn new(ps: &[f64]) -> ByLookup {
        let mut sorted = ps.to_vec();
        sorted.sort_by(f64::total_cmp);
        let m = sorted.len();
        let c: f64 = (1..=m).map(|k| 1.0 / k as f64).sum();
        let mut q = vec![1.0; m];
        let mut run = 1.0f64;
        for j in (0..m).rev() {
            run = run.min(m as f64 * c / (j + 1) as f64 * sorted[j]);
            q[j] = run.min(1.0);
        }
        ByLookup { sorted, q }
    }

    /// q-value of a member p-value (ties share the q of their group).
    pub(super) fn get(&self, p: f64) -> f64 {
        let i = self.sorted.partition_point(|x| x.total_cmp(&p).is_lt());
        self.q.get(i).copied().unwrap_or(1.0)
    }
}

/// Overlap groups: in rank order, a slice with at least half of its rows inside an earlier group
/// leader's rows joins the first such leader; otherwise it leads a new group.
fn group(found: &mut [Found], masks: &[Vec<bool>]) {
    let mut leaders: Vec<usize> = Vec::new();
    for i in 0..found.len() {
        let n = masks[i].iter().filter(|&&m| m).count().max(1) as f64;
        let join = leaders.iter().find_map(|&l| {
            let inter = masks[i].iter().zip(&masks[l]).filter(|(a, b)| **a && **b).count() as f64 / n;
            (inter >= 0.5).then_some((l, inter))
        });
        match join {
            Some((l, share)) => (found[i].group, found[i].overlap) = (l, share),
            None => {
                leaders.push(i);
                (found[i].group, found[i].overlap) = (i, 1.0);
            }
        }
    }
}

/// Whether row `r` belongs to the search half.
fn in_search_half(seed: u64, r: usize) -> bool {
    SplitMix(seed ^ (r as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)).next() >> 63 == 0
}

/// The rows of `features` and `target` selected by `keep`.
fn subset(features: &[Feature], target: &Target, keep: &[bool]) -> (Vec<Feature>, Target) {
    fn pick<T: Copy>(v: &[T], keep: &[bool]) -> Vec<T> {
        v.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x).collect()
    }
    let fs = features
        .iter()
        .map(|f| Feature { name: f.name.clone(), codes: pick(&f.codes, keep), labels: f.labels.clone(), ordered_buckets: f.ordered_buckets })
        .collect();
    let t = match target {
        Target::Ratio { num, den, sqrt } => Target::Ratio { num: pick(num, keep), den: pick(den, keep), sqrt: *sqrt },
        Target::Auc { y, score, w } => Target::Auc { y: pick(y, keep), score: pick(score, keep), w: pick(w, keep) },
        Target::Calibration { y, p, w } => Target::Calibration { y: pick(y, keep), p: pick(p, keep), w: pick(w, keep) },
    };
    (fs, t)
}

/// Holdout mode: search on one half, confirm the top_k eligible slices on the other.
fn holdout(features: &[Feature], target: &Target, worse: Worse, params: &Params, overall: Estimate, progress: &crate::progress::Progress) -> Discovery {
    let split: Vec<bool> = (0..target.len()).map(|r| in_search_half(params.seed, r)).collect();
    let other: Vec<bool> = split.iter().map(|s| !s).collect();
    let (fa, ta) = subset(features, target, &split);
    let (fb, tb) = subset(features, target, &other);
    let pa = Prepared::new(&ta, worse, params.scoring, params.ci, params.min_support);
    let out = search::run(&fa, &pa, params, pool_size(params.top_k), progress);
    let pb = Prepared::new(&tb, worse, params.scoring, params.ci, params.min_support);
    let taken: Vec<&Rec> = out.pool.iter().take(params.top_k).collect();
    let mut tested = Vec::new();
    for rec in &taken {
        let items = &rec.key[..key_len(&rec.key)];
        let mask = members(&fb, items);
        let (s, c) = (pb.exact_side(&mask, true), pb.exact_side(&mask, false));
        let cmp = pb.compare(&s, &c);
        let parent_p = confirm_parents(&fb, &pb, rec, &mask, &s);
        tested.push((mask, s, c, cmp.p, parent_p));
    }
    let q = ByLookup::new(&tested.iter().map(|t| t.3).collect::<Vec<_>>());
    let pq = ByLookup::new(&tested.iter().filter_map(|t| t.4).collect::<Vec<_>>());
    let mut found = Vec::new();
    let mut masks = Vec::new();
    for (rec, (mask, s, c, p, parent_p)) in taken.into_iter().zip(tested) {
        let (qv, parent_q) = (q.get(p), parent_p.map(|x| pq.get(x)));
        let score_b = match params.scoring {
            Scoring::Gap => rec.score,
            Scoring::SliceLine { alpha } => sliceline(alpha, s.num, s.den, pb.bounds.tot.n, pb.bounds.tot.d),
        };
        if !s.count.is_finite() || s.count < 1.0 || !keep(params, score_b, qv, parent_q) {
            continue;
        }
        found.push(make_found(&pb, rec, &s, &c, p, qv, parent_p, parent_q));
        masks.push(mask);
    }
    group(&mut found, &masks);
    Discovery {
        examined: out.examined,
        per_level: out.per_level,
        pruned: out.pruned,
        truncated: out.truncated,
        overall,
        rows: target.len() as u64,
        slices: found,
        holdout_rows: Some(tb.len() as u64),
    }
}

/// The redundancy test on the confirm half: the slice against the rest of each parent.
fn confirm_parents(fb: &[Feature], pb: &Prepared, rec: &Rec, mask: &[bool], s: &Side) -> Option<f64> {
    let mut worst: Option<f64> = None;
    for pk in lattice_parents(&rec.key).into_iter().chain(widened(fb, &rec.key)) {
        let pm = members(fb, &pk[..key_len(&pk)]);
        let rest: Vec<bool> = pm.iter().zip(mask).map(|(p, c)| *p && !*c).collect();
        let r = pb.exact_side(&rest, true);
        let p = if r.count < 0.5 { 1.0 } else { pb.compare(s, &r).p };
        worst = Some(worst.map_or(p, |w: f64| w.max(p)));
    }
    worst
}
