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
    let mut a: Vec<f64> = a.iter().copied().filter(|x| x.is_finite()).collect();
    let mut b: Vec<f64> = b.iter().copied().filter(|x| x.is_finite()).collect();
    if a.is_empty() || b.is_empty() {
        return (0.0, 1.0);
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
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

fn numeric_drift(name: &str, kind: &str, r: &[f64], c: &[f64]) -> FeatureDrift {
    let mut sorted: Vec<f64> = r.iter().copied().filter(|x| x.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..10).filter_map(|i| (!sorted.is_empty()).then(|| super::stats::quantile_sorted(&sorted, i as f64 / 10.0))).collect();
    edges.dedup();
    let bin = |x: f64| if x.is_finite() { edges.partition_point(|e| *e <= x) } else { edges.len() + 1 };
    let k = edges.len() + 2;
    let count = |v: &[f64]| {
        let mut h = vec![0.0; k];
        for x in v {
            h[bin(*x)] += 1.0;
        }
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
    let (d, p) = ks_two_sample(r, c);
    FeatureDrift {
        feature: name.into(),
        kind: kind.into(),
        n_reference: r.len() as u64,
        n_current: c.len() as u64,
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

fn categorical_drift(name: &str, r: &[Option<String>], c: &[Option<String>]) -> FeatureDrift {
    let mut counts: std::collections::HashMap<&str, f64> = std::collections::HashMap::new();
    for v in r.iter().chain(c).flatten() {
        *counts.entry(v.as_str()).or_default() += 1.0;
    }
    let mut cats: Vec<(&str, f64)> = counts.into_iter().collect();
    cats.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    cats.truncate(50);
    let mut labels: Vec<String> = cats.iter().map(|(s, _)| s.to_string()).collect();
    labels.sort();
    let index: std::collections::HashMap<&str, usize> = labels.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    let (other, missing) = (labels.len(), labels.len() + 1);
    let count = |v: &[Option<String>]| {
        let mut h = vec![0.0; labels.len() + 2];
        for x in v {
            h[match x {
                None => missing,
                Some(s) => index.get(s.as_str()).copied().unwrap_or(other),
            }] += 1.0;
        }
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
        n_reference: r.len() as u64,
        n_current: c.len() as u64,
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
    let mut out = Vec::new();
    for (name, kind) in features {
        if progress.is_cancelled() {
            return Ok(out);
        }
        progress.advance(1);
        if current.column(name).is_err() {
            continue;
        }
        out.push(if *kind == ColumnKind::Numeric {
            numeric_drift(name, "numeric", &f64_values(reference, name)?, &f64_values(current, name)?)
        } else {
            categorical_drift(name, &text_values(reference, name)?, &text_values(current, name)?)
        });
    }
    out.sort_by(|a, b| b.psi.total_cmp(&a.psi).then(a.feature.cmp(&b.feature)));
    for s in scores {
        progress.advance(1);
        if current.column(s).is_ok() && reference.column(s).is_ok() {
            out.push(numeric_drift(s, "score", &f64_values(reference, s)?, &f64_values(current, s)?));
        }
    }
    let qs = bh_adjust(&out.iter().map(|f| f.p_value).collect::<Vec<_>>());
    for (f, q) in out.iter_mut().zip(qs) {
        f.q_value = q;
        f.drifted = f.psi >= 0.1 && q <= 0.05;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
