//! Binary classification: the mergeable statistics of a slice (TFMA's combiners), their
//! finish through the metric registry, one pass over the sorted cells per spec, and the flat
//! layout of a slice's values that the bootstrap replicates.

use super::*;

/// Mergeable statistics of one slice for binary classification.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BinaryStats {
    /// Weight of positives / negatives whose score reaches exactly `k` thresholds.
    pub pos: Vec<f64>,
    pub neg: Vec<f64>,
    pub count: u64,
    pub weight: f64,
    pub weight_sq: f64,
    pub sum_y: f64,
    pub sum_p: f64,
    pub sum_log_loss: f64,
    pub sum_brier: f64,
    /// Ten calibration bins: (weight, Σw·p, Σw·y).
    pub calibration: [(f64, f64, f64); 10],
}

impl BinaryStats {
    pub fn new(thresholds: usize) -> Self {
        BinaryStats { pos: vec![0.0; thresholds + 1], neg: vec![0.0; thresholds + 1], ..Default::default() }
    }

    /// Adds one example that reaches `k` thresholds.
    pub fn add(&mut self, k: usize, y: f64, p: f64, w: f64) {
        self.add_terms(k, y, p, w, 1, row_log_loss(y, p), calibration_bin(p));
    }

    /// Adds `rows` identical examples of total weight `w` whose log loss and calibration bin were
    /// computed once (they do not change between bootstrap replicates, only the weight does).
    #[inline(always)]
    pub(super) fn add_terms(&mut self, k: usize, y: f64, p: f64, w: f64, rows: u64, log_loss: f64, bin: u8) {
        if y == 1.0 { self.pos[k] += w } else { self.neg[k] += w }
        self.count += rows;
        self.weight += w;
        self.weight_sq += w * w;
        self.sum_y += w * y;
        self.sum_p += w * p;
        self.sum_log_loss += w * log_loss;
        self.sum_brier += w * (p - y) * (p - y);
        let c = &mut self.calibration[bin as usize];
        c.0 += w;
        c.1 += w * p;
        c.2 += w * y;
    }

    /// Adds another accumulator's statistics (the results of another chunk of rows).
    pub fn merge(&mut self, o: &BinaryStats) {
        for (a, b) in self.pos.iter_mut().zip(&o.pos) { *a += b }
        for (a, b) in self.neg.iter_mut().zip(&o.neg) { *a += b }
        self.count += o.count;
        self.weight += o.weight;
        self.weight_sq += o.weight_sq;
        self.sum_y += o.sum_y;
        self.sum_p += o.sum_p;
        self.sum_log_loss += o.sum_log_loss;
        self.sum_brier += o.sum_brier;
        for (a, b) in self.calibration.iter_mut().zip(&o.calibration) {
            a.0 += b.0;
            a.1 += b.1;
            a.2 += b.2;
        }
    }

    /// (tp, fp, tn, fn) at threshold index `j` (scores >= thresholds[j] are positive).
    pub fn confusion(&self, j: usize) -> (f64, f64, f64, f64) {
        let tp: f64 = self.pos[j + 1..].iter().sum();
        let fp: f64 = self.neg[j + 1..].iter().sum();
        let p: f64 = self.pos.iter().sum();
        let n: f64 = self.neg.iter().sum();
        (tp, fp, n - fp, p - tp)
    }

    /// (tp, fp, tn, fn) at every threshold, from running sums (one walk, not one per threshold).
    pub fn confusions(&self) -> Vec<(f64, f64, f64, f64)> {
        let t = self.pos.len() - 1;
        let (p, n): (f64, f64) = (self.pos.iter().sum(), self.neg.iter().sum());
        let mut out = vec![(0.0, 0.0, 0.0, 0.0); t];
        let (mut tp, mut fp) = (0.0, 0.0);
        for j in (0..t).rev() {
            tp += self.pos[j + 1];
            fp += self.neg[j + 1];
            out[j] = (tp, fp, n - fp, p - tp);
        }
        out
    }

    /// One threshold-free statistic's value by name (`None` if undefined or unknown here).
    pub fn scalar(&self, name: &str) -> Option<f64> {
        let r = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        match name {
            "log_loss" => r(self.sum_log_loss, self.weight),
            "brier_score" => r(self.sum_brier, self.weight),
            "mean_score" => r(self.sum_p, self.weight),
            "base_rate" => r(self.sum_y, self.weight),
            "expected_calibration_error" => (self.weight > 0.0).then(|| self.calibration.iter().map(|(_, sp, sy)| (sp - sy).abs()).sum::<f64>() / self.weight),
            _ => None,
        }
    }
}

/// A binary row's log loss before weighting (kept per cell: a logarithm costs more than the
/// 8 bytes; the Brier term is recomputed, it is one multiplication). As scikit-learn computes it:
/// the probability of the true class, `p` or `1 - p`, clipped to [ε, 1 − ε] (ε the float64
/// machine epsilon), so a score of exactly 0 or 1 costs −ln ε ≈ 36.04 when wrong.
pub(super) fn row_log_loss(y: f64, p: f64) -> f64 {
    clipped_neg_ln(if y == 1.0 { p } else { 1.0 - p })
}

/// −ln of a probability clipped to [ε, 1 − ε], ε = `f64::EPSILON` (scikit-learn's `log_loss`).
pub(crate) fn clipped_neg_ln(p: f64) -> f64 {
    -p.clamp(f64::EPSILON, 1.0 - f64::EPSILON).ln()
}

/// The calibration bin (of ten) of a score.
#[inline]
pub(super) fn calibration_bin(p: f64) -> u8 {
    ((p * 10.0) as usize).min(9) as u8
}

/// The confusion-matrix metrics by name, as scikit-learn defines them (undefined = `None`).
pub fn confusion_metrics(tp: f64, fp: f64, tn: f64, fn_: f64) -> BTreeMap<&'static str, Option<f64>> {
    let c = Confusion { tp, fp, tn, fn_ };
    registry::confusion_metrics().map(|m| m.name).zip(registry::confusion_values(&c)).collect()
}

/// Per slice: the binary statistics plus the exact ranking metrics.
#[derive(Clone, Debug)]
pub(super) struct SlicePass {
    pub(super) stats: BinaryStats,
    pub(super) auc: Option<f64>,
    pub(super) ap: Option<f64>,
}

/// One pass over the cells for one spec with the given effective weights (cells are sorted by
/// score, descending, so tied scores are closed together, as scikit-learn does).
pub(super) fn binary_pass(prep: &Prepared, spec: usize, k_of_cell: &[u16], w: &[f64], thresholds: usize) -> Vec<SlicePass> {
    let (y, p, slice_of_cell) = (&prep.y, &prep.p, &prep.slice_of_cell[spec]);
    let n_slices = prep.keys[spec].len();
    let mut stats = vec![BinaryStats::new(thresholds); n_slices];
    let (mut tp, mut fp, mut area, mut ap) = (vec![0.0; n_slices], vec![0.0; n_slices], vec![0.0; n_slices], vec![0.0; n_slices]);
    let (mut tp0, mut fp0) = (vec![0.0; n_slices], vec![0.0; n_slices]);
    let mut touched: Vec<usize> = Vec::new();
    let mut is_touched = vec![false; n_slices];
    let n = y.len();
    let mut i = 0;
    while i < n {
        let score = p[i];
        while i < n && p[i].to_bits() == score.to_bits() {
            let r = i;
            i += 1;
            let Some(s) = slice_of_cell.get(r) else { continue };
            let (s, wr) = (s as usize, w[r]);
            if wr <= 0.0 || !y[r].is_finite() || !p[r].is_finite() {
                continue;
            }
            stats[s].add_terms(k_of_cell[r] as usize, y[r], p[r], wr, prep.mult[r] as u64, prep.log_loss[r], prep.bins[r]);
            if !is_touched[s] {
                is_touched[s] = true;
                touched.push(s);
                tp0[s] = tp[s];
                fp0[s] = fp[s];
            }
            if y[r] == 1.0 { tp[s] += wr } else { fp[s] += wr }
        }
        for &s in &touched {
            area[s] += (fp[s] - fp0[s]) * (tp[s] + tp0[s]) / 2.0;
            let dtp = tp[s] - tp0[s];
            if dtp > 0.0 {
                ap[s] += dtp * tp[s] / (tp[s] + fp[s]);
            }
            is_touched[s] = false;
        }
        touched.clear();
    }
    stats
        .into_iter()
        .enumerate()
        .map(|(s, st)| {
            let (pos, neg) = (tp[s], fp[s]);
            SlicePass { stats: st, auc: (pos > 0.0 && neg > 0.0).then(|| area[s] / (pos * neg)), ap: (pos > 0.0).then(|| ap[s] / pos) }
        })
        .collect()
}

/// Every spec's slice passes. The overall slice (spec 0) is not walked in full when another
/// spec's slices cover every cell (a feature slicing: missing values are a slice too): its
/// statistics are those slices' merged, and only its ranking metrics need a (light) walk.
pub(super) fn binary_passes(prep: &Prepared, k_of_cell: &[u16], w: &[f64], thresholds: usize) -> Vec<Vec<SlicePass>> {
    let specs = prep.keys.len();
    let covering = (1..specs).find(|a| prep.slice_of_cell[*a].covers_all());
    let mut out: Vec<Vec<SlicePass>> = Vec::with_capacity(specs);
    out.push(Vec::new());
    for a in 1..specs {
        out.push(binary_pass(prep, a, k_of_cell, w, thresholds));
    }
    out[0] = match covering {
        Some(c) => {
            let mut stats = BinaryStats::new(thresholds);
            for sp in &out[c] {
                stats.merge(&sp.stats);
            }
            let (auc, ap) = ranking_pass(prep, w);
            vec![SlicePass { stats, auc, ap }]
        }
        None => binary_pass(prep, 0, k_of_cell, w, thresholds),
    };
    out
}

/// Exact AUC and average precision over all cells (ties closed together, as in `binary_pass`).
pub(super) fn ranking_pass(prep: &Prepared, w: &[f64]) -> (Option<f64>, Option<f64>) {
    let (y, p) = (&prep.y, &prep.p);
    let (mut tp, mut fp, mut area, mut ap) = (0.0, 0.0, 0.0, 0.0);
    let n = y.len();
    let mut i = 0;
    while i < n {
        let score = p[i];
        let (tp0, fp0) = (tp, fp);
        while i < n && p[i].to_bits() == score.to_bits() {
            let r = i;
            i += 1;
            if w[r] <= 0.0 || !y[r].is_finite() || !p[r].is_finite() {
                continue;
            }
            if y[r] == 1.0 { tp += w[r] } else { fp += w[r] }
        }
        area += (fp - fp0) * (tp + tp0) / 2.0;
        let dtp = tp - tp0;
        if dtp > 0.0 {
            ap += dtp * tp / (tp + fp);
        }
    }
    ((tp > 0.0 && fp > 0.0).then(|| area / (tp * fp)), (tp > 0.0).then(|| ap / tp))
}

/// Per threshold, the flat vectors hold the confusion metrics (registry order) and then these counts.
pub(super) const COUNT_NAMES: [&str; 4] = ["tp", "fp", "tn", "fn"];

/// The flat value vectors' layout: the threshold-free binary metrics, then per threshold the
/// confusion metrics and the counts, each in registry order.
pub(super) struct BinaryLayout {
    pub(super) scalars: usize,
    pub(super) confusion: usize,
    /// The threshold-free metrics' names, in registry order.
    pub(super) scalar_names: Vec<&'static str>,
    /// The confusion metrics' finishes, in registry order (looked up once, not per replicate).
    pub(super) finishes: Vec<fn(&Confusion) -> Option<f64>>,
}

impl BinaryLayout {
    pub(super) fn get() -> BinaryLayout {
        let scalar_names: Vec<&'static str> = registry::names(Family::Binary).collect();
        let finishes: Vec<fn(&Confusion) -> Option<f64>> = registry::confusion_metrics()
            .map(|m| match m.finish {
                Finish::Confusion { value, .. } => value,
                Finish::Engine => |_: &Confusion| None,
            })
            .collect();
        BinaryLayout { scalars: scalar_names.len(), confusion: finishes.len(), scalar_names, finishes }
    }

    pub(super) fn per_threshold(&self) -> usize {
        self.confusion + COUNT_NAMES.len()
    }

    /// Where threshold `j`'s values start.
    pub(super) fn at(&self, j: usize) -> usize {
        self.scalars + j * self.per_threshold()
    }

    /// Where threshold `j`'s (tp, fp, tn, fn) start.
    pub(super) fn counts_at(&self, j: usize) -> usize {
        self.at(j) + self.confusion
    }

    /// Where confusion metric `name` is at threshold `j`.
    pub(super) fn metric_at(&self, j: usize, name: &str) -> Option<usize> {
        registry::confusion_metrics().position(|m| m.name == name).map(|i| self.at(j) + i)
    }
}

/// A metric's place in the flat value vectors.
pub(super) struct MetricSlot {
    /// `auc_roc`, `fpr@0.5`: the key in `vs_baseline`.
    pub(super) key: String,
    pub(super) base: &'static str,
    /// Index of the threshold, for threshold metrics.
    pub(super) at: Option<usize>,
}

pub(super) fn binary_slots(thresholds: &[f64]) -> Vec<MetricSlot> {
    let mut out: Vec<MetricSlot> = registry::names(Family::Binary).map(|n| MetricSlot { key: n.to_string(), base: n, at: None }).collect();
    for (j, t) in thresholds.iter().enumerate() {
        out.extend(registry::names(Family::AtThreshold).chain(COUNT_NAMES).map(|n| MetricSlot { key: format!("{n}@{t}"), base: n, at: Some(j) }));
    }
    out
}

/// Every metric of one slice pass, in the order of `binary_slots`.
pub(super) fn flat_binary(sp: &SlicePass, thresholds: usize, layout: &BinaryLayout) -> Vec<Option<f64>> {
    let mut v = Vec::with_capacity(layout.at(thresholds));
    v.extend(layout.scalar_names.iter().map(|n| match *n {
        "auc_roc" => sp.auc,
        "auc_pr" => sp.ap,
        other => sp.stats.scalar(other),
    }));
    for (tp, fp, tn, fn_) in sp.stats.confusions() {
        let c = Confusion { tp, fp, tn, fn_ };
        v.extend(layout.finishes.iter().map(|f| f(&c)));
        v.extend([Some(tp), Some(fp), Some(tn), Some(fn_)]);
    }
    v
}

/// The range of a slice's AUC and average precision over every order of the rows inside each
/// group of tied cell scores (a score bucket), at the point weights (see [`tie_bounds`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct TieBounds {
    pub(super) auc: Option<(f64, f64)>,
    pub(super) ap: Option<(f64, f64)>,
}

impl TieBounds {
    pub(super) fn named(&self) -> BTreeMap<String, strata_app::model::Bounds> {
        let b = |(lower, upper): (f64, f64)| strata_app::model::Bounds { lower, upper };
        self.auc.map(|x| ("auc_roc".to_string(), b(x))).into_iter().chain(self.ap.map(|x| ("auc_pr".to_string(), b(x)))).collect()
    }
}

/// Per spec, per slice: [`TieBounds`]. Within a group of `a` positive and `b` negative weight,
/// after `T` positive and `Q` total weight of higher scores, the ties count the area `a·b/2`
/// and every positive at precision `(T+a)/(Q+a+b)`:
/// - AUC moves by at most `a·b/2` either way (all the group's positives above its negatives, or
///   below them);
/// - a positive's precision is at most `(T+a)/(Q+a)` (no negative of its group above it, and
///   precision grows along the positives) and at least `(T+x)/(Q+b+x)` where `x` is the
///   positive weight up to it (every negative above it); the sum of the latter over the
///   positives is at least its integral `a − (Q+b−T)·ln(1 + a/(Q+b))` (a right sum of a
///   growing function).
pub(super) fn tie_bounds(prep: &Prepared) -> Vec<Vec<TieBounds>> {
    let (y, p) = (&prep.y, &prep.p);
    let n = y.len();
    (0..prep.keys.len())
        .map(|spec| {
            let slice_of_cell = &prep.slice_of_cell[spec];
            let k = prep.keys[spec].len();
            let (mut tp, mut fp, mut area, mut ties) = (vec![0.0; k], vec![0.0; k], vec![0.0; k], vec![0.0; k]);
            let (mut ap_lo, mut ap_hi, mut tp0, mut fp0) = (vec![0.0; k], vec![0.0; k], vec![0.0; k], vec![0.0; k]);
            let mut touched: Vec<usize> = Vec::new();
            let mut is_touched = vec![false; k];
            let mut i = 0;
            while i < n {
                let score = p[i];
                while i < n && p[i].to_bits() == score.to_bits() {
                    let r = i;
                    i += 1;
                    let Some(s) = slice_of_cell.get(r) else { continue };
                    let (s, w) = (s as usize, prep.w[r] * prep.mult[r] as f64);
                    if w <= 0.0 || !y[r].is_finite() || !p[r].is_finite() {
                        continue;
                    }
                    if !is_touched[s] {
                        is_touched[s] = true;
                        touched.push(s);
                        tp0[s] = tp[s];
                        fp0[s] = fp[s];
                    }
                    if y[r] == 1.0 { tp[s] += w } else { fp[s] += w }
                }
                for &s in &touched {
                    let (a, b, t, q) = (tp[s] - tp0[s], fp[s] - fp0[s], tp0[s], tp0[s] + fp0[s]);
                    area[s] += b * (tp[s] + tp0[s]) / 2.0;
                    ties[s] += a * b;
                    if a > 0.0 {
                        ap_hi[s] += a * (t + a) / (q + a);
                        let r = q + b;
                        ap_lo[s] += if r > 0.0 { (a - (r - t) * (a / r).ln_1p()).max(0.0) } else { a };
                    }
                    is_touched[s] = false;
                }
                touched.clear();
            }
            (0..k)
                .map(|s| {
                    let (pos, neg) = (tp[s], fp[s]);
                    TieBounds {
                        auc: (pos > 0.0 && neg > 0.0).then(|| ((area[s] - ties[s] / 2.0) / (pos * neg), (area[s] + ties[s] / 2.0) / (pos * neg))),
                        ap: (pos > 0.0).then(|| (ap_lo[s] / pos, (ap_hi[s] / pos).min(1.0))),
                    }
                })
                .collect()
        })
        .collect()
}
