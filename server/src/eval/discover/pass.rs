//! The row passes: one pass over the rows per feature set, aggregating the statistic vectors per
//! distinct code tuple, then each candidate of the set is the sum over the tuples inside its items.
//!
//! Only the codes some candidate of the set covers matter, so each feature's codes are first mapped
//! to compact indices (in code order, so a code range stays a contiguous index range) with one extra
//! "junk" index for the others. When the product of the compact cardinalities (× the vector size)
//! is small the accumulator is a dense array indexed by the mixed-radix tuple and the loop is
//! branch-free (junk tuples accumulate and are ignored); otherwise a hash map keyed by the compact
//! tuple, skipping rows with a junk code. Feature sets run on up to eight threads; each result is
//! written to its candidates' slots, so the output does not depend on the scheduling.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Feature;
use super::items::Key;
use super::target::RowData;
use crate::eval::FastHashBuilder;

/// The candidates (indices into the key list) sharing one feature set (sorted feature indices).
pub(super) struct Job {
    pub feats: Vec<u32>,
    pub cands: Vec<u32>,
}

/// Largest dense accumulator, in floats (32 MB).
const DENSE_MAX: u128 = 1 << 22;

/// Where a level's passes report: steps `from .. from + span` of `progress` over its jobs.
#[derive(Clone, Copy)]
pub(super) struct Steps<'a> {
    pub progress: &'a crate::progress::Progress,
    pub from: u64,
    pub span: u64,
}

/// The compact statistic vectors (`rows.dc` floats each) of every candidate of every job.
/// Stops taking jobs once `steps.progress` is cancelled (the result is then incomplete).
pub(super) fn run(features: &[Feature], rows: &RowData, keys: &[Key], jobs: &[Job], steps: Steps<'_>) -> Vec<f64> {
    let dc = rows.dc;
    let mut out = vec![0.0; keys.len() * dc];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8).min(jobs.len());
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let work = || {
        let mut scratch = Vec::new();
        let mut done = Vec::new();
        loop {
            if steps.progress.is_cancelled() {
                break;
            }
            let j = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(j) else { break };
            done.push((j, run_job(features, rows, keys, job, &mut scratch)));
            let n = finished.fetch_add(1, Ordering::Relaxed) as u64 + 1;
            steps.progress.reach(steps.from + steps.span * n / jobs.len().max(1) as u64);
        }
        done
    };
    let results: Vec<(usize, Vec<f64>)> = if threads <= 1 {
        work()
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
            // A panicking worker is a bug; its jobs are then recomputed here rather than lost.
            handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
        })
    };
    let mut seen = vec![false; jobs.len()];
    for (j, stats) in results {
        seen[j] = true;
        scatter(&jobs[j], &stats, dc, &mut out);
    }
    if steps.progress.is_cancelled() {
        return out;
    }
    for (_, job) in jobs.iter().enumerate().filter(|(j, _)| !seen[*j]) {
        let stats = run_job(features, rows, keys, job, &mut Vec::new());
        scatter(job, &stats, dc, &mut out);
    }
    out
}

fn scatter(job: &Job, stats: &[f64], dc: usize, out: &mut [f64]) {
    for (i, &c) in job.cands.iter().enumerate() {
        let c = c as usize;
        out[c * dc..(c + 1) * dc].copy_from_slice(&stats[i * dc..(i + 1) * dc]);
    }
}

/// Compact code maps of one feature set.
struct Compact {
    /// Per feature: code → compact index (`card` = junk).
    index: Vec<Vec<u32>>,
    card: Vec<usize>,
}

fn compact(features: &[Feature], keys: &[Key], job: &Job) -> Compact {
    let mut index = Vec::with_capacity(job.feats.len());
    let mut card = Vec::with_capacity(job.feats.len());
    for (j, &f) in job.feats.iter().enumerate() {
        let nl = features[f as usize].labels.len();
        let mut mark = vec![false; nl];
        for &c in &job.cands {
            let it = keys[c as usize][j];
            for m in &mut mark[it.lo as usize..=(it.hi as usize).min(nl.saturating_sub(1))] {
                *m = true;
            }
        }
        let mut next = 0u32;
        let mut map: Vec<u32> = mark
            .iter()
            .map(|&m| {
                next += u32::from(m);
                if m { next - 1 } else { u32::MAX }
            })
            .collect();
        for v in &mut map {
            if *v == u32::MAX {
                *v = next;
            }
        }
        index.push(map);
        card.push(next as usize);
    }
    Compact { index, card }
}

/// Statistic vectors of a job's candidates, in job order.
fn run_job(features: &[Feature], rows: &RowData, keys: &[Key], job: &Job, scratch: &mut Vec<f64>) -> Vec<f64> {
    let cm = compact(features, keys, job);
    let dc = rows.dc;
    let cells: u128 = cm.card.iter().map(|&c| c as u128 + 1).product();
    let n_rows = rows.vals.len() / rows.per_row.max(1);
    let limit = DENSE_MAX.min((4 * n_rows as u128 + 4096).max(1 << 16));
    if let Some((classes, class_vals)) = &rows.classes {
        let nc = class_vals.len() / dc.max(1);
        if cells * nc as u128 <= limit {
            return class_job(features, keys, job, &cm, cells as usize, classes, class_vals, dc);
        }
    }
    if cells * dc as u128 <= limit {
        dense_job(features, rows, keys, job, &cm, cells as usize, scratch)
    } else {
        hash_job(features, rows, keys, job, &cm)
    }
}

fn cols<'a>(features: &'a [Feature], job: &Job) -> Vec<&'a [u32]> {
    job.feats.iter().map(|&f| features[f as usize].codes.as_slice()).collect()
}

/// Strides of a dense accumulator with `unit` slots per tuple, and each feature's code map
/// premultiplied by its stride (a tuple's offset is then a sum of lookups).
fn strided(cm: &Compact, unit: usize) -> (Vec<usize>, Vec<Vec<u32>>) {
    let mut strides = Vec::with_capacity(cm.card.len());
    let mut s = unit;
    for &c in &cm.card {
        strides.push(s);
        s *= c + 1;
    }
    let maps = cm.index.iter().zip(&strides).map(|(m, &st)| m.iter().map(|&i| i * st as u32).collect()).collect();
    (strides, maps)
}

fn dense_job(features: &[Feature], rows: &RowData, keys: &[Key], job: &Job, cm: &Compact, cells: usize, acc: &mut Vec<f64>) -> Vec<f64> {
    let dc = rows.dc;
    acc.clear();
    acc.resize(cells * dc, 0.0);
    // Strides in floats: `dc` per tuple.
    let (strides, maps) = strided(cm, dc);
    let cols = cols(features, job);
    match cols.len() {
        1 => dense_rows::<1>([cols[0]], [&maps[0]], rows, acc),
        2 => dense_rows::<2>([cols[0], cols[1]], [&maps[0], &maps[1]], rows, acc),
        _ => dense_rows::<3>([cols[0], cols[1], cols[2]], [&maps[0], &maps[1], &maps[2]], rows, acc),
    }
    let mut out = vec![0.0; job.cands.len() * dc];
    for (o, &c) in out.chunks_exact_mut(dc).zip(&job.cands) {
        let ranges = ranges(&keys[c as usize], cm);
        for_each_cell(&ranges, |tuple| {
            let off: usize = tuple.iter().zip(&strides).map(|(&t, &st)| t as usize * st).sum();
            for (a, b) in o.iter_mut().zip(&acc[off..off + dc]) {
                *a += b;
            }
        });
    }
    out
}

/// Dense pass counting rows per tuple and row class; vectors are Σ count × class vector.
#[allow(clippy::too_many_arguments)]
fn class_job(features: &[Feature], keys: &[Key], job: &Job, cm: &Compact, cells: usize, classes: &[u8], class_vals: &[f64], dc: usize) -> Vec<f64> {
    let nc = class_vals.len() / dc.max(1);
    let mut acc = vec![0u32; cells * nc];
    let (strides, maps) = strided(cm, nc);
    let cols = cols(features, job);
    match cols.len() {
        1 => class_rows::<1>([cols[0]], [&maps[0]], classes, &mut acc),
        2 => class_rows::<2>([cols[0], cols[1]], [&maps[0], &maps[1]], classes, &mut acc),
        _ => class_rows::<3>([cols[0], cols[1], cols[2]], [&maps[0], &maps[1], &maps[2]], classes, &mut acc),
    }
    let mut out = vec![0.0; job.cands.len() * dc];
    let mut counts = vec![0u64; nc];
    for (o, &c) in out.chunks_exact_mut(dc).zip(&job.cands) {
        counts.iter_mut().for_each(|x| *x = 0);
        for_each_cell(&ranges(&keys[c as usize], cm), |tuple| {
            let off: usize = tuple.iter().zip(&strides).map(|(&t, &st)| t as usize * st).sum();
            for (a, &b) in counts.iter_mut().zip(&acc[off..off + nc]) {
                *a += u64::from(b);
            }
        });
        for (k, &n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            for (a, v) in o.iter_mut().zip(&class_vals[k * dc..(k + 1) * dc]) {
                *a += n as f64 * v;
            }
        }
    }
    out
}

fn class_rows<const K: usize>(cols: [&[u32]; K], maps: [&[u32]; K], classes: &[u8], acc: &mut [u32]) {
    let n = classes.len();
    let cols: [&[u32]; K] = std::array::from_fn(|j| &cols[j][..n]);
    for (r, &c) in classes.iter().enumerate() {
        let b = tuple_offset(&cols, &maps, r);
        acc[b + c as usize] += 1;
    }
}

/// The dense accumulation loop, monomorphised on the number of features.
fn dense_rows<const K: usize>(cols: [&[u32]; K], maps: [&[u32]; K], rows: &RowData, acc: &mut [f64]) {
    let p = rows.per_row;
    match (&rows.offs, p) {
        (None, 1) => dense_fixed::<K, 1>(cols, maps, &rows.vals, acc),
        (None, 2) => dense_fixed::<K, 2>(cols, maps, &rows.vals, acc),
        (None, 3) => dense_fixed::<K, 3>(cols, maps, &rows.vals, acc),
        (None, 4) => dense_fixed::<K, 4>(cols, maps, &rows.vals, acc),
        (None, 5) => dense_fixed::<K, 5>(cols, maps, &rows.vals, acc),
        (None, _) => dense_fixed::<K, 6>(cols, maps, &rows.vals, acc),
        (Some(offs), _) => {
            for (r, (v, o)) in rows.vals.chunks_exact(p).zip(offs.chunks_exact(p)).enumerate() {
                let b = tuple_offset(&cols, &maps, r);
                for (x, &o) in v.iter().zip(o) {
                    acc[b + o as usize] += *x;
                }
            }
        }
    }
}

#[inline(always)]
fn tuple_offset<const K: usize>(cols: &[&[u32]; K], maps: &[&[u32]; K], r: usize) -> usize {
    let mut b = 0usize;
    for j in 0..K {
        b += maps[j][cols[j][r] as usize] as usize;
    }
    b
}

fn dense_fixed<const K: usize, const P: usize>(cols: [&[u32]; K], maps: [&[u32]; K], vals: &[f64], acc: &mut [f64]) {
    let n = vals.len() / P;
    let cols: [&[u32]; K] = std::array::from_fn(|j| &cols[j][..n]);
    for (r, v) in vals.chunks_exact(P).enumerate() {
        let b = tuple_offset(&cols, &maps, r);
        let a = &mut acc[b..b + P];
        for q in 0..P {
            a[q] += v[q];
        }
    }
}

fn hash_job(features: &[Feature], rows: &RowData, keys: &[Key], job: &Job, cm: &Compact) -> Vec<f64> {
    let dc = rows.dc;
    let p = rows.per_row;
    let cols = cols(features, job);
    let mut slots: HashMap<[u32; 3], u32, FastHashBuilder> = HashMap::default();
    let mut acc: Vec<f64> = Vec::new();
    'rows: for (r, v) in rows.vals.chunks_exact(p).enumerate() {
        let mut t = [0u32; 3];
        for (j, col) in cols.iter().enumerate() {
            let i = cm.index[j][col[r] as usize];
            if i as usize == cm.card[j] {
                continue 'rows;
            }
            t[j] = i;
        }
        let slot = *slots.entry(t).or_insert_with(|| {
            acc.resize(acc.len() + dc, 0.0);
            (acc.len() / dc - 1) as u32
        }) as usize;
        let a = &mut acc[slot * dc..(slot + 1) * dc];
        match &rows.offs {
            None => {
                for (x, y) in a.iter_mut().zip(v) {
                    *x += y;
                }
            }
            Some(offs) => {
                for (x, &o) in v.iter().zip(&offs[r * p..(r + 1) * p]) {
                    a[o as usize] += x;
                }
            }
        }
    }
    let mut out = vec![0.0; job.cands.len() * dc];
    for (o, &c) in out.chunks_exact_mut(dc).zip(&job.cands) {
        let ranges = ranges(&keys[c as usize], cm);
        let cells: usize = ranges.iter().map(|(lo, hi)| (hi - lo + 1) as usize).product();
        let mut add = |slot: u32| {
            for (a, b) in o.iter_mut().zip(&acc[slot as usize * dc..(slot as usize + 1) * dc]) {
                *a += b;
            }
        };
        if cells <= slots.len() {
            for_each_cell(&ranges, |tuple| {
                let mut t = [0u32; 3];
                t[..tuple.len()].copy_from_slice(tuple);
                if let Some(&s) = slots.get(&t) {
                    add(s);
                }
            });
        } else {
            // Iterate in slot order so the summation order is deterministic.
            let mut inside: Vec<u32> =
                slots.iter().filter(|(t, _)| ranges.iter().zip(t.iter()).all(|((lo, hi), v)| lo <= v && v <= hi)).map(|(_, &s)| s).collect();
            inside.sort_unstable();
            inside.into_iter().for_each(&mut add);
        }
    }
    out
}

/// Compact index range of each item of a candidate.
fn ranges(key: &Key, cm: &Compact) -> Vec<(u32, u32)> {
    cm.index.iter().zip(key).map(|(map, it)| (map[it.lo as usize], map[it.hi as usize])).collect()
}

/// Calls `f` with every tuple of the box `ranges` (inclusive), last coordinate fastest.
fn for_each_cell(ranges: &[(u32, u32)], mut f: impl FnMut(&[u32])) {
    let mut t: Vec<u32> = ranges.iter().map(|r| r.0).collect();
    if ranges.iter().any(|(lo, hi)| lo > hi) {
        return;
    }
    loop {
        f(&t);
        let mut j = t.len();
        loop {
            if j == 0 {
                return;
            }
            j -= 1;
            if t[j] < ranges[j].1 {
                t[j] += 1;
                break;
            }
            t[j] = ranges[j].0;
        }
    }
}
