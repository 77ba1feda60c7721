//! The measured quantity: per-row additive statistic vectors, the metric and its standard error
//! from a vector, exact recomputation over a row mask, the slice-vs-rest test and the score bounds.
//!
//! # Statistic vectors (`dim` floats, slot 0 is always the unweighted row count)
//! * **Ratio**: `[count, Σnum, Σden, Σnum², Σnum·den, Σden²]`. value R = Σnum/Σden; its variance by
//!   the delta method for the linearised ratio estimator, `(Σnum² − 2RΣnum·den + R²Σden²)/Σden²`
//!   (rows treated as independent draws; this is the usual sandwich variance of a weighted mean).
//! * **AUC**: `[count, Σw²₊, Σw²₋, hist₊[32], hist₋[32]]`, positive / negative weight per score bin;
//!   the bins are score quantiles of the whole data. AUC from the histograms counts pairs in
//!   different bins exactly and pairs within a bin as 1/2; the standard error is Hanley–McNeil's with
//!   the effective sizes n = (Σw)²/Σw². Reported slices get the exact AUC (see [`Prepared::exact_side`]).
//! * **Calibration**: `[count, per score bin (Σw, Σw·d, Σw²d², Σw²d, Σw²)]` with d = p − y. ECE =
//!   Σ_b |D_b| / W with D_b = Σ_b w·d and W = Σw is exact from these. Its standard error linearises
//!   ECE = Σ_i w_i s_b(i) d_i / Σ_i w_i with the bin signs s_b = sign(D_b) held fixed (the |·| is
//!   locally linear): a ratio estimator with num_i = w_i s_b d_i, den_i = w_i, hence
//!   Var ≈ Σ_b (Σw²d² − 2 s_b E Σw²d + E² Σw²) / W². It ignores the kink of |D_b| at 0, so it
//!   understates the noise of small slices whose bins are nearly calibrated (ECE is biased upward
//!   there); treat calibration findings on small slices with care.

use super::{DiscoverError, Estimate, Scoring, Target, Worse};
use crate::eval::stats;

/// Score-quantile bins of the AUC histograms.
pub(super) const AUC_BINS: usize = 32;
/// Equal-width probability bins of the calibration error.
pub(super) const CAL_BINS: usize = 10;

/// Check the target's vectors for equal lengths, finiteness and non-negative weights.
pub(super) fn validate(t: &Target) -> Result<(), DiscoverError> {
    let bad = |s: &str| Err(DiscoverError::InvalidTarget(s.to_string()));
    let n = t.len();
    let same = |what: &str, len: usize| {
        if len == n { Ok(()) } else { Err(DiscoverError::LengthMismatch { what: what.to_string(), expected: n, got: len }) }
    };
    let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
    let nonneg = |v: &[f64]| v.iter().all(|x| *x >= 0.0);
    match t {
        Target::Ratio { num, den, .. } => {
            same("den", den.len())?;
            if !finite(num) || !finite(den) {
                return bad("num and den must be finite");
            }
            if !nonneg(den) {
                return bad("den must be non-negative");
            }
        }
        Target::Auc { score, w, .. } => {
            same("score", score.len())?;
            same("w", w.len())?;
            if !finite(score) || !finite(w) || !nonneg(w) {
                return bad("scores must be finite and weights finite and non-negative");
            }
        }
        Target::Calibration { y, p, w } => {
            same("p", p.len())?;
            same("w", w.len())?;
            if !finite(y) || !finite(p) || !finite(w) || !nonneg(w) {
                return bad("labels and probabilities must be finite and weights finite and non-negative");
            }
        }
    }
    Ok(())
}

/// Which statistic layout is in use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Kind {
    /// `binary`: every num and den is 0 or 1 (unweighted rates), so metric intervals are Wilson's.
    Ratio { sqrt: bool, binary: bool },
    Auc,
    Calibration,
}

/// Per-row contributions in the form the row passes accumulate.
///
/// Each row adds `per_row` values into a tuple's accumulator of `dc` floats: at offsets `0..per_row`
/// when `offs` is `None` (dense rows), else at its own offsets. For Ratio targets only the distinct
/// columns of `[1, num, den, num², num·den, den²]` are accumulated (`expand` maps each full slot to
/// its column): an unweighted error rate needs 2 floats per row instead of 6, which halves the
/// memory traffic of the passes.
pub(super) struct RowData {
    /// When rows take at most 256 distinct compact vectors (unweighted rates): each row's class and
    /// the class vectors (`dc` floats each). The dense passes then count rows per tuple and class
    /// (one byte read per row instead of `8·dc`), and vectors are count × class vector.
    pub classes: Option<(Vec<u8>, Vec<f64>)>,
    pub dc: usize,
    pub per_row: usize,
    pub offs: Option<Vec<u32>>,
    pub vals: Vec<f64>,
    pub expand: Option<Vec<usize>>,
}

impl RowData {
    /// Full statistic vector from an accumulated compact one.
    pub(super) fn expand_into(&self, compact: &[f64], out: &mut [f64]) {
        match &self.expand {
            Some(map) => {
                for (o, &j) in out.iter_mut().zip(map) {
                    *o = compact[j];
                }
            }
            None => out.copy_from_slice(&compact[..out.len()]),
        }
    }
}

/// What score bounds need of a slice; every field is a sum of non-negative per-row terms, so it can
/// only shrink from a slice to a sub-slice, and the elementwise minimum over a candidate's parents
/// bounds the candidate.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Bs {
    pub count: f64,
    /// Σden.
    pub d: f64,
    /// Σ(a·den − num) with a the largest per-row ratio.
    pub x: f64,
    /// Σ(num − b·den) with b the smallest per-row ratio.
    pub y: f64,
    /// Σnum (non-negative per row under SliceLine).
    pub n: f64,
}

impl Bs {
    pub(super) fn min(self, o: Bs) -> Bs {
        Bs { count: self.count.min(o.count), d: self.d.min(o.d), x: self.x.min(o.x), y: self.y.min(o.y), n: self.n.min(o.n) }
    }
}

/// Upper bounds on the score of any slice inside given parents (Ratio targets only).
///
/// With a = max and b = min of the per-row ratios num/den, any slice value is `b + Y/D` and
/// `a − X/D` with Y, X ≥ 0 sums that shrink under sub-slicing and D ≥ `dmin` (the sum of the
/// `min_support` smallest den values). So a child's value is at most `b + Y_P/dmin` and at least
/// `a − X_P/dmin`, and its complement (which contains everything outside the parents) is at least
/// `b + (Y_tot − Y_P)/(D_tot − dmin)` and at most `a − (X_tot − X_P)/(D_tot − dmin)`. The gap's
/// lower confidence bound is below the gap, hence below these extremes' gap. This is loose — a
/// child may consist of the parent's worst rows — so for Gap scoring it prunes only when parents
/// hold few bad rows; AUC and calibration have no bound (no pruning).
pub(super) struct Bounds {
    pub enabled: bool,
    pub a: f64,
    pub b: f64,
    pub dmin: f64,
    pub min_support: f64,
    pub tot: Bs,
}

/// A slice's (or a complement's) size and metric on the raw (un-square-rooted) scale.
#[derive(Clone, Copy, Debug)]
pub(super) struct Side {
    pub count: f64,
    pub weight: f64,
    pub value: f64,
    pub se: f64,
    /// Σnum and Σden (Ratio only), for SliceLine's score.
    pub num: f64,
    pub den: f64,
}

/// A slice against its complement (or a parent's rest), on the reported scale, oriented so that a
/// positive gap means the slice is worse.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cmp {
    pub gap: f64,
    /// One-sided p-value of "slice worse than the rest"; 1 when undefined.
    pub p: f64,
    /// Lower confidence bound of the gap; −∞ when undefined.
    pub lcb: f64,
    /// Upper confidence bound of the gap.
    pub ucb: f64,
}

/// The target, prepared for the search.
pub(super) struct Prepared<'a> {
    pub target: &'a Target,
    pub kind: Kind,
    pub dim: usize,
    pub rows: RowData,
    pub total: Vec<f64>,
    pub bounds: Bounds,
    pub worse: Worse,
    pub scoring: Scoring,
    /// Normal quantile of the two-sided interval at the requested confidence.
    pub z: f64,
    /// AUC: the rows in increasing score order.
    auc_order: Vec<u32>,
}

impl<'a> Prepared<'a> {
    pub(super) fn new(target: &'a Target, worse: Worse, scoring: Scoring, ci: f64, min_support: u64) -> Prepared<'a> {
        let z = stats::normal_quantile(0.5 + ci / 2.0);
        let (kind, dim, rows, auc_order) = match target {
            Target::Ratio { num, den, sqrt } => {
                let binary = num.iter().chain(den).all(|v| *v == 0.0 || *v == 1.0);
                (Kind::Ratio { sqrt: *sqrt, binary }, 6, ratio_rows(num, den), Vec::new())
            }
            Target::Auc { y, score, w } => {
                let (cuts, order) = auc_bins(score);
                (Kind::Auc, 3 + 2 * AUC_BINS, auc_rows(y, score, w, &cuts), order)
            }
            Target::Calibration { y, p, w } => (Kind::Calibration, 1 + 5 * CAL_BINS, cal_rows(y, p, w), Vec::new()),
        };
        let mut prep = Prepared {
            target,
            kind,
            dim,
            rows,
            total: vec![0.0; dim],
            bounds: Bounds { enabled: false, a: 0.0, b: 0.0, dmin: 0.0, min_support: min_support.max(1) as f64, tot: Bs::default() },
            worse,
            scoring,
            z,
            auc_order,
        };
        prep.total = prep.exact_stats(None, true);
        prep.bounds = prep.make_bounds();
        prep
    }

    /// Σ of the statistic vectors of the rows whose mask equals `want` (all rows without a mask),
    /// summed directly from the target (not from the compact row data).
    pub(super) fn exact_stats(&self, mask: Option<&[bool]>, want: bool) -> Vec<f64> {
        let mut s = vec![0.0; self.dim];
        let keep = |r: usize| mask.is_none_or(|m| m.get(r).copied().unwrap_or(false) == want);
        match self.target {
            Target::Ratio { num, den, .. } => {
                for (r, (&a, &b)) in num.iter().zip(den).enumerate() {
                    if keep(r) {
                        for (slot, v) in s.iter_mut().zip([1.0, a, b, a * a, a * b, b * b]) {
                            *slot += v;
                        }
                    }
                }
            }
            _ => {
                let p = self.rows.per_row;
                let offs = self.rows.offs.as_deref().unwrap_or(&[]);
                for r in (0..self.target.len()).filter(|&r| keep(r)) {
                    for q in r * p..(r + 1) * p {
                        s[offs[q] as usize] += self.rows.vals[q];
                    }
                }
            }
        }
        s
    }

    /// The side of a statistic vector (the AUC here is the binned approximation).
    pub(super) fn side(&self, s: &[f64]) -> Side {
        match self.kind {
            Kind::Ratio { .. } => ratio_side(s),
            Kind::Auc => auc_side_binned(s),
            Kind::Calibration => cal_side(s),
        }
    }

    /// The exact side of the rows whose mask equals `want`: as [`Self::side`] of
    /// [`Self::exact_stats`], except that the AUC is exact (rows sorted by score, tied scores
    /// counted as 1/2, weighted — scikit-learn's `roc_auc_score` convention).
    pub(super) fn exact_side(&self, mask: &[bool], want: bool) -> Side {
        let s = self.exact_stats(Some(mask), want);
        let mut side = self.side(&s);
        if let (Target::Auc { y, score, w }, true) = (self.target, side.value.is_finite()) {
            let keep = |r: usize| mask.get(r).copied().unwrap_or(false) == want;
            side.value = exact_auc(self.auc_order.iter().map(|&r| r as usize).filter(|&r| keep(r)).map(|r| (score[r], y[r], w[r])));
            side.se = hanley_mcneil(side.value, &s);
        }
        side
    }

    /// Report-scale transform of a raw value (square root for RMSE-like ratios).
    fn shown(&self, v: f64) -> f64 {
        match self.kind {
            Kind::Ratio { sqrt: true, .. } => v.max(0.0).sqrt(),
            _ => v,
        }
    }

    /// Report-scale standard error by the delta method (d√v = dv / 2√v; at v = 0 the value's own
    /// SE stands in for v, giving √se/2 rather than infinity).
    fn shown_se(&self, side: &Side) -> f64 {
        match self.kind {
            Kind::Ratio { sqrt: true, .. } => side.se / (2.0 * side.value.max(side.se).max(0.0).sqrt()).max(f64::MIN_POSITIVE),
            _ => side.se,
        }
    }

    /// The metric with its interval: Wilson's for unweighted 0/1 ratios (as the slices view shows),
    /// value ± z·SE otherwise (square-rooted end points for `sqrt`).
    pub(super) fn estimate(&self, side: &Side) -> Estimate {
        if !side.value.is_finite() {
            return Estimate::NAN;
        }
        match self.kind {
            Kind::Ratio { sqrt: false, binary: true } => {
                let (lo, hi) = stats::wilson(side.value, side.den, self.z);
                Estimate { value: side.value, lo, hi }
            }
            Kind::Ratio { sqrt: true, .. } => Estimate {
                value: self.shown(side.value),
                lo: self.shown(side.value - self.z * side.se),
                hi: self.shown(side.value + self.z * side.se),
            },
            _ => Estimate { value: side.value, lo: side.value - self.z * side.se, hi: side.value + self.z * side.se },
        }
    }

    /// The oriented gap of slice `s` over the rest `c`, its SE (independent disjoint row sets, so
    /// the variances add), the one-sided p-value of a z-test and the gap's lower bound.
    pub(super) fn compare(&self, s: &Side, c: &Side) -> Cmp {
        let (vs, vc) = (self.shown(s.value), self.shown(c.value));
        let gap = match self.worse {
            Worse::Higher => vs - vc,
            Worse::Lower => vc - vs,
            Worse::FartherFromZero => vs.abs() - vc.abs(),
        };
        let se = self.shown_se(s).hypot(self.shown_se(c));
        if !gap.is_finite() || !se.is_finite() || s.count <= 0.0 || c.count <= 0.0 {
            return Cmp { gap: f64::NAN, p: 1.0, lcb: f64::NEG_INFINITY, ucb: f64::INFINITY };
        }
        if let Kind::Ratio { sqrt: false, binary: true } = self.kind {
            return self.compare_rates(s, c, gap);
        }
        Cmp { gap, p: one_sided(gap, se), lcb: gap - self.z * se, ucb: gap + self.z * se }
    }

    /// Unweighted rates: the Agresti–Caffo interval and test of the difference (each side's rate
    /// with one event and one non-event added, then Wald's). Wald's own SE of a rate is zero at 0
    /// or 1, so a slice with a handful of trials, every one an error, would get a narrow interval
    /// and rank first; Agresti–Caffo stays honest there and matches Wald's elsewhere.
    fn compare_rates(&self, s: &Side, c: &Side, gap: f64) -> Cmp {
        if s.den <= 0.0 || c.den <= 0.0 {
            return Cmp { gap: f64::NAN, p: 1.0, lcb: f64::NEG_INFINITY, ucb: f64::INFINITY };
        }
        let adjusted = |side: &Side| ((side.num + 1.0) / (side.den + 2.0), side.den + 2.0);
        let ((ps, ns), (pc, nc)) = (adjusted(s), adjusted(c));
        let centre = if self.worse == Worse::Lower { pc - ps } else { ps - pc };
        let se = (ps * (1.0 - ps) / ns + pc * (1.0 - pc) / nc).sqrt();
        Cmp { gap, p: one_sided(centre, se), lcb: centre - self.z * se, ucb: centre + self.z * se }
    }

    /// The ranking score of a slice: the gap's lower bound, or SliceLine's score
    /// α·((e_S/|S|)/ē − 1) − (1−α)·(n/|S| − 1) with e = Σnum and sizes Σden.
    pub(super) fn score(&self, s: &Side, cmp: &Cmp) -> f64 {
        let v = match self.scoring {
            Scoring::Gap => cmp.lcb,
            Scoring::SliceLine { alpha } => sliceline(alpha, s.num, s.den, self.bounds.tot.n, self.bounds.tot.d),
        };
        if v.is_nan() { f64::NEG_INFINITY } else { v }
    }

    /// The bound fields of a statistic vector.
    pub(super) fn bs(&self, s: &[f64]) -> Bs {
        match self.kind {
            Kind::Ratio { .. } => {
                let (a, b) = (self.bounds.a, self.bounds.b);
                let (n, d) = (s[1], s[2]);
                Bs { count: s[0], d, x: (a * d - n).max(0.0), y: (n - b * d).max(0.0), n }
            }
            _ => Bs { count: s[0], ..Bs::default() },
        }
    }

    /// An upper bound of the score of any examinable slice inside parents whose elementwise
    /// minimum is `bs`; −∞ when no such slice can reach `min_support` rows.
    pub(super) fn bound(&self, bs: &Bs) -> f64 {
        let b = &self.bounds;
        if bs.count < b.min_support {
            return f64::NEG_INFINITY;
        }
        if !b.enabled {
            return f64::INFINITY;
        }
        let v = match self.scoring {
            Scoring::Gap => self.gap_bound(bs),
            Scoring::SliceLine { alpha } => self.sliceline_bound(bs, alpha),
        };
        // Slack for the rounding of sums taken in different orders.
        if v.is_nan() { f64::INFINITY } else { v + 1e-9 * (1.0 + v.abs()) }
    }

    fn gap_bound(&self, bs: &Bs) -> f64 {
        let b = &self.bounds;
        let (v_hi, v_lo) = if b.dmin > 0.0 { ((b.b + bs.y / b.dmin).min(b.a), (b.a - bs.x / b.dmin).max(b.b)) } else { (b.a, b.b) };
        let rest = b.tot.d - b.dmin;
        let (c_lo, c_hi) =
            if rest > 0.0 { (b.b + (b.tot.y - bs.y).max(0.0) / rest, b.a - (b.tot.x - bs.x).max(0.0) / rest) } else { (b.b, b.a) };
        let (v_hi, v_lo, c_lo, c_hi) = (self.shown(v_hi), self.shown(v_lo), self.shown(c_lo), self.shown(c_hi));
        match self.worse {
            Worse::Higher => v_hi - c_lo,
            Worse::Lower => c_hi - v_lo,
            Worse::FartherFromZero => {
                let c_near = if c_lo <= 0.0 && 0.0 <= c_hi { 0.0 } else { c_lo.abs().min(c_hi.abs()) };
                v_hi.abs().max(v_lo.abs()) - c_near
            }
        }
    }

    /// SliceLine's bound: with sizes s in [dmin, D_P] and errors e ≤ min(Σnum_P, a·s), the score is
    /// increasing in s while e = a·s and monotone in s once e = Σnum_P, so its maximum is at one of
    /// s = dmin, Σnum_P/a (clamped) or D_P.
    fn sliceline_bound(&self, bs: &Bs, alpha: f64) -> f64 {
        let b = &self.bounds;
        if bs.d < b.dmin * (1.0 - 1e-12) || b.a <= 0.0 {
            return f64::NEG_INFINITY;
        }
        let turn = (bs.n / b.a).clamp(b.dmin, bs.d);
        [b.dmin, turn, bs.d]
            .into_iter()
            .filter(|s| *s > 0.0)
            .map(|s| sliceline(alpha, bs.n.min(b.a * s), s, b.tot.n, b.tot.d))
            .fold(f64::NEG_INFINITY, f64::max)
    }

    fn make_bounds(&self) -> Bounds {
        let ms = self.bounds.min_support;
        let Target::Ratio { num, den, .. } = self.target else {
            return Bounds { enabled: false, a: 0.0, b: 0.0, dmin: 0.0, min_support: ms, tot: Bs { count: self.total[0], ..Bs::default() } };
        };
        let (mut a, mut b, mut ok) = (f64::NEG_INFINITY, f64::INFINITY, true);
        for (&n, &d) in num.iter().zip(den) {
            if d > 0.0 {
                a = a.max(n / d);
                b = b.min(n / d);
            } else if n != 0.0 {
                ok = false;
            }
        }
        let enabled = ok && a.is_finite() && b.is_finite();
        let mut dens = den.clone();
        let k = (ms as usize).min(dens.len());
        let dmin = if k == 0 {
            0.0
        } else {
            dens.select_nth_unstable_by(k - 1, f64::total_cmp);
            dens[..k].iter().sum()
        };
        let (n, d) = (self.total[1], self.total[2]);
        let tot = Bs { count: self.total[0], d, x: (a * d - n).max(0.0), y: (n - b * d).max(0.0), n };
        Bounds { enabled, a, b, dmin, min_support: ms, tot }
    }
}

/// One-sided p-value of a gap with standard error `se` (a gap with no spread: 0 if positive, else 1).
fn one_sided(gap: f64, se: f64) -> f64 {
    if se > 0.0 {
        stats::normal_cdf(-gap / se)
    } else if gap > 0.0 {
        0.0
    } else {
        1.0
    }
}

/// SliceLine's score of a slice with error sum `e` and size `s` in data with `e_tot`, `n_tot`: the
/// package's formula ([`super::sliceline::score`]); nothing scores in data without errors.
pub(super) fn sliceline(alpha: f64, e: f64, s: f64, e_tot: f64, n_tot: f64) -> f64 {
    let ebar = e_tot / n_tot;
    if !(s > 0.0 && ebar > 0.0) {
        return f64::NEG_INFINITY;
    }
    super::sliceline::score(s, e, n_tot, alpha, ebar)
}

fn ratio_side(s: &[f64]) -> Side {
    let (count, n, d) = (s[0], s[1], s[2]);
    if d <= 0.0 {
        return Side { count, weight: d, value: f64::NAN, se: f64::NAN, num: n, den: d };
    }
    let r = n / d;
    let var = ((s[3] - 2.0 * r * s[4] + r * r * s[5]) / (d * d)).max(0.0);
    Side { count, weight: d, value: r, se: var.sqrt(), num: n, den: d }
}

/// Layout offsets of the AUC vector.
const AUC_W2: usize = 1;
const AUC_HIST: usize = 3;

fn auc_side_binned(s: &[f64]) -> Side {
    let (pos, neg) = s[AUC_HIST..].split_at(AUC_BINS);
    let (wp, wn): (f64, f64) = (pos.iter().sum(), neg.iter().sum());
    let nan = Side { count: s[0], weight: wp + wn, value: f64::NAN, se: f64::NAN, num: 0.0, den: 0.0 };
    if !(wp > 0.0 && wn > 0.0) {
        return nan;
    }
    let mut below = 0.0;
    let mut acc = 0.0;
    for (p, n) in pos.iter().zip(neg) {
        acc += p * (below + 0.5 * n);
        below += n;
    }
    let auc = (acc / (wp * wn)).clamp(0.0, 1.0);
    Side { value: auc, se: hanley_mcneil(auc, s), ..nan }
}

/// Hanley & McNeil (1982) standard error of an AUC with the effective numbers of positives and
/// negatives (Σw)²/Σw² from the statistic vector.
fn hanley_mcneil(auc: f64, s: &[f64]) -> f64 {
    let (pos, neg) = s[AUC_HIST..].split_at(AUC_BINS);
    let (wp, wn): (f64, f64) = (pos.iter().sum(), neg.iter().sum());
    let n1 = wp * wp / s[AUC_W2];
    let n2 = wn * wn / s[AUC_W2 + 1];
    let (q1, q2) = (auc / (2.0 - auc), 2.0 * auc * auc / (1.0 + auc));
    let var = (auc * (1.0 - auc) + (n1 - 1.0) * (q1 - auc * auc) + (n2 - 1.0) * (q2 - auc * auc)) / (n1 * n2);
    var.max(0.0).sqrt()
}

/// Exact weighted AUC of (score, label, weight) triples in increasing score order: pairs with
/// tied scores count 1/2 (the trapezoid rule of `roc_auc_score`).
fn exact_auc(rows: impl Iterator<Item = (f64, bool, f64)>) -> f64 {
    let (mut below, mut acc, mut wp, mut wn) = (0.0, 0.0, 0.0, 0.0);
    let (mut cur, mut gp, mut gn) = (f64::NAN, 0.0, 0.0);
    let flush = |gp: f64, gn: f64, below: &mut f64, acc: &mut f64| {
        *acc += gp * (*below + 0.5 * gn);
        *below += gn;
    };
    for (s, y, w) in rows {
        if s != cur {
            flush(gp, gn, &mut below, &mut acc);
            (cur, gp, gn) = (s, 0.0, 0.0);
        }
        if y {
            gp += w;
            wp += w;
        } else {
            gn += w;
            wn += w;
        }
    }
    flush(gp, gn, &mut below, &mut acc);
    if wp > 0.0 && wn > 0.0 { acc / (wp * wn) } else { f64::NAN }
}

/// Layout of the calibration vector: slot 0 the count, then five sums per bin.
fn cal_side(s: &[f64]) -> Side {
    let bins = || s[1..].chunks_exact(5);
    let w: f64 = bins().map(|b| b[0]).sum();
    if w <= 0.0 {
        return Side { count: s[0], weight: w, value: f64::NAN, se: f64::NAN, num: 0.0, den: 0.0 };
    }
    let e: f64 = bins().map(|b| b[1].abs()).sum::<f64>() / w;
    let var: f64 = bins().map(|b| b[2] - 2.0 * b[1].signum() * e * b[3] + e * e * b[4]).sum::<f64>() / (w * w);
    Side { count: s[0], weight: w, value: e, se: var.max(0.0).sqrt(), num: 0.0, den: 0.0 }
}

/// Ratio rows: the distinct columns of [1, num, den, num², num·den, den²] (exact per-row equality).
fn ratio_rows(num: &[f64], den: &[f64]) -> RowData {
    let cols = |a: f64, b: f64| [1.0, a, b, a * a, a * b, b * b];
    let mut same = [[true; 6]; 6];
    for (&a, &b) in num.iter().zip(den) {
        let c = cols(a, b);
        for i in 0..6 {
            for j in i + 1..6 {
                same[i][j] &= c[i] == c[j];
            }
        }
    }
    let mut map = [0usize; 6];
    let mut basis: Vec<usize> = Vec::new();
    for j in 0..6 {
        match basis.iter().position(|&i| same[i][j]) {
            Some(k) => map[j] = k,
            None => {
                map[j] = basis.len();
                basis.push(j);
            }
        }
    }
    let dc = basis.len();
    let mut vals = Vec::with_capacity(num.len() * dc);
    for (&a, &b) in num.iter().zip(den) {
        let c = cols(a, b);
        vals.extend(basis.iter().map(|&i| c[i]));
    }
    let classes = row_classes(&vals, dc);
    RowData { classes, dc, per_row: dc, offs: None, vals, expand: Some(map.to_vec()) }
}

/// Row classes of dense row vectors when there are at most 256 distinct ones.
fn row_classes(vals: &[f64], dc: usize) -> Option<(Vec<u8>, Vec<f64>)> {
    let mut seen: std::collections::HashMap<Vec<u64>, u8, crate::eval::FastHashBuilder> = Default::default();
    let mut class_vals = Vec::new();
    let mut classes = Vec::with_capacity(vals.len() / dc.max(1));
    for v in vals.chunks_exact(dc.max(1)) {
        let bits: Vec<u64> = v.iter().map(|x| x.to_bits()).collect();
        let c = match seen.get(&bits) {
            Some(&c) => c,
            None => {
                if seen.len() == 256 {
                    return None;
                }
                let c = seen.len() as u8;
                seen.insert(bits, c);
                class_vals.extend_from_slice(v);
                c
            }
        };
        classes.push(c);
    }
    Some((classes, class_vals))
}

/// Score-quantile cut points (deduplicated) and the rows sorted by score.
fn auc_bins(score: &[f64]) -> (Vec<f64>, Vec<u32>) {
    let mut order: Vec<u32> = (0..score.len() as u32).collect();
    order.sort_by(|&a, &b| score[a as usize].total_cmp(&score[b as usize]));
    let sorted: Vec<f64> = order.iter().map(|&r| score[r as usize]).collect();
    let mut cuts: Vec<f64> = (1..AUC_BINS).map(|i| stats::quantile_sorted(&sorted, i as f64 / AUC_BINS as f64)).filter(|c| c.is_finite()).collect();
    cuts.dedup();
    (cuts, order)
}

fn auc_rows(y: &[bool], score: &[f64], w: &[f64], cuts: &[f64]) -> RowData {
    let mut offs = Vec::with_capacity(3 * y.len());
    let mut vals = Vec::with_capacity(3 * y.len());
    for ((&yy, &s), &w) in y.iter().zip(score).zip(w) {
        let bin = cuts.partition_point(|c| *c <= s).min(AUC_BINS - 1);
        let label = usize::from(!yy);
        offs.extend([0, (AUC_W2 + label) as u32, (AUC_HIST + label * AUC_BINS + bin) as u32]);
        vals.extend([1.0, w * w, w]);
    }
    RowData { classes: None, dc: 3 + 2 * AUC_BINS, per_row: 3, offs: Some(offs), vals, expand: None }
}

fn cal_rows(y: &[f64], p: &[f64], w: &[f64]) -> RowData {
    let mut offs = Vec::with_capacity(6 * y.len());
    let mut vals = Vec::with_capacity(6 * y.len());
    for ((&y, &p), &w) in y.iter().zip(p).zip(w) {
        let bin = ((p * CAL_BINS as f64).floor().max(0.0) as usize).min(CAL_BINS - 1);
        let d = p - y;
        let base = (1 + 5 * bin) as u32;
        offs.extend([0, base, base + 1, base + 2, base + 3, base + 4]);
        vals.extend([1.0, w, w * d, w * w * d * d, w * w * d, w * w]);
    }
    RowData { classes: None, dc: 1 + 5 * CAL_BINS, per_row: 6, offs: Some(offs), vals, expand: None }
}
