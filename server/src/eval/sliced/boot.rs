//! The bootstrap of a binary request in two parts. The threshold-free metrics (AUC, average
//! precision, log loss, Brier score, calibration, …) do not depend on the thresholds, so their
//! replicates are computed once per (prepared cells, seed, replicates) and kept with the cells;
//! the confusion counts at the request's thresholds are a light pass per replicate. A new
//! threshold — the slider, the fairness view's thresholds — pays only the second part. The
//! point values are split the same way ([`binary_point`]).
//!
//! Replicate `b` draws its cells' Poisson counts from its own generator (seed, b) in cell order,
//! so the numbers do not depend on how the replicates are spread over threads, nor on which
//! request drew them first. On exact cells both parts use the same draws (kept as `f32` when they
//! fit [`KEPT_DRAWS`], drawn again otherwise), so every replicate equals a full pass over its
//! resampled cells. Over binned cells (more cells than the budget, see [`Prepared::binned`]) the
//! threshold-free part walks the binned cells and the counts are drawn per (slice in every spec,
//! label, threshold interval) group, one Poisson draw of the group's rows: the per-row Poisson
//! bootstrap's distribution of every count, exactly when rows are unweighted.

use std::sync::{Arc, Mutex};

use super::*;

/// Most per-cell Poisson draws kept with the threshold-free replicates (4 bytes each: 16 MiB), so
/// that a request at new thresholds does not draw them again.
pub(super) const KEPT_DRAWS: usize = 4 << 20;

/// Most bytes of threshold-free replicate values kept with the cells (more are computed per
/// request and not kept: 2,000 replicates of 500 slices would be 70 MiB).
pub(super) const KEPT_SCALAR_BYTES: usize = 16 << 20;

/// Salt of the counts' generator over binned cells (its groups differ from the cells).
const GROUP_SALT: u64 = 0x6A09_E667_F3BC_C909;

/// Replicate `b`'s generator.
pub(super) fn replicate_rng(seed: u64, b: usize) -> SplitMix {
    SplitMix(seed ^ (b as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93))
}

/// Runs `one(b, scratch)` for replicates `0..n` on every core (replicate b on thread b mod
/// threads, each thread with its own `scratch()`), one progress step each; the results in
/// replicate order, fewer when `progress` is cancelled part-way.
pub(super) fn on_cores<T: Send, S>(n: usize, progress: &crate::progress::Progress, scratch: impl Fn() -> S + Sync, one: impl Fn(usize, &mut S) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8).min(n.max(1));
    let mut all: Vec<(usize, T)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (scratch, one) = (&scratch, &one);
                scope.spawn(move || {
                    let mut s = scratch();
                    let mut out = Vec::new();
                    for b in (t..n).step_by(threads) {
                        if progress.is_cancelled() {
                            break;
                        }
                        out.push((b, one(b, &mut s)));
                        progress.advance(1);
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    all.sort_by_key(|(b, _)| *b);
    all.into_iter().map(|(_, v)| v).collect()
}

/// The threshold-free cells of the bootstrap when the exact cells exceed the budget, and how the
/// exact cells fall into (slice in every spec, label) combinations.
pub(super) struct BootCells {
    /// [`Prepared::binned`].
    pub(super) cells: Prepared,
    /// Per exact cell: its combination's number, `u32::MAX` for a cell no pass counts (missing
    /// label or score, no weight).
    pub(super) combo_of_cell: Vec<u32>,
    /// Per combination: its slice in every spec (`SliceIds`' sentinel for none) and whether the
    /// label is positive.
    pub(super) combos: Vec<(Vec<u32>, bool)>,
}

/// Threshold-free replicates of one (seed, replicates, budget), kept with the prepared cells.
pub(super) struct BootScalars {
    seed: u64,
    replicates: usize,
    budget: usize,
    /// Binned cells when the replicates walk them (`None`: the exact cells).
    pub(super) binned: Option<Arc<BootCells>>,
    /// Per replicate: every (spec, slice)'s threshold-free values in registry order
    /// (`BinaryLayout::scalars` each), NaN for undefined; over binned cells shifted by
    /// (exact − binned) point value, metric by metric.
    pub(super) values: Vec<Vec<f64>>,
    /// Exact cells: per replicate, each cell's Poisson count, when they fit [`KEPT_DRAWS`].
    pub(super) draws: Option<Vec<Vec<f32>>>,
}

/// What [`Prepared`] keeps for the bootstrap.
#[derive(Default)]
pub(super) struct BootCache {
    pub(super) cells: Mutex<Option<(usize, Option<Arc<BootCells>>)>>,
    pub(super) scalars: Mutex<Option<Arc<BootScalars>>>,
    /// The threshold-free point values per spec, per slice (see [`binary_point`]).
    pub(super) point: Mutex<Option<Arc<Vec<Vec<Vec<Option<f64>>>>>>>,
}

impl Prepared {
    /// Every cell's slice in every spec and label as one number (mixed radix, label in the
    /// lowest digit); `None` when the slicings are too many to number in 128 bits.
    pub(super) fn cell_tuples(&self) -> Option<Vec<u128>> {
        self.keys.iter().try_fold(2u128, |acc, k| acc.checked_mul(k.len() as u128 + 1))?;
        let tuple = |i: usize| -> u128 {
            let mut t: u128 = 0;
            for (sc, keys) in self.slice_of_cell.iter().zip(&self.keys) {
                t = t * (keys.len() as u128 + 1) + sc.get(i).map_or(0, |s| s as u128 + 1);
            }
            t * 2 + u128::from(self.y[i] == 1.0)
        };
        Some((0..self.y.len()).map(tuple).collect())
    }

    /// The threshold-free point values per spec, per slice (`flat_binary` without thresholds),
    /// computed once and kept.
    pub(super) fn point_scalars(&self) -> Arc<Vec<Vec<Vec<Option<f64>>>>> {
        let mut kept = self.boot.point.lock().unwrap_or_else(|p| p.into_inner());
        kept.get_or_insert_with(|| {
            let layout = BinaryLayout::get();
            let w: Vec<f64> = self.w.iter().zip(&self.mult).map(|(w, m)| w * *m as f64).collect();
            Arc::new(binary_passes(self, &vec![0u16; self.y.len()], &w, 0).iter().map(|slices| slices.iter().map(|sp| flat_binary(sp, 0, &layout)).collect()).collect())
        })
        .clone()
    }

    /// A cell a pass counts at its point weight.
    #[inline]
    fn counted(&self, i: usize) -> bool {
        self.w[i] * self.mult[i] as f64 > 0.0 && self.y[i].is_finite() && self.p[i].is_finite()
    }

    /// [`BootCells`] for `budget`, built once and kept; `None` when the exact cells fit it.
    pub(super) fn boot_cells(&self, budget: usize) -> Option<Arc<BootCells>> {
        let mut kept = self.boot.cells.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, cells)) = kept.as_ref().filter(|(b, _)| *b == budget) {
            return cells.clone();
        }
        let built = (|| {
            if self.task != Task::Binary || self.cells() <= budget {
                return None;
            }
            let tuples = self.cell_tuples()?;
            let cells = self.binned(&tuples, budget);
            let mut number: std::collections::HashMap<u128, u32, crate::eval::FastHashBuilder> = Default::default();
            let mut combos = Vec::new();
            let combo_of_cell = (0..self.y.len())
                .map(|i| {
                    if !self.counted(i) {
                        return u32::MAX;
                    }
                    *number.entry(tuples[i]).or_insert_with(|| {
                        combos.push((self.slice_of_cell.iter().map(|sc| sc.0[i]).collect(), self.y[i] == 1.0));
                        combos.len() as u32 - 1
                    })
                })
                .collect();
            Some(Arc::new(BootCells { cells, combo_of_cell, combos }))
        })();
        *kept = Some((budget, built.clone()));
        built
    }

    /// The threshold-free replicates of (seed, replicates, budget), computed on first use and
    /// kept when they fit [`KEPT_SCALAR_BYTES`] (one set: a new seed replaces them). `None` when
    /// cancelled part-way.
    pub(super) fn boot_scalars(&self, seed: u64, replicates: usize, budget: usize, progress: &crate::progress::Progress) -> Option<Arc<BootScalars>> {
        let mut kept = self.boot.scalars.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = kept.as_ref().filter(|s| s.seed == seed && s.replicates == replicates && s.budget == budget) {
            return Some(s.clone());
        }
        let layout = BinaryLayout::get();
        let binned = self.boot_cells(budget);
        let walk: &Prepared = binned.as_deref().map_or(self, |b| &b.cells);
        let n = walk.y.len();
        let zeros = vec![0u16; n];
        let scalars_of = |w: &[f64]| -> Vec<Option<f64>> {
            binary_passes(walk, &zeros, w, 0).iter().flatten().flat_map(|sp| flat_binary(sp, 0, &layout)).collect()
        };
        // Over binned cells, replicates move by (exact − binned) point value.
        let shift: Option<Vec<f64>> = binned.as_ref().map(|b| {
            let exact = self.point_scalars();
            exact.iter().flatten().flatten().zip(b.cells.point_scalars().iter().flatten().flatten()).map(|(x, y)| match (x, y) { (Some(x), Some(y)) => x - y, _ => 0.0 }).collect()
        });
        let keep_draws = binned.is_none() && n.saturating_mul(replicates) <= KEPT_DRAWS;
        progress.add_total(replicates as u64);
        let mut done: Vec<(Vec<f64>, Option<Vec<f32>>)> = on_cores(replicates, progress, || vec![0.0; n], |b, wb| {
            let mut rng = replicate_rng(seed, b);
            let mut draws = keep_draws.then(|| Vec::with_capacity(n));
            for ((o, wi), m) in wb.iter_mut().zip(&walk.w).zip(&walk.mult) {
                let d = rng.poisson(*m as f64);
                if let Some(ds) = draws.as_mut() {
                    ds.push(d as f32);
                }
                *o = wi * d;
            }
            // A count beyond f32's integers is not kept (it would round).
            let draws = draws.filter(|ds: &Vec<f32>| ds.iter().all(|d| *d < (1u32 << 24) as f32));
            let mut values: Vec<f64> = scalars_of(wb).into_iter().map(|v| v.unwrap_or(f64::NAN)).collect();
            if let Some(shift) = &shift {
                for (v, d) in values.iter_mut().zip(shift) {
                    *v += d; // NaN stays NaN
                }
            }
            (values, draws)
        });
        if progress.is_cancelled() || done.len() != replicates {
            return None;
        }
        let draws = (keep_draws && done.iter().all(|(_, d)| d.is_some())).then(|| done.iter_mut().map(|(_, d)| d.take().unwrap_or_default()).collect());
        let values: Vec<Vec<f64>> = done.into_iter().map(|(v, _)| v).collect();
        let bytes = values.iter().map(|v| v.len() * 8).sum::<usize>();
        let now = Arc::new(BootScalars { seed, replicates, budget, binned, values, draws });
        if bytes <= KEPT_SCALAR_BYTES {
            *kept = Some(now.clone());
        }
        Some(now)
    }
}

/// Per spec, per slice: the positive and negative weight reaching exactly `k` thresholds (the
/// `pos`/`neg` of [`BinaryStats`]), summed in cell order as [`binary_pass`] sums them.
type Counts = Vec<Vec<(Vec<f64>, Vec<f64>)>>;

fn empty_counts(prep: &Prepared, thresholds: usize) -> Counts {
    prep.keys.iter().map(|k| vec![(vec![0.0; thresholds + 1], vec![0.0; thresholds + 1]); k.len()]).collect()
}

/// The overall slice's counts as [`binary_passes`] makes them: merged from a spec whose slices
/// cover every cell (slice by slice, from zero), else its own.
fn merge_overall(counts: &mut Counts, covering: Option<usize>) {
    let Some(c) = covering else { return };
    let t = counts[0][0].0.len();
    let (mut pos, mut neg) = (vec![0.0; t], vec![0.0; t]);
    for (sp, sn) in &counts[c] {
        for (a, b) in pos.iter_mut().zip(sp) { *a += b }
        for (a, b) in neg.iter_mut().zip(sn) { *a += b }
    }
    counts[0][0] = (pos, neg);
}

/// A spec whose slices cover every cell: the overall slice's counts are merged from it.
fn covering_spec(prep: &Prepared) -> Option<usize> {
    (1..prep.keys.len()).find(|a| prep.slice_of_cell[*a].covers_all())
}

/// Every slice's counts over the exact cells, cell `i` weighing `weight(i)`; skipped as
/// [`binary_pass`] skips (no weight, missing label or score).
fn count_cells(prep: &Prepared, k_of_cell: &[u16], thresholds: usize, covering: Option<usize>, weight: impl Fn(usize) -> f64) -> Counts {
    let mut counts = empty_counts(prep, thresholds);
    for i in 0..prep.y.len() {
        let w = weight(i);
        if w <= 0.0 || !prep.y[i].is_finite() || !prep.p[i].is_finite() {
            continue;
        }
        let (k, positive) = (k_of_cell[i] as usize, prep.y[i] == 1.0);
        for (a, sc) in prep.slice_of_cell.iter().enumerate() {
            if a == 0 && covering.is_some() {
                continue;
            }
            if let Some(s) = sc.get(i) {
                let (pos, neg) = &mut counts[a][s as usize];
                if positive { pos[k] += w } else { neg[k] += w }
            }
        }
    }
    merge_overall(&mut counts, covering);
    counts
}

/// A slice's values at every threshold from its counts, as [`flat_binary`] lays them out: per
/// threshold the confusion metrics (registry order), then (tp, fp, tn, fn).
fn threshold_values(pos: &[f64], neg: &[f64], layout: &BinaryLayout, mut push: impl FnMut(Option<f64>)) {
    let stats = BinaryStats { pos: pos.to_vec(), neg: neg.to_vec(), ..Default::default() };
    for (tp, fp, tn, fn_) in stats.confusions() {
        let c = Confusion { tp, fp, tn, fn_ };
        for f in &layout.finishes {
            push(f(&c));
        }
        for v in [tp, fp, tn, fn_] {
            push(Some(v));
        }
    }
}

/// The point values of a binary request per spec, per slice ([`flat_binary`]'s layout): the
/// threshold-free ones computed once per prepared cells and kept, the counts at these thresholds
/// one light pass. Equal to [`binary_passes`] at the point weights, bit for bit.
pub(super) fn binary_point(prep: &Prepared, k_of_cell: &[u16], thresholds: usize) -> Vec<Vec<Vec<Option<f64>>>> {
    let layout = BinaryLayout::get();
    let scalars = prep.point_scalars();
    let counts = count_cells(prep, k_of_cell, thresholds, covering_spec(prep), |i| prep.w[i] * prep.mult[i] as f64);
    scalars
        .iter()
        .zip(&counts)
        .map(|(spec, cs)| {
            spec.iter()
                .zip(cs)
                .map(|(sc, (pos, neg))| {
                    let mut v = Vec::with_capacity(layout.at(thresholds));
                    v.extend_from_slice(sc);
                    threshold_values(pos, neg, &layout, |x| v.push(x));
                    v
                })
                .collect()
        })
        .collect()
}

/// The bootstrap replicates of a binary request, flat per replicate in the point values' layout
/// (per spec, per slice: [`flat_binary`]), NaN for undefined; and whether they walked binned
/// cells. Stops early (fewer replicates) when `progress` is cancelled.
pub(super) fn binary_replicates(prep: &Prepared, req: &MetricsRequest, thresholds: &[f64], k_of_cell: &[u16], budget: usize, progress: &crate::progress::Progress) -> (Vec<Vec<f64>>, bool) {
    let Some(scalars) = prep.boot_scalars(req.seed, req.bootstrap, budget, progress) else { return (vec![], false) };
    let layout = BinaryLayout::get();
    let t = thresholds.len();
    let covering = covering_spec(prep);
    // Over binned cells: every (combination, threshold interval) group's rows and weight.
    let groups: Option<Vec<(u32, u16, u64, f64)>> = scalars.binned.as_ref().map(|bc| {
        let mut acc: std::collections::HashMap<(u32, u16), (u64, f64), crate::eval::FastHashBuilder> = Default::default();
        for (i, c) in bc.combo_of_cell.iter().enumerate() {
            if *c != u32::MAX {
                let e = acc.entry((*c, k_of_cell[i])).or_default();
                e.0 += u64::from(prep.mult[i]);
                e.1 += prep.w[i] * prep.mult[i] as f64;
            }
        }
        let mut g: Vec<(u32, u16, u64, f64)> = acc.into_iter().map(|((c, k), (m, w))| (c, k, m, w)).collect();
        g.sort_unstable_by_key(|(c, k, _, _)| (*c, *k)); // a fixed order for the draws
        g
    });
    let scalars_per_slice = layout.scalars;
    let assemble = |b: usize, counts: &Counts| -> Vec<f64> {
        let mut flat = Vec::with_capacity(scalars.values[b].len() + counts.iter().map(|s| s.len()).sum::<usize>() * t * layout.per_threshold());
        let mut at = 0;
        for spec in counts {
            for (pos, neg) in spec {
                flat.extend_from_slice(&scalars.values[b][at..at + scalars_per_slice]);
                at += scalars_per_slice;
                threshold_values(pos, neg, &layout, |x| flat.push(x.unwrap_or(f64::NAN)));
            }
        }
        flat
    };
    progress.add_total(req.bootstrap as u64);
    let all = on_cores(req.bootstrap, progress, Vec::new, |b, drawn: &mut Vec<f64>| {
        let counts = match (&groups, scalars.binned.as_ref()) {
            (Some(groups), Some(bc)) => {
                let mut counts = empty_counts(prep, t);
                let mut rng = replicate_rng(req.seed ^ GROUP_SALT, b);
                for (c, k, m, w) in groups {
                    let d = rng.poisson(*m as f64);
                    let wb = w / *m as f64 * d;
                    if wb <= 0.0 {
                        continue;
                    }
                    let (slices, positive) = &bc.combos[*c as usize];
                    for (a, s) in slices.iter().enumerate() {
                        if *s != u32::MAX && (a > 0 || covering.is_none()) {
                            let (pos, neg) = &mut counts[a][*s as usize];
                            if *positive { pos[*k as usize] += wb } else { neg[*k as usize] += wb }
                        }
                    }
                }
                merge_overall(&mut counts, covering);
                counts
            }
            _ => match scalars.draws.as_ref().map(|d| &d[b]) {
                Some(kept) => count_cells(prep, k_of_cell, t, covering, |i| prep.w[i] * f64::from(kept[i])),
                None => {
                    let mut rng = replicate_rng(req.seed, b);
                    drawn.clear();
                    drawn.extend(prep.mult.iter().map(|m| rng.poisson(*m as f64)));
                    count_cells(prep, k_of_cell, t, covering, |i| prep.w[i] * drawn[i])
                }
            },
        };
        assemble(b, &counts)
    });
    (all, scalars.binned.is_some())
}
