//! The level-wise search.
//!
//! Level 1 evaluates every item. Level k ≥ 2 extends each *valid* (k−1)-slice S, in rank order,
//! by each valid item of a feature after S's last one; the candidate is kept when all its other
//! (k−1)-subsets are valid too (Apriori; each candidate is generated once, from the parent without
//! its last item). *Valid* = examined (≥ `min_support` rows, non-empty complement) and its score
//! bound (over any sub-slice of it) can still reach the pool's threshold. A candidate whose bound
//! from the elementwise minimum of its parents' bound fields cannot reach the threshold is
//! *pruned*. Both are sound because a candidate's rows lie inside every parent's rows, the bound
//! covers every such subset, and the threshold — the score of the last entry of a full pool of
//! eligible slices — only rises.
//!
//! The pool holds the best `pool_size` *eligible* slices (Gap: p ≤ fdr and parent_p ≤ fdr, the
//! necessary conditions of being reported; SliceLine: score > 0), ranked by score, then fewer
//! items, then item order. Generation stops at `max_candidates` per level (`truncated`); since
//! parents are taken in rank order the candidates kept are the extensions of the best slices.

use std::collections::HashMap;

use super::items::{Key, feature_items, key_len, key_of, lattice_parents, widened};
use super::pass::{self, Job};
use super::target::{Bs, Prepared};
use super::{Feature, Params, Scoring};
use crate::eval::FastHashBuilder;

/// An examined slice.
#[derive(Clone, Debug)]
pub(super) struct Rec {
    pub key: Key,
    pub score: f64,
    pub p: f64,
    pub parent_p: Option<f64>,
    pub bs: Bs,
}

/// The search's result.
pub(super) struct SearchOut {
    pub examined: u64,
    pub per_level: Vec<u64>,
    pub pruned: u64,
    pub truncated: bool,
    /// The best eligible slices, ranked.
    pub pool: Vec<Rec>,
    /// p-value of every examined slice, and parent p-value of every examined slice with parents.
    pub all_p: Vec<f64>,
    pub all_parent_p: Vec<f64>,
}

/// The examined slices of one level with their full statistic vectors.
struct Level {
    recs: Vec<Rec>,
    stats: Vec<f64>,
    index: HashMap<Key, usize, FastHashBuilder>,
}

/// Ranking order: higher score, then fewer items, then item order.
pub(super) fn rank_cmp(a: &Rec, b: &Rec) -> std::cmp::Ordering {
    b.score.total_cmp(&a.score).then(key_len(&a.key).cmp(&key_len(&b.key))).then(a.key.cmp(&b.key))
}

/// Run the search on the rows `prep` describes.
pub(super) fn run(features: &[Feature], prep: &Prepared, params: &Params, pool_size: usize, progress: &crate::progress::Progress) -> SearchOut {
    // 100 steps per level; a level the search does not reach counts as done.
    let base = progress.snapshot().total;
    progress.add_total(LEVEL_STEPS * params.max_level as u64);
    let steps = |level: usize| pass::Steps { progress, from: base + LEVEL_STEPS * (level as u64 - 1), span: LEVEL_STEPS };
    let mut out =
        SearchOut { examined: 0, per_level: Vec::new(), pruned: 0, truncated: false, pool: Vec::new(), all_p: Vec::new(), all_parent_p: Vec::new() };
    let keys: Vec<Key> = features.iter().enumerate().flat_map(|(i, f)| feature_items(i as u32, f)).map(|it| key_of(&[it])).collect();
    let items = evaluate(features, prep, params, keys, None, &mut out, pool_size, steps(1));
    let mut prev: Option<Level> = None;
    for k in 2..=params.max_level {
        let thr = threshold(&out.pool, pool_size, params);
        let parent = prev.as_ref().unwrap_or(&items);
        let keys = generate(prep, params, parent, &items, thr, k, &mut out);
        if keys.is_empty() || progress.is_cancelled() {
            break;
        }
        let level = evaluate(features, prep, params, keys, Some(parent), &mut out, pool_size, steps(k));
        prev = Some(level);
    }
    // Levels the search did not need count as done (not when it was cancelled: it stopped short).
    if !progress.is_cancelled() {
        progress.reach(base + LEVEL_STEPS * params.max_level as u64);
    }
    out
}

/// Progress steps of one level.
const LEVEL_STEPS: u64 = 100;

/// Score a slice needs to enter a full pool (SliceLine also needs a positive score).
fn threshold(pool: &[Rec], pool_size: usize, params: &Params) -> f64 {
    let kth = if pool.len() >= pool_size { pool.last().map_or(f64::NEG_INFINITY, |r| r.score) } else { f64::NEG_INFINITY };
    match params.scoring {
        Scoring::Gap => kth,
        Scoring::SliceLine { .. } => kth.max(0.0),
    }
}

/// Whether a slice whose score bound is `bound` may still matter.
fn reachable(bound: f64, thr: f64, params: &Params) -> bool {
    match params.scoring {
        Scoring::Gap => bound >= thr,
        Scoring::SliceLine { .. } => bound >= thr && bound > 0.0,
    }
}

fn eligible(r: &Rec, params: &Params) -> bool {
    match params.scoring {
        Scoring::Gap => r.score.is_finite() && r.p <= params.fdr && r.parent_p.is_none_or(|p| p <= params.fdr),
        Scoring::SliceLine { .. } => r.score.is_finite() && r.score > 0.0,
    }
}

/// Evaluate candidate keys (one pass per feature set), run the parent tests, update the pool.
fn evaluate(
    features: &[Feature],
    prep: &Prepared,
    params: &Params,
    keys: Vec<Key>,
    parents: Option<&Level>,
    out: &mut SearchOut,
    pool_size: usize,
    steps: pass::Steps<'_>,
) -> Level {
    let jobs = jobs(&keys);
    // The row passes are the first half of the level's steps; testing the candidates (a p-value
    // each, most of a level's time when it has many) is the second.
    let half = steps.span / 2;
    let compact = pass::run(features, &prep.rows, &keys, &jobs, pass::Steps { span: half, ..steps });
    let (dim, dc) = (prep.dim, prep.rows.dc);
    let ms = params.min_support.max(1) as f64;
    let mut level = Level { recs: Vec::new(), stats: Vec::new(), index: HashMap::default() };
    let mut full = vec![0.0; dim];
    let mut rest = vec![0.0; dim];
    for (i, key) in keys.iter().enumerate() {
        if i % 4096 == 0 {
            if steps.progress.is_cancelled() {
                break;
            }
            steps.progress.reach(steps.from + half + (steps.span - half) * i as u64 / keys.len() as u64);
        }
        prep.rows.expand_into(&compact[i * dc..(i + 1) * dc], &mut full);
        if full[0] < ms || prep.total[0] - full[0] < 0.5 {
            continue;
        }
        for ((r, t), s) in rest.iter_mut().zip(&prep.total).zip(&full) {
            *r = t - s;
        }
        let side = prep.side(&full);
        let cmp = prep.compare(&side, &prep.side(&rest));
        let score = prep.score(&side, &cmp);
        level.index.insert(*key, level.recs.len());
        level.recs.push(Rec { key: *key, score, p: cmp.p, parent_p: None, bs: prep.bs(&full) });
        level.stats.extend_from_slice(&full);
    }
    if !steps.progress.is_cancelled() {
        parent_tests(features, prep, params, &mut level, parents);
        steps.progress.reach(steps.from + steps.span);
    }
    out.examined += level.recs.len() as u64;
    out.per_level.push(level.recs.len() as u64);
    out.all_p.extend(level.recs.iter().map(|r| r.p));
    // Slices that cannot be reported skip the redundancy test but stay in its family with p = 1,
    // which can only raise the others' BY q-values (conservative).
    out.all_parent_p.extend(level.recs.iter().filter(|r| has_parents(features, &r.key)).map(|r| r.parent_p.unwrap_or(1.0)));
    out.pool.extend(level.recs.iter().filter(|r| eligible(r, params)).cloned());
    out.pool.sort_by(rank_cmp);
    out.pool.truncate(pool_size);
    level
}

/// Candidates grouped by feature set, in feature-set order.
fn jobs(keys: &[Key]) -> Vec<Job> {
    let mut by_set: HashMap<[u32; 3], Vec<u32>, FastHashBuilder> = HashMap::default();
    for (i, k) in keys.iter().enumerate() {
        by_set.entry([k[0].feature, k[1].feature, k[2].feature]).or_default().push(i as u32);
    }
    let mut jobs: Vec<Job> =
        by_set.into_iter().map(|(f, cands)| Job { feats: f.into_iter().filter(|&x| x != u32::MAX).collect(), cands }).collect();
    jobs.sort_by(|a, b| a.feats.cmp(&b.feats));
    jobs
}

/// The redundancy test of each slice against the rest of each parent: its (k−1)-subsets and the
/// slices with one bucket range widened by one bucket (when examined). `parent_p` = the largest.
fn parent_tests(features: &[Feature], prep: &Prepared, params: &Params, level: &mut Level, parents: Option<&Level>) {
    let dim = prep.dim;
    let mut rest = vec![0.0; dim];
    for i in 0..level.recs.len() {
        // Only slices that may be reported need the test (its p-value can only block them).
        let r = &level.recs[i];
        if !eligible(&Rec { parent_p: None, ..r.clone() }, params) {
            continue;
        }
        let key = r.key;
        let child = &level.stats[i * dim..(i + 1) * dim];
        let mut worst: Option<f64> = None;
        let lattice = parents.map(|p| lattice_parents(&key).into_iter().filter_map(|k| p.index.get(&k).map(|&j| &p.stats[j * dim..(j + 1) * dim]))
            .collect::<Vec<_>>()).unwrap_or_default();
        let wide: Vec<&[f64]> = widened(features, &key).into_iter().filter_map(|k| level.index.get(&k).map(|&j| &level.stats[j * dim..(j + 1) * dim])).collect();
        for parent in lattice.into_iter().chain(wide) {
            for ((r, p), c) in rest.iter_mut().zip(parent).zip(child) {
                *r = p - c;
            }
            let p = if rest[0] < 0.5 { 1.0 } else { prep.compare(&prep.side(child), &prep.side(&rest)).p };
            worst = Some(worst.map_or(p, |w: f64| w.max(p)));
        }
        level.recs[i].parent_p = worst;
    }
}

/// Whether a slice has parents for the redundancy test: two or more items, or a bucket range
/// that can be widened without covering every bucket.
fn has_parents(features: &[Feature], key: &Key) -> bool {
    key_len(key) >= 2 || !widened(features, key).is_empty()
}

/// Level-k candidates from the valid (k−1)-slices `parent` and the valid items of `items`.
fn generate(prep: &Prepared, params: &Params, parent: &Level, items: &Level, thr: f64, k: usize, out: &mut SearchOut) -> Vec<Key> {
    let valid = |r: &Rec| reachable(prep.bound(&r.bs), thr, params);
    let mut firsts: Vec<&Rec> = parent.recs.iter().filter(|r| valid(r)).collect();
    // Examined slices whose own bound is out of reach are not extended: count them as pruned.
    out.pruned += (parent.recs.len() - firsts.len()) as u64;
    firsts.sort_by(|a, b| rank_cmp(a, b));
    let valid_prev: HashMap<Key, Bs, FastHashBuilder> = firsts.iter().map(|r| (r.key, r.bs)).collect();
    let mut exts: Vec<&Rec> = items.recs.iter().filter(|r| valid(r)).collect();
    exts.sort_by_key(|r| r.key);
    let ms = params.min_support.max(1) as f64;
    let mut keys = Vec::new();
    for s in firsts {
        let last = s.key[k - 2].feature;
        let start = exts.partition_point(|e| e.key[0].feature <= last);
        'ext: for e in &exts[start..] {
            let mut key = s.key;
            key[k - 1] = e.key[0];
            let mut bs = s.bs.min(e.bs);
            for drop in 0..k - 1 {
                let mut items: Vec<_> = key[..k].to_vec();
                items.remove(drop);
                match valid_prev.get(&key_of(&items)) {
                    Some(b) => bs = bs.min(*b),
                    None => continue 'ext,
                }
            }
            if bs.count < ms {
                continue;
            }
            if !reachable(prep.bound(&bs), thr, params) {
                out.pruned += 1;
                continue;
            }
            if keys.len() >= params.max_candidates {
                out.truncated = true;
                return keys;
            }
            keys.push(key);
        }
    }
    keys
}
