//! Feature distribution drift between a reference run and the current run: per feature, the
//! population stability index, Jensen–Shannon and Hellinger distances over bins, and a test
//! (two-sample Kolmogorov–Smirnov for numbers, chi-squared for categories) with a p-value;
//! the same for every model column both runs have and for the label (prior-probability shift).
//!
//! Numeric bins are the reference's deciles (deduplicated), open at both ends; categories are the
//! union of both runs' values (the 50 most frequent, the rest pooled as "(other)"); missing values
//! are their own bin. A feature is flagged when PSI ≥ 0.1 (the usual "moderate shift") and its
//! Benjamini–Hochberg q ≤ 0.05, so neither a tiny significant shift on a big run nor a large noisy
//! one on a small run raises an alarm.

use polars::prelude::*;
use strata_app::model::{ColumnKind, FeatureDrift};

use super::stats::special::chi2_upper_p;
use super::bh_adjust;
use super::{EvalError, f64_values};

/// Share floor for PSI and the distances (empty bins would make PSI infinite).
const FLOOR: f64 = 1e-4;

/// PSI, JS distance (base 2) and Hellinger distance between two count vectors.
pub fn distances(reference: &[f64], current: &[f64]) -> (f64, f64, f64, Vec<f64>, Vec<f64>) {
    let (tr, tc) = (reference.iter().sum::<f64>().max(1.0), current.iter().sum::<f64>().max(1.0));
    let r: Vec<f64> = reference.iter().map(|x| x / tr).collect();
    let c: Vec<f64> = current.iter().map(|x| x / tc).collect();
    let psi = r.iter().zip(&c).map(|(r, c)| {
        let (r, c) = (r.max(FLOOR), c.max(FLOOR));
        (c - r) * (c / r).ln()
    }).sum();
    let kl = |p: f64, m: f64| if p > 0.0 { p * (p / m).log2() } else { 0.0 };
    let js: f64 = r.iter().zip(&c).map(|(p, q)| { let m = (p + q) / 2.0; 0.5 * kl(*p, m) + 0.5 * kl(*q, m) }).sum();
    let bc: f64 = r.iter().zip(&c).map(|(p, q)| (p * q).sqrt()).sum();
    (psi, js.max(0.0).sqrt(), (1.0 - bc).max(0.0).sqrt(), r, c)
}

/// Two-sample Kolmogorov–Smirnov statistic D (= `scipy.stats.ks_2samp`'s) and its classical
/// asymptotic p-value: Kolmogorov's limiting distribution at `sqrt(n m / (n + m))·D`
/// (`scipy.stats.kstwobign.sf`; scipy's own `method="asymp"` uses `kstwo` with n = round(n m /
/// (n + m)), which differs in the third digit for mid-range p).
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> (f64, f64) {
    ks_counted(&CountedNumbers::of(a), &CountedNumbers::of(b))
}

/// [`ks_two_sample`] on counted values: the same D (cumulative counts over the same merged
/// values) and p-value, whether the counts came from rows or from a `GROUP BY`.
pub fn ks_counted(a: &CountedNumbers, b: &CountedNumbers) -> (f64, f64) {
    let (na, nb) = (a.present(), b.present());
    if na == 0 || nb == 0 {
        return (0.0, 1.0);
    }
    let (n, m) = (na as f64, nb as f64);
    let (a, b) = (&a.values, &b.values);
    let (mut i, mut j, mut ci, mut cj, mut d) = (0usize, 0usize, 0u64, 0u64, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].0.min(b[j].0);
        while i < a.len() && a[i].0 <= x {
            ci += a[i].1;
            i += 1;
        }
        while j < b.len() && b[j].0 <= x {
            cj += b[j].1;
            j += 1;
        }
        d = d.max((ci as f64 / n - cj as f64 / m).abs());
    }
    let en = n * m / (n + m);
    // Kolmogorov distribution: Q(λ) = 2 Σ (-1)^(k-1) exp(-2 k² λ²), λ = D·sqrt(en).
    let lambda = d * en.sqrt();
    let p = if lambda < 1e-3 {
        1.0
    } else {
        let mut s = 0.0;
        for k in 1..=200 {
            let t = (-2.0 * (k * k) as f64 * lambda * lambda).exp();
            s += if k % 2 == 1 { t } else { -t };
            if t < 1e-17 {
                break;
            }
        }
        (2.0 * s).clamp(0.0, 1.0)
    };
    (d, p)
}

/// Chi-squared test of homogeneity on a 2 × K table (no continuity correction; all-zero
/// columns dropped), as `scipy.stats.chi2_contingency(correction=False)`.
pub fn chi2_two_rows(reference: &[f64], current: &[f64]) -> (f64, f64) {
    let cols: Vec<(f64, f64)> = reference.iter().zip(current).map(|(a, b)| (*a, *b)).filter(|(a, b)| a + b > 0.0).collect();
    let (tr, tc): (f64, f64) = (cols.iter().map(|c| c.0).sum(), cols.iter().map(|c| c.1).sum());
    let total = tr + tc;
    if cols.len() < 2 || tr == 0.0 || tc == 0.0 {
        return (0.0, 1.0);
    }
    let mut x2 = 0.0;
    for (a, b) in &cols {
        let col = a + b;
        let (ea, eb) = (tr * col / total, tc * col / total);
        x2 += (a - ea).powi(2) / ea + (b - eb).powi(2) / eb;
    }
    (x2, chi2_upper_p(x2, (cols.len() - 1) as f64))
}

fn fmt(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { format!("{x:.4}").trim_end_matches('0').trim_end_matches('.').to_string() }
}

fn numeric_drift(name: &str, kind: &str, r: &CountedNumbers, c: &CountedNumbers) -> FeatureDrift {
    let mut edges: Vec<f64> = (1..10).filter_map(|i| (r.present() > 0).then(|| r.quantile(i as f64 / 10.0))).collect();
    edges.dedup();
    let bin = |x: f64| edges.partition_point(|e| *e <= x);
    let k = edges.len() + 2;
    let count = |v: &CountedNumbers| {
        let mut h = vec![0.0; k];
        for (x, n) in &v.values {
            h[bin(*x)] += *n as f64;
        }
        h[k - 1] += v.missing as f64;
        h
    };
    let (hr, hc) = (count(r), count(c));
    let mut labels: Vec<String> = (0..=edges.len())
        .map(|i| {
            let lo = if i == 0 { "-inf".to_string() } else { fmt(edges[i - 1]) };
            let hi = if i == edges.len() { "inf".to_string() } else { fmt(edges[i]) };
            format!("[{lo}, {hi})")
        })
        .collect();
    labels.push("(missing)".into());
    let (psi, js, hell, rs, cs) = distances(&hr, &hc);
    let (d, p) = ks_counted(r, c);
    FeatureDrift {
        feature: name.into(),
        kind: kind.into(),
        n_reference: r.rows(),
        n_current: c.rows(),
        psi,
        js_distance: js,
        hellinger: hell,
        test: "ks".into(),
        statistic: d,
        p_value: p,
        q_value: 1.0,
        drifted: false,
        bins: labels,
        reference_share: rs,
        current_share: cs,
    }
}

fn text_values(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>, EvalError> {
    let c = df.column(name).map_err(|_| EvalError::NoColumn(name.to_string()))?;
    let s = c.cast(&DataType::String)?;
    Ok(s.str()?.iter().map(|v| v.map(str::to_string)).collect())
}

fn categorical_drift(name: &str, r: &CountedTexts, c: &CountedTexts) -> FeatureDrift {
    let mut counts: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for (v, n) in r.values.iter().chain(&c.values) {
        *counts.entry(v.as_str()).or_default() += n;
    }
    let mut cats: Vec<(&str, u64)> = counts.into_iter().collect();
    cats.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    cats.truncate(50);
    let mut labels: Vec<String> = cats.iter().map(|(s, _)| s.to_string()).collect();
    labels.sort();
    let index: std::collections::HashMap<&str, usize> = labels.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    let (other, missing) = (labels.len(), labels.len() + 1);
    let count = |v: &CountedTexts| {
        let mut h = vec![0.0; labels.len() + 2];
        for (x, n) in &v.values {
            h[index.get(x.as_str()).copied().unwrap_or(other)] += *n as f64;
        }
        h[missing] += v.missing as f64;
        h
    };
    let (hr, hc) = (count(r), count(c));
    let mut bins = labels.clone();
    bins.push("(other)".into());
    bins.push("(missing)".into());
    let (psi, js, hell, rs, cs) = distances(&hr, &hc);
    let (x2, p) = chi2_two_rows(&hr, &hc);
    FeatureDrift {
        feature: name.into(),
        kind: "categorical".into(),
        n_reference: r.rows(),
        n_current: c.rows(),
        psi,
        js_distance: js,
        hellinger: hell,
        test: "chi2".into(),
        statistic: x2,
        p_value: p,
        q_value: 1.0,
        drifted: false,
        bins,
        reference_share: rs,
        current_share: cs,
    }
}

/// Drift of `features` (and of `scores`, model columns both runs have) between two runs.
/// Ranked: features by PSI, then scores; flags as described in the module docs.
pub fn drift(reference: &DataFrame, current: &DataFrame, features: &[(String, ColumnKind)], scores: &[String]) -> Result<Vec<FeatureDrift>, EvalError> {
    drift_tracked(reference, current, features, scores, &crate::progress::Progress::new())
}

/// [`drift`] reporting one step per feature and score into `progress`; stops (with what it has,
/// which the caller then throws away) when it is cancelled.
pub fn drift_tracked(reference: &DataFrame, current: &DataFrame, features: &[(String, ColumnKind)], scores: &[String], progress: &crate::progress::Progress) -> Result<Vec<FeatureDrift>, EvalError> {
    progress.stage("features");
    progress.add_total((features.len() + scores.len()) as u64);
    let mut columns = Vec::new();
    for (name, kind) in features {
        if progress.is_cancelled() {
            return Ok(vec![]);
        }
        progress.advance(1);
        if current.column(name).is_err() {
            continue;
        }
        let numeric = *kind == ColumnKind::Numeric;
        columns.push(ColumnCounts {
            name: name.clone(),
            kind: if numeric { "numeric" } else { "categorical" },
            reference: Counted::of(reference, name, numeric)?,
            current: Counted::of(current, name, numeric)?,
        });
    }
    for s in scores {
        progress.advance(1);
        if current.column(s).is_ok() && reference.column(s).is_ok() {
            columns.push(ColumnCounts { name: s.clone(), kind: "score", reference: Counted::of(reference, s, true)?, current: Counted::of(current, s, true)? });
        }
    }
    Ok(drift_of_counts(&columns))
}

/// A column's values in one run, counted: what drift needs of its rows, and all it needs —
/// so a run whose rows stay in a warehouse sends these counts (a `GROUP BY` of the column)
/// instead, and its drift is the same numbers as an uploaded copy's.
#[derive(Clone, Debug, PartialEq)]
pub enum Counted {
    Numbers(CountedNumbers),
    Texts(CountedTexts),
}

/// Every distinct finite number with how many rows hold it (ascending, -0 counted as 0), and
/// the rows where the value is missing (null, NaN or infinite).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CountedNumbers {
    pub values: Vec<(f64, u64)>,
    pub missing: u64,
}

/// Every distinct text with its rows (numbers and booleans as Polars writes them as text), and
/// the rows where the value is missing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CountedTexts {
    pub values: std::collections::BTreeMap<String, u64>,
    pub missing: u64,
}

impl Counted {
    /// The column `name` of `df`, as numbers (cast to `f64`) or as text.
    pub fn of(df: &DataFrame, name: &str, numeric: bool) -> Result<Counted, EvalError> {
        let mut c = if numeric { Counted::Numbers(CountedNumbers::default()) } else { Counted::Texts(CountedTexts::default()) };
        c.add_frame(df, name)?;
        Ok(c)
    }

    /// Adds the rows of `df`'s column `name` (a batch of a run read batch by batch).
    pub fn add_frame(&mut self, df: &DataFrame, name: &str) -> Result<(), EvalError> {
        match self {
            Counted::Numbers(n) => n.merge(&CountedNumbers::of(&f64_values(df, name)?)),
            Counted::Texts(t) => {
                for v in text_values(df, name)? {
                    t.add(v.as_deref(), 1);
                }
            }
        }
        Ok(())
    }

    /// How many distinct present values: what a caller bounds before it keeps counting.
    pub fn distinct(&self) -> usize {
        match self {
            Counted::Numbers(n) => n.values.len(),
            Counted::Texts(t) => t.values.len(),
        }
    }

    /// Adds another part of the same column (another batch, or another run of a window).
    pub fn merge(&mut self, other: &Counted) -> Result<(), EvalError> {
        match (self, other) {
            (Counted::Numbers(a), Counted::Numbers(b)) => a.merge(b),
            (Counted::Texts(a), Counted::Texts(b)) => {
                for (v, n) in &b.values {
                    a.add(Some(v.as_str()), *n);
                }
                a.missing += b.missing;
            }
            _ => return Err(EvalError::Request("a column is numeric in one run and text in another".into())),
        }
        Ok(())
    }
}

impl CountedNumbers {
    /// Counts `values` (NaN and infinities are missing).
    pub fn of(values: &[f64]) -> CountedNumbers {
        let mut present: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).map(|x| if x == 0.0 { 0.0 } else { x }).collect();
        let missing = (values.len() - present.len()) as u64;
        present.sort_by(f64::total_cmp);
        let mut out: Vec<(f64, u64)> = Vec::new();
        for x in present {
            match out.last_mut() {
                Some((v, n)) if *v == x => *n += 1,
                _ => out.push((x, 1)),
            }
        }
        CountedNumbers { values: out, missing }
    }

    /// From (value, rows) pairs in any order, a value possibly more than once; `None`, NaN and
    /// infinities are missing.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Option<f64>, u64)>) -> CountedNumbers {
        let mut out = CountedNumbers::default();
        let mut present = Vec::new();
        for (v, n) in pairs {
            match v.filter(|x| x.is_finite()) {
                Some(x) => present.push((if x == 0.0 { 0.0 } else { x }, n)),
                None => out.missing += n,
            }
        }
        out.merge(&CountedNumbers { values: normalise(present), missing: 0 });
        out
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &CountedNumbers) {
        let mine = std::mem::take(&mut self.values);
        let mut out = Vec::with_capacity(mine.len().max(other.values.len()));
        let (mut a, mut b) = (mine.into_iter().peekable(), other.values.iter().copied().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    let n = x.1 + y.1;
                    let v = x.0;
                    a.next();
                    b.next();
                    (v, n)
                }
                (Some(x), Some(y)) => if x.0 < y.0 { a.next() } else { b.next() }.expect("peeked"),
                (Some(_), None) => a.next().expect("peeked"),
                (None, Some(_)) => b.next().expect("peeked"),
                (None, None) => break,
            };
            out.push(next);
        }
        self.values = out;
        self.missing += other.missing;
    }

    /// Rows with a value.
    pub fn present(&self) -> u64 {
        self.values.iter().map(|v| v.1).sum()
    }

    /// All rows.
    pub fn rows(&self) -> u64 {
        self.present() + self.missing
    }

    /// The sum of the present values (a 0/1 label's positives).
    pub fn sum(&self) -> f64 {
        self.values.iter().map(|(x, n)| x * *n as f64).sum()
    }

    /// `stats::quantile_sorted` of the present values, from their counts: the same linear
    /// interpolation between the same two order statistics.
    pub fn quantile(&self, q: f64) -> f64 {
        let n = self.present();
        if n == 0 {
            return f64::NAN;
        }
        let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
        let (i, frac) = (pos.floor() as u64, pos.fract());
        let at = |rank: u64| {
            let mut seen = 0;
            for (x, c) in &self.values {
                seen += c;
                if rank < seen {
                    return *x;
                }
            }
            self.values.last().map_or(f64::NAN, |v| v.0)
        };
        let lo = at(i);
        if i + 1 < n { lo + frac * (at(i + 1) - lo) } else { lo }
    }
}

/// Sorted, each value once with its rows summed.
fn normalise(mut pairs: Vec<(f64, u64)>) -> Vec<(f64, u64)> {
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, u64)> = Vec::with_capacity(pairs.len());
    for (x, n) in pairs {
        match out.last_mut() {
            Some((v, m)) if *v == x => *m += n,
            _ => out.push((x, n)),
        }
    }
    out
}

impl CountedTexts {
    pub fn add(&mut self, value: Option<&str>, rows: u64) {
        match value {
            Some(v) => *self.values.entry(v.to_string()).or_default() += rows,
            None => self.missing += rows,
        }
    }

    pub fn rows(&self) -> u64 {
        self.values.values().sum::<u64>() + self.missing
    }
}

/// One column of a drift request: its name, its kind (`numeric`, `categorical`, `score`) and
/// both runs' counts (the reference's a window's, summed).
#[derive(Clone, Debug)]
pub struct ColumnCounts {
    pub name: String,
    pub kind: &'static str,
    pub reference: Counted,
    pub current: Counted,
}

/// Drift of every column from its counts: features ranked by PSI, then scores; flags as the
/// module docs say. Both kinds of run, uploaded or external, end here.
pub fn drift_of_counts(columns: &[ColumnCounts]) -> Vec<FeatureDrift> {
    let mut out = Vec::new();
    let mut scores = Vec::new();
    for c in columns {
        let d = match (&c.reference, &c.current) {
            (Counted::Numbers(r), Counted::Numbers(cur)) => numeric_drift(&c.name, c.kind, r, cur),
            (Counted::Texts(r), Counted::Texts(cur)) => categorical_drift(&c.name, r, cur),
            _ => continue,
        };
        if c.kind == "score" { scores.push(d) } else { out.push(d) }
    }
    out.sort_by(|a, b| b.psi.total_cmp(&a.psi).then(a.feature.cmp(&b.feature)));
    out.extend(scores);
    let qs = bh_adjust(&out.iter().map(|f| f.p_value).collect::<Vec<_>>());
    for (f, q) in out.iter_mut().zip(qs) {
        f.q_value = q;
        f.drifted = f.psi >= 0.1 && q <= 0.05;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_in_parts_give_the_drift_of_the_rows() {
        // Rows with ties, missing values and -0, counted whole and in batches, merged in any
        // order: the same quantile edges, histograms, KS and p-values as the rows themselves.
        let a: Vec<f64> = (0..3000).map(|i| if i % 97 == 0 { f64::NAN } else if i % 50 == 0 { -0.0 } else { ((i * 37) % 101) as f64 / 7.0 }).collect();
        let b: Vec<f64> = (0..2500).map(|i| if i % 89 == 0 { f64::INFINITY } else { ((i * 53) % 113) as f64 / 7.5 }).collect();
        let whole = (CountedNumbers::of(&a), CountedNumbers::of(&b));
        let mut parts = CountedNumbers::default();
        for chunk in a.chunks(700).rev() {
            parts.merge(&CountedNumbers::of(chunk));
        }
        assert_eq!(parts, whole.0);
        let pairs = CountedNumbers::from_pairs(a.iter().map(|x| (Some(*x), 1)).chain([(None, 2)]));
        assert_eq!((pairs.values.clone(), pairs.missing), (whole.0.values.clone(), whole.0.missing + 2));
        let mut sorted: Vec<f64> = a.iter().copied().filter(|x| x.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        for q in [0.0, 0.1, 0.25, 0.5, 0.9, 1.0] {
            assert_eq!(whole.0.quantile(q), super::super::stats::quantile_sorted(&sorted, q), "q={q}");
        }
        let (d, p) = ks_counted(&whole.0, &whole.1);
        // The row-by-row statistic, written out: the largest gap between the two ECDFs.
        let (fa, fb): (Vec<f64>, Vec<f64>) = (a.iter().copied().filter(|x| x.is_finite()).collect(), b.iter().copied().filter(|x| x.is_finite()).collect());
        let ecdf = |v: &[f64], x: f64| v.iter().filter(|y| **y <= x).count() as f64 / v.len() as f64;
        let brute = fa.iter().chain(&fb).map(|x| (ecdf(&fa, *x) - ecdf(&fb, *x)).abs()).fold(0.0, f64::max);
        assert!((d - brute).abs() < 1e-12 && d > 0.0 && p < 1.0, "{d} {brute} {p}");
        let cols = |r: CountedNumbers, c: CountedNumbers| vec![ColumnCounts { name: "x".into(), kind: "numeric", reference: Counted::Numbers(r), current: Counted::Numbers(c) }];
        let by_rows = numeric_drift("x", "numeric", &whole.0, &whole.1);
        assert_eq!(drift_of_counts(&cols(parts, whole.1.clone()))[0].psi, by_rows.psi);
        assert_eq!((by_rows.n_reference, by_rows.n_current), (3000, 2500));
    }

    #[test]
    fn identical_samples_do_not_drift_and_shifted_ones_do() {
        let a: Vec<f64> = (0..2000).map(|i| (i % 100) as f64).collect();
        let (d, p) = ks_two_sample(&a, &a);
        assert_eq!(d, 0.0);
        assert!(p > 0.99);
        let b: Vec<f64> = a.iter().map(|x| x + 30.0).collect();
        let (d, p) = ks_two_sample(&a, &b);
        assert!((d - 0.3).abs() < 1e-12 && p < 1e-50);
        let (psi, js, h, _, _) = distances(&[10.0, 10.0], &[10.0, 10.0]);
        assert_eq!((psi, js, h), (0.0, 0.0, 0.0));
        let (psi, js, h, _, _) = distances(&[10.0, 0.0], &[0.0, 10.0]);
        assert!(psi > 10.0 && (js - 1.0).abs() < 1e-12 && (h - 1.0).abs() < 1e-12, "disjoint: JS = Hellinger = 1");
        let (x2, p) = chi2_two_rows(&[50.0, 50.0], &[50.0, 50.0]);
        assert!(x2 == 0.0 && (p - 1.0).abs() < 1e-12);
        // 2x2 table [[30, 70], [50, 50]]: chi2 = 8.333..., p = 0.003892 (scipy, correction=False).
        let (x2, p) = chi2_two_rows(&[30.0, 70.0], &[50.0, 50.0]);
        assert!((x2 - 8.333333333333334).abs() < 1e-9 && (p - 0.0038924171227785).abs() < 1e-9, "{x2} {p}");
    }
}
